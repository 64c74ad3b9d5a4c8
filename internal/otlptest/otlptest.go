// Package otlptest sends OTLP traffic for tests and remembers exactly which
// spans the server acknowledged, so a test can check that every one of
// them was stored once and only once.
package otlptest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// Sender builds span batches with unique span ids (a counter) and posts
// them over OTLP/HTTP.
type Sender struct {
	Service string
	next    atomic.Uint64
	sent    atomic.Int64
	mu      sync.Mutex
	acked   map[string]bool
	codes   map[int]int
}

// NewSender returns a sender whose spans carry the given service name.
func NewSender(service string) *Sender {
	return &Sender{Service: service, acked: map[string]bool{}, codes: map[int]int{}}
}

// Request returns an OTLP/protobuf export of n new spans and their span ids.
func (s *Sender) Request(n int) ([]byte, []string) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", s.Service)
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	ids := make([]string, n)
	now := time.Now()
	var tid [16]byte
	binary.BigEndian.PutUint64(tid[:8], rand.Uint64())
	binary.BigEndian.PutUint64(tid[8:], rand.Uint64()|1)
	for i := range n {
		var sid [8]byte
		binary.BigEndian.PutUint64(sid[:], s.next.Add(1))
		sp := spans.AppendEmpty()
		sp.SetTraceID(tid)
		sp.SetSpanID(sid)
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		sp.Attributes().PutInt("seq", int64(i))
		ids[i] = hex.EncodeToString(sid[:])
	}
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		panic(err)
	}
	return body, ids
}

// Send posts one batch of n spans to baseURL/v1/traces. The spans count as
// acknowledged only on 200; a failed request is not retried, so its spans
// may be stored at most once.
func (s *Sender) Send(ctx context.Context, client *http.Client, baseURL string, n int) (int, error) {
	body, ids := s.Request(n)
	req, _ := http.NewRequestWithContext(ctx, "POST", baseURL+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.sent.Add(int64(n))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[resp.StatusCode]++
	if resp.StatusCode == http.StatusOK {
		for _, id := range ids {
			s.acked[id] = true
		}
	}
	return resp.StatusCode, nil
}

// Run sends batches of n spans until ctx ends.
func (s *Sender) Run(ctx context.Context, baseURL string, n int) {
	client := &http.Client{Timeout: 10 * time.Second}
	for ctx.Err() == nil {
		s.Send(ctx, client, baseURL, n)
	}
}

// Acked returns the acknowledged span ids.
func (s *Sender) Acked() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]bool, len(s.acked))
	for k := range s.acked {
		out[k] = true
	}
	return out
}

// Sent is the number of spans whose request got any answer.
func (s *Sender) Sent() int64 { return s.sent.Load() }

// Codes counts answers by HTTP status.
func (s *Sender) Codes() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.codes {
		out[k] = v
	}
	return out
}

// Missing returns the acknowledged ids absent from stored.
func (s *Sender) Missing(stored map[string]int) []string {
	var out []string
	for id := range s.Acked() {
		if stored[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}
