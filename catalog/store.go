package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// dialect is what differs between SQLite and PostgreSQL; everything else in
// store is plain SQL that both accept.
type dialect interface {
	// rebind turns the '?' placeholders of a query into the dialect's own.
	rebind(query string) string
	// lockMigrations serializes migrations across processes. The returned
	// function releases the lock.
	lockMigrations(ctx context.Context, db *sql.DB) (unlock func(), err error)
	// acquireLease takes the lease inside tx and reports whether it did.
	acquireLease(ctx context.Context, tx *sql.Tx, name, holder string, now, expires int64) (bool, error)
	// intact says whether the database is still the one opened.
	intact() error
}

// store implements Store over database/sql for both dialects.
type store struct {
	// write takes every statement that changes data. For SQLite it has one
	// connection, so concurrent writers queue in Go instead of spinning on
	// SQLITE_BUSY; for PostgreSQL it is the same pool as read.
	write *sql.DB
	read  *sql.DB
	d     dialect
	opts  Options
	// offset corrects the host's clock to the database's (nanoseconds,
	// PostgreSQL only), measured at open and every clockSync after.
	offset    atomic.Int64
	stopClock context.CancelFunc
}

var _ Store = (*store)(nil)

// batchSize bounds the number of rows per multi-row statement, well under
// the parameter limits of both databases.
const batchSize = 500

func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return time.UnixMicro(us).UTC()
}

// now is the catalog's clock: the host's, corrected to the database's
// (PostgreSQL), so that every node stamps and compares the times the
// catalog keeps (created, tombstoned, leases, heartbeats) on one clock,
// however far their hosts' clocks drift apart.
func (s *store) now() time.Time {
	if s.opts.Now != nil {
		return s.opts.Now()
	}
	return time.Now().Add(time.Duration(s.offset.Load()))
}

func (s *store) Now() time.Time { return s.now() }

// clockSync is how often the offset to the database's clock is measured.
const clockSync = time.Minute

// followClock measures the database's clock against the host's now and
// every clockSync until Close; a failed measurement keeps the last one.
func (s *store) followClock(ctx context.Context) error {
	if err := s.syncClock(ctx); err != nil {
		return err
	}
	ctx, s.stopClock = context.WithCancel(context.WithoutCancel(ctx))
	runEvery(ctx, clockSync, func() { // at once too: a second reading, as cheap
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := s.syncClock(sctx); err != nil && ctx.Err() == nil {
			slog.Warn("catalog: cannot read the database's clock; keeping the last offset", "err", err)
		}
	})
	return nil
}

// syncClock sets the offset from one reading of the database's clock,
// taken as read halfway through the round trip.
func (s *store) syncClock(ctx context.Context) error {
	t0 := time.Now()
	var us int64
	if err := s.read.QueryRowContext(ctx, `SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::bigint`).Scan(&us); err != nil {
		return fmt.Errorf("read the database's clock: %w", err)
	}
	mid := t0.Add(time.Since(t0) / 2)
	s.offset.Store(int64(time.UnixMicro(us).Sub(mid)))
	return nil
}

func (s *store) Close() error {
	if s.stopClock != nil {
		s.stopClock()
	}
	if s.write == s.read {
		return s.write.Close()
	}
	return errors.Join(s.write.Close(), s.read.Close())
}

// inTx runs fn in a write transaction, committing if it returns nil.
func (s *store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := s.d.intact(); err != nil {
		return err
	}
	tx, err := s.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, tx.Rollback())
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	// Again after the commit: a file deleted between the check and the
	// commit took the write with it, and the caller must not act on it
	// (ingest deletes a segment once its files are registered).
	return s.d.intact()
}

// projectID is what a project id may be: the first segment of every
// object key and cache path, so nothing a path or URL would read apart.
var projectID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// CheckProjectID says why id cannot name a project, or nil if it can.
func CheckProjectID(id string) error {
	if !projectID.MatchString(id) {
		return fmt.Errorf("project id %q: use 1 to 63 lower-case letters, digits, '-' and '_', starting with a letter or digit "+
			"(it is the first part of every object key)", id)
	}
	return nil
}

func (s *store) CreateProject(ctx context.Context, p Project) error {
	if err := CheckProjectID(p.ID); err != nil {
		return fmt.Errorf("create project: %w", err)
	}
	if p.Name == "" {
		p.Name = p.ID
	}
	if p.Retention <= 0 {
		p.Retention = DefaultRetention
	}
	_, err := s.write.ExecContext(ctx, s.d.rebind(
		`INSERT INTO projects (id, name, retention_seconds, created_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (id) DO NOTHING`),
		p.ID, p.Name, int64(p.Retention/time.Second), micros(s.now()))
	if err != nil {
		return fmt.Errorf("create project %s: %w", p.ID, err)
	}
	return nil
}

func (s *store) SetRetention(ctx context.Context, id string, d time.Duration) error {
	if d < time.Second {
		return fmt.Errorf("set retention of %s: %v is not a retention", id, d)
	}
	res, err := s.write.ExecContext(ctx, s.d.rebind(`UPDATE projects SET retention_seconds = ? WHERE id = ?`), int64(d/time.Second), id)
	if err != nil {
		return fmt.Errorf("set retention of %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("project %s: %w", id, ErrNotFound)
	}
	return nil
}

const projectColumns = `id, name, retention_seconds, created_at`

func scanProject(sc interface{ Scan(...any) error }) (Project, error) {
	var p Project
	var retention, created int64
	if err := sc.Scan(&p.ID, &p.Name, &retention, &created); err != nil {
		return Project{}, err
	}
	p.Retention = time.Duration(retention) * time.Second
	p.CreatedAt = fromMicros(created)
	return p, nil
}

func (s *store) Project(ctx context.Context, id string) (Project, error) {
	if err := s.d.intact(); err != nil {
		return Project{}, err
	}
	row := s.read.QueryRowContext(ctx, s.d.rebind(`SELECT `+projectColumns+` FROM projects WHERE id = ?`), id)
	p, err := scanProject(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Project{}, fmt.Errorf("project %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Project{}, fmt.Errorf("project %s: %w", id, err)
	}
	return p, nil
}

func (s *store) Projects(ctx context.Context) ([]Project, error) {
	rows, err := s.read.QueryContext(ctx, `SELECT `+projectColumns+` FROM projects ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list projects: %w", err)
	}
	defer rows.Close()
	var out []Project
	for rows.Next() {
		p, err := scanProject(rows)
		if err != nil {
			return nil, fmt.Errorf("list projects: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

const fileColumns = `object_key, project_id, table_name, partition_key, level, min_ts, max_ts,
	row_count, size_bytes, created_at, tombstoned_at, schema_version`

func scanFile(sc interface{ Scan(...any) error }) (File, error) {
	var f File
	var minTS, maxTS, created int64
	var tomb sql.NullInt64
	err := sc.Scan(&f.Key, &f.Project, &f.Table, &f.Partition, &f.Level, &minTS, &maxTS,
		&f.Rows, &f.Bytes, &created, &tomb, &f.SchemaVersion)
	if err != nil {
		return File{}, err
	}
	f.MinTime, f.MaxTime, f.CreatedAt = fromMicros(minTS), fromMicros(maxTS), fromMicros(created)
	if tomb.Valid {
		f.TombstonedAt = fromMicros(tomb.Int64)
	}
	return f, nil
}

func validateFile(f File) error {
	switch {
	case f.Key == "":
		return errors.New("empty object key")
	case f.Project == "" || f.Table == "":
		return fmt.Errorf("file %s: project and table are required", f.Key)
	case f.SchemaVersion < 1:
		return fmt.Errorf("file %s: schema version %d, want 1 or more", f.Key, f.SchemaVersion)
	case f.MaxTime.Before(f.MinTime):
		return fmt.Errorf("file %s: max time %v before min time %v", f.Key, f.MaxTime, f.MinTime)
	}
	return nil
}

// insertFiles adds files in batches; keys already registered, or purged
// within PurgedKeyMemory, are skipped.
// It returns how many it inserted.
func (s *store) insertFiles(ctx context.Context, tx *sql.Tx, files []File, now int64) (int64, error) {
	const cols = 12
	var inserted int64
	for start := 0; start < len(files); start += batchSize {
		batch := files[start:min(start+batchSize, len(files))]
		var q strings.Builder
		q.WriteString(`INSERT INTO files (object_key, project_id, table_name, partition_key, level,
			min_ts, max_ts, row_count, size_bytes, created_at, trace_filter, schema_version) VALUES `)
		args := make([]any, 0, len(batch)*cols)
		for i, f := range batch {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, f.Key, f.Project, f.Table, f.Partition, f.Level,
				micros(f.MinTime), micros(f.MaxTime), f.Rows, f.Bytes, now, f.TraceFilter, f.SchemaVersion)
		}
		q.WriteString(" ON CONFLICT (object_key) DO NOTHING")
		res, err := tx.ExecContext(ctx, s.d.rebind(q.String()), args...)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		// Keys purged (remembered in purged_files) must not come back: drop
		// them again, in this transaction. After the insert, so that a
		// purge of the same key that committed while the insert waited for
		// it (PostgreSQL, READ COMMITTED) is seen too.
		keys := make([]any, len(batch))
		for i, f := range batch {
			keys[i] = f.Key
		}
		res, err = tx.ExecContext(ctx, s.d.rebind(`DELETE FROM files WHERE tombstoned_at IS NULL
			AND object_key IN (SELECT object_key FROM purged_files WHERE object_key IN (`+placeholders(len(batch))+`))`), keys...)
		if err != nil {
			return 0, err
		}
		gone, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		inserted += n - gone
	}
	return inserted, nil
}

func (s *store) RegisterFiles(ctx context.Context, files ...File) error {
	for _, f := range files {
		if err := validateFile(f); err != nil {
			return fmt.Errorf("register files: %w", err)
		}
	}
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.insertFiles(ctx, tx, files, micros(s.now()))
		return err
	})
	if err != nil {
		return fmt.Errorf("register %d files: %w", len(files), err)
	}
	return nil
}

func (s *store) ListFiles(ctx context.Context, f FileFilter) ([]File, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if !f.Min.IsZero() {
		lo = f.Min.UnixMicro()
	}
	if !f.Max.IsZero() {
		hi = f.Max.UnixMicro()
	}
	rows, err := s.read.QueryContext(ctx, s.d.rebind(`SELECT `+fileColumns+` FROM files
		WHERE project_id = ? AND table_name = ? AND tombstoned_at IS NULL AND min_ts <= ? AND max_ts >= ?
		ORDER BY min_ts, object_key`), f.Project, f.Table, hi, lo)
	if err != nil {
		return nil, fmt.Errorf("list files %s/%s: %w", f.Project, f.Table, err)
	}
	return collectFiles(rows)
}

func (s *store) File(ctx context.Context, key string) (File, error) {
	rows, err := s.read.QueryContext(ctx, s.d.rebind(`SELECT `+fileColumns+` FROM files WHERE object_key = ?`), key)
	if err != nil {
		return File{}, fmt.Errorf("file %s: %w", key, err)
	}
	files, err := collectFiles(rows)
	if err != nil {
		return File{}, fmt.Errorf("file %s: %w", key, err)
	}
	if len(files) == 0 {
		return File{}, fmt.Errorf("file %s: %w", key, ErrNotFound)
	}
	return files[0], nil
}

func (s *store) CountFiles(ctx context.Context, project, table string) (int, error) {
	var n int
	err := s.read.QueryRowContext(ctx, s.d.rebind(`SELECT count(*) FROM files
		WHERE project_id = ? AND table_name = ? AND tombstoned_at IS NULL`), project, table).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count files %s/%s: %w", project, table, err)
	}
	return n, nil
}

func collectFiles(rows *sql.Rows) ([]File, error) {
	defer rows.Close()
	var out []File
	for rows.Next() {
		f, err := scanFile(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// tombstone marks up to len(keys) live files and returns how many it marked.
func (s *store) tombstone(ctx context.Context, tx *sql.Tx, keys []string, now int64) (int64, error) {
	return s.setTombstoned(ctx, tx, keys, now, "tombstoned_at IS NULL")
}

// setTombstoned sets tombstoned_at to now on the files of keys that
// match cond, and returns how many it changed.
func (s *store) setTombstoned(ctx context.Context, tx *sql.Tx, keys []string, now int64, cond string) (int64, error) {
	var n int64
	for start := 0; start < len(keys); start += batchSize {
		batch := keys[start:min(start+batchSize, len(keys))]
		args := make([]any, 0, len(batch)+1)
		args = append(args, now)
		for _, k := range batch {
			args = append(args, k)
		}
		res, err := tx.ExecContext(ctx, s.d.rebind(`UPDATE files SET tombstoned_at = ?
			WHERE `+cond+` AND object_key IN (`+placeholders(len(batch))+`)`), args...)
		if err != nil {
			return n, err
		}
		affected, err := res.RowsAffected()
		if err != nil {
			return n, err
		}
		n += affected
	}
	return n, nil
}

func (s *store) ReplaceFiles(ctx context.Context, old []string, new []File) error {
	for _, f := range new {
		if err := validateFile(f); err != nil {
			return fmt.Errorf("replace files: %w", err)
		}
	}
	old = unique(old)
	now := micros(s.now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		n, err := s.tombstone(ctx, tx, old, now)
		if err != nil {
			return err
		}
		if n != int64(len(old)) {
			return fmt.Errorf("%d of %d inputs are no longer live: %w", int64(len(old))-n, len(old), ErrConflict)
		}
		// Outputs are new objects; one that exists (or existed) already
		// would leave its rows unregistered while the inputs go.
		added, err := s.insertFiles(ctx, tx, new, now)
		if err == nil && added != int64(len(new)) {
			err = fmt.Errorf("%d of %d outputs are already registered or purged", int64(len(new))-added, len(new))
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("replace %d files with %d: %w", len(old), len(new), err)
	}
	return nil
}

func (s *store) TombstoneFiles(ctx context.Context, keys ...string) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		n, err = s.tombstone(ctx, tx, unique(keys), micros(s.now()))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("tombstone %d files: %w", len(keys), err)
	}
	return n, nil
}

func (s *store) PostponePurge(ctx context.Context, keys ...string) error {
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.setTombstoned(ctx, tx, unique(keys), micros(s.now()), "tombstoned_at IS NOT NULL")
		return err
	})
	if err != nil {
		return fmt.Errorf("postpone the purge of %d files: %w", len(keys), err)
	}
	return nil
}

func (s *store) Tombstoned(ctx context.Context, before time.Time, limit int) ([]File, error) {
	q := `SELECT ` + fileColumns + ` FROM files WHERE tombstoned_at IS NOT NULL AND tombstoned_at < ?
		ORDER BY tombstoned_at, object_key`
	args := []any{micros(before)}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := s.read.QueryContext(ctx, s.d.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("list tombstoned files: %w", err)
	}
	return collectFiles(rows)
}

func (s *store) TraceFilters(ctx context.Context, keys ...string) (map[string][]byte, error) {
	out := make(map[string][]byte, len(keys))
	for start := 0; start < len(keys); start += batchSize {
		batch := keys[start:min(start+batchSize, len(keys))]
		args := make([]any, len(batch))
		for i, k := range batch {
			args[i] = k
		}
		rows, err := s.read.QueryContext(ctx, s.d.rebind(`SELECT object_key, trace_filter FROM files
			WHERE trace_filter IS NOT NULL AND object_key IN (`+placeholders(len(batch))+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("load trace filters: %w", err)
		}
		for rows.Next() {
			var k string
			var f []byte
			if err := rows.Scan(&k, &f); err != nil {
				rows.Close()
				return nil, fmt.Errorf("load trace filters: %w", err)
			}
			out[k] = f
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *store) ClusterSecret(ctx context.Context) ([]byte, error) {
	random := make([]byte, 32)
	if _, err := rand.Read(random); err != nil {
		return nil, err
	}
	// The first node to ask creates it; every other reads the same.
	if _, err := s.write.ExecContext(ctx, s.d.rebind(`INSERT INTO settings (name, value) VALUES ('cluster_secret', ?)
		ON CONFLICT (name) DO NOTHING`), hex.EncodeToString(random)); err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	var v string
	if err := s.write.QueryRowContext(ctx, `SELECT value FROM settings WHERE name = 'cluster_secret'`).Scan(&v); err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	return hex.DecodeString(v)
}

func (s *store) RetiredFiles(ctx context.Context, keys ...string) (map[string]bool, error) {
	keys = unique(keys)
	out := map[string]bool{}
	for start := 0; start < len(keys); start += batchSize {
		batch := keys[start:min(start+batchSize, len(keys))]
		args := make([]any, 0, 2*len(batch))
		for _, k := range batch {
			args = append(args, k)
		}
		args = append(args, args...)
		in := placeholders(len(batch))
		rows, err := s.read.QueryContext(ctx, s.d.rebind(`SELECT object_key FROM files
			WHERE tombstoned_at IS NOT NULL AND object_key IN (`+in+`)
			UNION ALL SELECT object_key FROM purged_files WHERE object_key IN (`+in+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("retired files: %w", err)
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return nil, fmt.Errorf("retired files: %w", err)
			}
			out[k] = true
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("retired files: %w", err)
		}
	}
	return out, nil
}

// PurgedKeyMemory is how long a purged file's key is remembered, so that
// registering it again (a WAL segment replayed after its files were
// merged and purged) is a no-op. An ingest node whose scratch disk holds a
// segment this old when it restarts could double that segment's rows.
const PurgedKeyMemory = 30 * 24 * time.Hour

func (s *store) PurgeFiles(ctx context.Context, keys ...string) error {
	keys = unique(keys)
	now := micros(s.now())
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(keys); start += batchSize {
			batch := keys[start:min(start+batchSize, len(keys))]
			args := make([]any, len(batch))
			for i, k := range batch {
				args[i] = k
			}
			in := placeholders(len(batch))
			_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO purged_files (object_key, purged_at)
				SELECT object_key, ? FROM files WHERE tombstoned_at IS NOT NULL AND object_key IN (`+in+`)
				ON CONFLICT (object_key) DO NOTHING`), append([]any{now}, args...)...)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, s.d.rebind(`DELETE FROM files
				WHERE tombstoned_at IS NOT NULL AND object_key IN (`+in+`)`), args...)
			if err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.d.rebind(`DELETE FROM purged_files WHERE purged_at < ?`),
			now-PurgedKeyMemory.Microseconds())
		return err
	})
	if err != nil {
		return fmt.Errorf("purge %d files: %w", len(keys), err)
	}
	return nil
}

func (s *store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	if name == "" || holder == "" {
		return Lease{}, errors.New("acquire lease: empty name or holder")
	}
	now := s.now()
	expires := now.Add(ttl)
	var won bool
	err := s.inTx(ctx, func(tx *sql.Tx) (err error) {
		won, err = s.d.acquireLease(ctx, tx, name, holder, micros(now), micros(expires))
		return err
	})
	if err != nil {
		return Lease{}, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	if !won {
		return Lease{}, fmt.Errorf("acquire lease %s: %w", name, ErrLeaseHeld)
	}
	return Lease{Name: name, Holder: holder, Expires: fromMicros(micros(expires))}, nil
}

func (s *store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (Lease, error) {
	now := s.now()
	expires := now.Add(ttl)
	res, err := s.write.ExecContext(ctx, s.d.rebind(`UPDATE leases SET expires_at = ?
		WHERE name = ? AND holder = ? AND expires_at > ?`), micros(expires), name, holder, micros(now))
	if err != nil {
		return Lease{}, fmt.Errorf("renew lease %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return Lease{}, fmt.Errorf("renew lease %s: %w", name, errors.Join(ErrLeaseLost, err))
	}
	return Lease{Name: name, Holder: holder, Expires: fromMicros(micros(expires))}, nil
}

func (s *store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.write.ExecContext(ctx, s.d.rebind(`DELETE FROM leases WHERE name = ? AND holder = ?`), name, holder)
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}

func (s *store) Heartbeat(ctx context.Context, n Node) error {
	if n.ID == "" || n.Role == "" {
		return errors.New("heartbeat: empty node id or role")
	}
	now := micros(s.now())
	started := micros(n.StartedAt)
	if started == 0 {
		started = now
	}
	_, err := s.write.ExecContext(ctx, s.d.rebind(`INSERT INTO nodes (id, role, address, started_at, heartbeat_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET role = excluded.role, address = excluded.address,
			started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`),
		n.ID, n.Role, n.Address, started, now)
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", n.ID, err)
	}
	return nil
}

func (s *store) Nodes(ctx context.Context, role string, since time.Time) ([]Node, error) {
	rows, err := s.read.QueryContext(ctx, s.d.rebind(`SELECT id, role, address, started_at, heartbeat_at
		FROM nodes WHERE (? = '' OR role = ?) AND heartbeat_at > ? ORDER BY id`), role, role, micros(since))
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var started, beat int64
		if err := rows.Scan(&n.ID, &n.Role, &n.Address, &started, &beat); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		n.StartedAt, n.Heartbeat = fromMicros(started), fromMicros(beat)
		out = append(out, n)
	}
	return out, rows.Err()
}

func (s *store) Leave(ctx context.Context, id string) error {
	if _, err := s.write.ExecContext(ctx, s.d.rebind(`DELETE FROM nodes WHERE id = ?`), id); err != nil {
		return fmt.Errorf("leave %s: %w", id, err)
	}
	return nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

func unique(keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if _, ok := seen[k]; !ok {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}
