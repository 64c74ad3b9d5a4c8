package cache_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-db/strata/bench"
	"github.com/strata-db/strata/cache"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/internal/faultproxy"
	"github.com/strata-db/strata/internal/testenv"
	"github.com/strata-db/strata/objstore"
	"github.com/strata-db/strata/sql"
)

// BenchmarkDashboardOverS3 runs the dashboard suite over a data set made by
// `strata bench load` (STRATA_BENCH_DATA_DIR: its SQLite catalog and
// file:// objects) three ways: over the files on local disk, through the
// cache tier warm, and through it cold (an empty cache each run), with the
// objects copied to a real S3-compatible server behind 50 ms of latency
// per request (STRATA_BENCH_S3_DELAY to change it).
func BenchmarkDashboardOverS3(b *testing.B) {
	dataDir := os.Getenv("STRATA_BENCH_DATA_DIR")
	if dataDir == "" {
		b.Skip("STRATA_BENCH_DATA_DIR is not set: make a data set with strata bench load")
	}
	s3URL := testenv.S3URL(b)
	delay := 50 * time.Millisecond
	if d, err := time.ParseDuration(os.Getenv("STRATA_BENCH_S3_DELAY")); err == nil {
		delay = d
	}
	ctx := context.Background()
	cat, err := catalog.OpenSQLite(ctx, filepath.Join(dataDir, "catalog.db"), catalog.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer cat.Close()
	local, err := objstore.Open(ctx, "file://"+filepath.Join(dataDir, "objects"))
	if err != nil {
		b.Fatal(err)
	}
	remote := copyToS3(b, cat, local, s3URL)
	slow := slowURL(b, s3URL, delay)
	far, err := objstore.Open(ctx, slow)
	if err != nil {
		b.Fatal(err)
	}

	root := b.TempDir()
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: []string{root, filepath.Join(dataDir, "objects")},
		TempDir: filepath.Join(root, "spill"), MemoryLimit: "4GB"})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	executor := func(bucket *objstore.Bucket, dir string) *sql.Executor {
		var node *cache.Node
		if dir != "" {
			store, err := cache.OpenStore(filepath.Join(root, dir), 50<<30, nil)
			if err != nil {
				b.Fatal(err)
			}
			node = &cache.Node{Store: store, Bucket: bucket, Catalog: cat, M: cache.NewMetrics()}
		}
		client, err := cache.NewClient(bucket, cache.ClientOptions{Node: node})
		if err != nil {
			b.Fatal(err)
		}
		return sql.NewExecutor(cat, db, client, nil, nil)
	}
	onDisk := executor(local, "")
	warm := executor(far, "warm")
	p := placeholdersFrom(b, onDisk)
	b.Logf("%d files on S3 (%s) behind %v per request", remote, slow, delay)

	run := func(b *testing.B, e *sql.Executor, q string) sql.Stats {
		res, err := e.Run(ctx, catalog.DefaultProject, sql.Request{SQL: q})
		if err != nil {
			b.Fatalf("%v\n%s", err, q)
		}
		for res.Next() {
		}
		if err := res.Err(); err != nil {
			b.Fatal(err)
		}
		res.Release()
		return res.Stats
	}
	for _, sq := range bench.DashboardSuite() {
		q := p.Fill(sq.SQL)
		b.Run(sq.Name+"/local_disk", func(b *testing.B) {
			for b.Loop() {
				run(b, onDisk, q)
			}
		})
		b.Run(sq.Name+"/warm", func(b *testing.B) {
			st := run(b, warm, q) // fill
			for b.Loop() {
				st = run(b, warm, q)
			}
			b.ReportMetric(float64(st.BytesFromCache), "cache_B/op")
		})
		b.Run(sq.Name+"/cold", func(b *testing.B) {
			var st sql.Stats
			for i := 0; b.Loop(); i++ {
				b.StopTimer()
				cold := executor(far, fmt.Sprintf("cold-%s-%d", sq.Name, i))
				b.StartTimer()
				st = run(b, cold, q)
				b.StopTimer()
				os.RemoveAll(filepath.Join(root, fmt.Sprintf("cold-%s-%d", sq.Name, i)))
				b.StartTimer()
			}
			b.ReportMetric(float64(st.BytesFromObjectStore), "objstore_B/op")
		})
	}
}

// copyToS3 puts every live file's object into the S3 bucket (skipping
// those already there) and returns how many there are.
func copyToS3(b *testing.B, cat catalog.Store, from *objstore.Bucket, s3URL string) int {
	ctx := context.Background()
	to, err := objstore.Open(ctx, s3URL)
	if err != nil {
		b.Fatal(err)
	}
	defer to.Close()
	files, err := cat.ListFiles(ctx, catalog.FileFilter{Project: catalog.DefaultProject, Table: "records"})
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range files {
		if attrs, err := to.Attributes(ctx, f.Key); err == nil && attrs.Size == f.Bytes {
			continue
		}
		p, _ := from.LocalPath(f.Key)
		if err := to.PutFile(ctx, f.Key, p); err != nil {
			b.Fatal(err)
		}
	}
	return len(files)
}

// slowURL points an s3:// URL's endpoint at a proxy adding delay.
func slowURL(b *testing.B, s3URL string, delay time.Duration) string {
	u, err := url.Parse(s3URL)
	if err != nil {
		b.Fatal(err)
	}
	q := u.Query()
	q.Set("endpoint", "http://"+faultproxy.StartDelayHTTP(b, q.Get("endpoint"), delay))
	u.RawQuery = q.Encode()
	return u.String()
}

// placeholdersFrom picks the suite's "now" and a trace id from the data.
func placeholdersFrom(b *testing.B, e *sql.Executor) bench.Placeholders {
	ctx := context.Background()
	res, err := e.Run(ctx, catalog.DefaultProject, sql.Request{SQL: `SELECT epoch_us(max(start_timestamp)) FROM records WHERE kind = 'span'`})
	if err != nil {
		b.Fatal(err)
	}
	defer res.Release()
	if !res.Next() {
		b.Fatal("no spans in the data set")
	}
	now := time.UnixMicro(res.RecordBatch().Column(0).GetOneForMarshal(0).(int64))
	res.Release()
	res, err = e.Run(ctx, catalog.DefaultProject, sql.Request{SQL: fmt.Sprintf(
		`SELECT trace_id, epoch_us(start_timestamp) FROM records WHERE kind = 'span' AND start_timestamp > make_timestamptz(%d) LIMIT 1`,
		now.Add(-30*time.Minute).UnixMicro())})
	if err != nil {
		b.Fatal(err)
	}
	defer res.Release()
	if !res.Next() {
		b.Fatal("no recent span")
	}
	rec := res.RecordBatch()
	return bench.Placeholders{Now: now, TraceID: strings.Clone(rec.Column(0).GetOneForMarshal(0).(string)), // outlives the batch
		TraceStart: time.UnixMicro(rec.Column(1).GetOneForMarshal(0).(int64)), MissingTraceID: testenv.RandomHex(16)}
}
