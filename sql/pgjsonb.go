package sql

import (
	"database/sql/driver"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/strata-db/strata/engine"
)

// PostgreSQL's jsonb is a value, not text: keys in its own order, each
// once, numbers as numeric. x::jsonb goes through jsonbFunc, which writes
// the value as PostgreSQL prints a jsonb, so that equal values are equal
// text (= , GROUP BY, DISTINCT) and read as PostgreSQL shows them
// (QA: '{"host": "a"}'::jsonb, as PostgreSQL prints it, matched no row).

// jsonbFunc is the name of the function behind ::jsonb.
const jsonbFunc = "strata_jsonb"

// jsonbFunction is jsonbFunc for the query engine.
func jsonbFunction() (engine.Function, error) {
	text, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		return engine.Function{}, err
	}
	return engine.Function{Name: jsonbFunc, Overloads: []duckdb.ScalarFunc{jsonbCanon{text}}}, nil
}

type jsonbCanon struct{ text duckdb.TypeInfo }

func (c jsonbCanon) Config() duckdb.ScalarFuncConfig {
	return duckdb.ScalarFuncConfig{InputTypeInfos: []duckdb.TypeInfo{c.text}, ResultTypeInfo: c.text}
}

func (c jsonbCanon) Executor() duckdb.ScalarFuncExecutor {
	return duckdb.ScalarFuncExecutor{RowExecutor: func(v []driver.Value) (any, error) {
		s, _ := v[0].(string)
		j, err := parseJSON(s, "")
		if err != nil {
			return nil, fmt.Errorf("invalid input syntax for type json: %q", s)
		}
		var b strings.Builder
		writeJSONB(&b, j)
		return b.String(), nil
	}}
}

// writeJSONB writes a parsed JSON value (numbers as json.Number) as
// PostgreSQL prints a jsonb: object keys shorter first, then bytewise;
// ", " between items and ": " after keys; numbers as numeric prints them.
func writeJSONB(b *strings.Builder, v any) {
	switch v := v.(type) {
	case map[string]any: // the last of repeated keys, as PostgreSQL keeps
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSONBString(b, k)
			b.WriteString(": ")
			writeJSONB(b, v[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range v {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSONB(b, e)
		}
		b.WriteByte(']')
	case string:
		writeJSONBString(b, v)
	case json.Number:
		b.WriteString(numericText(string(v)))
	case bool:
		b.WriteString(fmt.Sprint(v))
	case nil:
		b.WriteString("null")
	default: // another decoder's number type
		b.WriteString(numericText(fmt.Sprint(v)))
	}
}

// writeJSONBString quotes s as PostgreSQL does: \" \\ \b \f \n \r \t, \u
// for other control characters, the rest as it is.
func writeJSONBString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('"')
}

// jsonNumber is a JSON number's parts.
var jsonNumber = regexp.MustCompile(`^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$`)

// numericText writes a JSON number as PostgreSQL's numeric prints it: no
// exponent (1e2 is 100, 1.5E-3 is 0.0015), as many decimals as written
// less the exponent, no sign on zero.
func numericText(s string) string {
	m := jsonNumber.FindStringSubmatch(s)
	if m == nil {
		return s
	}
	digits, point := m[2]+m[3], len(m[2])
	if m[4] != "" {
		var exp int
		if _, err := fmt.Sscan(m[4], &exp); err != nil || exp > 1000 || exp < -1000 {
			return s // as written: PostgreSQL would refuse or print it at length
		}
		point += exp
	}
	if point <= 0 {
		digits, point = strings.Repeat("0", 1-point)+digits, 1
	}
	if point > len(digits) {
		digits += strings.Repeat("0", point-len(digits))
	}
	whole := strings.TrimLeft(digits[:point], "0")
	if whole == "" {
		whole = "0"
	}
	out := whole
	if frac := digits[point:]; frac != "" {
		out += "." + frac
	}
	if m[1] == "-" && strings.Trim(digits, "0") != "" {
		out = "-" + out
	}
	return out
}

// jsonbCast finds a cast to jsonb (not jsonb[]), on text with literals,
// comments and quoted names blanked: x::jsonb, or AS jsonb in CAST.
var jsonbCast = regexp.MustCompile(`(?i)(::\s*|\bAS\s+)jsonb\b`)

// jsonbOperators start an operator that reads a jsonb as a value, for
// which the text form does not matter: @>, <@, ?, ?|, ?&, ->, ->>, #>.
var jsonbOperators = []string{"@>", "<@", "?", "@@@", "@|@", "@&@", "->", "#>"}

// pgJSONBCasts makes each cast to jsonb go through jsonbFunc: x::jsonb
// becomes strata_jsonb(x)::jsonb. A cast whose value an operator of
// jsonbOperators reads is left alone (attributes::jsonb @> '{…}' is the
// PostgreSQL idiom, and would parse each row twice).
func pgJSONBCasts(s string) string {
	if !strings.Contains(strings.ToLower(s), "jsonb") {
		return s
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	var edits []edit
	for _, m := range jsonbCast.FindAllStringSubmatchIndex(b, -1) {
		if after(b, m[1]) == '[' {
			continue // jsonb[]
		}
		var from, to int
		if b[m[2]] == ':' {
			if from, to = arrowLeft(b, m[0]); from < 0 || valueOperator(b[skipSpace(b, m[1]):], b[:from]) {
				continue
			}
		} else {
			open := castParen(b, m[0])
			if open < 0 {
				continue // AS jsonb naming something
			}
			from, to = skipSpace(b, open+1), m[0]
			for to > from && isSpace(b[to-1]) {
				to--
			}
			call, _ := nameBefore(b, open) // where CAST or TRY_CAST starts
			if close := matchForward(b, open); close > 0 && valueOperator(b[skipSpace(b, close):], b[:call]) {
				continue
			}
		}
		edits = append(edits, edit{from, from, jsonbFunc + "("}, edit{to, to, ")"})
		// A string compared with the cast is a jsonb too, as PostgreSQL
		// casts it: x::jsonb = '{"a": 1}' (review).
		if lit, end, ok := comparedLiteral(b, m[1]); ok {
			edits = append(edits, edit{lit, lit, jsonbFunc + "("}, edit{end, end, ")"})
		}
	}
	return spliced(s, edits)
}

// comparedLiteral finds a string literal compared by =, <> or != with the
// value that ends at i: where it starts and ends.
func comparedLiteral(b string, i int) (from, end int, ok bool) {
	j := skipSpace(b, i)
	switch {
	case strings.HasPrefix(b[j:], "<>"), strings.HasPrefix(b[j:], "!="):
		j += 2
	case strings.HasPrefix(b[j:], "=") && !strings.HasPrefix(b[j:], "=>"):
		j++
	default:
		return 0, 0, false
	}
	j = skipSpace(b, j)
	if _, _, end, ok := literalAt(b, j); ok && end > 0 {
		return j, end, true
	}
	return 0, 0, false
}

// valueOperator says whether the text after a jsonb value starts with, or
// the text before it ends with, an operator of jsonbOperators.
func valueOperator(after, before string) bool {
	before = strings.TrimRight(before, " \t\n\r\f\v")
	for _, op := range jsonbOperators {
		if strings.HasPrefix(after, op) || strings.HasSuffix(before, op) && op != "->" && op != "#>" {
			return true
		}
	}
	return false
}
