package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

type postgresDialect struct {
	schema string // empty: the connection's default search_path
}

func (postgresDialect) intact() error { return nil }

// rebind turns '?' placeholders into $1, $2, …
func (postgresDialect) rebind(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// lockMigrations holds a session advisory lock on a dedicated connection,
// and creates the schema under it so concurrent starts don't race.
func (d postgresDialect) lockMigrations(ctx context.Context, db *sql.DB) (func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	h := fnv.New64a()
	h.Write([]byte("strata.catalog.migrate." + d.schema))
	key := int64(h.Sum64())
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		conn.Close()
		return nil, err
	}
	unlock := func() {
		// A fresh context: the lock must be released even if ctx is done.
		conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, key)
		conn.Close()
	}
	if d.schema != "" {
		if _, err := conn.ExecContext(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{d.schema}.Sanitize()); err != nil {
			unlock()
			return nil, err
		}
	}
	return unlock, nil
}

// acquireLease locks the lease row with SKIP LOCKED so that concurrent takers
// never wait on each other: whoever finds the row locked has lost.
func (postgresDialect) acquireLease(ctx context.Context, tx *sql.Tx, name, holder string, now, expires int64) (bool, error) {
	if _, err := tx.ExecContext(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES ($1, '', 0)
		ON CONFLICT (name) DO NOTHING`, name); err != nil {
		return false, err
	}
	var cur string
	var curExpires int64
	err := tx.QueryRowContext(ctx, `SELECT holder, expires_at FROM leases WHERE name = $1 FOR UPDATE SKIP LOCKED`, name).
		Scan(&cur, &curExpires)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil // another taker holds the row lock right now
	}
	if err != nil {
		return false, err
	}
	if cur != holder && curExpires > now {
		return false, nil
	}
	_, err = tx.ExecContext(ctx, `UPDATE leases SET holder = $2, expires_at = $3 WHERE name = $1`, name, holder, expires)
	return err == nil, err
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// ErrSchemaName is the error of an Options.Schema PostgreSQL would not
// take unquoted.
var ErrSchemaName = errors.New("invalid schema name")

// OpenPostgres connects to the PostgreSQL catalog at url (postgres://…),
// creates opts.Schema if set, and applies pending migrations.
func OpenPostgres(ctx context.Context, url string, opts Options) (Store, error) {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	d := postgresDialect{schema: opts.Schema}
	if opts.Schema != "" {
		if !schemaName.MatchString(opts.Schema) {
			return nil, fmt.Errorf("%w %q: use lower-case letters, digits and underscores", ErrSchemaName, opts.Schema)
		}
		cfg.RuntimeParams["search_path"] = opts.Schema
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	s := &store{write: db, read: db, d: d, opts: opts}
	if err := s.migrate(ctx, "postgres"); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate postgres catalog: %w", err)
	}
	if err := s.followClock(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}
