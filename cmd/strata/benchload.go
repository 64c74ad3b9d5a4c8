package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/strata-db/strata/bench"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/ingest"
)

const benchLoadAbout = `Writes a synthetic data set straight into a strata catalog and object
store, for query benchmarks: the workload of 'bench ingest', stamped at times
spread evenly over --hours up to --end, converted exactly as ingest converts
OTLP, and written as Parquet files of up to --file-rows rows per table and
hour (like compacted files). It skips the WAL and OTLP, so it is not a
measure of ingest; it makes 50 million spans in minutes.

The same flags make the same data set, ids included. Stop strata serve
first when it uses a SQLite catalog in the same data dir.

Examples:
  strata bench load --spans 50000000 --data-dir /tmp/bench50m
  strata bench load --spans 1000000 --hours 1 --logs-per-span 1`

func runBenchLoad(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("bench load", "", benchLoadAbout)
	var st storage
	st.register(c)
	c.restFromCommandLine()
	w := bench.DefaultWorkload()
	w.LogsPerSpan = 0.5
	var o bench.LoadOptions
	var hours float64
	var end string
	var fileRows int64
	var project string
	c.fs.Int64Var(&o.Spans, "spans", 1_000_000, "spans to generate (`n`); logs and metrics come on top")
	c.fs.Float64Var(&hours, "hours", 24, "time range of the data set in `hours`")
	c.fs.StringVar(&end, "end", "now", "end of the time range: `now` or an RFC 3339 time")
	c.fs.Int64Var(&fileRows, "file-rows", 1_000_000, "most rows per Parquet file (`n`)")
	c.fs.StringVar(&project, "project", catalog.DefaultProject, "`project` that owns the data")
	c.fs.StringVar(&w.Style, "style", w.Style, "workload `style`: realistic or telemetrygen")
	c.fs.Uint64Var(&w.Seed, "seed", w.Seed, "random `seed`; the same seed makes the same data")
	c.fs.IntVar(&w.Services, "services", w.Services, "distinct services (`n`)")
	c.fs.IntVar(&w.Operations, "operations", w.Operations, "operations per service (`n`)")
	c.fs.IntVar(&w.Attributes, "attributes", w.Attributes, "custom attributes per span (`n`)")
	c.fs.Float64Var(&w.ErrorRate, "error-rate", w.ErrorRate, "fraction of traces that fail (`f`)")
	c.fs.Float64Var(&w.LogsPerSpan, "logs-per-span", w.LogsPerSpan, "log records per span (`f`)")
	c.fs.IntVar(&w.MetricsPerService, "metrics-per-service", w.MetricsPerService, "metric series per service per request (`n`)")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if err := st.resolve(); err != nil {
		return err
	}
	o.Workload = w
	o.End = time.Now().UTC()
	if end != "now" {
		t, err := time.Parse(time.RFC3339, end)
		if err != nil {
			return usageError{fmt.Errorf("bench load: --end %q: want now or an RFC 3339 time", end)}
		}
		o.End = t.UTC()
	}
	if hours <= 0 || fileRows < 1 {
		return usageError{fmt.Errorf("bench load: --hours and --file-rows must be positive")}
	}
	o.Start = o.End.Add(-time.Duration(hours * float64(time.Hour)))
	if err := o.Validate(); err != nil {
		return usageError{fmt.Errorf("bench load: %w", err)}
	}
	cat, bucket, err := st.open(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	defer bucket.Close()
	if _, err := cat.Project(ctx, project); err != nil {
		return fmt.Errorf("bench load: project %q: %w", project, err)
	}

	bw := ingest.NewBulkWriter(cat, bucket, 1, fileRows, engine.ParquetOptions{})
	start := time.Now()
	var spans, items int64
	last := start
	bar := bench.NewProgress(os.Stderr)
	err = bench.Generate(ctx, o, func(r bench.Request, at time.Time) error {
		rec, table, err := convert(project, r, at)
		if err != nil {
			return err
		}
		defer rec.Release()
		if r.Signal == "traces" {
			spans += int64(r.Items)
		}
		items += int64(r.Items)
		if now := time.Now(); now.Sub(last) > time.Second {
			last = now
			el := now.Sub(start).Seconds()
			bar.Update("%s %5.1f%%  %d spans  %.0f items/s  at %s ",
				bench.ProgressBar(float64(spans)/float64(o.Spans)), 100*float64(spans)/float64(o.Spans), spans, float64(items)/el, at.Format(time.DateTime))
		}
		return bw.Add(ctx, project, table, rec)
	})
	stats, cerr := bw.Close(context.WithoutCancel(ctx))
	bar.Done()
	if err == nil {
		err = cerr
	}
	el := time.Since(start)
	fmt.Fprintf(stdout, "wrote %d files, %d rows (%d spans, %d items in all), %.1f MiB, %.1f B/row, in %s (%.0f rows/s)\n",
		stats.Files, stats.Rows, spans, items, float64(stats.Bytes)/(1<<20), float64(stats.Bytes)/float64(max(1, stats.Rows)),
		el.Round(time.Second), float64(stats.Rows)/el.Seconds())
	fmt.Fprintf(stdout, "time range %s .. %s, project %s, object store %s\n",
		o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339), project, bucket)
	return err
}

// convert decodes a generated request and converts it as ingest does.
func convert(project string, r bench.Request, at time.Time) (arrow.RecordBatch, string, error) {
	now := at.Add(time.Hour) // the generated times are the clock
	switch r.Signal {
	case "traces":
		td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(r.Body)
		if err != nil {
			return nil, "", err
		}
		rec, err := ingest.ConvertTraces(project, td, ingest.Window{Now: now})
		return rec, schema.Records, err
	case "logs":
		ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(r.Body)
		if err != nil {
			return nil, "", err
		}
		rec, err := ingest.ConvertLogs(project, ld, ingest.Window{Now: now})
		return rec, schema.Records, err
	default:
		md, err := (&pmetric.ProtoUnmarshaler{}).UnmarshalMetrics(r.Body)
		if err != nil {
			return nil, "", err
		}
		rec, err := ingest.ConvertMetrics(project, md, ingest.Window{Now: now})
		return rec, schema.Metrics, err
	}
}
