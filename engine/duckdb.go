package engine

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/duckdb/duckdb-go/v2/mapping"

	"github.com/strata-db/strata/engine/schema"
)

// Options configure the DuckDB instance. Everything here is fixed when Open
// returns: the configuration is locked before any query runs.
type Options struct {
	// AllowedDirs are the only directories queries may read: the cache
	// directory that holds Parquet files. Required.
	AllowedDirs []string
	// TempDir is where DuckDB spills when a query exceeds memory. It is
	// created if missing. Required.
	TempDir string
	// MemoryLimit caps DuckDB's memory, e.g. "2GB" (default: DuckDB's, 80%
	// of RAM). Queries beyond it spill to TempDir or fail.
	MemoryLimit string
	// MaxTempSize caps the spill directory, e.g. "10GB" (default: DuckDB's).
	MaxTempSize string
	// Threads is the number of DuckDB worker threads (default: all cores).
	Threads int
	// QueryTimeout bounds every query (default 60 s).
	QueryTimeout time.Duration
	// MaxRows bounds the rows of a query's result (0: no bound): a query
	// over the bound fails once it is reached, and DuckDB stops.
	MaxRows int64
	// Setup statements run once before the lock-down, e.g. to create the
	// tables and macros of a catalog emulation.
	Setup []string
	// Functions are scalar functions written in Go, registered before the
	// lock-down, e.g. PostgreSQL's that DuckDB lacks.
	Functions []Function
}

// Function is a scalar function written in Go: one name, one or more
// overloads (by argument types).
type Function struct {
	Name      string
	Overloads []duckdb.ScalarFunc
}

// DB is a locked-down DuckDB instance shared by all queries. Each query
// takes a connection of its own, so concurrent queries are safe.
type DB struct {
	connector *duckdb.Connector
	opts      Options
	memLimit  int64 // DuckDB's memory limit in bytes, as it reports it (0: unknown)

	mu   sync.Mutex
	idle []*duckdb.Conn
}

// Open starts DuckDB and locks it down: no extension installs or loads, no
// file access outside AllowedDirs and TempDir, and no configuration change
// by anyone afterwards.
func Open(ctx context.Context, opts Options) (*DB, error) {
	if len(opts.AllowedDirs) == 0 || opts.TempDir == "" {
		return nil, errors.New("open duckdb: AllowedDirs and TempDir are required")
	}
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 60 * time.Second
	}
	if err := os.MkdirAll(opts.TempDir, 0o755); err != nil {
		return nil, fmt.Errorf("open duckdb: temp dir: %w", err)
	}
	connector, err := duckdb.NewConnector("", nil)
	if err != nil {
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	db := &DB{connector: connector, opts: opts}
	if err := db.lockDown(ctx); err != nil {
		connector.Close()
		return nil, fmt.Errorf("open duckdb: %w", err)
	}
	return db, nil
}

// lockDown applies the global settings on a first connection and ends with
// lock_configuration, after which no connection can change any of them.
func (db *DB) lockDown(ctx context.Context) error {
	dirs := make([]string, 0, len(db.opts.AllowedDirs)+1)
	for _, d := range append(db.opts.AllowedDirs, db.opts.TempDir) {
		abs, err := filepath.Abs(d)
		if err != nil {
			return err
		}
		// A trailing slash: "/data/cache" must not also allow "/data/cache2".
		dirs = append(dirs, quote(strings.TrimSuffix(abs, "/")+"/"))
	}
	stmts := []string{
		"SET TimeZone = 'UTC'",
		"SET autoinstall_known_extensions = false",
		"SET autoload_known_extensions = false",
		"SET allow_community_extensions = false",
		"SET allow_unsigned_extensions = false",
		"SET parquet_metadata_cache = true",
		"SET temp_directory = " + quote(db.opts.TempDir),
		"SET allowed_directories = [" + strings.Join(dirs, ", ") + "]",
		"SET enable_external_access = false",
	}
	if db.opts.MemoryLimit != "" {
		stmts = append(stmts, "SET memory_limit = "+quote(db.opts.MemoryLimit))
	}
	if db.opts.MaxTempSize != "" {
		stmts = append(stmts, "SET max_temp_directory_size = "+quote(db.opts.MaxTempSize))
	}
	if db.opts.Threads > 0 {
		stmts = append(stmts, "SET threads = "+strconv.Itoa(db.opts.Threads))
	}
	stmts = append(stmts, db.opts.Setup...)
	stmts = append(stmts, "SET lock_configuration = true")
	if err := db.register(ctx); err != nil {
		return err
	}
	conn, err := db.conn(ctx)
	if err != nil {
		return err
	}
	for _, s := range stmts {
		if _, err := conn.ExecContext(ctx, s, nil); err != nil {
			conn.Close()
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	db.put(conn)
	if row, err := db.Row(ctx, "SELECT current_setting('memory_limit')"); err == nil && len(row) == 1 && row[0] != nil {
		var ok bool
		if db.memLimit, ok = parseSize(*row[0]); !ok {
			slog.Warn("duckdb: memory limit not understood; queries out of memory may run again up to 3 times", "memory_limit", *row[0])
		}
	}
	return nil
}

// register adds Options.Functions to the database, where every
// connection sees them. duckdb-go registers through a database/sql
// connection. The pool gets the connector without its Close, so that
// closing the pool (and its opener goroutine) leaves the database open.
func (db *DB) register(ctx context.Context) error {
	if len(db.opts.Functions) == 0 {
		return nil
	}
	pool := sql.OpenDB(struct{ driver.Connector }{db.connector})
	defer pool.Close()
	conn, err := pool.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	for _, f := range db.opts.Functions {
		if err := duckdb.RegisterScalarUDFSet(conn, f.Name, f.Overloads...); err != nil {
			return fmt.Errorf("register function %s: %w", f.Name, err)
		}
	}
	return nil
}

// parseSize reads a size as DuckDB prints it, in units of 1024: "61.0 MiB",
// "1.8 GiB", "16383.9 PiB" (no limit).
func parseSize(s string) (int64, bool) {
	num, unit, ok := strings.Cut(strings.TrimSpace(s), " ")
	f, err := strconv.ParseFloat(num, 64)
	mult := map[string]float64{"byte": 1, "bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
		"PiB": 1 << 50}[unit]
	if !ok || err != nil || mult == 0 {
		return 0, false
	}
	return int64(f * mult), true
}

// TempDir is where this instance spills; other local scratch of the
// query role can live beside it.
func (db *DB) TempDir() string { return db.opts.TempDir }

// Timeout is the time limit of every query.
func (db *DB) Timeout() time.Duration { return db.opts.QueryTimeout }

// Close closes every connection and the database.
func (db *DB) Close() error {
	db.mu.Lock()
	idle := db.idle
	db.idle = nil
	db.mu.Unlock()
	var errs []error
	for _, c := range idle {
		errs = append(errs, c.Close())
	}
	errs = append(errs, db.connector.Close())
	return errors.Join(errs...)
}

// conn takes an idle connection or opens a new one. Connections are cheap
// in DuckDB; all share one database, buffer pool and thread pool.
func (db *DB) conn(ctx context.Context) (*duckdb.Conn, error) {
	db.mu.Lock()
	if n := len(db.idle); n > 0 {
		c := db.idle[n-1]
		db.idle = db.idle[:n-1]
		db.mu.Unlock()
		return c, nil
	}
	db.mu.Unlock()
	c, err := db.connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return c.(*duckdb.Conn), nil
}

func (db *DB) put(c *duckdb.Conn) {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.idle = append(db.idle, c)
}

// File is a local Parquet file of a table.
type File struct {
	Path string
	// SchemaVersion is the table schema version the file was written
	// with (its catalog row's); 0 means the current one.
	SchemaVersion int
}

// Query is one SQL statement over the given files.
type Query struct {
	SQL string
	// Files maps each table name ("records", "metrics") to the local
	// Parquet files that make it up for this query. A table in Files with
	// no files is an empty view with the table's columns; a table in
	// neither Files nor Fresh gets no view (the query does not read it).
	Files map[string][]File
	// Fresh adds rows not yet in any file (still in ingest's WAL) to a
	// table; they may lack columns the query does not read (the view
	// fills them with NULL). The batches stay the caller's; Query copies
	// them.
	Fresh map[string][]arrow.RecordBatch
	// Where restricts each table's view with a SQL predicate (the caller's
	// own, never user text), e.g. a time range.
	Where map[string]string
	// Raw runs SQL without creating the table views.
	Raw bool
	// Timeout, when shorter than the database's query timeout, bounds
	// this query instead (a session's statement_timeout).
	Timeout time.Duration
	// Limit ends the result after this many rows (0: all); rows past it
	// do not count against the database's MaxRows.
	Limit int64
}

// Rows is a query's result, streamed as Arrow record batches. Release it
// when done: that ends the query and frees its connection.
type Rows struct {
	array.RecordReader
	release func()
	once    sync.Once
	ctx     context.Context
	timeout time.Duration
}

// Err reports why reading stopped early, sorted like Query's errors.
func (r *Rows) Err() error {
	if err := r.RecordReader.Err(); err != nil {
		return queryError(r.ctx, r.timeout, err)
	}
	return nil
}

// Release ends the query.
func (r *Rows) Release() {
	r.once.Do(func() {
		r.RecordReader.Release()
		r.release()
	})
}

// Query runs q.SQL with views named after the tables over q.Files, on a
// connection of its own, bounded by the query timeout. The views are
// temporary: no other connection sees them.
func (db *DB) Query(ctx context.Context, q Query) (*Rows, error) {
	limit := db.opts.QueryTimeout
	if q.Timeout > 0 && q.Timeout < limit {
		limit = q.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	conn, err := db.conn(ctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("query: connect: %w", err)
	}
	var freshTables, views []string
	done := func(reuse bool) {
		cancel()
		// Free the fresh copies now rather than when the connection is
		// reused, and leave no view behind: a later query on this
		// connection that reads a table it did not ask for must fail, not
		// read this query's files.
		after := make([]string, 0, len(freshTables)+len(views))
		for _, v := range views {
			after = append(after, "DROP VIEW IF EXISTS "+v)
		}
		for _, t := range freshTables {
			after = append(after, "DROP TABLE IF EXISTS "+t)
		}
		if len(after) == 0 {
			// DuckDB frees what a result it did not finish still holds
			// only when its connection runs the next statement: run one
			// now, or that memory stays taken while the connection idles
			// (a query waiting for it, having failed for want of it, waited
			// in vain; seen in TestQuery_OutOfMemoryAtStart…, ~1 run in 10).
			after = append(after, "SELECT 1")
		}
		for _, d := range after {
			if _, err := conn.ExecContext(context.Background(), d, nil); err != nil {
				reuse = false
			}
		}
		if reuse {
			db.put(conn)
		} else {
			conn.Close()
		}
	}
	ar, err := duckdb.NewArrowFromConn(conn)
	if err != nil {
		done(false)
		return nil, fmt.Errorf("query: %w", err)
	}
	for _, t := range schema.Tables() {
		if q.Raw {
			break
		}
		if _, ok := q.Files[t.Name]; !ok && len(q.Fresh[t.Name]) == 0 {
			continue
		}
		fresh := ""
		if len(q.Fresh[t.Name]) > 0 {
			if fresh, err = loadFresh(ctx, conn, ar, t, q.Fresh[t.Name]); err != nil {
				err = queryError(ctx, limit, err) // before done cancels ctx
				done(false)
				return nil, fmt.Errorf("query: fresh rows of %s: %w", t.Name, err)
			}
			freshTables = append(freshTables, fresh)
		}
		views = append(views, t.Name)
		view, err := viewSQL(t, q.Files[t.Name], fresh, q.Where[t.Name])
		if err != nil {
			done(false)
			return nil, fmt.Errorf("query: %w", err)
		}
		if _, err := conn.ExecContext(ctx, view, nil); err != nil {
			err = queryError(ctx, limit, err)
			done(false)
			return nil, fmt.Errorf("query: create view %s: %w", t.Name, err)
		}
	}
	rr, err := stream(ctx, conn, q.SQL, func(reruns int) bool { return db.memoryFreed(ctx, reruns) })
	if err != nil {
		err = queryError(ctx, limit, err) // before done cancels ctx
		done(ctx.Err() == nil)
		return nil, err
	}
	var rd array.RecordReader = rr
	if max := db.opts.MaxRows; !q.Raw && (max > 0 || q.Limit > 0) {
		rd = &cappedReader{RecordReader: rr, max: max, limit: q.Limit}
	}
	return &Rows{RecordReader: rd, release: func() { done(ctx.Err() == nil) }, ctx: ctx, timeout: limit}, nil
}

func isOutOfMemory(err error) bool {
	var de *duckdb.Error
	return errors.As(err, &de) && de.Type == duckdb.ErrorTypeOutOfMemory
}

// memoryFreed waits, up to 5 s and while ctx lasts, for the memory DuckDB
// holds to fall to half of what it holds now, and says whether it did.
// reruns is how often the query failing for want of memory already ran
// again: a query that failed while others held under a quarter of the
// limit is too big on its own, and runs again once at most (for a failure
// that came as another query ended), not until its time limit.
func (db *DB) memoryFreed(ctx context.Context, reruns int) bool {
	const usage = "SELECT sum(memory_usage_bytes)::BIGINT FROM duckdb_memory()"
	held := func() (int64, bool) {
		row, err := db.row(ctx, usage)
		if err != nil || len(row) != 1 || row[0] == nil {
			return 0, false
		}
		n, err := strconv.ParseInt(*row[0], 10, 64)
		return n, err == nil
	}
	before, ok := held()
	if ok && reruns > 0 && before < db.memLimit/4 {
		return false
	}
	if !ok {
		// So short of memory that asking failed too: wait for it to fall
		// below half the limit.
		if db.memLimit == 0 {
			return false
		}
		before = db.memLimit
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
		if now, ok := held(); ok && now <= before/2 {
			return true
		}
	}
	return false
}

// ErrTooManyRows is the error of a result over the database's MaxRows.
var ErrTooManyRows = errors.New("too many rows")

// cappedReader ends a result after limit rows (0: none), and with an
// error once it has more than max (0: no bound). Reading stops there, and
// so does DuckDB.
type cappedReader struct {
	array.RecordReader
	max, limit, seen int64
	cut              arrow.RecordBatch // the last batch, cut at limit
	err              error
}

func (c *cappedReader) Next() bool {
	if c.cut != nil {
		c.cut.Release()
		c.cut = nil
	}
	if c.err != nil || c.limit > 0 && c.seen >= c.limit || !c.RecordReader.Next() {
		return false
	}
	n := c.RecordReader.RecordBatch().NumRows()
	if c.limit > 0 && c.seen+n > c.limit {
		n = c.limit - c.seen
		c.cut = c.RecordReader.RecordBatch().NewSlice(0, n)
	}
	c.seen += n
	if c.max > 0 && c.seen > c.max {
		c.err = &QueryError{Msg: fmt.Sprintf("the result has more than %d rows, the most a query may return: aggregate, or add a LIMIT", c.max),
			Err: ErrTooManyRows}
		return false
	}
	return true
}

func (c *cappedReader) RecordBatch() arrow.RecordBatch {
	if c.cut != nil {
		return c.cut
	}
	return c.RecordReader.RecordBatch()
}

// Record is RecordBatch, under its deprecated name.
func (c *cappedReader) Record() arrow.RecordBatch { return c.RecordBatch() }

func (c *cappedReader) Err() error {
	if c.err != nil {
		return c.err
	}
	return c.RecordReader.Err()
}

func (c *cappedReader) Release() {
	if c.cut != nil {
		c.cut.Release()
		c.cut = nil
	}
	c.RecordReader.Release()
}

// ErrTimeout reports a query stopped by the query timeout.
var ErrTimeout = errors.New("query timed out")

// TimedOut is the error of a query stopped by its time limit.
func TimedOut(limit time.Duration) *QueryError {
	return &QueryError{Msg: fmt.Sprintf("query stopped after %v, the time limit", limit), Err: ErrTimeout}
}

// QueryError is a query that failed because of the SQL itself: a syntax
// error, an unknown column, a bad cast, a denied file, a memory or time
// limit. Its message is DuckDB's, which points at the problem.
type QueryError struct {
	Msg string
	Err error // ErrTimeout, or the DuckDB error
}

func (e *QueryError) Error() string { return e.Msg }
func (e *QueryError) Unwrap() error { return e.Err }

// queryError sorts a failure into the user's (QueryError) or ours.
func queryError(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return TimedOut(timeout)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	var de *duckdb.Error
	if errors.As(err, &de) {
		switch de.Type {
		case duckdb.ErrorTypeInternal, duckdb.ErrorTypeFatal, duckdb.ErrorTypeIO, duckdb.ErrorTypeConnection:
			return err
		}
		msg := de.Msg
		if msg == "" {
			msg = err.Error()
		}
		if de.Type == duckdb.ErrorTypeOutOfMemory {
			// DuckDB's advice is settings users cannot change here.
			if i := strings.Index(msg, "Possible solutions"); i > 0 {
				msg = strings.TrimSpace(msg[:i])
			}
			msg += "\nThe query needs more memory than a query may have: narrow its time range, aggregate before joining, or select fewer columns."
		}
		if de.Type == duckdb.ErrorTypeInterrupt {
			// Nothing of ours interrupted it (ctx is alive): a failure in
			// one of DuckDB's threads stopped the others, and now and then
			// DuckDB reports their interruption instead of the failure.
			msg = "the query failed in one of DuckDB's threads, which reported only that it was interrupted (" + msg + "); run it again to see the error"
		}
		// duckdb-go's words before the error of a Go function (Functions).
		msg = strings.Replace(msg, "database/sql/driver: API error: ", "", 1)
		return &QueryError{Msg: msg, Err: err}
	}
	return err
}

// streamSeq numbers the Arrow stream views of loadFresh.
var streamSeq atomic.Uint64

// loadFresh copies batches into a temporary table of the connection and
// returns its name. A table, not a view over the Arrow stream, because a
// stream can be read once and a query may read the table twice.
func loadFresh(ctx context.Context, conn *duckdb.Conn, ar *duckdb.Arrow, t *schema.Table, batches []arrow.RecordBatch) (string, error) {
	rdr, err := array.NewRecordReader(batches[0].Schema(), batches) // the columns the query needs
	if err != nil {
		return "", err
	}
	defer rdr.Release()
	// duckdb-go registers the stream as a view of the main schema, which
	// every connection shares: a name of its own per load, or concurrent
	// queries replace and drop each other's.
	stream := fmt.Sprintf("__strata_stream_%s_%d", t.Name, streamSeq.Add(1))
	table := "__strata_fresh_" + t.Name // a temp table: the connection's own
	release, err := ar.RegisterView(rdr, stream)
	if err != nil {
		return "", err
	}
	defer release()
	// Run to its end even when ctx ends (an interrupt stops it early):
	// the stream is freed on return.
	err = execute(ctx, conn, "CREATE OR REPLACE TEMP TABLE "+table+" AS SELECT * FROM "+stream)
	// Whatever happened, the view goes: it names memory freed on return.
	if _, derr := conn.ExecContext(context.Background(), "DROP VIEW IF EXISTS "+stream, nil); err == nil {
		err = derr
	}
	return table, err
}

// viewSQL is a temporary view of table t over files and the fresh rows in
// table fresh (if any), restricted by where (if any). With neither files
// nor fresh rows it is an empty view with the table's columns.
func viewSQL(t *schema.Table, files []File, fresh, where string) (string, error) {
	var parts []string
	if len(files) > 0 {
		read, err := FilesSQL(t, files)
		if err != nil {
			return "", err
		}
		parts = append(parts, read)
	}
	if fresh != "" {
		parts = append(parts, "SELECT * FROM "+fresh)
	}
	if len(parts) == 0 {
		var b strings.Builder
		b.WriteString("SELECT ")
		for i, f := range t.Schema.Fields() {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "CAST(NULL AS %s) AS %s", schema.SQLType(f.Type), f.Name)
		}
		b.WriteString(" WHERE false")
		parts = append(parts, b.String())
	}
	body := strings.Join(parts, " UNION ALL BY NAME ")
	if where != "" {
		body = "SELECT * FROM (" + body + ") WHERE " + where
	}
	return "CREATE OR REPLACE TEMP VIEW " + t.Name + " AS " + body, nil
}

// FilesSQL is a SELECT of the rows of table t in files (at least one),
// with the current schema's columns. It reads the files of each schema
// version with one read_parquet, the current version first (its columns
// give the order); older files lack the columns later versions added,
// which are NULL for their rows. (union_by_name = true would do the same
// for any mix, but it opens every file's footer at bind time: a 24 h
// query over 124 files took 61-68 ms instead of 40-42.) A file of a newer
// version than this build's is an error: its columns are unknown here.
func FilesSQL(t *schema.Table, files []File) (string, error) {
	byVersion := map[int][]string{}
	for _, f := range files {
		v := f.SchemaVersion
		if v == 0 {
			v = schema.Version
		}
		if v > schema.Version {
			return "", fmt.Errorf("%s has table schema version %d, newer than this node's %d: upgrade it to read the file",
				filepath.Base(f.Path), v, schema.Version)
		}
		byVersion[v] = append(byVersion[v], f.Path)
	}
	var parts []string
	for v := schema.Version; v >= 1; v-- {
		paths := byVersion[v]
		if len(paths) == 0 {
			continue
		}
		var b strings.Builder
		b.WriteString("SELECT *")
		for _, f := range t.AddedSince(v) {
			fmt.Fprintf(&b, ", CAST(NULL AS %s) AS %s", schema.SQLType(f.Type), f.Name)
		}
		b.WriteString(" FROM read_parquet([")
		for i, p := range paths {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(quote(p))
		}
		// The object keys look like hive partitions (date=…/hour=…); the
		// table has no such columns, so DuckDB must not add them.
		b.WriteString("], hive_partitioning = false)")
		parts = append(parts, b.String())
	}
	return strings.Join(parts, " UNION ALL BY NAME "), nil
}

// quote makes s a SQL string literal.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", "''") + "'"
}

// DuckDBVersion is the version of the bundled DuckDB library.
func DuckDBVersion() string { return mapping.LibraryVersion() }
