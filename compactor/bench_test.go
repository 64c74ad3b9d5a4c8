package compactor_test

import (
	"context"
	"testing"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/compactor"
	"github.com/strata-db/strata/engine/schema"
)

// BenchmarkCompact merges 40 level-0 files of realistic spans (one hour
// partition, 5,000 rows each) into one, as a compactor pass does: read,
// k-way merge, write with bloom and trace filters, upload, swap. Reports
// input MB/s on one pass (the merge runs on one goroutine).
func BenchmarkCompact(b *testing.B) {
	var inBytes int64
	for range b.N {
		b.StopTimer()
		l := localLake(b)
		l.load(catalog.DefaultProject, 200_000, 0.9, 5_000)
		files, _ := l.cat.ListFiles(context.Background(), catalog.FileFilter{Project: catalog.DefaultProject, Table: schema.Records})
		for _, f := range files {
			inBytes += f.Bytes
		}
		c := l.compactor(compactor.Options{})
		b.StartTimer()
		p, err := c.RunOnce(context.Background())
		if err != nil || p.Jobs == 0 {
			b.Fatal(err, p)
		}
	}
	b.ReportMetric(float64(inBytes)/1e6/b.Elapsed().Seconds(), "MB/s")
}
