package sql

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// Prepared statements of the Postgres wire protocol carry $n parameters.
// strata binds them into the query's syntax tree as constants (strings,
// which DuckDB casts where they are compared), so the executed SQL is an
// ordinary query that passes through the sandbox like any other.

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
	inferParamTypes(tree, oids)
	return oids, nil
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

// castOIDs are the wire types of DuckDB's type names, for parameters
// cast in the query.
var castOIDs = map[string]uint32{
	"BOOLEAN": oidBool, "SMALLINT": oidInt2, "INTEGER": oidInt4, "BIGINT": oidInt8,
	"FLOAT": oidFloat4, "DOUBLE": oidFloat8, "VARCHAR": oidText, "BLOB": oidBytea, "DATE": oidDate,
	"TIMESTAMP": oidTimestamp, "TIMESTAMP WITH TIME ZONE": oidTimestamptz,
}

func inferParamTypes(n any, oids []uint32) {
	set := func(param, col any, oid uint32) {
		p, ok := param.(map[string]any)
		if !ok || p["class"] != "PARAMETER" {
			return
		}
		if c, ok := col.(map[string]any); ok && c["class"] == "COLUMN_REF" {
			names, _ := c["column_names"].([]any)
			if len(names) > 0 {
				name := strings.ToLower(fmt.Sprint(names[len(names)-1]))
				if o, ok := columnOIDs[name]; ok {
					oid = o
				} else if catalogOIDColumns[name] {
					oid = oidInt4
				}
			}
		}
		if i := paramIndex(p); i >= 1 && i <= len(oids) && oid != 0 {
			oids[i-1] = oid
		}
	}
	switch v := n.(type) {
	case map[string]any:
		switch v["class"] {
		case "CAST": // $1::timestamptz is a timestamptz, as PostgreSQL infers
			if ct, ok := v["cast_type"].(map[string]any); ok {
				set(v["child"], nil, castOIDs[fmt.Sprint(ct["id"])])
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
			inferParamTypes(c, oids)
		}
	case []any:
		for _, c := range v {
			inferParamTypes(c, oids)
		}
	}
}

// bindParams replaces $n parameters with values (nil: NULL).
func (e *Executor) bindParams(ctx context.Context, sql string, values []*string) (string, error) {
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
		toConstant(m, values[i-1])
	})
	if bad != nil {
		return "", bad
	}
	return e.Engine.Deparse(ctx, tree)
}

// toConstant turns a parameter node into a string constant (or NULL).
func toConstant(m map[string]any, v *string) {
	delete(m, "identifier")
	m["class"], m["type"] = "CONSTANT", "VALUE_CONSTANT"
	if v == nil {
		m["value"] = map[string]any{"type": map[string]any{"id": "NULL", "type_info": nil}, "is_null": true}
		return
	}
	m["value"] = map[string]any{"type": map[string]any{"id": "VARCHAR", "type_info": nil}, "is_null": false, "value": *v}
}

// describe returns the columns a query would return, without reading any
// data: it runs, sandboxed, over empty tables. Each parameter is bound as
// Execute binds it, as text, to a sample of the type it was inferred to
// have (the empty string for text, 0 for a number…): a NULL would be
// folded away with its type (DuckDB types NULL::VARCHAR || 'z' as an
// integer). If the samples make the query fail (an empty string is no
// date part), each parameter is tried as NULL alone, then all are.
func (e *Executor) describe(ctx context.Context, sql string) (*arrow.Schema, error) {
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
			toConstant(p.node, v)
		}
		return e.describeTree(ctx, tree)
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

// maxSampleRetries bounds the describes tried with one parameter NULL.
const maxSampleRetries = 8

// sampleValues are values of parameters of the given types, as Execute
// binds them (nil: NULL, for a type without a sample).
func sampleValues(oids []uint32) []*string {
	out := make([]*string, len(oids))
	for i, oid := range oids {
		if s, ok := paramSamples[oid]; ok {
			out[i] = &s
		}
	}
	return out
}

// paramSamples are values of each parameter type, as Execute binds them.
var paramSamples = map[uint32]string{
	oidText: "", oidBool: "false", oidInt2: "0", oidInt4: "0", oidInt8: "0", oidFloat4: "0", oidFloat8: "0",
	oidNumeric: "0", oidDate: "2000-01-01", oidTimestamp: "2000-01-01 00:00:00", oidTimestamptz: "2000-01-01 00:00:00+00",
}

// describeTree describes a parsed query whose parameters are bound.
func (e *Executor) describeTree(ctx context.Context, tree map[string]any) (*arrow.Schema, error) {
	sql, err := e.Engine.Deparse(ctx, tree)
	if err != nil {
		return nil, err
	}
	if _, err := analyze(ctx, e.Engine, sql); err != nil {
		return nil, err
	}
	rows, err := e.Engine.Query(ctx, engine.Query{SQL: "SELECT * FROM (" + sql + ") LIMIT 0", Files: map[string][]string{schema.Records: nil, schema.Metrics: nil}})
	if err != nil {
		return nil, err
	}
	defer rows.Release()
	return rows.Schema(), nil
}
