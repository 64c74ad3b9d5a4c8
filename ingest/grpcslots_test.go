package ingest

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// The exports gRPC receives at once are bounded (grpc-go holds each message
// before the service can count it against the memory limit); a slot comes
// back when the service returns.
func TestGRPC_ExportsReceivedAtOnceAreBounded(t *testing.T) {
	in, err := Open(nil, nil, Options{ScratchDir: t.TempDir(), MaxMemoryBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(context.Background())
	r := NewReceiver(in, 1<<20) // 8 slots
	info := &tap.Info{FullMethodName: "/opentelemetry.proto.collector.trace.v1.TraceService/Export"}
	var held []context.Context
	for range 8 {
		ctx, err := r.admit(context.Background(), info)
		if err != nil {
			t.Fatalf("export %d refused: %v", len(held)+1, err)
		}
		held = append(held, ctx)
	}
	if _, err := r.admit(context.Background(), info); status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("a ninth export at once: %v, want RESOURCE_EXHAUSTED", err)
	}
	if _, err := r.admit(context.Background(), &tap.Info{FullMethodName: "/x.Y/Z"}); err != nil {
		t.Errorf("an unknown method takes no slot and is left to gRPC: %v", err)
	}
	releaseSlot(held[0])
	releaseSlot(held[0]) // once only
	if _, err := r.admit(context.Background(), info); err != nil {
		t.Errorf("after one export ended: %v", err)
	}
	if _, err := r.admit(context.Background(), info); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a slot given back twice: %v", err)
	}
	// A stream that ends without its service running (grpc-go refuses an
	// unknown compressor, or the deadline passed) gives its slot back.
	releaseSlot(held[1])
	stream, end := context.WithCancel(context.Background())
	if _, err := r.admit(stream, info); err != nil {
		t.Fatal(err)
	}
	end()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		if _, err := r.admit(context.Background(), info); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a stream that ended stayed taken")
		}
	}
}

// An admitted export whose message does not arrive in time ends, and its
// slot with it: streams that sent only headers held slots as long as their
// connection lasted.
func TestGRPC_AMessageThatDoesNotArriveEndsTheCall(t *testing.T) {
	defer func(d time.Duration) { receiveTimeout = d }(receiveTimeout)
	receiveTimeout = 50 * time.Millisecond
	never := make(chan struct{})
	defer close(never)
	_, err := receive(func(any) error { <-never; return nil })
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a message that never came: %v, want DEADLINE_EXCEEDED", err)
	}
	if m, err := receive(func(v any) error { *v.(*rawMessage) = rawMessage("x"); return nil }); err != nil || string(m) != "x" {
		t.Errorf("a message that came: %q %v", m, err)
	}
}
