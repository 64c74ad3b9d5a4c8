package sql

import (
	"database/sql/driver"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"sync/atomic"

	duckdb "github.com/duckdb/duckdb-go/v2"
	json "github.com/goccy/go-json"

	"github.com/strata-db/strata/engine"
)

// jsonb's operators. @> and <@ are DuckDB's list containment too, so the
// JSON forms are overloads of those names. DuckDB reads ? as a parameter
// and has no ?| or ?&, so over the Postgres protocol pgJSONExists
// renames them to operators DuckDB's parser takes, which these functions
// implement.
const (
	opExists    = "@@@" // j ? 'key'
	opExistsAny = "@|@" // j ?| array['a', 'b']
	opExistsAll = "@&@" // j ?& array['a', 'b']
)

// jsonOperators are the functions behind jsonb's operators, with
// PostgreSQL's meaning (see jsonContains and jsonHas).
func jsonOperators() ([]engine.Function, error) {
	text, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		return nil, err
	}
	boolean, err := duckdb.NewTypeInfo(duckdb.TYPE_BOOLEAN)
	if err != nil {
		return nil, err
	}
	list, err := duckdb.NewListInfo(text)
	if err != nil {
		return nil, err
	}
	op := func(name string, right duckdb.TypeInfo, f func(a, b any) bool) engine.Function {
		return engine.Function{Name: name, Overloads: []duckdb.ScalarFunc{jsonOp{
			in: []duckdb.TypeInfo{text, right}, out: boolean, name: name, f: f, right: &lastParsed{}}}}
	}
	keys := func(v any) []string { return v.([]string) }
	return []engine.Function{
		op("@>", text, func(a, b any) bool { return jsonContains(a, b, true) }),
		op("<@", text, func(a, b any) bool { return jsonContains(b, a, true) }),
		op(opExists, text, func(a, b any) bool { return jsonHas(a, b.(string)) }),
		op(opExistsAny, list, func(a, b any) bool {
			for _, k := range keys(b) {
				if jsonHas(a, k) {
					return true
				}
			}
			return false
		}),
		op(opExistsAll, list, func(a, b any) bool {
			for _, k := range keys(b) {
				if !jsonHas(a, k) {
					return false
				}
			}
			return true
		}),
	}, nil
}

// jsonOp is one of jsonb's operators as a DuckDB function: its left side
// is JSON text, its right JSON text or a list of keys.
type jsonOp struct {
	in    []duckdb.TypeInfo
	out   duckdb.TypeInfo
	name  string
	f     func(a, b any) bool
	right *lastParsed
}

// lastParsed keeps the JSON the right side parsed to last: it is most
// often a constant, the same for every row.
type lastParsed struct{ p atomic.Pointer[parsed] }

type parsed struct {
	text string
	v    any
}

func (l *lastParsed) parse(s string) (any, error) {
	if p := l.p.Load(); p != nil && p.text == s {
		return p.v, nil
	}
	v, err := parseJSON(s, "right")
	if err != nil {
		return nil, err
	}
	l.p.Store(&parsed{s, v})
	return v, nil
}

func (o jsonOp) Config() duckdb.ScalarFuncConfig {
	return duckdb.ScalarFuncConfig{InputTypeInfos: o.in, ResultTypeInfo: o.out}
}

func (o jsonOp) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) {
		a, err := parseJSON(v[0], "left")
		if err != nil {
			return nil, err
		}
		var b any
		switch r := v[1].(type) {
		case []any: // the keys of ?| and ?&
			names := make([]string, 0, len(r))
			for _, k := range r {
				if s, ok := k.(string); ok { // NULL keys match nothing, as in PostgreSQL
					names = append(names, s)
				}
			}
			b = names
		case string:
			if o.name == opExists {
				b = r
			} else if b, err = o.right.parse(r); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("jsonb operator: unexpected %T on the right", v[1])
		}
		return o.f(a, b), nil
	}}
}

// parseJSON reads one JSON value, keeping numbers as written so that
// they compare by value, not as floats.
func parseJSON(v driver.Value, side string) (any, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("jsonb operator: the %s side is %T, not JSON", side, v)
	}
	out, err := decodeJSON(s, json.NewDecoder)
	if err != nil {
		// goccy/go-json checks that a number fits a float64; PostgreSQL's
		// numbers need not (1e400).
		out, err = decodeJSON(s, stdjson.NewDecoder)
	}
	if err != nil {
		return nil, fmt.Errorf("jsonb operator: the %s side is not JSON: %v", side, err)
	}
	return out, nil
}

// decodeJSON reads s, which must hold one JSON value and nothing after it,
// with either library's decoder.
func decodeJSON[D interface {
	UseNumber()
	Decode(any) error
}](s string, newDecoder func(io.Reader) D) (any, error) {
	d := newDecoder(strings.NewReader(s))
	d.UseNumber()
	var out, extra any
	if err := d.Decode(&out); err != nil {
		return nil, err
	}
	if err := d.Decode(&extra); err != io.EOF {
		return nil, errors.New("more than one value")
	}
	return out, nil
}

// operatorNames gives the operators pgJSONExists renamed their names back
// in an error message, with DuckDB's caret kept under the same place.
func operatorNames(msg string) string {
	if !strings.Contains(msg, opExists) && !strings.Contains(msg, opExistsAny) && !strings.Contains(msg, opExistsAll) {
		return msg
	}
	back := strings.NewReplacer(opExists, "?", opExistsAny, "?|", opExistsAll, "?&")
	m := errContext.FindStringSubmatchIndex(msg)
	if m == nil {
		return back.Replace(msg)
	}
	shown := msg[m[4]:m[5]]
	off := caretOffset(shown, caretColumn(m))
	if off < 0 {
		off = len(shown) // past the end of the line
	}
	prefix := m[7] - m[6] - caretColumn(m) // "LINE n: "
	caret := prefix + engine.DisplayWidth(back.Replace(shown[:off]))
	return back.Replace(msg[:m[4]]) + back.Replace(shown) + "\n" + strings.Repeat(" ", caret) + "^" + back.Replace(msg[m[1]:])
}

// jsonContains is PostgreSQL's jsonb containment, a @> b: an object
// contains an object whose every key it has with a value that contains
// the other's; an array contains an array whose every element some
// element of it contains (order and repeats do not matter); scalars
// contain equal scalars. At the top level alone, an array also contains
// a scalar among its elements.
func jsonContains(a, b any, top bool) bool {
	switch b := b.(type) {
	case map[string]any:
		a, ok := a.(map[string]any)
		if !ok {
			return false
		}
		for k, bv := range b {
			av, ok := a[k]
			if !ok || !jsonContains(av, bv, false) {
				return false
			}
		}
		return true
	case []any:
		a, ok := a.([]any)
		if !ok {
			return false
		}
		for _, bv := range b {
			found := false
			for _, av := range a {
				if jsonContains(av, bv, false) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	if arr, ok := a.([]any); ok && top {
		for _, av := range arr {
			if jsonScalarEqual(av, b) {
				return true
			}
		}
		return false
	}
	return jsonScalarEqual(a, b)
}

// jsonScalarEqual compares two JSON scalars: numbers by value (1.0 is 1).
func jsonScalarEqual(a, b any) bool {
	an, ok1 := a.(json.Number)
	bn, ok2 := b.(json.Number)
	if ok1 && ok2 {
		x, okx := new(big.Rat).SetString(string(an))
		y, oky := new(big.Rat).SetString(string(bn))
		return okx && oky && x.Cmp(y) == 0
	}
	switch a.(type) {
	case map[string]any, []any:
		return false
	}
	return a == b
}

// jsonHas is PostgreSQL's jsonb ?: key is a key of the top-level object,
// a string element of the top-level array, or the string itself.
func jsonHas(j any, key string) bool {
	switch j := j.(type) {
	case map[string]any:
		_, ok := j[key]
		return ok
	case []any:
		for _, e := range j {
			if s, ok := e.(string); ok && s == key {
				return true
			}
		}
		return false
	case string:
		return j == key
	}
	return false
}

// pgJSONExists renames jsonb's ?, ?| and ?& (outside literals, comments
// and quoted identifiers) to the operators of jsonOperators: DuckDB reads
// ? as a parameter, and the Postgres protocol's parameters are $n. Other
// operators that begin with ? (PostgreSQL's geometric ones) are left.
func pgJSONExists(s string) string {
	if !strings.Contains(s, "?") {
		return s
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	out := splicer{src: s}
	for i := 0; i < len(b); i++ {
		if b[i] != '?' || i > 0 && b[i-1] == '@' { // @? is jsonpath's, not supported: DuckDB says so
			continue
		}
		op, n := opExists, 1
		if i+1 < len(b) {
			switch b[i+1] {
			case '|':
				op, n = opExistsAny, 2
			case '&':
				op, n = opExistsAll, 2
			case '-', '#':
				continue
			}
		}
		if i+n < len(b) && strings.IndexByte("|&-#", b[i+n]) >= 0 {
			continue
		}
		out.replace(i, i+n, op)
		i += n - 1
	}
	return out.text()
}
