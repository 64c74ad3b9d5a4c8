package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"
)

// rawMessage is an already-encoded protobuf message.
type rawMessage []byte

// rawCodec passes encoded messages through gRPC untouched.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) {
	m, ok := v.(rawMessage)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return m, nil
}

func (rawCodec) Unmarshal(data []byte, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	*m = append((*m)[:0], data...)
	return nil
}

func (rawCodec) Name() string { return "proto" }

// queryProbe measures the time from a span's acknowledgement until a query
// finds it: twice a second it sends one span with a fresh trace id, then
// polls the query API for that trace id.
type queryProbe struct {
	mu      sync.Mutex
	samples []float64
	wg      sync.WaitGroup
}

func startQueryProbe(ctx context.Context, o IngestOptions, snd sender) *queryProbe {
	p := &queryProbe{}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			var tid [16]byte
			rand.Read(tid[:])
			var sid [8]byte
			rand.Read(sid[:])
			body := probeSpan(tid, sid, time.Now())
			if _, outcome, _ := snd.send(ctx, "traces", body); outcome != outcomeAcked {
				continue
			}
			acked := time.Now()
			// Poll on a context of its own: the last probe may outlive the run.
			pctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if found(pctx, o.QueryURL, hex.EncodeToString(tid[:])) {
				p.mu.Lock()
				p.samples = append(p.samples, float64(time.Since(acked).Microseconds())/1000)
				p.mu.Unlock()
			}
			cancel()
		}
	}()
	return p
}

func (p *queryProbe) result() Percentiles {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return percentiles(p.samples)
}

func found(ctx context.Context, queryURL, traceID string) bool {
	q, _ := json.Marshal(map[string]string{"sql": fmt.Sprintf("SELECT count(*) FROM records WHERE trace_id = '%s'", traceID)})
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "POST", strings.TrimSuffix(queryURL, "/")+"/v1/query", bytes.NewReader(q))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var out struct{ Rows [][]any }
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if len(out.Rows) == 1 && fmt.Sprint(out.Rows[0][0]) == "1" {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// probeSpan encodes a trace export of one span.
func probeSpan(tid [16]byte, sid [8]byte, now time.Time) []byte {
	var span msg
	span.id(1, 16, patchTrace, 0)
	span.id(2, 8, patchSpan, 0)
	span.str(5, "strata.bench.probe")
	span.time(7, -1000)
	span.time(8, 0)
	var ss, rs, res, req msg
	ss.embed(2, &span)
	res.keyValue(1, "service.name", value{kind: 's', s: "strata-bench-probe"})
	rs.embed(1, &res)
	rs.embed(2, &ss)
	req.embed(1, &rs)
	t := &template{body: req.b, patches: req.patches}
	return fill(nil, t, now.UnixNano(), [][16]byte{tid}, [][8]byte{sid}, nil)
}
