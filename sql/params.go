package sql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// Prepared statements of the Postgres wire protocol carry $n parameters.
// strata binds them into the query's syntax tree as constants, so the
// executed SQL is an ordinary query that passes through the sandbox like
// any other: text, cast to the parameter's type where it has one (as text
// alone, '41' + 1, now() - '1 hour' and = ANY('{a,b}') do not bind).

// walkParams calls fn for every parameter node of a parsed query.
func walkParams(n any, fn func(m map[string]any)) {
	eachMap(n, func(m map[string]any) {
		if m["class"] == "PARAMETER" {
			fn(m)
		}
	})
}

// walkSelectLists calls fn for every item of every SELECT list.
func walkSelectLists(n any, fn func(item map[string]any)) {
	eachMap(n, func(v map[string]any) {
		if items, ok := v["select_list"].([]any); ok && v["type"] == "SELECT_NODE" {
			for _, it := range items {
				if m, ok := it.(map[string]any); ok {
					fn(m)
				}
			}
		}
	})
}

// paramTypes returns the type OID of each $n parameter of sql (index n-1):
// the type of the column it is compared with, bigint for LIMIT and OFFSET,
// text otherwise. Clients encode their arguments by these types.
func (e *Executor) paramTypes(ctx context.Context, sql string) ([]uint32, error) {
	_, sql = splitExplain(sql)
	tree, err := e.Engine.Parse(ctx, normalizeSQL(sql))
	if err != nil {
		return nil, err
	}
	return paramOIDs(tree)
}

// paramOIDs infers the types of the parameters of a parsed query.
func paramOIDs(tree map[string]any) ([]uint32, error) {
	n := 0
	walkParams(tree, func(m map[string]any) {
		if i := paramIndex(m); i > n {
			n = i
		}
	})
	if n > maxParams {
		return nil, &pgError{code: "54023", msg: fmt.Sprintf("query has parameter $%d; the protocol allows at most $%d", n, maxParams)}
	}
	oids := make([]uint32, n)
	for i := range oids {
		oids[i] = oidText
	}
	inferred := map[int]paramUse{}
	inferParamTypes(tree, inferred)
	for i, u := range inferred {
		oids[i-1] = u.oid
	}
	return oids, nil
}

// paramUse is a type a use of a parameter implies: PostgreSQL types a
// parameter by its first use, so the use nearest the start of the text
// wins, and at one place an explicit cast wins over the context.
type paramUse struct {
	at, rank int
	oid      uint32
}

// maxParams is the most parameters a Bind can carry (a 16-bit count).
const maxParams = math.MaxUint16

func paramIndex(m map[string]any) int {
	id, _ := m["identifier"].(string)
	i, err := strconv.Atoi(id)
	if err != nil {
		return 0
	}
	return i
}

// columnOIDs are the wire types of every column of the tables.
var columnOIDs = func() map[string]uint32 {
	out := map[string]uint32{}
	for _, t := range schema.Tables() {
		for _, f := range t.Schema.Fields() {
			out[f.Name] = pgColumnFor(f.Type).oid
		}
	}
	return out
}()

// catalogOIDColumns are pg_catalog columns holding object ids, which
// drivers look types and tables up by ($1 an int, not text); 4-byte ints
// on the wire, as the ids strata's catalog gives are small.
var catalogOIDColumns = map[string]bool{
	"oid": true, "typelem": true, "typrelid": true, "typnamespace": true, "typbasetype": true, "typarray": true,
	"attrelid": true, "atttypid": true, "relnamespace": true, "reltype": true, "objoid": true, "classoid": true,
}

// duckTypes are the DuckDB types of wire types: a parameter of one is
// bound as its text cast to it. Text and bytea (\xNN escapes DuckDB reads
// where the text is cast to BLOB) stay text; numeric: see castType.
var duckTypes = map[uint32]string{
	oidBool: "BOOLEAN", oidInt2: "SMALLINT", oidInt4: "INTEGER", oidInt8: "BIGINT",
	oidFloat4: "FLOAT", oidFloat8: "DOUBLE", oidDate: "DATE", oidTimestamp: "TIMESTAMP",
	oidTimestamptz: "TIMESTAMP WITH TIME ZONE", oidInterval: "INTERVAL", oidTime: "TIME",
}

// castOIDs are the wire types of DuckDB's type names, for parameters
// cast in the query.
var castOIDs = func() map[string]uint32 {
	out := map[string]uint32{"VARCHAR": oidText, "BLOB": oidBytea}
	for oid, name := range duckTypes {
		out[name] = oid
	}
	return out
}()

// castOID is the wire type of a cast_type node: a list's is the array of
// its element's (text[] for lists of other types).
func castOID(ct any) uint32 {
	t, ok := ct.(map[string]any)
	if !ok {
		return 0
	}
	if t["id"] == "UNBOUND" { // a type DuckDB binds later: JSON, and jsonb (Setup)
		if info, _ := t["type_info"].(map[string]any); info != nil {
			if name := strings.ToLower(fmt.Sprint(info["name"])); name == "json" || name == "jsonb" {
				return oidJSON // a client encodes its maps and structs so
			}
		}
		return 0
	}
	if t["id"] != "LIST" {
		return castOIDs[fmt.Sprint(t["id"])]
	}
	info, _ := t["type_info"].(map[string]any)
	elem := castOID(info["child_type"])
	if a, ok := arrayOIDs[elem]; ok {
		return a
	}
	return arrayOIDs[oidText]
}

// intTypes are the integer wire types: PostgreSQL's name and size of each.
var intTypes = map[uint32]struct {
	name string
	bits int
}{oidInt2: {"smallint", 16}, oidInt4: {"integer", 32}, oidInt8: {"bigint", 64}}

// checkInteger refuses, as PostgreSQL does, the text of an integer
// parameter that is not an integer of its size: DuckDB's cast would round
// '1.5' to 2, so $1 * 1000 with 0.5 filtered on 1000.
func checkInteger(v string, oid uint32) error {
	t, ok := intTypes[oid]
	if !ok {
		return nil
	}
	_, err := strconv.ParseInt(strings.TrimSpace(v), 10, t.bits)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return &pgError{code: "22003", msg: fmt.Sprintf("value %q is out of range for type %s", v, t.name)}
	case err != nil:
		return &pgError{code: "22P02", msg: fmt.Sprintf("invalid input syntax for type %s: %q", t.name, v)}
	}
	return nil
}

// castType is the cast_type node of a wire type (nil: bound as text).
// numeric is bound as DOUBLE, as numeric casts are (pgNumericCasts): as
// text, 2.0 * $1 found no operator.
func castType(oid uint32) map[string]any {
	if oid == oidNumeric {
		return map[string]any{"id": "DOUBLE", "type_info": nil}
	}
	if name, ok := duckTypes[oid]; ok {
		return map[string]any{"id": name, "type_info": nil}
	}
	elem, ok := elemOIDs[oid]
	if !ok {
		return nil
	}
	child := castType(elem)
	if child == nil {
		child = map[string]any{"id": "VARCHAR", "type_info": nil}
	}
	return map[string]any{"id": "LIST", "type_info": map[string]any{
		"type": "LIST_TYPE_INFO", "alias": "", "extension_info": nil, "child_type": child}}
}

// columnOID is the wire type of a column reference (0: not one, or not a
// column strata knows).
func columnOID(col any) uint32 {
	c, ok := col.(map[string]any)
	if !ok || c["class"] != "COLUMN_REF" {
		return 0
	}
	names, _ := c["column_names"].([]any)
	if len(names) == 0 {
		return 0
	}
	name := strings.ToLower(fmt.Sprint(names[len(names)-1]))
	if o, ok := columnOIDs[name]; ok {
		return o
	}
	if catalogOIDColumns[name] {
		return oidInt4
	}
	return 0
}

// operandOID is the type of a parameter beside other in an arithmetic
// operator op: a number's beside a number; an interval added to or taken
// from a time ($1 + 1, duration * $1, now() - $1).
func operandOID(other any, op string) uint32 {
	o, ok := other.(map[string]any)
	if !ok {
		return 0
	}
	var oid uint32
	switch o["class"] {
	case "COLUMN_REF":
		oid = columnOID(o)
	case "CONSTANT":
		v, _ := o["value"].(map[string]any)
		t, _ := v["type"].(map[string]any)
		switch t["id"] {
		case "INTEGER", "BIGINT", "HUGEINT":
			oid = oidInt8
		case "DOUBLE", "FLOAT", "DECIMAL":
			oid = oidFloat8
		}
	case "CAST":
		oid = castOID(o["cast_type"])
	case "FUNCTION":
		switch strings.ToLower(fmt.Sprint(o["function_name"])) {
		case "now", "current_timestamp", "get_current_timestamp", "transaction_timestamp":
			oid = oidTimestamptz
		case "current_date", "today":
			oid = oidDate
		}
	}
	switch oid {
	case oidTimestamp, oidTimestamptz, oidDate:
		if op == "+" || op == "-" {
			return oidInterval
		}
		return 0
	case oidInt2, oidInt4, oidInt8, oidFloat4, oidFloat8, oidInterval:
		return oid
	}
	return 0
}

var arithmetic = map[string]bool{"+": true, "-": true, "*": true, "/": true, "//": true, "%": true}

// argOIDs are the wire types of the leading arguments of functions whose
// parameters are typed by the call: to_timestamp($1) takes a double, as
// PostgreSQL infers (text, the default, is not what a client sends an
// epoch as; pgx refuses to encode an int64 as text).
var argOIDs = map[string][]uint32{
	"to_timestamp": {oidFloat8}, "epoch_ms": {oidInt8}, jsonbFunc: {oidJSON}, // $1::jsonb (pgJSONBCasts)
	"time_bucket": {oidInterval}, "date_bin": {oidInterval},
	"to_seconds": {oidFloat8}, "to_milliseconds": {oidFloat8}, "to_minutes": {oidInt8}, "to_hours": {oidInt8}, "to_days": {oidInt4},
	opExistsAny: {0, arrayOIDs[oidText]}, opExistsAll: {0, arrayOIDs[oidText]}, // jsonb's ?| and ?& take text[]
}

// unnestParam is the parameter of a subquery SELECT unnest($n), as
// x = ANY($n) parses.
func unnestParam(sub any) map[string]any {
	s, _ := sub.(map[string]any)
	node, _ := s["node"].(map[string]any)
	items, _ := node["select_list"].([]any)
	if len(items) != 1 {
		return nil
	}
	f, _ := items[0].(map[string]any)
	args, _ := f["children"].([]any)
	if f["class"] != "FUNCTION" || f["function_name"] != "unnest" || len(args) != 1 {
		return nil
	}
	if p, _ := args[0].(map[string]any); p["class"] == "PARAMETER" {
		return p
	}
	return nil
}

// inferParamTypes records in uses, by parameter number, the type of each
// parameter's first use that implies one. The tree is walked in no set
// order (its nodes are maps): the text's order is the uses' locations.
func inferParamTypes(n any, uses map[int]paramUse) {
	use := func(param any, oid uint32, rank int) {
		p, ok := param.(map[string]any)
		if !ok || p["class"] != "PARAMETER" || oid == 0 {
			return
		}
		i, at := paramIndex(p), location(p)
		if u, ok := uses[i]; i >= 1 && (!ok || at < u.at || at == u.at && rank < u.rank) {
			uses[i] = paramUse{at: at, rank: rank, oid: oid}
		}
	}
	// set: the type of the column col if param is compared with one
	// (rank 1), else oid (rank 2).
	set := func(param, col any, oid uint32) {
		if o := columnOID(col); o != 0 {
			use(param, o, 1)
			return
		}
		use(param, oid, 2)
	}
	switch v := n.(type) {
	case map[string]any:
		switch v["class"] {
		case "CAST": // $1::timestamptz is a timestamptz, as PostgreSQL infers
			use(v["child"], castOID(v["cast_type"]), 0)
		case "SUBQUERY": // x = ANY($1): an array of x's type
			if t := v["subquery_type"]; t == "ANY" || t == "ALL" {
				if p := unnestParam(v["subquery"]); p != nil {
					elem := columnOID(v["child"])
					if _, ok := arrayOIDs[elem]; !ok {
						elem = oidText
					}
					set(p, nil, arrayOIDs[elem])
				}
			}
		case "FUNCTION":
			op := fmt.Sprint(v["function_name"])
			args, _ := v["children"].([]any)
			if v["is_operator"] == true && len(args) == 2 && arithmetic[op] {
				set(args[0], nil, operandOID(args[1], op))
				set(args[1], nil, operandOID(args[0], op))
			}
			for i, oid := range argOIDs[strings.ToLower(op)] {
				if i < len(args) {
					set(args[i], nil, oid)
				}
			}
		case "COMPARISON":
			set(v["left"], v["right"], 0)
			set(v["right"], v["left"], 0)
		case "BETWEEN":
			set(v["lower"], v["input"], 0)
			set(v["upper"], v["input"], 0)
		case "OPERATOR":
			if children, _ := v["children"].([]any); v["type"] == "COMPARE_IN" && len(children) > 1 {
				for _, c := range children[1:] {
					set(c, children[0], 0)
				}
			}
		}
		if v["type"] == "LIMIT_MODIFIER" {
			set(v["limit"], nil, oidInt8)
			set(v["offset"], nil, oidInt8)
		}
		for _, c := range v {
			inferParamTypes(c, uses)
		}
	case []any:
		for _, c := range v {
			inferParamTypes(c, uses)
		}
	}
}

// bindParams replaces $n parameters with values (nil: NULL) of the wire
// types oids.
func (e *Executor) bindParams(ctx context.Context, sql string, values []*string, oids []uint32) (string, error) {
	explain, sql := splitExplain(sql)
	tree, err := e.Engine.Parse(ctx, normalizeSQL(sql))
	if err != nil {
		return "", err
	}
	var bad error
	walkParams(tree, func(m map[string]any) {
		i := paramIndex(m)
		if i < 1 || i > len(values) {
			bad = &pgError{code: "08P01", msg: fmt.Sprintf("query has parameter $%v but %d were bound", m["identifier"], len(values))}
			return
		}
		toConstant(m, values[i-1], oids[i-1])
	})
	if bad != nil {
		return "", bad
	}
	sql, err = e.Engine.Deparse(ctx, tree)
	return explain + sql, err
}

// toConstant turns a parameter node into a string constant (or NULL),
// cast to the DuckDB type of oid if it has one.
func toConstant(m map[string]any, v *string, oid uint32) {
	delete(m, "identifier")
	for _, k := range []string{"child", "cast_type", "try_cast", "value"} {
		delete(m, k) // bound before (describe tries several values)
	}
	c := m
	if ct := castType(oid); ct != nil {
		c = map[string]any{"alias": "", "query_location": m["query_location"]}
		m["class"], m["type"], m["child"], m["cast_type"], m["try_cast"] = "CAST", "OPERATOR_CAST", c, ct, false
	}
	c["class"], c["type"] = "CONSTANT", "VALUE_CONSTANT"
	if v == nil {
		c["value"] = map[string]any{"type": map[string]any{"id": "NULL", "type_info": nil}, "is_null": true}
		return
	}
	c["value"] = map[string]any{"type": map[string]any{"id": "VARCHAR", "type_info": nil}, "is_null": false, "value": *v}
}

// describe returns the columns a query would return, without reading any
// data: it runs, sandboxed, over empty tables. Each parameter is bound as
// Execute binds it, as text, to a sample of the type it was inferred to
// have (the empty string for text, 0 for a number…): a NULL would be
// folded away with its type (DuckDB types NULL::VARCHAR || 'z' as an
// integer). If the samples make the query fail (an empty string is no
// date part), each parameter is tried as NULL alone, then all are.
func (e *Executor) describe(ctx context.Context, sql string) (*arrow.Schema, error) {
	if explain, query := splitExplain(sql); explain != "" {
		// The plan's two text columns, once the query is known to be one
		// that may run.
		if _, err := analyze(ctx, e.Engine, normalizeSQL(query)); err != nil {
			return nil, err
		}
		return explainSchema, nil
	}
	tree, err := e.Engine.Parse(ctx, normalizeSQL(sql))
	if err != nil {
		return nil, err
	}
	oids, err := paramOIDs(tree)
	if err != nil {
		return nil, err
	}
	// The parameters' nodes, found once: each try binds them again.
	type param struct {
		node map[string]any
		i    int
	}
	var params []param
	walkParams(tree, func(m map[string]any) { params = append(params, param{m, paramIndex(m)}) })
	samples := sampleValues(oids)
	try := func(null int) (*arrow.Schema, error) { // the samples, but $null as NULL (-1: all)
		for _, p := range params {
			var v *string
			if p.i >= 1 && p.i <= len(samples) && p.i != null && null >= 0 {
				v = samples[p.i-1]
			}
			oid := uint32(oidText)
			if p.i >= 1 && p.i <= len(oids) {
				oid = oids[p.i-1]
			}
			toConstant(p.node, v, oid)
		}
		return e.describeTree(ctx, tree, sql)
	}
	schema, err := try(0)
	if err == nil || ctx.Err() != nil || len(oids) == 0 {
		return schema, err
	}
	for null := 1; null <= min(len(oids), maxSampleRetries); null++ {
		if schema, err := try(null); err == nil || ctx.Err() != nil {
			return schema, err
		}
	}
	return try(-1)
}

// explainPrefix matches EXPLAIN and EXPLAIN ANALYZE before a query, on
// text with literals and comments blanked.
var explainPrefix = regexp.MustCompile(`(?is)^\s*EXPLAIN(?:\s+ANALY[SZ]E)?\s`)

// splitExplain splits "EXPLAIN [ANALYZE] query" into the EXPLAIN and the
// query, which is analysed, pruned and confined as any query is; for
// anything else explain is "".
func splitExplain(sql string) (explain, query string) {
	if m := explainPrefix.FindStringIndex(engine.BlankLiterals(sql)); m != nil {
		return sql[:m[1]], sql[m[1]:]
	}
	return "", sql
}

// explainSchema is what DuckDB's EXPLAIN returns.
var explainSchema = arrow.NewSchema([]arrow.Field{
	{Name: "explain_key", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "explain_value", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

// maxSampleRetries bounds the describes tried with one parameter NULL.
const maxSampleRetries = 8

// sampleValues are values of parameters of the given types, as Execute
// binds them (nil: NULL, for a type without a sample).
func sampleValues(oids []uint32) []*string {
	out := make([]*string, len(oids))
	for i, oid := range oids {
		if s, ok := paramSamples[oid]; ok {
			out[i] = &s
		} else if _, ok := elemOIDs[oid]; ok {
			s := "[]"
			out[i] = &s
		}
	}
	return out
}

// paramSamples are values of each parameter type, as Execute binds them.
var paramSamples = map[uint32]string{
	oidText: "", oidBool: "false", oidInt2: "0", oidInt4: "0", oidInt8: "0", oidFloat4: "0", oidFloat8: "0",
	oidNumeric: "0", oidDate: "2000-01-01", oidTimestamp: "2000-01-01 00:00:00", oidTimestamptz: "2000-01-01 00:00:00+00",
	oidInterval: "0 microseconds", oidTime: "00:00:00",
}

// describeTree describes a parsed query whose parameters are bound; an
// error points into user, the query as the client wrote it.
func (e *Executor) describeTree(ctx context.Context, tree map[string]any, user string) (*arrow.Schema, error) {
	sql, err := e.Engine.Deparse(ctx, tree)
	if err != nil {
		return nil, err
	}
	a, err := analyze(ctx, e.Engine, sql)
	if err != nil {
		return nil, repoint(err, sql, user)
	}
	if a.pgSQL != "" {
		sql = a.pgSQL
	}
	wrapped := "SELECT * FROM (" + sql + ") LIMIT 0"
	rows, err := e.Engine.Query(ctx, engine.Query{SQL: wrapped, Files: map[string][]engine.File{schema.Records: nil, schema.Metrics: nil}})
	if err != nil {
		return nil, repoint(err, wrapped, user)
	}
	defer rows.Release()
	// Named from the tree, against the client's text: the deparsed text
	// quotes no alias, so it cannot tell which were quoted.
	stmts, _ := tree["statements"].([]any)
	return withNames(rows.Schema(), foldUnquoted(pgNames(stmts[0]), user)), nil
}
