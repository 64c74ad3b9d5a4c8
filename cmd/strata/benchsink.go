package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/strata-db/strata/bench"
)

const benchSinkAbout = `Runs an OTLP receiver (HTTP and gRPC) that acknowledges every request and
keeps nothing. By default it decodes each request with the OpenTelemetry
Collector's pdata module and counts spans, log records and points — what a
Collector with a no-op exporter does, a baseline to compare backends with.
With --discard it only reads each body, so 'bench ingest' against it
measures the load generator itself.

It prints what it received once a second; Ctrl-C prints the totals.

Examples:
  strata bench sink --discard &
  strata bench ingest --endpoint http://127.0.0.1:4318 --duration 20s`

func runBenchSink(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("bench sink", "", benchSinkAbout)
	c.restFromCommandLine()
	var httpAddr, grpcAddr string
	var discard, quiet bool
	c.fs.StringVar(&httpAddr, "otlp-http-addr", "127.0.0.1:4318", "`address` of the OTLP/HTTP receiver")
	c.fs.StringVar(&grpcAddr, "otlp-grpc-addr", "127.0.0.1:4317", "`address` of the OTLP/gRPC receiver")
	c.fs.BoolVar(&discard, "discard", false, "read each body and acknowledge it without decoding")
	c.fs.BoolVar(&quiet, "quiet", false, "no line per second")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	lns, err := bind(map[string]string{"otlp-http-addr": httpAddr, "otlp-grpc-addr": grpcAddr})
	if err != nil {
		return err
	}
	sink := bench.NewSink(!discard)
	h := serveHTTP("sink", lns["otlp-http-addr"], sink)
	g := grpc.NewServer(sink.ServerOptions()...)
	sink.RegisterGRPC(g)
	go g.Serve(lns["otlp-grpc-addr"])
	mode := "decoding with pdata"
	if discard {
		mode = "discarding undecoded"
	}
	fmt.Fprintf(stdout, "sink: OTLP/HTTP on %s, OTLP/gRPC on %s, %s\n", lns["otlp-http-addr"].Addr(), lns["otlp-grpc-addr"].Addr(), mode)
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var last bench.SinkCounts
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-tick.C:
			now := sink.Counts()
			if !quiet && now.Requests != last.Requests {
				fmt.Fprintf(os.Stderr, "sink: %8d req/s  %10d spans/s  %8.1f MiB/s\n", now.Requests-last.Requests, now.Spans-last.Spans, float64(now.Bytes-last.Bytes)/(1<<20))
			}
			last = now
		}
	}
	g.Stop()
	h.srv.Close()
	n := sink.Counts()
	el := time.Since(start).Seconds()
	fmt.Fprintf(stdout, "sink: %d requests, %.1f MiB, %d spans, %d log records, %d points in %.1fs\n",
		n.Requests, float64(n.Bytes)/(1<<20), n.Spans, n.Logs, n.Points, el)
	return nil
}
