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
	tree, err := e.Engine.Parse(ctx, sql)
	if err != nil {
		return nil, err
	}
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
				if o, ok := columnOIDs[strings.ToLower(fmt.Sprint(names[len(names)-1]))]; ok {
					oid = o
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
	tree, err := e.Engine.Parse(ctx, sql)
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
// data: it runs, sandboxed, over empty tables, with NULL text parameters.
func (e *Executor) describe(ctx context.Context, sql string) (*arrow.Schema, error) {
	tree, err := e.Engine.Parse(ctx, sql)
	if err != nil {
		return nil, err
	}
	// A parameter selected as it is comes back as the text Execute binds
	// it as: describe it as a text NULL, not as an untyped NULL (integer).
	// Elsewhere an untyped NULL takes the type its use asks for.
	null, err := e.Engine.Parse(ctx, "SELECT NULL::VARCHAR")
	if err != nil {
		return nil, err
	}
	textNull := null["statements"].([]any)[0].(map[string]any)["node"].(map[string]any)["select_list"].([]any)[0].(map[string]any)
	walkSelectLists(tree, func(item map[string]any) {
		if item["class"] == "PARAMETER" {
			alias := item["alias"]
			clear(item)
			for k, v := range textNull {
				item[k] = v // shared, never changed: the tree is only deparsed
			}
			item["alias"] = alias
		}
	})
	walkParams(tree, func(m map[string]any) { toConstant(m, nil) })
	if sql, err = e.Engine.Deparse(ctx, tree); err != nil {
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
