package cache_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/strata-db/strata/cache"
)

// fillWith writes data, counting calls.
func fillWith(data []byte, calls *atomic.Int64) cache.Fill {
	return func(ctx context.Context, f *os.File) (int64, error) {
		calls.Add(1)
		n, err := f.Write(data)
		return int64(n), err
	}
}

// dirBytes sums the sizes of every file under dir, partial fills included.
func dirBytes(t *testing.T, dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func TestStore_StaysUnderLimitUnderConcurrentFills(t *testing.T) {
	dir := t.TempDir()
	// Each reader holds at most one 3 kB object (pinned or being filled),
	// so 8 of them always leave room for a fill.
	const limit = 30_000
	s := openStore(t, dir, limit)
	// A watcher samples the directory while 8 readers fill 200 distinct
	// keys of 1–3 kB: the directory must never hold more than the limit.
	stop := make(chan struct{})
	var over atomic.Int64
	var watch sync.WaitGroup
	watch.Add(1)
	go func() {
		defer watch.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := dirBytes(t, dir); n > limit {
				over.Store(n)
			}
		}
	}()
	var calls atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				k := (i*7 + w) % 200
				data := bytes.Repeat([]byte{byte(k)}, 1000+(k%3)*1000)
				key := fmt.Sprintf("p/records/date=2026-11-23/hour=10/1-%03d.parquet", k)
				p, release, _, err := s.Get(context.Background(), key, int64(len(data)), fillWith(data, &calls))
				if err != nil {
					t.Error(err)
					return
				}
				got, err := os.ReadFile(p)
				release()
				if err != nil || !bytes.Equal(got, data) {
					t.Errorf("%s: read %d bytes, %v", key, len(got), err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	watch.Wait()
	if n := over.Load(); n > 0 {
		t.Fatalf("cache directory held %d bytes, limit %d", n, limit)
	}
	if u := s.Used(); u > limit || u != dirBytes(t, dir) {
		t.Fatalf("used %d, on disk %d, limit %d", u, dirBytes(t, dir), limit)
	}
	if calls.Load() <= 200 {
		t.Fatalf("%d fills for 200 keys in a cache of a fraction of them: nothing was evicted", calls.Load())
	}
}

func TestStore_ConcurrentMissesFillOnce(t *testing.T) {
	s := openStore(t, t.TempDir(), 1<<20)
	release := make(chan struct{})
	var calls atomic.Int64
	slow := func(ctx context.Context, f *os.File) (int64, error) {
		calls.Add(1)
		<-release
		n, err := f.Write([]byte("hello"))
		return int64(n), err
	}
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, rel, _, err := s.Get(context.Background(), "p/k", 5, slow)
			if err != nil {
				t.Error(err)
				return
			}
			rel()
		}()
	}
	close(release)
	wg.Wait()
	if calls.Load() != 1 {
		t.Fatalf("20 concurrent misses filled %d times, want 1", calls.Load())
	}
}

func TestStore_PinnedFilesAreNotEvicted(t *testing.T) {
	s := openStore(t, t.TempDir(), 100)
	var calls atomic.Int64
	pa, releaseA, _, err := s.Get(context.Background(), "p/a", 60, fillWith(make([]byte, 60), &calls))
	if err != nil {
		t.Fatal(err)
	}
	// b does not fit beside a, which a reader holds.
	_, _, _, err = s.Get(context.Background(), "p/b", 60, fillWith(make([]byte, 60), &calls))
	if !errors.Is(err, cache.ErrFull) {
		t.Fatalf("fill beside a pinned file: err = %v, want ErrFull", err)
	}
	if _, err := os.Stat(pa); err != nil {
		t.Fatalf("pinned file gone: %v", err)
	}
	releaseA()
	_, releaseB, _, err := s.Get(context.Background(), "p/b", 60, fillWith(make([]byte, 60), &calls))
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	releaseB()
	if s.Contains("p/a") || !s.Contains("p/b") {
		t.Fatal("a should have been evicted for b")
	}
	if _, _, _, err := s.Get(context.Background(), "p/huge", 101, fillWith(make([]byte, 101), &calls)); !errors.Is(err, cache.ErrFull) {
		t.Fatalf("object larger than the cache: err = %v", err)
	}
}

func TestStore_WrongSizeIsRefusedAndLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 1000)
	var calls atomic.Int64
	_, _, _, err := s.Get(context.Background(), "p/short", 10, fillWith([]byte("abc"), &calls))
	if err == nil {
		t.Fatal("a 3-byte fill of a 10-byte object was accepted")
	}
	if n := dirBytes(t, dir); n != 0 || s.Used() != 0 {
		t.Fatalf("after a failed fill: %d bytes on disk, %d used", n, s.Used())
	}
}

func TestStore_RestartKeepsFilesAndDropsPartials(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 1000)
	var calls atomic.Int64
	for _, k := range []string{"p/x/a", "p/x/b"} {
		_, rel, _, err := s.Get(context.Background(), k, 100, fillWith(make([]byte, 100), &calls))
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	// A crash mid-fill leaves a temporary file.
	if err := os.WriteFile(filepath.Join(dir, "p", "x", "c.123.tmp"), make([]byte, 50), 0o644); err != nil {
		t.Fatal(err)
	}
	// The directory is the store's until it closes.
	if _, err := cache.OpenStore(dir, 1000, nil); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a second store opened the same directory: %v", err)
	}
	s.Close()
	s2 := openStore(t, dir, 1000)
	if s2.Used() != 200 {
		t.Fatalf("reopened store uses %d bytes, want 200", s2.Used())
	}
	if _, err := os.Stat(filepath.Join(dir, "p", "x", "c.123.tmp")); !os.IsNotExist(err) {
		t.Fatalf("partial fill survived the restart: %v", err)
	}
	_, rel, hit, err := s2.Get(context.Background(), "p/x/a", 100, fillWith(make([]byte, 100), &calls))
	if err != nil || !hit {
		t.Fatalf("after restart: hit=%v err=%v", hit, err)
	}
	rel()
	s2.Close()
	// A smaller limit on restart evicts down to it.
	s3 := openStore(t, dir, 150)
	if s3.Used() > 150 || dirBytes(t, dir) > 150 {
		t.Fatalf("reopened with a 150-byte limit: used %d, on disk %d", s3.Used(), dirBytes(t, dir))
	}
}

func TestCheckKey(t *testing.T) {
	for _, k := range []string{"", "/etc/passwd", "../x", "a/../../x", "a//b", "a/./b", `a\b`, "a/\x00"} {
		if cache.CheckKey(k) == nil {
			t.Errorf("key %q accepted", k)
		}
	}
	if err := cache.CheckKey("default/records/date=2026-11-23/hour=10/0-01ABC.parquet"); err != nil {
		t.Error(err)
	}
}

// A cached file deleted under the store (by an operator, a tmp cleaner) is
// a miss that fills again, not an error on every read until evicted; and
// the order of use survives a restart.
func TestStore_DeletedFileIsFilledAgainAndUseOrderSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 250)
	var calls atomic.Int64
	get := func(s *cache.Store, key string) bool {
		t.Helper()
		p, rel, hit, err := s.Get(context.Background(), key, 100, fillWith(make([]byte, 100), &calls))
		if err != nil {
			t.Fatal(err)
		}
		defer rel()
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return hit
	}
	get(s, "p/a")
	get(s, "p/b")
	if err := os.Remove(filepath.Join(dir, "p", "a")); err != nil {
		t.Fatal(err)
	}
	if hit := get(s, "p/a"); hit || calls.Load() != 3 {
		t.Fatalf("deleted file: hit=%v, %d fills, want a miss and a third fill", hit, calls.Load())
	}
	// b is used after a: after a restart, a is the one to go.
	old := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(dir, "p", "a"), old, old)
	os.Chtimes(filepath.Join(dir, "p", "b"), old.Add(-time.Hour), old.Add(-time.Hour))
	get(s, "p/b") // a hit: marks b used now
	s.Close()
	s2 := openStore(t, dir, 250)
	get(s2, "p/c") // needs room: evicts the least recently used
	if !s2.Contains("p/b") || s2.Contains("p/a") {
		t.Fatalf("after restart, a (used before b) should go first: a=%v b=%v", s2.Contains("p/a"), s2.Contains("p/b"))
	}
}

// A reader of a file deleted under the store, and then filled again for
// another reader, releases its own pin, not the other's.
func TestStore_ReleaseAfterRefillKeepsTheOtherReadersPin(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 150)
	var calls atomic.Int64
	ctx := context.Background()
	_, rel1, _, err := s.Get(ctx, "p/a", 100, fillWith(make([]byte, 100), &calls))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "p", "a"))
	p2, rel2, _, err := s.Get(ctx, "p/a", 100, fillWith(make([]byte, 100), &calls))
	if err != nil {
		t.Fatal(err)
	}
	defer rel2()
	rel1()
	// No room for b while a is pinned by reader 2: b must not evict it.
	s.Get(ctx, "p/b", 100, fillWith(make([]byte, 100), &calls))
	if _, err := os.Stat(p2); err != nil {
		t.Fatalf("reader 2's pinned file was evicted: %v", err)
	}
}

// A cached file cut short under the store is not served as a hit: it is
// filled again.
func TestStore_TruncatedFileIsFilledAgain(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 1000)
	var calls atomic.Int64
	data := bytes.Repeat([]byte("x"), 100)
	get := func() (int64, bool) {
		p, rel, hit, err := s.Get(context.Background(), "p/a", 100, fillWith(data, &calls))
		if err != nil {
			t.Fatal(err)
		}
		defer rel()
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size(), hit
	}
	get()
	if err := os.Truncate(filepath.Join(dir, "p", "a"), 10); err != nil {
		t.Fatal(err)
	}
	if n, hit := get(); hit || n != 100 || calls.Load() != 2 {
		t.Fatalf("after the file was cut to 10 bytes: %d bytes, hit=%v, %d fills; want it filled again", n, hit, calls.Load())
	}
}

// Nothing outside the store's directory is read or written through
// symlinks placed in it: a symlinked directory on a key's path, a symlink
// in place of a cached file, or one found when the store opens.
func TestStore_SymlinksDoNotLeadOutOfTheDirectory(t *testing.T) {
	ctx := context.Background()
	dir, outside := t.TempDir(), t.TempDir()
	s := openStore(t, dir, 1<<20)
	var calls atomic.Int64
	data := bytes.Repeat([]byte{'x'}, 100)
	if err := os.Symlink(outside, filepath.Join(dir, "p")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.Get(ctx, "p/q/a", 100, fillWith(data, &calls)); err == nil {
		t.Error("a fill through a directory symlinked out of the store succeeded")
	}
	secret := filepath.Join(outside, "secret")
	if err := os.WriteFile(secret, append([]byte("SECRET"), make([]byte, 94)...), 0o644); err != nil {
		t.Fatal(err)
	}
	path, release, _, err := s.Get(ctx, "r/a", 100, fillWith(data, &calls))
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, path); err != nil {
		t.Fatal(err)
	}
	path, release, hit, err := s.Get(ctx, "r/a", 100, fillWith(data, &calls))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	release()
	if hit || !bytes.Equal(got, data) {
		t.Errorf("a symlink in place of a cached file: hit %v, read %q…", hit, got[:6])
	}
	if err := os.Symlink(secret, filepath.Join(dir, "r", "b")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = cache.OpenStore(dir, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Contains("r/b") || s.Used() != 100 {
		t.Errorf("reopened: symlink indexed %v, %d bytes used, want only r/a's 100", s.Contains("r/b"), s.Used())
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside the store: %d entries, want only the secret", len(entries))
	}
	if b, _ := os.ReadFile(secret); !bytes.HasPrefix(b, []byte("SECRET")) {
		t.Error("the file outside was overwritten")
	}
}

// A file filled again at another size while a reader pins the old entry
// does not leave the old size counted.
func TestStore_RefillAtAnotherSizeWhilePinned(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, 1<<20)
	var calls atomic.Int64
	_, rel1, _, err := s.Get(ctx, "p/a", 100, fillWith(make([]byte, 100), &calls))
	if err != nil {
		t.Fatal(err)
	}
	_, rel2, _, err := s.Get(ctx, "p/a", 200, fillWith(make([]byte, 200), &calls))
	if err != nil {
		t.Fatal(err)
	}
	rel1()
	rel2()
	if used, disk := s.Used(), dirBytes(t, dir); used != disk {
		t.Errorf("%d bytes counted, %d on disk", used, disk)
	}
}

// A disk that fills up below the store's limit makes the store shrink its
// limit to what the disk held and evict for the fill, instead of failing
// every miss without ever evicting; when nothing can make room, the miss
// is ErrFull, which a node serves straight from the object store.
func TestStore_DiskFullBelowTheLimitShrinksIt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, 1000)
	var calls atomic.Int64
	for _, k := range []string{"p/a", "p/b", "p/c"} {
		_, rel, _, err := s.Get(ctx, k, 300, fillWith(make([]byte, 300), &calls))
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	full := &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
	var tries atomic.Int64
	diskFullOnce := func(ctx context.Context, f *os.File) (int64, error) {
		if tries.Add(1) == 1 {
			return 0, full
		}
		n, err := f.Write(make([]byte, 100))
		return int64(n), err
	}
	_, rel, _, err := s.Get(ctx, "p/d", 100, diskFullOnce)
	if err != nil {
		t.Fatalf("a fill that found the disk full once: %v", err)
	}
	rel()
	if s.Contains("p/a") || !s.Contains("p/d") || s.Used() > 900 {
		t.Errorf("after the disk filled at 900 bytes: p/a kept %v, p/d cached %v, %d bytes used", s.Contains("p/a"), s.Contains("p/d"), s.Used())
	}
	// A disk that stays full: the miss is ErrFull.
	alwaysFull := func(ctx context.Context, f *os.File) (int64, error) { return 0, full }
	if _, _, _, err := s.Get(ctx, "p/e", 100, alwaysFull); !errors.Is(err, cache.ErrFull) {
		t.Errorf("a fill on a disk that stays full: %v, want ErrFull", err)
	}
	if n := dirBytes(t, dir); n != s.Used() {
		t.Errorf("%d bytes on disk, %d counted", n, s.Used())
	}
}

// A limit shrunk by a full disk (another process's files, a query's
// spill) goes back to the configured size after a while: the disk may
// have room again.
func TestStore_ShrunkLimitRegrows(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir(), 1000)
	var calls atomic.Int64
	for _, k := range []string{"p/a", "p/b"} {
		_, rel, _, err := s.Get(ctx, k, 300, fillWith(make([]byte, 300), &calls))
		if err != nil {
			t.Fatal(err)
		}
		rel()
	}
	var tries atomic.Int64
	diskFullOnce := func(ctx context.Context, f *os.File) (int64, error) {
		if tries.Add(1) == 1 {
			return 0, &os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}
		}
		n, err := f.Write(make([]byte, 100))
		return int64(n), err
	}
	if _, rel, _, err := s.Get(ctx, "p/c", 100, diskFullOnce); err != nil {
		t.Fatal(err)
	} else {
		rel()
	}
	big := fillWith(make([]byte, 900), &calls)
	if _, _, _, err := s.Get(ctx, "p/big", 900, big); !errors.Is(err, cache.ErrFull) {
		t.Fatalf("900 bytes in a store shrunk to 600: %v, want ErrFull", err)
	}
	defer cache.SetRegrowAfter(0)()
	_, rel, _, err := s.Get(ctx, "p/big", 900, big)
	if err != nil {
		t.Fatalf("900 bytes once the limit may regrow to 1000: %v", err)
	}
	rel()
}

// openStore opens a store on dir, closed when the test ends (closing it
// sooner, to open it again, is fine).
func openStore(t *testing.T, dir string, limit int64) *cache.Store {
	t.Helper()
	s, err := cache.OpenStore(dir, limit, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}
