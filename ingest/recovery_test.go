package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"gocloud.dev/blob"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/compactor"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/internal/testenv"
	"github.com/strata-db/strata/objstore"
	"github.com/strata-db/strata/sql"
)

// Recovery across roles: an ingest node's WAL, registration retries and
// fresh rows against a compactor merging, purging and scanning for
// orphans meanwhile. Each test is a failure the roles met one at a time
// would not show.

// flakyCatalog fails RegisterFiles before touching the database while
// failRegister is set, and commits but reports a failure (a lost COMMIT
// reply) while commitThenFail is set.
type flakyCatalog struct {
	catalog.Store
	failRegister   atomic.Bool
	commitThenFail atomic.Bool
	registered     atomic.Int64
}

func (f *flakyCatalog) RegisterFiles(ctx context.Context, files ...catalog.File) error {
	if f.failRegister.Load() {
		return errors.New("catalog unreachable")
	}
	if err := f.Store.RegisterFiles(ctx, files...); err != nil {
		return err
	}
	f.registered.Add(1)
	if f.commitThenFail.Load() {
		return errors.New("commit reply lost")
	}
	return nil
}

type lake struct {
	cat    catalog.Store
	bucket *objstore.Bucket
	dir    string
}

func newLake(t *testing.T) *lake {
	dir := t.TempDir()
	return &lake{cat: testenv.SQLiteCatalog(t, dir, catalog.Options{}), bucket: testenv.Bucket(t, testenv.FileURL(dir)), dir: dir}
}

// appendSpans appends n spans starting at `at` to in, as a receiver would.
func appendSpans(t *testing.T, in *ingest.Ingester, n int, at time.Time) {
	t.Helper()
	rec := convertSpans(t, n, at)
	defer rec.Release()
	if err := in.Append(context.Background(), catalog.DefaultProject, schema.Records, rec); err != nil {
		t.Fatal(err)
	}
}

// convertSpans converts n spans starting at `at` to a records batch. Each
// has a scope attribute and trace flags.
func convertSpans(t *testing.T, n int, at time.Time) arrow.RecordBatch {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "svc")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().Attributes().PutStr("library.team", "payments")
	for i := range n {
		s := ss.Spans().AppendEmpty()
		var tid [16]byte
		var sid [8]byte
		tid[0], tid[1], tid[15] = byte(i), byte(i>>8), 1
		sid[0], sid[1], sid[7] = byte(i), byte(i>>8), 1
		s.SetTraceID(tid)
		s.SetSpanID(sid)
		s.SetName(fmt.Sprintf("op%d", i))
		s.SetFlags(1)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Millisecond)))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i+1) * time.Millisecond)))
	}
	rec, err := ingest.ConvertTraces(catalog.DefaultProject, td, ingest.Window{Now: at})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func (l *lake) liveRows(t *testing.T) (rows int64, files []catalog.File) {
	t.Helper()
	files, err := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		rows += f.Rows
	}
	return rows, files
}

func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// A segment registered but not deleted when ingest dies is replayed on
// the next start. If the compactor merged its file and GC purged the
// tombstoned row meanwhile, registering the same key again must not bring
// the file back: its rows live on in the merged file.
func TestRecovery_ReplayAfterPurgeDoesNotDoubleRows(t *testing.T) {
	l := newLake(t)
	ctx := context.Background()
	scratch, crashed := filepath.Join(l.dir, "scratch"), filepath.Join(l.dir, "scratch-at-crash")
	at := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)

	// A segment not flushed yet; keep a copy of the WAL as a crash between
	// registration and the segment's removal would leave it.
	fc := &flakyCatalog{Store: l.cat}
	fc.failRegister.Store(true)
	in, err := ingest.Open(fc, l.bucket, ingest.Options{ScratchDir: scratch, FlushInterval: 50 * time.Millisecond, OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	appendSpans(t, in, 100, at)
	cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	err = in.Close(cctx)
	cancel()
	if err == nil {
		t.Fatal("want the segment left in the WAL")
	}
	copyDir(t, scratch, crashed)

	if in, err = ingest.Open(l.cat, l.bucket, ingest.Options{ScratchDir: scratch, FlushInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, _ := l.liveRows(t); rows != 100 {
		t.Fatalf("%d rows flushed, want 100", rows)
	}

	// The compactor settles the hour, then GC purges the level-0 file.
	now := time.Now().UTC()
	c, err := compactor.New(l.cat, l.bucket, compactor.Options{WorkDir: filepath.Join(l.dir, "work"), MinAge: -1,
		Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	now = now.Add(11 * time.Minute)
	pass, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if pass.Deleted == 0 {
		t.Fatalf("GC purged nothing: %+v", pass)
	}

	// Ingest restarts on the WAL as it was at the crash.
	if in, err = ingest.Open(l.cat, l.bucket, ingest.Options{ScratchDir: crashed, FlushInterval: 50 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if rows, files := l.liveRows(t); rows != 100 {
		t.Fatalf("after the replay: %d live rows in %d files, want 100", rows, len(files))
	}
}

// A flush whose registration keeps failing leaves objects no catalog row
// names: orphans, to the compactor, once older than its grace. The flush
// uploads them again while it waits, so the file it finally registers has
// its object.
func TestRecovery_OrphanScanDuringALongCatalogOutageLosesNothing(t *testing.T) {
	l := newLake(t)
	ctx := context.Background()
	defer func(d time.Duration) { *ingest.ReuploadAfter = d }(*ingest.ReuploadAfter)
	*ingest.ReuploadAfter = 200 * time.Millisecond // stands for 30 minutes
	fc := &flakyCatalog{Store: l.cat}
	fc.failRegister.Store(true)
	in, err := ingest.Open(fc, l.bucket, ingest.Options{ScratchDir: filepath.Join(l.dir, "scratch"),
		FlushInterval: 50 * time.Millisecond, OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	appendSpans(t, in, 100, time.Now().UTC().Add(-30*time.Minute))
	objects := func() (keys []string) {
		it := l.bucket.List(&blob.ListOptions{Prefix: catalog.DefaultProject + "/"})
		for {
			o, err := it.Next(ctx)
			if err == io.EOF {
				return keys
			}
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, o.Key)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(objects()) == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("nothing uploaded")
		}
	}
	// Hours pass for the compactor while the catalog stays out of reach
	// of this ingest node: its orphan scan deletes the upload.
	now := time.Now().Add(7 * time.Hour)
	c, err := compactor.New(l.cat, l.bucket, compactor.Options{WorkDir: filepath.Join(l.dir, "work"), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if pass, err := c.RunOnce(ctx); err != nil || pass.Orphans == 0 {
		t.Fatalf("orphan scan: %+v %v", pass, err)
	}
	time.Sleep(2 * *ingest.ReuploadAfter)
	fc.failRegister.Store(false)
	if err := in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	rows, files := l.liveRows(t)
	if rows != 100 || len(files) != 1 {
		t.Fatalf("%d rows in %d files registered, want 100", rows, len(files))
	}
	if keys := objects(); len(keys) != 1 || keys[0] != files[0].Key {
		t.Fatalf("objects %v, want the registered file's", keys)
	}
}

// While a flush's registration has committed but the flusher does not
// know it (the reply was lost; it retries), ingest still serves the
// segment's rows. If the compactor merges the file meanwhile, a query
// must count those rows once: from the merged file.
func TestRecovery_RowsMergedWhileIngestRetriesAreCountedOnce(t *testing.T) {
	l, in, merge := retryingSegment(t)
	merge()
	if n := countRecords(t, l, l.cat, in); n != "150" {
		t.Fatalf("count(*) = %s, want 150", n)
	}
}

// The same merge, committed while the query is between asking which of
// ingest's files are merged away and listing the catalog's files: the
// listing holds the merged file, so ingest's copy must not be read too.
func TestRecovery_RowsMergedDuringAQueryAreCountedOnce(t *testing.T) {
	l, in, merge := retryingSegment(t)
	cat := &mergeOnList{Store: l.cat, merge: merge}
	if n := countRecords(t, l, cat, in); n != "150" {
		t.Fatalf("count(*) = %s, want 150", n)
	}
	if !cat.merged {
		t.Fatal("the query never listed files")
	}
}

// mergeOnList runs merge just before the first listing of files.
type mergeOnList struct {
	catalog.Store
	merge  func()
	merged bool
}

func (m *mergeOnList) ListFiles(ctx context.Context, f catalog.FileFilter) ([]catalog.File, error) {
	if !m.merged {
		m.merged = true
		m.merge()
	}
	return m.Store.ListFiles(ctx, f)
}

// retryingSegment leaves ingest holding 100 spans whose file is
// registered while the flusher retries the registration, beside 50 spans
// flushed normally. merge has the compactor merge both files into one.
func retryingSegment(t *testing.T) (*lake, *ingest.Ingester, func()) {
	l := newLake(t)
	ctx := context.Background()
	at := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	fc := &flakyCatalog{Store: l.cat}
	in, err := ingest.Open(fc, l.bucket, ingest.Options{ScratchDir: filepath.Join(l.dir, "scratch"),
		FlushInterval: 50 * time.Millisecond, OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close(ctx) })
	appendSpans(t, in, 50, at.Add(time.Second)) // flushed normally
	for deadline := time.Now().Add(5 * time.Second); fc.registered.Load() == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("first segment not registered")
		}
	}
	time.Sleep(100 * time.Millisecond)
	fc.commitThenFail.Store(true)
	t.Cleanup(func() { fc.commitThenFail.Store(false) }) // before Close, which would retry forever
	appendSpans(t, in, 100, at)
	for deadline := time.Now().Add(5 * time.Second); fc.registered.Load() < 2; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("second segment not registered")
		}
	}
	merge := func() {
		now := time.Now().UTC().Add(6 * time.Second) // past the compactor's MinAge
		c, err := compactor.New(l.cat, l.bucket, compactor.Options{WorkDir: filepath.Join(l.dir, "work"), Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
		if _, files := l.liveRows(t); len(files) != 1 || files[0].Level == 0 {
			t.Fatalf("want the two level-0 files merged, got %+v", files)
		}
	}
	return l, in, merge
}

// countRecords runs count(*) over records through an executor on cat.
func countRecords(t *testing.T, l *lake, cat catalog.Store, in *ingest.Ingester) string {
	return queryRecords(t, l, cat, in, "SELECT count(*) AS n FROM records")
}

// queryRecords runs q through an executor on cat and returns its first
// row's values, comma-separated.
func queryRecords(t *testing.T, l *lake, cat catalog.Store, in *ingest.Ingester, q string) string {
	ctx := context.Background()
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: []string{l.dir}, TempDir: filepath.Join(l.dir, "spill")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	client, err := cache.NewClient(l.bucket, cache.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := sql.NewExecutor(cat, db, client, in, nil).Run(ctx, catalog.DefaultProject, sql.Request{SQL: q})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	if !res.Next() {
		t.Fatal(res.Err())
	}
	var vals []string
	for _, c := range res.RecordBatch().Columns() {
		vals = append(vals, c.ValueStr(0))
	}
	return strings.Join(vals, ",")
}

// An upgrade can find unflushed rows that the previous build wrote with an
// older table schema version: they are replayed, queryable before and
// after their flush with NULL in the columns that version lacked, and
// flushed as files of the current version. A segment of a newer version
// than the build's stops the start and stays in the WAL.
func TestRecovery_SegmentOfAnOlderSchemaVersionIsReplayed(t *testing.T) {
	l := newLake(t)
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour).Add(5 * time.Minute)
	rec := convertSpans(t, 25, at)
	defer rec.Release()
	tbl, _ := schema.Lookup(schema.Records)
	v1, err := tbl.SchemaAt(1)
	if err != nil {
		t.Fatal(err)
	}
	old := array.NewRecordBatch(v1, rec.Columns()[:v1.NumFields()], rec.NumRows())
	defer old.Release()

	newer := filepath.Join(l.dir, "newer")
	if err := os.MkdirAll(newer, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ingest.WriteSegment(newer, 1, schema.Version+1, catalog.DefaultProject, rec); err != nil {
		t.Fatal(err)
	}
	if _, err := ingest.Open(l.cat, l.bucket, ingest.Options{ScratchDir: newer}); err == nil || !strings.Contains(err.Error(), "newer strata") {
		t.Fatalf("a segment of a newer schema version: %v", err)
	}
	if segs := walSegments(t, newer); len(segs) != 1 {
		t.Fatalf("segments left after the refused start: %v", segs)
	}

	scratch := filepath.Join(l.dir, "scratch")
	if err := os.MkdirAll(scratch, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ingest.WriteSegment(scratch, 3, 1, catalog.DefaultProject, old); err != nil {
		t.Fatal(err)
	}
	fc := &flakyCatalog{Store: l.cat}
	fc.failRegister.Store(true)
	in, err := ingest.Open(fc, l.bucket, ingest.Options{ScratchDir: scratch, FlushInterval: 50 * time.Millisecond,
		OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(context.Background())
	const q = "SELECT count(*), count(span_name), count(otel_scope_attributes), count(trace_flags) FROM records"
	if got := queryRecords(t, l, l.cat, in, q); got != "25,25,0,0" {
		t.Fatalf("replayed rows before their flush: %s, want 25,25,0,0", got)
	}
	fc.failRegister.Store(false)
	files := l.waitRows(t, 25)
	if len(files) != 1 || files[0].SchemaVersion != schema.Version {
		t.Fatalf("flushed files %+v, want one of schema version %d", files, schema.Version)
	}
	if got := queryRecords(t, l, l.cat, in, q); got != "25,25,0,0" {
		t.Fatalf("replayed rows after their flush: %s, want 25,25,0,0", got)
	}
}

// Two ingest processes on one WAL would replay, flush and delete each
// other's segments, losing what one acknowledged into a file the other
// deleted: the second open is refused, and works once the first closed.
func TestOpen_ScratchDirOfAnotherIngesterIsRefused(t *testing.T) {
	l := newLake(t)
	ctx := context.Background()
	opts := ingest.Options{ScratchDir: filepath.Join(l.dir, "scratch")}
	first, err := ingest.Open(l.cat, l.bucket, opts)
	if err != nil {
		t.Fatal(err)
	}
	if second, err := ingest.Open(l.cat, l.bucket, opts); err == nil || !strings.Contains(err.Error(), "in use by another ingest process") {
		if second != nil {
			second.Close(ctx)
		}
		t.Fatalf("a second ingester on the same scratch dir: %v, want it refused", err)
	}
	if err := first.Close(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := ingest.Open(l.cat, l.bucket, opts)
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close(ctx)
}

// walSegments lists the WAL segment files of dir, oldest first.
func walSegments(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := filepath.Glob(filepath.Join(dir, "*.wal"))
	if err != nil {
		t.Fatal(err)
	}
	return segs
}

// The disk damaging a sealed segment before its flush used to hold the
// flush worker for good (one on two cores): every later segment stayed
// in the WAL until a restart, and queries of fresh rows read the damaged
// frame unchecked (an error, or wrong values). Now a query leaves the
// damaged frame out, and the flush writes the segment's intact frames,
// keeps a copy of the file, and goes on with the next segment.
// threeSegments leaves one flush worker retrying the catalog on segment 0
// (10 spans) while segments 1 (two frames: 30 and 40 spans) and 2 (50)
// wait, sealed; fc.failRegister lets the flushes go on.
func threeSegments(t *testing.T) (l *lake, fc *flakyCatalog, in *ingest.Ingester, scratch string, segs []string) {
	l = newLake(t)
	at := time.Now().UTC().Add(-3 * time.Hour).Truncate(time.Hour).Add(10 * time.Minute)
	fc = &flakyCatalog{Store: l.cat}
	fc.failRegister.Store(true)
	scratch = filepath.Join(l.dir, "scratch")
	in, err := ingest.Open(fc, l.bucket, ingest.Options{ScratchDir: scratch, FlushWorkers: 1,
		FlushInterval: 50 * time.Millisecond, OpTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second) // a flush stuck on a segment would hold Close
		defer cancel()
		in.Close(ctx)
	})
	appendSpans(t, in, 10, at)
	time.Sleep(200 * time.Millisecond)
	appendSpans(t, in, 30, at.Add(time.Second))
	appendSpans(t, in, 40, at.Add(2*time.Second))
	time.Sleep(200 * time.Millisecond)
	appendSpans(t, in, 50, at.Add(3*time.Second))
	time.Sleep(200 * time.Millisecond)
	if segs = walSegments(t, scratch); len(segs) < 3 {
		t.Fatalf("want 3 segments, got %v", segs)
	}
	return l, fc, in, scratch, segs
}

// waitRows waits until the catalog holds rows rows, and returns its files.
func (l *lake) waitRows(t *testing.T, rows int64) []catalog.File {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, files := l.liveRows(t)
		if got == rows {
			return files
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d rows in the catalog, want %d", got, rows)
		}
	}
}

// waitLiveRows waits until the catalog holds rows rows and the WAL only
// segments after segs[2] (the active one).
func waitLiveRows(t *testing.T, l *lake, scratch string, segs []string, rows int64) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		got, _ := l.liveRows(t)
		left := walSegments(t, scratch)
		if got == rows && len(left) > 0 && left[0] > segs[2] {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s: %d rows in the catalog, segments left %v; want %d and only the active one", got, left, rows)
		}
	}
}

func TestFlush_DamagedSegmentFlushesItsIntactFramesAndOthersFollow(t *testing.T) {
	l, fc, in, scratch, segs := threeSegments(t)
	// Damage the payload of segment 1's second frame, as the disk would.
	f, err := os.OpenFile(segs[1], os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := f.Stat()
	if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef}, st.Size()-64); err != nil {
		t.Fatal(err)
	}
	f.Close()

	if got := countRecords(t, l, l.cat, in); got != "90" {
		t.Fatalf("fresh rows with a damaged frame: count %s, want 90 (10 + 30 + 50)", got)
	}
	fc.failRegister.Store(false)
	waitLiveRows(t, l, scratch, segs, 90)
	if kept, _ := filepath.Glob(segs[1] + ".damaged-*"); len(kept) != 1 {
		t.Fatalf("want one copy of the damaged segment, got %v", kept)
	}
}

// A sealed segment whose file went (removed by hand, or its scratch dir)
// is still flushed: sealed segments are mapped from their open file when
// they are sealed (review: the rows of every sealed segment waiting for a
// catalog or object store were lost with a deleted scratch dir).
func TestFlush_SegmentWhoseFileWentIsStillFlushed(t *testing.T) {
	l, fc, in, _, segs := threeSegments(t)
	if err := os.Remove(segs[1]); err != nil {
		t.Fatal(err)
	}
	fc.failRegister.Store(false)
	l.waitRows(t, 130) // all of it: 10 + 30 + 40 + 50
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := in.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A scratch dir deleted under an ingester loses nothing acknowledged and
// does not wedge it (review): rows of the active segment stay queryable,
// are flushed by Close, and an empty active segment deleted with the dir
// is replaced rather than refusing every commit.
func TestRecovery_ScratchDirDeleted(t *testing.T) {
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Hour).Add(5 * time.Minute)
	open := func(t *testing.T, l *lake, scratch string) *ingest.Ingester {
		in, err := ingest.Open(l.cat, l.bucket, ingest.Options{ScratchDir: scratch, FlushInterval: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	t.Run("queried, then flushed by Close", func(t *testing.T) {
		l := newLake(t)
		scratch := filepath.Join(l.dir, "scratch")
		in := open(t, l, scratch)
		appendSpans(t, in, 10, at)
		if err := os.RemoveAll(scratch); err != nil {
			t.Fatal(err)
		}
		if got := countRecords(t, l, l.cat, in); got != "10" {
			t.Errorf("fresh rows after the scratch dir went: %s, want 10", got)
		}
		if err := in.Close(context.Background()); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if got, _ := l.liveRows(t); got != 10 {
			t.Errorf("%d rows flushed by Close, want 10", got)
		}
	})
	t.Run("an empty active segment", func(t *testing.T) {
		l := newLake(t)
		scratch := filepath.Join(l.dir, "scratch")
		in := open(t, l, scratch)
		defer in.Close(context.Background())
		if err := os.RemoveAll(scratch); err != nil {
			t.Fatal(err)
		}
		rec := convertSpans(t, 5, at)
		defer rec.Release()
		ok := 0
		for range 3 {
			if err := in.Append(context.Background(), catalog.DefaultProject, schema.Records, rec); err == nil {
				ok++
			}
		}
		if ok < 2 {
			t.Fatalf("%d of 3 appends after the dir went succeeded; want all but the one that found it gone", ok)
		}
		if err := in.Ready(); err != nil && !strings.Contains(err.Error(), "WAL cannot be written") {
			t.Errorf("Ready: %v", err)
		}
	})
}
