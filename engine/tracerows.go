package engine

import (
	"context"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/strata-db/strata/engine/schema"
)

// A trace lookup reads a handful of rows. Through DuckDB's Parquet scan it
// costs 50–80 ms whatever the layout: DuckDB decodes each column of a row
// group from its start up to the rows it needs. TraceRows reads them by
// position instead: the bloom filter picks the row groups, the page index
// of trace_id (files sort by trace_id, so each page holds a narrow range of
// ids) the pages that hold the trace, and the offset index of every other
// column the one page per column that holds those rows. The rows go to
// DuckDB like ingest's unflushed rows, and the query runs over them.

// traceRowsGap is how far apart two matching rows may be and still be read
// as one run: reading the rows between costs less than a second seek.
const traceRowsGap = 256

// footers caches parsed Parquet footers by local path: objects never
// change, and their cached copies are named by their keys.
var footers, _ = lru.New[string, *metadata.FileMetaData](4096)

// TraceRows returns the rows of the Parquet file at path (of table t)
// whose trace_id is one of need.TraceIDs, with the columns of
// need.Projection; nil if there are none. The caller releases the batches.
func TraceRows(ctx context.Context, path string, t *schema.Table, need Need) ([]arrow.RecordBatch, error) {
	if !t.HasTraceID() || len(need.TraceIDs) == 0 {
		return nil, fmt.Errorf("trace rows of %s: no trace ids to look up", t.Name)
	}
	// Buffered: read the pages a lookup needs, not whole column chunks.
	props := parquet.NewReaderProperties(memory.DefaultAllocator)
	props.BufferedStreamEnabled = true
	props.BufferSize = 32 << 10
	opts := []file.ReadOption{file.WithReadProps(props)}
	if md, ok := footers.Get(path); ok {
		opts = append(opts, file.WithMetadata(md))
	}
	r, err := file.OpenParquetFile(path, false, opts...)
	if err != nil {
		return nil, fmt.Errorf("trace rows: %w", err)
	}
	defer r.Close()
	footers.Add(path, r.MetaData())
	fr, err := pqarrow.NewFileReader(r, pqarrow.ArrowReadProperties{Parallel: true}, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("trace rows: %w", err)
	}
	proj, cols, err := need.projection(t, fr)
	if err != nil {
		return nil, err
	}
	traceCol := r.MetaData().Schema.ColumnIndexByName("trace_id")
	if traceCol < 0 {
		return nil, fmt.Errorf("trace rows: %s has no trace_id column", path)
	}
	ids := slices.Clone(need.TraceIDs)
	slices.Sort(ids)
	var out []arrow.RecordBatch
	fail := func(err error) ([]arrow.RecordBatch, error) {
		for _, b := range out {
			b.Release()
		}
		return nil, fmt.Errorf("trace rows of %s: %w", path, err)
	}
	for rg := range r.NumRowGroups() {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		ok, err := bloomMayHold(r, rg, traceCol, ids)
		if err != nil {
			return fail(err)
		}
		if !ok {
			continue
		}
		rows, err := matchingRows(ctx, r, fr, rg, traceCol, ids)
		if err != nil {
			return fail(err)
		}
		for len(rows) > 0 {
			n := 1
			for n < len(rows) && rows[n]-rows[n-1] <= traceRowsGap {
				n++
			}
			b, err := readRows(ctx, fr, rg, cols, proj, rows[:n])
			if err != nil {
				return fail(err)
			}
			out = append(out, b)
			rows = rows[n:]
		}
	}
	return out, nil
}

// projection is the schema of the rows a lookup returns — the table's
// columns that need keeps (see Apply) — and the file's leaf columns that
// hold them, in the same order.
func (f Need) projection(t *schema.Table, fr *pqarrow.FileReader) (*arrow.Schema, []int, error) {
	fields := f.fields(t)
	sc, err := fr.Schema()
	if err != nil {
		return nil, nil, err
	}
	var leaves []int
	for _, fl := range fields {
		idx := sc.FieldIndices(fl.Name)
		if len(idx) != 1 {
			return nil, nil, fmt.Errorf("file has no column %s", fl.Name)
		}
		leaves = appendLeaves(leaves, fr.Manifest.Fields[idx[0]])
	}
	return arrow.NewSchema(fields, nil), leaves, nil
}

// appendLeaves appends the Parquet leaf columns of a field (one, unless
// it is nested).
func appendLeaves(dst []int, f pqarrow.SchemaField) []int {
	if f.IsLeaf() {
		return append(dst, f.ColIndex)
	}
	for _, c := range f.Children {
		dst = appendLeaves(dst, c)
	}
	return dst
}

// bloomMayHold reports whether row group rg may hold one of ids by its
// bloom filter on trace_id (true if it has none).
func bloomMayHold(r *file.Reader, rg, col int, ids []string) (bool, error) {
	rgb, err := r.GetBloomFilterReader().RowGroup(rg)
	if err != nil {
		return false, err
	}
	bf, err := rgb.GetColumnBloomFilter(col)
	if err != nil || bf == nil {
		return bf == nil, err
	}
	for _, id := range ids {
		if bf.CheckHash(metadata.GetHash(bf.Hasher(), parquet.ByteArray(id))) {
			return true, nil
		}
	}
	return false, nil
}

// matchingRows returns, in order, the rows of row group rg whose trace_id
// is one of ids (sorted). It reads only the pages whose bounds in the page
// index could hold one of them; the whole column if there is no index.
func matchingRows(ctx context.Context, r *file.Reader, fr *pqarrow.FileReader, rg, col int, ids []string) ([]int64, error) {
	nrows := r.RowGroup(rg).NumRows()
	spans := [][2]int64{{0, nrows}} // row ranges to read
	if pir := r.GetPageIndexReader(); pir != nil {
		rgi, err := pir.RowGroup(rg)
		if err != nil {
			return nil, err
		}
		if rgi != nil {
			if s, ok, err := candidatePages(rgi, col, nrows, ids); err != nil {
				return nil, err
			} else if ok {
				spans = s
			}
		}
	}
	var rows []int64
	for _, s := range spans {
		b, err := readRange(ctx, fr, rg, []int{col}, s[0], s[1]-s[0])
		if err != nil {
			return nil, err
		}
		for _, c := range b.Columns() {
			str, ok := c.(*array.String)
			if !ok {
				b.Release()
				return nil, fmt.Errorf("trace_id is %s, not a string", c.DataType())
			}
			for j := range str.Len() {
				if str.IsValid(j) {
					if _, found := slices.BinarySearch(ids, str.Value(j)); found {
						rows = append(rows, s[0]+int64(j))
					}
				}
			}
		}
		b.Release()
	}
	return rows, nil
}

// candidatePages returns the row ranges of the pages of column col whose
// min/max could hold one of ids, merged where adjacent; ok is false when
// the column has no usable index.
func candidatePages(rgi *metadata.RowGroupPageIndexReader, col int, nrows int64, ids []string) (spans [][2]int64, ok bool, err error) {
	ci, err := rgi.GetColumnIndex(col)
	if err != nil || ci == nil {
		return nil, false, err
	}
	oi, err := rgi.GetOffsetIndex(col)
	if err != nil || oi == nil {
		return nil, false, err
	}
	locs := oi.GetPageLocations()
	mins, maxs, nulls := ci.GetMinValues(), ci.GetMaxValues(), ci.GetNullPages()
	if len(mins) != len(locs) || len(maxs) != len(locs) || len(nulls) != len(locs) {
		return nil, false, nil
	}
	for p, loc := range locs {
		if nulls[p] {
			continue
		}
		lo, hi := string(mins[p]), string(maxs[p])
		i, _ := slices.BinarySearch(ids, lo) // first id ≥ lo
		if i == len(ids) || ids[i] > hi {
			continue
		}
		end := nrows
		if p+1 < len(locs) {
			end = locs[p+1].FirstRowIndex
		}
		if n := len(spans); n > 0 && spans[n-1][1] == loc.FirstRowIndex {
			spans[n-1][1] = end
		} else {
			spans = append(spans, [2]int64{loc.FirstRowIndex, end})
		}
	}
	return spans, true, nil
}

// readRange reads n rows of row group rg from row first, columns cols.
func readRange(ctx context.Context, fr *pqarrow.FileReader, rg int, cols []int, first, n int64) (arrow.RecordBatch, error) {
	fr.Props.BatchSize = n // taken by the record reader when it is made
	rr, err := fr.GetRecordReader(ctx, cols, []int{rg})
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	if first > 0 {
		if err := rr.SeekToRow(first); err != nil {
			return nil, err
		}
	}
	b, err := rr.Read()
	if err != nil {
		return nil, err
	}
	b.Retain()
	return b, nil
}

// readRows reads rows (ascending, of row group rg) as one batch of schema
// proj, reading the run from the first to the last and keeping those.
func readRows(ctx context.Context, fr *pqarrow.FileReader, rg int, cols []int, proj *arrow.Schema, rows []int64) (arrow.RecordBatch, error) {
	first := rows[0]
	b, err := readRange(ctx, fr, rg, cols, first, rows[len(rows)-1]-first+1)
	if err != nil {
		return nil, err
	}
	defer b.Release()
	if int(b.NumRows()) != int(rows[len(rows)-1]-first+1) {
		return nil, fmt.Errorf("read %d rows from row %d, want %d", b.NumRows(), first, rows[len(rows)-1]-first+1)
	}
	mask := array.NewBooleanBuilder(memory.DefaultAllocator)
	defer mask.Release()
	mask.Reserve(int(b.NumRows()))
	next := 0
	for r := first; r <= rows[len(rows)-1]; r++ {
		keep := rows[next] == r
		if keep {
			next++
		}
		mask.UnsafeAppend(keep)
	}
	m := mask.NewBooleanArray()
	defer m.Release()
	// The batch takes the table's types so that it unions with ingest's
	// rows.
	typed := make([]arrow.Array, len(proj.Fields()))
	defer func() {
		for _, c := range typed {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i, f := range proj.Fields() {
		if typed[i], err = retype(b.Column(i), f.Type); err != nil {
			return nil, fmt.Errorf("column %s: %w", f.Name, err)
		}
	}
	in := array.NewRecordBatch(proj, typed, b.NumRows())
	defer in.Release()
	return compute.FilterRecordBatch(ctx, in, m, compute.DefaultFilterOptions())
}

// retype returns a as an array of type want when only their logical types
// differ: Parquet's JSON columns read back as binary, where the table has
// the JSON extension type over strings.
func retype(a arrow.Array, want arrow.DataType) (arrow.Array, error) {
	switch {
	case arrow.TypeEqual(a.DataType(), want):
		a.Retain()
		return a, nil
	case want.ID() == arrow.EXTENSION:
		ext := want.(arrow.ExtensionType)
		storage, err := retype(a, ext.StorageType())
		if err != nil {
			return nil, err
		}
		defer storage.Release()
		return array.NewExtensionArrayWithStorage(ext, storage), nil
	case a.DataType().ID() == arrow.BINARY && want.ID() == arrow.STRING:
		d := a.Data()
		nd := array.NewData(want, d.Len(), d.Buffers(), nil, d.NullN(), d.Offset())
		defer nd.Release()
		return array.MakeFromData(nd), nil
	}
	return nil, fmt.Errorf("read as %s, want %s", a.DataType(), want)
}
