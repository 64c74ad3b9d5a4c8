package catalog_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/internal/testenv"
)

// clock is a settable test clock shared by a store and its test.
type clock struct{ us atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.us.Store(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC).UnixMicro())
	return c
}
func (c *clock) Now() time.Time          { return time.UnixMicro(c.us.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.us.Add(d.Microseconds()) }

// opener opens another store on the test's database, as another process would.
type opener func() (catalog.Store, error)

func (o opener) must(t *testing.T) catalog.Store {
	t.Helper()
	s, err := o()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// forEachBackend runs the suite against SQLite and PostgreSQL. Each test
// gets a fresh database: a new file, or a new PostgreSQL schema.
func forEachBackend(t *testing.T, test func(t *testing.T, open opener, clk *clock)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "catalog.db")
		clk := newClock()
		test(t, func() (catalog.Store, error) {
			s, err := catalog.OpenSQLite(context.Background(), path, catalog.Options{Now: clk.Now})
			if err == nil {
				t.Cleanup(func() { s.Close() })
			}
			return s, err
		}, clk)
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		url := testenv.PostgresURL(t)
		schema := testenv.PostgresSchema(t, url)
		clk := newClock()
		test(t, func() (catalog.Store, error) {
			s, err := catalog.OpenPostgres(context.Background(), url, catalog.Options{Schema: schema, Now: clk.Now})
			if err == nil {
				t.Cleanup(func() { s.Close() })
			}
			return s, err
		}, clk)
	})
}

func file(key string, minT, maxT time.Time) catalog.File {
	return catalog.File{
		Key: key, Project: catalog.DefaultProject, Table: "records",
		Partition: minT.Format("date=2006-01-02/hour=15"), MinTime: minT, MaxTime: maxT,
		Rows: 10, Bytes: 1000, SchemaVersion: 2,
	}
}

func keys(files []catalog.File) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f.Key
	}
	return out
}

func equalKeys(t *testing.T, what string, got []catalog.File, want ...string) {
	t.Helper()
	g := keys(got)
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Fatalf("%s: got %v, want %v", what, g, want)
	}
}

func TestStore_Projects(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		s := open.must(t)
		p, err := s.Project(ctx, catalog.DefaultProject)
		if err != nil {
			t.Fatalf("default project after migration: %v", err)
		}
		if p.Retention != catalog.DefaultRetention {
			t.Errorf("default retention = %v, want %v", p.Retention, catalog.DefaultRetention)
		}
		if _, err := s.Project(ctx, "nope"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("missing project: err = %v, want ErrNotFound", err)
		}
		if err := s.CreateProject(ctx, catalog.Project{ID: "acme", Retention: 7 * 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		// Creating again is a no-op and keeps the first settings.
		if err := s.CreateProject(ctx, catalog.Project{ID: "acme", Retention: time.Hour}); err != nil {
			t.Fatal(err)
		}
		p, err = s.Project(ctx, "acme")
		if err != nil || p.Retention != 7*24*time.Hour || p.Name != "acme" || !p.CreatedAt.Equal(clk.Now()) {
			t.Fatalf("acme = %+v, %v", p, err)
		}
		all, err := s.Projects(ctx)
		if err != nil || len(all) != 2 || all[0].ID != "acme" || all[1].ID != "default" {
			t.Fatalf("projects = %+v, %v", all, err)
		}
		// Retention changes; an unknown project or a retention of nothing does not.
		if err := s.SetRetention(ctx, "acme", 90*24*time.Hour); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Project(ctx, "acme"); err != nil || p.Retention != 90*24*time.Hour {
			t.Errorf("acme after SetRetention = %+v, %v", p, err)
		}
		if err := s.SetRetention(ctx, "nope", time.Hour); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("retention of a missing project: %v", err)
		}
		if err := s.SetRetention(ctx, "acme", 0); err == nil {
			t.Error("a retention of 0 accepted")
		}
		for _, id := range []string{"", "Bad/ID", "../x", "a b", "-x", strings.Repeat("a", 64)} {
			if err := s.CreateProject(ctx, catalog.Project{ID: id}); err == nil || !strings.Contains(err.Error(), "lower-case letters") {
				t.Errorf("project id %q: %v, want refused", id, err)
			}
		}
	})
}

func TestStore_RegisterAndList(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		s := open.must(t)
		t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		a := file("a", t0, t0.Add(10*time.Minute))
		b := file("b", t0.Add(30*time.Minute), t0.Add(50*time.Minute))
		c := file("c", t0.Add(2*time.Hour), t0.Add(3*time.Hour))
		c.SchemaVersion = 1 // written before a schema change
		other := file("m", t0, t0.Add(time.Hour))
		other.Table = "metrics"
		if err := s.RegisterFiles(ctx, a, b, c, other); err != nil {
			t.Fatal(err)
		}
		// Registering again (a retried flush) changes nothing.
		changed := a
		changed.Rows = 999
		if err := s.RegisterFiles(ctx, changed, b); err != nil {
			t.Fatal(err)
		}
		all, err := s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		if err != nil {
			t.Fatal(err)
		}
		equalKeys(t, "all records", all, "a", "b", "c")
		if all[0].Rows != 10 || all[0].Bytes != 1000 || !all[0].MinTime.Equal(a.MinTime) ||
			!all[0].MaxTime.Equal(a.MaxTime) || all[0].Partition != "date=2026-11-23/hour=10" ||
			!all[0].CreatedAt.Equal(clk.Now()) || !all[0].TombstonedAt.IsZero() || all[0].SchemaVersion != 2 {
			t.Errorf("file a read back as %+v", all[0])
		}
		if all[2].SchemaVersion != 1 {
			t.Errorf("file c read back with schema version %d, want 1", all[2].SchemaVersion)
		}
		unversioned := file("u", t0, t0)
		unversioned.SchemaVersion = 0
		if err := s.RegisterFiles(ctx, unversioned); err == nil || !strings.Contains(err.Error(), "schema version") {
			t.Errorf("a file without a schema version was registered: %v", err)
		}
		cases := []struct {
			name     string
			min, max time.Time
			want     []string
		}{
			{"inside a", t0.Add(time.Minute), t0.Add(2 * time.Minute), []string{"a"}},
			{"gap between b and c", t0.Add(55 * time.Minute), t0.Add(90 * time.Minute), nil},
			{"touching b's end", t0.Add(50 * time.Minute), t0.Add(60 * time.Minute), []string{"b"}},
			{"touching c's start", t0.Add(time.Hour), t0.Add(2 * time.Hour), []string{"c"}},
			{"open start", time.Time{}, t0.Add(35 * time.Minute), []string{"a", "b"}},
			{"open end", t0.Add(40 * time.Minute), time.Time{}, []string{"b", "c"}},
		}
		for _, tc := range cases {
			got, err := s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records", Min: tc.min, Max: tc.max})
			if err != nil {
				t.Fatal(err)
			}
			equalKeys(t, tc.name, got, tc.want...)
		}
		got, _ := s.ListFiles(ctx, catalog.FileFilter{Project: "other", Table: "records"})
		equalKeys(t, "other project", got)
		if f, err := s.File(ctx, "b"); err != nil || f.Key != "b" || f.Bytes != b.Bytes || f.Project != "default" {
			t.Errorf("File(b) = %+v, %v", f, err)
		}
		if _, err := s.File(ctx, "nope"); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("File(nope): err = %v, want ErrNotFound", err)
		}
		if n, err := s.CountFiles(ctx, "default", "records"); n != 3 || err != nil {
			t.Fatalf("count = %d, %v", n, err)
		}

		// A file of an unknown project is refused.
		bad := file("x", t0, t0)
		bad.Project = "ghost"
		if err := s.RegisterFiles(ctx, bad); err == nil {
			t.Error("file of unknown project registered")
		}
		bad = file("y", t0.Add(time.Hour), t0)
		if err := s.RegisterFiles(ctx, bad); err == nil {
			t.Error("file with max < min registered")
		}
	})
}

func TestStore_TraceFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		s := open.must(t)
		t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		a, b := file("a", t0, t0), file("b", t0, t0)
		a.TraceFilter = []byte{1, 2, 3, 0, 255}
		if err := s.RegisterFiles(ctx, a, b); err != nil {
			t.Fatal(err)
		}
		out := file("c", t0, t0)
		out.TraceFilter = bytes.Repeat([]byte{9}, 100_000)
		if err := s.ReplaceFiles(ctx, []string{"b"}, []catalog.File{out}); err != nil {
			t.Fatal(err)
		}
		got, err := s.TraceFilters(ctx, "a", "b", "c", "missing")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || !bytes.Equal(got["a"], a.TraceFilter) || !bytes.Equal(got["c"], out.TraceFilter) {
			t.Fatalf("trace filters: %d found, a=%v", len(got), got["a"])
		}
		live, _ := s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		for _, f := range live {
			if f.TraceFilter != nil {
				t.Fatal("ListFiles returned a trace filter")
			}
		}
	})
}

func TestStore_ReplaceFiles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		s := open.must(t)
		t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		in := []catalog.File{file("in1", t0, t0.Add(time.Minute)), file("in2", t0.Add(time.Minute), t0.Add(2*time.Minute))}
		if err := s.RegisterFiles(ctx, in...); err != nil {
			t.Fatal(err)
		}
		out := file("out", t0, t0.Add(2*time.Minute))
		out.Level = 1
		clk.Advance(time.Second)
		if err := s.ReplaceFiles(ctx, []string{"in1", "in2"}, []catalog.File{out}); err != nil {
			t.Fatal(err)
		}
		live, _ := s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		equalKeys(t, "after replace", live, "out")
		if live[0].Level != 1 {
			t.Errorf("level = %d", live[0].Level)
		}
		// Replacing already-replaced inputs fails and changes nothing.
		out2 := file("out2", t0, t0.Add(2*time.Minute))
		err := s.ReplaceFiles(ctx, []string{"out", "in1"}, []catalog.File{out2})
		if !errors.Is(err, catalog.ErrConflict) {
			t.Fatalf("replace of tombstoned input: err = %v, want ErrConflict", err)
		}
		live, _ = s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		equalKeys(t, "after failed replace", live, "out")
		if err := s.ReplaceFiles(ctx, []string{"never-registered"}, nil); !errors.Is(err, catalog.ErrConflict) {
			t.Fatalf("replace of unknown input: err = %v, want ErrConflict", err)
		}
		clk.Advance(time.Second)
		tomb, err := s.Tombstoned(ctx, clk.Now(), 0)
		if err != nil {
			t.Fatal(err)
		}
		equalKeys(t, "tombstoned", tomb, "in1", "in2")
		if tomb[0].TombstonedAt.IsZero() {
			t.Error("tombstoned file has no tombstone time")
		}
	})
}

func TestStore_TombstoneAndPurge(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		s := open.must(t)
		t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		if err := s.RegisterFiles(ctx, file("a", t0, t0), file("b", t0, t0), file("c", t0, t0)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.TombstoneFiles(ctx, "a", "unknown"); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		clk.Advance(time.Hour)
		if n, err := s.TombstoneFiles(ctx, "b", "a"); err != nil || n != 1 { // a was already
			t.Fatal(n, err)
		}
		clk.Advance(time.Hour)
		// Only files tombstoned before the grace cut-off are listed.
		old, _ := s.Tombstoned(ctx, clk.Now().Add(-90*time.Minute), 0)
		equalKeys(t, "tombstoned > 90m ago", old, "a")
		all, _ := s.Tombstoned(ctx, clk.Now(), 0)
		equalKeys(t, "all tombstoned", all, "a", "b")
		one, _ := s.Tombstoned(ctx, clk.Now(), 1)
		equalKeys(t, "limit 1", one, "a")
		// A postponed purge dates a tombstoned file now, behind the others;
		// a live file stays live.
		clk.Advance(time.Minute)
		if err := s.PostponePurge(ctx, "a", "c"); err != nil {
			t.Fatal(err)
		}
		one, _ = s.Tombstoned(ctx, clk.Now(), 1)
		equalKeys(t, "limit 1 after a's purge was postponed", one, "b")
		old, _ = s.Tombstoned(ctx, clk.Now().Add(-90*time.Minute), 0)
		equalKeys(t, "tombstoned > 90m ago after a's purge was postponed", old)
		live, _ := s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		equalKeys(t, "live", live, "c")
		// Purge forgets tombstoned files but never a live one.
		if err := s.PurgeFiles(ctx, "a", "c"); err != nil {
			t.Fatal(err)
		}
		all, _ = s.Tombstoned(ctx, clk.Now(), 0)
		equalKeys(t, "after purge", all, "b")
		// Retired: tombstoned or purged, never live or unknown.
		retired, err := s.RetiredFiles(ctx, "a", "b", "c", "unknown")
		if err != nil || len(retired) != 2 || !retired["a"] || !retired["b"] {
			t.Errorf("retired files: %v %v, want a (purged) and b (tombstoned)", retired, err)
		}
		live, _ = s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		equalKeys(t, "live after purge", live, "c")
		// A purged key registered again (a WAL segment replayed after its
		// file was merged and purged) stays gone, for PurgedKeyMemory.
		if err := s.RegisterFiles(ctx, file("a", t0, t0), file("d", t0, t0)); err != nil {
			t.Fatal(err)
		}
		live, _ = s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		equalKeys(t, "live after registering a purged key", live, "c", "d")
		if err := s.ReplaceFiles(ctx, []string{"d"}, []catalog.File{file("a", t0, t0)}); err == nil {
			t.Error("a merge whose output key was purged replaced its input")
		}
		clk.Advance(catalog.PurgedKeyMemory + time.Hour)
		if _, err := s.TombstoneFiles(ctx, "b"); err != nil {
			t.Fatal(err)
		}
		if err := s.PurgeFiles(ctx, "b"); err != nil { // forgets keys purged too long ago
			t.Fatal(err)
		}
		if err := s.RegisterFiles(ctx, file("a", t0, t0)); err != nil {
			t.Fatal(err)
		}
		live, _ = s.ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		equalKeys(t, "live after the memory ends", live, "a", "c", "d")
	})
}

func TestStore_ConcurrentRegistration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		// Several stores on one database play several processes.
		stores := []catalog.Store{open.must(t), open.must(t), open.must(t)}
		t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		const workers, perWorker = 24, 40
		var wg sync.WaitGroup
		errs := make(chan error, workers*perWorker)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s := stores[w%len(stores)]
				for i := range perWorker {
					// Pairs of workers register the same keys, as retried
					// flushes would.
					k := fmt.Sprintf("f-%02d-%03d", w/2, i)
					if err := s.RegisterFiles(ctx, file(k, t0, t0.Add(time.Minute))); err != nil {
						errs <- err
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		live, err := stores[0].ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, f := range live {
			if seen[f.Key] {
				t.Fatalf("duplicate %s", f.Key)
			}
			seen[f.Key] = true
		}
		if want := workers / 2 * perWorker; len(live) != want {
			t.Fatalf("registered %d files, want %d", len(live), want)
		}
	})
}

func TestStore_ConcurrentReplace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		stores := []catalog.Store{open.must(t), open.must(t)}
		t0 := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
		if err := stores[0].RegisterFiles(ctx, file("a", t0, t0), file("b", t0, t0)); err != nil {
			t.Fatal(err)
		}
		const racers = 8
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := range racers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := file(fmt.Sprintf("out-%d", i), t0, t0)
				err := stores[i%2].ReplaceFiles(ctx, []string{"a", "b"}, []catalog.File{out})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, catalog.ErrConflict):
					t.Errorf("racer %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d replacements won, want exactly 1", wins.Load())
		}
		live, _ := stores[0].ListFiles(ctx, catalog.FileFilter{Project: "default", Table: "records"})
		if len(live) != 1 {
			t.Fatalf("live after race: %v", keys(live))
		}
	})
}

func TestStore_Leases(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		s := open.must(t)
		l, err := s.AcquireLease(ctx, "job", "alice", time.Minute)
		if err != nil || l.Holder != "alice" || !l.Expires.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("acquire free lease: %+v, %v", l, err)
		}
		if _, err := s.AcquireLease(ctx, "job", "bob", time.Minute); !errors.Is(err, catalog.ErrLeaseHeld) {
			t.Fatalf("bob took alice's lease: %v", err)
		}
		if _, err := s.AcquireLease(ctx, "job", "alice", 2*time.Minute); err != nil {
			t.Fatalf("holder re-acquires: %v", err)
		}
		clk.Advance(90 * time.Second)
		if l, err = s.RenewLease(ctx, "job", "alice", time.Minute); err != nil || !l.Expires.Equal(clk.Now().Add(time.Minute)) {
			t.Fatalf("renew: %+v, %v", l, err)
		}
		if _, err := s.RenewLease(ctx, "job", "bob", time.Minute); !errors.Is(err, catalog.ErrLeaseLost) {
			t.Fatalf("bob renewed alice's lease: %v", err)
		}
		// Alice dies; once her lease expires bob takes over and alice has lost it.
		clk.Advance(61 * time.Second)
		if _, err := s.AcquireLease(ctx, "job", "bob", time.Minute); err != nil {
			t.Fatalf("take expired lease: %v", err)
		}
		if _, err := s.RenewLease(ctx, "job", "alice", time.Minute); !errors.Is(err, catalog.ErrLeaseLost) {
			t.Fatalf("alice renewed a lease bob holds: %v", err)
		}
		// Releasing someone else's lease does nothing; releasing your own frees it.
		if err := s.ReleaseLease(ctx, "job", "alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcquireLease(ctx, "job", "carol", time.Minute); !errors.Is(err, catalog.ErrLeaseHeld) {
			t.Fatalf("carol took bob's lease after alice's release: %v", err)
		}
		if err := s.ReleaseLease(ctx, "job", "bob"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AcquireLease(ctx, "job", "carol", time.Minute); err != nil {
			t.Fatalf("take released lease: %v", err)
		}
	})
}

func TestStore_ConcurrentLeaseTakers(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		stores := []catalog.Store{open.must(t), open.must(t), open.must(t)}
		for round := range 5 {
			name := fmt.Sprintf("partition-%d", round)
			const takers = 16
			var winners sync.Map
			var wins atomic.Int32
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range takers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					holder := fmt.Sprintf("compactor-%d", i)
					_, err := stores[i%len(stores)].AcquireLease(ctx, name, holder, time.Minute)
					switch {
					case err == nil:
						wins.Add(1)
						winners.Store(holder, true)
					case !errors.Is(err, catalog.ErrLeaseHeld):
						t.Errorf("%s: %v", holder, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if wins.Load() != 1 {
				t.Fatalf("%s: %d takers won, want exactly 1", name, wins.Load())
			}
		}
	})
}

func TestStore_Nodes(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		ctx := context.Background()
		s := open.must(t)
		for _, n := range []catalog.Node{
			{ID: "c1", Role: "cache", Address: "10.0.0.1:9001"},
			{ID: "c2", Role: "cache", Address: "10.0.0.2:9001"},
			{ID: "i1", Role: "ingest", Address: "10.0.0.3:4317"},
		} {
			if err := s.Heartbeat(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(20 * time.Second)
		if err := s.Heartbeat(ctx, catalog.Node{ID: "c2", Role: "cache", Address: "10.0.0.9:9001"}); err != nil {
			t.Fatal(err)
		}
		alive, err := s.Nodes(ctx, "cache", clk.Now().Add(-10*time.Second))
		if err != nil || len(alive) != 1 || alive[0].ID != "c2" || alive[0].Address != "10.0.0.9:9001" ||
			!alive[0].Heartbeat.Equal(clk.Now()) {
			t.Fatalf("live caches: %+v, %v", alive, err)
		}
		all, _ := s.Nodes(ctx, "", clk.Now().Add(-time.Minute))
		if len(all) != 3 {
			t.Fatalf("all nodes: %+v", all)
		}
	})
}

func TestStore_ConcurrentMigration(t *testing.T) {
	forEachBackend(t, func(t *testing.T, open opener, clk *clock) {
		// Many processes starting at once on a fresh database.
		var wg sync.WaitGroup
		stores := make([]catalog.Store, 6)
		for i := range stores {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var err error
				if stores[i], err = open(); err != nil {
					t.Errorf("open %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		ctx := context.Background()
		v, err := catalog.SchemaVersion(ctx, stores[0])
		if err != nil || v < 1 {
			t.Fatalf("schema version %d, %v", v, err)
		}
		ps, err := stores[5].Projects(ctx)
		if err != nil || len(ps) != 1 {
			t.Fatalf("projects after concurrent migration: %+v, %v", ps, err)
		}
	})
}

// A SQLite catalog whose file is deleted while open refuses writes and
// reads of projects: SQLite would write to the unlinked file, lost at the
// next start, and ingest would delete the WAL segments of files it
// registered there (QA).
func TestSQLite_DeletedFileIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	s, err := catalog.OpenSQLite(ctx, path, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().UTC()
	if err := s.RegisterFiles(ctx, file("a", now, now)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
	if err := s.RegisterFiles(ctx, file("b", now, now)); err == nil || !strings.Contains(err.Error(), "deleted or replaced") {
		t.Errorf("register after the file was deleted: %v", err)
	}
	if _, err := s.Project(ctx, catalog.DefaultProject); err == nil {
		t.Error("the default project read after the file was deleted")
	}
}

// A SQLite catalog at a path with ?, # or % in it opens that file, not the
// path cut at them (review: subtests named …#01).
func TestSQLite_PathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%d")
	path := filepath.Join(dir, "catalog.db")
	s, err := catalog.OpenSQLite(context.Background(), path, catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the catalog is not at its path: %v", err)
	}
}
