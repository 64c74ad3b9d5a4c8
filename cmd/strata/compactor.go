package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/compactor"
	"github.com/strata-db/strata/objstore"
)

type compactorConfig struct {
	interval    time.Duration
	minAge      time.Duration
	leaseTTL    time.Duration
	target      byteSize
	maxInputs   int
	grace       time.Duration
	orphanGrace time.Duration
	disabled    bool
	onMerged    func([]catalog.File) // set by the command, not a flag
}

func (c *compactorConfig) register(cmd *command, withDisable bool) {
	c.target = 256 << 20
	durationVar(cmd.fs, &c.interval, "compact-interval", 20*time.Second, "pause between compaction passes (`duration`)")
	cmd.fs.Var(&c.target, "compact-target-size", "`size` merged files grow to")
	cmd.fs.IntVar(&c.maxInputs, "compact-max-inputs", 32, "files one merge reads at once (`n`, at least 2); a merge's memory grows with it, 5–15 MB a file")
	durationVar(cmd.fs, &c.minAge, "compact-min-age", 0, "level-0 files younger than this wait for a later pass (`duration`); each pass already merges the flushes since the last")
	durationVar(cmd.fs, &c.leaseTTL, "compact-lease-ttl", 2*time.Minute, "how long a partition job stays leased to a compactor that stopped renewing it, e.g. one that died (`duration`)")
	durationVar(cmd.fs, &c.grace, "gc-grace", 10*time.Minute, "how long merged-away files stay readable before deletion (`duration`); longer than --query-timeout")
	durationVar(cmd.fs, &c.orphanGrace, "gc-orphan-grace", 6*time.Hour, "age at which objects no catalog row refers to are deleted (`duration`); at least 1h in production: an ingest node waiting for the catalog uploads its files again every 30 minutes")
	if withDisable {
		cmd.fs.BoolVar(&c.disabled, "no-compactor", false, "do not run the compactor in this process")
	}
}

type compactorRole struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// check refuses settings the compactor cannot work with (durations are
// checked positive when flags are read).
func (c compactorConfig) check() error {
	switch {
	case c.leaseTTL < time.Second:
		return settingError{"compact-lease-ttl", fmt.Errorf("%v is under 1s: a lease is renewed every third of it, through the catalog", c.leaseTTL)}
	case c.target < 1<<20:
		return settingError{"compact-target-size", fmt.Errorf("%v is under 1 MiB", c.target)}
	case c.maxInputs < 2:
		return settingError{"compact-max-inputs", fmt.Errorf("%d: a merge needs at least 2 files", c.maxInputs)}
	}
	return nil
}

func startCompactor(c compactorConfig, dataDir string, cat catalog.Store, bucket *objstore.Bucket, reg *prometheus.Registry) (*compactorRole, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if c.orphanGrace < time.Hour {
		slog.Warn("--gc-orphan-grace under 1h: files of a flush or merge that waits that long for the catalog can be deleted as orphans", "gc-orphan-grace", c.orphanGrace)
	}
	comp, err := compactor.New(cat, bucket, compactor.Options{Interval: c.interval, TargetBytes: int64(c.target), MaxInputs: c.maxInputs,
		MinAge: c.minAge, LeaseTTL: c.leaseTTL, Grace: c.grace, OrphanGrace: c.orphanGrace, WorkDir: filepath.Join(dataDir, "compactor"),
		OnMerged: c.onMerged})
	if err != nil {
		return nil, settingError{"data-dir", err}
	}
	reg.MustRegister(comp.Metrics.Collectors()...)
	ctx, cancel := context.WithCancel(context.Background())
	r := &compactorRole{cancel: cancel}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		comp.Run(ctx)
	}()
	return r, nil
}

// close stops the compactor and waits for it until ctx ends. A merge
// abandoned then is safe: its outputs were never registered, the
// orphan scan deletes them, and its lease expires.
func (r *compactorRole) close(ctx context.Context) {
	r.cancel()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		slog.Warn("shutdown: a compactor merge did not stop in time; it is abandoned, to be done again")
	}
}

const compactorAbout = `Runs a compactor: merges the small Parquet files that ingest flushes into
files of --compact-target-size per hour partition (and a cold day's small
files into one day file), tombstones files past their project's retention
(rewriting a file once half of it is past; queries never see expired rows
meanwhile), and deletes the objects of merged-away files after --gc-grace
and objects no catalog row refers to after --gc-orphan-grace. Each merged file is pushed to its owner
in the cache tier (--cache-nodes and the nodes announced in the catalog).
Several compactors may share one catalog: each partition is merged under a
lease, so no work is done twice.
'strata serve' runs one too.`

func runCompactor(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("compactor", "", compactorAbout)
	var st storage
	st.register(c)
	var cc compactorConfig
	cc.register(c, false)
	var kc cacheConfig
	kc.registerRing(c, false)
	httpAddr := c.fs.String("http-addr", "127.0.0.1:8081", "`address` of the health check and Prometheus metrics")
	lns, cat, bucket, err := boot(ctx, c, &st, args, stdout, func() map[string]string {
		return map[string]string{"http-addr": *httpAddr}
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
	cc.onMerged = warmer(files)
	if cc.grace > 0 && cc.grace <= defaultQueryTimeout { // 0 or less means the default, 10 min; strata serve checks against its own --query-timeout
		slog.Warn("--gc-grace is not longer than the query nodes' default --query-timeout: merged-away files can be deleted under a running query", "gc-grace", cc.grace, "default-query-timeout", defaultQueryTimeout)
	}
	comp, err := startCompactor(cc, st.dataDir, cat, bucket, reg)
	if err != nil {
		return err
	}
	admin := serveHTTP("admin", lns["http-addr"], adminMux(reg, &readiness{cat: cat, bucket: bucket, need: map[string]bool{"catalog": true, "object_store": true}}, false))
	slog.Info("compactor running", "http", admin.addr, "objects", bucket.String())
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	comp.close(sctx)
	admin.srv.Shutdown(sctx)
	slog.Info("stopped")
	return nil
}
