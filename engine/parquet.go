package engine

import (
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/strata-db/strata/engine/schema"
)

// ParquetOptions tune the Parquet writer. The zero value gives the defaults.
type ParquetOptions struct {
	// RowGroupRows caps the rows of one row group (default 32 Ki). Smaller
	// groups let a time-range query or a trace lookup (through the bloom
	// filters) skip more; larger ones compress better and scan faster.
	// Measured on an hour file of 786k realistic spans against 128 Ki:
	// trace lookup 180 → 56 ms, file +1.4 %, a full-file aggregation +8 %.
	RowGroupRows int64
	// ZstdLevel is the zstd compression level (default 1: measured 30%
	// faster than level 3 and 2% smaller on spans).
	ZstdLevel int
	// TextZstdLevel is the zstd level of the table's PlainColumns — ids,
	// JSON attributes, URLs, log bodies: most of a file's bytes — (default
	// ZstdLevel). The compactor uses 6: on an hour file of realistic spans
	// 77.9 → 70.5 B/row, merges 30 % slower (BenchmarkCompact); ingest
	// keeps 1.
	TextZstdLevel int
	// BloomFPP is the false-positive rate of bloom filters (default 0.01).
	BloomFPP float64
}

func (o ParquetOptions) withDefaults() ParquetOptions {
	if o.RowGroupRows <= 0 {
		o.RowGroupRows = 32 * 1024
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
	// TraceFilter holds the file's trace ids (tables with a trace_id
	// column), for LoadTraceFilter.
	TraceFilter []byte
	// SchemaVersion is the table schema version written (always the
	// current one), for the file's catalog row.
	SchemaVersion int
}

// WriteParquet sorts the rows of batches by the table's sort columns and
// writes them to w as one Parquet file: zstd, statistics and a page index
// (except on long text and JSON), bloom filters on the table's lookup
// columns, row groups of at most RowGroupRows. The batches must have the
// table's schema; they are not released.
func WriteParquet(w io.Writer, t *schema.Table, batches []arrow.RecordBatch, opts ParquetOptions) (FileInfo, error) {
	if len(batches) == 0 {
		return FileInfo{}, fmt.Errorf("write parquet %s: no rows", t.Name)
	}
	for i, b := range batches {
		if !b.Schema().Equal(t.Schema) {
			return FileInfo{}, fmt.Errorf("write parquet %s: batch %d has schema %s, want the table's", t.Name, i, b.Schema())
		}
	}
	sorted, err := sortBatches(t, batches)
	if err != nil {
		return FileInfo{}, fmt.Errorf("write parquet %s: %w", t.Name, err)
	}
	defer sorted.Release()
	var keys map[uint64]struct{}
	if t.HasTraceID() {
		keys = map[uint64]struct{}{}
		addKeys(keys, sorted.Column(t.Index("trace_id")))
	}
	pw, err := NewParquetWriter(w, t, opts, keys)
	if err != nil {
		return FileInfo{}, err
	}
	if err := pw.Write(sorted); err != nil {
		pw.fw.Close()
		return FileInfo{}, err
	}
	return pw.Close()
}

// ParquetWriter streams batches whose rows are already in the table's
// sort order into one Parquet file, in row groups of RowGroupRows rows
// whatever the size of the batches.
type ParquetWriter struct {
	t        *schema.Table
	fw       *pqarrow.FileWriter
	info     FileInfo
	traceIDs map[uint64]struct{}
}

// NewParquetWriter starts a file on w. traceIDs are the TraceKeys of every
// trace id the file will hold (nil for a table without trace ids): they
// size the bloom filters and become FileInfo.TraceFilter.
func NewParquetWriter(w io.Writer, t *schema.Table, opts ParquetOptions, traceIDs map[uint64]struct{}) (*ParquetWriter, error) {
	opts = opts.withDefaults()
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
		if opts.TextZstdLevel > 0 && opts.TextZstdLevel != opts.ZstdLevel {
			props = append(props, parquet.WithCompressionLevelFor(c, opts.TextZstdLevel))
		}
	}
	for _, c := range t.NoStatsColumns {
		props = append(props, parquet.WithStatsFor(c, false), parquet.WithPageIndexEnabledFor(c, false))
	}
	for _, c := range t.BloomColumns {
		// A bloom filter sized for the distinct values it will actually
		// hold: the default size is 1 MiB per row group.
		ndv := min(int64(len(traceIDs)), opts.RowGroupRows)
		props = append(props,
			parquet.WithBloomFilterEnabledFor(c, true),
			parquet.WithBloomFilterFPPFor(c, opts.BloomFPP),
			parquet.WithBloomFilterNDVFor(c, max(ndv, 1)))
	}
	sorting := make([]parquet.SortingColumn, len(t.SortColumns))
	for i, c := range t.SortColumns {
		sorting[i] = parquet.SortingColumn{ColumnIdx: int32(t.Index(c))}
	}
	props = append(props, parquet.WithSortingColumns(sorting))

	// The file writer closes a sink that is an io.Closer; w is the caller's.
	fw, err := pqarrow.NewFileWriter(t.Schema, struct{ io.Writer }{w}, parquet.NewWriterProperties(props...),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema()))
	if err != nil {
		return nil, fmt.Errorf("write parquet %s: %w", t.Name, err)
	}
	if err := fw.AppendKeyValueMetadata("strata.schema_version", strconv.Itoa(schema.Version)); err != nil {
		fw.Close()
		return nil, fmt.Errorf("write parquet %s: %w", t.Name, err)
	}
	return &ParquetWriter{t: t, fw: fw, traceIDs: traceIDs, info: FileInfo{SchemaVersion: schema.Version}}, nil
}

// Write appends rec's rows; they must sort after those written before.
func (pw *ParquetWriter) Write(rec arrow.RecordBatch) error {
	if rec.NumRows() == 0 {
		return nil
	}
	lo, hi := timeRange(rec.Column(pw.t.Index(pw.t.TimeColumn)).(*array.Timestamp))
	if pw.info.Rows == 0 || lo.Before(pw.info.MinTime) {
		pw.info.MinTime = lo
	}
	if hi.After(pw.info.MaxTime) {
		pw.info.MaxTime = hi
	}
	pw.info.Rows += rec.NumRows()
	// Buffered: batches smaller than a row group fill it (encoded, in
	// memory) until it reaches RowGroupRows, so row groups keep their size
	// whatever the batches written.
	if err := pw.fw.WriteBuffered(rec); err != nil {
		return fmt.Errorf("write parquet %s: %w", pw.t.Name, err)
	}
	return nil
}

// Close finishes the file (w stays open) and describes it.
func (pw *ParquetWriter) Close() (FileInfo, error) {
	if err := pw.fw.Close(); err != nil {
		return FileInfo{}, fmt.Errorf("write parquet %s: close: %w", pw.t.Name, err)
	}
	if pw.info.Rows == 0 {
		return FileInfo{}, fmt.Errorf("write parquet %s: no rows", pw.t.Name)
	}
	if pw.traceIDs != nil {
		keys := make([]uint64, 0, len(pw.traceIDs))
		for k := range pw.traceIDs {
			keys = append(keys, k)
		}
		var err error
		if pw.info.TraceFilter, err = buildTraceFilter(keys); err != nil {
			return FileInfo{}, fmt.Errorf("write parquet %s: %w", pw.t.Name, err)
		}
	}
	return pw.info, nil
}

// sortBatches returns the rows of batches as one record in the table's
// sort order, copying them once (or not at all when a single batch is
// already sorted, as compaction output is).
func sortBatches(t *schema.Table, batches []arrow.RecordBatch) (arrow.RecordBatch, error) {
	refs, err := sortedRows(t, batches)
	if err != nil {
		return nil, err
	}
	if refs == nil {
		if len(batches) == 1 {
			batches[0].Retain()
			return batches[0], nil
		}
		for bi, b := range batches {
			for r := range int(b.NumRows()) {
				refs = append(refs, rowRef{uint32(bi), uint32(r)})
			}
		}
	}
	return gather(t.Schema, batches, refs)
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

// addKeys adds the TraceKey of every non-null string of a column to keys.
func addKeys(keys map[uint64]struct{}, a arrow.Array) {
	s, ok := a.(*array.String)
	if !ok {
		return
	}
	for i := range s.Len() {
		if s.IsValid(i) {
			keys[TraceKey(s.Value(i))] = struct{}{}
		}
	}
}
