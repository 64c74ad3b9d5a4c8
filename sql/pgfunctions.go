package sql

import (
	"database/sql/driver"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/strata-db/strata/engine"
)

// Setup gives the query engine (engine.Options.Setup) PostgreSQL names
// DuckDB lacks, for queries written for PostgreSQL: the jsonb type (as
// JSON; its operators are among Functions), date_bin, which is
// time_bucket with an origin, current_user, div, array_lower and
// array_upper, and the JSON functions of jsonFunctions.
var Setup = append([]string{
	"CREATE TYPE jsonb AS JSON",
	"CREATE MACRO date_bin(stride, source, origin) AS time_bucket(stride, source, origin)",
	// The role pg_roles and pg_user list, not DuckDB's "duckdb".
	"CREATE MACRO current_user() AS 'strata'",
	"CREATE MACRO session_user() AS 'strata'",
	`CREATE MACRO "user"() AS 'strata'`,
	// Integer division (as a double; PostgreSQL's is numeric), and the
	// bounds of a one-dimensional array: 1 and its length, NULL when
	// empty or for another dimension.
	"CREATE MACRO div(y, x) AS trunc(y / x)",
	"CREATE MACRO array_lower(a, d) AS CASE WHEN d = 1 AND len(a) > 0 THEN 1 END",
	"CREATE MACRO array_upper(a, d) AS CASE WHEN d = 1 AND len(a) > 0 THEN len(a) END",
}, jsonFunctions()...)

// maxJSONArgs is how many keys (or key-value pairs) the variadic JSON
// functions take here: PostgreSQL takes up to 100 arguments, DuckDB's
// macros have one overload per count.
const maxJSONArgs = 24

// jsonFunctions are PostgreSQL's json and jsonb functions under their
// names, as macros over DuckDB's JSON functions, for queries written for
// PostgreSQL (json_build_object failed with "does not exist"). Both
// names of each take JSON, as jsonb is JSON here:
//   - json_build_object(k, v, …): json_object, with PostgreSQL's error
//     for an odd number of arguments;
//   - json_extract_path(j, k, …), json_extract_path_text: each key is a
//     key or, on an array, an index, as in PostgreSQL (a JSON pointer:
//     DuckDB would read '$…' and '/…' as paths, and '1' as a key);
//   - json_typeof: json_type's answer in PostgreSQL's words;
//   - json_array_length (an integer, as in PostgreSQL), to_jsonb;
//   - the set-returning json_object_keys, json_array_elements[_text]
//     (in the select list, and in FROM) and json_each[_text] (in FROM);
//   - json_object_agg(k, v): json_group_object, without DISTINCT, ORDER
//     BY or FILTER (a macro's call takes none of them).
//
// json_agg is rewritten instead, to take them (pgJSONAggregates).
func jsonFunctions() []string {
	// pointer is the JSON pointer of keys: a step of each, ~ and /
	// escaped, NULL if one is (list_reduce keeps ||'s NULL). One lambda
	// over the keys, rather than a step written out for each, is a
	// quarter of the text for DuckDB to bind at start (8 ms a macro).
	pointer := func(keys []string) string {
		return "list_reduce(list_transform([" + strings.Join(keys, ", ") + "], lambda k: " + keyPointer + "), lambda a, b: a || b)"
	}
	var out []string
	for _, prefix := range []string{"json", "jsonb"} {
		define := func(name string, overloads []string) {
			out = append(out, "CREATE MACRO "+prefix+name+" "+strings.Join(overloads, ", "))
		}
		var build, path, text []string
		for n := 0; n <= maxJSONArgs; n++ {
			var pairs, cast, keys []string
			for i := 1; i <= n; i++ {
				pairs = append(pairs, fmt.Sprintf("k%d, v%d", i, i))
				cast = append(cast, fmt.Sprintf("k%d::VARCHAR, v%d", i, i)) // PostgreSQL's keys may be any type
				keys = append(keys, fmt.Sprintf("k%d", i))
			}
			build = append(build, fmt.Sprintf("(%s) AS json_object(%s)", strings.Join(pairs, ", "), strings.Join(cast, ", ")))
			if n < maxJSONArgs {
				build = append(build, fmt.Sprintf("(%s) AS error('argument list must have even number of elements')",
					strings.Join(append(pairs, fmt.Sprintf("k%d", n+1)), ", ")))
			}
			if n == 0 {
				continue
			}
			args := "(j, " + strings.Join(keys, ", ") + ")"
			ptr := pointer(keys)
			path = append(path, fmt.Sprintf("%s AS json_extract(j, %s)", args, ptr))
			text = append(text, fmt.Sprintf("%s AS json_extract_string(j, %s)", args, ptr))
		}
		define("_build_object", build)
		define("_extract_path", path)
		define("_extract_path_text", text)
		define("_typeof", []string{"(j) AS CASE WHEN j IS NULL THEN NULL ELSE CASE json_type(j) WHEN 'OBJECT' THEN 'object' " +
			"WHEN 'ARRAY' THEN 'array' WHEN 'VARCHAR' THEN 'string' WHEN 'BOOLEAN' THEN 'boolean' WHEN 'NULL' THEN 'null' " +
			"ELSE 'number' END END"})
		define("_object_keys", []string{"(j) AS unnest(json_keys(j))"})
		define("_array_elements", []string{"(j) AS unnest(CAST(j AS JSON[]))"})
		define("_array_elements_text", []string{"(j) AS unnest(CAST(j AS VARCHAR[]))"})
		for _, t := range jsonTables {
			out = append(out, "CREATE MACRO "+prefix+t.name+"(j) AS TABLE "+t.body(prefix))
		}
		define("_object_agg", []string{"(k, v) AS json_group_object(k, v)"})
		// PostgreSQL's length is an integer, DuckDB's a UBIGINT; the path
		// form is DuckDB's alone.
		define("_array_length", []string{"(j) AS system.main.json_array_length(j)::INTEGER",
			"(j, path) AS system.main.json_array_length(j, path)"})
	}
	out = append(out, "CREATE MACRO to_jsonb(x) AS to_json(x)")
	return out
}

// keyPointer is the JSON pointer of key k, ~ and / escaped: DuckDB would
// read a key that starts with $ or / as a path, '1' as a key where an
// array index is meant, and the empty key as the whole document. (k may
// be of any type: PostgreSQL's path keys are text.)
const keyPointer = "('/' || replace(replace(k::VARCHAR, '~', '~0'), '/', '~1'))"

// jsonTables are the set-returning JSON functions as table macros, for
// FROM (records, jsonb_each(attributes)), by their names after json or
// jsonb; the sandbox allows them (allowedTableFunctions).
var jsonTables = []struct {
	name string
	body func(prefix string) string
}{
	{"_each", func(string) string {
		return "SELECT k AS key, j->" + keyPointer + " AS value FROM (SELECT unnest(json_keys(j)) AS k)"
	}},
	{"_each_text", func(string) string {
		return "SELECT k AS key, j->>" + keyPointer + " AS value FROM (SELECT unnest(json_keys(j)) AS k)"
	}},
	{"_object_keys", func(prefix string) string { return "SELECT unnest(json_keys(j)) AS " + prefix + "_object_keys" }},
	{"_array_elements", func(string) string { return "SELECT unnest(CAST(j AS JSON[])) AS value" }},
	{"_array_elements_text", func(string) string { return "SELECT unnest(CAST(j AS VARCHAR[])) AS value" }},
}

// jsonAgg matches a call of json_agg or jsonb_agg, on text with literals,
// comments and quoted identifiers blanked; filterClause an aggregate's
// FILTER after it.
var (
	jsonAgg      = regexp.MustCompile(`(?i)\bjsonb?_agg\s*\(`)
	filterClause = regexp.MustCompile(`(?i)^\s*FILTER\s*\(`)
)

// pgJSONAggregates writes json_agg(…) and jsonb_agg(…) as
// to_json(list(…)), keeping what the call says (DISTINCT, ORDER BY, a
// FILTER after it), which a macro, DuckDB's json_group_array too, would
// not take.
func pgJSONAggregates(s string) string {
	if !strings.Contains(strings.ToLower(s), "_agg") {
		return s
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	var edits []edit
	for _, m := range jsonAgg.FindAllStringIndex(b, -1) {
		if m[0] > 0 && (engine.IsIdentByte(b[m[0]-1]) || b[m[0]-1] == '.') {
			continue // part of another name, or qualified: someone else's
		}
		end := matchForward(b, m[1]-1)
		if end < 0 {
			continue // DuckDB says what is wrong
		}
		if f := filterClause.FindStringIndex(b[end:]); f != nil {
			if end = matchForward(b, end+f[1]-1); end < 0 {
				continue
			}
		}
		edits = append(edits, edit{m[0], m[1], "to_json(list("}, edit{end, end, ")"})
	}
	return spliced(s, edits)
}

// Functions are PostgreSQL functions DuckDB lacks, for the query engine
// (engine.Options.Functions): to_char(timestamp, format), which queries
// and dashboards written for PostgreSQL use to label times, and jsonb's
// operators (jsonOperators).
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
	ops, err := jsonOperators()
	if err != nil {
		return nil, err
	}
	jsonb, err := jsonbFunction()
	if err != nil {
		return nil, err
	}
	return append(ops, jsonb, engine.Function{Name: "to_char", Overloads: overloads}), nil
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
		if hasPrefixFold(format[i:], "FM") {
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
// TH suffix may follow). It runs for every pattern of every row: the
// tables it reads are built once.
func templateField(t time.Time, s string, fm, zone bool) (string, int, bool) {
	for _, p := range nameFields {
		if !hasPrefixFold(s, p.pat) {
			continue
		}
		name := p.name(t)
		switch src := s[:len(p.pat)]; src {
		case p.pat:
			name = strings.ToUpper(name)
		case strings.ToLower(p.pat):
			name = strings.ToLower(name)
		case p.pat[:1] + strings.ToLower(p.pat[1:]):
		default:
			continue
		}
		if !fm && len(name) < p.width {
			name += strings.Repeat(" ", p.width-len(name))
		}
		return name, len(p.pat), false
	}
	for _, p := range []string{"A.M.", "P.M.", "AM", "PM"} {
		if hasPrefixFold(s, p) {
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
	switch {
	case hasPrefixFold(s, "TZ"):
		if !zone {
			return "", 2, false
		}
		if s[0] == 't' {
			return "utc", 2, false
		}
		return "UTC", 2, false
	case strings.HasPrefix(s, "Y,YYY") || strings.HasPrefix(s, "y,yyy"):
		return fmt.Sprintf("%d,%03d", t.Year()/1000, t.Year()%1000), 5, true
	case strings.HasPrefix(s, "OF") || strings.HasPrefix(s, "of"):
		return "+00", 2, false
	}
	for _, p := range numberFields {
		// PostgreSQL takes these in upper or lower case ("yyyy-mm-dd").
		if hasPrefixFold(s, p.pat) && oneCase(s[:len(p.pat)]) {
			v := p.value(t)
			if fm || p.width == 0 {
				return strconv.Itoa(v), len(p.pat), true
			}
			return fmt.Sprintf("%0*d", p.width, v), len(p.pat), true
		}
	}
	return "", 0, false
}

// hasPrefixFold says whether s starts with prefix, in any case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// oneCase says whether the letters of s are all upper or all lower case.
func oneCase(s string) bool {
	return s == strings.ToUpper(s) || s == strings.ToLower(s)
}

// nameFields are the patterns whose case sets the output's (MONTH,
// Month, month), and the width PostgreSQL pads them to without FM.
var nameFields = []struct {
	pat   string
	width int
	name  func(time.Time) string
}{
	{"MONTH", 9, func(t time.Time) string { return t.Month().String() }},
	{"MON", 0, func(t time.Time) string { return t.Month().String()[:3] }},
	{"DAY", 9, func(t time.Time) string { return t.Weekday().String() }},
	{"DY", 0, func(t time.Time) string { return t.Weekday().String()[:3] }},
}

// numberFields are the numeric patterns, longest first where one is the
// start of another, and the width PostgreSQL pads them to with zeros
// without FM (0: never padded).
var numberFields = []struct {
	pat   string
	width int
	value func(time.Time) int
}{
	{"HH24", 2, time.Time.Hour},
	{"HH12", 2, hour12},
	{"SSSSS", 0, secondOfDay},
	{"SSSS", 0, secondOfDay},
	{"YYYY", 4, time.Time.Year},
	{"IYYY", 4, isoYear},
	{"YYY", 3, func(t time.Time) int { return t.Year() % 1000 }},
	{"IYY", 3, func(t time.Time) int { return isoYear(t) % 1000 }},
	{"DDD", 3, time.Time.YearDay},
	{"HH", 2, hour12},
	{"MI", 2, time.Time.Minute},
	{"SS", 2, time.Time.Second},
	{"MS", 3, func(t time.Time) int { return t.Nanosecond() / 1e6 }},
	{"US", 6, func(t time.Time) int { return t.Nanosecond() / 1e3 }},
	{"YY", 2, func(t time.Time) int { return t.Year() % 100 }},
	{"IY", 2, func(t time.Time) int { return isoYear(t) % 100 }},
	{"CC", 2, func(t time.Time) int { return (t.Year() + 99) / 100 }},
	{"MM", 2, func(t time.Time) int { return int(t.Month()) }},
	{"DD", 2, time.Time.Day},
	{"ID", 0, func(t time.Time) int { return (int(t.Weekday())+6)%7 + 1 }},
	{"IW", 2, func(t time.Time) int { _, w := t.ISOWeek(); return w }},
	{"WW", 2, func(t time.Time) int { return (t.YearDay()-1)/7 + 1 }},
	{"Y", 0, func(t time.Time) int { return t.Year() % 10 }},
	{"I", 0, func(t time.Time) int { return isoYear(t) % 10 }},
	{"D", 0, func(t time.Time) int { return int(t.Weekday()) + 1 }},
	{"W", 0, func(t time.Time) int { return (t.Day()-1)/7 + 1 }},
	{"Q", 0, func(t time.Time) int { return (int(t.Month())-1)/3 + 1 }},
	{"J", 0, julianDay},
}

func hour12(t time.Time) int {
	if h := t.Hour() % 12; h != 0 {
		return h
	}
	return 12
}

func secondOfDay(t time.Time) int { return t.Hour()*3600 + t.Minute()*60 + t.Second() }

func isoYear(t time.Time) int {
	y, _ := t.ISOWeek()
	return y
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
