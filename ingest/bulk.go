package ingest

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/objstore"
)

// BulkWriter writes batches straight to Parquet files in the object store
// and registers them, one file per project, table and hour (or per MaxRows
// rows of one). It bypasses the WAL, so nothing it holds is durable until
// Close returns: it is for loading data sets (bench load), not for
// acknowledged ingest. Files are written by one background goroutine while
// the caller converts the next batches.
type BulkWriter struct {
	cat     catalog.Store
	bucket  *objstore.Bucket
	level   int
	maxRows int64
	opts    engine.ParquetOptions

	parts  map[partKey][]arrow.RecordBatch
	latest int64 // the latest hour seen
	rows   map[partKey]int64
	work   chan bulkPart
	wg     sync.WaitGroup

	mu    sync.Mutex
	err   error
	stats BulkStats
}

// BulkStats counts what a BulkWriter has written.
type BulkStats struct {
	Files int
	Rows  int64
	Bytes int64
}

type bulkPart struct {
	key     partKey
	batches []arrow.RecordBatch
}

// NewBulkWriter returns a writer of level files of at most maxRows rows.
func NewBulkWriter(cat catalog.Store, bucket *objstore.Bucket, level int, maxRows int64, opts engine.ParquetOptions) *BulkWriter {
	w := &BulkWriter{cat: cat, bucket: bucket, level: level, maxRows: maxRows, opts: opts,
		parts: map[partKey][]arrow.RecordBatch{}, rows: map[partKey]int64{}, work: make(chan bulkPart, 1)}
	w.wg.Add(1)
	go w.writer()
	return w
}

// Add takes ownership of rec's rows (rec may be released after) for the
// project's table. It fails once a write has failed.
func (w *BulkWriter) Add(ctx context.Context, project, table string, rec arrow.RecordBatch) error {
	if err := w.failed(); err != nil {
		return err
	}
	t, err := schema.Lookup(table)
	if err != nil {
		return err
	}
	pieces, err := splitByHour(t, rec)
	if err != nil {
		return err
	}
	key := bufKey{project: project, table: table}
	for _, p := range pieces {
		pk := partOf(key, p)
		if pk.hour > w.latest {
			// Rows come roughly in time order: write what is left of hours
			// two behind, rather than hold every hour's tail until Close.
			w.latest = pk.hour
			for old := range w.parts {
				if old.hour < w.latest-1 {
					w.send(ctx, old)
				}
			}
		}
		w.parts[pk] = append(w.parts[pk], p)
		w.rows[pk] += p.NumRows()
		if w.rows[pk] >= w.maxRows {
			w.send(ctx, pk)
		}
	}
	return ctx.Err()
}

func (w *BulkWriter) send(ctx context.Context, pk partKey) {
	part := bulkPart{key: pk, batches: w.parts[pk]}
	delete(w.parts, pk)
	delete(w.rows, pk)
	select {
	case w.work <- part:
	case <-ctx.Done():
		release(part.batches)
	}
}

// Close writes what is buffered and waits for every file to be written
// and registered.
func (w *BulkWriter) Close(ctx context.Context) (BulkStats, error) {
	for pk := range w.parts {
		w.send(ctx, pk)
	}
	close(w.work)
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = ctx.Err()
	}
	return w.stats, w.err
}

func (w *BulkWriter) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *BulkWriter) writer() {
	defer w.wg.Done()
	for part := range w.work {
		if w.failed() == nil {
			w.setErr(w.write(part))
		}
		release(part.batches)
	}
}

func (w *BulkWriter) setErr(err error) {
	if err == nil {
		return
	}
	w.mu.Lock()
	if w.err == nil {
		w.err = err
	}
	w.mu.Unlock()
}

func (w *BulkWriter) write(part bulkPart) error {
	t, _ := schema.Lookup(part.key.table)
	var buf bytes.Buffer
	info, err := engine.WriteParquet(&buf, t, part.batches, w.opts)
	if err != nil {
		return err
	}
	key := objstore.DataKey(part.key.project, part.key.table, part.key.hourTime(), w.level, objstore.NewID(time.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := w.bucket.Put(ctx, key, buf.Bytes()); err != nil {
		return fmt.Errorf("upload %s: %w", key, err)
	}
	if err := w.cat.RegisterFiles(ctx, part.key.file(key, w.level, info, int64(buf.Len()))); err != nil {
		return fmt.Errorf("register %s: %w", key, err)
	}
	w.mu.Lock()
	w.stats.Files++
	w.stats.Rows += info.Rows
	w.stats.Bytes += int64(buf.Len())
	w.mu.Unlock()
	return nil
}

func release(batches []arrow.RecordBatch) {
	for _, b := range batches {
		b.Release()
	}
}
