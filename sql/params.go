package sql

import (
	"context"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/strata-db/strata/engine"
)

// Prepared statements of the Postgres wire protocol carry $n parameters.
// strata binds them into the query's syntax tree as constants (strings,
// which DuckDB casts where they are compared), so the executed SQL is an
// ordinary query that passes through the sandbox like any other.

// walkParams calls fn for every parameter node of a parsed query.
func walkParams(n any, fn func(m map[string]any)) {
	switch v := n.(type) {
	case map[string]any:
		if v["class"] == "PARAMETER" {
			fn(v)
			return
		}
		for _, c := range v {
			walkParams(c, fn)
		}
	case []any:
		for _, c := range v {
			walkParams(c, fn)
		}
	}
}

// countParams returns the number of $n parameters of sql.
func (e *Executor) countParams(ctx context.Context, sql string) (int, error) {
	tree, err := e.Engine.Parse(ctx, sql)
	if err != nil {
		return 0, err
	}
	seen := map[any]bool{}
	walkParams(tree, func(m map[string]any) { seen[m["identifier"]] = true })
	return len(seen), nil
}

// bindParams replaces $n parameters with values (nil: NULL).
func (e *Executor) bindParams(ctx context.Context, sql string, values []*string) (string, error) {
	tree, err := e.Engine.Parse(ctx, sql)
	if err != nil {
		return "", err
	}
	var bad error
	walkParams(tree, func(m map[string]any) {
		id, _ := m["identifier"].(string)
		i := 0
		for _, c := range id {
			if c < '0' || c > '9' {
				i = -1
				break
			}
			i = i*10 + int(c-'0')
		}
		if i < 1 || i > len(values) {
			bad = &pgError{code: "08P01", msg: "query has parameter $" + id + " but " + strconv.Itoa(len(values)) + " were bound"}
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
// data: it runs, sandboxed, over empty tables, with NULL parameters.
func (e *Executor) describe(ctx context.Context, sql string) (*arrow.Schema, error) {
	tree, err := e.Engine.Parse(ctx, sql)
	if err != nil {
		return nil, err
	}
	walkParams(tree, func(m map[string]any) { toConstant(m, nil) })
	if sql, err = e.Engine.Deparse(ctx, tree); err != nil {
		return nil, err
	}
	if _, err := analyze(ctx, e.Engine, sql); err != nil {
		return nil, err
	}
	rows, err := e.Engine.Query(ctx, engine.Query{SQL: "SELECT * FROM (" + sql + ") LIMIT 0"})
	if err != nil {
		return nil, err
	}
	defer rows.Release()
	return rows.Schema(), nil
}
