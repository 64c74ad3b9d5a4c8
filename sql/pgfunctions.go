package sql

import (
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/strata-db/strata/engine"
)

// Setup gives the query engine (engine.Options.Setup) PostgreSQL names
// DuckDB lacks, for queries written for PostgreSQL: the jsonb type (as
// JSON: its operators @> and ? are not there) and date_bin, which is
// time_bucket with an origin.
var Setup = []string{
	"CREATE TYPE jsonb AS JSON",
	"CREATE MACRO date_bin(stride, source, origin) AS time_bucket(stride, source, origin)",
}

// Functions are PostgreSQL functions DuckDB lacks, for the query engine
// (engine.Options.Functions): to_char(timestamp, format), which queries
// and dashboards written for PostgreSQL use to label times.
func Functions() ([]engine.Function, error) {
	text, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		return nil, err
	}
	var overloads []duckdb.ScalarFunc
	for _, t := range []duckdb.Type{duckdb.TYPE_TIMESTAMP_TZ, duckdb.TYPE_TIMESTAMP, duckdb.TYPE_DATE} {
		in, err := duckdb.NewTypeInfo(t)
		if err != nil {
			return nil, err
		}
		// A timestamp without time zone has no zone for TZ to name; a date
		// is taken as timestamptz, PostgreSQL's preferred cast.
		overloads = append(overloads, toCharFunc{in: in, text: text, zone: t != duckdb.TYPE_TIMESTAMP})
	}
	return []engine.Function{{Name: "to_char", Overloads: overloads}}, nil
}

type toCharFunc struct {
	in, text duckdb.TypeInfo
	zone     bool
}

func (f toCharFunc) Config() duckdb.ScalarFuncConfig {
	return duckdb.ScalarFuncConfig{InputTypeInfos: []duckdb.TypeInfo{f.in, f.text}, ResultTypeInfo: f.text}
}

func (f toCharFunc) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) {
		t, ok := v[0].(time.Time)
		format, ok2 := v[1].(string)
		if !ok || !ok2 {
			return nil, fmt.Errorf("to_char: want a timestamp and a format, got %T and %T", v[0], v[1])
		}
		return toChar(t.UTC(), format, f.zone), nil
	}}
}

// toChar formats t as PostgreSQL's to_char does with a date/time template
// (the session time zone is UTC; zone is false for a timestamp without
// one, whose TZ is empty). Supported: HH HH12 HH24 MI SS MS US
// SSSS SSSSS AM PM A.M. P.M. Y,YYY YYYY YYY YY Y IYYY IYY IY I CC MONTH
// MON MM DAY DY DDD DD D ID IW WW W Q J TZ OF, in the cases PostgreSQL
// accepts; the FM prefix, the TH suffix and "quoted text". Anything else
// is copied, as PostgreSQL copies it.
func toChar(t time.Time, format string, zone bool) string {
	var b strings.Builder
	for i := 0; i < len(format); {
		if format[i] == '"' { // quoted text, with \" inside
			for i++; i < len(format) && format[i] != '"'; i++ {
				if format[i] == '\\' && i+1 < len(format) {
					i++
				}
				b.WriteByte(format[i])
			}
			i++
			continue
		}
		if format[i] == '\\' && i+1 < len(format) {
			b.WriteByte(format[i+1])
			i += 2
			continue
		}
		fm := false
		if strings.HasPrefix(strings.ToUpper(format[i:]), "FM") {
			fm, i = true, i+2
		}
		out, n, numeric := templateField(t, format[i:], fm, zone)
		if n == 0 {
			if fm {
				continue // a lone FM prints nothing
			}
			b.WriteByte(format[i])
			i++
			continue
		}
		b.WriteString(out)
		i += n
		if rest := format[i:]; numeric && (strings.HasPrefix(rest, "TH") || strings.HasPrefix(rest, "th")) {
			suffix := ordinal(out)
			if rest[0] == 'T' {
				suffix = strings.ToUpper(suffix)
			}
			b.WriteString(suffix)
			i += 2
		}
	}
	return b.String()
}

// templateField formats the template pattern that starts s, if one does:
// its text, the bytes of s it took, and whether it is a number (which a
// TH suffix may follow).
func templateField(t time.Time, s string, fm, zone bool) (string, int, bool) {
	num := func(v, width int) string {
		if fm {
			return strconv.Itoa(v)
		}
		return fmt.Sprintf("%0*d", width, v)
	}
	word := func(w string, width int) string {
		if !fm && len(w) < width {
			w += strings.Repeat(" ", width-len(w))
		}
		return w
	}
	upper := strings.ToUpper(s)
	isoYear, isoWeek := t.ISOWeek()
	hour12 := t.Hour() % 12
	if hour12 == 0 {
		hour12 = 12
	}
	// Names whose case sets the output's: MONTH, Month, month.
	for _, p := range []struct {
		pat   string
		width int
		name  string
	}{
		{"MONTH", 9, t.Month().String()}, {"MON", 0, t.Month().String()[:3]},
		{"DAY", 9, t.Weekday().String()}, {"DY", 0, t.Weekday().String()[:3]},
	} {
		if strings.HasPrefix(upper, p.pat) {
			switch src := s[:len(p.pat)]; src {
			case p.pat:
				return word(strings.ToUpper(p.name), p.width), len(src), false
			case strings.ToLower(p.pat):
				return word(strings.ToLower(p.name), p.width), len(src), false
			case p.pat[:1] + strings.ToLower(p.pat[1:]):
				return word(p.name, p.width), len(src), false
			}
		}
	}
	for _, p := range []string{"A.M.", "P.M.", "AM", "PM"} {
		if strings.HasPrefix(upper, p) {
			mark := "AM"
			if t.Hour() >= 12 {
				mark = "PM"
			}
			if strings.Contains(p, ".") {
				mark = mark[:1] + "." + mark[1:] + "."
			}
			if s[0] >= 'a' {
				mark = strings.ToLower(mark)
			}
			return mark, len(p), false
		}
	}
	if strings.HasPrefix(upper, "TZ") {
		if !zone {
			return "", 2, false
		}
		if s[0] == 't' {
			return "utc", 2, false
		}
		return "UTC", 2, false
	}
	numbers := []struct {
		pat string
		v   func() string
	}{
		{"Y,YYY", func() string { return fmt.Sprintf("%d,%03d", t.Year()/1000, t.Year()%1000) }},
		{"HH24", func() string { return num(t.Hour(), 2) }},
		{"HH12", func() string { return num(hour12, 2) }},
		{"SSSSS", func() string { return strconv.Itoa(t.Hour()*3600 + t.Minute()*60 + t.Second()) }},
		{"SSSS", func() string { return strconv.Itoa(t.Hour()*3600 + t.Minute()*60 + t.Second()) }},
		{"YYYY", func() string { return num(t.Year(), 4) }},
		{"IYYY", func() string { return num(isoYear, 4) }},
		{"YYY", func() string { return num(t.Year()%1000, 3) }},
		{"IYY", func() string { return num(isoYear%1000, 3) }},
		{"DDD", func() string { return num(t.YearDay(), 3) }},
		{"HH", func() string { return num(hour12, 2) }},
		{"MI", func() string { return num(t.Minute(), 2) }},
		{"SS", func() string { return num(t.Second(), 2) }},
		{"MS", func() string { return num(t.Nanosecond()/1e6, 3) }},
		{"US", func() string { return num(t.Nanosecond()/1e3, 6) }},
		{"YY", func() string { return num(t.Year()%100, 2) }},
		{"IY", func() string { return num(isoYear%100, 2) }},
		{"CC", func() string { return num((t.Year()+99)/100, 2) }},
		{"MM", func() string { return num(int(t.Month()), 2) }},
		{"DD", func() string { return num(t.Day(), 2) }},
		{"ID", func() string { return strconv.Itoa((int(t.Weekday())+6)%7 + 1) }},
		{"IW", func() string { return num(isoWeek, 2) }},
		{"WW", func() string { return num((t.YearDay()-1)/7+1, 2) }},
		{"OF", func() string { return "+00" }},
		{"Y", func() string { return strconv.Itoa(t.Year() % 10) }},
		{"I", func() string { return strconv.Itoa(isoYear % 10) }},
		{"D", func() string { return strconv.Itoa(int(t.Weekday()) + 1) }},
		{"W", func() string { return strconv.Itoa((t.Day()-1)/7 + 1) }},
		{"Q", func() string { return strconv.Itoa((int(t.Month())-1)/3 + 1) }},
		{"J", func() string { return strconv.Itoa(julianDay(t)) }},
	}
	for _, p := range numbers {
		// PostgreSQL takes these in upper or lower case ("yyyy-mm-dd").
		if strings.HasPrefix(s, p.pat) || strings.HasPrefix(s, strings.ToLower(p.pat)) {
			return p.v(), len(p.pat), true
		}
	}
	return "", 0, false
}

// julianDay is the Julian day number of t's date.
func julianDay(t time.Time) int {
	days := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC).Unix() / 86400
	return int(days) + 2440588 // 1970-01-01 is Julian day 2,440,588
}

// ordinal is the English ordinal suffix of a number's text.
func ordinal(n string) string {
	if len(n) >= 2 && n[len(n)-2] == '1' {
		return "th"
	}
	switch n[len(n)-1] {
	case '1':
		return "st"
	case '2':
		return "nd"
	case '3':
		return "rd"
	}
	return "th"
}
