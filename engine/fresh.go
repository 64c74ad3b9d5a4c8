package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/strata-db/strata/engine/schema"
)

// Need is what a query is known to read of a table: rows whose time
// column is within [Min, Max] (a zero bound is open) and, if TraceIDs is
// not empty, whose trace_id is one of them; and, if Columns is not nil,
// only those columns. The catalog prunes files by the same bounds; ingest
// prunes the rows it still holds with it, before DuckDB copies them — an
// overloaded ingest node can hold a gigabyte of rows, of which a trace
// lookup needs a handful, and a dashboard a few columns.
type Need struct {
	Min, Max time.Time
	TraceIDs []string
	Columns  []string
	// Exclude are object keys whose rows ingest must leave out: files the
	// catalog has registered and already merged away (their rows are in
	// the merged file) while ingest still holds them, unsure its
	// registration went through.
	Exclude []string
}

// SourcesMissing comes with the rows of a snapshot some of whose sources
// (ingest nodes) did not answer: the rows are the others', and the query
// goes on without the rest, saying so.
type SourcesMissing struct {
	N   int
	Err error
}

func (e *SourcesMissing) Error() string {
	return fmt.Sprintf("unflushed rows of %d ingest nodes left out: %v", e.N, e.Err)
}

func (e *SourcesMissing) Unwrap() error { return e.Err }

// Apply returns the rows of batches that pass f, with f's columns (and
// the table's time column and trace_id, which views filter on), as new
// references (the caller releases them; the input batches stay the
// caller's).
func (f Need) Apply(t *schema.Table, batches []arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	rows, err := f.rows(t, batches)
	if err != nil || f.Columns == nil {
		return rows, err
	}
	idx, projected := f.columns(t)
	for i, b := range rows {
		cols := make([]arrow.Array, len(idx))
		for j, c := range idx {
			cols[j] = b.Column(c)
		}
		rows[i] = array.NewRecordBatch(projected, cols, b.NumRows())
		b.Release()
	}
	return rows, nil
}

// columns returns the positions in t's schema of the columns Apply keeps,
// and their schema.
func (f Need) columns(t *schema.Table) ([]int, *arrow.Schema) {
	if f.Columns == nil {
		idx := make([]int, t.Schema.NumFields())
		for i := range idx {
			idx[i] = i
		}
		return idx, t.Schema
	}
	keep := map[string]bool{t.TimeColumn: true, "trace_id": true}
	for _, c := range f.Columns {
		keep[c] = true
	}
	var idx []int
	var fields []arrow.Field
	for i, fl := range t.Schema.Fields() {
		if keep[fl.Name] {
			idx, fields = append(idx, i), append(fields, fl)
		}
	}
	return idx, arrow.NewSchema(fields, nil)
}

// Conform returns rec, rows of t that Apply kept on another node (whose
// build may have another table schema version), with exactly the columns
// Apply keeps here, by name: a column rec lacks is NULL, one this build
// does not know is left out. The caller releases both.
func (f Need) Conform(t *schema.Table, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	_, s := f.columns(t)
	return t.Conform(memory.DefaultAllocator, rec, s)
}

// rows returns the rows of batches that pass f's row conditions.
func (f Need) rows(t *schema.Table, batches []arrow.RecordBatch) ([]arrow.RecordBatch, error) {
	lo, hi := int64(-1<<63), int64(1<<63-1)
	if !f.Min.IsZero() {
		lo = f.Min.UnixMicro() // floor: the columns hold microseconds
	}
	if !f.Max.IsZero() {
		hi = (f.Max.UnixNano() + 999) / 1000
	}
	ids := make(map[string]bool, len(f.TraceIDs))
	for _, id := range f.TraceIDs {
		ids[id] = true
	}
	timeCol, traceCol := t.Index(t.TimeColumn), -1
	if t.HasTraceID() {
		traceCol = t.Index("trace_id")
	}
	out := make([]arrow.RecordBatch, 0, len(batches))
	mask := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer mask.Release()
	for _, b := range batches {
		ts := b.Column(timeCol).(*array.Timestamp).TimestampValues()
		var traces *array.String
		if len(ids) > 0 && traceCol >= 0 {
			traces = b.Column(traceCol).(*array.String)
		}
		keep := 0
		mask.Reserve(len(ts))
		for i, v := range ts {
			ok := int64(v) >= lo && int64(v) <= hi && (traces == nil || (traces.IsValid(i) && ids[traces.Value(i)]))
			mask.UnsafeAppend(ok)
			if ok {
				keep++
			}
		}
		m := mask.NewBooleanArray()
		switch keep {
		case 0:
		case len(ts):
			b.Retain()
			out = append(out, b)
		default:
			kept, err := compute.FilterRecordBatch(context.Background(), b, m, compute.DefaultFilterOptions())
			if err != nil {
				m.Release()
				for _, o := range out {
					o.Release()
				}
				return nil, fmt.Errorf("filter fresh rows: %w", err)
			}
			out = append(out, kept)
		}
		m.Release()
	}
	return out, nil
}
