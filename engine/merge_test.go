package engine_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// Merging sorted files gives one sorted file with exactly the rows of the
// inputs (minus those before the retention cut), and a trace filter that
// knows every kept trace id.
func TestMergeParquet_SameRowsSortedAndFiltered(t *testing.T) {
	for _, tbl := range schema.Tables() {
		t.Run(tbl.Name, func(t *testing.T) {
			dir := t.TempDir()
			var inputs []string
			var total int64
			for i := range 4 {
				b := []arrow.RecordBatch{fill(tbl, 250+50*i, i)}
				p, info := writeFile(t, dir, "in"+string(rune('a'+i))+".parquet", tbl, b, engine.ParquetOptions{RowGroupRows: 100})
				b[0].Release()
				inputs = append(inputs, p)
				total += info.Rows
			}
			db := openDB(t, dir, engine.Options{})
			in := "read_parquet(['" + strings.Join(inputs, "', '") + "'])"
			cut := query(t, db, engine.Query{Raw: true, SQL: "SELECT epoch_us(quantile_disc(" + tbl.TimeColumn + ", 0.3)) FROM " + in})[0][0]
			var us int64
			for _, c := range cut {
				us = us*10 + int64(c-'0')
			}
			keep := time.UnixMicro(us).UTC()

			for _, k := range []time.Time{{}, keep} {
				var buf bytes.Buffer
				info, err := engine.MergeParquet(context.Background(), &buf, tbl, inputs, k, engine.ParquetOptions{RowGroupRows: 128})
				if err != nil {
					t.Fatal(err)
				}
				out := filepath.Join(dir, "merged.parquet")
				if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				where := ""
				if !k.IsZero() {
					where = " WHERE " + tbl.TimeColumn + " >= make_timestamptz(" + cut + ")"
				} else if info.Rows != total {
					t.Fatalf("merged %d rows, want %d", info.Rows, total)
				}
				want := query(t, db, engine.Query{Raw: true, SQL: "SELECT count(*) FROM " + in + where})[0][0]
				got := query(t, db, engine.Query{Raw: true, SQL: "SELECT count(*) FROM read_parquet('" + out + "')"})[0][0]
				diff := query(t, db, engine.Query{Raw: true, SQL: "SELECT count(*) FROM ((SELECT * FROM " + in + where +
					" EXCEPT ALL SELECT * FROM read_parquet('" + out + "')) UNION ALL (SELECT * FROM read_parquet('" + out +
					"') EXCEPT ALL SELECT * FROM " + in + where + "))"})[0][0]
				if got != want || diff != "0" {
					t.Fatalf("keep from %v: merged %s rows, want %s; %s rows differ", k, got, want, diff)
				}
				if !k.IsZero() && info.MinTime.Before(k) {
					t.Errorf("min time %v before the cut %v", info.MinTime, k)
				}
				order := query(t, db, engine.Query{Raw: true, SQL: "SELECT " + strings.Join(tbl.SortColumns, ", ") + " FROM read_parquet('" + out + "')"})
				for i := 1; i < len(order); i++ {
					if strings.Join(order[i-1], "\x00") > strings.Join(order[i], "\x00") && order[i-1][0] != "NULL" {
						t.Fatalf("rows %d and %d out of order: %v then %v", i-1, i, order[i-1], order[i])
					}
				}
				if tbl.HasTraceID() {
					f, err := engine.LoadTraceFilter(info.TraceFilter)
					if err != nil {
						t.Fatal(err)
					}
					for _, row := range query(t, db, engine.Query{Raw: true, SQL: "SELECT DISTINCT trace_id FROM read_parquet('" + out + "') WHERE trace_id IS NOT NULL"}) {
						if !f.MayContain(engine.TraceKey(row[0])) {
							t.Fatalf("trace filter misses %s", row[0])
						}
					}
				}
			}
		})
	}
}

// A file in the lake that is not of the table's schema — here trace_id
// as a number — fails the merge with an error naming the column; it
// used to end the process (a type assertion while reading trace ids).
func TestMergeParquet_ForeignSchemaIsAnError(t *testing.T) {
	tbl := schema.Tables()[0] // records
	dir := t.TempDir()
	good := fill(tbl, 100, 0)
	goodPath, _ := writeFile(t, dir, "good.parquet", tbl, []arrow.RecordBatch{good}, engine.ParquetOptions{})
	good.Release()

	s := arrow.NewSchema([]arrow.Field{{Name: "trace_id", Type: arrow.PrimitiveTypes.Int64},
		{Name: tbl.TimeColumn, Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}}}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, s)
	defer b.Release()
	for i := range 10 {
		b.Field(0).(*array.Int64Builder).Append(int64(i))
		b.Field(1).(*array.TimestampBuilder).Append(arrow.Timestamp(time.Now().UnixMicro()))
	}
	rec := b.NewRecordBatch()
	defer rec.Release()
	foreign := filepath.Join(dir, "foreign.parquet")
	f, err := os.Create(foreign)
	if err != nil {
		t.Fatal(err)
	}
	if err := pqarrow.WriteTable(array.NewTableFromRecords(s, []arrow.RecordBatch{rec}), f, 10, nil, pqarrow.DefaultWriterProps()); err != nil {
		t.Fatal(err)
	}
	f.Close()

	_, err = engine.MergeParquet(context.Background(), io.Discard, tbl, []string{goodPath, foreign}, time.Time{}, engine.ParquetOptions{})
	if err == nil || !strings.Contains(err.Error(), "foreign.parquet does not have the records table's schema") || !strings.Contains(err.Error(), "trace_id") {
		t.Fatalf("merge with a foreign file: %v", err)
	}
}

// A merge whose context ends stops at its next batch with the context's
// error (review: a compactor's merge held strata serve's shutdown past
// --shutdown-timeout, reading trace ids to the end of its inputs).
func TestMergeParquet_StopsWhenItsContextEnds(t *testing.T) {
	tbl := schema.Tables()[0]
	dir := t.TempDir()
	b := []arrow.RecordBatch{fill(tbl, 5000, 0)}
	p, _ := writeFile(t, dir, "in.parquet", tbl, b, engine.ParquetOptions{RowGroupRows: 100})
	b[0].Release()
	// Ended once the reading is under way.
	ctx := &endsAfter{Context: context.Background(), calls: 3}
	if _, err := engine.MergeParquet(ctx, io.Discard, tbl, []string{p, p}, time.Time{}, engine.ParquetOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("merge with its context ended: %v, want context.Canceled", err)
	}
}

// endsAfter is a context that ends at the given call of Err.
type endsAfter struct {
	context.Context
	calls int
}

func (c *endsAfter) Err() error {
	if c.calls--; c.calls < 0 {
		return context.Canceled
	}
	return nil
}
