package sql

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// The sandbox and the pruner both read DuckDB's own syntax tree of the
// query (json_serialize_sql), never the SQL text:
//
//   - only a single query (SELECT, WITH, VALUES, set operations) parses;
//     anything that writes, copies, attaches, loads or sets is refused;
//   - every table it names must be records, metrics or one of its own CTEs,
//     unqualified — a file path or another catalog is refused;
//   - table functions are limited to generators (range, unnest, …), so no
//     read_parquet, glob or query() reaches a file or a string of SQL;
//   - a few scalar functions that reveal the host (getenv,
//     current_setting) are refused.
//
// DuckDB itself is locked down underneath (see engine.Open), so this is a
// second wall, and the one that gives a clear error.

// allowedTableFunctions produce rows from their arguments alone.
var allowedTableFunctions = func() map[string]bool {
	out := map[string]bool{"range": true, "generate_series": true, "unnest": true, "generate_subscripts": true}
	for _, prefix := range []string{"json", "jsonb"} { // PostgreSQL's JSON table macros
		for _, t := range jsonTables {
			out[prefix+t.name] = true
		}
	}
	return out
}()

// catalogTableFunctions are the Postgres catalog's own table macros.
var catalogTableFunctions = map[string]bool{"string_to_array": true}

// deniedFunctions would tell a query about the host or its settings.
var deniedFunctions = map[string]bool{
	"getenv": true, "current_setting": true, "duckdb_secrets": true, "which_secret": true,
}

// subqueryMacros are DuckDB's built-in scalar macros whose bodies query its
// system tables (duckdb_views(), pragma_database_size(), …), which no check
// of the query's own tree sees: over data they would show the views' SQL,
// with file paths. The Postgres catalog's DuckDB, which holds nothing but
// empty tables, keeps them (psql's \d calls format_type).
// TestSandbox_SubqueryMacrosAreDenied keeps the list whole.
var subqueryMacros = map[string]bool{
	"pg_get_viewdef": true, "pg_get_constraintdef": true, "format_type": true, "get_block_size": true,
}

// tableUse is what a query asks of one table, merged over every place it
// reads it: the time range it is confined to and the trace ids it looks
// up. A reference without a bound leaves that side open.
type tableUse struct {
	refs     int
	lower    []map[string]any // per reference, nil: unbounded
	upper    []map[string]any
	traceIDs [][]string // per reference, nil: any trace
	min, max time.Time  // evaluated hull; zero: open
}

// analysis is the result of checking a query.
type analysis struct {
	tables  map[string]*tableUse // only tables the query reads
	columns []string             // columns it may read; nil: all
	// anyTable lets a query name any table: the Postgres catalog's
	// DuckDB holds nothing but empty tables and catalog views.
	anyTable bool
	// names are PostgreSQL's names of the result's columns (pgNames).
	names []string
	// pgSQL is the text with PostgreSQL's names for the columns of
	// one-column functions in FROM (aliasOneColumnFunctions), for the
	// Postgres protocol; empty if it has none.
	pgSQL string
}

// oneColumnFunctions are the set-returning functions of one column whose
// alias in FROM names that column, as in PostgreSQL: FROM
// json_array_elements_text(a) AS e, then SELECT e, is the element (in
// DuckDB e would be the row, a struct).
var oneColumnFunctions = map[string]bool{"json_array_elements": true, "jsonb_array_elements": true,
	"json_array_elements_text": true, "jsonb_array_elements_text": true, "json_object_keys": true,
	"jsonb_object_keys": true, "generate_series": true, "unnest": true}

// aliasOneColumnFunctions writes each aliased function of
// oneColumnFunctions in FROM with its alias as the column's name too
// (AS e becomes AS e(e)), in sql, the text stmt was parsed from; "" if
// there is none. The text is edited, not the tree deparsed: DuckDB's
// deparse changes literals' types (5. became an integer).
func aliasOneColumnFunctions(stmt any, sql string) string {
	b := engine.BlankLiterals(sql)
	var at []int // where an alias ends
	eachMap(stmt, func(v map[string]any) {
		if v["type"] != "TABLE_FUNCTION" || v["with_ordinality"] == "WITH_ORDINALITY" {
			return
		}
		alias, _ := v["alias"].(string)
		cols, _ := v["column_name_alias"].([]any)
		fn, _ := v["function"].(map[string]any)
		if alias == "" || len(cols) > 0 || fn == nil || !oneColumnFunctions[ident(fn["function_name"])] {
			return
		}
		if end := aliasAfterCall(b, location(fn), alias); end > 0 {
			at = append(at, end)
		}
	})
	if len(at) == 0 {
		return ""
	}
	sort.Sort(sort.Reverse(sort.IntSlice(at)))
	for _, end := range at {
		start := end - 1
		if b[start] == '"' {
			start = strings.LastIndexByte(b[:start], '"')
		} else {
			for start > 0 && engine.IsIdentByte(b[start-1]) {
				start--
			}
		}
		sql = sql[:end] + "(" + sql[start:end] + ")" + sql[end:]
	}
	return sql
}

// aliasAfterCall finds the call of a function at i of b (its name maybe
// qualified), then its alias, [AS] alias, not followed by column names:
// where the alias ends, or -1.
func aliasAfterCall(b string, i int, alias string) int {
	if i < 0 || i >= len(b) {
		return -1
	}
	for i = identEnd(b, i); i > 0 && i < len(b) && b[i] == '.'; i = identEnd(b, i+1) {
	}
	if i < 0 {
		return -1
	}
	if i = skipSpace(b, i); i >= len(b) || b[i] != '(' {
		return -1
	}
	if i = matchForward(b, i); i < 0 {
		return -1
	}
	i = skipSpace(b, i)
	if i+2 < len(b) && strings.EqualFold(b[i:i+2], "AS") && !engine.IsIdentByte(b[i+2]) {
		i = skipSpace(b, i+2)
	}
	end := identEnd(b, i)
	if end < 0 || strings.Trim(b[i:end], `"`) != alias || after(b, end) == '(' {
		return -1
	}
	return end
}

// uses lists the tables read, in a fixed order.
func (a *analysis) uses() []*tableUse {
	var out []*tableUse
	for _, t := range schema.Tables() {
		if u := a.tables[t.Name]; u != nil {
			out = append(out, u)
		}
	}
	return out
}

// traces returns the trace ids every reference of t is confined to, or nil
// if some reference reads any trace.
func (u *tableUse) traces() []string {
	var ids []string
	for _, r := range u.traceIDs {
		if r == nil {
			return nil
		}
		ids = append(ids, r...)
	}
	return ids
}

type sandboxError struct {
	msg string
	pos int
}

// analyze parses sql with DuckDB, enforces the sandbox and works out the
// time range and trace ids each table is read for.
func analyze(ctx context.Context, db *engine.DB, sql string) (*analysis, error) {
	tree, err := db.Parse(ctx, sql)
	if err != nil {
		return nil, err
	}
	stmts, _ := tree["statements"].([]any)
	if len(stmts) == 0 {
		return nil, &engine.QueryError{Msg: "the query is empty: it holds only comments or semicolons"}
	}
	if len(stmts) != 1 {
		return nil, &engine.QueryError{Msg: fmt.Sprintf("send one query at a time; this text holds %d statements", len(stmts))}
	}
	a := &analysis{tables: map[string]*tableUse{}}
	if err := a.check(stmts[0], nil); err != nil {
		return nil, &engine.QueryError{Msg: err.msg + "\n" + engine.PointAt(sql, err.pos)}
	}
	a.bounds(stmts[0])
	a.unboundedReadings(stmts[0])
	a.pgSQL = aliasOneColumnFunctions(stmts[0], sql)
	a.names = pgNames(stmts[0])
	if used := usedColumns(stmts[0]); used != nil {
		a.columns = make([]string, 0, len(used))
		for c := range used {
			a.columns = append(a.columns, c)
		}
	}
	if err := a.evaluate(ctx, db, tree); err != nil {
		return nil, err
	}
	return a, nil
}

func location(m map[string]any) int {
	n, ok := m["query_location"].(json.Number)
	if !ok {
		return -1
	}
	v, err := n.Int64()
	if err != nil || v > 1<<40 {
		return -1
	}
	return int(v)
}

// ident is a name of the parsed tree as DuckDB binds it: folded to lower
// case in ASCII only. Unicode folding would make names DuckDB tells apart
// (the Kelvin sign and k) equal here, and a CTE could then seem to shadow
// a system view it does not.
func ident(v any) string { return asciiLower(fmt.Sprint(v)) }

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// cteEntries returns the CTEs a query node defines, in order: their names
// and bodies.
func cteEntries(v map[string]any) (names []string, bodies []any) {
	cm, ok := v["cte_map"].(map[string]any)
	if !ok {
		return nil, nil
	}
	entries, _ := cm["map"].([]any)
	for _, e := range entries {
		if em, ok := e.(map[string]any); ok {
			if k, ok := em["key"].(string); ok {
				names, bodies = append(names, asciiLower(k)), append(bodies, em["value"])
			}
		}
	}
	return names, bodies
}

// recursiveTerm returns the recursive term of a CTE body that is a
// recursive union (WITH RECURSIVE t AS (anchor UNION recursive term)), the
// only place DuckDB binds the CTE's own name to the CTE, or nil.
func recursiveTerm(body any) map[string]any {
	b, _ := body.(map[string]any)
	q, _ := b["query"].(map[string]any)
	node, _ := q["node"].(map[string]any)
	if node["type"] != "RECURSIVE_CTE_NODE" {
		return nil
	}
	right, _ := node["right"].(map[string]any)
	return right
}

// eachMap calls fn for every object of a parsed tree, outermost first.
func eachMap(n any, fn func(m map[string]any)) {
	switch v := n.(type) {
	case map[string]any:
		fn(v)
		for _, c := range v {
			eachMap(c, fn)
		}
	case []any:
		for _, c := range v {
			eachMap(c, fn)
		}
	}
}

// withScope returns scope plus names, as a new set.
func withScope(scope map[string]bool, names ...string) map[string]bool {
	out := make(map[string]bool, len(scope)+len(names))
	for k := range scope {
		out[k] = true
	}
	for _, k := range names {
		out[k] = true
	}
	return out
}

// check walks the whole tree for tables and functions outside the sandbox.
// ctes are the CTE names in scope: a query node's CTEs are visible in its
// own clauses; a CTE's body sees the CTEs defined before it (and itself,
// if recursive), as DuckDB binds them — a CTE declared in one subquery
// must not let another part of the query name a file or a system view.
func (a *analysis) check(n any, ctes map[string]bool) *sandboxError {
	switch v := n.(type) {
	case map[string]any:
		if names, bodies := cteEntries(v); len(names) > 0 {
			for i, body := range bodies {
				visible := withScope(ctes, names[:i]...)
				if term := recursiveTerm(body); term != nil {
					// Checked apart: the name is the CTE there only.
					node := body.(map[string]any)["query"].(map[string]any)["node"].(map[string]any)
					delete(node, "right")
					err := a.check(body, visible)
					node["right"] = term
					if err == nil {
						err = a.check(term, withScope(visible, names[i]))
					}
					if err != nil {
						return err
					}
					continue
				}
				if err := a.check(body, visible); err != nil {
					return err
				}
			}
			inner := withScope(ctes, names...)
			for k, c := range v {
				if k == "cte_map" {
					continue
				}
				if err := a.check(c, inner); err != nil {
					return err
				}
			}
			return nil
		}
		switch v["type"] {
		case "BASE_TABLE":
			if a.anyTable {
				break
			}
			name := ident(v["table_name"])
			if v["schema_name"] != "" || v["catalog_name"] != "" {
				return &sandboxError{fmt.Sprintf("table %s.%s is not available: query records or metrics",
					v["schema_name"], v["table_name"]), location(v)}
			}
			if !ctes[name] {
				if _, err := schema.Lookup(name); err != nil {
					return &sandboxError{fmt.Sprintf("table %q is not available: query records or metrics", v["table_name"]), location(v)}
				}
			}
		case "SHOW_REF":
			// DESCRIBE or SUMMARIZE of a query is checked as that query;
			// SHOW TABLES and SHOW DATABASES would list the server's own.
			if name, _ := v["table_name"].(string); name != "" {
				return &sandboxError{"SHOW of tables and databases is not available: query records or metrics", location(v)}
			}
		case "TABLE_FUNCTION":
			fn, _ := v["function"].(map[string]any)
			name := ident(fn["function_name"])
			if !allowedTableFunctions[name] && !(a.anyTable && catalogTableFunctions[name]) {
				return &sandboxError{fmt.Sprintf("table function %s is not allowed: query records or metrics", name), location(v)}
			}
		}
		if v["class"] == "FUNCTION" {
			name := ident(v["function_name"])
			if deniedFunctions[name] || (!a.anyTable && subqueryMacros[name]) {
				return &sandboxError{fmt.Sprintf("function %s is not allowed", name), location(v)}
			}
		}
		for _, c := range v {
			if err := a.check(c, ctes); err != nil {
				return err
			}
		}
	case []any:
		for _, c := range v {
			if err := a.check(c, ctes); err != nil {
				return err
			}
		}
	}
	return nil
}

// tableRef is one reading of records or metrics in a FROM clause.
type tableRef struct {
	table string
	alias string
	use   int // index into the table's per-reference slices
	// unbounded: no conjunct may bound this reading — its columns are
	// renamed (records r(a, b)), so no name is sure to mean the table's
	// column; or which rows it yields depends on all the rows (TABLESAMPLE,
	// POSITIONAL JOIN), so reading fewer files would change them.
	unbounded bool
}

// bounds finds, for every reading of a table, the conjuncts of its SELECT's
// WHERE clause that bound its time column or pin its trace_id. Every
// reference named records or metrics counts as a reading, even one that
// may be a CTE of that name: a reading too many only widens the files
// read, one too few would leave the table without its view.
func (a *analysis) bounds(n any) {
	switch v := n.(type) {
	case map[string]any:
		if v["type"] == "SELECT_NODE" {
			a.selectNode(v)
		}
		for _, c := range v {
			a.bounds(c)
		}
	case []any:
		for _, c := range v {
			a.bounds(c)
		}
	}
}

// unboundedReadings adds a reading without bounds for every reference to
// records or metrics that bounds did not find in a FROM clause or join —
// the source of a PIVOT or UNPIVOT, say: the table must still get its
// view, over every file.
func (a *analysis) unboundedReadings(stmt any) {
	seen := map[string]int{}
	eachMap(stmt, func(m map[string]any) {
		if m["type"] == "BASE_TABLE" {
			if name := ident(m["table_name"]); isDataTable(name) {
				seen[name]++
			}
		}
	})
	for name, n := range seen {
		for a.tables[name] == nil || a.tables[name].refs < n {
			a.addReading(name)
		}
	}
}

// addReading adds an unbounded reading of a table and returns its index.
func (a *analysis) addReading(table string) int {
	u := a.tables[table]
	if u == nil {
		u = &tableUse{}
		a.tables[table] = u
	}
	u.refs++
	u.lower, u.upper, u.traceIDs = append(u.lower, nil), append(u.upper, nil), append(u.traceIDs, nil)
	return u.refs - 1
}

func isDataTable(name string) bool {
	_, err := schema.Lookup(name)
	return err == nil
}

func (a *analysis) selectNode(sel map[string]any) {
	var refs []tableRef
	positional := false
	var collect func(any)
	collect = func(n any) {
		m, ok := n.(map[string]any)
		if !ok {
			return
		}
		switch m["type"] {
		case "BASE_TABLE":
			name := ident(m["table_name"])
			if !isDataTable(name) {
				return
			}
			alias, _ := m["alias"].(string)
			renamed, _ := m["column_name_alias"].([]any)
			refs = append(refs, tableRef{table: name, alias: asciiLower(alias), use: a.addReading(name),
				unbounded: len(renamed) > 0 || m["sample"] != nil})
		case "JOIN":
			positional = positional || m["ref_type"] == "POSITIONAL"
			collect(m["left"])
			collect(m["right"])
		}
	}
	collect(sel["from_table"])
	if len(refs) == 0 || positional || sel["sample"] != nil {
		return // USING SAMPLE samples the joined rows before WHERE
	}
	for _, c := range conjuncts(sel["where_clause"]) {
		a.conjunct(c, refs)
	}
}

func conjuncts(n any) []map[string]any {
	m, ok := n.(map[string]any)
	if !ok {
		return nil
	}
	if m["type"] == "CONJUNCTION_AND" {
		var out []map[string]any
		children, _ := m["children"].([]any)
		for _, c := range children {
			out = append(out, conjuncts(c)...)
		}
		return out
	}
	return []map[string]any{m}
}

// refFor finds the reference a column belongs to, or nil if unsure.
func refFor(col map[string]any, refs []tableRef) (*tableRef, string) {
	if col == nil || col["class"] != "COLUMN_REF" {
		return nil, ""
	}
	names, _ := col["column_names"].([]any)
	switch len(names) {
	case 1:
		if len(refs) != 1 || refs[0].unbounded {
			// In a join, or with the table's columns renamed (the name
			// may then be another FROM item's, or an outer query's): not
			// sure whose it is.
			return nil, ""
		}
		return &refs[0], ident(names[0])
	case 2:
		q := ident(names[0])
		for i := range refs {
			if (refs[i].alias == q || (refs[i].alias == "" && refs[i].table == q)) && !refs[i].unbounded {
				return &refs[i], ident(names[1])
			}
		}
	}
	return nil, ""
}

// volatileFunctions give another value at each call: a bound computed
// from one before the query runs may not be the query's.
// TestPruner_VolatileFunctionsAreKnown keeps the list whole.
var volatileFunctions = map[string]bool{
	"random": true, "setseed": true, "uuid": true, "gen_random_uuid": true, "uuidv4": true, "uuidv7": true,
	"nextval": true, "currval": true, "current_connection_id": true, "current_query": true, "current_query_id": true,
	"current_transaction_id": true, "error": true, "sleep_ms": true, "stats": true, "write_log": true,
}

// constant reports whether an expression reads no column and no subquery,
// and calls nothing volatile, so it can be evaluated before the query runs.
func constant(n any) bool {
	switch v := n.(type) {
	case map[string]any:
		switch v["class"] {
		case "COLUMN_REF", "SUBQUERY", "STAR", "WINDOW", "PARAMETER":
			return false
		case "FUNCTION":
			if volatileFunctions[ident(v["function_name"])] {
				return false
			}
		}
		for _, c := range v {
			if !constant(c) {
				return false
			}
		}
	case []any:
		for _, c := range v {
			if !constant(c) {
				return false
			}
		}
	case nil:
		return true
	}
	return true
}

var flipped = map[string]string{
	"COMPARE_GREATERTHAN": "COMPARE_LESSTHAN", "COMPARE_GREATERTHANOREQUALTO": "COMPARE_LESSTHANOREQUALTO",
	"COMPARE_LESSTHAN": "COMPARE_GREATERTHAN", "COMPARE_LESSTHANOREQUALTO": "COMPARE_GREATERTHANOREQUALTO",
	"COMPARE_EQUAL": "COMPARE_EQUAL",
}

func (a *analysis) conjunct(c map[string]any, refs []tableRef) {
	mapf := func(k string) map[string]any { m, _ := c[k].(map[string]any); return m }
	switch c["class"] {
	case "COMPARISON":
		op, _ := c["type"].(string)
		left, right := mapf("left"), mapf("right")
		ref, col := refFor(left, refs)
		other := right
		if ref == nil {
			ref, col = refFor(right, refs)
			other, op = left, flipped[op]
		}
		if ref == nil || !constant(other) {
			return
		}
		a.bound(ref, col, op, other)
	case "BETWEEN":
		ref, col := refFor(mapf("input"), refs)
		if ref == nil || !constant(mapf("lower")) || !constant(mapf("upper")) {
			return
		}
		a.bound(ref, col, "COMPARE_GREATERTHANOREQUALTO", mapf("lower"))
		a.bound(ref, col, "COMPARE_LESSTHANOREQUALTO", mapf("upper"))
	case "OPERATOR":
		if c["type"] != "COMPARE_IN" {
			return
		}
		children, _ := c["children"].([]any)
		if len(children) < 2 {
			return
		}
		first, _ := children[0].(map[string]any)
		ref, col := refFor(first, refs)
		if ref == nil || col != "trace_id" {
			return
		}
		var ids []string
		for _, ch := range children[1:] {
			s, ok := stringConstant(ch)
			if !ok {
				return
			}
			ids = append(ids, s)
		}
		a.tables[ref.table].traceIDs[ref.use] = ids
	}
}

func stringConstant(n any) (string, bool) {
	m, ok := n.(map[string]any)
	if !ok || m["class"] != "CONSTANT" {
		return "", false
	}
	val, _ := m["value"].(map[string]any)
	typ, _ := val["type"].(map[string]any)
	if typ["id"] != "VARCHAR" || val["is_null"] == true {
		return "", false
	}
	s, ok := val["value"].(string)
	return s, ok
}

func (a *analysis) bound(ref *tableRef, col, op string, expr map[string]any) {
	u := a.tables[ref.table]
	t, _ := schema.Lookup(ref.table)
	if col == "trace_id" && op == "COMPARE_EQUAL" && ref.table == schema.Records {
		if s, ok := stringConstant(expr); ok {
			u.traceIDs[ref.use] = []string{s}
		}
		return
	}
	if col != t.TimeColumn {
		return
	}
	switch op {
	case "COMPARE_GREATERTHAN", "COMPARE_GREATERTHANOREQUALTO":
		u.lower[ref.use] = expr
	case "COMPARE_LESSTHAN", "COMPARE_LESSTHANOREQUALTO":
		u.upper[ref.use] = expr
	case "COMPARE_EQUAL":
		u.lower[ref.use], u.upper[ref.use] = expr, expr
	}
}

// evaluate computes the bound expressions in one DuckDB round trip and
// keeps, per table, the hull of the per-reference ranges. Bounds only prune
// files, so any trouble (an expression that is not a timestamp, say) just
// leaves the range open; DuckDB still applies the WHERE clause itself.
func (a *analysis) evaluate(ctx context.Context, db *engine.DB, tree map[string]any) error {
	var exprs []any
	for _, u := range a.uses() {
		for _, e := range append(append([]map[string]any(nil), u.lower...), u.upper...) {
			if e != nil {
				exprs = append(exprs, e)
			}
		}
	}
	if len(exprs) == 0 {
		return nil
	}
	tmpl, err := db.Parse(ctx, "SELECT 1")
	if err != nil {
		return err
	}
	stmt := tmpl["statements"].([]any)[0].(map[string]any)
	node := stmt["node"].(map[string]any)
	node["select_list"] = exprs
	sel, err := db.Deparse(ctx, tmpl)
	if err != nil {
		return nil
	}
	cols := make([]string, len(exprs))
	names := make([]string, len(exprs))
	for i := range exprs {
		names[i] = "c" + strconv.Itoa(i)
		cols[i] = "epoch_us(CAST(" + names[i] + " AS TIMESTAMP WITH TIME ZONE))"
	}
	row, err := db.Row(ctx, "SELECT "+strings.Join(cols, ", ")+" FROM ("+sel+") t("+strings.Join(names, ", ")+")")
	if err != nil || len(row) != len(exprs) {
		return nil
	}
	i := 0
	next := func() (time.Time, bool) {
		v := row[i]
		i++
		if v == nil {
			return time.Time{}, false
		}
		us, err := strconv.ParseInt(*v, 10, 64)
		if err != nil {
			return time.Time{}, false
		}
		return time.UnixMicro(us).UTC(), true
	}
	for _, u := range a.uses() {
		lows := make([]time.Time, len(u.lower))
		highs := make([]time.Time, len(u.upper))
		okLow := make([]bool, len(u.lower))
		okHigh := make([]bool, len(u.upper))
		for r, e := range u.lower {
			if e != nil {
				lows[r], okLow[r] = next()
			}
		}
		for r, e := range u.upper {
			if e != nil {
				highs[r], okHigh[r] = next()
			}
		}
		for r := range u.lower {
			if !okLow[r] {
				u.min = time.Time{}
				break
			}
			if r == 0 || lows[r].Before(u.min) {
				u.min = lows[r]
			}
		}
		for r := range u.upper {
			if !okHigh[r] {
				u.max = time.Time{}
				break
			}
			if r == 0 || highs[r].After(u.max) {
				u.max = highs[r]
			}
		}
	}
	return nil
}

// usedColumns lists the columns (lower case, of any table) that a query
// may read, or returns nil when it may read all of them or when the
// analysis cannot tell: a star (SELECT *, t.*, COLUMNS(…)), a whole row
// (to_json(r)), a NATURAL or POSITIONAL join, positional references,
// renamed columns (FROM records r(a, b)), PIVOT, or any name that is not a
// column or a table (a select-list alias, a lambda parameter, a CTE's
// column). Rows still in ingest are copied into DuckDB with these columns
// only; when in doubt, all of them.
func usedColumns(stmt any) map[string]bool {
	known := map[string]bool{}
	for _, t := range schema.Tables() {
		for _, f := range t.Schema.Fields() {
			known[f.Name] = true
		}
	}
	tables := map[string]bool{}
	all := false
	var scan func(n any)
	scan = func(n any) {
		switch v := n.(type) {
		case map[string]any:
			switch {
			case v["class"] == "STAR" || v["class"] == "POSITIONAL_REFERENCE" || v["type"] == "PIVOT":
				all = true
			case v["ref_type"] == "NATURAL" || v["ref_type"] == "POSITIONAL":
				all = true
			case v["type"] == "BASE_TABLE":
				if a, _ := v["column_name_alias"].([]any); len(a) > 0 {
					all = true
				}
				tables[ident(v["table_name"])] = true
				if alias, _ := v["alias"].(string); alias != "" {
					tables[asciiLower(alias)] = true
				}
			}
			for _, c := range v {
				scan(c)
			}
		case []any:
			for _, c := range v {
				scan(c)
			}
		}
	}
	scan(stmt)
	if all {
		return nil
	}
	used := map[string]bool{}
	var refs func(n any) bool
	refs = func(n any) bool {
		switch v := n.(type) {
		case map[string]any:
			var names []any
			if v["class"] == "COLUMN_REF" {
				names, _ = v["column_names"].([]any)
				if len(names) == 1 && tables[ident(names[0])] {
					return false // a whole row
				}
			} else if v["type"] == "JOIN" {
				names, _ = v["using_columns"].([]any)
			}
			for i, nm := range names {
				name := ident(nm)
				switch {
				case known[name]:
					used[name] = true
				case i == 0 && len(names) > 1 && tables[name]:
				default:
					return false
				}
			}
			for _, c := range v {
				if !refs(c) {
					return false
				}
			}
		case []any:
			for _, c := range v {
				if !refs(c) {
					return false
				}
			}
		}
		return true
	}
	if !refs(stmt) {
		return nil
	}
	return used
}
