package ingest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/strata-db/strata/internal/jsontext"
)

// Limits on what one attribute may hold. Beyond them a request is refused
// with 400: such values are mistakes, and they would make rows that no
// query can use.
const (
	maxDepth      = 32      // nesting of maps and arrays
	maxValueBytes = 1 << 20 // one string or bytes value
)

// inputError is a problem with what the client sent; it becomes a 400.
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func badInput(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// exportError is the client's mistake in a whole export, which refusing
// items one by one would not cure; it becomes a 400 too.
type exportError struct{ msg string }

func (e *exportError) Error() string { return e.msg }

// PartialError reports an export whose bad items were refused while the
// others were accepted: OTLP's partial success (200, with the count of
// rejected spans, log records or data points and the first reason).
type PartialError struct {
	Rejected int64
	Err      error // why the first was refused
}

func (e *PartialError) Error() string {
	// Valid UTF-8, as the response's error_message must be.
	return strings.ToValidUTF8(fmt.Sprintf("%d refused, the first because %v", e.Rejected, e.Err), "\uFFFD")
}

// rejects counts the items of an export refused one by one.
type rejects struct {
	n     int64
	first error
}

func (r *rejects) add(n int, err error) {
	if r.first == nil {
		r.first = err
	}
	r.n += int64(n)
}

// refuse counts n items refused for err, an error of the client's; only
// the first refusal's place is written out (where formats it). Any other
// error is returned: it ends the conversion.
func (r *rejects) refuse(n int, where func() string, err error) error {
	if !isInput(err) {
		return err
	}
	if r.first == nil {
		err = fmt.Errorf("%s: %w", where(), err)
	}
	r.add(n, err)
	return nil
}

// isInput reports whether err is the client's mistake in one item.
func isInput(err error) bool {
	var ie *inputError
	return errors.As(err, &ie)
}

// appendMap appends OTLP attributes as a JSON object, preserving their
// types: ints stay integers, doubles numbers, bytes become base64 strings. It
// validates as it goes (UTF-8, depth, size), so each value is scanned once.
func appendMap(b []byte, m pcommon.Map, depth int) ([]byte, error) {
	return appendMapVisit(b, m, depth, nil)
}

// appendMapVisit is appendMap that also shows each top-level key and value
// to visit, so callers can pick attributes out in the same pass.
func appendMapVisit(b []byte, m pcommon.Map, depth int, visit func(k string, v pcommon.Value)) ([]byte, error) {
	if depth > maxDepth {
		return b, badInput("attributes nested deeper than %d levels", maxDepth)
	}
	b = append(b, '{')
	first := true
	var err error
	m.Range(func(k string, v pcommon.Value) bool {
		if visit != nil {
			visit(k, v)
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		if b, err = appendString(b, k); err != nil {
			err = fmt.Errorf("attribute key: %w", err)
			return false
		}
		b = append(b, ':')
		if b, err = appendValue(b, v, depth+1); err != nil {
			err = fmt.Errorf("attribute %q: %w", k, err)
			return false
		}
		return true
	})
	return append(b, '}'), err
}

func appendValue(b []byte, v pcommon.Value, depth int) ([]byte, error) {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return appendString(b, v.Str())
	case pcommon.ValueTypeInt:
		return strconv.AppendInt(b, v.Int(), 10), nil
	case pcommon.ValueTypeDouble:
		return appendFloat(b, v.Double()), nil
	case pcommon.ValueTypeBool:
		return strconv.AppendBool(b, v.Bool()), nil
	case pcommon.ValueTypeMap:
		return appendMap(b, v.Map(), depth)
	case pcommon.ValueTypeSlice:
		if depth > maxDepth {
			return b, badInput("attributes nested deeper than %d levels", maxDepth)
		}
		s := v.Slice()
		b = append(b, '[')
		for i := range s.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, s.At(i), depth+1); err != nil {
				return b, err
			}
		}
		return append(b, ']'), nil
	case pcommon.ValueTypeBytes:
		raw := v.Bytes().AsRaw()
		if len(raw) > maxValueBytes {
			return b, badInput("bytes value of %d bytes exceeds the limit of %d", len(raw), maxValueBytes)
		}
		b = append(b, '"')
		b = base64.StdEncoding.AppendEncode(b, raw)
		return append(b, '"'), nil
	}
	return append(b, "null"...), nil
}

// appendFloat writes a double; JSON has no NaN or infinities, so those
// become strings. A whole double keeps a ".0", so it stays a double to
// readers (json_type says DOUBLE, not UBIGINT) and unlike an int attribute.
func appendFloat(b []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], ".e") {
		b = append(b, ".0"...)
	}
	return b
}

// appendCount writes `,"key":n` after an object's other members, unless n
// is 0 (OTLP's default: nothing dropped, no flags).
func appendCount(b []byte, key string, n uint32) []byte {
	if n == 0 {
		return b
	}
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	return strconv.AppendUint(b, uint64(n), 10)
}

func appendTime(b []byte, ns uint64) []byte {
	if ns == 0 || ns > math.MaxInt64 {
		// 0 is OTLP's "unknown", not 1970; past 2^63 ns (year 2262) a
		// time would wrap into the past.
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = time.Unix(0, int64(ns)).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string, refusing invalid UTF-8 and
// values over the size limit.
func appendString(b []byte, s string) ([]byte, error) {
	if len(s) > maxValueBytes {
		return b, badInput("string value of %d bytes exceeds the limit of %d", len(s), maxValueBytes)
	}
	b, bad := jsontext.AppendString(b, s, true)
	if bad >= 0 {
		return b, badInput("invalid UTF-8 at byte %d of a string value", bad)
	}
	return b, nil
}

// checkString validates a plain string field (not inside JSON).
func checkString(field, s string) error {
	if len(s) > maxValueBytes {
		return badInput("%s: %d bytes exceeds the limit of %d", field, len(s), maxValueBytes)
	}
	if !utf8.ValidString(s) {
		return badInput("%s: invalid UTF-8", field)
	}
	return nil
}
