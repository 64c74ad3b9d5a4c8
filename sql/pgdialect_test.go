package sql

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-db/strata/engine"
)

func TestPgArrows_BindTighterThanComparisons(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT 1 WHERE kind = 'span' AND attributes->>'http.route' = '/x'`,
			`SELECT 1 WHERE kind = 'span' AND (attributes->>'http.route') = '/x'`},
		{`a AND r.attributes ->> 'k' IS NOT NULL`, `a AND (r.attributes ->> 'k') IS NOT NULL`},
		{`a AND "attributes"->'http'->>'route' LIKE '/u%'`, `a AND (("attributes"->'http')->>'route') LIKE '/u%'`},
		{`x AND '{"a":1}'::JSON->>'a' = '1'`, `x AND ('{"a":1}'::JSON->>'a') = '1'`},
		{`x AND json(y)->>$1 = $2 OR z[1]->0 = 'q'`, `x AND (json(y)->>$1) = $2 OR (z[1]->0) = 'q'`},
		{`x AND a->>-1 = 'q' AND a->>(b || 'c') = 'd' AND a->>col = 'e'`, `x AND (a->>-1) = 'q' AND (a->>(b || 'c')) = 'd' AND (a->>col) = 'e'`},
		{`SELECT attributes->>$$http.route$$, a->$t$k$t$ = 'v'`, `SELECT (attributes->>$$http.route$$), (a->$t$k$t$) = 'v'`},
		// A call on the right: its arguments too (QA: (a->>concat)('u', 'ni')).
		{`SELECT 1 WHERE a->>concat('u', 'ni') = 'x' AND b->>s.f (1) = 'y'`, `SELECT 1 WHERE (a->>concat('u', 'ni')) = 'x' AND (b->>s.f (1)) = 'y'`},
		// Already in parentheses, or the whole argument of a call: as written.
		{`a AND (attributes->>'k') = 'v'`, `a AND (attributes->>'k') = 'v'`},
		{`SELECT lower(attributes->>'k')`, `SELECT lower(attributes->>'k')`},
		// Lambdas, and arrows inside strings, comments and quoted names, are left alone.
		{`SELECT list_transform(l, x -> x + 1)`, `SELECT list_transform(l, x -> x + 1)`},
		// A lambda's body that starts with a literal (QA: x -> 2 * x became (x -> 2) * x).
		{`SELECT list_transform(l, x -> 2 * x), list_filter(l, x -> 1 < x), array_transform(l, x->'v' || x)`,
			`SELECT list_transform(l, x -> 2 * x), list_filter(l, x -> 1 < x), array_transform(l, x->'v' || x)`},
		{`SELECT list_reduce(l, (a, b) -> 0 + a + b), list_transform(l, x -> list_filter(x, y -> -1 < y))`,
			`SELECT list_reduce(l, (a, b) -> 0 + a + b), list_transform(l, x -> list_filter(x, y -> -1 < y))`},
		// An arrow in another argument of a lambda function is JSON's (review).
		{`SELECT filter(attributes->>'k' = 'v', x -> x), list_reduce(l, (a, b) -> a + b, j->>'i' = 'x')`,
			`SELECT filter((attributes->>'k') = 'v', x -> x), list_reduce(l, (a, b) -> a + b, (j->>'i') = 'x')`},
		// An argument of another function is a JSON arrow.
		{`SELECT coalesce(attributes -> 0, x) = 1, lower(a->>'k' || 'z')`, `SELECT coalesce((attributes -> 0), x) = 1, lower((a->>'k') || 'z')`},
		{`SELECT 'a->>''b'' = c' AND "x->y" = 1 -- a->>'b' = c`, `SELECT 'a->>''b'' = c' AND "x->y" = 1 -- a->>'b' = c`},
		{`SELECT CASE WHEN a THEN b END->>'k' = 'v'`, `SELECT CASE WHEN a THEN b END->>'k' = 'v'`},
		{`SELECT 1`, `SELECT 1`},
	} {
		if got := pgArrows(c.in); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestPgArrayLiterals_BecomeLists(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`WHERE s = ANY('{a,b}')`, `WHERE s IN ('a', 'b')`},
		{`WHERE n IN (1) OR n = ANY('{1, 2.5,NULL}') OR n = some('{1,x}')`, `WHERE n IN (1) OR n IN ('1', '2.5', NULL) OR n IN ('1', 'x')`},
		{"WHERE n = ANY('{\t1,\n2 }') OR n > ANY('{1, 2}') OR n >= ALL('{Inf,1}')", "WHERE n IN ('1', '2') OR n > ANY([1, 2]) OR n >= ALL(['Inf', '1'])"},
		{`WHERE s <> all ( '{ a , "b c",NULL, "x\"y", "NULL"}' ) AND t!=ALL('{1}') AND u = ANY('{}')`,
			`WHERE s NOT IN ('a', 'b c', NULL, 'x"y', 'NULL') AND t NOT IN ('1') AND u = ANY([])`},
		{`SELECT '{1,2}'::int[], '{}'::text [], CAST('{1.5}' AS double precision[])`, `SELECT ['1', '2']::int[], []::text [], CAST(['1.5'] AS double precision[])`},
		{`SELECT '{it''s}'::text[]`, `SELECT ['it''s']::text[]`},
		// Not an array where one is meant, nested, or not an array literal: as written.
		{`SELECT '{a,b}', '{"k": 1}'::JSON, s = ANY('{{1},{2}}'), s = ANY('x')`, `SELECT '{a,b}', '{"k": 1}'::JSON, s = ANY('{{1},{2}}'), s = ANY('x')`},
		{`SELECT "{a}" FROM t -- = ANY('{a}')`, `SELECT "{a}" FROM t -- = ANY('{a}')`},
	} {
		if got := pgArrayLiterals(c.in); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestPgRegex_MatchesAnywhereAndFoldsCase(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`WHERE span_name ~ '^GET'`, `WHERE span_name ~ '(?s:.*)(?s:^GET)(?s:.*)'`},
		{`WHERE a !~ 'x|y' AND b ~* E'z\'' AND c !~*'w'`, `WHERE a !~ '(?s:.*)(?s:x|y)(?s:.*)' AND b ~ E'(?s:.*)(?is:z\')(?s:.*)' AND c !~ '(?s:.*)(?is:w)(?s:.*)'`},
		{`WHERE a ~ $1`, `WHERE a ~ ('(?s:.*)(?s:' || $1 || ')(?s:.*)')`},
		// Patterns of other forms are wrapped too: dollar quotes inside
		// them, names, calls and parenthesized expressions by concatenation.
		{`WHERE a ~ $$x'y$$ AND b ~* $t$z$t$`, `WHERE a ~ $$(?s:.*)(?s:x'y)(?s:.*)$$ AND b ~ $t$(?s:.*)(?is:z)(?s:.*)$t$`},
		{`WHERE c ~ d AND e !~ t.f`, `WHERE c ~ ('(?s:.*)(?s:' || d || ')(?s:.*)') AND e !~ ('(?s:.*)(?s:' || t.f || ')(?s:.*)')`},
		{`WHERE a ~* lower('X') OR b ~ ('u' || 'v')`, `WHERE a ~ ('(?s:.*)(?is:' || lower('X') || ')(?s:.*)') OR b ~ ('(?s:.*)(?s:' || ('u' || 'v') || ')(?s:.*)')`},
		// LIKE's operators, bitwise not, and tildes in strings: as written.
		{`WHERE a ~~ 'x%' AND b !~~* 'y' AND e = '~ ''q''' AND ~flags = 0`, `WHERE a ~~ 'x%' AND b !~~* 'y' AND e = '~ ''q''' AND ~flags = 0`},
		{`SELECT ~5, (~x)`, `SELECT ~5, (~x)`},
		// A tilde inside a quoted name is no operator.
		{`SELECT 1 AS "a ~ 'b", 'c' AS d`, `SELECT 1 AS "a ~ 'b", 'c' AS d`},
	} {
		if got, err := pgRegex(c.in); err != nil || got != c.want {
			t.Errorf("%s\n got %s %v\nwant %s", c.in, got, err, c.want)
		}
	}
	// A pattern that cannot be wrapped is refused, not matched DuckDB's way.
	for _, in := range []string{`WHERE a ~ ANY(ARRAY['x'])`, `WHERE a ~ CASE WHEN b THEN 'x' END`, `WHERE a ~ -1`} {
		if got, err := pgRegex(in); err == nil {
			t.Errorf("%s: %s, want an error", in, got)
		}
	}
}

func TestUnqualified_DataTablesLoseTheirSchema(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT count(*) FROM main.records`, `SELECT count(*) FROM records`},
		{`SELECT public.records.span_name FROM public.records JOIN "public"."metrics" m ON true`, `SELECT records.span_name FROM records JOIN "metrics" m ON true`},
		{`SELECT * FROM strata.public.records, memory . main . metrics`, `SELECT * FROM records, metrics`},
		// Other schemas and tables, and names in strings, are left alone.
		{`SELECT * FROM other.records, main.recordsx WHERE x = 'main.records'`, `SELECT * FROM other.records, main.recordsx WHERE x = 'main.records'`},
	} {
		if got := unqualified(c.in); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

// Arrays sent as text, as PostgreSQL writes them, become DuckDB lists.
func TestDecodeParam_TextAndBinaryArrays(t *testing.T) {
	for in, want := range map[string]string{
		`{}`:                     `[]`,
		`{ }`:                    `[]`,
		`{a,b}`:                  `["a", "b"]`,
		`{"a b", NULL, "NULL"}`:  `["a b", NULL, "NULL"]`,
		`{"q\"x","back\\slash"}`: `["q\"x", "back\\slash"]`,
		`{ spaced , x }`:         `["spaced", "x"]`,
		`{"kept " , " x "}`:      `["kept ", " x "]`,
	} {
		got, err := decodeParam([]byte(in), 0, arrayOIDs[oidText])
		if err != nil || got != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{`a,b`, `{{1,2},{3,4}}`, `{"open}`, `{a"b}`} {
		if got, err := decodeParam([]byte(bad), 0, arrayOIDs[oidText]); err == nil {
			t.Errorf("%s: %s, want an error", bad, got)
		}
	}
	// int8[] {5, NULL} in binary: 1 dimension, has nulls, element type 20,
	// 2 elements from index 1, then each element.
	bin := []byte{0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 20, 0, 0, 0, 2, 0, 0, 0, 1,
		0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff}
	if got, err := decodeParam(bin, 1, arrayOIDs[oidInt8]); err != nil || got != `["5", NULL]` {
		t.Errorf("binary int8[]: %s %v", got, err)
	}
	for _, cut := range []int{3, 15, 24, 30} {
		if _, err := decodeParam(bin[:cut], 1, arrayOIDs[oidInt8]); err == nil {
			t.Errorf("binary int8[] cut at %d: no error", cut)
		}
	}
}

func TestRepoint_MovesOrDropsThePointer(t *testing.T) {
	ran := "SELECT * FROM (SELECT a, nosuch FROM records WHERE (x = 'nosuch')) LIMIT 0"
	msg := func(shown string, col int) error {
		return &engine.QueryError{Msg: "Binder Error: no column\n\nLINE 1: " + shown + "\n" + strings.Repeat(" ", len("LINE 1: ")+col) + "^"}
	}
	for _, tc := range []struct {
		err  error
		user string
		want string
	}{
		// The word in a literal does not count.
		{msg(ran, strings.Index(ran, "nosuch")), "select a,\n nosuch from records where x = $1",
			"Binder Error: no column\n\nLINE 2:  nosuch from records where x = $1\n         ^"},
		// A line DuckDB cut short.
		{msg("...a, nosuch FROM records", 6), "select a, nosuch from records", "Binder Error: no column\n\nLINE 1: select a, nosuch from records\n                  ^"},
		// A word the user's text does not have as often: no pointer.
		{msg(ran, strings.Index(ran, "SELECT a")), "select a, nosuch from records", "Binder Error: no column"},
	} {
		if got := repoint(tc.err, ran, tc.user).Error(); got != tc.want {
			t.Errorf("%q:\n got %q\nwant %q", tc.user, got, tc.want)
		}
	}
	// DuckDB places the caret by display width, after accented letters too.
	accented := "SELECT 'éé', nosuch"
	got := repoint(msg(accented, len("SELECT 'éé', ")-2), accented, "select 'éé', nosuch").Error()
	if want := "Binder Error: no column\n\nLINE 1: select 'éé', nosuch\n                     ^"; got != want {
		t.Errorf("accented:\n got %q\nwant %q", got, want)
	}
	other := errors.New("LINE 1: x\n^")
	if repoint(other, ran, "y") != other {
		t.Error("an error that is not a query error changed")
	}
}

func TestPgNumericCasts_DoubleWithoutAPrecision(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT round(avg(x)::numeric, 4)`, `SELECT round(avg(x)::DOUBLE, 4)`},
		{`SELECT count(*)::float / 3, CAST(x AS FLOAT), y::float4, z::float8, w::float(24)`, `SELECT count(*)::DOUBLE / 3, CAST(x AS DOUBLE), y::float4, z::float8, w::float(24)`},
		{`SELECT x :: NUMERIC, CAST(y AS decimal), TRY_CAST(f(z) AS Numeric)`, `SELECT x :: DOUBLE, CAST(y AS DOUBLE), TRY_CAST(f(z) AS DOUBLE)`},
		// With a precision, as written; arrays too.
		{`SELECT x::numeric(10,2), CAST(y AS decimal (5, 1)), z::numeric[]`, `SELECT x::numeric(10,2), CAST(y AS decimal (5, 1)), z::DOUBLE[]`},
		// Names, strings and aliases: as written.
		{`SELECT 1 AS numeric, 'x::numeric' AS "a::numeric", CAST(a AS numeric) AS decimal, numeric_col`,
			`SELECT 1 AS numeric, 'x::numeric' AS "a::numeric", CAST(a AS DOUBLE) AS decimal, numeric_col`},
	} {
		if got := pgNumericCasts(c.in); got != c.want {
			t.Errorf("pgNumericCasts(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestPgJSONKeys_AreKeysNotPaths(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT a->>'$type', a -> '/x/y', a->>'', a->>'~$'`, `SELECT a->>'/$type', a -> '/~1x~1y', a->>'/', a->>'~$'`},
		{`SELECT a->>'$it''s', a->>$$/d$$, a->>$t$$x$t$`, `SELECT a->>'/$it''s', a->>'/~1d', a->>'/$x'`},
		// Other keys, E'…' with escapes, arrows in strings, ->> of a number: as written.
		{`SELECT a->>'http.route', a->>E'$\\x', '->>''$x''', a->>0, a->'$1'`, `SELECT a->>'http.route', a->>E'$\\x', '->>''$x''', a->>0, a->'/$1'`},
		// A lambda whose body starts with such a string.
		{`SELECT list_transform(l, x -> '$' || x)`, `SELECT list_transform(l, x -> '$' || x)`},
	} {
		if got := pgJSONKeys(c.in); got != c.want {
			t.Errorf("pgJSONKeys(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestPgLikeEscape_BackslashByDefault(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`WHERE attname LIKE 'span\_%'`, `WHERE attname LIKE 'span\_%' ESCAPE '\'`},
		{`WHERE a NOT ILIKE E'pg\\_%' AND b LIKE 'x%'`, `WHERE a NOT ILIKE E'pg\\_%' ESCAPE '\' AND b LIKE 'x%'`},
		// An ESCAPE clause, no backslash, a parameter: as written.
		{`WHERE a LIKE 'a\_%' ESCAPE '!' OR b LIKE 'c_d' OR c LIKE $1 OR d = '\'`, `WHERE a LIKE 'a\_%' ESCAPE '!' OR b LIKE 'c_d' OR c LIKE $1 OR d = '\'`},
	} {
		if got := pgLikeEscape(c.in); got != c.want {
			t.Errorf("pgLikeEscape(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestPgJSONBCasts_GoThroughTheCanonicalForm(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`SELECT '{"a": 1}'::jsonb, attributes :: JSONB = x::jsonb`,
			`SELECT strata_jsonb('{"a": 1}')::jsonb, strata_jsonb(attributes) :: JSONB = strata_jsonb(x)::jsonb`},
		{`SELECT CAST(r.attributes AS jsonb), (a || b)::jsonb::text, f(x)::text::jsonb`,
			`SELECT CAST(strata_jsonb(r.attributes) AS jsonb), strata_jsonb((a || b))::jsonb::text, strata_jsonb(f(x)::text)::jsonb`},
		// A string compared with the cast is a jsonb too (review).
		{`SELECT x::jsonb = '{"a": 1}', y::jsonb <> E'{}'`,
			`SELECT strata_jsonb(x)::jsonb = strata_jsonb('{"a": 1}'), strata_jsonb(y)::jsonb <> strata_jsonb(E'{}')`},
		// Read by an operator that takes the value, an array type, names: as written.
		{`SELECT attributes::jsonb @> '{"a":1}'::jsonb, '{"a":1}'::jsonb <@ x::jsonb, y::jsonb->>'k', z::jsonb ? 'k'`,
			`SELECT attributes::jsonb @> '{"a":1}'::jsonb, '{"a":1}'::jsonb <@ x::jsonb, y::jsonb->>'k', z::jsonb ? 'k'`},
		{`SELECT CAST(a AS jsonb) @> b, x::jsonb[], 1 AS jsonb, 'x::jsonb', "c::jsonb"`,
			`SELECT CAST(a AS jsonb) @> b, x::jsonb[], 1 AS jsonb, 'x::jsonb', "c::jsonb"`},
	} {
		if got := pgJSONBCasts(c.in); got != c.want {
			t.Errorf("pgJSONBCasts(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
	for in, want := range map[string]string{"1": "1", "1.0": "1.0", "1e2": "100", "1.0e1": "10", "1.23E1": "12.3",
		"1.5e-3": "0.0015", "-0": "0", "-0.0": "0.0", "-12.50": "-12.50", "0.001e3": "1", "5E+0": "5"} {
		if got := numericText(in); got != want {
			t.Errorf("numericText(%s) = %s, want %s", in, got, want)
		}
	}
}
