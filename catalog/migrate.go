package catalog

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed migrations
var migrationFS embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// loadMigrations reads migrations/<dir>/NNNN_name.sql in version order.
func loadMigrations(dir string) ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, path.Join("migrations", dir))
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		name := e.Name()
		num, _, ok := strings.Cut(name, "_")
		if !ok || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("migration %s: name is not NNNN_name.sql", name)
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("migration %s: %w", name, err)
		}
		body, err := fs.ReadFile(migrationFS, path.Join("migrations", dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// migrate applies every migration not yet recorded in schema_migrations.
// Each runs in its own transaction that re-checks the version, under the
// dialect's cross-process lock, so concurrent starts apply each exactly once.
func (s *store) migrate(ctx context.Context, dir string) error {
	steps, err := loadMigrations(dir)
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	unlock, err := s.d.lockMigrations(ctx, s.write)
	if err != nil {
		return fmt.Errorf("lock migrations: %w", err)
	}
	defer unlock()
	if _, err := s.write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range steps {
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			var n int
			row := tx.QueryRowContext(ctx, s.d.rebind(`SELECT count(*) FROM schema_migrations WHERE version = ?`), m.version)
			if err := row.Scan(&n); err != nil || n > 0 {
				return err
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, micros(s.now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion reports the newest migration applied to the catalog.
func SchemaVersion(ctx context.Context, st Store) (int, error) {
	s, ok := st.(*store)
	if !ok {
		return 0, fmt.Errorf("schema version: unsupported store %T", st)
	}
	var v sql.NullInt64
	if err := s.read.QueryRowContext(ctx, `SELECT max(version) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return int(v.Int64), nil
}
