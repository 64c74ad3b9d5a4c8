package compactor_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"gocloud.dev/blob"

	"github.com/strata-db/strata/bench"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/compactor"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/internal/flock"
	"github.com/strata-db/strata/internal/testenv"
	"github.com/strata-db/strata/objstore"
)

type lake struct {
	t      testing.TB
	cat    catalog.Store
	bucket *objstore.Bucket
	dir    string
	db     *engine.DB
	now    time.Time
}

func newLake(t testing.TB, cat catalog.Store, bucket *objstore.Bucket) *lake {
	dir := t.TempDir()
	l := &lake{t: t, cat: cat, bucket: bucket, dir: dir, now: time.Now().UTC()}
	allowed := []string{dir}
	if d, ok := bucket.LocalDir(); ok {
		allowed = append(allowed, d)
	}
	db, err := engine.Open(context.Background(), engine.Options{AllowedDirs: allowed, TempDir: filepath.Join(dir, "spill")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	l.db = db
	return l
}

func localLake(t testing.TB) *lake {
	dir := t.TempDir()
	return newLake(t, testenv.SQLiteCatalog(t, dir, catalog.Options{}), testenv.Bucket(t, testenv.FileURL(dir)))
}

// load writes spans of the realistic workload as level-0 files of at most
// fileRows rows, over the given hours before l.now.
func (l *lake) load(project string, spans int64, hours float64, fileRows int64) {
	ctx := context.Background()
	w := ingest.NewBulkWriter(l.cat, l.bucket, 0, fileRows, engine.ParquetOptions{RowGroupRows: 1000})
	end := l.now.Add(-time.Minute)
	o := bench.LoadOptions{Workload: bench.DefaultWorkload(), Spans: spans, Start: end.Add(-time.Duration(hours * float64(time.Hour))), End: end}
	o.Workload.SpansPerRequest = 50
	err := bench.Generate(ctx, o, func(r bench.Request, at time.Time) error {
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r.Body)
		if err != nil {
			return err
		}
		rec, err := ingest.ConvertTraces(project, td, ingest.Window{Now: at.Add(time.Hour)})
		if err != nil {
			return err
		}
		defer rec.Release()
		return w.Add(ctx, project, schema.Records, rec)
	})
	if _, cerr := w.Close(ctx); err != nil || cerr != nil {
		l.t.Fatal(err, cerr)
	}
	// The compactor's clock must see the new files as written in the past.
	if now := time.Now().UTC().Add(time.Second); now.After(l.now) {
		l.now = now
	}
}

// fingerprint is the row count and an order-independent hash of every
// live row of a project's records, read through DuckDB.
func (l *lake) fingerprint(project string) string {
	l.t.Helper()
	ctx := context.Background()
	files, err := l.cat.ListFiles(ctx, catalog.FileFilter{Project: project, Table: schema.Records})
	if err != nil {
		l.t.Fatal(err)
	}
	var paths []engine.File
	for i, f := range files {
		p, ok := l.bucket.LocalPath(f.Key)
		if !ok {
			p = filepath.Join(l.dir, fmt.Sprintf("f%d-%s.parquet", i, testenv.RandomHex(4)))
			if err := l.bucket.GetFile(ctx, f.Key, p); err != nil {
				l.t.Fatal(err)
			}
		}
		paths = append(paths, engine.File{Path: p, SchemaVersion: f.SchemaVersion})
	}
	rows, err := l.db.Query(ctx, engine.Query{SQL: "SELECT count(*), coalesce(bit_xor(hash(trace_id, span_id, start_timestamp, attributes::VARCHAR)), 0) FROM records",
		Files: map[string][]engine.File{schema.Records: paths}})
	if err != nil {
		l.t.Fatal(err)
	}
	defer rows.Release()
	rows.Next()
	rec := rows.RecordBatch()
	return rec.Column(0).ValueStr(0) + "/" + rec.Column(1).ValueStr(0)
}

func (l *lake) partitions(project string) map[string]int {
	return l.filesPer(project, func(catalog.File) bool { return true })
}

// level0 counts the live level-0 files per partition.
func (l *lake) level0(project string) map[string]int {
	return l.filesPer(project, func(f catalog.File) bool { return f.Level == 0 })
}

func (l *lake) filesPer(project string, keep func(catalog.File) bool) map[string]int {
	files, err := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: project, Table: schema.Records})
	if err != nil {
		l.t.Fatal(err)
	}
	out := map[string]int{}
	for _, f := range files {
		if keep(f) {
			out[f.Partition]++
		}
	}
	return out
}

// objects lists the data objects in the bucket under project.
func (l *lake) objects(project string) map[string]bool {
	out := map[string]bool{}
	it := l.bucket.List(&blob.ListOptions{Prefix: project + "/"})
	for {
		o, err := it.Next(context.Background())
		if err == io.EOF {
			return out
		}
		if err != nil {
			l.t.Fatal(err)
		}
		out[o.Key] = true
	}
}

func (l *lake) compactor(o compactor.Options) *compactor.Compactor {
	o.WorkDir = filepath.Join(l.dir, "work")
	o.MinAge = -1
	if o.Now == nil {
		o.Now = func() time.Time { return l.now }
	}
	c, err := compactor.New(l.cat, l.bucket, o)
	if err != nil {
		l.t.Fatal(err)
	}
	return c
}

func TestCompactor_MergesWithoutLosingOrDoublingARow(t *testing.T) {
	l := localLake(t)
	l.load(catalog.DefaultProject, 6000, 2, 300)
	before, parts := l.fingerprint(catalog.DefaultProject), l.partitions(catalog.DefaultProject)
	var mu sync.Mutex
	warmed := map[string]bool{}
	c := l.compactor(compactor.Options{OnMerged: func(fs []catalog.File) {
		mu.Lock()
		defer mu.Unlock()
		for _, f := range fs {
			warmed[f.Key] = true
		}
	}})
	for range 5 {
		if _, err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	after := l.partitions(catalog.DefaultProject)
	files, _ := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	time.Sleep(50 * time.Millisecond) // OnMerged runs in its own goroutine
	mu.Lock()
	for _, f := range files {
		if f.Level > 0 && !warmed[f.Key] { // a lone level-0 file may be left as it is
			t.Errorf("merged file %s was not handed to OnMerged (to warm the cache)", f.Key)
		}
	}
	mu.Unlock()
	for p, n := range after {
		if n != 1 {
			t.Errorf("partition %s: %d files after compaction (%d before), want 1", p, n, parts[p])
		}
	}
	if got := l.fingerprint(catalog.DefaultProject); got != before {
		t.Fatalf("rows changed by compaction: before %s, after %s", before, got)
	}
	if wa := c.Metrics.WriteAmplification(); wa < 1.5 || wa > 3 {
		t.Errorf("write amplification %.2f", wa)
	}
	// After the grace period the merged-away objects are deleted. (An hour
	// later the day may have ended: its hour files may become a day file.)
	l.now = l.now.Add(time.Hour)
	if _, err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	live, err := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	if err != nil {
		t.Fatal(err)
	}
	objs := l.objects(catalog.DefaultProject)
	for _, f := range live {
		if !objs[f.Key] {
			t.Errorf("live file %s has no object", f.Key)
		}
		delete(objs, f.Key)
	}
	if len(objs) > 0 {
		t.Errorf("%d objects left that are no live file: %v", len(objs), objs)
	}
	if got := l.fingerprint(catalog.DefaultProject); got != before {
		t.Fatalf("rows changed by the last pass: before %s, after %s", before, got)
	}
}

// Once a day is cold, its hour files become one day-level file; the
// current day keeps hour files. No row is lost or doubled.
// With at most 3 inputs a merge, partitions of 7–10 level-0 files are
// merged over several rounds and passes, and still end as one file each
// once settled, every row kept once.
func TestCompactor_MaxInputsMergesOverRounds(t *testing.T) {
	l := localLake(t)
	l.load(catalog.DefaultProject, 6000, 2, 300)
	before, parts := l.fingerprint(catalog.DefaultProject), l.partitions(catalog.DefaultProject)
	c := l.compactor(compactor.Options{MaxInputs: 3})
	for range 5 {
		if _, err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		l.now = l.now.Add(30 * time.Minute) // the hours end and settle
	}
	files, _ := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	for _, f := range files {
		if f.Level == 0 {
			t.Errorf("level-0 file %s left", f.Key)
		}
	}
	for p, n := range l.partitions(catalog.DefaultProject) {
		if n != 1 {
			t.Errorf("partition %s: %d files after compaction, want 1 (before: %v)", p, n, parts)
		}
	}
	if got := l.fingerprint(catalog.DefaultProject); got != before {
		t.Fatalf("rows changed by compaction: before %s, after %s", before, got)
	}
}

// A catalog row whose object is missing, and an object that is not
// Parquet, fail the merge that meets them once; later passes merge the
// rest of their partition without them, instead of failing at every pass.
func TestCompactor_UnreadableFilesAreLeftOut(t *testing.T) {
	ctx := context.Background()
	l := localLake(t)
	l.load(catalog.DefaultProject, 6000, 2, 300)
	before := l.fingerprint(catalog.DefaultProject)
	files, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	missing, garbage := files[0], files[len(files)-1]
	missing.Key = strings.Replace(missing.Key, ".parquet", "-missing.parquet", 1)
	garbage.Key = strings.Replace(garbage.Key, ".parquet", "-garbage.parquet", 1)
	junk := filepath.Join(t.TempDir(), "junk")
	os.WriteFile(junk, []byte("not parquet at all"), 0o644)
	if err := l.bucket.PutFile(ctx, garbage.Key, junk); err != nil {
		t.Fatal(err)
	}
	if err := l.cat.RegisterFiles(ctx, missing, garbage); err != nil {
		t.Fatal(err)
	}
	c := l.compactor(compactor.Options{})
	var errs []error
	for range 5 { // within the hour they are left out for
		_, err := c.RunOnce(ctx)
		errs = append(errs, err)
		l.now = l.now.Add(10 * time.Minute)
	}
	if errs[0] == nil {
		t.Fatal("the first pass met two unreadable files without an error")
	}
	for i, err := range errs[2:] {
		if err != nil {
			t.Errorf("pass %d failed again: %v", i+3, err)
		}
	}
	left, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	perPart := map[string]int{}
	for _, f := range left {
		if f.Key != missing.Key && f.Key != garbage.Key {
			perPart[f.Partition]++
		}
	}
	for p, n := range perPart {
		if n != 1 {
			t.Errorf("partition %s: %d readable files left, want them merged into 1", p, n)
		}
	}
	if _, err := l.cat.TombstoneFiles(ctx, missing.Key, garbage.Key); err != nil {
		t.Fatal(err)
	}
	if got := l.fingerprint(catalog.DefaultProject); got != before {
		t.Fatalf("rows changed: before %s, after %s", before, got)
	}
}

// During a rolling upgrade a newer compactor or ingest node writes files
// of a newer table schema version than this compactor's: it leaves them
// to the newer ones, without an error, and merges the rest.
func TestCompactor_FilesOfANewerSchemaVersionAreLeftAlone(t *testing.T) {
	ctx := context.Background()
	l := localLake(t)
	l.load(catalog.DefaultProject, 6000, 2, 300)
	before := l.fingerprint(catalog.DefaultProject)
	files, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	newer := files[0]
	newer.Key = strings.Replace(newer.Key, ".parquet", "-newer.parquet", 1)
	newer.SchemaVersion = schema.Version + 1
	src, _ := l.bucket.LocalPath(files[0].Key)
	if err := l.bucket.PutFile(ctx, newer.Key, src); err != nil {
		t.Fatal(err)
	}
	if err := l.cat.RegisterFiles(ctx, newer); err != nil {
		t.Fatal(err)
	}
	c := l.compactor(compactor.Options{})
	for i := range 3 {
		if _, err := c.RunOnce(ctx); err != nil {
			t.Fatalf("pass %d: %v", i+1, err)
		}
		l.now = l.now.Add(10 * time.Minute)
	}
	left, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	perPart := map[string]int{}
	kept := false
	for _, f := range left {
		if f.Key == newer.Key {
			kept = true
		} else {
			perPart[f.Partition]++
		}
	}
	if !kept {
		t.Fatal("the file of a newer schema version was merged or retired")
	}
	for p, n := range perPart {
		if n != 1 {
			t.Errorf("partition %s: %d files of this version left, want them merged into 1", p, n)
		}
	}
	if _, err := l.cat.TombstoneFiles(ctx, newer.Key); err != nil {
		t.Fatal(err)
	}
	if got := l.fingerprint(catalog.DefaultProject); got != before {
		t.Fatalf("rows changed: before %s, after %s", before, got)
	}
}

// A file left out as unreadable is tried again an hour later: its object
// may have been restored meanwhile.
func TestCompactor_UnreadableFileIsTriedAgain(t *testing.T) {
	ctx := context.Background()
	l := localLake(t)
	l.load(catalog.DefaultProject, 3000, 1, 300)
	before := l.fingerprint(catalog.DefaultProject)
	files, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	path, _ := l.bucket.LocalPath(files[0].Key)
	aside := filepath.Join(t.TempDir(), "aside")
	if err := os.Rename(path, aside); err != nil {
		t.Fatal(err)
	}
	c := l.compactor(compactor.Options{})
	c.RunOnce(ctx) // fails on the missing object, marks it
	if err := os.Rename(aside, path); err != nil {
		t.Fatal(err)
	}
	live := func() bool {
		fs, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
		for _, f := range fs {
			if f.Key == files[0].Key {
				return true
			}
		}
		return false
	}
	c.RunOnce(ctx)
	if !live() {
		t.Fatal("a file marked unreadable was merged at the next pass")
	}
	l.now = l.now.Add(61 * time.Minute)
	for range 3 {
		if _, err := c.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if live() {
		t.Error("the restored file was not merged an hour later")
	}
	if got := l.fingerprint(catalog.DefaultProject); got != before {
		t.Fatalf("rows changed: before %s, after %s", before, got)
	}
}

// An object that cannot be deleted (here a directory in its place, on
// S3 an object lock) stays tombstoned; every other merged-away object is
// still deleted, and the orphan scan still runs.
func TestCompactor_UndeletableObjectDoesNotStopGC(t *testing.T) {
	ctx := context.Background()
	l := localLake(t)
	l.load(catalog.DefaultProject, 3000, 1, 300)
	c := l.compactor(compactor.Options{})
	if _, err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	tomb, err := l.cat.Tombstoned(ctx, l.now.Add(time.Hour), 0)
	if err != nil || len(tomb) < 3 {
		t.Fatalf("tombstoned after a merge: %d, %v", len(tomb), err)
	}
	stuck, _ := l.bucket.LocalPath(tomb[0].Key)
	os.Remove(stuck)
	if err := os.MkdirAll(filepath.Join(stuck, "held"), 0o755); err != nil {
		t.Fatal(err)
	}
	orphan := objstore.DataKey(catalog.DefaultProject, schema.Records, tomb[1].MinTime, 0, objstore.NewID(tomb[1].MinTime))
	if err := l.bucket.Put(ctx, orphan, []byte("x")); err != nil {
		t.Fatal(err)
	}
	// Past the grace periods (the orphan's too: objects are aged on the
	// compactor's clock), and an orphan scan due.
	l.now = l.now.Add(7 * time.Hour)
	p, err := c.RunOnce(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 objects could not be deleted") {
		t.Errorf("pass error %v, want one object that could not be deleted", err)
	}
	// (This pass's own merges may have added tombstones, purged at once: the
	// catalog's clock is behind the compactor's here.)
	if p.Deleted < len(tomb)-1 || p.Orphans != 1 {
		t.Errorf("deleted %d of %d tombstoned objects and %d orphans; want all but the stuck one, and the orphan", p.Deleted, len(tomb), p.Orphans)
	}
	left, _ := l.cat.Tombstoned(ctx, l.now.Add(time.Hour), 0)
	if len(left) != 1 || left[0].Key != tomb[0].Key {
		t.Errorf("tombstoned files left: %v, want only %s", left, tomb[0].Key)
	}
}

func TestCompactor_ColdDaysBecomeDayFiles(t *testing.T) {
	l := localLake(t)
	now := l.now
	today := now.UTC().Truncate(24 * time.Hour)
	l.now = today
	l.load(catalog.DefaultProject, 6000, 20, 300) // 20 hours of yesterday
	withToday := now.Sub(today) > 2*time.Hour     // and, unless the day just began, some of today
	if withToday {
		l.load(catalog.DefaultProject, 1000, 1, 300)
	}
	before := l.fingerprint(catalog.DefaultProject)
	c := l.compactor(compactor.Options{ColdAfter: time.Second})
	for range 8 {
		if _, err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
		l.now = l.now.Add(2 * time.Second) // a day settles once quiet for ColdAfter
	}
	yesterday := today.Add(-24 * time.Hour).Format("date=2006-01-02")
	todayPart := today.Format("date=2006-01-02")
	parts := l.partitions(catalog.DefaultProject)
	if parts[yesterday] != 1 {
		t.Errorf("day partition %s: %d files, want 1 (partitions %v)", yesterday, parts[yesterday], parts)
	}
	for p, n := range parts {
		switch {
		case p == yesterday:
		case strings.HasPrefix(p, yesterday+"/"):
			t.Errorf("cold day still has hour partition %s (%d files)", p, n)
		case withToday && strings.HasPrefix(p, todayPart+"/"):
		default:
			t.Errorf("unexpected partition %s (%d files)", p, n)
		}
	}
	if withToday && parts[todayPart] != 0 {
		t.Errorf("today, which is not over, was merged into a day file")
	}
	files, _ := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	for _, f := range files {
		if f.Partition == yesterday && (f.Level != 2 || !strings.HasPrefix(f.Key, "default/records/"+yesterday+"/2-")) {
			t.Errorf("day file %s at level %d", f.Key, f.Level)
		}
	}
	if got := l.fingerprint(catalog.DefaultProject); got != before {
		t.Fatalf("rows changed by compaction: before %s, after %s", before, got)
	}
	t.Logf("write amplification %.2f", c.Metrics.WriteAmplification())
}

// Rows that come late for a day already merged into a day file do not
// rewrite that file each time they come: they gather in a smaller day
// file until it is a quarter of the large one's size.
func TestCompactor_LateRowsDoNotRewriteADayFile(t *testing.T) {
	ctx := context.Background()
	l := localLake(t)
	today := l.now.UTC().Truncate(24 * time.Hour)
	yesterday := today.Add(-24 * time.Hour).Format("date=2006-01-02")
	l.now = today
	l.load(catalog.DefaultProject, 6000, 20, 300)
	c := l.compactor(compactor.Options{ColdAfter: time.Second})
	passes := func() {
		for range 4 {
			if _, err := c.RunOnce(ctx); err != nil {
				t.Fatal(err)
			}
			l.now = l.now.Add(2 * time.Second)
		}
	}
	passes()
	dayFiles := func() (keys []string) {
		files, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
		for _, f := range files {
			if f.Partition == yesterday {
				keys = append(keys, f.Key)
			}
		}
		return keys
	}
	first := dayFiles()
	if len(first) != 1 {
		t.Fatalf("yesterday merged into %d day files, want 1", len(first))
	}
	for range 5 {
		l.now = today
		l.load(catalog.DefaultProject, 60, 0.5, 300) // the last half hour of yesterday
		passes()
	}
	days := dayFiles()
	if !slices.Contains(days, first[0]) {
		t.Errorf("the day file was rewritten for 300 late rows: day files now %v", days)
	}
	if parts := l.partitions(catalog.DefaultProject); len(days) > 2 || parts[yesterday] != len(days) {
		t.Errorf("yesterday's files: %v", parts)
	}
}

// Two compactors of one process (or of two containers with one host name
// and PID) do not share a holder name: while one merges a partition, the
// other skips it instead of taking the same lease again.
func TestCompactor_DefaultHoldersDiffer(t *testing.T) {
	ctx := context.Background()
	l := localLake(t)
	l.now = l.now.Truncate(time.Hour) // one partition: the last half of the hour before
	l.load(catalog.DefaultProject, 600, 0.5, 300)
	started, release := make(chan struct{}), make(chan struct{})
	a := l.compactor(compactor.Options{Hook: func(step string) error {
		if step == "start" {
			close(started)
			<-release
		}
		return nil
	}})
	b := l.compactor(compactor.Options{})
	done := make(chan compactor.Pass)
	go func() {
		p, err := a.RunOnce(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	<-started
	p, err := b.RunOnce(ctx)
	close(release)
	pa := <-done
	if err != nil || p.Jobs != 0 || p.Skipped != 1 || pa.Jobs != 1 {
		t.Fatalf("while one compactor merged the partition, the other did %+v (%v); the first %+v", p, err, pa)
	}
}

// What the merges of a killed compactor left in the work directory is
// deleted when a compactor starts; a merge still running keeps its own.
func TestCompactor_StartDeletesWhatKilledMergesLeft(t *testing.T) {
	l := localLake(t)
	work := filepath.Join(l.dir, "work")
	dead, live := filepath.Join(work, "merge-123"), filepath.Join(work, "merge-456")
	// Not locked yet: a merge starting (kept), or killed before it locked,
	// long ago (deleted).
	starting, deadEarly := filepath.Join(work, "merge-789"), filepath.Join(work, "merge-012")
	for _, d := range []string{dead, live, starting, deadEarly} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "in-0.parquet"), make([]byte, 1<<20), 0o644)
	}
	os.WriteFile(filepath.Join(dead, ".lock"), nil, 0o644)
	long := time.Now().Add(-2 * time.Hour)
	os.Chtimes(deadEarly, long, long)
	unlock, err := flock.TryLock(filepath.Join(live, ".lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	l.compactor(compactor.Options{})
	for _, d := range []string{dead, deadEarly} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("a dead merge's directory %s is still there: %v", d, err)
		}
	}
	for _, d := range []string{live, starting} {
		if _, err := os.Stat(filepath.Join(d, "in-0.parquet")); err != nil {
			t.Errorf("a running merge lost its input: %v", err)
		}
	}
}

// A compactor that dies at any step (a hook error stands for the crash)
// leaves the lake as it was or as merged, never with rows lost or doubled;
// a later pass finishes the work, and GC removes what the dead left.
func TestCompactor_CrashAtAnyStep(t *testing.T) {
	l := localLake(t)
	l.load(catalog.DefaultProject, 4000, 1, 100)
	want := l.fingerprint(catalog.DefaultProject)
	rng := rand.New(rand.NewPCG(1, 2))
	steps := []string{"start", "uploaded", "swapped", "deleted"}
	crashes := 0
	for i := range 30 {
		step := steps[rng.IntN(len(steps))]
		c := l.compactor(compactor.Options{Fanout: 2, TargetBytes: 1 << 40, Holder: fmt.Sprintf("c%d", i), LeaseTTL: time.Second,
			Hook: func(s string) error {
				if s == step {
					crashes++
					return errors.New("crash at " + s)
				}
				return nil
			}})
		c.RunOnce(context.Background())
		if got := l.fingerprint(catalog.DefaultProject); got != want {
			t.Fatalf("after a crash at %s: rows %s, want %s", step, got, want)
		}
		l.now = l.now.Add(2 * time.Second) // the dead compactor's lease expires
		if i%5 == 0 {
			l.load(catalog.DefaultProject, 300, 1, 100) // more small files
			want = l.fingerprint(catalog.DefaultProject)
		}
	}
	if crashes < 5 {
		t.Fatalf("only %d crashes", crashes)
	}
	// A healthy compactor finishes; with the grace periods over, GC leaves
	// exactly the live files.
	l.now = l.now.Add(24 * time.Hour)
	c := l.compactor(compactor.Options{OrphanGrace: time.Hour})
	for range 4 {
		if _, err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := l.fingerprint(catalog.DefaultProject); got != want {
		t.Fatalf("after recovery: rows %s, want %s", got, want)
	}
	live := map[string]bool{}
	files, _ := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
	for _, f := range files {
		live[f.Key] = true
	}
	objs := l.objects(catalog.DefaultProject)
	for k := range objs {
		if !live[k] {
			t.Errorf("orphan left after GC: %s", k)
		}
	}
	if len(objs) != len(live) {
		t.Errorf("%d objects, %d live files", len(objs), len(live))
	}
}

// The orphan scan lists the bucket at most every OrphanGrace/4: an orphan
// that appears just after a scan, already old enough, waits for the next.
func TestCompactor_OrphanScanThrottled(t *testing.T) {
	l := localLake(t)
	ctx := context.Background()
	l.now = l.now.Add(2 * time.Hour) // objects written now are 2 h old on the compactor's clock
	c := l.compactor(compactor.Options{OrphanGrace: time.Hour})
	start := l.now
	if _, err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	key := objstore.DataKey(catalog.DefaultProject, schema.Records, start.Truncate(time.Hour), 0, objstore.NewID(start))
	if err := l.bucket.Put(ctx, key, []byte("orphan")); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		after   time.Duration
		orphans int
	}{{time.Minute, 0}, {14 * time.Minute, 0}, {16 * time.Minute, 1}} {
		l.now = start.Add(step.after)
		p, err := c.RunOnce(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if p.Orphans != step.orphans || l.objects(catalog.DefaultProject)[key] != (step.orphans == 0) {
			t.Fatalf("%v after the first scan: %d orphans deleted, want %d", step.after, p.Orphans, step.orphans)
		}
	}
}

// A pass can run for hours. A file another writer registers meanwhile is
// not among the keys the pass listed at its start, and its object may be
// older than OrphanGrace already (ingest registers uploads up to 30 min
// old): the orphan scan must not delete the object of a live file. An
// upload killed midway leaves a temporary file, which it does delete.
func TestCompactor_OrphanScanKeepsFilesRegisteredDuringThePass(t *testing.T) {
	l := localLake(t)
	ctx := context.Background()
	l.load(catalog.DefaultProject, 2000, 0.5, 200) // level-0 files: a merge job
	hour := l.now.Add(-48 * time.Hour).Truncate(time.Hour)
	aged := func(key string) {
		path, ok := l.bucket.LocalPath(key)
		if !ok {
			t.Fatal("no local path for a file:// bucket")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte("PAR1"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	late := objstore.DataKey(catalog.DefaultProject, schema.Records, hour, 0, objstore.NewID(hour))
	stranded := objstore.DataKey(catalog.DefaultProject, schema.Records, hour, 1, objstore.NewID(hour)) + ".18eaee7efd69ffae.tmp"
	aged(stranded)
	l.now = l.now.Add(2 * time.Hour) // objects written now are 2 h old on the compactor's clock
	var once sync.Once
	c := l.compactor(compactor.Options{OrphanGrace: time.Hour, Hook: func(step string) error {
		if step == "start" { // while the pass merges, another node registers a flush
			once.Do(func() {
				aged(late)
				err := l.cat.RegisterFiles(ctx, catalog.File{Key: late, Project: catalog.DefaultProject, Table: schema.Records,
					Partition: objstore.Partition(hour), MinTime: hour, MaxTime: hour.Add(time.Minute), Rows: 1, Bytes: 4, SchemaVersion: schema.Version})
				if err != nil {
					t.Error(err)
				}
			})
		}
		return nil
	}})
	p, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Jobs == 0 {
		t.Fatal("no merge job ran")
	}
	objs := l.objects(catalog.DefaultProject)
	if !objs[late] {
		t.Errorf("the orphan scan deleted the object of live file %s", late)
	}
	if objs[stranded] || p.Orphans != 1 {
		t.Errorf("stranded upload still there: %v; %d orphans deleted, want it alone", objs[stranded], p.Orphans)
	}
}

// The backlog and lag gauges say what the pass left to do, not what it
// found: a job that stops at its round limit leaves work, and a pass
// that merged every level-0 file leaves no lag.
func TestCompactor_BacklogAndLagAreWhatThePassLeft(t *testing.T) {
	l := localLake(t)
	ctx := context.Background()
	l.load(catalog.DefaultProject, 6000, 0.5, 100) // ~60 level-0 files in one or two hours
	l.now = l.now.Add(10 * time.Minute)
	gauge := func(c *compactor.Compactor, name string) float64 {
		reg := prometheus.NewRegistry()
		reg.MustRegister(c.Metrics.Collectors()...)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no metric %s", name)
		return 0
	}
	// unmerged counts level-0 files, leaving out one alone in the current
	// hour (of the compactor's clock), which a pass keeps on purpose.
	unmerged := func() int {
		n := 0
		for part, k := range l.level0(catalog.DefaultProject) {
			if k > 1 || part != objstore.Partition(l.now) {
				n += k
			}
		}
		return n
	}
	// A dead compactor's leases on every partition with level-0 files: the
	// work waits for them to expire, and a live compactor says so (review:
	// backlog and lag read 0 for the 2 minutes such a lease lasts).
	var held []string
	for part := range l.level0(catalog.DefaultProject) {
		name := "compact/" + catalog.DefaultProject + "/records/" + part
		if _, err := l.cat.AcquireLease(ctx, name, "dead", time.Hour); err != nil {
			t.Fatal(err)
		}
		held = append(held, name)
	}
	blocked := l.compactor(compactor.Options{})
	if p, err := blocked.RunOnce(ctx); err != nil || p.Jobs != 0 || p.Skipped < len(held) ||
		gauge(blocked, "strata_compactor_backlog_partitions") < float64(len(held)) || gauge(blocked, "strata_compactor_lag_seconds") < 600 {
		t.Errorf("partitions leased by a dead compactor: %+v %v, backlog %v, lag %v s; want %d skipped, in the backlog, lagging", p, err,
			gauge(blocked, "strata_compactor_backlog_partitions"), gauge(blocked, "strata_compactor_lag_seconds"), len(held))
	}
	for _, name := range held {
		if err := l.cat.ReleaseLease(ctx, name, "dead"); err != nil {
			t.Fatal(err)
		}
	}
	slow := l.compactor(compactor.Options{MaxInputs: 2}) // 8 rounds of 2 inputs cannot merge ~60 files
	p, err := slow.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := unmerged(); n < 10 || p.Backlog == 0 || gauge(slow, "strata_compactor_backlog_partitions") == 0 ||
		gauge(slow, "strata_compactor_lag_seconds") < 600 {
		t.Errorf("%d level-0 files left: backlog %d (gauge %v), lag %v s, want work left and a lag of at least 10 min", n, p.Backlog,
			gauge(slow, "strata_compactor_backlog_partitions"), gauge(slow, "strata_compactor_lag_seconds"))
	}
	all := l.compactor(compactor.Options{})
	if _, err := all.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n, lag, backlog := unmerged(), gauge(all, "strata_compactor_lag_seconds"), gauge(all, "strata_compactor_backlog_partitions"); n != 0 || lag != 0 || backlog != 0 {
		t.Errorf("after a pass that merged everything: %d level-0 files, lag %v s, backlog %v; want all 0", n, lag, backlog)
	}
}

// Times the catalog stamps are compared on the catalog's clock: a
// compactor whose host's clock runs an hour ahead of the database's must
// not take files merged away a moment ago for files past their grace.
func TestCompactor_GraceIsMeasuredOnTheCatalogsClock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	databaseClock := func() time.Time { return time.Now().Add(-time.Hour) }
	cat := testenv.SQLiteCatalog(t, dir, catalog.Options{Now: databaseClock})
	bucket := testenv.Bucket(t, testenv.FileURL(dir))
	l := newLake(t, cat, bucket)
	l.load(catalog.DefaultProject, 2000, 0.5, 200)
	want := l.fingerprint(catalog.DefaultProject)
	c, err := compactor.New(cat, bucket, compactor.Options{WorkDir: filepath.Join(dir, "work"), MinAge: -1, Grace: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if p.Jobs == 0 || p.Deleted != 0 {
		t.Fatalf("%d jobs; %d objects of just merged-away files deleted, want none within the 10 min grace", p.Jobs, p.Deleted)
	}
	if got := l.fingerprint(catalog.DefaultProject); got != want {
		t.Fatalf("rows %s after the merge, want %s", got, want)
	}
}

// An object's age is measured on the clock it was stamped with (the
// object store's, near the host's), not the catalog's: with a database 40
// minutes ahead, an upload 35 minutes old, still waiting to be registered,
// is not an orphan yet under a 1 h grace.
func TestCompactor_OrphanAgeIsNotMeasuredOnTheCatalogsClock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat := testenv.SQLiteCatalog(t, dir, catalog.Options{Now: func() time.Time { return time.Now().Add(40 * time.Minute) }})
	bucket := testenv.Bucket(t, testenv.FileURL(dir))
	hour := time.Now().Add(-2 * time.Hour).Truncate(time.Hour)
	key := objstore.DataKey(catalog.DefaultProject, schema.Records, hour, 0, objstore.NewID(hour))
	if err := bucket.Put(ctx, key, []byte("PAR1")); err != nil {
		t.Fatal(err)
	}
	path, _ := bucket.LocalPath(key)
	uploaded := time.Now().Add(-35 * time.Minute)
	if err := os.Chtimes(path, uploaded, uploaded); err != nil {
		t.Fatal(err)
	}
	c, err := compactor.New(cat, bucket, compactor.Options{WorkDir: filepath.Join(dir, "work"), OrphanGrace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil || p.Orphans != 0 {
		t.Fatalf("a 35-minute-old upload under a 1 h grace: %d orphans deleted, %v", p.Orphans, err)
	}
}

func TestCompactor_Retention(t *testing.T) {
	l := localLake(t)
	ctx := context.Background()
	if err := l.cat.CreateProject(ctx, catalog.Project{ID: "short", Name: "short", Retention: 90 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	l.load("short", 3000, 3, 500) // from 3 h ago to now
	c := l.compactor(compactor.Options{})
	if _, err := c.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	files, _ := l.cat.ListFiles(ctx, catalog.FileFilter{Project: "short", Table: schema.Records})
	cut := l.now.Add(-90 * time.Minute)
	for _, f := range files {
		// A file is rewritten once half of it is expired, or when merged.
		if f.MinTime.Before(cut) && (f.Level > 0 || cut.Sub(f.MinTime) >= f.MaxTime.Sub(f.MinTime)/2) {
			t.Errorf("file %s (level %d) still holds rows from %v to %v, retention cut %v", f.Key, f.Level, f.MinTime, f.MaxTime, cut)
		}
	}
	if len(files) == 0 {
		t.Fatal("retention removed the recent rows too")
	}
}

// Three compactors on one PostgreSQL catalog and one S3-compatible server:
// every level-0 file is merged exactly once and no row is lost or doubled.
func TestCompactor_ThreeCompactorsPostgresS3(t *testing.T) {
	ctx := context.Background()
	url := testenv.PostgresURL(t)
	cat, err := catalog.OpenPostgres(ctx, url, catalog.Options{Schema: testenv.PostgresSchema(t, url)})
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	bucket, err := objstore.Open(ctx, testenv.S3URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer bucket.Close()
	l := newLake(t, cat, bucket)
	project := "p" + testenv.RandomHex(4) // keys of its own in the shared bucket
	if err := cat.CreateProject(ctx, catalog.Project{ID: project, Name: project}); err != nil {
		t.Fatal(err)
	}
	l.load(project, 6000, 3, 200)
	want := l.fingerprint(project)
	var l0 int
	for _, n := range l.partitions(project) {
		l0 += n
	}
	var cs []*compactor.Compactor
	for i := range 3 {
		cs = append(cs, l.compactor(compactor.Options{Holder: fmt.Sprintf("c%d", i), Fanout: 2}))
	}
	for range 4 {
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.RunOnce(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	if got := l.fingerprint(project); got != want {
		t.Fatalf("rows %s, want %s", got, want)
	}
	merged := 0.0
	for _, c := range cs {
		merged += c.Metrics.FilesIn("0")
	}
	// A hot partition holding a single level-0 file is rightly left alone,
	// so count what is still there: merged + left must be every file once.
	left := l.level0(project)
	for p, n := range left {
		if n > 1 {
			t.Errorf("partition %s: %d level-0 files never merged", p, n)
		}
	}
	if int(merged)+len(left) != l0 {
		t.Errorf("level-0 files merged %v times in all and %d left, want each of %d once", merged, len(left), l0)
	}
	for p, n := range l.partitions(project) {
		if n > 2 {
			t.Errorf("partition %s: %d files", p, n)
		}
	}
}

// An orphan is a flush or merge that died before it registered its file,
// so it is younger than its project. An object older than the project is
// data this catalog never had — a catalog deleted and made anew — and is
// kept (QA: after catalog.db was deleted, the scan deleted every file).
func TestCompactor_OrphanScanKeepsObjectsOlderThanTheProject(t *testing.T) {
	l := localLake(t)
	ctx := context.Background()
	hour := l.now.Add(-48 * time.Hour).Truncate(time.Hour)
	before := objstore.DataKey(catalog.DefaultProject, schema.Records, hour, 1, objstore.NewID(hour))
	orphan := objstore.DataKey(catalog.DefaultProject, schema.Records, hour, 1, objstore.NewID(hour.Add(time.Second)))
	for _, key := range []string{before, orphan} {
		if err := l.bucket.Put(ctx, key, []byte("PAR1")); err != nil {
			t.Fatal(err)
		}
	}
	path, _ := l.bucket.LocalPath(before)
	old := time.Now().Add(-30 * 24 * time.Hour)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	l.now = l.now.Add(2 * time.Hour)
	p, err := l.compactor(compactor.Options{OrphanGrace: time.Hour}).RunOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	objs := l.objects(catalog.DefaultProject)
	if !objs[before] || objs[orphan] || p.Orphans != 1 {
		t.Errorf("older than the project kept: %v; orphan deleted: %v; %d orphans, want 1", objs[before], !objs[orphan], p.Orphans)
	}
}
