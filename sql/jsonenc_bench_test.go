package sql

import (
	"context"
	"io"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/strata-db/strata/engine"
)

// BenchmarkWriteJSON encodes a 100k-row result shaped like a span search
// (ids, names, times, numbers, a JSON attributes column) as the HTTP API
// does. The rows come from DuckDB once; only the encoding is timed.
func BenchmarkWriteJSON(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	db, err := engine.Open(ctx, engine.Options{AllowedDirs: []string{dir}, TempDir: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	const rows = 100_000
	rs, err := db.Query(ctx, engine.Query{Raw: true, SQL: `SELECT md5(i::VARCHAR) AS trace_id, substr(md5((i * 7)::VARCHAR), 1, 16) AS span_id,
		'service-' || (i % 8) AS service_name, 'GET /api/v1/items/{id}' AS span_name,
		TIMESTAMPTZ '2026-11-23 10:00:00+00' + i * INTERVAL 1 MILLISECOND AS start_timestamp,
		(i % 997) / 1000.0 AS duration, CASE WHEN i % 50 = 0 THEN 'ERROR' ELSE 'UNSET' END AS otel_status_code,
		200 + (i % 3) * 100 AS http_status_code, i % 50 = 0 AS is_exception,
		('{"http.route":"/api/v1/items/{id}","user.id":"user-' || (i % 5000) || '","retry":' || (i % 3) || '}')::JSON AS attributes
		FROM range(` + "100000" + `) t(i)`})
	if err != nil {
		b.Fatal(err)
	}
	var batches []arrow.RecordBatch
	for rs.Next() {
		rec := rs.RecordBatch()
		rec.Retain()
		batches = append(batches, rec)
	}
	schema := rs.Schema()
	rs.Release()
	b.ResetTimer()
	for range b.N {
		rdr, err := array.NewRecordReader(schema, batches)
		if err != nil {
			b.Fatal(err)
		}
		res := &Result{Rows: &engine.Rows{RecordReader: rdr}}
		if err := writeJSON(io.Discard, res); err != nil {
			b.Fatal(err)
		}
		if res.Stats.Rows != rows {
			b.Fatalf("encoded %d rows, want %d", res.Stats.Rows, rows)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
