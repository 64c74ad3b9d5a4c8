package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/strata-db/strata/internal/flock"
)

type sqliteDialect struct {
	path   string      // the database file
	opened os.FileInfo // what was at path when the catalog opened
}

// intact refuses a catalog whose file was deleted or replaced while
// open: SQLite would go on writing to the unlinked file, lost at the next
// start (QA: ingest registered its flushes there and deleted their WAL
// segments). Refused, a flush keeps its segment until a restart.
func (d sqliteDialect) intact() error {
	if d.opened == nil {
		return nil
	}
	now, err := os.Stat(d.path)
	if err != nil || !os.SameFile(now, d.opened) {
		return fmt.Errorf("the SQLite catalog %s was deleted or replaced while open: restart strata "+
			"(what ingest has not registered stays in its WAL until then)", d.path)
	}
	return nil
}

func (sqliteDialect) rebind(q string) string { return q }

// lockMigrations holds an exclusive flock on a file beside the database.
// Write transactions are BEGIN IMMEDIATE, which SQLite serializes, but
// processes opening a fresh database at once also race to switch it to
// WAL mode as their first connection opens, and the loser's first
// statement failed with SQLITE_BUSY despite the busy timeout. Under the
// lock the first connection (and its pragmas) opens one process at a time.
func (d sqliteDialect) lockMigrations(ctx context.Context, _ *sql.DB) (func(), error) {
	return flock.Lock(ctx, d.path+".lock")
}

func (sqliteDialect) acquireLease(ctx context.Context, tx *sql.Tx, name, holder string, now, expires int64) (bool, error) {
	rows, err := tx.QueryContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at <= ? OR leases.holder = excluded.holder
		RETURNING holder`, name, holder, expires, now)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	won := rows.Next()
	return won, rows.Err()
}

// OpenSQLite opens (creating if needed) the SQLite catalog at path and
// applies pending migrations.
func OpenSQLite(ctx context.Context, path string, opts Options) (Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("open sqlite catalog: %w", err)
	}
	// synchronous(FULL): a registered file must survive power loss, because
	// ingest deletes its WAL segment once the catalog has the file.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	// The path is escaped: SQLite reads a file: URI, where ? and # end it.
	dsn := "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?" + q.Encode()
	write, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite catalog %s: %w", path, err)
	}
	write.SetMaxOpenConns(1)
	read, err := sql.Open("sqlite", dsn)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("open sqlite catalog %s: %w", path, err)
	}
	read.SetMaxOpenConns(8)
	s := &store{write: write, read: read, d: sqliteDialect{path: path}, opts: opts}
	if err := s.migrate(ctx, "sqlite"); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite catalog %s: %w", path, err)
	}
	opened, err := os.Stat(path)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite catalog %s: %w", path, err)
	}
	s.d = sqliteDialect{path: path, opened: opened}
	return s, nil
}
