package ingest

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// The exports gRPC receives at once are bounded (grpc-go holds each message
// before the service can count it against the memory limit): one past the
// bound waits for a slot, and is refused only if none comes back in time.
func TestGRPC_ExportsReceivedAtOnceAreBounded(t *testing.T) {
	defer func(d time.Duration) { slotWait = d }(slotWait)
	slotWait = 100 * time.Millisecond
	in, err := Open(nil, nil, Options{ScratchDir: t.TempDir(), MaxMemoryBytes: 8 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(context.Background())
	r := NewReceiver(in, 1<<20) // 8 slots
	ctx := context.Background()
	var held []func()
	for range 8 {
		give, err := r.takeSlot(ctx)
		if err != nil {
			t.Fatalf("export %d refused: %v", len(held)+1, err)
		}
		held = append(held, give)
	}
	if _, err := r.takeSlot(ctx); !errors.Is(err, errBusy) {
		t.Fatalf("a ninth export at once: %v, want refused after waiting", err)
	}
	// A ninth that waits gets the first slot given back.
	got := make(chan error, 1)
	go func() {
		_, err := r.takeSlot(ctx)
		got <- err
	}()
	time.Sleep(20 * time.Millisecond)
	held[0]()
	held[0]() // once only
	if err := <-got; err != nil {
		t.Fatalf("waiting for a slot given back: %v", err)
	}
	if _, err := r.takeSlot(ctx); !errors.Is(err, errBusy) {
		t.Errorf("a slot given back twice: %v", err)
	}
	// A call that ends while it waits stops waiting.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := r.takeSlot(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a call past its deadline while waiting: %v", err)
	}
	// An unknown method is left to gRPC, and the tap refuses nothing while
	// ingest is within its limits.
	info := &tap.Info{FullMethodName: "/opentelemetry.proto.collector.trace.v1.TraceService/Export"}
	for _, i := range []*tap.Info{info, {FullMethodName: "/x.Y/Z"}} {
		if _, err := r.admit(ctx, i); err != nil {
			t.Errorf("%s: %v", i.FullMethodName, err)
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
	r := &Receiver{}
	_, err := r.receive(func(any) error { <-never; return nil })
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("a message that never came: %v, want DEADLINE_EXCEEDED", err)
	}
	if m, err := r.receive(func(v any) error { *v.(*rawMessage) = rawMessage("x"); return nil }); err != nil || string(m) != "x" {
		t.Errorf("a message that came: %q %v", m, err)
	}
}

// A message still arriving after receivePatience gives way, but only to an
// export that waits for its slot.
func TestGRPC_ASlowMessageGivesWayOnlyWhenOthersWait(t *testing.T) {
	defer func(d, p time.Duration) { receiveTimeout, receivePatience = d, p }(receiveTimeout, receivePatience)
	receiveTimeout, receivePatience = 400*time.Millisecond, 50*time.Millisecond
	in, err := Open(nil, nil, Options{ScratchDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close(context.Background())
	r := NewReceiver(in, 1<<20)
	never := make(chan struct{})
	defer close(never)
	slow := func(any) error { <-never; return nil }
	if _, err := r.receive(slow); status.Code(err) != codes.DeadlineExceeded {
		t.Errorf("nobody waiting: %v, want DEADLINE_EXCEEDED after receiveTimeout", err)
	}
	r.slotWaiters.Add(1)
	defer r.slotWaiters.Add(-1)
	if _, err := r.receive(slow); !errors.Is(err, ErrOverloaded) {
		t.Errorf("an export waiting: %v, want overloaded (retry later) before receiveTimeout", err)
	}
}
