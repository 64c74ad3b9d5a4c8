package ingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/strata-db/strata/bench"
	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/objstore"
)

// Benchmarks of each stage of the ingest pipeline, on the workloads of
// `strata bench ingest`. Each reports spans/s on one core (stages) or in
// total (pipeline). Run: go test -tags duckdb_arrow -run X -bench . ./ingest/

func workloadRequests(b testing.TB, style string, n int) [][]byte {
	w := bench.DefaultWorkload()
	w.Style = style
	g, err := bench.NewGenerator(w)
	if err != nil {
		b.Fatal(err)
	}
	f := g.NewFiller(1)
	var out [][]byte
	now := time.Now()
	for range n {
		var bufs [3][]byte
		out = append(out, append([]byte(nil), f.Next(&bufs, now)[0].Body...))
		// Requests 50 ms apart, as one sender at 10,000 spans/s. With one
		// time for all, a template's spans got equal timestamps and sorted
		// next to each other, flattering every bytes-per-span figure
		// (realistic Parquet 65.4 B/span then, 85.7 B/span now).
		now = now.Add(50 * time.Millisecond)
	}
	return out
}

func decode(b testing.TB, body []byte) ptraceotlp.ExportRequest {
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		b.Fatal(err)
	}
	return req
}

func reportSpans(b *testing.B, spans int) {
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(spans), "µs/span")
}

func forStyles(b *testing.B, fn func(b *testing.B, reqs [][]byte)) {
	for _, style := range []string{"realistic", "telemetrygen"} {
		b.Run(style, func(b *testing.B) { fn(b, workloadRequests(b, style, 128)) })
	}
}

func BenchmarkDecode(b *testing.B) {
	forStyles(b, func(b *testing.B, reqs [][]byte) {
		spans, i := 0, 0
		for b.Loop() {
			spans += decode(b, reqs[i%len(reqs)]).Traces().SpanCount()
			i++
		}
		reportSpans(b, spans)
	})
}

// BenchmarkProtoDepth is the nesting check run on every protobuf body
// before it is decoded.
func BenchmarkProtoDepth(b *testing.B) {
	forStyles(b, func(b *testing.B, reqs [][]byte) {
		spans, i := 0, 0
		counts := make([]int, len(reqs))
		for j, r := range reqs {
			counts[j] = decode(b, r).Traces().SpanCount()
		}
		for b.Loop() {
			if _, err := checkProto(reqs[i%len(reqs)], mTraces); err != nil {
				b.Fatal(err)
			}
			spans += counts[i%len(reqs)]
			i++
		}
		reportSpans(b, spans)
	})
}

func BenchmarkConvert(b *testing.B) {
	forStyles(b, func(b *testing.B, reqs [][]byte) {
		var decoded []ptraceotlp.ExportRequest
		for _, r := range reqs {
			decoded = append(decoded, decode(b, r))
		}
		spans, i := 0, 0
		now := time.Now().Add(time.Minute)
		for b.Loop() {
			td := decoded[i%len(decoded)].Traces()
			rb := newRecordsBuilder(memory.DefaultAllocator, Window{Now: now}, td.SpanCount())
			if err := rb.addTraces("default", td, nil); err != nil {
				b.Fatal(err)
			}
			rb.finish().Release()
			spans += td.SpanCount()
			i++
		}
		reportSpans(b, spans)
	})
}

func convertAll(b testing.TB, reqs [][]byte, copies int) ([]arrow.RecordBatch, int) {
	var out []arrow.RecordBatch
	spans := 0
	now := time.Now().Add(time.Minute)
	for range copies {
		for _, r := range reqs {
			td := decode(b, r).Traces()
			rb := newRecordsBuilder(memory.DefaultAllocator, Window{Now: now}, td.SpanCount())
			if err := rb.addTraces("default", td, nil); err != nil {
				b.Fatal(err)
			}
			out = append(out, rb.finish())
			spans += td.SpanCount()
		}
	}
	return out, spans
}

func BenchmarkEncodeFrame(b *testing.B) {
	forStyles(b, func(b *testing.B, reqs [][]byte) {
		batches, _ := convertAll(b, reqs[:16], 1)
		spans, i := 0, 0
		for b.Loop() {
			rec := batches[i%len(batches)]
			if _, err := encodeFrame(bufKey{project: "default", table: "records"}, rec); err != nil {
				b.Fatal(err)
			}
			spans += int(rec.NumRows())
			i++
		}
		reportSpans(b, spans)
	})
}

// BenchmarkWriteParquet writes segments of about 64k spans, as the flusher
// does, and reports the bytes per span on the object store.
func BenchmarkWriteParquet(b *testing.B) {
	forStyles(b, func(b *testing.B, reqs [][]byte) {
		batches, perFile := convertAll(b, reqs, 1)
		var size int
		spans := 0
		for b.Loop() {
			var buf bytes.Buffer
			if _, err := engine.WriteParquet(&buf, recordsTable, batches, engine.ParquetOptions{}); err != nil {
				b.Fatal(err)
			}
			size = buf.Len()
			spans += perFile
		}
		reportSpans(b, spans)
		b.ReportMetric(float64(size)/float64(perFile), "bytes/span")
	})
}

// BenchmarkPipeline runs decode, convert, WAL (fsync per group commit) and
// the flush to a local object store and SQLite catalog, with concurrent
// callers as the receivers would.
func BenchmarkPipeline(b *testing.B) {
	forStyles(b, func(b *testing.B, reqs [][]byte) {
		dir := b.TempDir()
		ctx := context.Background()
		cat, err := catalog.OpenSQLite(ctx, filepath.Join(dir, "catalog.db"), catalog.Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer cat.Close()
		bucket, err := objstore.Open(ctx, "file://"+filepath.Join(dir, "objects"))
		if err != nil {
			b.Fatal(err)
		}
		defer bucket.Close()
		in, err := Open(cat, bucket, Options{ScratchDir: filepath.Join(dir, "wal")})
		if err != nil {
			b.Fatal(err)
		}
		rcv := NewReceiver(in, 0)
		var spans atomicCounter
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				req := decode(b, reqs[i%len(reqs)])
				if err := rcv.Traces(ctx, req.Traces()); err != nil {
					b.Error(err)
					return
				}
				spans.add(req.Traces().SpanCount())
				i++
			}
		})
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := in.Close(cctx); err != nil {
			b.Fatal(err)
		}
		reportSpans(b, spans.load())
	})
}

type atomicCounter struct{ n atomic.Int64 }

func (c *atomicCounter) add(n int) { c.n.Add(int64(n)) }
func (c *atomicCounter) load() int { return int(c.n.Load()) }

// BenchmarkStorageFloor compares the bytes per span of a level-0 Parquet
// file, and of the same rows written as the compactor writes them (text
// columns at zstd 6), with the practical floor: each column's values, in
// arrival order, compressed by `zstd -19 --long` on its own (needs the
// zstd command). 512 requests (259k realistic spans) make 8 row groups,
// each mostly one service's, as in a large compacted file: a trace's
// spans then sit in different row groups. With 128 requests (2 row
// groups) the realistic file was 5 B/span smaller.
func BenchmarkStorageFloor(b *testing.B) {
	if _, err := exec.LookPath("zstd"); err != nil {
		b.Skip("zstd command not installed")
	}
	for _, style := range []string{"realistic", "telemetrygen"} {
		b.Run(style, func(b *testing.B) { storageFloor(b, workloadRequests(b, style, 512)) })
	}
}

func storageFloor(b *testing.B, reqs [][]byte) {
	batches, spans := convertAll(b, reqs, 1)
	var pq bytes.Buffer
	for b.Loop() {
		pq.Reset()
		if _, err := engine.WriteParquet(&pq, recordsTable, batches, engine.ParquetOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	dir := b.TempDir()
	floor := 0
	for c, f := range recordsTable.Schema.Fields() {
		var raw bytes.Buffer
		for _, rec := range batches {
			col := rec.Column(c)
			for i := range col.Len() {
				switch a := col.(type) {
				case *array.Timestamp:
					binary.Write(&raw, binary.LittleEndian, int64(a.Value(i)))
				case *array.Float64:
					binary.Write(&raw, binary.LittleEndian, a.Value(i))
				default:
					if col.IsValid(i) {
						raw.WriteString(col.ValueStr(i))
					}
					raw.WriteByte('\n')
				}
			}
		}
		p := filepath.Join(dir, f.Name)
		os.WriteFile(p, raw.Bytes(), 0o644)
		if out, err := exec.Command("zstd", "-q", "-19", "--long=27", p, "-o", p+".zst").CombinedOutput(); err != nil {
			b.Fatalf("zstd %s: %v %s", f.Name, err, out)
		}
		st, _ := os.Stat(p + ".zst")
		floor += int(st.Size())
	}
	b.ReportMetric(float64(pq.Len())/float64(spans), "parquet-B/span")
	pq.Reset()
	if _, err := engine.WriteParquet(&pq, recordsTable, batches, engine.ParquetOptions{TextZstdLevel: 6}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(pq.Len())/float64(spans), "compacted-B/span")
	b.ReportMetric(float64(floor)/float64(spans), "zstd19-B/span")
}

// BenchmarkConvertMetricsOneBadPoint converts one gauge of 100,000 points,
// one of them in the far future: the bad point is refused, the others
// kept, point by point (linear; a version that looped over every point
// for each took 14 s).
func BenchmarkConvertMetricsOneBadPoint(b *testing.B) {
	const n = 100_000
	now := time.Now()
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("g")
	dps := m.SetEmptyGauge().DataPoints()
	for i := range n {
		p := dps.AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Duration(i) * time.Millisecond)))
		p.SetDoubleValue(float64(i))
	}
	dps.At(n / 2).SetTimestamp(pcommon.NewTimestampFromTime(now.Add(2 * time.Hour)))
	for b.Loop() {
		rec, err := ConvertMetrics("default", md, Window{Now: now})
		var pe *PartialError
		if !errors.As(err, &pe) || pe.Rejected != 1 || rec.NumRows() != n-1 {
			b.Fatalf("%v, %d rows", err, rec.NumRows())
		}
		rec.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N*n), "µs/point")
}

// BenchmarkConvertHalfBadSpans is an export of 100,000 spans of which
// every other one is refused (its timestamp is two hours ahead): the
// item-by-item path, at its worst.
func BenchmarkConvertHalfBadSpans(b *testing.B) {
	const n = 100_000
	now := time.Now()
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		s := ss.AppendEmpty()
		s.SetName("op")
		s.SetTraceID([16]byte{1, byte(i), byte(i >> 8), byte(i >> 16)})
		s.SetSpanID([8]byte{2, byte(i), byte(i >> 8), byte(i >> 16)})
		at := now.Add(-time.Duration(i) * time.Millisecond)
		if i%2 == 1 {
			at = now.Add(2 * time.Hour)
		}
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Millisecond)))
		s.Attributes().PutStr("http.route", "/a")
	}
	for b.Loop() {
		rec, err := ConvertTraces("default", td, Window{Now: now})
		var pe *PartialError
		if !errors.As(err, &pe) || pe.Rejected != n/2 || rec.NumRows() != n/2 {
			b.Fatalf("%v", err)
		}
		rec.Release()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/1e3/float64(b.N*n), "µs/span")
}
