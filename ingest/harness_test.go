package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/objstore"
	"github.com/strata-db/strata/sql"
)

// stack is a running ingest node with its catalog, object store and a
// query executor over what it flushed, all real, in this process.
type stack struct {
	t        *testing.T
	cat      catalog.Store
	bucket   *objstore.Bucket
	in       *ingest.Ingester
	rcv      *ingest.Receiver
	httpURL  string
	grpcAddr string
	exec     *sql.Executor
	scratch  string
	opts     ingest.Options
	stop     func()
}

type stackOptions struct {
	catalogURL string // default: SQLite in a temp dir
	schema     string // PostgreSQL schema
	bucketURL  string // default: file:// in a temp dir
	ingest     ingest.Options
	maxRequest int64
}

func newStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if o.catalogURL == "" {
		o.catalogURL = filepath.Join(dir, "catalog.db")
	}
	if o.bucketURL == "" {
		o.bucketURL = "file://" + filepath.Join(dir, "objects")
	}
	cat, err := catalog.Open(ctx, o.catalogURL, catalog.Options{Schema: o.schema})
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := objstore.Open(ctx, o.bucketURL)
	if err != nil {
		t.Fatal(err)
	}
	store, err := cache.OpenStore(filepath.Join(dir, "cache"), 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	local, err := cache.NewClient(bucket, cache.ClientOptions{Node: &cache.Node{Store: store, Bucket: bucket, Catalog: cat, M: cache.NewMetrics()}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: local.Dirs(), TempDir: filepath.Join(dir, "spill")})
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, cat: cat, bucket: bucket, scratch: filepath.Join(dir, "scratch"),
		exec: sql.NewExecutor(cat, db, local, nil, nil)}
	if o.ingest.ScratchDir == "" {
		o.ingest.ScratchDir = s.scratch
	}
	s.opts = o.ingest
	s.startIngest(o.maxRequest)
	t.Cleanup(func() {
		s.stop()
		db.Close()
		bucket.Close()
		cat.Close()
	})
	return s
}

// startIngest opens the ingester and its HTTP and gRPC receivers.
func (s *stack) startIngest(maxRequest int64) {
	s.t.Helper()
	in, err := ingest.Open(s.cat, s.bucket, s.opts)
	if err != nil {
		s.t.Fatal(err)
	}
	s.in = in
	s.rcv = ingest.NewReceiver(in, maxRequest)
	hs := httptest.NewServer(s.rcv.Handler())
	s.httpURL = hs.URL
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	gs := s.rcv.NewGRPCServer()
	go gs.Serve(ln)
	s.grpcAddr = ln.Addr().String()
	var stopped bool
	s.stop = func() {
		if stopped {
			return
		}
		stopped = true
		hs.Close()
		stopGRPC(gs)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in.Close(ctx)
	}
}

func stopGRPC(gs *grpc.Server) {
	done := make(chan struct{})
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		gs.Stop()
	}
}

// waitFlushed waits until everything acknowledged is in the catalog.
func (s *stack) waitFlushed() {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		st := s.in.Stats()
		if st.UnflushedRows == 0 {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatalf("not flushed within 30s: %+v", s.in.Stats())
}

// query runs SQL through the HTTP query API and returns rows as JSON values.
func (s *stack) query(q string) [][]any {
	s.t.Helper()
	cols, rows, err := s.tryQuery(q)
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	_ = cols
	return rows
}

func (s *stack) tryQuery(q string) ([]string, [][]any, error) {
	body, _ := json.Marshal(map[string]string{"sql": q})
	req := httptest.NewRequest("POST", "/v1/query", bytes.NewReader(body))
	rec := httptest.NewRecorder()
	s.exec.Handler().ServeHTTP(rec, req)
	var out struct {
		Columns []struct{ Name, Type string }
		Rows    [][]any
		Error   string
	}
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	if err := dec.Decode(&out); err != nil {
		return nil, nil, fmt.Errorf("decode %q: %w", rec.Body.String(), err)
	}
	if rec.Code != http.StatusOK || out.Error != "" {
		return nil, nil, fmt.Errorf("status %d: %s", rec.Code, out.Error)
	}
	cols := make([]string, len(out.Columns))
	for i, c := range out.Columns {
		cols[i] = c.Name
	}
	return cols, out.Rows, nil
}

// row runs a query expected to return exactly one row, as a map.
func (s *stack) row(q string) map[string]any {
	s.t.Helper()
	cols, rows, err := s.tryQuery(q)
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	if len(rows) != 1 {
		s.t.Fatalf("%s: %d rows, want 1: %v", q, len(rows), rows)
	}
	m := map[string]any{}
	for i, c := range cols {
		m[c] = rows[0][i]
	}
	return m
}

func (s *stack) count(q string) int64 {
	s.t.Helper()
	rows := s.query(q)
	n, err := rows[0][0].(json.Number).Int64()
	if err != nil {
		s.t.Fatalf("%s: %v", q, err)
	}
	return n
}

// grpcConn is a gRPC client connection to the node, closed when the test
// ends.
func (s *stack) grpcConn() *grpc.ClientConn {
	s.t.Helper()
	conn, err := grpc.NewClient(s.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { conn.Close() })
	return conn
}

func (s *stack) httpClient() *http.Client { return &http.Client{Timeout: 10 * time.Second} }
