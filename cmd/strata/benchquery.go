package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-db/strata/bench"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

const benchQueryAbout = `Runs the dashboard query suite (and any queries of --sql-file) against a
strata query node, each query once cold and then --runs times warm at
--concurrency, and reports latency percentiles per query. With --duckdb it
runs the same SQL side by side on DuckDB alone over every Parquet file of
the data set (read from the catalog in --data-dir, a file:// object store),
so the ratio column is strata's overhead or gain over raw DuckDB.

The suite's times are relative to the end of the data set (--now, by
default the latest span in it), so a data set made by 'bench load' can be
measured again later. A trace id for the lookups is picked from the data.

Examples:
  strata bench load --spans 50000000 --data-dir /tmp/b && strata serve --data-dir /tmp/b &
  strata bench query --duckdb --data-dir /tmp/b --runs 20`

func runBenchQuery(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("bench query", "", benchQueryAbout)
	var st storage
	st.register(c)
	c.restFromCommandLine()
	var qc queryConfig
	o := bench.QueryOptions{}
	var url, now, traceID, sqlFile, only string
	var rf reportFlags
	var duck bool
	c.fs.StringVar(&url, "query-url", "http://127.0.0.1:8011", "strata query API `url`")
	c.fs.BoolVar(&duck, "duckdb", false, "also run every query on raw DuckDB over the data set's files")
	c.fs.IntVar(&o.Runs, "runs", 20, "warm runs per query and target (`n`)")
	c.fs.IntVar(&o.Concurrency, "concurrency", 1, "runs in flight at once (`n`)")
	c.fs.StringVar(&now, "now", "", "end of the dashboards' time range, RFC 3339 (default: the latest span)")
	c.fs.StringVar(&traceID, "trace-id", "", "trace `id` to look up (default: one picked from the data)")
	c.fs.StringVar(&sqlFile, "sql-file", "", "`file` of more queries: each starts with a line '-- name: <name>', optionally followed by '-- window: 24h', the recent data it reads (default 1h, 0 for a lookup; bench plan scales its cost by it)")
	c.fs.StringVar(&only, "only", "", "run only the queries whose names contain this `text`")
	c.fs.StringVar(&qc.memoryLimit, "query-memory-limit", "2GB", "raw DuckDB's memory `limit` (match the server's)")
	c.fs.IntVar(&qc.threads, "query-threads", 0, "raw DuckDB's worker `threads` (0: one per core; match the server's)")
	rf.register(c)
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if err := rf.check("query"); err != nil {
		return err
	}
	o.Suite = bench.DashboardSuite()
	if sqlFile != "" {
		more, err := readSQLFile(sqlFile)
		if err != nil {
			return usageError{fmt.Errorf("bench query: --sql-file: %w", err)}
		}
		o.Suite = append(o.Suite, more...)
	}
	if only != "" {
		var keep []bench.SuiteQuery
		for _, q := range o.Suite {
			if strings.Contains(q.Name, only) {
				keep = append(keep, q)
			}
		}
		o.Suite = keep
	}
	strata := &bench.HTTPTarget{URL: url}
	o.Targets = []bench.QueryTarget{strata}
	if err := o.Validate(); err != nil {
		return usageError{fmt.Errorf("bench query: %w", err)}
	}
	var filterBytesPerRow float64
	if duck {
		if err := st.resolve(); err != nil {
			return err
		}
		t, filterBytes, err := openRawDuckDB(ctx, st, qc)
		filterBytesPerRow = filterBytes
		if err != nil {
			return fmt.Errorf("bench query: --duckdb: %w", err)
		}
		defer t.DB.Close()
		o.Targets = append(o.Targets, t)
	}
	fill, err := placeholders(ctx, strata, now, traceID)
	if err != nil {
		return fmt.Errorf("bench query: %w", err)
	}
	o.Fill = fill
	fmt.Fprintf(os.Stderr, "now %s, trace %s at %s, missing trace %s\n", fill.Now.Format(time.RFC3339),
		fill.TraceID, fill.TraceStart.Format(time.RFC3339Nano), fill.MissingTraceID)
	data, err := strata.MeasureDataSet(ctx, fill.Now)
	if err != nil {
		return fmt.Errorf("bench query: measure the data set: %w", err)
	}
	data.FilterBytesPerRow = filterBytesPerRow
	rep, err := bench.RunQueries(ctx, o, os.Stderr)
	if err != nil {
		return err
	}
	rep.DataSet = data
	if err := rf.write(stdout, rep); err != nil {
		return err
	}
	if n := rep.Failed(); n > 0 {
		return fmt.Errorf("bench query: %d of %d results had errors (in the report): their times are not measurements", n, len(rep.Results))
	}
	return nil
}

// openRawDuckDB opens DuckDB over every live file of the default project.
// It also returns the catalog's trace-filter bytes per records row.
func openRawDuckDB(ctx context.Context, st storage, qc queryConfig) (*bench.DuckDBTarget, float64, error) {
	cat, bucket, err := st.open(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer cat.Close()
	defer bucket.Close()
	dir, ok := bucket.LocalDir()
	if !ok {
		return nil, 0, fmt.Errorf("needs a file:// object store, not %s", bucket)
	}
	files := map[string][]engine.File{}
	var keys []string
	var rows int64
	for _, t := range schema.Tables() {
		list, err := cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: t.Name})
		if err != nil {
			return nil, 0, err
		}
		for _, f := range list {
			p, _ := bucket.LocalPath(f.Key)
			files[t.Name] = append(files[t.Name], engine.File{Path: p, SchemaVersion: f.SchemaVersion})
			if t.Name == schema.Records {
				keys = append(keys, f.Key)
				rows += f.Rows
			}
		}
	}
	if len(files[schema.Records]) == 0 {
		return nil, 0, fmt.Errorf("no records files in the catalog of %s", st.dataDir)
	}
	filters, err := cat.TraceFilters(ctx, keys...)
	if err != nil {
		return nil, 0, err
	}
	var filterBytes int
	for _, f := range filters {
		filterBytes += len(f)
	}
	t, err := bench.OpenDuckDBTarget(ctx, dir, filepath.Join(os.TempDir(), "strata-bench-spill"),
		files, qc.threads, qc.memoryLimit)
	return t, float64(filterBytes) / float64(max(rows, 1)), err
}

// placeholders picks the suite's time and trace id from the data.
func placeholders(ctx context.Context, t *bench.HTTPTarget, now, traceID string) (bench.Placeholders, error) {
	p := bench.Placeholders{MissingTraceID: bench.RandomTraceID(rand.New(rand.NewPCG(7, 7)))}
	if now != "" {
		ts, err := time.Parse(time.RFC3339, now)
		if err != nil {
			return p, usageError{fmt.Errorf("--now %q: want an RFC 3339 time", now)}
		}
		p.Now = ts
	} else {
		// Not past the clock: ingest takes spans up to an hour ahead, and
		// one such span moved every window (QA).
		row, err := t.First(ctx, "SELECT epoch_us(max(start_timestamp)) FROM records WHERE kind = 'span' AND start_timestamp <= now()")
		if err != nil {
			return p, fmt.Errorf("find the end of the data: %w", err)
		}
		us, ok := row[0].(json.Number)
		if !ok {
			return p, errors.New("no spans in the data set")
		}
		n, _ := us.Int64()
		p.Now = time.UnixMicro(n).UTC()
	}
	// A trace from the middle of the last day, where dashboards do not look.
	q := fmt.Sprintf(`SELECT trace_id, epoch_us(start_timestamp) FROM records WHERE kind = 'span' %s
		AND start_timestamp BETWEEN make_timestamptz(%d) AND make_timestamptz(%d) LIMIT 1`,
		map[bool]string{true: "", false: "AND trace_id = '" + strings.ReplaceAll(traceID, "'", "") + "'"}[traceID == ""],
		p.Now.Add(-13*time.Hour).UnixMicro(), p.Now.Add(-11*time.Hour).UnixMicro())
	if traceID != "" {
		q = fmt.Sprintf("SELECT trace_id, epoch_us(start_timestamp) FROM records WHERE trace_id = '%s' LIMIT 1", strings.ReplaceAll(traceID, "'", ""))
	}
	row, err := t.First(ctx, q)
	if err != nil {
		return p, fmt.Errorf("pick a trace: %w", err)
	}
	if row == nil {
		row, err = t.First(ctx, "SELECT trace_id, epoch_us(start_timestamp) FROM records WHERE kind = 'span' LIMIT 1")
		if err != nil || row == nil {
			return p, fmt.Errorf("pick a trace: none found (%v)", err)
		}
	}
	p.TraceID, _ = row[0].(string)
	us, _ := row[1].(json.Number).Int64()
	p.TraceStart = time.UnixMicro(us).UTC()
	return p, nil
}

// readSQLFile reads queries separated by '-- name: x' lines.
func readSQLFile(path string) ([]bench.SuiteQuery, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []bench.SuiteQuery
	for _, line := range strings.Split(string(b), "\n") {
		if name, ok := strings.CutPrefix(strings.TrimSpace(line), "-- name:"); ok {
			out = append(out, bench.SuiteQuery{Name: strings.TrimSpace(name), WindowHours: 1})
			continue
		}
		if w, ok := strings.CutPrefix(strings.TrimSpace(line), "-- window:"); ok && len(out) > 0 {
			d, err := time.ParseDuration(strings.TrimSpace(w))
			if err != nil || d < 0 {
				return nil, fmt.Errorf("query %q: -- window: %q: want a duration such as 1h or 24h (0 for a lookup)", out[len(out)-1].Name, strings.TrimSpace(w))
			}
			out[len(out)-1].WindowHours = d.Hours()
			continue
		}
		if len(out) == 0 {
			if strings.TrimSpace(line) != "" {
				return nil, errors.New("the first query has no '-- name: <name>' line")
			}
			continue
		}
		out[len(out)-1].SQL += line + "\n"
	}
	for _, q := range out {
		if strings.TrimSpace(q.SQL) == "" {
			return nil, fmt.Errorf("query %q is empty", q.Name)
		}
	}
	return out, nil
}
