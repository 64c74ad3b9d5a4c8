package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gocloud.dev/blob"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/objstore"
)

// storage are the settings every role that touches data shares: where the
// data dir, catalog and object store are.
type storage struct {
	dataDir        string
	catalogURL     string
	catalogSchema  string
	objectStoreURL string
	logLevel       string
}

func (s *storage) register(c *command) {
	c.fs.StringVar(&s.dataDir, "data-dir", "~/.strata",
		"`dir`ectory for local state: the SQLite catalog, objects of a file:// store, scratch and cache")
	c.fs.StringVar(&s.catalogURL, "catalog-url", "",
		"catalog database `url`: postgres://user:pass@host:5432/db, or empty for SQLite at DATA_DIR/catalog.db")
	c.fs.StringVar(&s.catalogSchema, "catalog-schema", "",
		"PostgreSQL `schema` for the catalog's tables, so several deployments can share one database")
	c.fs.StringVar(&s.objectStoreURL, "object-store-url", "",
		"object store `url`: file:///dir, s3://bucket?endpoint=…, gs://bucket, azblob://container; empty for file://DATA_DIR/objects")
	c.fs.StringVar(&s.logLevel, "log-level", "info", "log `level`: debug, info, warn or error")
}

// resolve expands ~ and fills the defaults derived from the data dir.
func (s *storage) resolve() error {
	dir, err := expandHome(s.dataDir)
	if err != nil {
		return settingError{"data-dir", err}
	}
	if !filepath.IsAbs(dir) {
		if dir, err = filepath.Abs(dir); err != nil {
			return settingError{"data-dir", err}
		}
	}
	s.dataDir = dir
	if s.catalogURL == "" {
		s.catalogURL = filepath.Join(dir, "catalog.db")
	}
	if s.objectStoreURL == "" {
		s.objectStoreURL = "file://" + filepath.Join(dir, "objects")
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(s.logLevel)); err != nil {
		return settingError{"log-level", fmt.Errorf("%q: want debug, info, warn or error", s.logLevel)}
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	return nil
}

func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand ~: %w", err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}

// ensureDir creates dir and checks that strata can write to it, so a
// read-only or misplaced data dir fails at start with its name.
func ensureDir(flagName, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return settingError{flagName, fmt.Errorf("create %s: %w", dir, unwrapPath(err))}
	}
	probe, err := os.CreateTemp(dir, ".write-test-*")
	if err != nil {
		return settingError{flagName, fmt.Errorf("%s is not writable: %w", dir, unwrapPath(err))}
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// unwrapPath drops the *PathError wrapper whose path the message already names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// boot is the start of every service command: parse args, resolve the
// storage settings, bind the addresses that addrs returns (flag name →
// address, read once the flags are parsed), open the catalog and the object
// store, then run the command's checks: they resolve its local
// directories (given the data dir, which exists by then) and refuse
// settings it cannot run with. On error nothing is left open.
func boot(ctx context.Context, c *command, st *storage, args []string, stdout io.Writer, addrs func() map[string]string, checks ...func(dataDir string) error) (map[string]net.Listener, catalog.Store, *objstore.Bucket, error) {
	if err := c.parse(args, stdout); err != nil {
		return nil, nil, nil, err
	}
	if err := st.resolve(); err != nil {
		return nil, nil, nil, err
	}
	lns, err := bind(addrs())
	if err != nil {
		return nil, nil, nil, err
	}
	cat, bucket, err := st.open(ctx)
	if err != nil {
		closeAll(lns)
		return nil, nil, nil, err
	}
	for _, check := range checks {
		if err := check(st.dataDir); err != nil {
			closeAll(lns)
			cat.Close()
			bucket.Close()
			return nil, nil, nil, err
		}
	}
	go warnUnknownObjects(ctx, cat, bucket)
	return lns, cat, bucket, nil
}

// closeBucket closes the object store, waiting a few seconds at most:
// gocloud's Close waits for reads in flight, and a read from a store that
// hangs (a cache fill) can take minutes — a node that had flushed and
// stopped everything else did not exit after SIGTERM.
func closeBucket(b *objstore.Bucket) {
	done := make(chan struct{})
	go func() { b.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		slog.Warn("shutdown: reads from the object store are still in flight; not waiting for them")
	}
}

// warnUnknownObjects says so at start when the object store holds data
// objects older than their project in the catalog: the catalog never knew
// them (it was deleted and made anew, or points elsewhere), so queries do
// not see them; the compactor keeps them. Only the first objects of each
// project are looked at.
func warnUnknownObjects(ctx context.Context, cat catalog.Store, bucket *objstore.Bucket) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	projects, err := cat.Projects(ctx)
	if err != nil {
		return
	}
	for _, p := range projects {
		it := bucket.List(&blob.ListOptions{Prefix: p.ID + "/"})
		for range 1000 {
			obj, err := it.Next(ctx)
			if err != nil {
				break
			}
			if _, err := objstore.ParseDataKey(obj.Key); err != nil || !obj.ModTime.Before(p.CreatedAt) {
				continue
			}
			if _, err := cat.File(ctx, obj.Key); errors.Is(err, catalog.ErrNotFound) {
				slog.Error("the object store holds data written before this catalog had the project, which the catalog does not know: "+
					"queries will not see it (was the catalog deleted or replaced? restore it, or point --catalog-url at the right one)",
					"project", p.ID, "project_created", p.CreatedAt, "object", obj.Key, "written", obj.ModTime)
				break
			}
		}
	}
}

// openCatalog prepares the data dir and opens (and migrates) the catalog.
// Errors name the setting at fault.
func (s *storage) openCatalog(ctx context.Context) (catalog.Store, error) {
	if err := ensureDir("data-dir", s.dataDir); err != nil {
		return nil, err
	}
	cat, err := catalog.Open(ctx, s.catalogURL, catalog.Options{Schema: s.catalogSchema})
	if errors.Is(err, catalog.ErrSchemaName) {
		return nil, settingError{"catalog-schema", err}
	}
	if err != nil {
		return nil, settingError{"catalog-url", err}
	}
	return cat, nil
}

// open prepares the data dir, opens (and migrates) the catalog and opens
// the object store. Errors name the setting at fault.
func (s *storage) open(ctx context.Context) (catalog.Store, *objstore.Bucket, error) {
	cat, err := s.openCatalog(ctx)
	if err != nil {
		return nil, nil, err
	}
	bucket, err := objstore.Open(ctx, s.objectStoreURL)
	if err != nil {
		cat.Close()
		return nil, nil, settingError{"object-store-url", err}
	}
	return cat, bucket, nil
}
