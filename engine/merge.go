package engine

import (
	"container/heap"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/strata-db/strata/engine/schema"
)

// mergeBatchRows is how many rows each input reads at a time, and
// mergeOutRows how many merged rows are gathered before they are encoded
// into the output row group: memory is about (inputs × mergeBatchRows +
// mergeOutRows) decoded rows, plus a page of every column of every input
// and one encoded output row group. (With 8192-row input batches and whole
// row groups gathered, merging 40 small files of spans peaked at 1 GiB of
// heap; 1024-row batches took 330 MB live for ~20 inputs, 256-row 278 MB
// at the same speed. Pages of 256 KiB instead of 1 MiB took another 20 %
// off, but level-0 files of realistic spans grew 7.5 %: not done.)
const (
	mergeBatchRows = 256
	mergeOutRows   = 8192
)

// MergeParquet merges Parquet files of table t, each sorted in the table's
// order, into one sorted file on w, dropping rows whose time is before
// keepFrom (retention; zero keeps all). It streams: memory is bounded by
// the number of inputs and one output row group, whatever their size —
// but for the trace ids, which it reads first so the output's bloom and
// trace filters are sized exactly: a set of 8-byte keys of every distinct
// trace id (about 40 bytes each in the map: ~30 MB for a 256 MB file of
// realistic spans, more for logs that each carry a trace of their own). A merge that keeps no row returns FileInfo{Rows: 0}.
func MergeParquet(ctx context.Context, w io.Writer, t *schema.Table, inputs []string, keepFrom time.Time, opts ParquetOptions) (FileInfo, error) {
	opts = opts.withDefaults()
	var keys map[uint64]struct{}
	if t.HasTraceID() {
		keys = map[uint64]struct{}{}
		for _, in := range inputs {
			if err := readTraceKeys(ctx, t, in, keepFrom, keys); err != nil {
				return FileInfo{}, err
			}
		}
	}
	cursors := make(mergeHeap, 0, len(inputs))
	defer func() {
		for _, c := range cursors {
			c.close()
		}
	}()
	var pw *ParquetWriter
	for _, in := range inputs {
		c, err := openCursor(ctx, t, in, nil)
		if err != nil {
			return FileInfo{}, err
		}
		if c.valid() {
			cursors = append(cursors, c)
		} else {
			c.close()
		}
	}
	heap.Init(&cursors)

	// Output rows are gathered from the batches they live in; a batch is
	// kept until the rows taken from it are written.
	var batches []arrow.RecordBatch
	index := map[arrow.RecordBatch]uint32{}
	var refs []rowRef
	keepUS := keepFrom.UnixMicro()
	flush := func() error {
		defer func() {
			for _, b := range batches {
				b.Release()
			}
			batches, refs = batches[:0], refs[:0]
			clear(index)
		}()
		if len(refs) == 0 {
			return nil
		}
		if pw == nil {
			var err error
			if pw, err = NewParquetWriter(w, t, opts, keys); err != nil {
				return err
			}
		}
		rec, err := gather(t.Schema, batches, refs)
		if err != nil {
			return err
		}
		defer rec.Release()
		return pw.Write(rec)
	}
	for len(cursors) > 0 {
		c := cursors[0]
		if keepFrom.IsZero() || int64(c.time.Value(c.row)) >= keepUS {
			bi, ok := index[c.batch]
			if !ok {
				c.batch.Retain()
				bi = uint32(len(batches))
				batches = append(batches, c.batch)
				index[c.batch] = bi
			}
			refs = append(refs, rowRef{bi, uint32(c.row)})
		}
		if err := c.next(); err != nil {
			return FileInfo{}, err
		}
		if c.valid() {
			heap.Fix(&cursors, 0)
		} else {
			c.close()
			heap.Pop(&cursors)
		}
		if len(refs) >= mergeOutRows {
			if err := ctx.Err(); err != nil {
				return FileInfo{}, err
			}
			if err := flush(); err != nil {
				return FileInfo{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return FileInfo{}, err
	}
	if pw == nil {
		return FileInfo{}, nil
	}
	return pw.Close()
}

// InputError is a merge failing on one of its inputs: a file that cannot
// be opened, is not of the table's schema, or is not valid Parquet.
type InputError struct {
	Path string
	Err  error
}

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// readTraceKeys adds the TraceKeys of the rows of path kept by keepFrom.
func readTraceKeys(ctx context.Context, t *schema.Table, path string, keepFrom time.Time, keys map[uint64]struct{}) error {
	c, err := openCursor(ctx, t, path, []string{"trace_id", t.TimeColumn})
	if err != nil {
		return err
	}
	defer c.close()
	keepUS := keepFrom.UnixMicro()
	for c.batch != nil {
		ids := c.batch.Column(0).(*array.String)
		ts := c.batch.Column(1).(*array.Timestamp)
		for i := range ids.Len() {
			if ids.IsValid(i) && (keepFrom.IsZero() || int64(ts.Value(i)) >= keepUS) {
				keys[TraceKey(ids.Value(i))] = struct{}{}
			}
		}
		if err := c.nextBatch(); err != nil {
			return err
		}
	}
	return nil
}

// cursor walks the rows of one sorted Parquet file.
type cursor struct {
	ctx   context.Context
	path  string
	f     *file.Reader
	rr    pqarrow.RecordReader
	batch arrow.RecordBatch
	row   int
	key   sortKey // of batch
	time  *array.Timestamp
	t     *schema.Table
	cols  []string
	// schema is the file's, when all columns are read: the table's as its
	// version wrote it; older versions' batches are upgraded to the current.
	schema *arrow.Schema
}

// openCursor opens path reading the given columns (nil: all, which must
// then be the table's schema as some version wrote it).
func openCursor(ctx context.Context, t *schema.Table, path string, columns []string) (*cursor, error) {
	f, err := file.OpenParquetFile(path, false)
	if err != nil {
		return nil, &InputError{path, fmt.Errorf("merge: open %s: %w", path, err)}
	}
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{BatchSize: mergeBatchRows}, memory.DefaultAllocator)
	if err != nil {
		f.Close()
		return nil, &InputError{path, fmt.Errorf("merge: read %s: %w", path, err)}
	}
	var idx []int
	if columns != nil {
		for _, name := range columns {
			i := f.MetaData().Schema.ColumnIndexByName(name)
			if i < 0 {
				f.Close()
				return nil, &InputError{path, fmt.Errorf("merge: %s has no column %s", path, name)}
			}
			idx = append(idx, i)
		}
	}
	rr, err := fr.GetRecordReader(ctx, idx, nil)
	if err != nil {
		f.Close()
		return nil, &InputError{path, fmt.Errorf("merge: read %s: %w", path, err)}
	}
	want := t.Schema
	if columns != nil {
		fields := make([]arrow.Field, len(columns))
		for i, name := range columns {
			fields[i] = t.Schema.Field(t.Index(name))
		}
		want = arrow.NewSchema(fields, nil)
	} else if v, err := t.VersionOf(rr.Schema()); err == nil {
		want, _ = t.SchemaAt(v)
	}
	if diff := schemaDiff(rr.Schema(), want); diff != "" {
		rr.Release()
		f.Close()
		return nil, &InputError{path, fmt.Errorf("merge: %s does not have the %s table's schema: %s", path, t.Name, diff)}
	}
	c := &cursor{ctx: ctx, path: path, f: f, rr: rr, t: t, cols: columns, schema: want}
	return c, c.nextBatch()
}

func (c *cursor) valid() bool { return c.batch != nil }

// nextBatch moves to the next non-empty batch (batch nil at the end).
func (c *cursor) nextBatch() error {
	if c.batch != nil {
		c.batch.Release()
		c.batch = nil
	}
	if err := c.ctx.Err(); err != nil {
		return err // a compactor stopping: its merge ends at the next batch
	}
	for c.rr.Next() {
		b := c.rr.RecordBatch()
		if b.NumRows() == 0 {
			continue
		}
		if c.cols != nil {
			b.Retain()
			c.batch, c.row = b, 0
			return nil
		}
		read := conform(b, c.schema)
		b, err := c.t.Conform(memory.DefaultAllocator, read, c.t.Schema) // an older version's: NULL in the new columns
		read.Release()
		if err != nil {
			return &InputError{c.path, fmt.Errorf("merge: %s: %w", c.path, err)}
		}
		c.batch, c.row = b, 0
		key, err := sortKeyOf(c.t, b)
		if err != nil {
			return &InputError{c.path, fmt.Errorf("merge: %s: %w", c.path, err)}
		}
		c.key = key
		c.time = b.Column(c.t.Index(c.t.TimeColumn)).(*array.Timestamp)
		return nil
	}
	if err := c.rr.Err(); err != nil && err != io.EOF {
		if c.ctx.Err() != nil { // the merge was stopped, not the file's fault
			return fmt.Errorf("merge: read %s: %w", c.path, err)
		}
		return &InputError{c.path, fmt.Errorf("merge: read %s: %w", c.path, err)}
	}
	return nil
}

func (c *cursor) next() error {
	c.row++
	if c.row < int(c.batch.NumRows()) {
		return nil
	}
	return c.nextBatch()
}

func (c *cursor) close() {
	if c.batch != nil {
		c.batch.Release()
		c.batch = nil
	}
	if c.rr != nil {
		c.rr.Release()
		c.rr = nil
	}
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

// mergeHeap orders cursors by their current row.
type mergeHeap []*cursor

func (h mergeHeap) Len() int { return len(h) }
func (h mergeHeap) Less(i, j int) bool {
	return compareRows(h[i].key, h[i].row, h[j].key, h[j].row) < 0
}
func (h mergeHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *mergeHeap) Push(x any)   { *h = append(*h, x.(*cursor)) }
func (h *mergeHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	*h = old[:len(old)-1]
	return c
}

// schemaDiff names the first difference between two schemas.
func schemaDiff(got, want *arrow.Schema) string {
	if got.NumFields() != want.NumFields() {
		return fmt.Sprintf("%d columns, want %d", got.NumFields(), want.NumFields())
	}
	for i, f := range got.Fields() {
		// Field metadata (Parquet field ids) does not matter.
		if w := want.Field(i); f.Name != w.Name || f.Nullable != w.Nullable || !readableAs(f.Type, w.Type) {
			return fmt.Sprintf("column %d is %s, want %s", i, f, w)
		}
	}
	return ""
}

// readableAs says whether a column read as got can become want: the same
// type, or JSON (an extension over strings) read back as plain bytes.
func readableAs(got, want arrow.DataType) bool {
	if arrow.TypeEqual(got, want) {
		return true
	}
	ext, ok := want.(arrow.ExtensionType)
	return ok && ext.StorageType().ID() == arrow.STRING && (got.ID() == arrow.BINARY || got.ID() == arrow.STRING)
}

// conform returns rec with schema s (checked with readableAs), sharing
// its buffers: binary and string arrays have the same layout.
func conform(rec arrow.RecordBatch, s *arrow.Schema) arrow.RecordBatch {
	cols := make([]arrow.Array, rec.NumCols())
	for i, f := range s.Fields() {
		c := rec.Column(i)
		if arrow.TypeEqual(c.DataType(), f.Type) {
			c.Retain()
			cols[i] = c
			continue
		}
		ext := f.Type.(arrow.ExtensionType)
		d := c.Data()
		storage := array.NewData(ext.StorageType(), d.Len(), d.Buffers(), nil, d.NullN(), d.Offset())
		str := array.MakeFromData(storage)
		storage.Release()
		cols[i] = array.NewExtensionArrayWithStorage(ext, str)
		str.Release()
	}
	out := array.NewRecordBatch(s, cols, rec.NumRows())
	for _, c := range cols {
		c.Release()
	}
	return out
}
