package ingest

import (
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
	mSummaryPoint:       {7: mKeyValue},
	mExemplar:           {7: mKeyValue},
	mResource:           {1: mKeyValue},
	mScope:              {3: mKeyValue},
	mKeyValue:           {2: mAnyValue},
	mAnyValue:           {5: mArrayValue, 6: mKeyValueList},
	mArrayValue:         {1: mAnyValue},
	mKeyValueList:       {1: mKeyValue},
}

// deprecatedScopes is the field number of the InstrumentationLibrary*
// lists of old OTLP versions, which pdata still decodes like field 2.
const deprecatedScopes = 1000

// checkProtoDepth refuses an OTLP request body (of type top: mTraces,
// mLogs or mMetrics) whose messages nest deeper than maxProtoDepth, before
// the decoder sees it. A body the walk cannot read is refused too: where
// the walk stopped, the decoder might go on (it skips groups, say) into
// nesting the walk never saw.
func checkProtoDepth(b []byte, top otlpMsg) error {
	// Each level takes at least two bytes (a tag and a length), so a small
	// body cannot nest too deep.
	if len(b) <= 2*maxProtoDepth {
		return nil
	}
	switch walkDepth(b, top, maxProtoDepth) {
	case tooDeep:
		return badInput("invalid OTLP protobuf: messages nested more than %d levels deep", maxProtoDepth)
	case malformed:
		return badInput("invalid OTLP protobuf: malformed field")
	}
	return nil
}

type walkResult int

const (
	walkedOK walkResult = iota
	tooDeep
	malformed
)

// walkDepth walks the messages in b, of type t, at most left levels deep.
// It reads field headers by hand (most tags and lengths are one byte) and
// jumps over every value it does not descend into: it runs on every large
// request.
func walkDepth(b []byte, t otlpMsg, left int) walkResult {
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
				if r := walkDepth(v, fields[num], left-1); r != walkedOK {
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
