package bench

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func TestGenerator_RequestsAreValidOTLPWithFreshIDs(t *testing.T) {
	for _, style := range []string{"realistic", "telemetrygen"} {
		w := DefaultWorkload()
		w.Style, w.LogsPerSpan, w.MetricsPerService = style, 0.5, 4
		g, err := NewGenerator(w)
		if err != nil {
			t.Fatal(err)
		}
		f := g.NewFiller(1)
		var bufs [3][]byte
		seen := map[[8]byte]bool{}
		now := time.Now()
		errors, spansTotal := 0, 0
		for range 20 {
			reqs := f.Next(&bufs, now)
			tr := ptraceotlp.NewExportRequest()
			if err := tr.UnmarshalProto(reqs[0].Body); err != nil {
				t.Fatalf("%s: traces do not decode: %v", style, err)
			}
			ids := map[[8]byte]bool{}
			var spans int
			rss := tr.Traces().ResourceSpans()
			for i := range rss.Len() {
				ss := rss.At(i).ScopeSpans().At(0).Spans()
				for j := range ss.Len() {
					sp := ss.At(j)
					spans++
					if seen[sp.SpanID()] {
						t.Fatalf("%s: span id %s repeats across requests", style, sp.SpanID())
					}
					seen[sp.SpanID()], ids[sp.SpanID()] = true, true
					if sp.TraceID().IsEmpty() || sp.EndTimestamp() < sp.StartTimestamp() ||
						sp.EndTimestamp().AsTime().After(now) || now.Sub(sp.StartTimestamp().AsTime()) > time.Minute {
						t.Fatalf("%s: bad span %s %v–%v", style, sp.Name(), sp.StartTimestamp(), sp.EndTimestamp())
					}
					if sp.Status().Code() == 2 {
						errors++
					}
				}
			}
			if spans != reqs[0].Items || spans < w.SpansPerRequest {
				t.Fatalf("%s: %d spans, template says %d", style, spans, reqs[0].Items)
			}
			spansTotal += spans
			// Every parent is a span of the same request.
			for i := range rss.Len() {
				ss := rss.At(i).ScopeSpans().At(0).Spans()
				for j := range ss.Len() {
					if p := ss.At(j).ParentSpanID(); !p.IsEmpty() && !ids[p] {
						t.Fatalf("%s: parent %s not in the request", style, p)
					}
				}
			}
			lr := plogotlp.NewExportRequest()
			if err := lr.UnmarshalProto(reqs[1].Body); err != nil || lr.Logs().LogRecordCount() != reqs[1].Items {
				t.Fatalf("%s: logs: %v, %d records", style, err, lr.Logs().LogRecordCount())
			}
			rl := lr.Logs().ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
			if !ids[rl.SpanID()] {
				t.Fatalf("%s: log refers to span %s outside the trace request", style, rl.SpanID())
			}
			mr := pmetricotlp.NewExportRequest()
			if err := mr.UnmarshalProto(reqs[2].Body); err != nil || mr.Metrics().DataPointCount() != reqs[2].Items {
				t.Fatalf("%s: metrics: %v, %d points", style, err, mr.Metrics().DataPointCount())
			}
		}
		if style == "realistic" && (errors == 0 || float64(errors)/float64(spansTotal) > 0.05) {
			t.Errorf("%d error spans of %d", errors, spansTotal)
		}
	}
}

func BenchmarkGenerator(b *testing.B) {
	g, _ := NewGenerator(DefaultWorkload())
	f := g.NewFiller(1)
	var bufs [3][]byte
	spans := 0
	now := time.Now()
	for b.Loop() {
		spans += f.Next(&bufs, now)[0].Items
	}
	b.ReportMetric(float64(spans)/b.Elapsed().Seconds(), "spans/s")
}
