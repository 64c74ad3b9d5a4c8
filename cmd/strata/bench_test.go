package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/bench"
)

// bench load writes a data set, strata serves it, and bench query runs the
// dashboard suite on strata and on raw DuckDB: both must agree on every
// query's row count, and the trace lookups must find the trace (or not).
func TestBench_LoadThenQuerySideBySide(t *testing.T) {
	dir := t.TempDir()
	out, stderr, code := strata(t, nil, "bench", "load", "--data-dir", dir, "--spans", "20000", "--hours", "3", "--file-rows", "8000")
	if code != 0 || !strings.Contains(out, "wrote ") {
		t.Fatalf("bench load: exit %d\n%s\n%s", code, out, stderr)
	}
	n := startNode(t, dir)
	defer n.kill()
	out, stderr, code = strata(t, nil, "bench", "query", "--data-dir", dir, "--query-url", n.queryURL,
		"--duckdb", "--runs", "3", "--concurrency", "2", "--format", "json", "--out", filepath.Join(dir, "query.json"))
	if code != 0 {
		t.Fatalf("bench query: exit %d\n%s", code, stderr)
	}
	var rep bench.QueryReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("report: %v\n%s", err, out)
	}
	suite := bench.DashboardSuite()
	if len(rep.Results) != 2*len(suite) {
		t.Fatalf("%d results, want %d (each query on strata and duckdb)\n%s", len(rep.Results), 2*len(suite), stderr)
	}
	rows := map[string]map[string]int64{}
	for _, r := range rep.Results {
		if r.Errors != 0 || r.Warm.N != 3 {
			t.Errorf("%s on %s: %d errors (%s), %d warm runs", r.Query, r.Target, r.Errors, r.Error, r.Warm.N)
		}
		if rows[r.Query] == nil {
			rows[r.Query] = map[string]int64{}
		}
		rows[r.Query][r.Target] = r.Rows
	}
	for q, byTarget := range rows {
		if byTarget["strata"] != byTarget["duckdb"] {
			t.Errorf("%s: strata %d rows, duckdb %d", q, byTarget["strata"], byTarget["duckdb"])
		}
	}
	for _, q := range []string{"error_rate_per_service_per_minute", "duration_percentiles_by_route", "trace_by_id", "trace_by_id_with_time_hint", "span_counts_by_status_24h"} {
		if rows[q]["strata"] == 0 {
			t.Errorf("%s returned no rows", q)
		}
	}
	if rows["trace_by_missing_id"]["strata"] != 0 || rows["top_20_slowest_spans"]["strata"] != 20 {
		t.Errorf("missing trace %d rows, slowest %d rows", rows["trace_by_missing_id"]["strata"], rows["top_20_slowest_spans"]["strata"])
	}
	if rows["trace_by_id"]["strata"] != rows["trace_by_id_with_time_hint"]["strata"] {
		t.Errorf("trace with hint %d rows, without %d", rows["trace_by_id_with_time_hint"]["strata"], rows["trace_by_id"]["strata"])
	}
	if d := rep.DataSet; d == nil || d.Rows < 20000 || d.RowsLastHour == 0 || d.RowsLastHour >= d.RowsLast24h || d.Bytes == 0 || d.FilterBytesPerRow == 0 {
		t.Errorf("data set %+v: want ≥ 20000 rows, some in the last hour, bytes and trace filters measured", rep.DataSet)
	}

	// The same node measured for ingest, then both reports make a plan.
	out, stderr, code = strata(t, nil, "bench", "ingest", "--endpoint", n.otlpHTTP, "--duration", "2s", "--workers", "2",
		"--metrics-url", "http://"+n.admin+"/metrics", "--out", filepath.Join(dir, "ingest.json"))
	if code != 0 || !strings.Contains(out, "object store") {
		t.Fatalf("bench ingest: exit %d\n%s\n%s", code, out, stderr)
	}
	out, stderr, code = strata(t, nil, "bench", "plan", "--profile", filepath.Join(dir, "ingest.json"), "--profile", filepath.Join(dir, "query.json"),
		"--spans-per-second", "1000000", "--retention-days", "30", "--queries-per-second", "20", "--format", "json", "--out", filepath.Join(dir, "plan.json"))
	if code != 0 {
		t.Fatalf("bench plan: exit %d\n%s", code, stderr)
	}
	var plan bench.Plan
	if err := json.Unmarshal([]byte(out), &plan); err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	nodes := map[string]float64{}
	for _, l := range plan.Nodes() {
		nodes[l.Item] = l.Value
	}
	for _, role := range []string{"ingest nodes", "query nodes", "cache nodes", "compactor nodes"} {
		if nodes[role] < 1 {
			t.Errorf("plan: %s = %v", role, nodes[role])
		}
	}
	// A run capped by --rate measures that rate, not the node: its plan
	// sizes nodes by CPU per item, near the uncapped run's count (before,
	// a 500 spans/s run asked for 1M/500 nodes); without the server's CPU
	// it is refused.
	for _, metrics := range []bool{true, false} {
		args := []string{"bench", "ingest", "--endpoint", n.otlpHTTP, "--duration", "2s", "--workers", "2", "--rate", "500", "--out", filepath.Join(dir, "capped.json")}
		if metrics {
			args = append(args, "--metrics-url", "http://"+n.admin+"/metrics")
		}
		if _, stderr, code := strata(t, nil, args...); code != 0 {
			t.Fatalf("bench ingest --rate: exit %d\n%s", code, stderr)
		}
		out, stderr, code := strata(t, nil, "bench", "plan", "--profile", filepath.Join(dir, "capped.json"), "--spans-per-second", "1000000", "--format", "json")
		if !metrics {
			if code != 1 || !strings.Contains(stderr, "capped") {
				t.Errorf("a capped profile without the server's CPU: exit %d\n%s", code, stderr)
			}
			continue
		}
		var capped bench.Plan
		if code != 0 || json.Unmarshal([]byte(out), &capped) != nil {
			t.Fatalf("plan of a capped run: exit %d\n%s", code, stderr)
		}
		for _, l := range capped.Nodes() {
			if l.Item == "ingest nodes" && l.Value > 3*nodes["ingest nodes"] {
				t.Errorf("a capped run plans %v ingest nodes, the uncapped one %v", l.Value, nodes["ingest nodes"])
			}
		}
	}
	items := map[string]bool{}
	for _, l := range plan.Lines {
		items[l.Item] = true
		measured := l.Unit == "nodes" || l.Item == "object storage" || l.Item == "scratch SSD per ingest node"
		if l.From == "" || measured && !strings.Contains(l.From, ".json") && !strings.Contains(l.From, "RESULTS.md") {
			t.Errorf("plan line %q does not say which measurement it comes from: %q", l.Item, l.From)
		}
	}
	for _, want := range []string{"scratch SSD per ingest node", "cache SSD per node", "object storage", "object store PUTs", "object store GETs", "catalog size"} {
		if !items[want] {
			t.Errorf("plan has no %q", want)
		}
	}
	if len(plan.Queries) != len(suite) {
		t.Errorf("plan costs %d queries, want %d", len(plan.Queries), len(suite))
	}
	for _, f := range []string{"query.html", "ingest.html", "plan.html"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !bytes.Contains(b, []byte("<svg")) {
			t.Errorf("%s: %v, %d bytes, want an HTML report with charts", f, err, len(b))
		}
	}
	// A query that fails is reported as failed, not as 0 ms, and the run
	// exits non-zero (QA: exit 0, a 0.0 ms bar).
	extra := filepath.Join(dir, "extra.sql")
	if err := os.WriteFile(extra, []byte("-- name: bad\nSELECT nope FROM records\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = strata(t, nil, "bench", "query", "--data-dir", dir, "--query-url", n.queryURL, "--runs", "1",
		"--only", "bad", "--sql-file", extra, "--format", "text")
	if code != 1 || !regexp.MustCompile(`(?m)^bad\s+strata\s+-\s+failed`).MatchString(out) || !strings.Contains(stderr, "1 of 1 results had errors") {
		t.Errorf("a failing query: exit %d\n%s\n%s", code, out, stderr)
	}
}

// sink is a running 'strata bench sink' (decoding with pdata).
type sink struct {
	cmd        *exec.Cmd
	http, grpc string
	stdout     *bytes.Buffer
	stderr     *lockedBuffer
}

// lockedBuffer is a buffer a child process writes while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startSink(t *testing.T) *sink {
	t.Helper()
	// A port picked free may be taken before the sink binds it: try again.
	for range 5 {
		s := &sink{http: freeAddr(t), grpc: freeAddr(t), stdout: &bytes.Buffer{}, stderr: &lockedBuffer{}}
		s.cmd = exec.Command(strataBin, "bench", "sink", "--otlp-http-addr", s.http, "--otlp-grpc-addr", s.grpc, "--quiet")
		s.cmd.Env = cleanEnv()
		s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
		if err := s.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for range 100 {
			if c, err := net.Dial("tcp", s.grpc); err == nil {
				c.Close()
				t.Cleanup(func() { s.cmd.Process.Kill() })
				return s
			}
			if strings.Contains(s.stderr.String(), "address already in use") {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !strings.Contains(s.stderr.String(), "address already in use") {
			s.cmd.Process.Kill()
			t.Fatalf("sink did not start:\n%s", s.stderr)
		}
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
	t.Fatal("sink did not start: its ports were taken five times")
	return nil
}

// stop interrupts the sink and returns the totals it printed.
func (s *sink) stop(t *testing.T) (spans, logs, points int64) {
	t.Helper()
	s.cmd.Process.Signal(os.Interrupt)
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("sink: %v\n%s", err, s.stderr)
	}
	var req int64
	var mib, secs float64
	last := s.stdout.String()[strings.LastIndex(strings.TrimSpace(s.stdout.String()), "\n")+1:]
	if _, err := fmt.Sscanf(last, "sink: %d requests, %f MiB, %d spans, %d log records, %d points in %fs", &req, &mib, &spans, &logs, &points, &secs); err != nil {
		t.Fatalf("sink totals %q: %v", last, err)
	}
	return spans, logs, points
}

// Every item bench ingest counts as acknowledged arrived at the receiver,
// over both protocols and for all three signals; the reports are written.
func TestBench_IngestCountsWhatTheReceiverGot(t *testing.T) {
	s := startSink(t)
	dir := t.TempDir()
	var want bench.Counts
	var logs, points int64
	for _, proto := range []string{"http", "grpc"} {
		ep := map[string]string{"http": s.http, "grpc": s.grpc}[proto] // host:port for both
		out, stderr, code := strata(t, nil, "bench", "ingest", "--protocol", proto, "--endpoint", ep, "--duration", "2s", "--workers", "4",
			"--logs-per-span", "0.5", "--metrics-per-service", "2", "--format", "json", "--out", filepath.Join(dir, proto+".json"))
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", proto, code, stderr)
		}
		var rep bench.IngestReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatal(err)
		}
		if rep.Spans.Acked == 0 || rep.Logs.Acked == 0 || rep.Points.Acked == 0 || rep.Spans.Failed+rep.Spans.Refused != 0 {
			t.Errorf("%s: spans %+v logs %+v points %+v", proto, rep.Spans, rep.Logs, rep.Points)
		}
		if rep.Kind != "ingest" || rep.Machine.Cores == 0 || len(rep.Timeline) == 0 || len(rep.AckHistogram) == 0 || rep.WireBytes == 0 {
			t.Errorf("%s: report lacks kind, machine, timeline, histogram or bytes: %+v", proto, rep)
		}
		want.Acked += rep.Spans.Acked
		logs += rep.Logs.Acked
		points += rep.Points.Acked
		if b, err := os.ReadFile(filepath.Join(dir, proto+".html")); err != nil || !bytes.Contains(b, []byte("Throughput over time")) {
			t.Errorf("%s: HTML report: %v", proto, err)
		}
	}
	gotSpans, gotLogs, gotPoints := s.stop(t)
	if gotSpans != want.Acked || gotLogs != logs || gotPoints != points {
		t.Errorf("receiver got %d spans, %d logs, %d points; bench counted %d, %d, %d acknowledged", gotSpans, gotLogs, gotPoints, want.Acked, logs, points)
	}
}

// Ctrl-C ends a run early with the partial summary.
func TestBench_IngestInterruptedPrintsPartialSummary(t *testing.T) {
	s := startSink(t)
	cmd := exec.Command(strataBin, "bench", "ingest", "--endpoint", "http://"+s.http, "--duration", "5m", "--workers", "2")
	cmd.Env = cleanEnv()
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, errOut.String())
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatal("bench ingest did not stop within 20s of Ctrl-C")
	}
	var acked int64
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "spans" {
			acked, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if !strings.Contains(out.String(), "interrupted — partial results") || acked == 0 {
		t.Errorf("want a partial summary with acknowledged spans:\n%s", out.String())
	}
	if got, _, _ := s.stop(t); got != acked {
		t.Errorf("receiver got %d spans, the summary says %d acknowledged", got, acked)
	}
}

func TestBench_BadInput(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "load", "--spans", "-5"},
		{"bench", "load", "--hours", "0"},
		{"bench", "load", "--end", "yesterday"},
		{"bench", "query", "--runs", "0"},
		{"bench", "query", "--format", "xml"},
		{"bench", "query", "--frobnicate"},
		{"bench", "ingest", "--rate", "-5"},
		{"bench", "ingest", "--workers", "0"},
		{"bench", "ingest", "--protocol", "carrier-pigeon"},
		{"bench", "ingest", "--format", "xml"},
		{"bench", "sink", "--frobnicate"},
		{"bench", "plan", "--spans-per-second", "1000"},
		{"bench", "plan", "--profile", "x.json", "--spans-per-second", "-5"},
		{"bench", "plan", "--profile", "x.json", "--spans-per-second", "1000", "--utilization", "2"},
		{"bench", "plan", "--profile", "x.json", "--spans-per-second", "1000", "--retention-days", "0"},
		{"bench", "plan", "--profile", "x.json"},
		{"bench", "frobnicate"},
	} {
		if args[1] == "load" || args[1] == "query" {
			args = append(args, "--data-dir", t.TempDir())
		}
		_, stderr, code := strata(t, nil, args...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") > 1 || strings.Contains(stderr, "data-dir") {
			t.Errorf("%v: exit %d, want 2 with one clear line:\n%s", args, code, stderr)
		}
		t.Logf("%v: %s", args, strings.TrimSpace(stderr))
	}
	_, stderr, code := strata(t, nil, "bench", "query", "--query-url", "http://"+freeAddr(t), "--runs", "1")
	if code != 1 || !strings.Contains(stderr, "connect") {
		t.Errorf("unreachable endpoint: exit %d\n%s", code, stderr)
	}
	_, stderr, code = strata(t, nil, "bench", "ingest", "--endpoint", "http://"+freeAddr(t), "--duration", "1s")
	if code != 1 || !strings.Contains(stderr, "unreachable") {
		t.Errorf("unreachable OTLP endpoint: exit %d\n%s", code, stderr)
	}
	// A server that answers every export with 404: exit 1 with its answer.
	notOTLP := httptest.NewServer(http.NotFoundHandler())
	defer notOTLP.Close()
	_, stderr, code = strata(t, nil, "bench", "ingest", "--endpoint", notOTLP.URL, "--duration", "1s", "--rate", "100", "--workers", "1")
	if code != 1 || !strings.Contains(stderr, "every export failed") || !strings.Contains(stderr, "404 page not found") {
		t.Errorf("an endpoint that fails every export: exit %d\n%s", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"kind": "holiday"}`), 0o644)
	for _, profile := range []string{bad, filepath.Join(t.TempDir(), "missing.json")} {
		_, stderr, code = strata(t, nil, "bench", "plan", "--profile", profile, "--spans-per-second", "1000")
		if code != 1 || strings.Count(strings.TrimSpace(stderr), "\n") > 0 || !strings.Contains(stderr, filepath.Base(profile)) {
			t.Errorf("profile %s: exit %d, want 1 with one line naming it:\n%s", profile, code, stderr)
		}
	}
}
