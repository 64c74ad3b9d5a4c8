package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/strata-db/strata/objstore"
)

const serveAbout = `Runs every strata role in one process on embedded defaults: a SQLite
catalog and objects in a local directory, both under the data dir
(~/.strata), unless --catalog-url and --object-store-url point elsewhere.

  OTLP/HTTP   --otlp-http-addr  (127.0.0.1:4318)  POST /v1/traces, /v1/logs, /v1/metrics
  OTLP/gRPC   --otlp-grpc-addr  (127.0.0.1:4317)
  SQL         --query-addr      (127.0.0.1:8011)  POST /v1/query {"sql": "..."}
  Postgres    --pg-addr         (127.0.0.1:5433)  psql, pgx, Grafana
  cache       --cache-addr      (127.0.0.1:9001)  GET /objects/{key} for other query nodes
  health      --http-addr       (127.0.0.1:8080)  GET /healthz, /readyz, /metrics

The catalog is created and migrated on start; WAL segments left by a crash
are replayed and flushed. SIGINT or SIGTERM stop the receivers, flush what
was acknowledged, and exit within --shutdown-timeout; whatever could not be
flushed in time stays in the WAL for the next start.`

func runServe(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("serve", "", serveAbout)
	var st storage
	st.register(c)
	var ic ingestConfig
	ic.register(c)
	var qc queryConfig
	qc.register(c)
	var kc cacheConfig
	kc.registerNode(c)
	kc.registerDir(c)
	kc.registerRing(c, true)
	var cc compactorConfig
	cc.register(c, true)
	httpAddr := c.fs.String("http-addr", "127.0.0.1:8080", "`address` of the health check and Prometheus metrics")
	shutdownTimeout := duration(c.fs, "shutdown-timeout", time.Second, "how long shutdown may take (`duration`)")
	lns, cat, bucket, err := boot(ctx, c, &st, args, stdout, func() map[string]string {
		return map[string]string{"http-addr": *httpAddr, "otlp-http-addr": ic.httpAddr,
			"otlp-grpc-addr": ic.grpcAddr, "query-addr": qc.addr, "pg-addr": qc.pgAddr, "cache-addr": kc.addr}
	}, kc.resolveDir, qc.check, ic.check)
	if err != nil {
		return err
	}
	defer cat.Close()
	defer closeBucket(bucket)
	if !cc.disabled { // before any role starts
		if err := cc.check(); err != nil {
			return err
		}
		if cc.grace <= qc.queryTimeout {
			return settingError{"gc-grace", fmt.Errorf("%v is not longer than --query-timeout (%v): merged-away files could be deleted under a running query", cc.grace, qc.queryTimeout)}
		}
	}

	reg := newRegistry()
	node, err := startCacheNode(ctx, kc, lns["cache-addr"], cat, bucket, reg)
	if err != nil {
		return err
	}
	files, err := newCacheClient(ctx, kc, cat, bucket, node, reg)
	if err != nil {
		return err
	}
	cacheSrv := serveHTTP("cache", lns["cache-addr"], node.node.Handler(http.NotFoundHandler()))
	ic.onFlushed = warmer(files)
	cc.onMerged = warmer(files)
	ing, err := startIngest(ic, lns, st.dataDir, cat, bucket, reg)
	if err != nil {
		return err
	}
	qry, err := startQuery(ctx, qc, lns, kc.dir, cat, files, ing.in, reg)
	if err != nil {
		ing.close(context.Background())
		return err
	}
	var comp *compactorRole
	if !cc.disabled {
		if comp, err = startCompactor(cc, st.dataDir, cat, bucket, reg); err != nil {
			ing.close(context.Background())
			qry.close(context.Background())
			return err
		}
	}
	// Only ingest's own limits take it out of a load balancer: it rides out
	// a catalog or object store outage in its WAL.
	mux := adminMux(reg, &readiness{cat: cat, bucket: bucket, accepting: ing.in.Ready, flushing: ing.in.Flushing, need: map[string]bool{"ingest": true}}, false)
	// Query nodes added beside this one read its unflushed rows too.
	if err := ing.announce(ctx, cat, mux, lns["http-addr"], kc.advertise); err != nil {
		ing.close(context.Background())
		qry.close(context.Background())
		if comp != nil {
			comp.close(context.Background())
		}
		return err
	}
	admin := serveHTTP("admin", lns["http-addr"], mux)
	slog.Info("strata serving", "http", admin.addr, "data_dir", st.dataDir,
		"catalog", objstore.Redact(st.catalogURL), "objects", bucket.String())

	<-ctx.Done()
	slog.Info("shutting down")
	start := time.Now()
	sctx, cancel := context.WithTimeout(context.Background(), closeBudget(*shutdownTimeout))
	defer cancel()
	if comp != nil {
		comp.cancel() // a merge stops at its next batch while ingest flushes
	}
	// Receivers first, so nothing new is acknowledged; then the flush.
	err = errors.Join(ing.close(sctx), qry.close(sctx), admin.srv.Shutdown(sctx), cacheSrv.srv.Shutdown(sctx))
	if comp != nil {
		comp.close(sctx)
	}
	if err != nil {
		slog.Warn("shutdown incomplete", "err", err)
	}
	slog.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}
