package engine_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// traceBatch is fill's rows with trace ids shared by several rows: row i
// belongs to trace i % traces, so each trace's rows are spread over the
// input and, unsorted, over every row group.
func traceBatch(tbl *schema.Table, n, traces, seed int) arrow.RecordBatch {
	b := fill(tbl, n, seed)
	defer b.Release()
	ids := array.NewStringBuilder(memory.DefaultAllocator)
	defer ids.Release()
	for i := range n {
		if i%11 == 5 {
			ids.AppendNull() // logs without a trace
			continue
		}
		ids.Append(fmt.Sprintf("%032x", (i%traces)*7919+seed))
	}
	col := ids.NewArray()
	defer col.Release()
	cols := slices.Clone(b.Columns())
	cols[tbl.Index("trace_id")] = col
	return array.NewRecordBatch(tbl.Schema, cols, int64(n))
}

// TestTraceRows_SameRowsAsDuckDB looks up traces by position and checks
// the rows against DuckDB's scan of the same file: every column, every
// row, for one id, several ids, a missing id, and a projection.
func TestTraceRows_SameRowsAsDuckDB(t *testing.T) {
	dir := t.TempDir()
	tbl, _ := schema.Lookup(schema.Records)
	b1, b2 := traceBatch(tbl, 3000, 97, 1), traceBatch(tbl, 2000, 89, 2)
	defer b1.Release()
	defer b2.Release()
	// Small row groups and the default 64 KiB pages: a trace's rows sit in
	// one run of one row group, and the lookup reads a few pages of it.
	path, _ := writeFile(t, dir, "f.parquet", tbl, []arrow.RecordBatch{b1, b2}, engine.ParquetOptions{RowGroupRows: 512})
	db := openDB(t, dir, engine.Options{})
	id := func(i, seed int) string { return fmt.Sprintf("%032x", i*7919+seed) }
	cases := []struct {
		name    string
		ids     []string
		columns []string
	}{
		{"one trace", []string{id(3, 1)}, nil},
		{"two traces of two inputs", []string{id(40, 2), id(96, 1)}, nil},
		{"missing", []string{id(500, 1)}, nil},
		{"projection", []string{id(7, 2)}, []string{"span_name", "attributes", "tags", "duration"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			need := engine.Need{TraceIDs: c.ids, Columns: c.columns}
			got, err := engine.TraceRows(context.Background(), path, tbl, need)
			if err != nil {
				t.Fatal(err)
			}
			cols := "*"
			if c.columns != nil {
				var names []string
				for _, f := range tbl.Schema.Fields() {
					if slices.Contains(c.columns, f.Name) || f.Name == "trace_id" || f.Name == tbl.TimeColumn {
						names = append(names, f.Name)
					}
				}
				cols = strings.Join(names, ", ")
			}
			quoted := make([]string, len(c.ids))
			for i, v := range c.ids {
				quoted[i] = "'" + v + "'"
			}
			want := query(t, db, engine.Query{Files: map[string][]string{"records": {path}}, SQL: fmt.Sprintf(
				"SELECT %s FROM records WHERE trace_id IN (%s) ORDER BY trace_id, start_timestamp", cols, strings.Join(quoted, ", "))})
			// The same rows through DuckDB again, from the batches this time,
			// so that both sides are rendered alike.
			var have [][]string
			if len(got) > 0 {
				for _, g := range got {
					if !g.Schema().Equal(got[0].Schema()) {
						t.Fatalf("batches of different schemas: %s, %s", g.Schema(), got[0].Schema())
					}
				}
				have = query(t, db, engine.Query{Files: map[string][]string{}, Fresh: map[string][]arrow.RecordBatch{"records": got},
					SQL: fmt.Sprintf("SELECT %s FROM records ORDER BY trace_id, start_timestamp", cols)})
				for _, g := range got {
					g.Release()
				}
			}
			if len(want) == 0 && c.name != "missing" {
				t.Fatal("the test data holds no such trace")
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Fatalf("TraceRows gave %d rows, DuckDB %d:\n%v\nwant\n%v", len(have), len(want), have, want)
			}
		})
	}
}
