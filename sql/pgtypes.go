package sql

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/strata-db/strata/engine"
)

// PostgreSQL type OIDs that clients know.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidText        = 25
	oidFloat4      = 700
	oidFloat8      = 701
	oidVarchar     = 1043
	oidDate        = 1082
	oidTime        = 1083
	oidNumeric     = 1700
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidJSON        = 114
)

// arrayOIDs are the array types of element types (text[] for text), as
// parameters of = ANY($1) are typed; elemOIDs is the reverse.
var arrayOIDs = map[uint32]uint32{
	oidBool: 1000, oidInt2: 1005, oidInt4: 1007, oidText: 1009, oidVarchar: 1015, oidInt8: 1016,
	oidFloat4: 1021, oidFloat8: 1022, oidTimestamp: 1115, oidDate: 1182, oidTimestamptz: 1185,
	oidInterval: 1187, oidNumeric: 1231, oidTime: 1183,
}

var elemOIDs = func() map[uint32]uint32 {
	out := map[uint32]uint32{}
	for elem, arr := range arrayOIDs {
		out[arr] = elem
	}
	return out
}()

// pgColumn is how one result column goes over the wire: its type OID and
// how to encode a value as text and, for types that have one, in binary.
type pgColumn struct {
	oid  uint32
	size int16
	text func(a arrow.Array, i int) []byte
	bin  func(a arrow.Array, i int) []byte // nil: text only
}

var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// pgEpochMicros is pgEpoch in Unix microseconds.
var pgEpochMicros = pgEpoch.UnixMicro()

// pgTimeText formats t as PostgreSQL writes it: years before 1 as years
// BC (year 0 is 1 BC), where Go would write 0000 or -0001, which clients
// refuse.
func pgTimeText(t time.Time, layout string) []byte {
	s := t.Format(layout)
	if t.Year() > 0 {
		return []byte(s)
	}
	sep := strings.IndexByte(s[1:], '-') + 1 // after the year and its sign
	return []byte(fmt.Sprintf("%04d%s BC", 1-t.Year(), s[sep:]))
}

// pgMicros turns a timestamp of unit into PostgreSQL's binary form,
// microseconds since 2000-01-01, in integer arithmetic: time.Time
// differences saturate at ±292 years (the year 1500 came out as 1707).
// Infinities stay infinities.
func pgMicros(v int64, unit arrow.TimeUnit) int64 {
	switch v {
	case math.MaxInt64:
		return math.MaxInt64
	case -math.MaxInt64, math.MinInt64:
		return math.MinInt64
	}
	switch unit {
	case arrow.Second:
		v = mulClamped(v, 1_000_000)
	case arrow.Millisecond:
		v = mulClamped(v, 1000)
	case arrow.Nanosecond:
		v = floorDiv(v, 1000)
	}
	// Past PostgreSQL's range, clients refuse a timestamp (or, past the
	// int64's, read it wrapped into the far future): send an infinity.
	switch {
	case v < math.MinInt64+pgEpochMicros || v-pgEpochMicros < pgMinMicros:
		return math.MinInt64
	case v-pgEpochMicros >= pgEndMicros:
		return math.MaxInt64
	}
	return v - pgEpochMicros
}

// PostgreSQL's range of timestamps (4714-11-24 BC up to 294277-01-01) and
// dates (4714-11-24 BC up to 5874898-01-01), from 2000-01-01.
const (
	pgMinMicros = -211813488000000000
	pgEndMicros = 9223371331200000000
	pgMinDays   = -2451545
	pgEndDays   = 2145031949
)

// mulClamped multiplies, saturating at the infinities instead of wrapping.
func mulClamped(v, by int64) int64 {
	switch {
	case v > math.MaxInt64/by:
		return math.MaxInt64
	case v < math.MinInt64/by:
		return math.MinInt64
	}
	return v * by
}

// pgNumeric encodes a decimal's text (-123.45) in PostgreSQL's binary
// numeric: base-10000 digits after a header of their count, the weight of
// the first, the sign and the display scale.
func pgNumeric(text []byte) []byte {
	s := string(text)
	sign := uint16(0)
	if strings.HasPrefix(s, "-") {
		sign, s = 0x4000, s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	intPart = strings.Repeat("0", (4-len(intPart)%4)%4) + intPart
	scale := len(frac)
	frac += strings.Repeat("0", (4-len(frac)%4)%4)
	var digits []uint16
	for d := intPart + frac; len(d) > 0; d = d[4:] {
		n, _ := strconv.Atoi(d[:4])
		digits = append(digits, uint16(n))
	}
	weight := len(intPart)/4 - 1
	for len(digits) > 0 && digits[0] == 0 {
		digits, weight = digits[1:], weight-1
	}
	for len(digits) > 0 && digits[len(digits)-1] == 0 {
		digits = digits[:len(digits)-1]
	}
	if len(digits) == 0 {
		sign, weight = 0, 0
	}
	out := binary.BigEndian.AppendUint16(nil, uint16(len(digits)))
	out = binary.BigEndian.AppendUint16(out, uint16(int16(weight)))
	out = binary.BigEndian.AppendUint16(out, sign)
	out = binary.BigEndian.AppendUint16(out, uint16(scale))
	for _, d := range digits {
		out = binary.BigEndian.AppendUint16(out, d)
	}
	return out
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// pgColumnFor maps an Arrow type to a PostgreSQL type. Types without a
// simple PostgreSQL twin (lists, structs, maps) go as text,
// written as the JSON API writes them.
func pgColumnFor(t arrow.DataType) pgColumn {
	switch t := t.(type) {
	case *arrow.BooleanType:
		return pgColumn{oid: oidBool, size: 1,
			text: func(a arrow.Array, i int) []byte {
				if a.(*array.Boolean).Value(i) {
					return []byte("t")
				}
				return []byte("f")
			},
			bin: func(a arrow.Array, i int) []byte {
				if a.(*array.Boolean).Value(i) {
					return []byte{1}
				}
				return []byte{0}
			}}
	case *arrow.Int16Type:
		return intColumn(oidInt2, 2, func(a arrow.Array, i int) int64 { return int64(a.(*array.Int16).Value(i)) })
	case *arrow.Int8Type:
		return intColumn(oidInt2, 2, func(a arrow.Array, i int) int64 { return int64(a.(*array.Int8).Value(i)) })
	case *arrow.Uint8Type:
		return intColumn(oidInt2, 2, func(a arrow.Array, i int) int64 { return int64(a.(*array.Uint8).Value(i)) })
	case *arrow.Int32Type:
		return intColumn(oidInt4, 4, func(a arrow.Array, i int) int64 { return int64(a.(*array.Int32).Value(i)) })
	case *arrow.Uint16Type:
		return intColumn(oidInt4, 4, func(a arrow.Array, i int) int64 { return int64(a.(*array.Uint16).Value(i)) })
	case *arrow.Int64Type:
		return intColumn(oidInt8, 8, func(a arrow.Array, i int) int64 { return a.(*array.Int64).Value(i) })
	case *arrow.Uint32Type:
		return intColumn(oidInt8, 8, func(a arrow.Array, i int) int64 { return int64(a.(*array.Uint32).Value(i)) })
	case *arrow.Uint64Type: // PostgreSQL has no unsigned bigint: numeric holds it all
		text := func(a arrow.Array, i int) []byte { return strconv.AppendUint(nil, a.(*array.Uint64).Value(i), 10) }
		return pgColumn{oid: oidNumeric, size: -1, text: text,
			bin: func(a arrow.Array, i int) []byte { return pgNumeric(text(a, i)) }}
	case *arrow.Float32Type:
		return floatColumn(oidFloat4, func(a arrow.Array, i int) float64 { return float64(a.(*array.Float32).Value(i)) })
	case *arrow.Float64Type:
		return floatColumn(oidFloat8, func(a arrow.Array, i int) float64 { return a.(*array.Float64).Value(i) })
	case *arrow.StringType:
		return pgColumn{oid: oidText, size: -1,
			text: func(a arrow.Array, i int) []byte { return []byte(a.(*array.String).Value(i)) },
			bin:  func(a arrow.Array, i int) []byte { return []byte(a.(*array.String).Value(i)) }}
	case *arrow.BinaryType:
		return pgColumn{oid: oidBytea, size: -1,
			text: func(a arrow.Array, i int) []byte {
				return []byte(`\x` + hexString(a.(*array.Binary).Value(i)))
			},
			bin: func(a arrow.Array, i int) []byte { return append([]byte(nil), a.(*array.Binary).Value(i)...) }}
	case *arrow.Time64Type: // a time of day, in PostgreSQL's time (it was text, 01:02:03.000000)
		micros := func(a arrow.Array, i int) int64 {
			v := int64(a.(*array.Time64).Value(i))
			if t.Unit == arrow.Nanosecond {
				v /= 1000
			}
			return v
		}
		return pgColumn{oid: oidTime, size: 8,
			text: func(a arrow.Array, i int) []byte { return appendPGTime(nil, micros(a, i)) },
			bin:  func(a arrow.Array, i int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(micros(a, i))) }}
	case *arrow.Date32Type:
		return pgColumn{oid: oidDate, size: 4,
			text: func(a arrow.Array, i int) []byte {
				d := a.(*array.Date32).Value(i)
				if int32(d) == math.MaxInt32 || int32(d) <= -math.MaxInt32 {
					return appendDate(nil, d) // the infinities
				}
				return pgTimeText(d.ToTime(), time.DateOnly)
			},
			bin: func(a arrow.Array, i int) []byte {
				days := int32(a.(*array.Date32).Value(i))
				switch days {
				case math.MaxInt32: // infinity, as in PostgreSQL
				case -math.MaxInt32, math.MinInt32:
					days = math.MinInt32
				default:
					// Past PostgreSQL's range: an infinity, not a date a
					// client refuses (or, wrapped, one far ahead).
					switch rel := int64(days) - pgEpoch.Unix()/86400; {
					case rel < pgMinDays:
						days = math.MinInt32
					case rel >= pgEndDays:
						days = math.MaxInt32
					default:
						days = int32(rel)
					}
				}
				return binary.BigEndian.AppendUint32(nil, uint32(days))
			}}
	case *arrow.TimestampType:
		oid, layout := uint32(oidTimestamp), "2006-01-02 15:04:05.999999"
		if t.TimeZone != "" {
			oid, layout = oidTimestamptz, "2006-01-02 15:04:05.999999-07"
		}
		unit := t.Unit
		return pgColumn{oid: oid, size: 8,
			text: func(a arrow.Array, i int) []byte {
				v := a.(*array.Timestamp).Value(i)
				switch int64(v) {
				case math.MaxInt64:
					return []byte("infinity")
				case -math.MaxInt64, math.MinInt64: // DuckDB's -infinity
					return []byte("-infinity")
				}
				return pgTimeText(v.ToTime(unit).UTC(), layout)
			},
			bin: func(a arrow.Array, i int) []byte {
				return binary.BigEndian.AppendUint64(nil, uint64(pgMicros(int64(a.(*array.Timestamp).Value(i)), unit)))
			}}
	case *arrow.MonthDayNanoIntervalType:
		return pgColumn{oid: oidInterval, size: 16,
			text: func(a arrow.Array, i int) []byte {
				return appendPGInterval(nil, a.(*array.MonthDayNanoInterval).Value(i))
			},
			bin: func(a arrow.Array, i int) []byte {
				v := a.(*array.MonthDayNanoInterval).Value(i)
				b := binary.BigEndian.AppendUint64(nil, uint64(v.Nanoseconds/1000))
				b = binary.BigEndian.AppendUint32(b, uint32(v.Days))
				return binary.BigEndian.AppendUint32(b, uint32(v.Months))
			}}
	case *arrow.Decimal128Type:
		return pgColumn{oid: oidNumeric, size: -1,
			text: func(a arrow.Array, i int) []byte { return appendDecimal(nil, a.(*array.Decimal128).Value(i), t.Scale) },
			bin: func(a arrow.Array, i int) []byte {
				return pgNumeric(appendDecimal(nil, a.(*array.Decimal128).Value(i), t.Scale))
			}}
	case arrow.ListLikeType:
		if c, ok := pgArrayColumn(t); ok {
			return c
		}
	case arrow.ExtensionType:
		c := pgColumnFor(t.StorageType())
		if t.ExtensionName() == "arrow.json" {
			c.oid = oidJSON // its text, as JSON: pgx decodes it into maps and structs
		}
		text, bin := c.text, c.bin
		c.text = func(a arrow.Array, i int) []byte { return text(a.(array.ExtensionArray).Storage(), i) }
		if bin != nil {
			c.bin = func(a arrow.Array, i int) []byte { return bin(a.(array.ExtensionArray).Storage(), i) }
		}
		return c
	}
	// Anything else as text, whose binary form is the same bytes: a client
	// that asks for binary gets what it asked for.
	text := func(a arrow.Array, i int) []byte {
		if s, ok := a.(*array.String); ok {
			return []byte(s.Value(i))
		}
		b := encoderFor(a)(nil, i)
		if len(b) >= 2 && b[0] == '"' {
			// A JSON string: send its text, not its quotes.
			if s, err := strconv.Unquote(string(b)); err == nil {
				return []byte(s)
			}
		}
		return b
	}
	return pgColumn{oid: oidText, size: -1, text: text, bin: text}
}

// pgArrayColumn sends a list of scalars (histogram_bucket_counts, tags)
// as the PostgreSQL array \d says it is: {1,2,3} in text, PostgreSQL's
// array layout in binary, so clients decode it into a slice. Lists of
// other lists, structs or JSON go as JSON text (ok false).
func pgArrayColumn(t arrow.ListLikeType) (pgColumn, bool) {
	switch t.Elem().ID() {
	case arrow.BOOL, arrow.INT8, arrow.INT16, arrow.INT32, arrow.INT64, arrow.UINT8, arrow.UINT16, arrow.UINT32, arrow.UINT64,
		arrow.FLOAT32, arrow.FLOAT64, arrow.STRING, arrow.DATE32, arrow.TIMESTAMP, arrow.DECIMAL128, arrow.INTERVAL_MONTH_DAY_NANO:
	default:
		return pgColumn{}, false
	}
	elem := pgColumnFor(t.Elem())
	oid, ok := arrayOIDs[elem.oid]
	if !ok || elem.bin == nil {
		return pgColumn{}, false
	}
	return pgColumn{oid: oid, size: -1,
		text: func(a arrow.Array, i int) []byte {
			l := a.(array.ListLike)
			vals := l.ListValues()
			from, to := l.ValueOffsets(i)
			b := []byte{'{'}
			for j := from; j < to; j++ {
				if j > from {
					b = append(b, ',')
				}
				if v := int(j); vals.IsNull(v) {
					b = append(b, "NULL"...)
				} else {
					b = appendArrayElem(b, elem.text(vals, v))
				}
			}
			return append(b, '}')
		},
		bin: func(a arrow.Array, i int) []byte {
			l := a.(array.ListLike)
			vals := l.ListValues()
			from, to := l.ValueOffsets(i)
			hasNull := uint32(0)
			for j := from; j < to; j++ {
				if vals.IsNull(int(j)) {
					hasNull = 1
				}
			}
			dims := uint32(1)
			if to == from {
				dims = 0 // PostgreSQL's empty array has no dimensions
			}
			b := binary.BigEndian.AppendUint32(nil, dims)
			b = binary.BigEndian.AppendUint32(b, hasNull)
			b = binary.BigEndian.AppendUint32(b, elem.oid)
			if dims == 1 {
				b = binary.BigEndian.AppendUint32(b, uint32(to-from))
				b = binary.BigEndian.AppendUint32(b, 1) // lower bound
			}
			for j := from; j < to; j++ {
				if vals.IsNull(int(j)) {
					b = binary.BigEndian.AppendUint32(b, math.MaxUint32) // -1: NULL
					continue
				}
				v := elem.bin(vals, int(j))
				b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
				b = append(b, v...)
			}
			return b
		}}, true
}

// appendArrayElem writes one element of an array's text form, quoted as
// PostgreSQL quotes it: when empty, NULL, or holding a brace, comma,
// quote, backslash or space.
func appendArrayElem(b, v []byte) []byte {
	if len(v) > 0 && !bytes.ContainsAny(v, "{},\"\\ \t\n\r\v\f") && !strings.EqualFold(string(v), "NULL") {
		return append(b, v...)
	}
	b = append(b, '"')
	for _, c := range v {
		if c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, c)
	}
	return append(b, '"')
}

func intColumn(oid uint32, size int16, get func(arrow.Array, int) int64) pgColumn {
	return pgColumn{oid: oid, size: size,
		text: func(a arrow.Array, i int) []byte { return strconv.AppendInt(nil, get(a, i), 10) },
		bin: func(a arrow.Array, i int) []byte {
			v := get(a, i)
			switch size {
			case 2:
				return binary.BigEndian.AppendUint16(nil, uint16(v))
			case 4:
				return binary.BigEndian.AppendUint32(nil, uint32(v))
			}
			return binary.BigEndian.AppendUint64(nil, uint64(v))
		}}
}

func floatColumn(oid uint32, get func(arrow.Array, int) float64) pgColumn {
	size := int16(8)
	if oid == oidFloat4 {
		size = 4
	}
	return pgColumn{oid: oid, size: size,
		text: func(a arrow.Array, i int) []byte {
			v := get(a, i)
			if name := floatName(v); name != "" {
				return []byte(name)
			}
			return appendPGFloat(nil, v, int(size)*8)
		},
		bin: func(a arrow.Array, i int) []byte {
			if size == 4 {
				return binary.BigEndian.AppendUint32(nil, math.Float32bits(float32(get(a, i))))
			}
			return binary.BigEndian.AppendUint64(nil, math.Float64bits(get(a, i)))
		}}
}

// appendPGFloat writes a float as PostgreSQL does: the shortest text that
// reads back exactly, in positional notation unless the decimal exponent
// is below -4 or at least 15 (100000000, not 1e+08).
func appendPGFloat(b []byte, v float64, bits int) []byte {
	e := strconv.AppendFloat(nil, v, 'e', -1, bits)
	exp, _ := strconv.Atoi(string(e[bytes.IndexByte(e, 'e')+1:]))
	digits := 15 // DBL_DIG, and FLT_DIG for a real: where PostgreSQL switches to an exponent
	if bits == 32 {
		digits = 6
	}
	if exp < -4 || exp >= digits {
		return append(b, e...)
	}
	return strconv.AppendFloat(b, v, 'f', -1, bits)
}

func hexString(b []byte) string {
	out := make([]byte, len(b)*2)
	for i, c := range b {
		out[2*i], out[2*i+1] = hexDigits[c>>4], hexDigits[c&0xf]
	}
	return string(out)
}

// appendPGInterval writes an interval as PostgreSQL does (IntervalStyle
// postgres): "1 year 2 mons 3 days 04:05:06.789", "-1 days +01:00:00",
// "00:00:00" for none; PostgreSQL keeps microseconds.
func appendPGInterval(b []byte, v arrow.MonthDayNanoInterval) []byte {
	zero, before := true, false
	part := func(n int64, unit string) {
		if n == 0 {
			return
		}
		if !zero {
			b = append(b, ' ')
		}
		if before && n > 0 {
			b = append(b, '+')
		}
		b = strconv.AppendInt(b, n, 10)
		b = append(b, ' ')
		b = append(b, unit...)
		if n != 1 {
			b = append(b, 's')
		}
		before, zero = n < 0, false
	}
	part(int64(v.Months/12), "year")
	part(int64(v.Months%12), "mon")
	part(int64(v.Days), "day")
	micros := v.Nanoseconds / 1000
	if !zero && micros == 0 {
		return b
	}
	if !zero {
		b = append(b, ' ')
	}
	if micros < 0 {
		b, micros = append(b, '-'), -micros
	} else if before {
		b = append(b, '+')
	}
	return appendPGTime(b, micros)
}

// appendPGTime writes a time of day (or an interval's time) in
// microseconds as PostgreSQL does: HH:MM:SS, and a fraction only if there
// is one, without its trailing zeros.
func appendPGTime(b []byte, micros int64) []byte {
	s := micros / 1_000_000
	b = appendTwo(b, s/3600)
	b = appendTwo(append(b, ':'), s/60%60)
	b = appendTwo(append(b, ':'), s%60)
	if f := micros % 1_000_000; f != 0 {
		frac := strconv.AppendInt(nil, 1_000_000+f, 10)[1:] // six digits
		b = append(append(b, '.'), bytes.TrimRight(frac, "0")...)
	}
	return b
}

// appendTwo writes n with at least two digits.
func appendTwo(b []byte, n int64) []byte {
	if n < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, n, 10)
}

// pgTypeName names a type as PostgreSQL does: format_type's name (psql's
// \d, information_schema's data_type: "double precision") and pg_type's
// (information_schema's udt_name: "float8"; "_text" for text[]).
func pgTypeName(t arrow.DataType) (name, udt string) {
	switch t := t.(type) {
	case arrow.ExtensionType:
		if t.ExtensionName() == "arrow.json" {
			return "json", "json"
		}
		return pgTypeName(t.StorageType())
	case *arrow.ListType:
		name, udt := pgTypeName(t.Elem())
		return name + "[]", "_" + udt
	}
	if n, ok := pgTypeNames[pgColumnFor(t).oid]; ok {
		return n[0], n[1]
	}
	return "text", "text"
}

// pgTypeNames are the format_type and pg_type names of the type OIDs
// strata sends.
var pgTypeNames = map[uint32][2]string{
	oidBool: {"boolean", "bool"}, oidInt2: {"smallint", "int2"}, oidInt4: {"integer", "int4"}, oidInt8: {"bigint", "int8"},
	oidFloat4: {"real", "float4"}, oidFloat8: {"double precision", "float8"}, oidBytea: {"bytea", "bytea"}, oidDate: {"date", "date"},
	oidTimestamp: {"timestamp without time zone", "timestamp"}, oidTimestamptz: {"timestamp with time zone", "timestamptz"},
	oidInterval: {"interval", "interval"}, oidText: {"text", "text"}, oidVarchar: {"character varying", "varchar"},
	oidNumeric: {"numeric", "numeric"}, oidJSON: {"json", "json"}, oidTime: {"time without time zone", "time"},
}

// pgNames are the names PostgreSQL gives the columns of a parsed
// statement where no alias names them: "count" for count(*), the column
// for a column or its cast, "case", and "?column?" for other expressions.
// DuckDB names a column after its expression ("count_star()",
// "(1 + 1)"), which Grafana's legends and table headers would show. Nil
// when the columns cannot be told from the statement (SELECT *, PIVOT…).
func pgNames(stmt any) []string {
	node := nodeOf(stmt)
	for node != nil && node["type"] == "SET_OPERATION_NODE" {
		node, _ = node["left"].(map[string]any) // a UNION's names are its first query's
	}
	if node == nil || node["type"] != "SELECT_NODE" {
		return nil
	}
	list, _ := node["select_list"].([]any)
	if len(list) == 1 {
		if sub := starOverSubquery(list[0], node["from_table"]); sub != nil {
			return pgNames(sub) // SELECT * FROM (…) v: the subquery's names
		}
		if n := valuesColumns(list[0], node["from_table"]); n > 0 {
			// VALUES, or SELECT * FROM (VALUES …) v: PostgreSQL names the
			// columns column1, column2…; DuckDB col0, col1…
			names := make([]string, n)
			for i := range names {
				names[i] = "column" + strconv.Itoa(i+1)
			}
			return names
		}
	}
	names := make([]string, 0, len(list))
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m == nil || m["class"] == "STAR" {
			return nil
		}
		if alias, _ := m["alias"].(string); alias != "" {
			names = append(names, alias)
		} else {
			names = append(names, figureName(m))
		}
	}
	return names
}

// starOverSubquery is the subquery a plain * reads, when FROM is one
// subquery without column names (nil: not that).
func starOverSubquery(sel, from any) any {
	s, _ := sel.(map[string]any)
	f, _ := from.(map[string]any)
	if s == nil || f == nil || s["class"] != "STAR" || f["type"] != "SUBQUERY" {
		return nil
	}
	if cols, _ := f["column_name_alias"].([]any); len(cols) > 0 {
		return nil
	}
	if ex, _ := s["exclude_list"].([]any); len(ex) > 0 {
		return nil
	}
	for _, k := range []string{"replace_list", "rename_list"} {
		if l, _ := s[k].([]any); len(l) > 0 {
			return nil
		}
	}
	return f["subquery"]
}

// valuesColumns is how many columns a plain * over a VALUES list without
// column names has (0: not that).
func valuesColumns(sel, from any) int {
	s, _ := sel.(map[string]any)
	f, _ := from.(map[string]any)
	if s == nil || f == nil || s["class"] != "STAR" || f["type"] != "EXPRESSION_LIST" {
		return 0
	}
	if cols, _ := f["column_name_alias"].([]any); len(cols) > 0 {
		return 0
	}
	if ex, _ := s["exclude_list"].([]any); len(ex) > 0 {
		return 0
	}
	rows, _ := f["values"].([]any)
	if len(rows) == 0 {
		return 0
	}
	first, _ := rows[0].([]any)
	return len(first)
}

// foldUnquoted lower-cases the names written without quotes in sql, as
// PostgreSQL folds unquoted identifiers (SELECT 1 AS Foo names its column
// foo; DuckDB keeps Foo), in ASCII only as PostgreSQL does in UTF-8. A
// name sql holds as a quoted identifier (not in a string or a comment)
// keeps its case.
func foldUnquoted(names []string, sql string) []string {
	var b string
	for i, n := range names {
		l := asciiLower(n)
		if l == n {
			continue
		}
		if b == "" {
			b = engine.BlankLiterals(sql)
		}
		if !strings.Contains(b, `"`+strings.ReplaceAll(n, `"`, `""`)+`"`) {
			names[i] = l
		}
	}
	return names
}

// nodeOf is the query node of a parsed statement.
func nodeOf(stmt any) map[string]any {
	m, _ := stmt.(map[string]any)
	node, _ := m["node"].(map[string]any)
	return node
}

// figureName names an expression as PostgreSQL's FigureColname does.
func figureName(m map[string]any) string {
	switch m["class"] {
	case "COLUMN_REF":
		if names, _ := m["column_names"].([]any); len(names) > 0 {
			if n, ok := names[len(names)-1].(string); ok {
				return n
			}
		}
	case "FUNCTION":
		if op, _ := m["is_operator"].(bool); op {
			break
		}
		switch n, _ := m["function_name"].(string); n {
		case "count_star":
			return "count"
		case "quantile_cont", "quantile_disc":
			// DuckDB parses percentile_cont(f) WITHIN GROUP (ORDER BY x) as
			// quantile_cont(x, f) with the ORDER BY kept.
			if orders, _ := m["order_bys"].(map[string]any); orders != nil {
				if list, _ := orders["orders"].([]any); len(list) > 0 {
					return "percentile_" + strings.TrimPrefix(n, "quantile_")
				}
			}
			return n
		case jsonbFunc: // x::jsonb, rewritten by pgJSONBCasts
			if args, _ := m["children"].([]any); len(args) == 1 {
				if arg, ok := args[0].(map[string]any); ok {
					return figureName(arg)
				}
			}
		case "date_part", "trim":
			// DuckDB parses the SQL syntax EXTRACT(f FROM x) and TRIM(… FROM
			// x) into these functions qualified with main (written calls
			// are not), which PostgreSQL names extract and btrim.
			if m["schema"] == "main" {
				return map[string]string{"date_part": "extract", "trim": "btrim"}[n]
			}
			return n
		case "":
		default:
			return n
		}
	case "CAST":
		if child, _ := m["child"].(map[string]any); child != nil {
			if n := figureName(child); n != "?column?" {
				return n
			}
		}
		if ct, _ := m["cast_type"].(map[string]any); ct != nil {
			if n, ok := castNames[fmt.Sprint(ct["id"])]; ok {
				return n
			}
			if oid := castOID(ct); oid == oidJSON { // json or jsonb, as written
				info, _ := ct["type_info"].(map[string]any)
				return strings.ToLower(fmt.Sprint(info["name"]))
			}
		}
	case "OPERATOR":
		if m["type"] == "OPERATOR_COALESCE" {
			return "coalesce"
		}
	case "SUBQUERY":
		switch m["subquery_type"] {
		case "EXISTS":
			return "exists"
		case "SCALAR": // named by its one column
			if names := pgNames(m["subquery"]); len(names) == 1 {
				return names[0]
			}
		}
	case "CASE":
		return "case"
	case "WINDOW": // row_number() OVER (…)
		if n, _ := m["function_name"].(string); n != "" {
			return n
		}
	}
	return "?column?"
}

// castNames name a cast constant's column by its type, as PostgreSQL does
// ('1'::int is "int4").
var castNames = map[string]string{
	"BOOLEAN": "bool", "SMALLINT": "int2", "INTEGER": "int4", "BIGINT": "int8", "FLOAT": "float4", "DOUBLE": "float8",
	"DECIMAL": "numeric", "VARCHAR": "text", "DATE": "date", "TIMESTAMP": "timestamp",
	"TIMESTAMP WITH TIME ZONE": "timestamptz", "INTERVAL": "interval", "TIME": "time",
}

// withNames is s with its fields renamed to names, when there is one for
// each field.
func withNames(s *arrow.Schema, names []string) *arrow.Schema {
	if len(names) != s.NumFields() {
		return s
	}
	fields := slices.Clone(s.Fields())
	for i := range fields {
		fields[i].Name = names[i]
	}
	return arrow.NewSchema(fields, nil)
}
