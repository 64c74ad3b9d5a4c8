package cache

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sync/singleflight"

	"github.com/strata-db/strata/objstore"
)

// Local makes objects available as local files for DuckDB. Objects of a
// file:// store already are; others are downloaded once into Dir, under a
// temporary name that is renamed when complete, so a crash never leaves a
// partial file that looks whole.
type Local struct {
	bucket *objstore.Bucket
	dir    string
	group  singleflight.Group
}

// NewLocal returns a Local over bucket that downloads into dir.
func NewLocal(bucket *objstore.Bucket, dir string) (*Local, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache dir: %w", err)
	}
	removeTemps(dir)
	return &Local{bucket: bucket, dir: dir}, nil
}

// Dirs are the directories local paths can be in; DuckDB must be allowed
// to read them.
func (l *Local) Dirs() []string {
	if d, ok := l.bucket.LocalDir(); ok {
		return []string{l.dir, d}
	}
	return []string{l.dir}
}

// Path returns a local path holding the object key of the given size,
// fetching it if needed. Concurrent calls for one key fetch it once.
func (l *Local) Path(ctx context.Context, key string, size int64) (string, error) {
	if p, ok := l.bucket.LocalPath(key); ok {
		return p, nil
	}
	path, err := l.pathFor(key)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(path); err == nil && st.Size() == size {
		return path, nil
	}
	_, err, _ = l.group.Do(key, func() (any, error) {
		if st, err := os.Stat(path); err == nil && st.Size() == size {
			return nil, nil
		}
		return nil, l.fetch(ctx, key, path, size)
	})
	if err != nil {
		return "", err
	}
	return path, nil
}

// pathFor maps a key into the cache dir, refusing keys that would escape it.
func (l *Local) pathFor(key string) (string, error) {
	if key == "" || strings.HasPrefix(key, "/") || strings.Contains(key, "\\") {
		return "", fmt.Errorf("invalid object key %q", key)
	}
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("invalid object key %q", key)
		}
	}
	return filepath.Join(l.dir, filepath.FromSlash(key)), nil
}

func (l *Local) fetch(ctx context.Context, key, path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	r, err := l.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	defer r.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	n, err := io.Copy(tmp, r)
	if err == nil && size > 0 && n != size {
		err = fmt.Errorf("got %d bytes, the catalog says %d", n, size)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("fetch %s: %w", key, err)
	}
	return nil
}

// removeTemps deletes partial downloads left by a crash.
func removeTemps(dir string) {
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".tmp") {
			os.Remove(path)
		}
		return nil
	})
}
