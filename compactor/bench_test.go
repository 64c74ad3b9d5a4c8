package compactor_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/compactor"
	"github.com/strata-db/strata/engine/schema"
)

// BenchmarkCompact merges 40 level-0 files of realistic spans (one hour
// partition, 5,000 rows each) into one, as a compactor pass does: read,
// k-way merge, write with bloom and trace filters, upload, swap. Reports
// input MB/s on one pass (the merge runs on one goroutine), and the
// largest Go heap in use seen during the merges.
func BenchmarkCompact(b *testing.B) {
	var inBytes int64
	var peak atomic.Uint64
	stop := make(chan struct{})
	defer close(stop)
	go func() { // sample the heap in use
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
		}
	}()
	for range b.N {
		b.StopTimer()
		l := localLake(b)
		l.load(catalog.DefaultProject, 200_000, 0.9, 5_000)
		files, _ := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
		for _, f := range files {
			inBytes += f.Bytes
		}
		c := l.compactor(compactor.Options{})
		runtime.GC()
		peak.Store(0)
		b.StartTimer()
		p, err := c.RunOnce(context.Background())
		if err != nil || p.Jobs == 0 {
			b.Fatal(err, p)
		}
	}
	b.ReportMetric(float64(inBytes)/1e6/b.Elapsed().Seconds(), "MB/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}
