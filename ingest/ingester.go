package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/internal/flock"
	"github.com/strata-db/strata/objstore"
)

// Options configure an Ingester. Zero values take the defaults.
type Options struct {
	// ScratchDir holds the WAL. Required.
	ScratchDir string
	// FlushInterval is the age at which buffered rows are flushed (1 s).
	FlushInterval time.Duration
	// FlushBytes is the WAL segment size that triggers a flush before the
	// interval is up (16 MiB).
	FlushBytes int64
	// MaxScratchBytes bounds the WAL on disk; beyond it ingest refuses new
	// data until the flusher catches up (1 GiB).
	MaxScratchBytes int64
	// MaxMemoryBytes bounds the request data held in memory while it waits
	// for the WAL (256 MiB). Rows are not kept in memory after that: the WAL
	// on disk is the buffer, and the page cache keeps it hot for the flush.
	MaxMemoryBytes int64
	// FlushWorkers is how many segments are flushed at once (default: one
	// per core; each holds a segment's rows in memory while it writes). One
	// per two cores left the flusher behind the request handlers at full
	// load, and ingest refused requests with CPU to spare (bench/RESULTS.md).
	FlushWorkers int
	// OpTimeout bounds one upload or catalog registration attempt, so a
	// hung object store or database cannot stall the flusher (30 s).
	OpTimeout time.Duration
	// Parquet tunes the files written.
	Parquet engine.ParquetOptions
	// OnFlushed, if set, is called (in its own goroutine) with the files of
	// each flush once the catalog has them, e.g. to warm the cache tier.
	OnFlushed func(files []catalog.File)
	// Now replaces the clock, for tests.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	if o.FlushInterval <= 0 {
		o.FlushInterval = time.Second
	}
	if o.FlushBytes <= 0 {
		o.FlushBytes = 16 << 20
	}
	if o.MaxScratchBytes <= 0 {
		o.MaxScratchBytes = 1 << 30
	}
	if o.MaxMemoryBytes <= 0 {
		o.MaxMemoryBytes = 256 << 20
	}
	if o.FlushWorkers <= 0 {
		o.FlushWorkers = runtime.GOMAXPROCS(0)
	}
	if o.OpTimeout <= 0 {
		o.OpTimeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

var (
	// ErrOverloaded: buffers are over their limits; retry after a moment.
	ErrOverloaded = errors.New("ingest is overloaded, retry later")
	// ErrLeftInWAL: Close could not flush everything; the rest is safe in
	// the WAL, replayed by the next Open.
	ErrLeftInWAL = errors.New("kept safe")
	// ErrStopping: the ingester is shutting down.
	ErrStopping = errors.New("ingest is shutting down")
)

// Ingester makes OTLP rows durable in a WAL, acknowledges them, and flushes
// them to Parquet on the object store and the catalog.
//
// Two goroutines own its state: the writer loop owns the active segment
// file (group commit: it writes every queued batch, fsyncs once, and wakes
// all their callers), and the flush loop owns sealed segments until they
// are flushed and deleted.
type Ingester struct {
	opts   Options
	cat    catalog.Store
	bucket *objstore.Bucket
	unlock func() // the scratch dir's lock

	reqs     chan *appendReq
	rotatec  chan struct{} // cap 1: ask the writer to seal the active segment
	flushc   chan struct{} // cap 1: tell the flusher a segment was sealed
	stopW    chan struct{} // closed to stop the writer
	writerD  chan struct{} // closed when the writer has exited
	stopF    chan struct{} // closed to make the flusher drain and exit
	flushD   chan struct{} // closed when the flusher has exited
	flushCtx context.Context
	cancelF  context.CancelFunc

	stopMu       sync.RWMutex // held to set stopping, read-held to send to reqs
	stopping     atomic.Bool
	inflight     atomic.Int64               // request memory held (Reserve) and frame bytes waiting for the writer
	disk         atomic.Int64               // WAL bytes on disk
	pending      atomic.Int64               // rows acknowledged but not yet in the catalog
	walErr       atomic.Pointer[timedError] // why the last group commit failed; nil after one succeeds
	flushErr     atomic.Pointer[error]      // the last error of a flush op being retried
	flushFailing atomic.Int32               // flush ops retrying after an error

	mu      sync.Mutex // guards active's contents and sealed, for snapshots
	active  *segment
	file    *segmentFile // owned by the writer loop
	sealed  []*segment
	nextSeq uint64

	wbufs [][]byte // writer loop scratch: the frames of one commit
	m     *ingestMetrics

	// pqBufs holds Parquet output buffers for the next flushes: a buffer
	// grown for one flush takes the next without growing (copying and
	// zeroing) again.
	pqBufs chan *bytes.Buffer
}

type appendEntry struct {
	part  partKey
	rows  int64
	frame []byte
}

type appendReq struct {
	entries []appendEntry
	done    chan error
}

// Open replays any WAL segments left by a previous run (they are flushed
// first) and starts the writer and flush loops.
func Open(cat catalog.Store, bucket *objstore.Bucket, opts Options) (*Ingester, error) {
	opts.setDefaults()
	if opts.ScratchDir == "" {
		return nil, errors.New("open ingester: no scratch dir")
	}
	if err := os.MkdirAll(opts.ScratchDir, 0o755); err != nil {
		return nil, fmt.Errorf("open ingester: %w", err)
	}
	// Two processes on one WAL would replay, flush and delete each
	// other's segments, the active one included: rows acknowledged into a
	// deleted file are lost.
	unlock, err := flock.TryLock(filepath.Join(opts.ScratchDir, lockFile))
	if errors.Is(err, flock.ErrLocked) {
		return nil, fmt.Errorf("open ingester: scratch dir %s is in use by another ingest process: give each its own (--scratch-dir, or --data-dir)", opts.ScratchDir)
	}
	if err != nil {
		return nil, fmt.Errorf("open ingester: lock scratch dir: %w", err)
	}
	ok := false
	defer func() {
		if !ok {
			unlock()
		}
	}()
	in := &Ingester{
		unlock: unlock,
		opts:   opts, cat: cat, bucket: bucket,
		reqs:    make(chan *appendReq, 1024),
		rotatec: make(chan struct{}, 1),
		flushc:  make(chan struct{}, 1),
		pqBufs:  make(chan *bytes.Buffer, opts.FlushWorkers),
		stopW:   make(chan struct{}),
		writerD: make(chan struct{}),
		stopF:   make(chan struct{}),
		flushD:  make(chan struct{}),
		m:       newIngestMetrics(),
	}
	in.flushCtx, in.cancelF = context.WithCancel(context.Background())
	seqs, err := listSegments(opts.ScratchDir)
	if err != nil {
		return nil, fmt.Errorf("open ingester: %w", err)
	}
	var replayed int64
	for i, seq := range seqs {
		in.nextSeq = seq + 1
		seg, err := readSegment(opts.ScratchDir, seq, i == len(seqs)-1)
		if err != nil {
			return nil, fmt.Errorf("open ingester: replay: %w", err)
		}
		if seg == nil || seg.rows == 0 {
			os.Remove(segmentPath(opts.ScratchDir, seq))
			continue
		}
		replayed += seg.rows
		if data, err := mapFile(seg.path, seg.diskBytes); err == nil {
			seg.mapping = &walMap{data: data, keep: true} // flushed whole even if its file goes meanwhile
		}
		in.sealed = append(in.sealed, seg)
		in.disk.Add(seg.diskBytes)
		in.pending.Add(seg.rows)
	}
	if replayed > 0 {
		slog.Info("wal replayed", "segments", len(in.sealed), "rows", replayed)
	}
	if err := in.newActive(nil); err != nil {
		return nil, fmt.Errorf("open ingester: %w", err)
	}
	go in.writeLoop()
	go in.flushLoop()
	if len(in.sealed) > 0 {
		in.flushc <- struct{}{}
	}
	ok = true
	return in, nil
}

// lockFile is the WAL directory's lock, held while an Ingester is open.
const lockFile = "wal.lock"

// Append makes rec durable and returns once it is fsynced: after a nil
// return the rows survive a crash and will be flushed exactly once. rec
// must have the table's schema; Append does not take ownership of it.
func (in *Ingester) Append(ctx context.Context, project, table string, rec arrow.RecordBatch) error {
	if err := in.Admit(); err != nil {
		return err
	}
	p, err := in.Prepare(project, table, rec)
	if err != nil {
		return err
	}
	return in.Commit(ctx, p)
}

// Pending is a batch encoded for the WAL, not yet written.
type Pending struct {
	req  *appendReq
	size int64
}

// Prepare does Append's CPU work: it splits rec by hour and encodes the WAL
// frames. rec may be released once it returns. The caller admitted the
// request's memory (Admit, Reserve); Prepare refuses only if the WAL filled
// up meanwhile.
func (in *Ingester) Prepare(project, table string, rec arrow.RecordBatch) (*Pending, error) {
	if in.disk.Load() > in.opts.MaxScratchBytes {
		in.m.refused.Inc()
		return nil, ErrOverloaded
	}
	t, err := schema.Lookup(table)
	if err != nil {
		return nil, err
	}
	pieces, err := splitByHour(t, rec)
	if err != nil {
		return nil, err
	}
	p := &Pending{req: &appendReq{done: make(chan error, 1)}}
	key := bufKey{project: project, table: table}
	for i, piece := range pieces {
		frame, err := encodeFrame(key, piece)
		if err == nil {
			p.req.entries = append(p.req.entries, appendEntry{part: partOf(key, piece), rows: piece.NumRows(), frame: frame})
			p.size += int64(len(frame))
		}
		piece.Release()
		if err != nil {
			for _, rest := range pieces[i+1:] {
				rest.Release()
			}
			return nil, err
		}
	}
	return p, nil
}

// Commit hands the frames to the WAL writer and waits until they are
// fsynced (with other callers' frames: group commit).
func (in *Ingester) Commit(ctx context.Context, p *Pending) error {
	if len(p.req.entries) == 0 {
		return nil
	}
	in.inflight.Add(p.size)
	defer in.inflight.Add(-p.size)
	if err := in.send(ctx, p.req); err != nil {
		return err
	}
	select {
	case err := <-p.req.done:
		return err
	case <-ctx.Done():
		// The writer still owns the request; the rows may yet be committed.
		return ctx.Err()
	}
}

// Admit says whether new data would be accepted now: ErrOverloaded while
// the WAL or in-flight data is over its limit. Receivers ask before decoding
// a request, so an overloaded node refuses cheaply.
func (in *Ingester) Admit() error {
	err := in.Accepting()
	if err != nil {
		in.m.refused.Inc()
	}
	return err
}

// Accepting says why ingest refuses new requests, or nil if it does not:
// its WAL or its requests' memory over their limits (readiness asks, and
// counts nothing).
func (in *Ingester) Accepting() error {
	if d := in.disk.Load(); d > in.opts.MaxScratchBytes {
		return fmt.Errorf("%w: the WAL holds %d bytes not yet flushed to the object store, over --max-scratch-bytes (%d)",
			ErrOverloaded, d, in.opts.MaxScratchBytes)
	}
	if m := in.inflight.Load(); m > in.opts.MaxMemoryBytes {
		return fmt.Errorf("%w: requests being received and converted hold %d bytes, over --max-buffer-bytes (%d)",
			ErrOverloaded, m, in.opts.MaxMemoryBytes)
	}
	return nil
}

// Flushing says why flushes are failing and being retried (the object
// store or the catalog refusing them), or nil. Ingest goes on taking data
// into its WAL meanwhile: readiness shows it as degraded, not failing
// (QA: a read-only object store failed every upload under a readyz "ok").
func (in *Ingester) Flushing() error {
	if in.flushFailing.Load() == 0 {
		return nil
	}
	if e := in.flushErr.Load(); e != nil {
		return fmt.Errorf("flushes are failing, rows wait in the WAL: %w", *e)
	}
	return errors.New("flushes are failing, rows wait in the WAL")
}

// timedError is an error and when it happened.
type timedError struct {
	err error
	at  time.Time
}

// walErrShown is how long readiness reports a failed group commit: a node
// taken out of a load balancer gets no requests, so no commit would ever
// succeed to clear it (review); after this, requests come and tell.
const walErrShown = 10 * time.Second

// Ready says why ingest cannot take data now, or nil: Accepting's limits,
// or a WAL whose last group commit failed within walErrShown (a full or
// lost scratch disk). For readiness: Admit does not refuse on it, so that
// the next request finds out when the disk is back.
func (in *Ingester) Ready() error {
	if err := in.Accepting(); err != nil {
		return err
	}
	if e := in.walErr.Load(); e != nil && time.Since(e.at) < walErrShown {
		return fmt.Errorf("the WAL cannot be written: %w", e.err)
	}
	return nil
}

// Reserve counts n more bytes of a request's memory — its body, then what
// decoding and converting it take — against MaxMemoryBytes, beside the
// frames waiting for the WAL; own is what the caller holds already. It
// says false, and counts a refusal, when that would pass the limit, except
// for a request that is alone: one larger than the limit still goes
// through, by itself. Every byte reserved is given back with Release.
func (in *Ingester) Reserve(n, own int64) bool {
	for {
		cur := in.inflight.Load()
		if cur-own > 0 && cur+n > in.opts.MaxMemoryBytes {
			in.m.refused.Inc()
			return false
		}
		if in.inflight.CompareAndSwap(cur, cur+n) {
			return true
		}
	}
}

// Release gives back bytes counted by Reserve.
func (in *Ingester) Release(n int64) { in.inflight.Add(-n) }

// send queues req for the writer. The read lock makes the check of
// stopping and the send one step, so Close can never leave a request in the
// queue after the writer has gone.
func (in *Ingester) send(ctx context.Context, req *appendReq) error {
	in.stopMu.RLock()
	defer in.stopMu.RUnlock()
	if in.stopping.Load() {
		return ErrStopping
	}
	select {
	case in.reqs <- req:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writeLoop owns the active segment file.
func (in *Ingester) writeLoop() {
	defer close(in.writerD)
	var batch []*appendReq
	for {
		select {
		case r := <-in.reqs:
			batch = append(batch[:0], r)
		case <-in.rotatec:
			in.rotate()
			continue
		case <-in.stopW:
			// No Append can send any more (see Close): commit what is
			// queued, seal, and stop.
			batch = batch[:0]
			for len(in.reqs) > 0 {
				batch = append(batch, <-in.reqs)
			}
			if len(batch) > 0 {
				in.commit(batch)
			}
			if in.active.rows > 0 {
				in.holdMapping(in.active, in.file) // its flush reads it even if its file was deleted
			}
			in.mu.Lock()
			if in.active.rows > 0 {
				in.sealed = append(in.sealed, in.active)
			} else {
				os.Remove(in.active.path)
				in.disk.Add(-in.active.diskBytes)
			}
			in.active = newSegment(in.active.seq, in.active.version, in.active.nonce, in.active.created, in.active.path)
			in.mu.Unlock()
			in.file.f.Close()
			return
		}
	gather:
		for len(batch) < 4096 {
			select {
			case r := <-in.reqs:
				batch = append(batch, r)
			default:
				break gather
			}
		}
		in.commit(batch)
		if in.file.size >= in.opts.FlushBytes {
			in.rotate()
		}
	}
}

// commit writes every frame of reqs, fsyncs once, counts the rows into the
// active segment, and wakes the callers.
func (in *Ingester) commit(reqs []*appendReq) {
	frames := in.wbufs[:0]
	n := 0
	for _, r := range reqs {
		for _, e := range r.entries {
			frames = append(frames, e.frame)
			n += len(e.frame)
		}
	}
	in.wbufs = frames
	start := time.Now()
	err := in.writeAndSync(frames, n)
	clear(frames) // the frames go back to their pool
	in.m.fsync.Observe(time.Since(start).Seconds())
	if err != nil {
		slog.Error("wal write failed", "segment", in.active.seq, "err", err)
		in.walErr.Store(&timedError{err, time.Now()})
		in.m.walErrors.Inc()
		for _, r := range reqs {
			r.done <- fmt.Errorf("write wal: %w", err)
		}
		freeFrames(reqs)
		return
	}
	var rows int64
	off := in.file.size - int64(n) + frameHeader
	in.mu.Lock()
	if in.active.rows == 0 {
		in.active.first = in.opts.Now()
	}
	for _, r := range reqs {
		for _, e := range r.entries {
			in.active.parts[e.part] += e.rows
			in.active.frames = append(in.active.frames, frameRef{off: off, n: len(e.frame) - frameHeader, part: e.part})
			off += int64(len(e.frame))
			rows += e.rows
		}
	}
	in.active.rows += rows
	in.active.diskBytes = in.file.size
	in.mu.Unlock()
	in.walErr.Store(nil)
	in.disk.Add(int64(n))
	in.pending.Add(rows)
	in.m.rows.Add(float64(rows))
	in.m.walWritten.Add(float64(n))
	in.m.commits.Inc()
	for _, r := range reqs {
		r.done <- nil
	}
	freeFrames(reqs)
}

// freeFrames recycles the frames of requests the writer is done with.
func freeFrames(reqs []*appendReq) {
	for _, r := range reqs {
		for i := range r.entries {
			freeFrame(r.entries[i].frame)
			r.entries[i].frame = nil
		}
	}
}

// writeAndSync appends frames (n bytes in all) to the active segment and
// fsyncs it. Each frame is written as it is: copying them into one buffer
// for a single write cost a memmove of every WAL byte and kept a buffer
// the size of the largest commit (24 MB at full load).
func (in *Ingester) writeAndSync(frames [][]byte, n int) error {
	f := in.file
	for _, fr := range frames {
		if _, err := f.f.Write(fr); err != nil {
			// Cut the partial write so the segment stays a sequence of whole frames.
			f.f.Truncate(f.size)
			f.f.Seek(f.size, 0)
			return err
		}
	}
	if err := f.f.Sync(); err == nil && unlinked(f.f) {
		// The segment was deleted (the scratch dir removed under us): its
		// rows would not survive a restart, so nothing more is
		// acknowledged into it (QA: 29,414 rows acknowledged, then lost).
		slog.Error("wal: the active segment was deleted from the scratch dir; starting a new one, and flushing "+
			"its acknowledged rows from the file still open", "segment", in.active.seq, "rows", in.active.rows)
		in.rotate()
		return errSegmentDeleted
	} else if err != nil {
		// This write is not acknowledged and its clients will retry it: cut
		// it from the segment, or a replay after a crash would store it
		// as well. After a failed fsync the page cache cannot be trusted,
		// so the segment is sealed and writing goes on in a new one.
		if terr := f.f.Truncate(f.size); terr == nil {
			f.f.Sync()
		} else {
			slog.Error("wal: cannot cut an unacknowledged write after a failed fsync; a replay may store it twice",
				"segment", in.active.seq, "err", terr)
			f.size += int64(n)
		}
		f.f.Seek(f.size, 0)
		in.rotate()
		return err
	}
	f.size += int64(n)
	return nil
}

// errSegmentDeleted: the active WAL segment's file was unlinked.
var errSegmentDeleted = errors.New("the WAL segment was deleted from --scratch-dir")

// unlinked says whether f no longer has a name: its data is gone at the
// next start, whatever was synced.
func unlinked(f *os.File) bool {
	var st syscall.Stat_t
	return syscall.Fstat(int(f.Fd()), &st) == nil && st.Nlink == 0
}

// rotate seals the active segment if it has rows and starts a new one;
// also when it has none but its file was deleted (an empty segment whose
// scratch dir went would refuse every commit).
func (in *Ingester) rotate() {
	oldFile, old := in.file, in.active
	if old.rows == 0 {
		if !unlinked(oldFile.f) {
			return
		}
		if err := in.newActive(nil); err != nil {
			slog.Error("wal: cannot start a new segment; keeping the current one", "err", err)
			return
		}
		in.disk.Add(-old.diskBytes)
		oldFile.f.Close()
		return
	}
	// Mapped from its open file before it is sealed: its flush and the
	// queries of fresh rows read the mapping, so a segment whose file is
	// deleted (the scratch dir removed) is still flushed whole.
	in.holdMapping(old, oldFile)
	if err := in.newActive(old); err != nil {
		in.mu.Lock()
		old.unmapLocked()
		in.mu.Unlock()
		slog.Error("wal: cannot start a new segment; keeping the current one", "err", err)
		return
	}
	oldFile.f.Close()
	select {
	case in.flushc <- struct{}{}:
	default:
	}
}

// holdMapping maps seg's committed bytes from its open file f and keeps
// the mapping with it, unless it has one.
func (in *Ingester) holdMapping(seg *segment, f *segmentFile) {
	data, err := mapOpen(f.f, seg.diskBytes)
	if err != nil {
		slog.Warn("wal: cannot map a segment from its open file; its flush maps it by name", "segment", seg.seq, "err", err)
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if seg.mapping != nil {
		syscall.Munmap(data)
		return
	}
	seg.mapping = &walMap{data: data, keep: true}
}

// newActive creates the next segment and makes it active; sealed, if not
// nil, is the segment it replaces, which joins the sealed ones in the same
// step — a snapshot between the two would see its rows nowhere.
func (in *Ingester) newActive(sealed *segment) error {
	f, seg, err := createSegment(in.opts.ScratchDir, in.nextSeq, in.opts.Now())
	if err != nil {
		return err
	}
	in.nextSeq++
	in.mu.Lock()
	if sealed != nil {
		in.sealed = append(in.sealed, sealed)
	}
	in.active, in.file = seg, f
	in.mu.Unlock()
	in.disk.Add(headerSize)
	return nil
}

// Close stops accepting rows, commits what was queued, and flushes
// everything buffered until ctx is done. What could not be flushed in time
// stays in the WAL and is replayed by the next Open.
func (in *Ingester) Close(ctx context.Context) error {
	in.stopMu.Lock()
	already := in.stopping.Swap(true)
	in.stopMu.Unlock()
	if already {
		return nil
	}
	close(in.stopW)
	<-in.writerD
	close(in.stopF)
	select {
	case <-in.flushD:
	case <-ctx.Done():
		in.cancelF()
		<-in.flushD
	}
	in.cancelF()
	in.mu.Lock()
	left := len(in.sealed)
	var lost int64 // rows of segments deleted from the scratch dir
	for _, s := range in.sealed {
		s.unmapLocked()
		if _, err := os.Stat(s.path); errors.Is(err, os.ErrNotExist) {
			lost += s.rows
		}
	}
	in.mu.Unlock()
	in.unlock()
	if lost > 0 {
		return fmt.Errorf("close ingester: %d segments left in the WAL, of which some were deleted from --scratch-dir: "+
			"%d acknowledged rows are lost", left, lost)
	}
	if left > 0 {
		why := error(errKept) // a flush could not turn one into Parquet
		if ctx.Err() != nil {
			why = ctx.Err()
		}
		return fmt.Errorf("close ingester: %d segments left in the WAL for the next start: %w: %w", left, ErrLeftInWAL, why)
	}
	return nil
}

// Stats is a point-in-time view of the buffers.
type Stats struct {
	InflightBytes  int64 // request data waiting for the WAL
	ScratchBytes   int64 // WAL on disk
	UnflushedRows  int64 // acknowledged, not yet in the catalog
	SealedSegments int
}

func (in *Ingester) Stats() Stats {
	in.mu.Lock()
	defer in.mu.Unlock()
	return Stats{
		InflightBytes: in.inflight.Load(), ScratchBytes: in.disk.Load(),
		UnflushedRows: in.pending.Load(), SealedSegments: len(in.sealed),
	}
}

func segmentPath(dir string, seq uint64) string {
	return dir + string(os.PathSeparator) + segmentName(seq)
}
