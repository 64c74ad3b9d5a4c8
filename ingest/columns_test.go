package ingest

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
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
