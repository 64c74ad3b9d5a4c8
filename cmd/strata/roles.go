package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/objstore"
	"github.com/strata-db/strata/sql"
)

// defaultQueryTimeout is --query-timeout's default. A standalone
// compactor cannot know the query nodes' setting, and warns of a
// --gc-grace that is not longer than this.
const defaultQueryTimeout = time.Minute

// httpServer is one listening HTTP server.
type httpServer struct {
	name string
	srv  *http.Server
	addr string
}

// bind listens on every address a command serves, before anything else
// starts, so a taken or malformed address fails at once and names its flag.
// Keys are flag names.
func bind(addrs map[string]string) (map[string]net.Listener, error) {
	lns := map[string]net.Listener{}
	for flagName, addr := range addrs {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return nil, settingError{flagName, err}
		}
		lns[flagName] = ln
	}
	return lns, nil
}

func closeAll(lns map[string]net.Listener) {
	for _, l := range lns {
		l.Close()
	}
}

// serveHTTP serves h on ln. A request must arrive whole within a minute
// (a 16 MiB export at 300 kB/s): a client that announces a body and sends
// it slowly, or never, does not hold a connection and its goroutine for
// ever. Responses have no deadline: query results stream for as long as
// the query runs.
func serveHTTP(name string, ln net.Listener, h http.Handler) *httpServer {
	s := &httpServer{name: name, srv: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}, addr: ln.Addr().String()}
	// HTTP/2 without TLS (h2c) beside HTTP/1.1: OTLP/HTTP allows either
	// (QA: a client with prior knowledge of HTTP/2 had its connection reset).
	s.srv.Protocols = new(http.Protocols)
	s.srv.Protocols.SetHTTP1(true)
	s.srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			slog.Error("http server stopped", "server", name, "err", err)
		}
	}()
	return s
}

// ingestConfig are the ingest role's flags.
type ingestConfig struct {
	httpAddr, grpcAddr string
	scratchDir         string
	flushInterval      time.Duration
	flushWorkers       int
	flushBytes         byteSize
	maxScratch         byteSize
	maxBuffer          byteSize
	maxRequest         byteSize
	onFlushed          func([]catalog.File) // set by the command, not a flag
}

func (c *ingestConfig) register(cmd *command) {
	cmd.fs.StringVar(&c.httpAddr, "otlp-http-addr", "127.0.0.1:4318", "`address` of the OTLP/HTTP receiver (POST /v1/traces, /v1/logs, /v1/metrics)")
	cmd.fs.StringVar(&c.grpcAddr, "otlp-grpc-addr", "127.0.0.1:4317", "`address` of the OTLP/gRPC receiver")
	cmd.fs.StringVar(&c.scratchDir, "scratch-dir", "", "`dir`ectory of the write-ahead log, on local SSD; empty for DATA_DIR/scratch")
	durationVar(cmd.fs, &c.flushInterval, "flush-interval", time.Second, "flush buffered rows to Parquet once they are this old (`duration`)")
	cmd.fs.IntVar(&c.flushWorkers, "flush-workers", 0, "WAL segments flushed at once (`n`; 0: one per core)")
	c.flushBytes, c.maxScratch, c.maxBuffer, c.maxRequest = 16<<20, 1<<30, 256<<20, 16<<20
	cmd.fs.Var(&c.flushBytes, "flush-bytes", "flush before the interval once the WAL segment reaches this `size`")
	cmd.fs.Var(&c.maxScratch, "max-scratch-bytes", "refuse new data (429) while the WAL on disk exceeds this `size`")
	cmd.fs.Var(&c.maxBuffer, "max-buffer-bytes", "refuse new data (429) while requests being read and decoded, and rows waiting for the WAL, hold more than this `size` of memory")
	cmd.fs.Var(&c.maxRequest, "max-request-bytes", "largest OTLP request accepted (413 beyond), before and after decompression, in `size`")
}

// check refuses ingest settings that would fall back to a default without
// a word, or refuse every request (durations are checked for every command
// by checkDurations).
func (c *ingestConfig) check(string) error {
	sizes := []struct {
		flag string
		v    byteSize
		why  string
	}{
		{"max-request-bytes", c.maxRequest, "no OTLP request would fit"},
		{"max-buffer-bytes", c.maxBuffer, "no OTLP request would fit"},
		{"max-scratch-bytes", c.maxScratch, "the WAL would refuse data after a single request"},
		{"flush-bytes", c.flushBytes, "every request would make a Parquet file of its own"},
	}
	for _, s := range sizes {
		if s.v < 1024 {
			return settingError{s.flag, fmt.Errorf("%d bytes is under 1 KiB: %s", s.v, s.why)}
		}
	}
	if c.flushWorkers < 0 {
		return settingError{"flush-workers", fmt.Errorf("%d is negative: give a number of workers, or 0 for one per core", c.flushWorkers)}
	}
	// A segment is flushed once it reaches --flush-bytes or its age: a
	// smaller WAL limit would refuse data until the age alone flushed it
	// (QA: 429 for 30-60 s at a time).
	if c.maxScratch < c.flushBytes {
		return settingError{"max-scratch-bytes", fmt.Errorf("%v is under --flush-bytes (%v): ingest would refuse data until a segment "+
			"ages into its flush; give at least twice --flush-bytes", c.maxScratch.String(), c.flushBytes.String())}
	}
	return nil
}

// ingestRole is a running ingest node: WAL, flusher and receivers.
type ingestRole struct {
	in   *ingest.Ingester
	http *httpServer
	grpc *grpc.Server
	// Where it announced itself (announce), left on a clean stop.
	cat    catalog.Store
	nodeID string
}

func startIngest(c ingestConfig, lns map[string]net.Listener, dataDir string, cat catalog.Store, bucket *objstore.Bucket, reg *prometheus.Registry) (*ingestRole, error) {
	if c.scratchDir == "" {
		c.scratchDir = filepath.Join(dataDir, "scratch")
	}
	if err := ensureDir("scratch-dir", c.scratchDir); err != nil {
		return nil, err
	}
	in, err := ingest.Open(cat, bucket, ingest.Options{
		ScratchDir: c.scratchDir, FlushInterval: c.flushInterval, FlushBytes: int64(c.flushBytes), FlushWorkers: c.flushWorkers,
		MaxScratchBytes: int64(c.maxScratch), MaxMemoryBytes: int64(c.maxBuffer), OnFlushed: c.onFlushed,
	})
	if err != nil {
		return nil, settingError{"scratch-dir", err}
	}
	reg.MustRegister(in.Collectors()...)
	rcv := ingest.NewReceiver(in, int64(c.maxRequest))
	r := &ingestRole{in: in, http: serveHTTP("otlp-http", lns["otlp-http-addr"], rcv.Handler()), grpc: rcv.NewGRPCServer()}
	go r.grpc.Serve(lns["otlp-grpc-addr"])
	slog.Info("ingest listening", "otlp_http", r.http.addr, "otlp_grpc", lns["otlp-grpc-addr"].Addr().String(), "scratch", c.scratchDir)
	return r, nil
}

// announce serves the node's unflushed rows on mux, the admin server of
// admin, and announces that address in the catalog as an ingest node, so
// query nodes ask it at every query.
func (r *ingestRole) announce(ctx context.Context, cat catalog.Store, mux *http.ServeMux, admin net.Listener, host string) error {
	secret, err := cat.ClusterSecret(ctx)
	if err != nil {
		return settingError{"catalog-url", err}
	}
	mux.Handle("GET "+ingest.UnflushedPath, ingest.UnflushedHandler(r.in, secret))
	self := advertised(admin, host)
	r.cat, r.nodeID = cat, ingest.Role+"-"+self
	catalog.Announce(ctx, cat, catalog.Node{ID: r.nodeID, Role: ingest.Role, Address: self, StartedAt: time.Now()}, heartbeatEvery)
	return nil
}

// close stops the receivers (in-flight requests finish), then flushes
// what was acknowledged until ctx ends; the rest stays in the WAL.
func (r *ingestRole) close(ctx context.Context) error {
	stopped := make(chan struct{})
	go func() { r.grpc.GracefulStop(); close(stopped) }()
	r.http.srv.Shutdown(ctx)
	select {
	case <-stopped:
	case <-ctx.Done():
		r.grpc.Stop()
	}
	err := r.in.Close(ctx)
	if err == nil && r.cat != nil {
		// Everything is flushed: query nodes need not ask this node for
		// its rows, nor warn that it did not answer, once it is gone.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
		if lerr := r.cat.Leave(lctx, r.nodeID); lerr != nil {
			slog.Warn("shutdown: could not leave the catalog; query nodes stop asking once the heartbeat ages out", "err", lerr)
		}
	}
	if errors.Is(err, ingest.ErrLeftInWAL) {
		// Not a failure: shutdown ran out of time (or a segment would
		// not flush), and the rows are replayed by the next start. An
		// orchestrator must not take the exit for a crash.
		slog.Warn("shutdown: rows left in the WAL for the next start", "err", err)
		return nil
	}
	return err
}

// queryConfig are the query role's flags.
type queryConfig struct {
	addr         string
	pgAddr       string
	memoryLimit  string
	threads      int
	queryTimeout time.Duration
	concurrency  int
	queue        int
	maxRows      int64
}

func (c *queryConfig) register(cmd *command) {
	cmd.fs.StringVar(&c.addr, "query-addr", "127.0.0.1:8011", "`address` of the HTTP query API (POST /v1/query)")
	cmd.fs.StringVar(&c.pgAddr, "pg-addr", "127.0.0.1:5433", "`address` of the PostgreSQL wire protocol (psql, pgx, Grafana)")
	cmd.fs.StringVar(&c.memoryLimit, "query-memory-limit", "2GB", "DuckDB memory `limit`; larger queries spill to disk or fail")
	cmd.fs.IntVar(&c.threads, "query-threads", 0, "DuckDB worker `threads` (0: one per core)")
	durationVar(cmd.fs, &c.queryTimeout, "query-timeout", defaultQueryTimeout, "longest a query may run, sending its result included (`duration`)")
	cmd.fs.IntVar(&c.concurrency, "query-concurrency", 2*runtime.GOMAXPROCS(0), "queries that run at once (`n`); more wait in the queue")
	cmd.fs.IntVar(&c.queue, "query-queue", 64, "queries that may wait for a slot (`n`); beyond it a query is refused with 429")
	cmd.fs.Int64Var(&c.maxRows, "query-max-rows", 0, "most rows a query may return (`n`; 0: no limit); results stream, so this is a policy, not a memory bound: --query-timeout ends a query that sends for too long")
}

// check refuses query settings no query could run with.
func (c *queryConfig) check(string) error {
	switch {
	case c.concurrency < 1:
		return settingError{"query-concurrency", fmt.Errorf("%d: at least 1 query must be able to run", c.concurrency)}
	case c.queue < 0:
		return settingError{"query-queue", fmt.Errorf("%d is negative", c.queue)}
	case c.threads < 0:
		return settingError{"query-threads", fmt.Errorf("%d is negative: give a number of threads, or 0 for one per core", c.threads)}
	}
	return nil
}

type queryRole struct {
	db   *engine.DB
	http *httpServer
	pg   *sql.PGServer
}

func startQuery(ctx context.Context, c queryConfig, lns map[string]net.Listener, cacheDir string, cat catalog.Store, files *cache.Client, fresh sql.FreshSource, reg *prometheus.Registry) (*queryRole, error) {
	functions, err := sql.Functions()
	if err != nil {
		return nil, err
	}
	db, err := engine.Open(ctx, engine.Options{
		AllowedDirs: files.Dirs(), TempDir: filepath.Join(cacheDir, "spill"),
		MemoryLimit: c.memoryLimit, Threads: c.threads, QueryTimeout: c.queryTimeout, MaxRows: c.maxRows,
		Setup: sql.Setup, Functions: functions,
	})
	if err != nil {
		return nil, settingError{"query-memory-limit", err}
	}
	exec := sql.NewExecutor(cat, db, files, fresh, sql.NewLimiter(c.concurrency, c.queue))
	reg.MustRegister(exec.Collectors()...)
	pg, err := sql.NewPGServer(ctx, exec)
	if err != nil {
		db.Close()
		return nil, err
	}
	go pg.Serve(lns["pg-addr"])
	srv := serveHTTP("query", lns["query-addr"], exec.Handler())
	slog.Info("query listening", "http", srv.addr, "postgres", lns["pg-addr"].Addr().String())
	return &queryRole{db: db, http: srv, pg: pg}, nil
}

func (r *queryRole) close(ctx context.Context) error {
	return errors.Join(r.http.srv.Shutdown(ctx), r.pg.Close(), r.db.Close())
}
