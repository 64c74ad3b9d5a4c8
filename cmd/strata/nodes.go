package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/ingest"
)

const queryAbout = `Runs a query node: SQL over HTTP (--query-addr) and the PostgreSQL wire
protocol (--pg-addr). Files come through the cache tier: each from the cache
node that owns it on the ring (--cache-nodes and the nodes announced in the
catalog), kept locally up to --query-cache-size, and from the object store
when the owner is down. Rows acknowledged but not yet flushed come from the
ingest nodes (--ingest-nodes and those announced in the catalog), asked at
each query; a node that does not answer within --ingest-timeout is left out
of that query (logged, counted in strata_query_ingest_failures_total).`

func runQuery(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("query", "", queryAbout)
	var st storage
	st.register(c)
	var qc queryConfig
	qc.register(c)
	var kc cacheConfig
	kc.registerDir(c)
	kc.registerRing(c, true)
	ingestNodes := c.fs.String("ingest-nodes", "", "comma-separated admin `addresses` (--http-addr) of ingest nodes, besides those announced in the catalog")
	ingestTimeout := duration(c.fs, "ingest-timeout", 2*time.Second, "how long a query waits for an ingest node's unflushed rows (`duration`)")
	httpAddr := c.fs.String("http-addr", "127.0.0.1:8082", "`address` of the health check and Prometheus metrics")
	lns, cat, bucket, err := boot(ctx, c, &st, args, stdout, func() map[string]string {
		return map[string]string{"http-addr": *httpAddr, "query-addr": qc.addr, "pg-addr": qc.pgAddr}
	}, kc.resolveDir, qc.check, func(string) error {
		if *ingestTimeout >= qc.queryTimeout {
			return settingError{"ingest-timeout", fmt.Errorf("%v is not shorter than --query-timeout (%v): a hung ingest node would use up every query's time", *ingestTimeout, qc.queryTimeout)}
		}
		return checkAddrs("ingest-nodes", splitList(*ingestNodes))
	})
	if err != nil {
		return err
	}
	defer cat.Close()
	defer closeBucket(bucket)
	reg := newRegistry()
	files, err := newCacheClient(ctx, kc, cat, bucket, nil, reg)
	if err != nil {
		closeAll(lns)
		return err
	}
	secret, err := cat.ClusterSecret(ctx)
	if err != nil {
		closeAll(lns)
		return settingError{"catalog-url", err}
	}
	static := splitList(*ingestNodes)
	peers := ingest.NewPeers(static, *ingestTimeout, secret)
	peers.Watch(ctx, cat, static, heartbeatEvery, nodeTTL)
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_query_ingest_failures_total",
		Help: "Requests to ingest nodes for unflushed rows that failed; those rows were left out of the query.",
	}, func() float64 { return float64(peers.Failures()) }))
	qry, err := startQuery(ctx, qc, lns, kc.dir, cat, files, peers, reg)
	if err != nil {
		closeAll(lns)
		return err
	}
	// Every query lists its files in the catalog; the object store it can
	// be without while the cache tier holds the files.
	admin := serveHTTP("admin", lns["http-addr"], adminMux(reg, &readiness{cat: cat, bucket: bucket, need: map[string]bool{"catalog": true}}, false))
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(qry.close(sctx), admin.srv.Shutdown(sctx))
}

const ingestAbout = `Runs an ingest node: OTLP over HTTP and gRPC in, a write-ahead log on
--scratch-dir, Parquet flushed to the object store and registered in the
catalog. Each flushed file is pushed to its owner in the cache tier
(--cache-nodes and the nodes announced in the catalog). Query nodes read the
rows not yet flushed from --http-addr (GET /v1/unflushed); the node announces
that address in the catalog.`

func runIngest(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("ingest", "", ingestAbout)
	var st storage
	st.register(c)
	var ic ingestConfig
	ic.register(c)
	var kc cacheConfig
	kc.registerRing(c, false)
	httpAddr := c.fs.String("http-addr", "127.0.0.1:8083", "`address` of the health check, Prometheus metrics and unflushed rows for query nodes")
	var advertise string
	registerAdvertise(c, &advertise)
	shutdownTimeout := duration(c.fs, "shutdown-timeout", time.Second, "how long shutdown may take (`duration`)")
	lns, cat, bucket, err := boot(ctx, c, &st, args, stdout, func() map[string]string {
		return map[string]string{"http-addr": *httpAddr, "otlp-http-addr": ic.httpAddr, "otlp-grpc-addr": ic.grpcAddr}
	}, ic.check, func(string) error { return checkHost(advertise) })
	if err != nil {
		return err
	}
	defer cat.Close()
	defer closeBucket(bucket)
	reg := newRegistry()
	files, err := newCacheClient(ctx, kc, cat, bucket, nil, reg)
	if err != nil {
		closeAll(lns)
		return err
	}
	ic.onFlushed = warmer(files)
	ing, err := startIngest(ic, lns, st.dataDir, cat, bucket, reg)
	if err != nil {
		closeAll(lns)
		return err
	}
	// Ready while it accepts requests: it rides out a catalog or object
	// store outage in its WAL.
	mux := adminMux(reg, &readiness{cat: cat, bucket: bucket, accepting: ing.in.Ready, flushing: ing.in.Flushing, need: map[string]bool{"ingest": true}}, false)
	if err := ing.announce(ctx, cat, mux, lns["http-addr"], advertise); err != nil {
		ing.close(context.Background())
		closeAll(lns)
		return err
	}
	admin := serveHTTP("admin", lns["http-addr"], mux) // healthy once announced
	<-ctx.Done()
	slog.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), closeBudget(*shutdownTimeout))
	defer cancel()
	return errors.Join(ing.close(sctx), admin.srv.Shutdown(sctx))
}

// closeBudget is what the closing of a node's parts may take of
// --shutdown-timeout: what is left (up to 100 ms) covers the flushes
// returning from their deadline and the process's exit, so that a node
// whose object store hangs still exits within the timeout (it took
// 1.04 s of 1 s).
func closeBudget(timeout time.Duration) time.Duration {
	return timeout - min(100*time.Millisecond, timeout/10)
}
