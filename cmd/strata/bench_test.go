package main_test

import (
	"encoding/json"
	"strings"
	"testing"

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
		"--duckdb", "--runs", "3", "--concurrency", "2", "--format", "json")
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
}

func TestBench_BadInput(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "load", "--spans", "-5"},
		{"bench", "load", "--hours", "0"},
		{"bench", "load", "--end", "yesterday"},
		{"bench", "query", "--runs", "0"},
		{"bench", "query", "--format", "xml"},
		{"bench", "query", "--frobnicate"},
	} {
		_, stderr, code := strata(t, nil, append(args, "--data-dir", t.TempDir())...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") > 1 {
			t.Errorf("%v: exit %d, want 2 with one clear line:\n%s", args, code, stderr)
		}
	}
	_, stderr, code := strata(t, nil, "bench", "query", "--query-url", "http://"+freeAddr(t), "--runs", "1")
	if code != 1 || !strings.Contains(stderr, "connect") {
		t.Errorf("unreachable endpoint: exit %d\n%s", code, stderr)
	}
}
