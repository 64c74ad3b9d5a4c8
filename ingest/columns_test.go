package ingest

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A few exports of one span with huge attributes used to set the size hint
// of the attributes column to megabytes per row, and the next export of
// many small spans reserved that much for each of its rows: 115 GB for a
// 10,000-span export after four such spans, and the process died.
func TestConvert_HugeRowsDoNotInflateTheNextBatch(t *testing.T) {
	now := time.Now()
	w := Window{Now: now.Add(time.Hour)}
	big := strings.Repeat("x", 20_000)
	for r := range 4 {
		td := ptrace.NewTraces()
		sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{1, byte(r + 1)})
		sp.SetSpanID([8]byte{1, byte(r + 1)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		for a := range 15 {
			sp.Attributes().PutStr(fmt.Sprintf("a%d", a), big)
		}
		rec, err := ConvertTraces("default", td, w)
		if err != nil {
			t.Fatal(err)
		}
		rec.Release()
	}

	small := ptrace.NewTraces()
	spans := small.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i := range 2000 {
		sp := spans.AppendEmpty()
		sp.SetTraceID([16]byte{2, byte(i), byte(i >> 8)})
		sp.SetSpanID([8]byte{2, byte(i), byte(i >> 8)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	rec, err := ConvertTraces("default", small, w)
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	// 2,000 spans of a few dozen bytes; at 300 kB a row the old hint
	// reserved 675 MB.
	if got := after.TotalAlloc - before.TotalAlloc; got > 64<<20 {
		t.Fatalf("converting 2,000 small spans allocated %d MiB", got>>20)
	}
}

// Values kept in the form they were sent (review): a double log body's NaN
// is the message NaN, not "NaN" with its JSON quotes; an int exemplar is
// exact past 2^53; a promoted key of the wrong type does not hide the
// next key for its column.
func TestConvert_ValuesKeepTheirForm(t *testing.T) {
	now := time.Now()
	w := Window{Now: now.Add(time.Hour)}
	ld := plog.NewLogs()
	lr := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now))
	lr.Body().SetDouble(math.NaN())
	logs, err := ConvertLogs("default", ld, w)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Release()
	if got := logs.Column(recordsTable.Index("message")).ValueStr(0); got != "NaN" {
		t.Errorf("message of a NaN body: %q, want NaN", got)
	}
	if got := logs.Column(recordsTable.Index("log_body")).ValueStr(0); got != `"NaN"` {
		t.Errorf("log_body of a NaN body: %q, want the JSON string \"NaN\"", got)
	}

	td, sp := oneSpan(now)
	sp.Attributes().PutStr("http.response.status_code", "200")
	sp.Attributes().PutInt("http.status_code", 201)
	spans, err := ConvertTraces("default", td, w)
	if err != nil {
		t.Fatal(err)
	}
	defer spans.Release()
	if got := spans.Column(recordsTable.Index("http_status_code")).ValueStr(0); got != "201" {
		t.Errorf("http_status_code: %s, want 201 (the int key after a string one)", got)
	}

	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("g")
	p := m.SetEmptyGauge().DataPoints().AppendEmpty()
	p.SetTimestamp(pcommon.NewTimestampFromTime(now))
	p.SetIntValue(1)
	p.Exemplars().AppendEmpty().SetIntValue(9007199254740993)
	points, err := ConvertMetrics("default", md, w)
	if err != nil {
		t.Fatal(err)
	}
	defer points.Release()
	// An exemplar's timestamp 0 is OTLP's "unknown", not 1970.
	if got := points.Column(metricsTable.Index("exemplars")).ValueStr(0); got != `[{"timestamp":null,"value":9007199254740993}]` {
		t.Errorf("exemplars: %s, want the int value exactly and no timestamp", got)
	}
}

// Each row repeats its resource's attributes and its scope, and a data
// point its metric's name, unit and description: a 1 MB resource over 400
// spans made one 1 MB export take 2.4 GB. What rows take beyond their
// values is counted as they are built, and the export refused whole (a
// 400) past the bound, before the memory is taken.
func TestConvert_RepeatedResourcesAreBounded(t *testing.T) {
	now := time.Now()
	w := Window{Now: now.Add(time.Hour), MaxBytes: 256 << 20} // the default --max-buffer-bytes
	traces := func(resourceBytes, spans int) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", "svc")
		rs.Resource().Attributes().PutStr("k8s.labels", strings.Repeat("x", resourceBytes))
		ss := rs.ScopeSpans().AppendEmpty().Spans()
		for i := range spans {
			sp := ss.AppendEmpty()
			sp.SetTraceID([16]byte{1, byte(i), byte(i >> 8)})
			sp.SetSpanID([8]byte{1, byte(i), byte(i >> 8)})
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		}
		return td
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := ConvertTraces("default", traces(1_000_000, 400), w)
	runtime.ReadMemStats(&after)
	if err == nil || classify(err) != kindInput || !strings.Contains(err.Error(), "send fewer items per export") {
		t.Fatalf("a 1 MB resource over 400 spans: %v, want the export refused as the client's", err)
	}
	// Refused once its rows cost the limit (a third of it counted): the
	// builders' doublings make that about a limit's worth of allocations,
	// against 2.4 GB unbounded.
	if got := after.TotalAlloc - before.TotalAlloc; got > 512<<20 {
		t.Errorf("refusing it allocated %d MiB", got>>20)
	}
	// Counted as stored: a control character takes six bytes in JSON.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("x", strings.Repeat("\x01", 1_000_000)) // 6 MB as JSON
	for i := range 60 {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{3, byte(i)})
		sp.SetSpanID([8]byte{3, byte(i)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	if _, err := ConvertTraces("default", td, w); err == nil || classify(err) != kindInput {
		t.Errorf("60 spans repeating 6 MB of escaped JSON: %v, want the export refused", err)
	}
	// Large real resources fit: 10 kB over 8,192 spans.
	rec, err := ConvertTraces("default", traces(10_000, 8192), w)
	if err != nil {
		t.Fatalf("a 10 kB resource over 8,192 spans: %v", err)
	}
	rec.Release()

	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("g")
	m.SetDescription(strings.Repeat("d", 1_000_000))
	dps := m.SetEmptyGauge().DataPoints()
	for i := range 100 {
		p := dps.AppendEmpty()
		p.SetTimestamp(pcommon.NewTimestampFromTime(now))
		p.SetIntValue(int64(i))
	}
	if _, err := ConvertMetrics("default", md, w); err == nil || classify(err) != kindInput {
		t.Fatalf("a 1 MB description over 100 points: %v, want the export refused", err)
	}
}

// Rejecting item by item, a refused item leaves half a row in the probe,
// which is not started again after each one: items refused early in the
// row (a timestamp), in the middle (an event) and late (a link), among
// good ones and past a probe's restart, leave the good rows exactly as
// sent.
func TestConvert_RefusedItemsLeaveGoodRowsIntact(t *testing.T) {
	now := time.Now()
	w := Window{Now: now.Add(time.Hour)}
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	const n = 3 * probeTries
	for i := range n {
		sp := spans.AppendEmpty()
		sp.SetTraceID([16]byte{7, byte(i), byte(i >> 8)})
		sp.SetSpanID([8]byte{7, byte(i), byte(i >> 8)})
		sp.SetName(fmt.Sprintf("s%d", i))
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
		sp.Attributes().PutInt("i", int64(i))
		ev := sp.Events().AppendEmpty()
		ev.SetName("ev")
		ev.Attributes().PutStr("e", "fine")
		l := sp.Links().AppendEmpty()
		l.SetTraceID([16]byte{8, byte(i)})
		l.SetSpanID([8]byte{8, byte(i)})
		l.Attributes().PutStr("l", "fine")
		switch i % 4 {
		case 1:
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(3 * time.Hour)))
		case 2:
			ev.Attributes().PutStr("e", "\xff")
		case 3:
			l.Attributes().PutStr("l", "\xff")
		}
	}
	rec, err := ConvertTraces("default", td, w)
	var pe *PartialError
	if !errors.As(err, &pe) || pe.Rejected != 3*n/4 || !strings.Contains(pe.Error(), "spans[1]") {
		t.Fatalf("%v, want %d refused, the first spans[1]", err, 3*n/4)
	}
	defer rec.Release()
	if rec.NumRows() != n/4 {
		t.Fatalf("%d rows, want %d", rec.NumRows(), n/4)
	}
	col := func(name string, row int) string { return rec.Column(recordsTable.Index(name)).ValueStr(row) }
	for r := range n / 4 {
		i := 4 * r
		want := map[string]string{
			"span_name":  fmt.Sprintf("s%d", i),
			"trace_id":   fmt.Sprintf("07%02x%02x00000000000000000000000000", byte(i), byte(i>>8)),
			"attributes": fmt.Sprintf(`{"i":%d}`, i),
			"otel_links": fmt.Sprintf(`[{"trace_id":"08%02x0000000000000000000000000000","span_id":"08%02x000000000000","attributes":{"l":"fine"}}]`, byte(i), byte(i)),
		}
		for name, v := range want {
			if got := col(name, r); got != v {
				t.Fatalf("row %d %s: %s, want %s", r, name, got, v)
			}
		}
		if got := col("otel_events", r); !strings.Contains(got, `"e":"fine"`) {
			t.Fatalf("row %d otel_events: %s", r, got)
		}
	}
}

// Times inside the JSON columns (events, exemplars) past 2^63 ns wrapped
// into 1677 or 1969 (review); like 0, OTLP's unknown, they are null.
func TestConvert_EventTimesPast2262AreNull(t *testing.T) {
	now := time.Now()
	td, sp := oneSpan(now)
	for _, ts := range []pcommon.Timestamp{1<<64 - 1, 1 << 63, 1<<63 - 1} {
		ev := sp.Events().AppendEmpty()
		ev.SetName("e")
		ev.SetTimestamp(ts)
	}
	rec, err := ConvertTraces("default", td, Window{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	want := `[{"name":"e","timestamp":null},{"name":"e","timestamp":null},{"name":"e","timestamp":"2262-04-11T23:47:16.854775807Z"}]`
	if got := rec.Column(recordsTable.Index("otel_events")).ValueStr(0); got != want {
		t.Errorf("otel_events %s\nwant %s", got, want)
	}
}

// oneSpan is an export of one valid span at now, for a test to add to.
func oneSpan(now time.Time) (ptrace.Traces, ptrace.Span) {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{1})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	return td, sp
}

// A link's empty ids are null in otel_links, as an empty parent_span_id
// is NULL (QA: they were written as zeros).
func TestConvert_LinkWithEmptyIDs(t *testing.T) {
	now := time.Now()
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1})
	sp.SetSpanID([8]byte{2})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	sp.Links().AppendEmpty()
	rec, err := ConvertTraces("default", td, Window{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Release()
	if got := rec.Column(recordsTable.Index("otel_links")).ValueStr(0); got != `[{"trace_id":null,"span_id":null}]` {
		t.Errorf("otel_links: %s", got)
	}
}
