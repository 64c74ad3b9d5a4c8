package cache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/sync/singleflight"

	"github.com/strata-db/strata/internal/flock"
)

// ErrFull means an object cannot be cached: it is larger than the store,
// or the rest of the store is pinned by readers.
var ErrFull = errors.New("cache full")

// Store keeps objects as files under a directory, at most MaxBytes of them,
// evicting the least recently used. Bytes are reserved before a fill
// starts, so the directory never holds more than MaxBytes, even mid-fill.
// Files handed to readers are pinned until released and never evicted
// under them.
type Store struct {
	dir    string
	root   *os.Root // dir: every file operation goes through it, so none leaves dir (by a symlink)
	limit  int64    // the configured size; max is below it for a while after the disk filled up
	max    int64
	m      *Metrics
	fills  singleflight.Group
	unlock func()

	mu       sync.Mutex
	shrunkAt time.Time // when max was last lowered to what the disk held
	lru      *simplelru.LRU[string, *entry]
	used     int64 // bytes of entries plus reservations of fills in progress
}

type entry struct {
	size    int64
	pins    int
	touched time.Time // when its file's mtime was last set, for the order after a restart
}

// Fill writes the object into f and returns how many bytes it wrote.
type Fill func(ctx context.Context, f *os.File) (int64, error)

// lockFile is the store's lock, in its directory.
const lockFile = ".lock"

// OpenStore opens (creating) dir as a store of at most maxBytes. Files
// already there are indexed, least recently used first (a hit sets a
// file's modification time), so a restart keeps what was cached; partial
// fills left by a crash are deleted. The store locks dir until Close: two
// stores on one directory would evict each other's files.
func OpenStore(dir string, maxBytes int64, m *Metrics) (*Store, error) {
	if maxBytes <= 0 {
		return nil, fmt.Errorf("cache size must be positive, got %d", maxBytes)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	unlock, err := flock.TryLock(filepath.Join(dir, lockFile))
	if errors.Is(err, flock.ErrLocked) {
		return nil, fmt.Errorf("cache dir %s is in use by another cache (process or store): give each its own", dir)
	}
	if err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	if m == nil {
		m = NewMetrics()
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	lru, _ := simplelru.NewLRU[string, *entry](1<<62, nil) // bounded by bytes, not count
	s := &Store{dir: dir, root: root, limit: maxBytes, max: maxBytes, m: m, lru: lru, unlock: func() { root.Close(); unlock() }}
	m.limit.Set(float64(maxBytes))
	type found struct {
		key   string
		size  int64
		mtime time.Time
	}
	var files []found
	err = fs.WalkDir(root.FS(), ".", func(rel string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || rel == lockFile {
			return err
		}
		if !d.Type().IsRegular() {
			return nil // a symlink, a device: no file of ours, never served
		}
		if strings.HasSuffix(rel, ".tmp") {
			return root.Remove(rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, found{rel, info.Size(), info.ModTime()})
		return nil
	})
	if err != nil {
		s.unlock()
		return nil, fmt.Errorf("index cache dir %s: %w", dir, err)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mtime.Before(files[j].mtime) })
	for _, f := range files {
		s.lru.Add(f.key, &entry{size: f.size})
		s.used += f.size
	}
	s.mu.Lock()
	s.evictLocked(0)
	s.mu.Unlock()
	s.m.used.Set(float64(s.used))
	return s, nil
}

// Dir is the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close releases the directory's lock; the files stay for the next open.
func (s *Store) Close() { s.unlock() }

// Get returns the path of key's file, pinned until release is called. On
// a miss it calls fill once however many callers wait for the key, and
// checks that fill wrote exactly size bytes. hit reports whether the file
// was already there.
func (s *Store) Get(ctx context.Context, key string, size int64, fill Fill) (path string, release func(), hit bool, err error) {
	path, err = s.pathFor(key)
	if err != nil {
		return "", nil, false, err
	}
	if e := s.pin(key, size); e != nil {
		if s.present(e, key) {
			s.m.hits.Inc()
			return path, s.unpinner(e), true, nil
		}
		s.unpin(e)
	}
	s.m.misses.Inc()
	for {
		// The fill is shared by every caller waiting for key, so it does not
		// stop when the caller that started it goes away.
		ch := s.fills.DoChan(key, func() (any, error) {
			if e := s.pin(key, size); e != nil {
				s.unpin(e)
				return nil, nil
			}
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fillTimeout)
			defer cancel()
			return nil, s.fill(fctx, key, size, fill)
		})
		select {
		case res := <-ch:
			if res.Err != nil {
				return "", nil, false, res.Err
			}
		case <-ctx.Done():
			return "", nil, false, ctx.Err()
		}
		// Pinned after the fill; evicted meanwhile only under extreme
		// pressure, in which case fill again.
		if e := s.pin(key, size); e != nil {
			return path, s.unpinner(e), false, nil
		}
	}
}

// present checks that a pinned entry's file is still there, whole, a regular file
// (someone may have deleted or cut it under the store), forgetting the
// entry and the file if not, and sets the file's modification time at
// most once a minute, so that a restart indexes files in the order they
// were last used.
func (s *Store) present(e *entry, key string) bool {
	now := time.Now()
	s.mu.Lock()
	touch := now.Sub(e.touched) > time.Minute
	if touch {
		e.touched = now
	}
	s.mu.Unlock()
	// Not followed if a symlink, and no symlink on the way may leave the
	// directory: the path handed out is then a file of the store's.
	fi, err := s.root.Lstat(filepath.FromSlash(key))
	if err == nil && fi.Mode().IsRegular() && fi.Size() == e.size {
		if touch {
			s.root.Chtimes(filepath.FromSlash(key), now, now)
		}
		return true
	}
	s.mu.Lock()
	// Only this entry: if the key was filled again meanwhile, the new
	// file is there.
	if cur, ok := s.lru.Peek(key); ok && cur == e {
		s.removeLocked(key, e)
	}
	s.mu.Unlock()
	return false
}

// Contains reports whether key is cached (without touching its recency).
func (s *Store) Contains(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lru.Contains(key)
}

// Used is the bytes cached plus those reserved by fills in progress.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// pin marks key's entry in use and returns it, if it is cached with the
// given size (nil otherwise); an unpinned entry of another size is stale
// and dropped.
func (s *Store) pin(key string, size int64) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.lru.Get(key)
	if !ok {
		return nil
	}
	if size >= 0 && e.size != size {
		if e.pins == 0 {
			s.removeLocked(key, e)
		}
		return nil
	}
	e.pins++
	return e
}

// unpinner releases the pin on e, the entry that was pinned: if the key
// was dropped and filled again meanwhile, its new entry's pins are not
// this reader's.
func (s *Store) unpinner(e *entry) func() {
	var once sync.Once
	return func() { once.Do(func() { s.unpin(e) }) }
}

func (s *Store) unpin(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.pins > 0 {
		e.pins--
	}
}

func (s *Store) fill(ctx context.Context, key string, size int64, fill Fill) error {
	if err := s.reserve(size); err != nil {
		return fmt.Errorf("cache %s (%d bytes): %w", key, size, err)
	}
	start := time.Now()
	err := s.write(ctx, filepath.FromSlash(key), size, fill)
	if errors.Is(err, syscall.ENOSPC) && s.shrink(size) {
		err = s.write(ctx, filepath.FromSlash(key), size, fill)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.used -= size
		s.m.used.Set(float64(s.used))
		if errors.Is(err, syscall.ENOSPC) {
			err = fmt.Errorf("%w: the disk is full (%v)", ErrFull, err)
		}
		return fmt.Errorf("fill %s: %w", key, err)
	}
	if old, ok := s.lru.Peek(key); ok {
		// A pinned entry of another size, filled again: its bytes go too.
		s.used -= old.size
		s.m.used.Set(float64(s.used))
	}
	s.lru.Add(key, &entry{size: size})
	s.m.fills.Observe(time.Since(start).Seconds())
	s.m.filled.Add(float64(size))
	return nil
}

// regrowAfter is how long a store shrunk by a full disk keeps its lower
// limit. A variable for tests.
var regrowAfter = time.Minute

// shrink lowers the store's limit to the bytes its disk turned out to
// hold, when a fill of size bytes (reserved) found the disk full below
// the limit, and evicts to make room for the fill again; false if pins
// prevent it. Otherwise every miss would fail, and the node never evict.
func (s *Store) shrink(size int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.used - size // on disk, or reserved by other fills
	if held <= 0 {
		return false // nothing to make room from: the disk is full of others' files
	}
	slog.Warn("cache: the disk is full below the cache size; caching at most what it held for a while", "cache_size", s.limit, "now", held, "for", regrowAfter)
	s.max, s.shrunkAt = held, time.Now()
	s.m.limit.Set(float64(s.max))
	s.used -= size
	ok := s.evictLocked(size)
	s.used += size
	return ok
}

// write runs fill into a temporary file renamed to rel (a path in the
// store's directory) when complete, so a crash never leaves a partial file
// under a real name.
func (s *Store) write(ctx context.Context, rel string, size int64, fill Fill) error {
	if err := s.root.MkdirAll(filepath.Dir(rel), 0o755); err != nil {
		return err
	}
	tmp := rel + "." + strconv.FormatUint(rand.Uint64(), 36) + ".tmp"
	f, err := s.root.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := fillFile(ctx, f, size, fill); err != nil {
		s.root.Remove(tmp)
		return err
	}
	if err := s.root.Rename(tmp, rel); err != nil {
		s.root.Remove(tmp)
		return err
	}
	return nil
}

// fillTemp runs fill into a new file in dir (named by os.CreateTemp's
// pattern) and returns its path; on error the file is removed.
func fillTemp(ctx context.Context, dir, pattern string, size int64, fill Fill) (string, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return "", err
	}
	if err := fillFile(ctx, f, size, fill); err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// fillFile runs fill into f, checks that it wrote exactly size bytes, and
// syncs and closes f.
func fillFile(ctx context.Context, f *os.File, size int64, fill Fill) error {
	n, err := fill(ctx, f)
	if err == nil && n != size {
		err = fmt.Errorf("got %d bytes, the catalog says %d", n, size)
	}
	if err == nil {
		err = f.Sync() // renamed whole, so it must be whole on disk too
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// reserve makes room for size bytes, evicting unpinned entries from the
// least recently used end.
func (s *Store) reserve(size int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max < s.limit && time.Since(s.shrunkAt) >= regrowAfter {
		// The disk may have room again (a query's spill, gone): try the
		// configured size; a full disk shrinks it again.
		s.max = s.limit
		s.m.limit.Set(float64(s.max))
	}
	if size > s.max {
		return fmt.Errorf("%w: object larger than the cache (%d bytes)", ErrFull, s.max)
	}
	if !s.evictLocked(size) {
		return fmt.Errorf("%w: %d of %d bytes in use by running queries or fills", ErrFull, s.used, s.max)
	}
	s.used += size
	s.m.used.Set(float64(s.used))
	return nil
}

// evictLocked evicts until need more bytes fit; false if pins prevent it.
func (s *Store) evictLocked(need int64) bool {
	if s.used+need <= s.max {
		return true // the common case: no copy of the key list on every fill
	}
	keys := s.lru.Keys() // oldest first
	for i := 0; s.used+need > s.max && i < len(keys); i++ {
		if e, ok := s.lru.Peek(keys[i]); ok && e.pins == 0 {
			s.removeLocked(keys[i], e)
			s.m.evictions.Inc()
		}
	}
	return s.used+need <= s.max
}

func (s *Store) removeLocked(key string, e *entry) {
	if CheckKey(key) == nil {
		s.root.Remove(filepath.FromSlash(key))
	}
	s.lru.Remove(key)
	s.used -= e.size
	s.m.used.Set(float64(s.used))
}

// pathFor maps a key into the directory, refusing keys that would escape it.
func (s *Store) pathFor(key string) (string, error) {
	if err := CheckKey(key); err != nil {
		return "", err
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// CheckKey refuses object keys that are not plain relative paths: empty,
// absolute, with backslashes, NUL, or "", "." or ".." segments.
func CheckKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.ContainsAny(key, "\\\x00") {
		return fmt.Errorf("invalid object key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("invalid object key %q", key)
		}
	}
	return nil
}
