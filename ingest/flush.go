package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/objstore"
)

// flushLoop owns sealed segments: it hands each to one of FlushWorkers
// flushes, which turn it into Parquet files, upload and register them, and
// only then delete the segment. Segments are independent (their file keys
// differ), so they can be flushed in any order and in parallel.
func (in *Ingester) flushLoop() {
	defer close(in.flushD)
	tick := time.NewTicker(max(in.opts.FlushInterval/4, 10*time.Millisecond))
	defer tick.Stop()
	done := make(chan struct{}, in.opts.FlushWorkers)
	running := 0
	dispatch := func() {
		for running < in.opts.FlushWorkers {
			seg := in.claimSealed()
			if seg == nil {
				return
			}
			running++
			go func() {
				in.flushOne(in.flushCtx, seg)
				done <- struct{}{}
			}()
		}
	}
	for {
		select {
		case <-tick.C:
			in.rotateIfOld()
		case <-in.flushc:
		case <-done:
			running--
		case <-in.stopF:
			// Flush everything sealed, until done or the close deadline;
			// past it, no new flush starts (each read and encoded its
			// segment before it saw the deadline at the upload: 0.4 s).
			for dispatch(); running > 0; {
				<-done
				running--
				if in.flushCtx.Err() == nil {
					dispatch()
				}
			}
			return
		}
		dispatch()
	}
}

// claimSealed returns the oldest sealed segment no flush has taken yet.
func (in *Ingester) claimSealed() *segment {
	in.mu.Lock()
	defer in.mu.Unlock()
	for _, s := range in.sealed {
		if !s.flushing {
			s.flushing = true
			return s
		}
	}
	return nil
}

// rotateIfOld asks the writer to seal the active segment once its first
// row is FlushInterval old.
func (in *Ingester) rotateIfOld() {
	in.mu.Lock()
	old := in.active.rows > 0 && in.opts.Now().Sub(in.active.first) >= in.opts.FlushInterval
	in.mu.Unlock()
	if old {
		select {
		case in.rotatec <- struct{}{}:
		default:
		}
	}
}

// flushOne flushes a segment, retrying until it succeeds or ctx ends (the
// segment then stays in the WAL for the next start).
func (in *Ingester) flushOne(ctx context.Context, seg *segment) {
	start := time.Now()
	files, err := in.flushSegment(ctx, seg)
	if err != nil {
		return
	}
	in.m.flushSeconds.Observe(time.Since(start).Seconds())
	in.m.flushedFiles.Add(float64(len(files)))
	for _, f := range files {
		in.m.flushedBytes.Add(float64(f.Bytes))
	}
	if in.opts.OnFlushed != nil {
		go in.opts.OnFlushed(files)
	}
	// The catalog has the files: the segment can go.
	if err := os.Remove(seg.path); err != nil && !os.IsNotExist(err) {
		slog.Error("wal: remove flushed segment", "segment", seg.seq, "err", err)
	}
	syncDir(in.opts.ScratchDir)
	in.mu.Lock()
	for i, s := range in.sealed {
		if s == seg {
			in.sealed = append(in.sealed[:i], in.sealed[i+1:]...)
			break
		}
	}
	seg.unmapLocked()
	in.mu.Unlock()
	in.disk.Add(-seg.diskBytes)
	in.pending.Add(-seg.rows)
}

// flushSegment writes one Parquet file per project, table and hour of seg,
// uploads each, and registers them all in one catalog transaction. Keys
// are deterministic, so a retry overwrites the same objects and registers
// nothing twice.
func (in *Ingester) flushSegment(ctx context.Context, seg *segment) ([]catalog.File, error) {
	// Mapping the file can fail for passing reasons (too many open files
	// or mappings): those are retried, like an upload.
	var mapErr error
	err := in.retry(ctx, fmt.Sprintf("map segment %d", seg.seq), func(context.Context) error {
		if mapErr = in.mapSealed(seg); passing(mapErr) {
			return mapErr
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if mapErr != nil {
		return nil, in.keepSegment(seg, "cannot map segment", mapErr)
	}
	parts, release, err := in.loadSegment(seg)
	defer release()
	if err != nil {
		return nil, in.keepSegment(seg, "cannot read segment back", err)
	}
	keys := make([]partKey, 0, len(parts))
	for pk := range parts {
		keys = append(keys, pk)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.project != b.project {
			return a.project < b.project
		}
		if a.table != b.table {
			return a.table < b.table
		}
		return a.hour < b.hour
	})
	files := make([]catalog.File, 0, len(keys))
	bodies := make([][]byte, 0, len(keys))
	defer func() {
		for _, b := range bodies {
			in.putParquetBuf(b)
		}
	}()
	for _, pk := range keys {
		if err := ctx.Err(); err != nil { // closing: no encoding that cannot be uploaded
			return nil, err
		}
		t, _ := schema.Lookup(pk.table)
		buf := in.parquetBuf()
		info, err := engine.WriteParquet(buf, t, parts[pk], in.opts.Parquet)
		if err != nil {
			return nil, in.keepSegment(seg, "cannot write parquet", err)
		}
		key := seg.fileKey(pk)
		err = in.retry(ctx, "upload "+key, func(ctx context.Context) error {
			return in.bucket.Put(ctx, key, buf.Bytes())
		})
		if err != nil {
			return nil, err
		}
		files = append(files, pk.file(key, 0, info, int64(buf.Len())))
		bodies = append(bodies, buf.Bytes())
	}
	if len(files) == 0 {
		return nil, nil // every frame was damaged
	}
	uploaded := time.Now()
	err = in.retry(ctx, fmt.Sprintf("register %d files of segment %d", len(files), seg.seq), func(ctx context.Context) error {
		// Objects no catalog row names are deleted by the compactor's
		// orphan scan once they are --gc-orphan-grace old (at least an
		// hour): while the catalog stays out of reach, upload them afresh
		// before each registration attempt past half an hour.
		if time.Since(uploaded) > reuploadAfter {
			for i, f := range files {
				if err := in.bucket.Put(ctx, f.Key, bodies[i]); err != nil {
					return fmt.Errorf("upload %s again: %w", f.Key, err)
				}
			}
			uploaded = time.Now()
		}
		return in.cat.RegisterFiles(ctx, files...)
	})
	return files, err
}

// maxKeptParquetBuf is the largest Parquet output buffer kept for the
// next flush (a flush after an outage may write much larger files).
const maxKeptParquetBuf = 16 << 20

// parquetBuf returns an empty buffer for a Parquet file, one a previous
// flush grew if there is one.
func (in *Ingester) parquetBuf() *bytes.Buffer {
	select {
	case b := <-in.pqBufs:
		return b
	default:
		return new(bytes.Buffer)
	}
}

// putParquetBuf keeps the buffer holding body, which is no longer used,
// for a next flush.
func (in *Ingester) putParquetBuf(body []byte) {
	if cap(body) > maxKeptParquetBuf {
		return
	}
	select {
	case in.pqBufs <- bytes.NewBuffer(body[:0]):
	default:
	}
}

// passing reports whether a failure to map a file may go away by itself.
func passing(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOMEM) || errors.Is(err, syscall.EAGAIN)
}

// errKept: a segment's flush failed in a way retrying does not cure.
var errKept = errors.New("a segment could not be flushed (see the log)")

// keepSegment leaves a segment its flush cannot turn into Parquet in the
// WAL, claimed, so no flush takes it again before the next start (which
// replays it) and the flush workers go on with the other segments. Not
// retryable, this is a bug: it is said loudly and counted.
func (in *Ingester) keepSegment(seg *segment, what string, err error) error {
	slog.Error("flush: "+what+"; the segment is kept in the WAL until the next start", "segment", seg.seq, "err", err)
	in.m.keptSegments.Inc()
	return fmt.Errorf("flush segment %d: %s: %w", seg.seq, what, err)
}

// reuploadAfter is how old a flush's uploads may get while it waits for
// the catalog; it must stay well under the orphan scan's grace
// (--gc-orphan-grace, an hour at least in production).
var reuploadAfter = 30 * time.Minute

// file is the catalog row of the Parquet file at key that holds pk's rows.
func (pk partKey) file(key string, level int, info engine.FileInfo, size int64) catalog.File {
	return catalog.File{
		Key: key, Project: pk.project, Table: pk.table, Partition: objstore.Partition(pk.hourTime()),
		Level: level, MinTime: info.MinTime, MaxTime: info.MaxTime, Rows: info.Rows, Bytes: size,
		TraceFilter: info.TraceFilter, SchemaVersion: info.SchemaVersion,
	}
}

// retry runs fn until it succeeds or ctx ends, each attempt bounded by
// OpTimeout, backing off from 50 ms to 5 s with jitter between attempts.
func (in *Ingester) retry(ctx context.Context, what string, fn func(context.Context) error) error {
	delay := 50 * time.Millisecond
	failing := false // this op counts in flushFailing
	defer func() {
		if failing {
			in.flushFailing.Add(-1)
		}
	}()
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, in.opts.OpTimeout)
		err := fn(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				slog.Info("flush: recovered", "op", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		failed := fmt.Errorf("%s: %w", what, err)
		in.flushErr.Store(&failed)
		if !failing {
			failing = true
			in.flushFailing.Add(1)
		}
		in.m.flushErrors.Inc()
		slog.Warn("flush: will retry", "op", what, "attempt", attempt, "err", err)
		wait := delay/2 + rand.N(delay/2+1)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		delay = min(delay*2, 5*time.Second)
	}
}
