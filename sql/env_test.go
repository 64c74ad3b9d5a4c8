package sql_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/objstore"
	"github.com/strata-db/strata/sql"
)

// env is an ingester and a query executor over one catalog and object
// store, all real, in this process.
type env struct {
	t      *testing.T
	cat    catalog.Store
	bucket *objstore.Bucket
	in     *ingest.Ingester
	rcv    *ingest.Receiver
	db     *engine.DB
	exec   *sql.Executor
	dir    string
}

type envOptions struct {
	flushInterval time.Duration
	queryTimeout  time.Duration
	limiter       *sql.Limiter
	noFresh       bool
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.OpenSQLite(ctx, filepath.Join(dir, "catalog.db"), catalog.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bucket, err := objstore.Open(ctx, "file://"+filepath.Join(dir, "objects"))
	if err != nil {
		t.Fatal(err)
	}
	if o.flushInterval == 0 {
		o.flushInterval = 20 * time.Millisecond
	}
	in, err := ingest.Open(cat, bucket, ingest.Options{ScratchDir: filepath.Join(dir, "wal"), FlushInterval: o.flushInterval})
	if err != nil {
		t.Fatal(err)
	}
	local, err := cache.NewClient(bucket, cache.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	functions, err := sql.Functions()
	if err != nil {
		t.Fatal(err)
	}
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: local.Dirs(), TempDir: filepath.Join(dir, "spill"),
		QueryTimeout: o.queryTimeout, MemoryLimit: "1GB", Setup: sql.Setup, Functions: functions})
	if err != nil {
		t.Fatal(err)
	}
	var fresh sql.FreshSource = in
	if o.noFresh {
		fresh = nil
	}
	e := &env{t: t, cat: cat, bucket: bucket, in: in, rcv: ingest.NewReceiver(in, 0), db: db,
		exec: sql.NewExecutor(cat, db, local, fresh, o.limiter), dir: dir}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		in.Close(cctx)
		db.Close()
		bucket.Close()
		cat.Close()
	})
	return e
}

// span is a test span; zero fields get defaults.
type span struct {
	service, name, traceID, route string
	start                         time.Time
	dur                           time.Duration
	status                        ptrace.StatusCode
}

var spanSeq uint64

func (e *env) send(spans ...span) {
	e.t.Helper()
	td := ptrace.NewTraces()
	for _, s := range spans {
		rs := td.ResourceSpans().AppendEmpty()
		svc := s.service
		if svc == "" {
			svc = "api"
		}
		rs.Resource().Attributes().PutStr("service.name", svc)
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		tid := s.traceID
		if tid == "" {
			tid = fmt.Sprintf("%032x", spanSeq+1<<60)
		}
		var t [16]byte
		hex.Decode(t[:], []byte(tid))
		sp.SetTraceID(t)
		spanSeq++
		var sid [8]byte
		binary.BigEndian.PutUint64(sid[:], spanSeq)
		sp.SetSpanID(sid)
		name := s.name
		if name == "" {
			name = "GET /"
		}
		sp.SetName(name)
		start := s.start
		if start.IsZero() {
			start = time.Now()
		}
		dur := s.dur
		if dur == 0 {
			dur = time.Millisecond
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(dur)))
		sp.Status().SetCode(s.status)
		if s.route != "" {
			sp.Attributes().PutStr("http.route", s.route)
		}
	}
	if err := e.rcv.Traces(context.Background(), td); err != nil {
		e.t.Fatal(err)
	}
}

// flushed waits until every acknowledged row is in a file.
func (e *env) flushed() {
	e.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if e.in.Stats().UnflushedRows == 0 {
			return
		}
	}
	e.t.Fatal("not flushed in 20s")
}

type response struct {
	status  int
	Columns []struct{ Name, Type string }
	Rows    [][]any
	Stats   sql.Stats
	Error   string
	header  http.Header
	body    string
}

// do sends a query request to the HTTP API.
func (e *env) do(method string, body any, accept string) *response {
	e.t.Helper()
	var req *http.Request
	if method == "GET" {
		req = httptest.NewRequest("GET", "/v1/query?"+body.(string), nil)
	} else {
		b, _ := json.Marshal(body)
		req = httptest.NewRequest("POST", "/v1/query", bytes.NewReader(b))
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	e.exec.Handler().ServeHTTP(rec, req)
	res := rec.Result()
	r := &response{status: rec.Code, header: res.Header.Clone(), body: rec.Body.String()}
	for k, v := range res.Trailer {
		r.header[k] = v
	}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		dec := json.NewDecoder(strings.NewReader(r.body))
		dec.UseNumber()
		if err := dec.Decode(r); err != nil {
			e.t.Fatalf("response is not JSON: %v\n%s", err, r.body)
		}
	}
	return r
}

// query runs SQL and fails the test on an error.
func (e *env) query(q string) *response {
	e.t.Helper()
	r := e.do("POST", map[string]any{"sql": q}, "")
	if r.status != 200 || r.Error != "" {
		e.t.Fatalf("%s: %d %s", q, r.status, r.Error)
	}
	return r
}

func (e *env) count(q string) int64 {
	e.t.Helper()
	n, _ := e.query(q).Rows[0][0].(json.Number).Int64()
	return n
}
