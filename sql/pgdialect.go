package sql

import (
	"regexp"
	"strconv"
	"strings"

	"github.com/strata-db/strata/engine"
)

// normalizeSQL rewrites, before a query is parsed on any path, what users
// and tools write for PostgreSQL that DuckDB would read otherwise:
// qualified data table names, the JSON arrows' precedence, array
// literals and the names of the JSON aggregates. (pgOperators, for the
// Postgres protocol alone, runs when a statement arrives.)
func normalizeSQL(sql string) string {
	return pgJSONBCasts(pgJSONAggregates(pgArrayLiterals(pgArrows(unqualified(sql)))))
}

// pgArrayLiterals turns PostgreSQL's array literals into DuckDB's lists:
// '{a,"b c",NULL}' becomes ['a', 'b c', NULL] where it is the argument of
// ANY, ALL or SOME, is cast to an array type ('{1,2}'::int[]), or is the
// operand of CAST(… AS type[]). DuckDB cannot cast that text to a list
// (= ANY('{a,b}') failed with "UNNEST not supported here"). Elements stay
// strings, which a cast converts. x = ANY('{…}') and x <> ALL('{…}')
// become x IN (…) and x NOT IN (…) of strings, which DuckDB reads as x's
// type, as PostgreSQL types the array (membership); with other operators
// (> ANY), a list of numbers is written as numbers (DuckDB does not
// compare an integer with a string). Nested arrays are left as written.
func pgArrayLiterals(s string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	out := splicer{src: s}
	for i := 0; i < len(b); i++ {
		body, bodyEnd, end, ok := literalAt(b, i)
		if !ok {
			continue
		}
		if end < 0 {
			break
		}
		text := s[body:bodyEnd]
		if b[i] == '\'' {
			text = strings.ReplaceAll(text, "''", "'")
		}
		if cast, ok := arrayLiteralContext(b, i, end); ok && b[i] != 'E' && b[i] != 'e' {
			if elems, err := textArray(text, oidText); err == nil { // else left as written
				if from, to, not, ok := membership(b, i, end); ok && !cast && len(elems) > 0 {
					in := "IN ("
					if not {
						in = "NOT IN ("
					}
					if from > 0 && !isSpace(s[from-1]) {
						in = " " + in
					}
					out.replace(from, to, in+strings.Join(sqlLiterals(elems), ", ")+")")
					i = to - 1
					continue
				}
				out.replace(i, end, listLiteral(elems, !cast))
			}
		}
		i = end - 1
	}
	return out.text()
}

// membership finds = ANY('{…}') (or SOME) and <> ALL('{…}') (or !=)
// around the literal b[lit:end]: from where the operator starts to past
// the closing parenthesis, and whether it is the negated form. As IN and
// NOT IN, the elements stay strings that DuckDB reads as the other
// operand's type, as PostgreSQL types the array: a list compared an
// integer with strings, or numbers with a text column, and failed.
func membership(b string, lit, end int) (from, to int, not, ok bool) {
	close := skipSpace(b, end)
	open := lit - 1
	for open >= 0 && isSpace(b[open]) {
		open--
	}
	if close >= len(b) || b[close] != ')' || open < 0 || b[open] != '(' {
		return 0, 0, false, false
	}
	w := open - 1
	for w >= 0 && isSpace(b[w]) {
		w--
	}
	k := w
	for k >= 0 && engine.IsIdentByte(b[k]) {
		k--
	}
	word := strings.ToUpper(b[k+1 : w+1])
	o := k
	for o >= 0 && isSpace(b[o]) {
		o--
	}
	switch {
	case (word == "ANY" || word == "SOME") && o >= 0 && b[o] == '=' && (o == 0 || !strings.ContainsRune("<>!=:", rune(b[o-1]))):
		return o, close + 1, false, true
	case word == "ALL" && o >= 1 && (b[o-1:o+1] == "<>" || b[o-1:o+1] == "!="):
		return o - 1, close + 1, true, true
	}
	return 0, 0, false, false
}

// sqlLiterals writes elements as SQL string literals (NULL for nil).
func sqlLiterals(elems []*string) []string {
	out := make([]string, len(elems))
	for k, e := range elems {
		out[k] = "NULL"
		if e != nil {
			out[k] = quoteLiteral(*e)
		}
	}
	return out
}

// arrayLiteralContext says whether the literal b[from:to] is where an
// array is meant: ANY/ALL/SOME('…'), cast ('…'::type[] or
// CAST('…' AS type[])), or the keys of jsonb's ?| and ?& (renamed by
// pgJSONExists).
func arrayLiteralContext(b string, from, to int) (cast, ok bool) {
	j := from - 1
	for j >= 0 && isSpace(b[j]) {
		j--
	}
	k := skipSpace(b, to)
	if j >= 2 && (b[j-2:j+1] == opExistsAny || b[j-2:j+1] == opExistsAll) {
		return true, true // jsonb's ?| and ?& take text[]
	}
	if j >= 0 && b[j] == '(' {
		w := j - 1
		for w >= 0 && isSpace(b[w]) {
			w--
		}
		start := w
		for start >= 0 && engine.IsIdentByte(b[start]) {
			start--
		}
		switch strings.ToUpper(b[start+1 : w+1]) {
		case "ANY", "ALL", "SOME":
			return false, k < len(b) && b[k] == ')'
		case "CAST":
			if k+2 < len(b) && strings.EqualFold(b[k:k+2], "AS") && !engine.IsIdentByte(b[k+2]) {
				return true, typeThenBrackets(b, k+2)
			}
		}
	}
	return true, strings.HasPrefix(b[k:], "::") && typeThenBrackets(b, k+2)
}

// typeThenBrackets says whether a type name ("int", "double precision")
// followed by [] starts at i of b.
func typeThenBrackets(b string, i int) bool {
	i = skipSpace(b, i)
	start := i
	for i < len(b) && (engine.IsIdentByte(b[i]) || b[i] == ' ' || b[i] == '.' || b[i] == '"') {
		i++
	}
	return i > start && strings.HasPrefix(b[i:], "[]")
}

// listLiteral writes an array's elements as a DuckDB list of SQL
// literals. With numbers, a list whose elements are all numbers is
// written as numbers.
func listLiteral(elems []*string, numbers bool) string {
	for _, e := range elems {
		if e != nil && !isNumber(*e) {
			numbers = false
		}
	}
	if !numbers {
		return "[" + strings.Join(sqlLiterals(elems), ", ") + "]"
	}
	parts := make([]string, len(elems))
	for k, e := range elems {
		parts[k] = "NULL"
		if e != nil {
			parts[k] = *e
		}
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// isNumber says whether s is a decimal number as SQL writes one (not
// Inf, NaN or hexadecimal, which ParseFloat also takes).
func isNumber(s string) bool {
	_, err := strconv.ParseFloat(s, 64)
	return err == nil && strings.Trim(s, "0123456789.eE+-") == ""
}

// pgArrows puts parentheses around each JSON arrow (x->'k', x->>'k') and
// its two operands. DuckDB's grammar gives -> and ->> the lowest
// precedence, below AND (for lambdas), so
//
//	kind = 'span' AND attributes->>'http.route' = '/x'
//
// parses as ((kind = 'span' AND attributes) ->> 'http.route') = '/x' and
// fails; in PostgreSQL, and in the queries written for it, they bind
// tighter than any comparison. An arrow is taken only when its right side
// is a string, a number or a parameter (for ->>, also a name or a
// parenthesized expression), since x -> x + 1 is a lambda, and its left
// side a name, literal, call, subscript or cast. Anything else is left as
// written. Offsets of the text change only where parentheses are added.
func pgArrows(s string) string {
	if !strings.Contains(s, "->") {
		return s
	}
	b := engine.BlankLiterals(s) // same offsets, no strings or comments to trip on
	type wrap struct{ from, to int }
	var wraps []wrap
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '-' || b[i+1] != '>' {
			continue
		}
		n := 2
		if i+2 < len(b) && b[i+2] == '>' {
			n = 3
		}
		to := arrowRight(b, i+n, n == 3)
		from, leftEnd := arrowLeft(b, i)
		i += n - 1
		if to < 0 || from < 0 || isLambda(b, from, leftEnd) {
			continue
		}
		// a->'x'->>'y' is (a->'x')->>'y': the left side is the previous arrow.
		if k := len(wraps) - 1; k >= 0 && wraps[k].to == leftEnd && wraps[k].from < from {
			from = wraps[k].from
		}
		wraps = append(wraps, wrap{from, to})
	}
	if len(wraps) == 0 {
		return s
	}
	// Parentheses that would only repeat ones already there are left out.
	open := map[int]int{}
	shut := map[int]int{}
	for _, w := range wraps {
		if before(b, w.from) == '(' && after(b, w.to) == ')' {
			continue
		}
		open[w.from]++
		shut[w.to]++
	}
	var out strings.Builder
	out.Grow(len(s) + 2*len(wraps))
	for i := 0; i <= len(s); i++ {
		out.WriteString(strings.Repeat(")", shut[i]))
		out.WriteString(strings.Repeat("(", open[i]))
		if i < len(s) {
			out.WriteByte(s[i])
		}
	}
	return out.String()
}

// before returns the first byte before i that is not a space (0 if none).
func before(b string, i int) byte {
	for i--; i >= 0; i-- {
		if !isSpace(b[i]) {
			return b[i]
		}
	}
	return 0
}

// after returns the first byte from i on that is not a space (0 if none).
func after(b string, i int) byte {
	for ; i < len(b); i++ {
		if !isSpace(b[i]) {
			return b[i]
		}
	}
	return 0
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'
}

// lambdaFunctions are DuckDB's functions that take a lambda.
var lambdaFunctions = map[string]bool{"list_transform": true, "array_transform": true, "list_apply": true,
	"array_apply": true, "apply": true, "list_filter": true, "array_filter": true, "filter": true,
	"list_reduce": true, "array_reduce": true, "reduce": true}

// isLambda says whether the left operand b[from:end] of an arrow is a
// lambda's parameters — a name, or names in parentheses, as the second
// argument of a function that takes a lambda (where they take it) — so
// the arrow is not JSON's: list_transform(l, x -> 2 * x) is not
// (x -> 2) * x, and filter(attributes->>'k' = 'v', …) is.
func isLambda(b string, from, end int) bool {
	params := strings.TrimSpace(b[from:end])
	if strings.HasPrefix(params, "(") && strings.HasSuffix(params, ")") {
		params = params[1 : len(params)-1]
	}
	for _, p := range strings.Split(params, ",") {
		if p = strings.TrimSpace(p); p == "" || identEnd(p, 0) != len(p) {
			return false
		}
	}
	if before(b, from) != ',' {
		return false
	}
	depth, commas := 0, 0
	for k := from - 1; k >= 0; k-- {
		switch b[k] {
		case ')', ']':
			depth++
		case '[':
			depth--
		case ',':
			if depth == 0 {
				if commas++; commas > 1 {
					return false // a third argument or later: list_reduce's initial value
				}
			}
		case '(':
			if depth--; depth < 0 {
				_, name := nameBefore(b, k)
				return lambdaFunctions[name]
			}
		}
	}
	return false
}

// nameBefore finds the name written right before offset i of b (spaces
// between allowed), as a call's name before its parenthesis: where it
// starts, and the name in lower case ("" if there is none).
func nameBefore(b string, i int) (start int, name string) {
	w := i
	for w > 0 && isSpace(b[w-1]) {
		w--
	}
	k := w
	for k > 0 && engine.IsIdentByte(b[k-1]) {
		k--
	}
	return k, strings.ToLower(b[k:w])
}

// skipSpace returns the index of the first byte at or after i that is not
// white space.
func skipSpace(b string, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// arrowRight returns where the right operand of an arrow ending at i ends,
// or -1 if it is not one the arrow is sure to be a JSON arrow with.
func arrowRight(b string, i int, double bool) int {
	if i = skipSpace(b, i); i >= len(b) {
		return -1
	}
	if _, _, end, ok := literalAt(b, i); ok {
		return end
	}
	c := b[i]
	switch {
	case c >= '0' && c <= '9', c == '-' && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9', c == '$' && i+1 < len(b) && b[i+1] >= '0' && b[i+1] <= '9':
		j := i + 1
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		return j
	case c == '?':
		return i + 1
	case !double:
		return -1
	case c == '(':
		return matchForward(b, i)
	case c == '"' || engine.IsIdentByte(c):
		for {
			if i = identEnd(b, i); i < 0 || i >= len(b) || b[i] != '.' {
				break
			}
			i++
		}
		if i > 0 && after(b, i) == '(' { // a call: its arguments too
			return matchForward(b, skipSpace(b, i))
		}
		return i
	}
	return -1
}

// literalAt says whether a string literal starts at i of b, text whose
// literals are blanked ('x', E'x', $$x$$, $t$x$t$): its text is
// b[body:bodyEnd] and the literal ends at end, -1 if it does not end.
func literalAt(b string, i int) (body, bodyEnd, end int, ok bool) {
	if i >= len(b) {
		return 0, 0, 0, false
	}
	if tag := engine.DollarTag(b[i:]); tag != "" {
		n := strings.Index(b[i+len(tag):], tag)
		if n < 0 {
			return 0, 0, -1, true
		}
		body = i + len(tag)
		return body, body + n, body + n + len(tag), true
	}
	switch {
	case b[i] == '\'':
		body = i + 1
	case (b[i] == 'E' || b[i] == 'e') && i+1 < len(b) && b[i+1] == '\'':
		body = i + 2
	default:
		return 0, 0, 0, false
	}
	n := strings.IndexByte(b[body:], '\'')
	if n < 0 {
		return 0, 0, -1, true
	}
	return body, body + n, body + n + 1, true
}

// identEnd returns where the name (plain or quoted) at i ends, or -1.
func identEnd(b string, i int) int {
	if i >= len(b) {
		return -1
	}
	if b[i] == '"' {
		end := strings.IndexByte(b[i+1:], '"')
		if end < 0 {
			return -1
		}
		return i + 1 + end + 1
	}
	j := i
	for j < len(b) && engine.IsIdentByte(b[j]) {
		j++
	}
	if j == i {
		return -1
	}
	return j
}

// arrowLeft returns where the left operand of an arrow at i starts and
// ends (without the spaces before the arrow), or -1: a chain of names,
// literals, calls, subscripts and casts, read backwards.
func arrowLeft(b string, i int) (from, end int) {
	j := i - 1
	for j >= 0 && isSpace(b[j]) {
		j--
	}
	end = j + 1
	for {
		if j < 0 {
			return -1, end
		}
		group := false
		switch c := b[j]; {
		case c == ')' || c == ']':
			if j = matchBack(b, j); j < 0 {
				return -1, end
			}
			group = true
		case c == '\'':
			k := strings.LastIndexByte(b[:j], '\'')
			if k < 0 {
				return -1, end
			}
			if k > 0 && (b[k-1] == 'E' || b[k-1] == 'e') && (k < 2 || !engine.IsIdentByte(b[k-2])) {
				k--
			}
			j = k
		case c == '"':
			if j = strings.LastIndexByte(b[:j], '"'); j < 0 {
				return -1, end
			}
		case engine.IsIdentByte(c):
			k := j
			for k > 0 && engine.IsIdentByte(b[k-1]) {
				k--
			}
			if strings.EqualFold(b[k:j+1], "end") {
				return -1, end // CASE … END: not worth reading back to its CASE
			}
			j = k
		default:
			return -1, end
		}
		from = j
		// What precedes may extend the operand: a call's name or a
		// subscript's base right before the group, a qualifier, a cast.
		switch {
		case group && j > 0 && (engine.IsIdentByte(b[j-1]) || b[j-1] == '"' || b[j-1] == ')' || b[j-1] == ']'):
			j--
		case j > 0 && b[j-1] == '.':
			j -= 2
		case before(b, j) == ':' && castBefore(b, j):
			j--
			for isSpace(b[j]) {
				j--
			}
			j -= 2 // the "::"
			for j >= 0 && isSpace(b[j]) {
				j--
			}
		default:
			return from, end
		}
	}
}

// castBefore reports whether "::" precedes position j (spaces between).
func castBefore(b string, j int) bool {
	k := j - 1
	for k >= 0 && isSpace(b[k]) {
		k--
	}
	return k >= 1 && b[k] == ':' && b[k-1] == ':'
}

// matchBack returns the position of the bracket opening the one closing
// at j, or -1.
func matchBack(b string, j int) int {
	depth := 0
	for ; j >= 0; j-- {
		switch b[j] {
		case ')', ']':
			depth++
		case '(', '[':
			if depth--; depth == 0 {
				return j
			}
		case '"', '\'':
			k := strings.LastIndexByte(b[:j], b[j])
			if k < 0 {
				return -1
			}
			j = k
		}
	}
	return -1
}

// matchForward returns where the group opened at i ends (after its
// closing bracket), or -1.
func matchForward(b string, i int) int {
	depth := 0
	for ; i < len(b); i++ {
		switch b[i] {
		case '(', '[':
			depth++
		case ')', ']':
			if depth--; depth == 0 {
				return i + 1
			}
		case '"', '\'':
			k := strings.IndexByte(b[i+1:], b[i])
			if k < 0 {
				return -1
			}
			i += 1 + k
		}
	}
	return -1
}

// pgRegex gives the regular expression operators PostgreSQL's meaning:
// `x ~ p` is true when p matches anywhere in x (DuckDB's ~ must match all
// of x, so Grafana's `service_name ~ '${svc:regex}'` found nothing), and
// ~* and !~* (absent from DuckDB) ignore case. The pattern is wrapped to
// match anywhere: a string literal (plain, escaped, dollar-quoted) inside its
// quotes, a parameter, a name, a call or an expression in parentheses by
// concatenation. A pattern of any other form is refused rather than
// matched DuckDB's way. Only the Postgres protocol does this: over HTTP,
// SQL is DuckDB's.
func pgRegex(s string) (string, error) {
	if !strings.Contains(s, "~") {
		return s, nil
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	out := splicer{src: s}
	for i := 0; i < len(b); i++ {
		if b[i] != '~' || i+1 < len(b) && b[i+1] == '~' || i > 0 && b[i-1] == '~' {
			continue // ~~ and ~~* are LIKE and ILIKE, alike in both
		}
		op := i
		if i > 0 && b[i-1] == '!' {
			op = i - 1
		}
		end := i + 1
		fold := end < len(b) && b[end] == '*'
		if fold {
			end++
		}
		j := skipSpace(b, end)
		// s: . matches a newline too, as in PostgreSQL (a stack trace
		// or a multi-line message matched nothing).
		head := `(?s:.*)(?s:`
		if fold {
			head = `(?s:.*)(?is:`
		}
		const tail = `)(?s:.*)`
		concat := func(k int) string { return "('" + head + "' || " + s[j:k] + " || '" + tail + "')" }
		var rhs string
		k := j
		body, bodyEnd, end, literal := literalAt(b, j)
		switch {
		case literal: // wrapped inside its quotes
			if end < 0 {
				continue
			}
			k = end
			rhs = s[j:body] + head + s[body:bodyEnd] + tail + s[bodyEnd:end]
		case j+1 < len(b) && b[j] == '$' && b[j+1] >= '0' && b[j+1] <= '9':
			k = j + 1
			for k < len(b) && b[k] >= '0' && b[k] <= '9' {
				k++
			}
			rhs = concat(k)
		case !binaryAt(b, op):
			continue // ~x is bitwise not
		case j < len(b) && b[j] == '(':
			if k = matchForward(b, j); k < 0 {
				continue
			}
			rhs = concat(k)
		case j < len(b) && (b[j] == '"' || engine.IsIdentByte(b[j]) && !(b[j] >= '0' && b[j] <= '9')):
			for k = identEnd(b, j); k > 0 && k < len(b) && b[k] == '.'; k = identEnd(b, k+1) {
			}
			if k < 0 || notOperand[strings.ToLower(b[j:k])] {
				return "", errRegexPattern
			}
			if n := skipSpace(b, k); n < len(b) && b[n] == '(' {
				if k = matchForward(b, n); k < 0 {
					continue
				}
			}
			rhs = concat(k)
		case j < len(b) && b[j] >= '0' && b[j] <= '9':
			continue // no text: DuckDB says so
		default:
			return "", errRegexPattern
		}
		out.replace(op, k, s[op:i+1]+" "+rhs) // ~ or !~; a * is dropped
		i = k - 1
	}
	return out.text(), nil
}

// errRegexPattern: a pattern of ~ that pgRegex cannot wrap.
var errRegexPattern = &pgError{code: "0A000", msg: "the pattern of ~, ~*, !~ or !~* must be a string, a parameter, a column, " +
	"a function call or an expression in parentheses here: put it in parentheses"}

// notOperand holds the words that start a pattern pgRegex cannot wrap:
// ~ ANY (…), ~ CASE … END, ~ INTERVAL '…'.
var notOperand = map[string]bool{"any": true, "all": true, "some": true, "case": true, "array": true, "not": true,
	"exists": true, "interval": true}

// unaryBefore holds the keywords after which ~ is bitwise not, not a
// match: SELECT ~x, WHERE ~flags & 1 = 0.
var unaryBefore = map[string]bool{"select": true, "where": true, "and": true, "or": true, "not": true, "when": true,
	"then": true, "else": true, "on": true, "by": true, "having": true, "returning": true, "in": true, "is": true,
	"distinct": true, "limit": true, "offset": true, "set": true, "values": true, "return": true, "all": true,
	"any": true, "some": true, "between": true, "like": true, "ilike": true, "case": true}

// binaryAt reports whether the ~ at op has a left operand: what comes
// before it ends a value (a name, a literal, a closing bracket), not an
// operator, a comma or a keyword.
func binaryAt(b string, op int) bool {
	i := op - 1
	for i >= 0 && isSpace(b[i]) {
		i--
	}
	if i < 0 {
		return false
	}
	switch c := b[i]; {
	case c == ')' || c == ']' || c == '\'' || c == '"' || c == '$':
		return true
	case engine.IsIdentByte(c):
		w := i
		for w > 0 && engine.IsIdentByte(b[w-1]) {
			w--
		}
		return !unaryBefore[strings.ToLower(b[w:i+1])]
	}
	return false
}

// pgOperators gives PostgreSQL's meaning to what means something else in
// DuckDB: the regular expression operators, SIMILAR TO, jsonb's ?, ?|
// and ?&, the keys of -> and ->>, and numeric without a precision.
// Only the Postgres protocol does this: over HTTP, SQL is DuckDB's.
func pgOperators(s string) (string, error) {
	s, err := pgRegex(pgJSONExists(pgJSONKeys(pgNumericCasts(pgLikeEscape(s)))))
	if err != nil {
		return "", err
	}
	return pgSimilar(s)
}

// numericType finds a cast to numeric or decimal, on text with literals,
// comments and quoted identifiers blanked: ::numeric, or AS numeric
// (taken only inside CAST or TRY_CAST); float too.
var numericType = regexp.MustCompile(`(?i)(::\s*|\bAS\s+)(numeric|decimal|float)\b`)

// pgNumericCasts casts to DOUBLE where PostgreSQL casts to numeric without a
// precision, or to float, which is a double in PostgreSQL and a 4-byte
// real in DuckDB (count(*)::float / 3 lost digits; 16777217 became
// 16777216). DuckDB's numeric is DECIMAL(18,3): round(avg(x)::numeric, 4),
// PostgreSQL's way to round a double, gave 0.000 for 0.0003, and values
// from 10^15 up failed. A double keeps every value's magnitude and
// fifteen digits, which is what queries over telemetry round to; numeric
// with a precision, numeric(10,2), is left as written.
func pgNumericCasts(s string) string {
	if l := strings.ToLower(s); !strings.Contains(l, "numeric") && !strings.Contains(l, "decimal") && !strings.Contains(l, "float") {
		return s
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	out := splicer{src: s}
	for _, m := range numericType.FindAllStringSubmatchIndex(b, -1) {
		if after(b, m[1]) == '(' {
			continue // a precision: as written
		}
		if b[m[2]] != ':' && !inCast(b, m[0]) {
			continue // AS numeric naming a column
		}
		out.replace(m[4], m[5], "DOUBLE")
	}
	return out.text()
}

// inCast says whether offset i of b is inside the parentheses of a CAST
// or TRY_CAST call.
func inCast(b string, i int) bool { return castParen(b, i) >= 0 }

// castParen is where the parentheses of the CAST or TRY_CAST call around
// offset i of b open, or -1.
func castParen(b string, i int) int {
	depth := 0
	for i--; i >= 0; i-- {
		switch b[i] {
		case ')':
			depth++
		case '(':
			if depth > 0 {
				depth--
				continue
			}
			if _, name := nameBefore(b, i); name == "cast" || name == "try_cast" {
				return i
			}
			return -1
		}
	}
	return -1
}

// likeOperator finds LIKE and ILIKE (NOT too), on text with literals,
// comments and quoted names blanked.
var likeOperator = regexp.MustCompile(`(?i)\bI?LIKE\s+`)

// pgLikeEscape gives LIKE PostgreSQL's default escape character, the
// backslash, which DuckDB's LIKE does not have: 'span\_%' matched no name
// (psql's column completion found nothing). A literal pattern with a
// backslash and no ESCAPE clause gets ESCAPE '\'.
func pgLikeEscape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	out := splicer{src: s}
	for _, m := range likeOperator.FindAllStringIndex(b, -1) {
		body, bodyEnd, end, ok := literalAt(b, m[1])
		if !ok || end < 0 || !strings.Contains(s[body:bodyEnd], `\`) {
			continue
		}
		if k := skipSpace(b, end); k+6 <= len(b) && strings.EqualFold(b[k:k+6], "ESCAPE") {
			continue
		}
		out.replace(end, end, ` ESCAPE '\'`)
	}
	return out.text()
}

// pointerEscapes escape a key as a step of a JSON pointer.
var pointerEscapes = strings.NewReplacer("~", "~0", "/", "~1")

// pgJSONKeys makes a string on the right of -> and ->> a key, as in
// PostgreSQL: DuckDB reads one that starts with $ as a JSONPath, one that
// starts with / as a JSON pointer, and the empty key as the whole document, so
// ->>'$type' failed and ->>'/a/b' read a nested value. Such a key is
// written as the JSON pointer of that one key.
func pgJSONKeys(s string) string {
	if !strings.Contains(s, "->") {
		return s
	}
	b := blankIdentifiers(engine.BlankLiterals(s))
	out := splicer{src: s}
	for i := 0; i+1 < len(b); i++ {
		if b[i] != '-' || b[i+1] != '>' {
			continue
		}
		j := i + 2
		if j < len(b) && b[j] == '>' {
			j++
		}
		j = skipSpace(b, j)
		body, bodyEnd, end, ok := literalAt(b, j)
		if !ok || end < 0 {
			continue
		}
		if from, leftEnd := arrowLeft(b, i); from >= 0 && isLambda(b, from, leftEnd) {
			continue
		}
		key := s[body:bodyEnd]
		switch {
		case b[j] == '$': // dollar-quoted: as written
		case b[j] != '\'' && strings.ContainsRune(key, '\\'):
			continue // E'…' with escapes: left as written
		default:
			key = strings.ReplaceAll(key, "''", "'")
		}
		if key != "" && key[0] != '$' && key[0] != '/' {
			continue
		}
		out.replace(j, end, quoteLiteral("/"+pointerEscapes.Replace(key)))
		i = end - 1
	}
	return out.text()
}

var (
	// similarTo finds SIMILAR TO, on text with literals, comments and
	// quoted identifiers blanked.
	similarTo = regexp.MustCompile(`(?i)\bSIMILAR\s+TO\b\s*`)
	// similarEscape matches an ESCAPE clause after a pattern: its
	// character (or none) is read from the text.
	similarEscape = regexp.MustCompile(`(?i)^\s*ESCAPE\s*'`)
)

// errSimilarPattern: a SIMILAR TO pattern that is not a plain literal.
var errSimilarPattern = &pgError{code: "0A000", msg: "SIMILAR TO takes its pattern as a string literal here ('%b%', " +
	"with an optional ESCAPE '\\'): DuckDB would read any other pattern as a regular expression, not as PostgreSQL's SQL pattern; " +
	"for a computed pattern use ~ or regexp_full_match"}

// pgSimilar gives SIMILAR TO PostgreSQL's meaning: its pattern is an SQL
// regular expression (% any text, _ any character, . itself), where
// DuckDB's SIMILAR TO takes a POSIX one ('%b%' matched nothing, 'a.c'
// matched "abc"). A literal pattern, with its ESCAPE clause, is rewritten
// into the regular expression PostgreSQL makes of it; any other pattern
// (an expression, a parameter, an escape string) is refused rather than
// matched the other way.
func pgSimilar(s string) (string, error) {
	b := blankIdentifiers(engine.BlankLiterals(s))
	ms := similarTo.FindAllStringIndex(b, -1)
	if len(ms) == 0 {
		return s, nil
	}
	out := splicer{src: s}
	for _, m := range ms {
		open := m[1]
		if open >= len(b) || b[open] != '\'' {
			return "", errSimilarPattern
		}
		n := strings.IndexByte(b[open+1:], '\'')
		if n < 0 {
			return s, nil // an unterminated literal: DuckDB says so
		}
		end := open + 1 + n // the closing quote
		pattern := strings.ReplaceAll(s[open+1:end], "''", "'")
		escape, hasEscape := '\\', true
		next := end + 1
		if e := similarEscape.FindStringIndex(b[next:]); e != nil {
			q := next + e[1] - 1
			k := strings.IndexByte(b[q+1:], '\'')
			if k < 0 {
				return s, nil
			}
			switch esc := []rune(strings.ReplaceAll(s[q+1:q+1+k], "''", "'")); len(esc) {
			case 0:
				hasEscape = false
			case 1:
				escape = esc[0]
			default:
				return "", &pgError{code: "22025", msg: "invalid escape string: it must be empty or one character"}
			}
			next = q + 1 + k + 1
		}
		// The literal must be the whole pattern: 'a' || 'b' is refused.
		// What may follow: a comma, a parenthesis, the end, a keyword
		// (AND, THEN, FROM…).
		if rest := strings.TrimLeft(b[next:], " \t\n\r\f\v"); rest != "" && !strings.ContainsAny(rest[:1], ",);") && !engine.IsIdentByte(rest[0]) {
			return "", errSimilarPattern
		}
		out.replace(open, next, "'"+strings.ReplaceAll(similarRegex(pattern, escape, hasEscape), "'", "''")+"'")
	}
	return out.text(), nil
}

// blankIdentifiers blanks what is inside quoted identifiers ("a 'b'") in
// text whose literals and comments are blanked already, so that their
// contents are not taken for SQL.
func blankIdentifiers(b string) string {
	if !strings.Contains(b, `"`) {
		return b
	}
	out := []byte(b)
	in := false
	for i, c := range out {
		switch {
		case c == '"':
			in = !in // a "" inside toggles twice: still inside
		case in:
			out[i] = ' '
		}
	}
	return string(out)
}

// similarRegex turns an SQL regular expression (SIMILAR TO's, with its
// escape character) into the POSIX one PostgreSQL matches it as, anchored
// at both ends; as in PostgreSQL, % and _ match newlines too.
func similarRegex(p string, escape rune, hasEscape bool) string {
	var b strings.Builder
	b.WriteString("(?s)^(?:")
	inClass, classStart := false, false
	escaped := false
	rs := []rune(p)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case escaped:
			b.WriteString(regexp.QuoteMeta(string(r)))
			escaped = false
		case hasEscape && r == escape:
			escaped = true
		case inClass:
			// A bracket expression is copied as it is, its [:alpha:]
			// classes whole; a ] first in it is one of its characters.
			if r == '[' && i+1 < len(rs) && rs[i+1] == ':' {
				if j := strings.Index(string(rs[i:]), ":]"); j > 0 {
					cls := []rune(string(rs[i:])[:j+2])
					b.WriteString(string(cls))
					i += len(cls) - 1
					classStart = false
					continue
				}
			}
			if r == ']' && !classStart {
				inClass = false
			}
			classStart = classStart && r == '^'
			b.WriteRune(r)
		case r == '[':
			inClass, classStart = true, true
			b.WriteRune(r)
		case r == '%':
			b.WriteString(".*")
		case r == '_':
			b.WriteString(".")
		case r == '(':
			b.WriteString("(?:")
		case r == '.' || r == '^' || r == '$' || r == '\\':
			b.WriteRune('\\')
			b.WriteRune(r)
		default:
			b.WriteRune(r)
		}
	}
	if escaped {
		b.WriteString(`\\`)
	}
	b.WriteString(")$")
	return b.String()
}

// qualifiedTable finds a data table named with its schema (and database):
// public.records, main.metrics, strata.public."records".
var qualifiedTable = regexp.MustCompile(`(?i)(?:\b(?:strata|memory)\s*\.\s*)?(?:"public"|"main"|\bpublic|\bmain)\s*\.\s*("records"|"metrics"|records\b|metrics\b)`)

// unqualified drops the schema (and database) from data table names:
// tools that list tables under a schema (psql's \d shows main.records,
// BI tools write public.records) name them so, and only the bare names
// are the query's views.
func unqualified(s string) string {
	b := engine.BlankLiterals(s) // matches in strings or comments are blank here
	ms := qualifiedTable.FindAllStringSubmatchIndex(b, -1)
	if len(ms) == 0 {
		return s
	}
	out := splicer{src: s}
	for _, m := range ms {
		out.replace(m[0], m[1], s[m[2]:m[3]])
	}
	return out.text()
}
