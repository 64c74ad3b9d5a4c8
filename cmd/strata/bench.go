package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/strata-db/strata/bench"
)

const benchAbout = `Measures strata, or any OTLP receiver, on this hardware.

  strata bench ingest   send a synthetic workload over OTLP and report
                        throughput, acknowledgement latency and errors
  strata bench query    run the dashboard query suite against strata, and
                        side by side against raw DuckDB over the same files
  strata bench load     write a synthetic data set straight to Parquet and
                        the catalog, for query benchmarks
  strata bench plan     turn saved measurements and a target load into a
                        capacity plan: nodes, SSD, object storage, catalog
  strata bench sink     an OTLP receiver that acknowledges and keeps
                        nothing, to compare with or to measure the generator

Run 'strata bench <subcommand> --help' for its flags.`

func runBench(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(stdout, "Usage: strata bench <subcommand> [flags]\n\n%s\n", benchAbout)
		if len(args) == 0 {
			return usageError{errors.New("bench: missing subcommand (ingest)")}
		}
		return errHelp
	}
	switch args[0] {
	case "ingest":
		return runBenchIngest(ctx, args[1:], stdout)
	case "load":
		return runBenchLoad(ctx, args[1:], stdout)
	case "query":
		return runBenchQuery(ctx, args[1:], stdout)
	case "plan":
		return runBenchPlan(ctx, args[1:], stdout)
	case "sink":
		return runBenchSink(ctx, args[1:], stdout)
	}
	return usageError{fmt.Errorf("bench: unknown subcommand %q (see 'strata bench --help')", args[0])}
}

const benchIngestAbout = `Sends a synthetic, reproducible workload over OTLP (gRPC or HTTP) to any
endpoint — strata, or another receiver to compare with — at a fixed rate or
as fast as it is acknowledged, and reports what was acknowledged, refused
and failed. Nothing is dropped silently: every item is counted by outcome.

A live progress line shows rate, acknowledged items, errors and latency.
Ctrl-C stops the run and prints the partial summary. With --metrics-url
pointing at the server's Prometheus endpoint the report adds the server's
CPU per span, memory, and (for strata) object store bytes per span; with
--query-url it measures the time from acknowledgement to queryable.

Examples:
  strata bench ingest --duration 60s --workers 8
  strata bench ingest --protocol grpc --endpoint 127.0.0.1:4317 --rate 100000
  strata bench ingest --style telemetrygen --metrics-url http://127.0.0.1:8080/metrics`

func runBenchIngest(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("bench ingest", "", benchIngestAbout)
	c.restFromCommandLine()
	w := bench.DefaultWorkload()
	o := bench.IngestOptions{}
	var rf reportFlags
	c.fs.StringVar(&o.Endpoint, "endpoint", "", "OTLP `endpoint` (default http://127.0.0.1:4318, or 127.0.0.1:4317 with --protocol grpc)")
	c.fs.StringVar(&o.Protocol, "protocol", "http", "OTLP transport: `http` or grpc")
	c.fs.StringVar(&o.Compression, "compression", "none", "request compression: `none`, gzip or zstd")
	c.fs.IntVar(&o.Workers, "workers", 8, "concurrent senders (`n`)")
	c.fs.Float64Var(&o.Rate, "rate", 0, "target spans per second in total (`n`); 0 sends as fast as acknowledged")
	durationVar(c.fs, &o.Duration, "duration", 30*time.Second, "how long to send (`duration`)")
	c.fs.StringVar(&o.MetricsURL, "metrics-url", "", "server's Prometheus `url`, e.g. http://127.0.0.1:8080/metrics")
	c.fs.StringVar(&o.QueryURL, "query-url", "", "strata query API `url`, e.g. http://127.0.0.1:8011, to measure time to queryable")
	c.fs.StringVar(&w.Style, "style", w.Style, "workload `style`: realistic or telemetrygen")
	c.fs.Uint64Var(&w.Seed, "seed", w.Seed, "random `seed`; the same seed sends the same workload")
	c.fs.IntVar(&w.Services, "services", w.Services, "distinct services (`n`)")
	c.fs.IntVar(&w.Operations, "operations", w.Operations, "operations per service (`n`)")
	c.fs.IntVar(&w.Depth, "depth", w.Depth, "trace depth below the root (`n`)")
	c.fs.IntVar(&w.FanOut, "fanout", w.FanOut, "most children per span (`n`)")
	c.fs.IntVar(&w.Attributes, "attributes", w.Attributes, "custom attributes per span (`n`), besides the semantic ones")
	c.fs.IntVar(&w.Cardinality, "cardinality", w.Cardinality, "distinct values per custom attribute (`n`)")
	c.fs.Float64Var(&w.ErrorRate, "error-rate", w.ErrorRate, "fraction of traces that fail with an exception (`f`)")
	c.fs.Float64Var(&w.LogsPerSpan, "logs-per-span", w.LogsPerSpan, "log records per span (`f`)")
	c.fs.IntVar(&w.MetricsPerService, "metrics-per-service", w.MetricsPerService, "metric series per service per request (`n`)")
	c.fs.IntVar(&w.SpansPerRequest, "spans-per-request", w.SpansPerRequest, "spans per export request (`n`)")
	rf.register(c)
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if err := rf.check("ingest"); err != nil {
		return err
	}
	if o.Endpoint == "" {
		o.Endpoint = "http://127.0.0.1:4318"
		if o.Protocol == "grpc" {
			o.Endpoint = "127.0.0.1:4317"
		}
	}
	o.Workload = w
	if err := o.Validate(); err != nil {
		return usageError{fmt.Errorf("bench ingest: %w", err)}
	}
	rep, err := bench.RunIngest(ctx, o, os.Stderr)
	if err != nil {
		return err
	}
	if err := rf.write(stdout, rep); err != nil {
		return err
	}
	if c := rep.Spans; c.Acked == 0 && c.Failed > 0 {
		return fmt.Errorf("every export failed, the first with: %s", rep.FirstFailure)
	}
	return nil
}

// report is what every bench command writes.
type report interface {
	WriteText(io.Writer)
	WriteHTML(io.Writer) error
}

// reportFlags are the output flags every bench command shares.
type reportFlags struct{ format, out, html string }

func (f *reportFlags) register(c *command) {
	c.fs.StringVar(&f.format, "format", "table", "summary `format` on stdout: table or json")
	c.fs.StringVar(&f.out, "out", "", "write the JSON report to this `file` (and, unless --html says otherwise, the HTML report beside it)")
	c.fs.StringVar(&f.html, "html", "", "write the HTML report, with charts, to this `file`")
}

func (f *reportFlags) check(name string) error {
	if f.format == "text" {
		f.format = "table"
	}
	if f.format != "table" && f.format != "json" {
		return usageError{fmt.Errorf("bench %s: --format %q: want table or json", name, f.format)}
	}
	if f.html == "" && f.out != "" {
		f.html = strings.TrimSuffix(f.out, filepath.Ext(f.out)) + ".html"
	}
	return nil
}

// write prints a bench report as a table or JSON, and saves it as JSON and
// HTML to the files named.
func (f *reportFlags) write(stdout io.Writer, rep report) error {
	if f.format == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		rep.WriteText(stdout)
	}
	if f.out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		if err := os.WriteFile(f.out, b, 0o644); err != nil {
			return fmt.Errorf("write report: %w", err)
		}
	}
	if f.html != "" {
		var buf bytes.Buffer
		if err := rep.WriteHTML(&buf); err != nil {
			return fmt.Errorf("HTML report: %w", err)
		}
		if err := os.WriteFile(f.html, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write HTML report: %w", err)
		}
		fmt.Fprintf(os.Stderr, "report: %s\n", f.html)
	}
	return nil
}
