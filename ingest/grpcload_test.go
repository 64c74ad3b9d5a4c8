package ingest_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"

	"github.com/strata-db/strata/ingest"
)

// More gRPC exporters than receive slots, sending small exports on a
// node far from its limits, wait for a slot rather than being refused:
// 32 exporters onto 16 slots had 30 % of their exports refused (review).
func TestGRPC_MoreExportersThanSlotsAreNotRefused(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 16 << 20, ingest: ingest.Options{MaxMemoryBytes: 128 << 20}}) // 8 slots
	conn := s.grpcConn()
	client := ptraceotlp.NewGRPCClient(conn)
	const exporters, exports, spans = 32, 20, 10
	var refused atomic.Int64
	var wg sync.WaitGroup
	for w := range exporters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range exports {
				td := ptrace.NewTraces()
				ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
				now := time.Now()
				for i := range spans {
					sp := ss.AppendEmpty()
					sp.SetName("crowd")
					sp.SetTraceID([16]byte{3, byte(w), byte(e), byte(i)})
					sp.SetSpanID([8]byte{3, byte(w), byte(e), byte(i)})
					sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
					sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
				}
				if _, err := client.Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
					refused.Add(1)
					t.Logf("exporter %d, export %d: %v", w, e, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := refused.Load(); n > 0 {
		t.Fatalf("%d of %d exports refused", n, exporters*exports)
	}
	s.waitFlushed()
	if n := s.count(`SELECT count(*) FROM records WHERE span_name = 'crowd'`); n != exporters*exports*spans {
		t.Fatalf("%d spans stored, want %d", n, exporters*exports*spans)
	}
}

// Streams that send their headers and never a message hold receive slots;
// while an exporter waits for one, they give way after a second instead
// of holding every slot for 15 s (and, opened again and again, for good).
func TestGRPC_StalledStreamsGiveWayToExporters(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 16 << 20, ingest: ingest.Options{MaxMemoryBytes: 128 << 20}}) // 8 slots
	conn := s.grpcConn()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for range 16 {
		if _, err := conn.NewStream(ctx, &grpc.StreamDesc{}, "/opentelemetry.proto.collector.trace.v1.TraceService/Export"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond) // their calls hold the slots
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetName("after the stalled")
	sp.SetTraceID([16]byte{4})
	sp.SetSpanID([8]byte{4})
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	if _, err := ptraceotlp.NewGRPCClient(conn).Export(context.Background(), ptraceotlp.NewExportRequestFromTraces(td)); err != nil {
		t.Fatalf("an export beside 16 stalled streams: %v", err)
	}
	s.waitFlushed()
	if n := s.count(`SELECT count(*) FROM records WHERE span_name = 'after the stalled'`); n != 1 {
		t.Fatalf("%d spans stored, want 1", n)
	}
}
