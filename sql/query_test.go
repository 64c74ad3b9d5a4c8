package sql_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/sql"
)

func num(v any) int64 {
	n, _ := v.(json.Number).Int64()
	return n
}

func TestQuery_FormatsAndStats(t *testing.T) {
	e := newEnv(t, envOptions{})
	for i := range 5 {
		e.send(span{name: fmt.Sprintf("op-%d", i), route: "/r", service: "svc"})
	}
	e.flushed()
	q := "SELECT span_name, http_route, start_timestamp, duration, attributes FROM records ORDER BY span_name"
	j := e.do("POST", map[string]any{"sql": q}, "application/json")
	if j.status != 200 || len(j.Rows) != 5 || j.Rows[0][0] != "op-0" || j.Rows[0][1] != "/r" {
		t.Fatalf("json: %d %v %s", j.status, j.Rows, j.Error)
	}
	if len(j.Columns) != 5 || j.Columns[2].Type != "TIMESTAMP WITH TIME ZONE" || j.Columns[3].Type != "DOUBLE" || j.Columns[4].Type != "JSON" {
		t.Errorf("columns: %+v", j.Columns)
	}
	// JSON columns are embedded as JSON, not as strings holding JSON;
	// DuckDB's JSON that JSON does not allow goes out as a string.
	if attrs, ok := j.Rows[0][4].(map[string]any); !ok || attrs["http.route"] != "/r" {
		t.Errorf("attributes in JSON: %#v", j.Rows[0][4])
	}
	odd := e.do("POST", map[string]any{"sql": `SELECT to_json('nan'::DOUBLE) AS a, json_object('x', 'inf'::DOUBLE) AS b, '[1,2,]'::JSON AS c`}, "application/json")
	if odd.status != 200 || fmt.Sprint(odd.Rows) != `[[NaN {"x":Infinity} [1,2,]]]` {
		t.Errorf("DuckDB's JSON beyond JSON: %d %v %s", odd.status, odd.Rows, odd.Error)
	}
	if j.Stats.FilesScanned < 1 || j.Stats.Rows != 5 || j.Stats.BytesScanned == 0 {
		t.Errorf("stats: %+v", j.Stats)
	}
	c := e.do("POST", map[string]any{"sql": q}, "text/csv")
	recs, err := csv.NewReader(strings.NewReader(c.body)).ReadAll()
	if err != nil || len(recs) != 6 || recs[0][0] != "span_name" || recs[1][0] != "op-0" || recs[1][4] != `{"http.route":"/r"}` {
		t.Fatalf("csv: %v %v\n%s", err, recs, c.body)
	}
	if !strings.Contains(c.header.Get("X-Strata-Stats"), `"rows":5`) {
		t.Errorf("csv stats trailer: %q", c.header.Get("X-Strata-Stats"))
	}
	a := e.do("POST", map[string]any{"sql": q, "limit": 3}, "application/vnd.apache.arrow.stream")
	rdr, err := ipc.NewReader(strings.NewReader(a.body))
	if err != nil {
		t.Fatalf("arrow: %v", err)
	}
	var rows int64
	for rdr.Next() {
		rows += rdr.RecordBatch().NumRows()
	}
	if rows != 3 || rdr.Schema().NumFields() != 5 {
		t.Fatalf("arrow stream: %d rows, %d columns", rows, rdr.Schema().NumFields())
	}
	// Column types as DuckDB names them.
	typed := e.do("POST", map[string]any{"sql": `SELECT INTERVAL 1 DAY AS i, MAP {'a': 1} AS m, [1, 2]::INTEGER[2] AS a,
		'x'::ENUM('x', 'y') AS e, TIME '10:00' AS t`}, "application/json")
	var types []string
	for _, c := range typed.Columns {
		types = append(types, c.Type)
	}
	if got := strings.Join(types, ", "); got != "INTERVAL, MAP(VARCHAR, INTEGER), INTEGER[2], VARCHAR, TIME" {
		t.Errorf("column types: %s (%s)", got, typed.Error)
	}
	// Intervals as PostgreSQL writes them, in JSON and CSV alike.
	iv := "SELECT INTERVAL '1 day 2 hours' AS a, TIMESTAMP '2026-01-01 00:00:28.541861' - TIMESTAMP '2026-01-01' AS b, INTERVAL '-14 months' AS c"
	if j := e.do("POST", map[string]any{"sql": iv}, "application/json"); fmt.Sprint(j.Rows) != "[[1 day 02:00:00 00:00:28.541861 -1 years -2 mons]]" {
		t.Errorf("intervals in JSON: %v %s", j.Rows, j.Error)
	}
	if c := e.do("POST", map[string]any{"sql": iv}, "text/csv"); c.body != "a,b,c\n1 day 02:00:00,00:00:28.541861,-1 years -2 mons\n" {
		t.Errorf("intervals in CSV: %q", c.body)
	}
	// Decimals, and HUGEINT (sent by DuckDB as a 38-digit decimal), exactly.
	dec := "SELECT 170141183460469231731687303715884105727::HUGEINT AS h, 12.345::DECIMAL(10,3) AS d, -0.05::DECIMAL(4,2) AS n"
	if j := e.do("POST", map[string]any{"sql": dec}, "application/json"); fmt.Sprint(j.Rows) != "[[170141183460469231731687303715884105727 12.345 -0.05]]" {
		t.Errorf("decimals in JSON: %v %s", j.Rows, j.Error)
	}
	if c := e.do("POST", map[string]any{"sql": dec}, "text/csv"); c.body != "h,d,n\n170141183460469231731687303715884105727,12.345,-0.05\n" {
		t.Errorf("decimals in CSV: %q", c.body)
	}
	// Infinities as PostgreSQL writes them, in JSON and CSV alike.
	inf := "SELECT DATE 'infinity' AS d, TIMESTAMP '-infinity' AS ts, TIMESTAMPTZ 'infinity' AS tz, 'Infinity'::DOUBLE AS f"
	if j := e.do("POST", map[string]any{"sql": inf}, "application/json"); fmt.Sprint(j.Rows) != "[[infinity -infinity infinity Infinity]]" {
		t.Errorf("infinities in JSON: %v %s", j.Rows, j.Error)
	}
	if c := e.do("POST", map[string]any{"sql": inf}, "text/csv"); c.body != "d,ts,tz,f\ninfinity,-infinity,infinity,Infinity\n" {
		t.Errorf("infinities in CSV: %q", c.body)
	}
	// Floats as PostgreSQL's COPY writes them (review: 1.234567e+06).
	fl := "SELECT 1234567.0::DOUBLE AS a, 0.000012::DOUBLE AS b, 1e20::DOUBLE AS c, 2.5::FLOAT AS d"
	if c := e.do("POST", map[string]any{"sql": fl}, "text/csv"); c.body != "a,b,c,d\n1234567,1.2e-05,1e+20,2.5\n" {
		t.Errorf("floats in CSV: %q", c.body)
	}
	// NULL and the empty string differ, as in PostgreSQL's CSV.
	nulls := `SELECT NULL::VARCHAR AS a, '' AS b, 'x,"y"' AS c, 'line' || chr(10) || 'two' AS d`
	if c := e.do("POST", map[string]any{"sql": nulls}, "text/csv"); c.body != "a,b,c,d\n,\"\",\"x,\"\"y\"\"\",\"line\ntwo\"\n" {
		t.Errorf("NULL and '' in CSV: %q", c.body)
	}
	g := e.do("GET", "sql="+url.QueryEscape("SELECT count(*) FROM records")+"&limit=10", "")
	if g.status != 200 || num(g.Rows[0][0]) != 5 {
		t.Fatalf("GET: %d %v %s", g.status, g.Rows, g.Error)
	}
	// Over HTTP a function's alias in FROM is DuckDB's: the row (the
	// Postgres protocol names the column after it, as PostgreSQL does).
	if r := e.do("POST", map[string]any{"sql": "SELECT e.generate_series AS v FROM generate_series(1, 2) AS e"}, ""); r.status != 200 || len(r.Rows) != 2 {
		t.Errorf("a function's alias over HTTP: %d %v %s", r.status, r.Rows, r.Error)
	}
	// HEAD answers as GET does, without the body (QA: 400, read as a POST).
	rec := httptest.NewRecorder()
	e.exec.Handler().ServeHTTP(rec, httptest.NewRequest("HEAD", "/v1/query?sql="+url.QueryEscape("SELECT 1"), nil))
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("HEAD: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
}

func TestQuery_PruningByTimeAndTraceID(t *testing.T) {
	e := newEnv(t, envOptions{})
	now := time.Now().UTC()
	old := now.Add(-48 * time.Hour)
	yesterday := now.Add(-24 * time.Hour)
	e.send(span{name: "old", start: old, traceID: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"})
	e.flushed()
	e.send(span{name: "yesterday", start: yesterday, traceID: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"})
	e.flushed()
	e.send(span{name: "now", start: now, traceID: "cccccccccccccccccccccccccccccccc"})
	e.flushed()

	cases := []struct {
		name    string
		req     map[string]any
		rows    int64
		scanned int
	}{
		{"no bound", map[string]any{"sql": "SELECT count(*) FROM records"}, 3, 3},
		{"now() - interval", map[string]any{"sql": "SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 1 HOUR"}, 1, 1},
		{"flipped comparison", map[string]any{"sql": "SELECT count(*) FROM records WHERE now() - INTERVAL '2 hours' <= start_timestamp"}, 1, 1},
		{"between literals", map[string]any{"sql": fmt.Sprintf("SELECT count(*) FROM records WHERE start_timestamp BETWEEN '%s' AND '%s'",
			yesterday.Add(-time.Minute).Format(time.RFC3339), yesterday.Add(time.Minute).Format(time.RFC3339))}, 1, 1},
		{"upper bound", map[string]any{"sql": fmt.Sprintf("SELECT count(*) FROM records WHERE start_timestamp < TIMESTAMPTZ '%s'",
			old.Add(time.Hour).Format(time.RFC3339))}, 1, 1},
		{"alias", map[string]any{"sql": "SELECT count(*) FROM records r WHERE r.start_timestamp >= now() - INTERVAL 1 HOUR"}, 1, 1},
		{"params", map[string]any{"sql": "SELECT count(*) FROM records",
			"min_timestamp": yesterday.Add(-time.Minute).Format(time.RFC3339), "max_timestamp": now.Add(-time.Hour).Format(time.RFC3339)}, 1, 1},
		{"two readings, both bounded: hull", map[string]any{"sql": `SELECT (SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 1 HOUR)
			+ (SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 30 HOUR)`}, 3, 2},
		{"two readings, one unbounded: no pruning", map[string]any{"sql": `SELECT (SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 1 HOUR)
			+ (SELECT count(*) FROM records)`}, 4, 3},
		{"OR is not pruned", map[string]any{"sql": "SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 1 HOUR OR span_name = 'old'"}, 2, 3},
		{"trace id", map[string]any{"sql": "SELECT count(*) FROM records WHERE trace_id = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb'"}, 1, 1},
		{"trace ids IN", map[string]any{"sql": "SELECT count(*) FROM records WHERE trace_id IN ('aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', 'cccccccccccccccccccccccccccccccc')"}, 2, 2},
		{"missing trace id", map[string]any{"sql": "SELECT count(*) FROM records WHERE trace_id = 'dddddddddddddddddddddddddddddddd'"}, 0, 0},
		// Readings the pruner cannot bound read every file: the source of
		// an UNPIVOT, and a reference whose columns are renamed (the
		// bare name is then another FROM item's, or the outer query's).
		{"unpivot", map[string]any{"sql": `SELECT (SELECT count(*) FROM (UNPIVOT records ON span_name, kind INTO NAME k VALUE v))
			+ (SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 1 HOUR)`}, 7, 3},
		{"renamed columns", map[string]any{"sql": `SELECT count(*) FROM records r(p, st), (SELECT TIMESTAMPTZ '2000-01-01 00:00:00+00' AS start_timestamp) o
			WHERE start_timestamp < '2001-01-01'`}, 3, 3},
		{"renamed columns, outer name", map[string]any{"sql": `SELECT count(*) FROM (SELECT TIMESTAMPTZ '2000-01-01 00:00:00+00' AS start_timestamp) o
			WHERE EXISTS (SELECT 1 FROM records r(p, st) WHERE start_timestamp < '2001-01-01')`}, 1, 3},
		// Sampled or positionally joined readings depend on every row.
		{"tablesample", map[string]any{"sql": `SELECT count(*) FROM records TABLESAMPLE reservoir(2 ROWS) REPEATABLE (1) WHERE start_timestamp > now() - INTERVAL 1 HOUR`}, 1, 3},
		{"positional join", map[string]any{"sql": `SELECT count(*) FROM records a POSITIONAL JOIN (SELECT 1 AS x) b WHERE b.x = 1 AND a.start_timestamp > now() - INTERVAL 1 HOUR`}, 0, 3},
		{"trace id with time hint", map[string]any{"sql": "SELECT count(*) FROM records WHERE trace_id = 'cccccccccccccccccccccccccccccccc' AND start_timestamp > now() - INTERVAL 1 HOUR"}, 1, 1},
	}
	for _, tc := range cases {
		r := e.do("POST", tc.req, "")
		if r.status != 200 {
			t.Errorf("%s: %d %s", tc.name, r.status, r.Error)
			continue
		}
		if got := num(r.Rows[0][0]); got != tc.rows || r.Stats.FilesScanned != tc.scanned ||
			r.Stats.FilesScanned+r.Stats.FilesPruned != 3 {
			t.Errorf("%s: %d rows, %d files scanned, %d pruned; want %d rows, %d scanned", tc.name, got,
				r.Stats.FilesScanned, r.Stats.FilesPruned, tc.rows, tc.scanned)
		}
	}
}

// A bound that calls a volatile function is not computed ahead of the
// query, which would get another value: such a query reads every file.
func TestQuery_VolatileBoundsDoNotPrune(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(span{start: time.Now().Add(-48 * time.Hour)})
	e.flushed()
	e.send(span{})
	e.flushed()
	q := `SELECT count(*) FROM records WHERE start_timestamp > CASE WHEN random() < 0.5
		THEN TIMESTAMPTZ '2100-01-01 00:00:00+00' ELSE TIMESTAMPTZ '2000-01-01 00:00:00+00' END`
	for range 10 {
		if r := e.do("POST", map[string]any{"sql": q}, ""); r.status != 200 || r.Stats.FilesScanned != 2 {
			t.Fatalf("%d, %s: %d files scanned, want both", r.status, r.Error, r.Stats.FilesScanned)
		}
	}
}

func TestQuery_FreshRowsAreVisibleBeforeFlushAndNeverTwice(t *testing.T) {
	e := newEnv(t, envOptions{flushInterval: time.Hour})
	for i := range 10 {
		e.send(span{name: fmt.Sprintf("fresh-%d", i)})
	}
	r := e.query("SELECT count(*) FROM records")
	if num(r.Rows[0][0]) != 10 || r.Stats.FreshRows != 10 || r.Stats.FilesScanned != 0 {
		t.Fatalf("before flush: %v rows, stats %+v", r.Rows, r.Stats)
	}
	// While the data moves from the WAL to a file, every query sees it
	// exactly once.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if n := e.count("SELECT count(*) FROM records"); n != 10 {
				t.Errorf("during flush: %d rows, want 10", n)
				return
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.in.Close(ctx); err != nil { // flushes everything
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	close(stop)
	wg.Wait()
	r = e.query("SELECT count(*) FROM records")
	if num(r.Rows[0][0]) != 10 || r.Stats.FreshRows != 0 || r.Stats.FilesScanned != 1 {
		t.Fatalf("after flush: %v rows, stats %+v", r.Rows, r.Stats)
	}
}

func TestQuery_FreshRowsAreFilteredLikeFilesAndReadWhole(t *testing.T) {
	e := newEnv(t, envOptions{flushInterval: time.Hour})
	now := time.Now()
	trace := "0123456789abcdef0123456789abcdef"
	for i := range 20 {
		s := span{name: fmt.Sprintf("op-%d", i), route: "/r", start: now.Add(-time.Duration(i) * 5 * time.Minute)}
		if i%4 == 0 {
			s.traceID = trace
		}
		e.send(s)
	}
	queries := map[string]int64{
		"SELECT count(*) FROM records WHERE trace_id = '" + trace + "'":                                                  5,
		"SELECT count(*) FROM records WHERE trace_id = '" + strings.ToUpper(trace) + "'":                                 0,
		"SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 31 MINUTE":                                7,
		"SELECT count(*) FROM records WHERE trace_id = '" + trace + "' AND start_timestamp > now() - INTERVAL 31 MINUTE": 2,
		// Two readings: the fresh rows copied must serve both.
		"SELECT (SELECT count(*) FROM records WHERE trace_id = '" + trace + "') + (SELECT count(*) FROM records)": 25,
	}
	check := func(when string) {
		t.Helper()
		for q, want := range queries {
			if got := e.count(q); got != want {
				t.Errorf("%s: %s: %d rows, want %d", when, q, got, want)
			}
		}
	}
	check("fresh")
	// Queries that read some columns get only those of the fresh rows;
	// their answers must not change when the rows move to a file.
	same := []string{
		"SELECT service_name, span_name, count(*) FROM records GROUP BY ALL ORDER BY ALL",
		"SELECT to_json(r) j FROM records r ORDER BY j",
		"SELECT a.span_name FROM records a JOIN records b USING (span_id) ORDER BY 1",
		"SELECT attributes->>'http.route' AS route, count(*) FROM records GROUP BY 1 ORDER BY 1",
		"SELECT span_name, duration FROM records WHERE trace_id = '" + trace + "' ORDER BY 1",
	}
	want := map[string][][]any{}
	for _, q := range same {
		want[q] = e.query(q).Rows
	}
	all := "SELECT * FROM records ORDER BY span_name"
	before := e.query(all)
	if before.Stats.FreshRows != 20 || len(before.Rows) != 20 {
		t.Fatalf("fresh: %d rows, stats %+v", len(before.Rows), before.Stats)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.in.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check("flushed")
	for _, q := range same {
		if got := e.query(q).Rows; !reflect.DeepEqual(got, want[q]) {
			t.Errorf("%s: fresh %v, flushed %v", q, want[q], got)
		}
	}
	after := e.query(all)
	if after.Stats.FreshRows != 0 || !reflect.DeepEqual(before.Rows, after.Rows) {
		t.Fatalf("rows read from the WAL differ from the same rows in Parquet:\n%v\n%v", before.Rows, after.Rows)
	}
}

// Rows older than the project's retention are not seen, whether still in
// ingest or in a file the compactor has not dropped yet.
func TestQuery_RetentionHidesExpiredRows(t *testing.T) {
	e := newEnv(t, envOptions{})
	ctx := context.Background()
	if err := e.cat.CreateProject(ctx, catalog.Project{ID: "short", Name: "short", Retention: time.Hour}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, at := range []time.Time{now.Add(-3 * time.Hour), now.Add(-2 * time.Hour), now.Add(-time.Minute)} {
		sp := spans.AppendEmpty()
		sp.SetTraceID([16]byte{9, byte(i)})
		sp.SetSpanID([8]byte{9, byte(i)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
	}
	rec, err := ingest.ConvertTraces("short", td, ingest.Window{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if err := e.in.Append(ctx, "short", schema.Records, rec); err != nil {
		t.Fatal(err)
	}
	if n := e.in.Stats().UnflushedRows; n != 3 {
		t.Fatalf("%d rows in ingest, want all 3", n)
	}
	count := func(when string, req sql.Request) {
		t.Helper()
		res, err := e.exec.Run(ctx, "short", req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Release()
		res.Next()
		if n := res.RecordBatch().Column(0).(*array.Int64).Value(0); n != 1 {
			t.Errorf("%s: %s: %d rows, want the 1 within the hour of retention", when, req.SQL, n)
		}
	}
	old := now.Add(-4 * time.Hour)
	for _, when := range []string{"in ingest", "in files"} {
		count(when, sql.Request{SQL: "SELECT count(*) FROM records"})
		count(when, sql.Request{SQL: "SELECT count(*) FROM records WHERE start_timestamp > now() - INTERVAL 1 DAY"})
		count(when, sql.Request{SQL: "SELECT count(*) FROM records", MinTimestamp: &old})
		e.flushed()
	}
}

func TestQuery_BadInput(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(span{})
	e.flushed()
	cases := []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"syntax error", map[string]any{"sql": "SELECT * FORM records"}, 400, "LINE 1: SELECT * FORM records"},
		{"unknown column", map[string]any{"sql": "SELECT nope FROM records"}, 400, `"nope" not found`},
		{"unknown table", map[string]any{"sql": "SELECT * FROM spans"}, 400, `table "spans" is not available`},
		{"type error", map[string]any{"sql": "SELECT 1 + 'x'"}, 400, "Binder Error"},
		{"sql over 1 MB", map[string]any{"sql": "SELECT '" + strings.Repeat("x", 1<<20) + "'"}, 413, "longer than"},
		{"invalid min_timestamp", map[string]any{"sql": "SELECT 1", "min_timestamp": "yesterday"}, 400, "min_timestamp"},
		{"max before min", map[string]any{"sql": "SELECT 1", "min_timestamp": "2026-01-02T00:00:00Z", "max_timestamp": "2026-01-01T00:00:00Z"}, 400, "before"},
		{"negative limit", map[string]any{"sql": "SELECT 1", "limit": -1}, 400, "limit"},
		{"missing sql", map[string]any{}, 400, "missing"},
		{"only a comment", map[string]any{"sql": "-- nothing\n;"}, 400, "the query is empty"},
		{"not JSON", "{not json", 400, "invalid JSON"},
		{"a NUL byte", map[string]any{"sql": "SELECT 42 AS a --\x00\n, 2"}, 400, "NUL byte"},
		{"expressions nested too deep", map[string]any{"sql": "SELECT " + strings.Repeat("1+", 5000) + "1"}, 400, "query too complex"},
		{"PIVOT without an IN list", map[string]any{"sql": "PIVOT records ON span_kind USING count(*)"}, 400, "name the values instead"},
		{"PIVOT without an IN list, as a subquery", map[string]any{"sql": "SELECT * FROM (PIVOT records ON span_kind USING count(*))"}, 400, "name the values instead"},
		{"a column named pivot in a statement refused", map[string]any{"sql": "CREATE TABLE x AS SELECT 1 AS pivot"}, 400, "only queries"},
		{"PIVOT with one", map[string]any{"sql": "SELECT * FROM (SELECT span_kind FROM records) PIVOT (count(*) FOR span_kind IN ('server'))"}, 200, ""},
		{"two JSON objects", `{"sql": "SELECT 1"} {"sql": "SELECT 2"}`, 400, "one query per request"},
		// 400 kB of SQL, 1.2 MB of JSON: the limit is on the SQL.
		{"escaped SQL under the limit", `{"sql": "SELECT length('` + strings.Repeat(`\u00e9`, 200_000) + `')"}`, 200, ""},
		// A value too large to encode is refused, not buffered.
		{"huge value", map[string]any{"sql": "SELECT repeat('x', 70000000) AS s"}, 200, "a result value may have"},
	}
	for _, tc := range cases {
		var r *response
		if s, ok := tc.body.(string); ok {
			req := httptest.NewRequest("POST", "/v1/query", strings.NewReader(s))
			rec := httptest.NewRecorder()
			e.exec.Handler().ServeHTTP(rec, req)
			r = &response{status: rec.Code}
			json.Unmarshal(rec.Body.Bytes(), r)
		} else {
			r = e.do("POST", tc.body, "")
		}
		if r.status != tc.status || !strings.Contains(r.Error, tc.want) {
			t.Errorf("%s: %d %q, want %d mentioning %q", tc.name, r.status, r.Error, tc.status, tc.want)
		}
	}
	if n := e.count("SELECT count(*) FROM records"); n != 1 {
		t.Fatalf("after bad input: %d", n)
	}
}

func TestQuery_ConcurrencyLimitAndCancel(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 1), queryTimeout: time.Minute})
	e.send(span{status: ptrace.StatusCodeError})
	e.flushed()
	slow := "SELECT count(*) FROM range(3000000000)"
	ctx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	done := make(chan int)
	go func() {
		b, _ := json.Marshal(map[string]any{"sql": slow})
		req := httptest.NewRequest("POST", "/v1/query", bytes.NewReader(b)).WithContext(ctx)
		rec := httptest.NewRecorder()
		close(started)
		e.exec.Handler().ServeHTTP(rec, req)
		done <- rec.Code
	}()
	<-started
	time.Sleep(200 * time.Millisecond)
	// One running, one may queue, the third is refused.
	queued := make(chan *response)
	go func() { queued <- e.do("POST", map[string]any{"sql": "SELECT count(*) FROM records"}, "") }()
	time.Sleep(100 * time.Millisecond)
	refused := e.do("POST", map[string]any{"sql": "SELECT 1"}, "")
	if refused.status != http.StatusTooManyRequests || refused.header.Get("Retry-After") == "" {
		t.Errorf("third query: %d %q, want 429 with Retry-After", refused.status, refused.Error)
	}
	// The client of the slow query goes away: the query stops and its slot
	// goes to the queued one.
	start := time.Now()
	cancel()
	<-done
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("canceled query took %v to stop", took)
	}
	if r := <-queued; r.status != 200 || num(r.Rows[0][0]) != 1 {
		t.Errorf("queued query: %d %v %s", r.status, r.Rows, r.Error)
	}
}

// An Arrow result streams: a client reads the first batch of a result of
// a trillion rows (one built whole first would never arrive) and hangs
// up, which ends the query and frees its slot for the next one.
func TestQuery_ArrowStreamsAndHangUpFreesTheSlot(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: time.Minute})
	srv := httptest.NewServer(e.exec.Handler())
	defer srv.Close()
	for range 3 {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/query", strings.NewReader(`{"sql": "SELECT i FROM range(1000000000000) t(i)"}`))
		req.Header.Set("Accept", "application/vnd.apache.arrow.stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rdr, err := ipc.NewReader(resp.Body)
		if err != nil {
			t.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		if !rdr.Next() || rdr.RecordBatch().NumRows() == 0 || rdr.RecordBatch().Column(0).ValueStr(0) != "0" {
			t.Fatalf("no first batch: %v", rdr.Err())
		}
		rdr.Release()
		resp.Body.Close()
		// The one slot comes back once the server sees the hang-up.
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := e.do("POST", map[string]any{"sql": "SELECT 42 AS x"}, "application/json")
			if r.status == 200 {
				break
			}
			if r.status != http.StatusTooManyRequests || time.Now().After(deadline) {
				t.Fatalf("after a hang-up: %d %s", r.status, r.Error)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// An Arrow or CSV result that fails after rows were sent does not end like
// a whole result: the transfer is cut short, so the client sees an error
// rather than fewer rows.
func TestQuery_FailureMidStreamIsNotACleanEnd(t *testing.T) {
	e := newEnv(t, envOptions{})
	srv := httptest.NewServer(e.exec.Handler())
	defer srv.Close()
	q := `{"sql": "SELECT CASE WHEN i < 500000 THEN i ELSE error('row ' || i || ' is bad') END AS v FROM range(1000000) t(i)"}`
	post := func(accept string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/query", strings.NewReader(q))
		req.Header.Set("Accept", accept)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	resp := post("application/vnd.apache.arrow.stream")
	rdr, err := ipc.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("status %d: %v", resp.StatusCode, err)
	}
	n := int64(0)
	for rdr.Next() {
		n += rdr.RecordBatch().NumRows()
	}
	if rdr.Err() == nil || n >= 1000000 {
		t.Errorf("arrow: %d rows and a clean end (err %v)", n, rdr.Err())
	}
	rdr.Release()
	resp.Body.Close()

	resp = post("text/csv")
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	// (DuckDB now and then reports its other threads' interruption instead
	// of the failure: still an error, never a clean end.)
	failed := func(s string) bool {
		return strings.Contains(s, "row 500000 is bad") || strings.Contains(s, "one of DuckDB's threads")
	}
	if err == nil || !failed(string(body)) {
		t.Errorf("csv: read error %v, tail %q", err, body[max(0, len(body)-80):])
	}

	// JSON ends its document with the error.
	j := e.do("POST", map[string]any{"sql": "SELECT CASE WHEN i < 500000 THEN i ELSE error('row ' || i || ' is bad') END AS v FROM range(1000000) t(i)"}, "application/json")
	if !failed(j.Error) {
		t.Errorf("json: %q", j.Error)
	}
	// An empty result, read ahead to find its first batch, ends cleanly
	// (DuckDB refuses a fetch past the end).
	for _, accept := range []string{"application/json", "text/csv", "application/vnd.apache.arrow.stream"} {
		if r := e.do("POST", map[string]any{"sql": "SELECT i FROM range(10) t(i) WHERE i > 20"}, accept); r.status != 200 || strings.Contains(r.body, "rror") {
			t.Errorf("%s: an empty result: %d %q", accept, r.status, r.body)
		}
	}
	// A failure in the first rows, before the answer began, gets its
	// status, in every format (QA: 200 and a cut stream).
	for _, accept := range []string{"application/json", "text/csv", "application/vnd.apache.arrow.stream"} {
		r := e.do("POST", map[string]any{"sql": "SELECT CASE WHEN i = 5 THEN error('row 5 is bad') ELSE i END AS v FROM range(10) t(i)"}, accept)
		if r.status != 400 || !strings.Contains(r.body, "row 5 is bad") {
			t.Errorf("%s: an error in the first rows: %d %q", accept, r.status, r.body)
		}
	}
}

// A client that stops reading does not hold its query slot past the time
// limit.
func TestQuery_StalledReaderLosesItsSlot(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 0), queryTimeout: time.Second})
	srv := httptest.NewServer(e.exec.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/v1/query", strings.NewReader(`{"sql": "SELECT i, repeat('x', 100) FROM range(1000000000000) t(i)"}`))
	req.Header.Set("Accept", "text/csv")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close() // never read until the end of the test
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		r := e.do("POST", map[string]any{"sql": "SELECT 42 AS x"}, "application/json")
		if r.status == 200 {
			return
		}
		if r.status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("the slot stayed with a client that stopped reading: %d %s", r.status, r.Error)
		}
	}
}

// A query's time limit, sending included, counts from when it got its
// slot: one that waited in the queue behind stalled clients still gets
// its whole result.
func TestQuery_QueueWaitDoesNotEatTheSendingTime(t *testing.T) {
	e := newEnv(t, envOptions{limiter: sql.NewLimiter(1, 8), queryTimeout: time.Second})
	srv := httptest.NewServer(e.exec.Handler())
	defer srv.Close()
	// Three queries that run until the time limit, one after the other.
	for range 3 {
		go http.Post(srv.URL+"/v1/query", "application/json", strings.NewReader(`{"sql": "SELECT count(*) FROM range(1000000000000) t(i) WHERE i % 7 = 3"}`))
		time.Sleep(100 * time.Millisecond)
	}
	// Waits for them (about 3 s, more than its own limit) before it runs.
	resp, err := http.Post(srv.URL+"/v1/query", "application/json", strings.NewReader(`{"sql": "SELECT i FROM range(300000) t(i)"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ Rows [][]any }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 || len(out.Rows) != 300000 {
		t.Fatalf("status %d, %d rows, %v", resp.StatusCode, len(out.Rows), err)
	}
}

// partialFresh answers as a query node's peers do when one ingest node of
// several did not: the others' rows, and SourcesMissing.
type partialFresh struct{ sql.FreshSource }

func (p partialFresh) Snapshot(ctx context.Context, project, table string, need engine.Need) ([]arrow.RecordBatch, []string, func(), error) {
	b, keys, done, err := p.FreshSource.Snapshot(ctx, project, table, need)
	if err != nil {
		return b, keys, done, err
	}
	return b, keys, done, &engine.SourcesMissing{N: 1, Err: errors.New("ingest node 10.0.0.7:8083: connection refused")}
}

// A result without the unflushed rows of an ingest node that did not
// answer says so: in the HTTP API's stats, and as a warning over the
// Postgres protocol (it looked complete).
func TestQuery_RowsOfAnIngestNodeThatDidNotAnswerAreSaidMissing(t *testing.T) {
	e := newEnv(t, envOptions{flushInterval: time.Hour})
	e.send(span{name: "fresh"})
	local, err := cache.NewClient(e.bucket, cache.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.exec = sql.NewExecutor(e.cat, e.db, local, partialFresh{e.in}, nil)
	r := e.query("SELECT count(*) FROM records")
	if n, _ := r.Rows[0][0].(json.Number).Int64(); n != 1 || r.Stats.IngestNodesMissing != 1 {
		t.Fatalf("%d rows, stats %+v; want the 1 answered and ingest_nodes_missing 1", n, r.Stats)
	}
	cfg, err := pgx.ParseConfig("postgres://grafana@" + startPG(t, e) + "/strata?sslmode=disable")
	if err != nil {
		t.Fatal(err)
	}
	var notices []string
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n.Severity+": "+n.Message) }
	c, err := pgx.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	var n int64
	if err := c.QueryRow(context.Background(), "SELECT count(*) FROM records").Scan(&n); err != nil || n != 1 {
		t.Fatalf("pgwire: %d, %v", n, err)
	}
	if len(notices) != 1 || !strings.Contains(notices[0], "WARNING: 1 ingest node(s) did not answer") {
		t.Fatalf("notices %q, want one warning of the missing rows", notices)
	}
}

// A computed TIMESTAMP_NS kept only six of its nine digits in JSON.
func TestQuery_NanosecondTimestampsKeepTheirDigits(t *testing.T) {
	e := newEnv(t, envOptions{})
	r := e.query("SELECT TIMESTAMP_NS '2026-01-01 00:00:00.123456789' AS t")
	if got := r.Rows[0][0]; got != "2026-01-01T00:00:00.123456789" { // no time zone: TIMESTAMP_NS
		t.Errorf("got %v", got)
	}
}

// A TIMESTAMP (no time zone: a wall-clock time, as AT TIME ZONE gives) is
// not labelled UTC; a TIMESTAMPTZ, an instant, is written in UTC.
func TestQuery_TimestampsWithoutZoneHaveNoZone(t *testing.T) {
	e := newEnv(t, envOptions{})
	q := `SELECT TIMESTAMPTZ '2026-01-01 17:00:00+00' AS tz, TIMESTAMPTZ '2026-01-01 17:00:00+00' AT TIME ZONE 'America/New_York' AS ny, TIMESTAMP '2026-01-01 12:00:00.5' AS ts`
	if r := e.query(q); fmt.Sprint(r.Rows) != "[[2026-01-01T17:00:00Z 2026-01-01T12:00:00 2026-01-01T12:00:00.5]]" {
		t.Errorf("JSON: %v %s", r.Rows, r.Error)
	}
	if c := e.do("POST", map[string]any{"sql": q}, "text/csv"); c.body != "tz,ny,ts\n2026-01-01T17:00:00Z,2026-01-01T12:00:00,2026-01-01T12:00:00.5\n" {
		t.Errorf("CSV: %q", c.body)
	}
}

// EXPLAIN and EXPLAIN ANALYZE show the plan of a query that may run, over
// the files it would read; what the sandbox refuses stays refused.
func TestQuery_Explain(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(span{name: "a"})
	e.flushed()
	e.send(span{name: "fresh"}) // unflushed rows join the plan too
	for _, q := range []string{
		"EXPLAIN SELECT span_name, count(*) FROM records GROUP BY 1",
		"explain analyze SELECT span_name, count(*) FROM records GROUP BY 1",
	} {
		r := e.query(q)
		if len(r.Columns) != 2 || len(r.Rows) == 0 {
			t.Fatalf("%s: %+v", q, r)
		}
		plan := fmt.Sprint(r.Rows)
		if !strings.Contains(plan, "HASH_GROUP_BY") || !strings.Contains(strings.ToUpper(plan), "PARQUET") {
			t.Errorf("%s: plan without the aggregate or the Parquet scan:\n%s", q, plan)
		}
	}
	for _, q := range []string{
		"EXPLAIN SELECT * FROM read_csv('/etc/passwd')",
		"EXPLAIN COPY (SELECT 1) TO '/tmp/strata-explain-copy'",
		"EXPLAIN SELECT 1; SELECT 2",
	} {
		if r := e.do("POST", map[string]any{"sql": q}, ""); r.status != 400 {
			t.Errorf("%s: %d %s", q, r.status, r.Error)
		}
	}
	// Over the Postgres protocol, described and with a parameter too.
	addr := startPG(t, e)
	for _, mode := range []pgx.QueryExecMode{pgx.QueryExecModeSimpleProtocol, pgx.QueryExecModeCacheStatement} {
		c := pgConnect(t, addr, mode)
		rows, err := c.Query(context.Background(), "EXPLAIN SELECT count(*) FROM records WHERE span_name = $1", "a")
		if err != nil {
			t.Fatalf("%v: %v", mode, err)
		}
		n := 0
		for rows.Next() {
			n++
		}
		if err := rows.Err(); err != nil || n == 0 || len(rows.FieldDescriptions()) != 2 {
			t.Errorf("%v: %d rows, %v", mode, n, err)
		}
	}
}

// /metrics counts queries by outcome, their time, files and rows, over
// HTTP and the Postgres protocol alike.
func TestQuery_Metrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(span{name: "a"})
	e.flushed()
	reg := prometheus.NewRegistry()
	reg.MustRegister(e.exec.Collectors()...)
	values := func() map[string]float64 {
		out := map[string]float64{}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				key := mf.GetName()
				for _, l := range m.GetLabel() {
					key += "{" + l.GetValue() + "}"
				}
				switch {
				case m.Counter != nil:
					out[key] = m.Counter.GetValue()
				case m.Histogram != nil:
					out[key] = float64(m.Histogram.GetSampleCount())
				case m.Gauge != nil:
					out[key] = m.Gauge.GetValue()
				}
			}
		}
		return out
	}
	e.query("SELECT span_name FROM records")
	if r := e.do("POST", map[string]any{"sql": "SELEC 1"}, ""); r.status != 400 {
		t.Fatalf("syntax error: %d", r.status)
	}
	c := pgConnect(t, startPG(t, e), pgx.QueryExecModeSimpleProtocol)
	rows, err := c.Query(context.Background(), "SELECT range FROM range(3)")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
	}
	rows.Close()
	want := map[string]float64{
		"strata_query_queries_total{ok}": 2, "strata_query_queries_total{error}": 1,
		"strata_query_duration_seconds": 2, "strata_query_files_total{scanned}": 1,
		"strata_query_result_rows_total": 4, "strata_query_running": 0,
	}
	var got map[string]float64
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		got = values()
		ok := true
		for k, v := range want {
			ok = ok && got[k] == v
		}
		if ok {
			return
		}
	}
	t.Errorf("metrics %v, want %v", got, want)
}

// counterValue is the value of a counter of reg with one label's value.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if mf.GetName() == name && len(m.GetLabel()) == 1 && m.GetLabel()[0].GetValue() == label {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// Accept is read with its qualities: the format a client prefers most.
func TestQuery_AcceptQualities(t *testing.T) {
	e := newEnv(t, envOptions{})
	for accept, want := range map[string]string{
		"":                                 "application/json",
		"text/csv":                         "text/csv",
		"application/json;q=0.5, text/csv": "text/csv",
		"text/csv;q=0, application/json":   "application/json",
		"text/csv;q=0.8, application/vnd.apache.arrow.stream;q=0.9": "application/vnd.apache.arrow.stream",
		"text/html, */*;q=0.1":       "application/json",
		"text/csv, application/json": "text/csv",
	} {
		r := e.do("POST", map[string]any{"sql": "SELECT 1 AS x"}, accept)
		if got := r.header.Get("Content-Type"); r.status != 200 || !strings.HasPrefix(got, want) {
			t.Errorf("Accept %q: %d %s, want %s", accept, r.status, got, want)
		}
	}
}

// downCatalog is a catalog that has stopped answering.
type downCatalog struct{ catalog.Store }

func (downCatalog) ListFiles(context.Context, catalog.FileFilter) ([]catalog.File, error) {
	return nil, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
}

func (downCatalog) CountFiles(context.Context, string, string) (int, error) {
	return 0, errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
}

// A catalog that does not answer makes queries fail with 503 and
// Retry-After (57P03 over the Postgres protocol), so clients and
// dashboards tell an outage from a bad query (review: a 500 with the
// driver's error).
func TestQuery_CatalogDownIs503(t *testing.T) {
	e := newEnv(t, envOptions{})
	e.send(span{name: "x"})
	e.flushed()
	e.exec.Catalog = downCatalog{e.cat}
	r := e.do("POST", map[string]any{"sql": "SELECT count(*) FROM records"}, "")
	if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") == "" || !strings.Contains(r.Error, "catalog failed to list") {
		t.Fatalf("%d %q (Retry-After %q)", r.status, r.Error, r.header.Get("Retry-After"))
	}
	addr := startPG(t, e)
	c := pgConnect(t, addr, pgx.QueryExecModeSimpleProtocol)
	var n int64
	err := c.QueryRow(context.Background(), "SELECT count(*) FROM records").Scan(&n)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "57P03" {
		t.Fatalf("over the Postgres protocol: %v, want 57P03", err)
	}
	e.exec.Catalog = e.cat
	if n := e.count("SELECT count(*) FROM records"); n != 1 {
		t.Fatalf("with the catalog back: %d rows", n)
	}
}
