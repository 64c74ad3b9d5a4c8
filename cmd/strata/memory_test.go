package main_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The Arrow buffers ingest and merges take live outside the Go heap, so
// one never released would never come back. After load of all three
// signals over both protocols, exports refused whole or in part, flushes
// and merges, nothing is left in use, and what waited for reuse is given
// back once the load is over.
func TestServe_ArrowBuffersAreAllReleased(t *testing.T) {
	n := startNode(t, t.TempDir(), "--compact-min-age", "0s", "--compact-interval", "1s")
	for _, proto := range []string{"http", "grpc"} {
		ep := strings.TrimPrefix(n.otlpHTTP, "http://")
		if proto == "grpc" {
			ep = n.otlpGRPC
		}
		_, stderr, code := strata(t, nil, "bench", "ingest", "--protocol", proto, "--endpoint", ep, "--duration", "2s",
			"--workers", "4", "--logs-per-span", "0.5", "--metrics-per-service", "2")
		if code != 0 {
			t.Fatalf("bench ingest over %s: exit %d\n%s", proto, code, stderr)
		}
	}
	now := time.Now().UnixNano()
	span := func(at int64) string {
		return fmt.Sprintf(`{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"s","startTimeUnixNano":"%d","endTimeUnixNano":"%d"}`, at, at+1000)
	}
	later := now + int64(10*365*24*time.Hour) // far past the window ingest accepts
	for _, body := range []struct {
		doc  string
		want int
	}{
		// one good span beside one ten years ahead: partial success
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[` + span(now) + `,` + span(later) + `]}]}]}`, 200},
		// every span refused
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[` + span(later) + `]}]}]}`, 400},
		{`{"resourceSpans":[{"scopeSpans":[{"spans":[`, 400},
	} {
		resp, err := http.Post(n.otlpHTTP+"/v1/traces", "application/json", strings.NewReader(body.doc))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != body.want {
			t.Errorf("%.60s…: %d, want %d", body.doc, resp.StatusCode, body.want)
		}
	}
	n.waitDrained(t)
	merged := `strata_compactor_files_out_total{level="1"}`
	for deadline := time.Now().Add(30 * time.Second); n.metric(t, merged) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no merge within 30 s: the test would not cover the compactor's buffers")
		}
	}

	inUse, idle := `strata_arrow_pool_bytes{state="in_use"}`, `strata_arrow_pool_bytes{state="idle"}`
	deadline := time.Now().Add(30 * time.Second)
	for n.metric(t, inUse) != 0 || n.metric(t, idle) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the load: %.0f bytes of Arrow buffers in use, %.0f idle; want 0 and 0",
				n.metric(t, inUse), n.metric(t, idle))
		}
		time.Sleep(200 * time.Millisecond)
	}
}
