package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

type sqliteDialect struct{}

func (sqliteDialect) rebind(q string) string { return q }

// lockMigrations needs no lock: every write transaction is BEGIN IMMEDIATE,
// which SQLite serializes across processes.
func (sqliteDialect) lockMigrations(context.Context, *sql.DB) (func(), error) {
	return func() {}, nil
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
	dsn := "file:" + path + "?" + q.Encode()
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
	s := &store{write: write, read: read, d: sqliteDialect{}, opts: opts}
	if err := s.migrate(ctx, "sqlite"); err != nil {
		s.Close()
		return nil, fmt.Errorf("open sqlite catalog %s: %w", path, err)
	}
	return s, nil
}
