package sql

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/decimal128"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/internal/jsontext"
)

// valueEncoder appends row i of one column as a JSON value.
type valueEncoder func(b []byte, i int) []byte

// encoderFor returns the JSON encoder of a column, chosen once per batch so
// that the per-value work is a plain function call.
func encoderFor(a arrow.Array) valueEncoder {
	withNulls := func(enc valueEncoder) valueEncoder {
		if a.NullN() == 0 {
			return enc
		}
		return func(b []byte, i int) []byte {
			if a.IsNull(i) {
				return append(b, "null"...)
			}
			return enc(b, i)
		}
	}
	switch c := a.(type) {
	case *array.String:
		return withNulls(func(b []byte, i int) []byte { return appendJSONString(b, c.Value(i)) })
	case *array.LargeString:
		return withNulls(func(b []byte, i int) []byte { return appendJSONString(b, c.Value(i)) })
	case *array.StringView:
		return withNulls(func(b []byte, i int) []byte { return appendJSONString(b, c.Value(i)) })
	case array.ExtensionArray:
		if c.ExtensionType().ExtensionName() == "arrow.json" {
			// JSON values are embedded as JSON, not as strings holding
			// JSON — those that are valid JSON: DuckDB's also allows NaN,
			// Infinity and trailing commas, which go out as strings.
			if s, ok := c.Storage().(*array.String); ok {
				return withNulls(func(b []byte, i int) []byte {
					v := s.Value(i)
					if json.Valid([]byte(v)) {
						return append(b, v...)
					}
					return appendJSONString(b, v)
				})
			}
		}
		return encoderFor(c.Storage())
	case *array.Boolean:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendBool(b, c.Value(i)) })
	case *array.Int8:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(c.Value(i)), 10) })
	case *array.Int16:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(c.Value(i)), 10) })
	case *array.Int32:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendInt(b, int64(c.Value(i)), 10) })
	case *array.Int64:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendInt(b, c.Value(i), 10) })
	case *array.Uint8:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(c.Value(i)), 10) })
	case *array.Uint16:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(c.Value(i)), 10) })
	case *array.Uint32:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendUint(b, uint64(c.Value(i)), 10) })
	case *array.Uint64:
		return withNulls(func(b []byte, i int) []byte { return strconv.AppendUint(b, c.Value(i), 10) })
	case *array.Float32:
		return withNulls(func(b []byte, i int) []byte { return appendJSONFloat(b, float64(c.Value(i)), 32) })
	case *array.Float64:
		return withNulls(func(b []byte, i int) []byte { return appendJSONFloat(b, c.Value(i), 64) })
	case *array.Timestamp:
		typ := c.DataType().(*arrow.TimestampType)
		return withNulls(func(b []byte, i int) []byte {
			return append(appendTimestamp(append(b, '"'), c.Value(i), typ), '"')
		})
	case *array.Date32:
		return withNulls(func(b []byte, i int) []byte {
			return append(appendDate(append(b, '"'), c.Value(i)), '"')
		})
	case *array.Binary:
		return withNulls(func(b []byte, i int) []byte {
			b = append(b, '"')
			b = base64.StdEncoding.AppendEncode(b, c.Value(i))
			return append(b, '"')
		})
	case *array.List:
		return withNulls(listEncoder(c))
	case *array.LargeList:
		return withNulls(listEncoder(c))
	case *array.Struct:
		fields := c.DataType().(*arrow.StructType).Fields()
		encs := make([]valueEncoder, len(fields))
		for f := range fields {
			encs[f] = encoderFor(c.Field(f))
		}
		return withNulls(func(b []byte, i int) []byte {
			b = append(b, '{')
			for f, field := range fields {
				if f > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, field.Name)
				b = append(b, ':')
				b = encs[f](b, i)
			}
			return append(b, '}')
		})
	case *array.MonthDayNanoInterval:
		// As PostgreSQL writes it ("1 day 02:00:00"), not Arrow's fields.
		return withNulls(func(b []byte, i int) []byte {
			return append(appendPGInterval(append(b, '"'), c.Value(i)), '"')
		})
	case *array.Decimal128:
		// A JSON number with every digit, as PostgreSQL's to_json writes a
		// numeric: sum() of integers is a DECIMAL(38,0) in DuckDB, and a
		// dashboard wants it as a number like count(*), not a string.
		scale := c.DataType().(*arrow.Decimal128Type).Scale
		return withNulls(func(b []byte, i int) []byte {
			return appendDecimal(b, c.Value(i), scale)
		})
	}
	// Anything else (maps, …) as its string form.
	return withNulls(func(b []byte, i int) []byte { return appendJSONString(b, a.ValueStr(i)) })
}

func listEncoder(l array.ListLike) valueEncoder {
	values := encoderFor(l.ListValues())
	return func(b []byte, i int) []byte {
		start, end := l.ValueOffsets(i)
		b = append(b, '[')
		for j := start; j < end; j++ {
			if j > start {
				b = append(b, ',')
			}
			b = values(b, int(j))
		}
		return append(b, ']')
	}
}

// appendTimestamp writes an instant (a timestamp with a time zone) as RFC
// 3339 in UTC, a timestamp without one (SQL's TIMESTAMP: a wall-clock
// time, e.g. after AT TIME ZONE) the same but with no zone, and DuckDB's
// infinities as PostgreSQL writes them.
func appendTimestamp(b []byte, v arrow.Timestamp, t *arrow.TimestampType) []byte {
	switch int64(v) {
	case math.MaxInt64:
		return append(b, "infinity"...)
	case -math.MaxInt64, math.MinInt64:
		return append(b, "-infinity"...)
	}
	layout := "2006-01-02T15:04:05.999999"
	if t.Unit == arrow.Nanosecond {
		layout = "2006-01-02T15:04:05.999999999" // all nine digits, as the Arrow output has them
	}
	if t.TimeZone != "" {
		layout += "Z07:00"
	}
	return v.ToTime(t.Unit).UTC().AppendFormat(b, layout)
}

// appendDate writes a date as YYYY-MM-DD, and DuckDB's infinities as
// PostgreSQL writes them.
func appendDate(b []byte, d arrow.Date32) []byte {
	switch int32(d) {
	case math.MaxInt32:
		return append(b, "infinity"...)
	case -math.MaxInt32, math.MinInt32:
		return append(b, "-infinity"...)
	}
	return d.ToTime().AppendFormat(b, time.DateOnly)
}

// appendDecimal writes a decimal exactly (DuckDB sends HUGEINT as a
// decimal of 38 digits, beyond a float's precision).
func appendDecimal(b []byte, v decimal128.Num, scale int32) []byte {
	digits := v.BigInt().String()
	neg := strings.HasPrefix(digits, "-")
	if neg {
		b, digits = append(b, '-'), digits[1:]
	}
	if scale <= 0 {
		return append(b, digits...)
	}
	if pad := int(scale) + 1 - len(digits); pad > 0 {
		digits = strings.Repeat("0", pad) + digits
	}
	point := len(digits) - int(scale)
	return append(append(append(b, digits[:point]...), '.'), digits[point:]...)
}

// floatName is how NaN and the infinities are written (as PostgreSQL
// writes them; JSON numbers lack them), or "" for any other float.
func floatName(f float64) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	return ""
}

// appendJSONFloat writes a number; NaN and infinities become strings.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	if name := floatName(f); name != "" {
		return append(append(append(b, '"'), name...), '"')
	}
	return strconv.AppendFloat(b, f, 'g', -1, bits)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string. Invalid UTF-8 is replaced, so
// the output is always valid JSON.
func appendJSONString(b []byte, s string) []byte {
	b, _ = jsontext.AppendString(b, s, false)
	return b
}

// typeName is a column's type as SQL users know it.
func typeName(t arrow.DataType) string {
	switch t := t.(type) {
	case arrow.ExtensionType:
		if t.ExtensionName() == "arrow.json" {
			return "JSON"
		}
		return typeName(t.StorageType())
	case *arrow.StringType, *arrow.LargeStringType, *arrow.StringViewType:
		return "VARCHAR"
	case *arrow.BooleanType:
		return "BOOLEAN"
	case *arrow.Int8Type:
		return "TINYINT"
	case *arrow.Int16Type:
		return "SMALLINT"
	case *arrow.Int32Type:
		return "INTEGER"
	case *arrow.Int64Type:
		return "BIGINT"
	case *arrow.Uint8Type:
		return "UTINYINT"
	case *arrow.Uint16Type:
		return "USMALLINT"
	case *arrow.Uint32Type:
		return "UINTEGER"
	case *arrow.Uint64Type:
		return "UBIGINT"
	case *arrow.Float32Type:
		return "FLOAT"
	case *arrow.Float64Type:
		return "DOUBLE"
	case *arrow.TimestampType:
		if t.TimeZone != "" {
			return "TIMESTAMP WITH TIME ZONE"
		}
		return "TIMESTAMP"
	case *arrow.Date32Type:
		return "DATE"
	case *arrow.BinaryType, *arrow.LargeBinaryType:
		return "BLOB"
	case *arrow.ListType:
		return typeName(t.Elem()) + "[]"
	case *arrow.LargeListType:
		return typeName(t.Elem()) + "[]"
	case *arrow.FixedSizeListType:
		return fmt.Sprintf("%s[%d]", typeName(t.Elem()), t.Len())
	case *arrow.MapType:
		return fmt.Sprintf("MAP(%s, %s)", typeName(t.KeyType()), typeName(t.ItemType()))
	case *arrow.StructType:
		return "STRUCT"
	case *arrow.DictionaryType: // DuckDB's ENUM
		return typeName(t.ValueType)
	case *arrow.MonthDayNanoIntervalType, *arrow.DayTimeIntervalType, *arrow.MonthIntervalType:
		return "INTERVAL"
	case *arrow.Time64Type, *arrow.Time32Type:
		return "TIME"
	case *arrow.Decimal128Type:
		return fmt.Sprintf("DECIMAL(%d,%d)", t.Precision, t.Scale)
	}
	return strings.ToUpper(t.String())
}

// MaxValueBytes bounds one text or binary value of a result sent as JSON,
// CSV or over the Postgres protocol: each is encoded whole in memory (a
// JSON string up to six times its size), so one huge value per query
// would take gigabytes. The Arrow stream sends buffers as they are.
const MaxValueBytes = 64 << 20

// checkValueSizes refuses a batch holding a value over MaxValueBytes.
func checkValueSizes(rec arrow.RecordBatch) error {
	for c, col := range rec.Columns() {
		if ext, ok := col.(array.ExtensionArray); ok {
			col = ext.Storage()
		}
		longest := int64(0)
		switch a := col.(type) {
		case *array.String:
			longest = longestValue(a.ValueOffsets())
		case *array.Binary:
			longest = longestValue(a.ValueOffsets())
		case *array.LargeString:
			longest = longestValue(a.ValueOffsets())
		}
		if longest > MaxValueBytes {
			return &engine.QueryError{Msg: fmt.Sprintf("column %q holds a value of %d MiB, over the %d MiB a result value may have; select part of it, e.g. left(%s, 1000)",
				rec.ColumnName(c), longest>>20, MaxValueBytes>>20, rec.ColumnName(c))}
		}
	}
	return nil
}

// longestValue is the length of the longest value an offsets buffer spans.
func longestValue[T int32 | int64](offs []T) int64 {
	longest := int64(0)
	for i := 1; i < len(offs); i++ {
		longest = max(longest, int64(offs[i]-offs[i-1]))
	}
	return longest
}
