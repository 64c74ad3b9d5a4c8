package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// SuiteQuery is one query of a benchmark suite. Its SQL may hold the
// placeholders {now}, {trace_id}, {trace_lo}, {trace_hi} and
// {missing_trace_id}, filled in before the run (see Fill).
type SuiteQuery struct {
	Name string `json:"name"`
	SQL  string `json:"sql"`
	// WindowHours is how much recent data the query reads, so a capacity
	// plan can scale its cost with the ingest rate; 0 for a lookup whose
	// cost does not grow with volume (a trace by id).
	WindowHours float64 `json:"window_hours"`
}

// DashboardSuite is what dashboards over traces ask every few seconds.
// Times are relative to {now}, the end of the data set, so a saved data
// set can be measured again later.
func DashboardSuite() []SuiteQuery {
	const lastHour = `start_timestamp >= TIMESTAMPTZ '{now}' - INTERVAL 1 HOUR AND start_timestamp <= TIMESTAMPTZ '{now}'`
	return []SuiteQuery{
		{"error_rate_per_service_per_minute", `SELECT service_name, time_bucket(INTERVAL 1 MINUTE, start_timestamp) AS minute,
  count(*) FILTER (WHERE otel_status_code = 'ERROR') / count(*) AS error_rate, count(*) AS spans
FROM records WHERE kind = 'span' AND ` + lastHour + `
GROUP BY ALL ORDER BY service_name, minute`, 1},
		{"duration_percentiles_by_route", `SELECT http_route, count(*) AS spans,
  quantile_cont(duration, 0.5) AS p50, quantile_cont(duration, 0.95) AS p95, quantile_cont(duration, 0.99) AS p99
FROM records WHERE kind = 'span' AND http_route IS NOT NULL AND ` + lastHour + `
GROUP BY http_route ORDER BY spans DESC`, 1},
		{"top_20_slowest_spans", `SELECT trace_id, span_id, service_name, span_name, http_route, duration, start_timestamp
FROM records WHERE kind = 'span' AND ` + lastHour + `
ORDER BY duration DESC LIMIT 20`, 1},
		{"trace_by_id_with_time_hint", `SELECT * FROM records WHERE trace_id = '{trace_id}'
  AND start_timestamp BETWEEN TIMESTAMPTZ '{trace_lo}' AND TIMESTAMPTZ '{trace_hi}' ORDER BY start_timestamp`, 0},
		{"trace_by_id", `SELECT * FROM records WHERE trace_id = '{trace_id}' ORDER BY start_timestamp`, 0},
		{"trace_by_missing_id", `SELECT * FROM records WHERE trace_id = '{missing_trace_id}'`, 0},
		{"log_messages_matching", `SELECT count(*) AS logs FROM records
WHERE kind = 'log' AND message LIKE '%user-12345%' AND ` + lastHour, 1},
		{"span_counts_by_status_24h", `SELECT otel_status_code, count(*) AS spans FROM records
WHERE kind = 'span' AND start_timestamp >= TIMESTAMPTZ '{now}' - INTERVAL 24 HOUR AND start_timestamp <= TIMESTAMPTZ '{now}'
GROUP BY otel_status_code ORDER BY otel_status_code`, 24},
	}
}

// Placeholders are the values a suite's SQL is filled with.
type Placeholders struct {
	Now            time.Time
	TraceID        string
	TraceStart     time.Time
	MissingTraceID string
}

// Fill replaces the placeholders in sql.
func (p Placeholders) Fill(sql string) string {
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.999999Z07:00") }
	return strings.NewReplacer(
		"{now}", ts(p.Now),
		"{trace_id}", p.TraceID,
		"{trace_lo}", ts(p.TraceStart.Add(-time.Minute)),
		"{trace_hi}", ts(p.TraceStart.Add(time.Minute)),
		"{missing_trace_id}", p.MissingTraceID,
	).Replace(sql)
}

// RandomTraceID is a trace id that no data set holds but by a 2^-128 chance.
func RandomTraceID(rng *rand.Rand) string {
	return fmt.Sprintf("%016x%016x", rng.Uint64(), rng.Uint64())
}

// A QueryTarget runs SQL and reads the whole result.
type QueryTarget interface {
	Name() string
	// Run returns the rows of the result.
	Run(ctx context.Context, sql string) (int64, error)
}

// HTTPTarget is a strata query node: POST /v1/query, JSON answer, read
// to the end as a dashboard would.
type HTTPTarget struct {
	URL    string // e.g. http://127.0.0.1:8011
	Client *http.Client
}

func (t *HTTPTarget) Name() string { return "strata" }

func (t *HTTPTarget) Run(ctx context.Context, sql string) (int64, error) {
	rows, _, err := t.do(ctx, sql)
	return int64(len(rows)), err
}

// Count runs a one-number query and returns the number and the bytes of
// the files strata opened for it.
func (t *HTTPTarget) Count(ctx context.Context, sql string) (n, bytesScanned int64, err error) {
	rows, st, err := t.do(ctx, sql)
	if err != nil || len(rows) == 0 {
		return 0, 0, err
	}
	var row []int64
	if err := json.Unmarshal(rows[0], &row); err != nil || len(row) != 1 {
		return 0, 0, fmt.Errorf("want one number, got %s", rows[0])
	}
	return row[0], st.BytesScanned, nil
}

// MeasureDataSet counts the rows dashboards read at now.
func (t *HTTPTarget) MeasureDataSet(ctx context.Context, now time.Time) (*DataSet, error) {
	d := &DataSet{Now: now}
	var err error
	window := func(h int) string {
		return fmt.Sprintf("SELECT count(*) FROM records WHERE start_timestamp > make_timestamptz(%d) AND start_timestamp <= make_timestamptz(%d)",
			now.Add(-time.Duration(h)*time.Hour).UnixMicro(), now.UnixMicro())
	}
	if d.RowsLastHour, _, err = t.Count(ctx, window(1)); err != nil {
		return nil, err
	}
	if d.RowsLast24h, _, err = t.Count(ctx, window(24)); err != nil {
		return nil, err
	}
	if d.Rows, d.Bytes, err = t.Count(ctx, "SELECT count(*) FROM records"); err != nil {
		return nil, err
	}
	return d, nil
}

// First returns the first row of the result (nil for none), numbers as
// json.Number.
func (t *HTTPTarget) First(ctx context.Context, sql string) ([]any, error) {
	rows, _, err := t.do(ctx, sql)
	if err != nil || len(rows) == 0 {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(rows[0]))
	dec.UseNumber()
	var row []any
	err = dec.Decode(&row)
	return row, err
}

// queryStats is the part of strata's query stats the benchmarks read.
type queryStats struct {
	BytesScanned int64 `json:"bytes_scanned"`
}

func (t *HTTPTarget) do(ctx context.Context, sql string) ([]json.RawMessage, queryStats, error) {
	body, _ := json.Marshal(map[string]string{"sql": sql})
	req, err := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(t.URL, "/")+"/v1/query", bytes.NewReader(body))
	if err != nil {
		return nil, queryStats{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	c := t.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, queryStats{}, err
	}
	defer resp.Body.Close()
	var out struct {
		Rows  []json.RawMessage `json:"rows"`
		Stats queryStats        `json:"stats"`
		Error string            `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, queryStats{}, fmt.Errorf("HTTP %d: undecodable answer: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != 200 || out.Error != "" {
		return nil, queryStats{}, fmt.Errorf("HTTP %d: %s", resp.StatusCode, out.Error)
	}
	return out.Rows, out.Stats, nil
}

// DuckDBTarget is DuckDB alone over every Parquet file of the data set,
// as one would query it without strata: no catalog, no pruning beyond
// DuckDB's own, results read as Arrow in process.
type DuckDBTarget struct {
	DB *engine.DB
}

// OpenDuckDBTarget opens DuckDB with views records and metrics over the
// given files (either list may be empty), with the given threads and
// memory limit (zero values: DuckDB's defaults).
func OpenDuckDBTarget(ctx context.Context, dir, tempDir string, files map[string][]engine.File, threads int, memoryLimit string) (*DuckDBTarget, error) {
	var setup []string
	for _, t := range schema.Tables() {
		if len(files[t.Name]) > 0 {
			read, err := engine.FilesSQL(t, files[t.Name])
			if err != nil {
				return nil, err
			}
			setup = append(setup, "CREATE VIEW "+t.Name+" AS "+read)
		}
	}
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: []string{dir}, TempDir: tempDir, Threads: threads,
		MemoryLimit: memoryLimit, QueryTimeout: 10 * time.Minute, Setup: setup})
	if err != nil {
		return nil, err
	}
	return &DuckDBTarget{DB: db}, nil
}

func (t *DuckDBTarget) Name() string { return "duckdb" }

func (t *DuckDBTarget) Run(ctx context.Context, sql string) (int64, error) {
	rows, err := t.DB.Query(ctx, engine.Query{SQL: sql, Raw: true})
	if err != nil {
		return 0, err
	}
	defer rows.Release()
	var n int64
	for rows.Next() {
		n += rows.RecordBatch().NumRows()
	}
	return n, rows.Err()
}

// QueryOptions describe a query benchmark.
type QueryOptions struct {
	Suite       []SuiteQuery
	Targets     []QueryTarget // measured side by side, query by query
	Fill        Placeholders
	Runs        int // warm runs per query and target, after the first (cold) one
	Concurrency int // runs in flight at once
}

// QueryResult is one query's figures on one target.
type QueryResult struct {
	Query  string      `json:"query"`
	Target string      `json:"target"`
	Rows   int64       `json:"rows"`
	ColdMs float64     `json:"cold_ms"`
	Warm   Percentiles `json:"warm_ms"`
	// WarmQPS is warm runs per second of wall time at the report's
	// concurrency: what one node sustains of this query.
	WarmQPS float64 `json:"warm_qps"`
	Errors  int     `json:"errors"`
	Error   string  `json:"error,omitempty"`
}

// DataSet describes the data a query report measured, so a plan can
// scale from it.
type DataSet struct {
	Now          time.Time `json:"now"`
	RowsLastHour int64     `json:"rows_last_hour"`
	RowsLast24h  int64     `json:"rows_last_24h"`
	Rows         int64     `json:"rows"`
	Bytes        int64     `json:"object_bytes"`
	// FilterBytesPerRow is the catalog's trace-filter bytes per row (0
	// when the catalog was not read).
	FilterBytesPerRow float64 `json:"filter_bytes_per_row,omitempty"`
}

// QueryReport is the outcome of RunQueries.
type QueryReport struct {
	Kind        string        `json:"kind"` // "query"
	Machine     Machine       `json:"machine"`
	DataSet     *DataSet      `json:"data_set,omitempty"`
	Started     time.Time     `json:"started"`
	Runs        int           `json:"runs"`
	Concurrency int           `json:"concurrency"`
	Queries     []SuiteQuery  `json:"queries"`
	Results     []QueryResult `json:"results"`
}

// Validate reports options that cannot run.
func (o QueryOptions) Validate() error {
	switch {
	case len(o.Suite) == 0:
		return fmt.Errorf("no queries to run")
	case len(o.Targets) == 0:
		return fmt.Errorf("no target to run them on")
	case o.Runs < 1 || o.Concurrency < 1:
		return fmt.Errorf("runs and concurrency must be at least 1")
	}
	return nil
}

// RunQueries runs each query on each target: once cold, then Runs times
// at Concurrency. Targets take turns query by query, so they see the same
// machine state. Ctrl-C (ctx) ends the run with the results so far.
func RunQueries(ctx context.Context, o QueryOptions, progress io.Writer) (*QueryReport, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rep := &QueryReport{Kind: "query", Machine: ThisMachine(), Started: time.Now().UTC(), Runs: o.Runs, Concurrency: o.Concurrency}
	for _, q := range o.Suite {
		rep.Queries = append(rep.Queries, SuiteQuery{Name: q.Name, SQL: o.Fill.Fill(q.SQL), WindowHours: q.WindowHours})
	}
	for _, q := range rep.Queries {
		for _, t := range o.Targets {
			if ctx.Err() != nil {
				return rep, nil
			}
			r := runOne(ctx, t, q, o.Runs, o.Concurrency)
			rep.Results = append(rep.Results, r)
			if progress != nil {
				fmt.Fprintf(progress, "%-36s %-7s rows %-8d cold %8.1f ms  warm p50 %8.1f  p95 %8.1f ms  errors %d %s\n",
					q.Name, t.Name(), r.Rows, r.ColdMs, r.Warm.P50, r.Warm.P95, r.Errors, r.Error)
			}
		}
	}
	return rep, nil
}

func runOne(ctx context.Context, t QueryTarget, q SuiteQuery, runs, conc int) QueryResult {
	r := QueryResult{Query: q.Name, Target: t.Name()}
	start := time.Now()
	rows, err := t.Run(ctx, q.SQL)
	r.ColdMs = ms(time.Since(start))
	r.Rows = rows
	if err != nil {
		r.Errors, r.Error = 1, err.Error()
		return r
	}
	var mu sync.Mutex
	var lat []float64
	next := make(chan struct{})
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				s := time.Now()
				_, err := t.Run(ctx, q.SQL)
				d := ms(time.Since(s))
				mu.Lock()
				if err != nil {
					r.Errors++
					r.Error = err.Error()
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		}()
	}
	warmStart := time.Now()
	for range runs {
		if ctx.Err() != nil {
			break
		}
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	r.Warm = percentiles(lat)
	if wall := time.Since(warmStart).Seconds(); wall > 0 {
		r.WarmQPS = float64(len(lat)) / wall
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Failed counts the results with errors.
func (r *QueryReport) Failed() int {
	n := 0
	for _, res := range r.Results {
		if res.Errors > 0 {
			n++
		}
	}
	return n
}

// WriteText prints the report as a table. With a second target, the ratio
// column is the first target's warm median over the second's.
func (r *QueryReport) WriteText(w io.Writer) {
	fmt.Fprintf(w, "%-36s %-7s %9s %10s %10s %10s %10s %7s\n", "query", "target", "rows", "cold ms", "p50 ms", "p95 ms", "p99 ms", "ratio")
	byQuery := map[string][]QueryResult{}
	for _, res := range r.Results {
		byQuery[res.Query] = append(byQuery[res.Query], res)
	}
	for _, res := range r.Results {
		ratio := ""
		if rs := byQuery[res.Query]; len(rs) > 1 && rs[0].Target == res.Target && rs[1].Warm.P50 > 0 && res.Errors == 0 {
			ratio = fmt.Sprintf("%.2f×", res.Warm.P50/rs[1].Warm.P50)
		}
		if res.Warm.N == 0 && res.Errors > 0 { // no time to show: 0 ms would read as fast
			fmt.Fprintf(w, "%-36s %-7s %9s %10s %10s %10s %10s %7s\n", res.Query, res.Target, "-", "failed", "-", "-", "-", "")
		} else {
			fmt.Fprintf(w, "%-36s %-7s %9d %10.1f %10.1f %10.1f %10.1f %7s\n", res.Query, res.Target, res.Rows, res.ColdMs, res.Warm.P50, res.Warm.P95, res.Warm.P99, ratio)
		}
		if res.Error != "" {
			fmt.Fprintf(w, "    %d error(s), the last: %s\n", res.Errors, res.Error)
		}
	}
}
