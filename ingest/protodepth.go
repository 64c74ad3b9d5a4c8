package ingest

import (
	"bytes"

	"google.golang.org/protobuf/encoding/protowire"
)

// maxProtoDepth bounds how deeply the messages of an OTLP request may
// nest. The decoder recurses once per level, and a few megabytes of
// arrays within arrays (1.3 million levels in 12.5 MB) exhausted its stack
// and ended the process. Real requests nest about 8 levels plus 3 per
// level of attribute nesting; attributes deeper than maxDepth are refused
// after decoding, with a clearer message. This bound only keeps the
// decoder's stack to a few megabytes.
const maxProtoDepth = 10_000

// An OTLP message type, as far as nesting goes: which of its fields hold
// messages that can nest further. Everything else (ids, strings, numbers)
// is skipped without being read.
type otlpMsg uint8

const (
	mNone otlpMsg = iota
	mTraces
	mResourceSpans
	mScopeSpans
	mSpan
	mEvent
	mLink
	mLogs
	mResourceLogs
	mScopeLogs
	mLogRecord
	mMetrics
	mResourceMetrics
	mScopeMetrics
	mMetric
	mNumberPoints // Gauge, Sum
	mHistogramPoints
	mExpHistogramPoints
	mSummaryPoints
	mNumberPoint
	mHistogramPoint
	mExpHistogramPoint
	mSummaryPoint
	mExemplar
	mResource
	mScope
	mKeyValue
	mAnyValue
	mArrayValue
	mKeyValueList
	mQuantile
)

// otlpFields maps each message type's nested fields (by number) to their
// types, after opentelemetry/proto/{collector,common,resource,trace,logs,
// metrics}/v1.
var otlpFields = [...][16]otlpMsg{
	mTraces:             {1: mResourceSpans},
	mResourceSpans:      {1: mResource, 2: mScopeSpans},
	mScopeSpans:         {1: mScope, 2: mSpan},
	mSpan:               {9: mKeyValue, 11: mEvent, 13: mLink},
	mEvent:              {3: mKeyValue},
	mLink:               {4: mKeyValue},
	mLogs:               {1: mResourceLogs},
	mResourceLogs:       {1: mResource, 2: mScopeLogs},
	mScopeLogs:          {1: mScope, 2: mLogRecord},
	mLogRecord:          {5: mAnyValue, 6: mKeyValue},
	mMetrics:            {1: mResourceMetrics},
	mResourceMetrics:    {1: mResource, 2: mScopeMetrics},
	mScopeMetrics:       {1: mScope, 2: mMetric},
	mMetric:             {5: mNumberPoints, 7: mNumberPoints, 9: mHistogramPoints, 10: mExpHistogramPoints, 11: mSummaryPoints, 12: mKeyValue},
	mNumberPoints:       {1: mNumberPoint},
	mHistogramPoints:    {1: mHistogramPoint},
	mExpHistogramPoints: {1: mExpHistogramPoint},
	mSummaryPoints:      {1: mSummaryPoint},
	mNumberPoint:        {5: mExemplar, 7: mKeyValue},
	mHistogramPoint:     {8: mExemplar, 9: mKeyValue},
	mExpHistogramPoint:  {1: mKeyValue, 11: mExemplar},
	mSummaryPoint:       {6: mQuantile, 7: mKeyValue},
	mExemplar:           {7: mKeyValue},
	mResource:           {1: mKeyValue},
	mScope:              {3: mKeyValue},
	mKeyValue:           {2: mAnyValue},
	mAnyValue:           {5: mArrayValue, 6: mKeyValueList},
	mArrayValue:         {1: mAnyValue},
	mKeyValueList:       {1: mKeyValue},
	mQuantile:           {},
}

// msgBytes is what pdata's decoder allocates for one message of each type,
// rounded up from TestCheckProto_CountsWhatDecodingAllocates (empty messages).
// A message can take two bytes of a body and 224 of memory, so what a body
// decodes to is counted, not guessed from its size. Messages a parent holds
// by value (a resource, a scope, an attribute's value, a log body) cost
// nothing of their own: an AnyValue costs only as an array's element.
var msgBytes = [...]int64{
	mResourceSpans: 144, mResourceLogs: 144, mResourceMetrics: 144,
	mScopeSpans: 128, mScopeLogs: 128, mScopeMetrics: 128,
	mSpan: 224, mEvent: 80, mLink: 96, mLogRecord: 144, mMetric: 112,
	mNumberPoints: 32, mHistogramPoints: 32, mExpHistogramPoints: 32, mSummaryPoints: 32,
	mNumberPoint: 112, mHistogramPoint: 176, mExpHistogramPoint: 208, mSummaryPoint: 112,
	mQuantile: 32, mExemplar: 88,
	mKeyValue: 48, mAnyValue: 24, mArrayValue: 32, mKeyValueList: 32,
}

// deprecatedScopes is the field number of the InstrumentationLibrary*
// lists of old OTLP versions, which pdata still decodes like field 2.
const deprecatedScopes = 1000

// checkProto refuses an OTLP request body (of type top: mTraces, mLogs or
// mMetrics) whose messages nest deeper than maxProtoDepth, before the
// decoder sees it, and returns the bytes decoding it will allocate (0 for
// a small body, which is not walked). A body the walk cannot read is
// refused too: where the walk stopped, the decoder might go on (it skips
// groups, say) into nesting the walk never saw.
func checkProto(b []byte, top otlpMsg) (decoded int64, err error) {
	// Each level takes at least two bytes (a tag and a length), so a small
	// body cannot nest too deep; it decodes to at most ~2 MB.
	if len(b) <= 2*maxProtoDepth {
		return 0, nil
	}
	switch walk(b, top, maxProtoDepth, &decoded) {
	case tooDeep:
		return 0, badInput("invalid OTLP protobuf: messages nested more than %d levels deep", maxProtoDepth)
	case malformed:
		return 0, badInput("invalid OTLP protobuf: malformed field")
	}
	// Strings and bytes are copied out of the body: at most its size.
	return decoded + int64(len(b)), nil
}

// jsonObjectBytes is what an OTLP/JSON body is counted to decode to per
// object it opens: between an attribute (48 and its value) and a span (224),
// since a '{' does not say which message it starts.
const jsonObjectBytes = 128

// jsonTrailer returns where something other than white space follows the
// first JSON value of b, or -1 if nothing does (or the value does not end:
// the decoder has said what is wrong with it).
func jsonTrailer(b []byte) int {
	depth := 0
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '"':
			for i++; i < len(b); i++ {
				k := bytes.IndexAny(b[i:], `"\`)
				if k < 0 {
					return -1
				}
				if i += k; b[i] == '"' {
					break
				}
				i++ // the escaped byte
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth--; depth == 0 {
				for j := i + 1; j < len(b); j++ {
					if c := b[j]; c != ' ' && c != '\t' && c != '\n' && c != '\r' {
						return j
					}
				}
				return -1
			}
		}
	}
	return -1
}

// jsonDecodedBytes estimates what decoding an OTLP/JSON body allocates.
func jsonDecodedBytes(b []byte) int64 {
	return int64(len(b)) + jsonObjectBytes*int64(bytes.Count(b, []byte{'{'}))
}

type walkResult int

const (
	walkedOK walkResult = iota
	tooDeep
	malformed
)

// walk walks the messages in b, of type t, at most left levels deep, and
// adds what decoding each allocates to *decoded. It reads field headers by
// hand (most tags and lengths are one byte) and jumps over every value it
// does not descend into: it runs on every large request.
func walk(b []byte, t otlpMsg, left int, decoded *int64) walkResult {
	fields := &otlpFields[t]
	i := 0
	for i < len(b) {
		key, n := uvarint(b[i:])
		if n <= 0 {
			return malformed
		}
		i += n
		switch key & 7 {
		case 0: // varint
			for i < len(b) && b[i] >= 0x80 {
				i++
			}
			i++
		case 1: // fixed64
			i += 8
		case 5: // fixed32
			i += 4
		case 3: // a group, which OTLP never uses; the decoder skips it
			m := protowire.ConsumeFieldValue(protowire.Number(key>>3), protowire.StartGroupType, b[i:])
			if m < 0 {
				return malformed
			}
			i += m
		case 2: // length-delimited
			size, n := uvarint(b[i:])
			if n <= 0 || size > uint64(len(b)-i-n) {
				return malformed
			}
			i += n
			v := b[i : i+int(size)]
			i += int(size)
			num := key >> 3
			if num == deprecatedScopes && (t == mResourceSpans || t == mResourceLogs || t == mResourceMetrics) {
				num = 2 // decoded as the scope spans, logs or metrics of field 2
			}
			if num < uint64(len(fields)) && fields[num] != mNone {
				if left == 0 {
					return tooDeep
				}
				// An AnyValue costs only as an array's element (msgBytes).
				if fields[num] != mAnyValue || t == mArrayValue {
					*decoded += msgBytes[fields[num]]
				}
				if r := walk(v, fields[num], left-1, decoded); r != walkedOK {
					return r
				}
			}
		default:
			return malformed
		}
	}
	if i > len(b) {
		return malformed // a fixed or varint value ran past the end
	}
	return walkedOK
}

// uvarint decodes a varint, with a fast path for one byte.
func uvarint(b []byte) (uint64, int) {
	if len(b) > 0 && b[0] < 0x80 {
		return uint64(b[0]), 1
	}
	v, n := protowire.ConsumeVarint(b)
	return v, n
}
