package sql

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/errgroup"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// FileSource makes catalog files available as local paths for DuckDB.
type FileSource interface {
	// Acquire returns a local path holding the object key (size bytes) of
	// project, valid until release is called; cached reports that its bytes
	// came from a cache rather than the object store.
	Acquire(ctx context.Context, project, key string, size int64) (path string, release func(), cached bool, err error)
}

// fetchParallel bounds how many files one query fetches at once: a cold
// query over a remote object store waits on round trips, not bandwidth.
const fetchParallel = 8

// FreshSource gives the rows acknowledged by ingest but not yet flushed
// that pass filter, and the keys of the files they will become. The
// batches are valid until release is called, which must be called also
// after an error.
type FreshSource interface {
	Snapshot(ctx context.Context, project, table string, filter engine.Need) (batches []arrow.RecordBatch, pending []string, release func(), err error)
}

// Executor runs queries for projects: it checks each query against the
// sandbox, picks the project's files from the catalog (pruned by time range
// and trace id), makes them local, adds rows still in ingest, and runs the
// SQL in DuckDB.
type Executor struct {
	Catalog catalog.Store
	Engine  *engine.DB
	Files   FileSource
	Fresh   FreshSource // nil when no ingester runs in this process
	Limiter *Limiter    // nil: no limit

	traces    *lru.Cache[string, *engine.TraceFilter]
	retention sync.Map // project → cachedRetention
	m         *queryMetrics
}

// NewExecutor returns an executor; fresh and limiter may be nil.
func NewExecutor(cat catalog.Store, db *engine.DB, files FileSource, fresh FreshSource, limiter *Limiter) *Executor {
	traces, _ := lru.New[string, *engine.TraceFilter](200_000)
	return &Executor{Catalog: cat, Engine: db, Files: files, Fresh: fresh, Limiter: limiter, traces: traces, m: newQueryMetrics()}
}

// Request is one query.
type Request struct {
	SQL string `json:"sql"`
	// MinTimestamp and MaxTimestamp confine every table to rows in this
	// range (inclusive) of its time column, besides pruning files.
	MinTimestamp *time.Time `json:"min_timestamp,omitempty"`
	MaxTimestamp *time.Time `json:"max_timestamp,omitempty"`
	// Limit caps the rows returned (0: no cap).
	Limit int64 `json:"limit,omitempty"`
	// Timeout, when shorter than the server's query timeout, bounds this
	// query instead (PostgreSQL's statement_timeout; 0: the server's).
	Timeout time.Duration `json:"-"`
	// Postgres is set for the Postgres protocol: SQL reads as in
	// PostgreSQL where the two differ and strata can tell.
	Postgres bool `json:"-"`
	// Written is the statement as the client wrote it, when SQL is its
	// rewrite with parameters bound: its quotes decide which names of
	// PGNames are folded to lower case (foldUnquoted). Empty: SQL.
	Written string `json:"-"`
}

// Stats describe what a query read.
type Stats struct {
	FilesScanned int   `json:"files_scanned"`
	FilesPruned  int   `json:"files_pruned"`
	BytesScanned int64 `json:"bytes_scanned"`
	// BytesScanned split by where the files came from: a cache (local SSD
	// or a cache node) or the object store (misses, and file:// stores,
	// which are read in place).
	BytesFromCache       int64 `json:"bytes_from_cache"`
	BytesFromObjectStore int64 `json:"bytes_from_object_store"`
	FreshRows            int64 `json:"fresh_rows"`
	// IngestNodesMissing counts ingest nodes that did not answer: the rows
	// they acknowledged but had not flushed are not in the result.
	IngestNodesMissing int   `json:"ingest_nodes_missing"`
	Rows               int64 `json:"rows"`
	ElapsedMs          int64 `json:"elapsed_ms"`
}

// Result is a running query: read Rows, then Release.
type Result struct {
	*engine.Rows
	Stats   Stats
	start   time.Time
	release func()
	m       *queryMetrics
	// Deadline is the end of the query's time limit, which counts from
	// when it got its slot: sending its result must end by then too.
	Deadline time.Time
	// PGNames are the columns' names as PostgreSQL would give them, for
	// the Postgres protocol (nil: DuckDB's names).
	PGNames []string
}

// Peek reads the first batch ahead, which Next then gives first, and
// returns the error of a query that failed there: a value that does not
// convert, a result over the row limit. An answer can still say so by its
// status, before it has begun.
func (r *Result) Peek() error {
	has := r.Rows.RecordReader.Next()
	if !has && r.Rows.Err() != nil {
		return r.Rows.Err() // sorted as Query's errors are: the user's, or ours
	}
	r.Rows.RecordReader = &peeked{RecordReader: r.Rows.RecordReader, pending: has}
	return nil
}

// peeked is a reader whose first batch was read ahead (Result.Peek).
// After an empty one, Next asks the reader again, which stays at its end
// (the engine's stream remembers it).
type peeked struct {
	array.RecordReader
	pending bool
}

func (p *peeked) Next() bool {
	if p.pending {
		p.pending = false
		return true
	}
	return p.RecordReader.Next()
}

// Release ends the query and frees its slot.
func (r *Result) Release() {
	err := r.Rows.Err()
	r.Rows.Release()
	r.Stats.ElapsedMs = time.Since(r.start).Milliseconds()
	if r.release != nil {
		r.release()
		r.release = nil
		r.m.ended(r.start, err, &r.Stats)
	}
}

// MaxSQLBytes bounds the text of one query.
const MaxSQLBytes = 1 << 20

// ErrTooLong: the SQL text is over MaxSQLBytes.
var ErrTooLong = fmt.Errorf("query text is longer than %d bytes", MaxSQLBytes)

// ErrNUL: text holds a NUL byte, where DuckDB would silently cut it.
var ErrNUL = &engine.QueryError{Msg: "invalid byte sequence: text cannot hold a NUL byte (0x00)"}

// checkText refuses SQL text DuckDB cannot take whole.
func checkText(sql string) error {
	if len(sql) > MaxSQLBytes {
		return ErrTooLong
	}
	if strings.IndexByte(sql, 0) >= 0 {
		return ErrNUL
	}
	return nil
}

// bounded runs fn — work on a statement before it runs: parsing it,
// typing its parameters, describing its columns — within a query's
// bounds: a slot of the Limiter and the time limit. Parsing a long text
// takes DuckDB seconds, and a describe evaluates constant expressions.
func (e *Executor) bounded(ctx context.Context, fn func(ctx context.Context) error) error {
	release, err := e.Limiter.Acquire(ctx)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			e.m.ended(time.Now(), err, nil) // refused before it could run: a busy query all the same
		}
		return err
	}
	defer release()
	return e.timed(ctx, fn)
}

// timed runs fn within a query's time limit.
func (e *Executor) timed(ctx context.Context, fn func(ctx context.Context) error) error {
	limit := e.Engine.Timeout()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	if err := fn(ctx); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return engine.TimedOut(limit)
		}
		return err
	}
	return nil
}

// Run starts a query for project.
func (e *Executor) Run(ctx context.Context, project string, req Request) (*Result, error) {
	start := time.Now()
	res, err := e.start(ctx, project, req, start)
	if err != nil {
		e.m.ended(start, err, nil)
	}
	return res, err
}

func (e *Executor) start(ctx context.Context, project string, req Request, start time.Time) (*Result, error) {
	if err := checkText(req.SQL); err != nil {
		return nil, err
	}
	if req.MinTimestamp != nil && req.MaxTimestamp != nil && req.MaxTimestamp.Before(*req.MinTimestamp) {
		return nil, &engine.QueryError{Msg: "max_timestamp is before min_timestamp"}
	}
	release, err := e.Limiter.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	// The time limit covers the whole query, planning and fetching files
	// included, not only DuckDB's part: the compactor's GC grace is set
	// longer than it, so no file is deleted under a query still running.
	limit := e.Engine.Timeout()
	if req.Timeout > 0 && req.Timeout < limit {
		limit = req.Timeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	deadline, _ := ctx.Deadline()
	res, unpin, err := e.run(ctx, project, req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = engine.TimedOut(limit)
		}
		cancel()
		unpin()
		release()
		return nil, err
	}
	res.start, res.Deadline, res.release, res.m = start, deadline, func() { cancel(); unpin(); release() }, e.m
	return res, nil
}

// run plans and starts the query; unpin releases the files it reads, once
// its rows are consumed (always non-nil).
func (e *Executor) run(ctx context.Context, project string, req Request) (res *Result, unpin func(), err error) {
	var pins []func()
	unpin = func() {
		for _, p := range pins {
			p()
		}
	}
	explain, text := splitExplain(normalizeSQL(req.SQL))
	a, err := analyze(ctx, e.Engine, text)
	if err != nil {
		return nil, unpin, err
	}
	if req.Postgres && a.pgSQL != "" {
		text = a.pgSQL
	}
	q := engine.Query{SQL: explain + text, Files: map[string][]engine.File{}, Fresh: map[string][]arrow.RecordBatch{}, Where: map[string]string{},
		Timeout: req.Timeout, Limit: req.Limit}
	var stats Stats
	retained, err := e.retainedFrom(ctx, project)
	if err != nil {
		return nil, unpin, err
	}
	for _, t := range schema.Tables() {
		use := a.tables[t.Name]
		if use == nil {
			continue // the query does not read this table
		}
		lo, hi := use.min, use.max
		// Rows past the project's retention stay in their files until the
		// compactor drops or rewrites them; queries never see them.
		from := retained
		if req.MinTimestamp != nil {
			from = later(from, *req.MinTimestamp)
		}
		if !from.IsZero() {
			lo = later(lo, from)
			q.Where[t.Name] = fmt.Sprintf("%s >= make_timestamptz(%d)", t.TimeColumn, from.UnixMicro())
		}
		if req.MaxTimestamp != nil {
			hi = earlier(hi, *req.MaxTimestamp)
			w := fmt.Sprintf("%s <= make_timestamptz(%d)", t.TimeColumn, req.MaxTimestamp.UnixMicro())
			if q.Where[t.Name] != "" {
				w = q.Where[t.Name] + " AND " + w
			}
			q.Where[t.Name] = w
		}
		need := engine.Need{Min: lo, Max: hi, TraceIDs: use.traces(), Columns: a.columns}
		in, err := e.freshAndFiles(ctx, project, t.Name, need)
		pins = append(pins, in.done)
		if err != nil {
			return nil, unpin, err
		}
		q.Fresh[t.Name] = in.batches
		for _, b := range in.batches {
			stats.FreshRows += b.NumRows()
		}
		stats.IngestNodesMissing = max(stats.IngestNodesMissing, in.missing)
		stats.FilesPruned += in.pruned
		files, filePins, err := e.acquire(ctx, project, in.files, &stats)
		pins = append(pins, filePins...)
		if err != nil {
			return nil, unpin, err
		}
		q.Files[t.Name] = files // a view, even if empty
	}
	rows, err := e.Engine.Query(ctx, q)
	if err != nil {
		return nil, unpin, err
	}
	res = &Result{Rows: rows, Stats: stats}
	if explain == "" {
		res.PGNames = foldUnquoted(a.names, cmp.Or(req.Written, req.SQL))
	}
	return res, unpin, nil
}

// freshAndFiles reads ingest's unflushed rows of a table that pass need,
// and lists the catalog's files for the rest; done releases the rows.
//
// Ingest holds rows until it knows their registration went through, and
// the compactor may merge such a file meanwhile: a listing taken after the
// merge holds the merged file, so those rows must not be read from ingest
// too. A merge registers its output in the transaction that retires its
// inputs, and a file once retired stays so; if none of ingest's pending
// files is retired after the listing, none was when it was taken, and the
// listing holds no copy of their rows.
func (e *Executor) freshAndFiles(ctx context.Context, project, table string, need engine.Need) (in tableInput, err error) {
	in.done = func() {}
	if e.Fresh == nil {
		in.files, in.pruned, err = e.plan(ctx, project, table, need.Min, need.Max, need.TraceIDs, nil)
		return in, err
	}
	for attempt := 1; ; attempt++ {
		var keys []string
		in.batches, keys, in.done, err = e.Fresh.Snapshot(ctx, project, table, need)
		if sm := (*engine.SourcesMissing)(nil); errors.As(err, &sm) {
			in.missing, err = sm.N, nil // the rows of the others, said in the stats
		}
		if err != nil {
			return in, fmt.Errorf("read unflushed rows: %w", err)
		}
		pending := make(map[string]bool, len(keys))
		for _, k := range keys {
			pending[k] = true
		}
		in.files, in.pruned, err = e.plan(ctx, project, table, need.Min, need.Max, need.TraceIDs, pending)
		if err != nil || len(keys) == 0 {
			return in, err
		}
		retired, err := e.Catalog.RetiredFiles(ctx, keys...)
		if err != nil || len(retired) == 0 {
			return in, err
		}
		in.done()
		in = tableInput{done: func() {}}
		if attempt == maxFreshAttempts {
			return in, fmt.Errorf("ingest's files were merged %d times while the query was planned; run it again", attempt)
		}
		for k := range retired {
			need.Exclude = append(need.Exclude, k)
		}
	}
}

// tableInput is what a query reads of one table: unflushed rows (released
// by done) and the catalog's files.
type tableInput struct {
	batches []arrow.RecordBatch
	done    func()
	files   []catalog.File
	pruned  int
	missing int // ingest nodes that did not answer: their unflushed rows are not in batches
}

// maxFreshAttempts bounds how often freshAndFiles starts over because the
// compactor merged files ingest still held. Each attempt excludes the
// files found merged, so more than one is rare and three are rarer still.
const maxFreshAttempts = 3

// acquire makes files local, several at once, and counts them in stats.
// The releases are returned even on error.
func (e *Executor) acquire(ctx context.Context, project string, files []catalog.File, stats *Stats) ([]engine.File, []func(), error) {
	paths := make([]engine.File, len(files))
	pins := make([]func(), len(files))
	cached := make([]bool, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	for i, f := range files {
		g.Go(func() error {
			p, release, c, err := e.Files.Acquire(gctx, project, f.Key, f.Bytes)
			if err != nil {
				return fmt.Errorf("fetch %s: %w", f.Key, err)
			}
			paths[i], pins[i], cached[i] = engine.File{Path: p, SchemaVersion: f.SchemaVersion}, release, c
			return nil
		})
	}
	err := g.Wait()
	var got []func()
	for i, f := range files {
		if pins[i] == nil {
			continue
		}
		got = append(got, pins[i])
		stats.FilesScanned++
		stats.BytesScanned += f.Bytes
		if cached[i] {
			stats.BytesFromCache += f.Bytes
		} else {
			stats.BytesFromObjectStore += f.Bytes
		}
	}
	return paths, got, err
}

// plan lists the files of a table that the query must read: those
// overlapping [lo, hi], minus those whose trace filter rules out every
// trace id asked for, minus files whose rows are read from ingest instead.
func (e *Executor) plan(ctx context.Context, project, table string, lo, hi time.Time, traceIDs []string, pending map[string]bool) ([]catalog.File, int, error) {
	total, err := e.Catalog.CountFiles(ctx, project, table)
	if err != nil {
		return nil, 0, catalogError(ctx, err)
	}
	listed, err := e.Catalog.ListFiles(ctx, catalog.FileFilter{Project: project, Table: table, Min: lo, Max: hi})
	if err != nil {
		return nil, 0, catalogError(ctx, err)
	}
	var out []catalog.File
	var need []string
	for _, f := range listed {
		if pending[f.Key] {
			continue
		}
		out = append(out, f)
		if _, ok := e.traces.Get(f.Key); !ok && len(traceIDs) > 0 {
			need = append(need, f.Key)
		}
	}
	if len(traceIDs) > 0 {
		if len(need) > 0 {
			raw, err := e.Catalog.TraceFilters(ctx, need...)
			if err != nil {
				return nil, 0, err
			}
			for k, b := range raw {
				if tf, err := engine.LoadTraceFilter(b); err == nil {
					e.traces.Add(k, tf)
				}
			}
		}
		keys := make([]uint64, len(traceIDs))
		for i, id := range traceIDs {
			keys[i] = engine.TraceKey(id)
		}
		kept := out[:0]
		for _, f := range out {
			tf, ok := e.traces.Get(f.Key)
			if !ok {
				kept = append(kept, f) // no filter (an older file): read it
				continue
			}
			for _, k := range keys {
				if tf.MayContain(k) {
					kept = append(kept, f)
					break
				}
			}
		}
		out = kept
	}
	return out, max(0, total-len(out)), nil
}

// retainedFrom is the oldest time a project's queries may see (now minus
// its retention), zero for a project the catalog does not know. Each
// project's retention is read from the catalog at most once a minute.
func (e *Executor) retainedFrom(ctx context.Context, project string) (time.Time, error) {
	now := time.Now()
	if r, ok := e.retention.Load(project); ok && now.Before(r.(cachedRetention).until) {
		return now.Add(-r.(cachedRetention).d), nil
	}
	p, err := e.Catalog.Project(ctx, project)
	if errors.Is(err, catalog.ErrNotFound) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, catalogError(ctx, fmt.Errorf("read project %s: %w", project, err))
	}
	d := p.KeepFor()
	e.retention.Store(project, cachedRetention{d: d, until: now.Add(time.Minute)})
	return now.Add(-d), nil
}

type cachedRetention struct {
	d     time.Duration
	until time.Time
}

func later(a, b time.Time) time.Time {
	if a.IsZero() || b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// Limiter bounds how many queries run at once; others wait in a queue of
// bounded length, and beyond it are refused at once with ErrBusy.
type Limiter struct {
	slots chan struct{}
	queue chan struct{}
}

// ErrBusy: every query slot is taken and the queue is full.
var ErrBusy = errors.New("too many queries running; retry shortly")

// ErrCatalogUnavailable: the catalog, which every query asks for its
// files, failed; the query may succeed once it is back (503, 57P03).
var ErrCatalogUnavailable = errors.New("the catalog failed to list the query's files; retry shortly")

// catalogError marks a catalog failure as one to retry, unless the query
// itself ended (its client gone, its time up).
func catalogError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return err
	}
	return fmt.Errorf("%w (%w)", ErrCatalogUnavailable, err)
}

type queueLimitKey struct{}

type queueLimit struct {
	wait time.Duration
	err  error
}

// withQueueLimit makes Acquire under ctx wait at most wait for a slot, and
// then fail with err (which wraps ErrBusy): for a caller whose own open
// queries hold slots, which waiting could deadlock.
func withQueueLimit(ctx context.Context, wait time.Duration, err error) context.Context {
	return context.WithValue(ctx, queueLimitKey{}, queueLimit{wait, err})
}

// NewLimiter allows running queries at once and queued more waiting.
func NewLimiter(running, queued int) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(1, running)), queue: make(chan struct{}, max(0, queued))}
}

// Slots is how many queries may run at once (a nil Limiter: no bound).
func (l *Limiter) Slots() int {
	if l == nil {
		return math.MaxInt
	}
	return cap(l.slots)
}

// Acquire takes a slot, waiting in the queue if need be, until ctx ends.
func (l *Limiter) Acquire(ctx context.Context) (release func(), err error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	default:
	}
	ql, limited := ctx.Value(queueLimitKey{}).(queueLimit)
	var timeout <-chan time.Time // nil: no limit
	if limited {
		if ql.wait <= 0 {
			return nil, ql.err
		}
		t := time.NewTimer(ql.wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case l.queue <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	defer func() { <-l.queue }()
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout:
		return nil, ql.err
	}
}
