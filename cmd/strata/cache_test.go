package main

import (
	"context"
	"net"
	"path/filepath"
	"testing"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/internal/testenv"
)

// In strata serve, the cache node's store and the copies of objects
// other nodes own are two stores, reported apart: they shared one set of
// metrics, whose used bytes were whichever store changed last.
func TestCacheMetrics_NodeAndCopiesReportedApart(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cat := testenv.SQLiteCatalog(t, dir, catalog.Options{})
	bucket := testenv.Bucket(t, testenv.FileURL(dir))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reg := newRegistry()
	cfg := cacheConfig{dir: filepath.Join(dir, "cache"), size: 1 << 20, localSize: 1 << 20}
	self, err := startCacheNode(ctx, cfg, ln, cat, bucket, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newCacheClient(ctx, cfg, cat, bucket, self, reg); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	stores := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "strata_cache_used_bytes" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "store" {
					stores[l.GetValue()] = true
				}
			}
		}
	}
	if !stores["node"] || !stores["copies"] || len(stores) != 2 {
		t.Fatalf("strata_cache_used_bytes series by store: %v, want node and copies", stores)
	}
}
