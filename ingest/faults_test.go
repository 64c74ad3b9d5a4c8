package ingest_test

import (
	"context"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/internal/faultproxy"
	"github.com/strata-db/strata/internal/otlptest"
	"github.com/strata-db/strata/internal/testenv"
)

// stored counts each span id in the table.
func (s *stack) stored() map[string]int {
	out := map[string]int{}
	for _, r := range s.query(`SELECT span_id FROM records`) {
		out[r[0].(string)]++
	}
	return out
}

func checkExactlyOnce(t *testing.T, s *stack, sender *otlptest.Sender) {
	t.Helper()
	stored := s.stored()
	for id, n := range stored {
		if n > 1 {
			t.Fatalf("span %s stored %d times", id, n)
		}
	}
	if missing := sender.Missing(stored); len(missing) > 0 {
		t.Fatalf("%d acknowledged spans missing, e.g. %v", len(missing), missing[:min(5, len(missing))])
	}
	t.Logf("%d spans acknowledged, %d stored, answers by status: %v", len(sender.Acked()), len(stored), sender.Codes())
}

func TestFaults_ObjectStoreAndCatalogOutages(t *testing.T) {
	pgURL, pg := faultproxy.Via(t, testenv.PostgresURL(t), false)
	schema := testenv.PostgresSchema(t, testenv.PostgresURL(t))
	s3URL, s3 := faultproxy.Via(t, testenv.S3URL(t), true)
	s := newStack(t, stackOptions{
		catalogURL: pgURL, schema: schema, bucketURL: s3URL,
		ingest: ingest.Options{FlushInterval: 100 * time.Millisecond, OpTimeout: 500 * time.Millisecond},
	})
	sender := otlptest.NewSender("faults")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() { defer wg.Done(); sender.Run(ctx, s.httpURL, 20) }()
	}
	phases := []struct {
		name  string
		proxy *faultproxy.Proxy
		mode  faultproxy.Mode
	}{
		{"object store refuses connections", s3, faultproxy.Refuse},
		{"object store hangs (timeouts)", s3, faultproxy.Hang},
		{"catalog refuses connections", pg, faultproxy.Refuse},
		{"catalog hangs (timeouts)", pg, faultproxy.Hang},
	}
	for _, ph := range phases {
		time.Sleep(300 * time.Millisecond)
		before := len(sender.Acked())
		ph.proxy.Set(ph.mode)
		time.Sleep(1500 * time.Millisecond)
		// Ingest keeps acknowledging while the flush cannot complete.
		if during := len(sender.Acked()); during <= before {
			t.Errorf("%s: no spans acknowledged during the outage", ph.name)
		}
		ph.proxy.Set(faultproxy.Pass)
	}
	time.Sleep(300 * time.Millisecond)
	cancel()
	wg.Wait()
	s.waitFlushed()
	checkExactlyOnce(t, s, sender)
}

func TestFaults_RestartAfterUnflushedOutage(t *testing.T) {
	// The object store is down, the ingester stops with data it could not
	// flush, and a new one on the same scratch dir flushes it on start.
	s3URL, s3 := faultproxy.Via(t, testenv.S3URL(t), true)
	s := newStack(t, stackOptions{bucketURL: s3URL,
		ingest: ingest.Options{FlushInterval: 50 * time.Millisecond, OpTimeout: 200 * time.Millisecond}})
	sender := otlptest.NewSender("restart")
	s3.Set(faultproxy.Refuse)
	client := s.httpClient()
	for range 20 {
		if code, err := sender.Send(context.Background(), client, s.httpURL, 10); err != nil || code != 200 {
			t.Fatalf("send: %d %v", code, err)
		}
	}
	closeCtx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := s.in.Close(closeCtx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "left in the WAL") {
		t.Fatalf("close with the object store down: %v, want segments left in the WAL", err)
	}
	s.stop()
	s3.Set(faultproxy.Pass)
	s.startIngest(0)
	s.waitFlushed()
	checkExactlyOnce(t, s, sender)
	if got := len(s.stored()); got != 200 {
		t.Fatalf("stored %d spans, want 200", got)
	}
}

// A scratch dir deleted under a running ingester (QA: 29,414 rows were
// acknowledged into the deleted segment, and lost): the commit that finds
// its segment deleted is refused (503), the dir is made again, and the
// rows acknowledged before are flushed from the deleted file, still open.
// Nothing acknowledged is lost.
func TestFaults_ScratchDirDeletedLosesNothingAcknowledged(t *testing.T) {
	s := newStack(t, stackOptions{ingest: ingest.Options{FlushInterval: 2 * time.Second}}) // not before the dir goes
	sender := otlptest.NewSender("scratch")
	client := s.httpClient()
	ctx := context.Background()
	for range 5 {
		if code, err := sender.Send(ctx, client, s.httpURL, 10); err != nil || code != http.StatusOK {
			t.Fatalf("send: %d %v", code, err)
		}
	}
	if err := os.RemoveAll(s.opts.ScratchDir); err != nil {
		t.Fatal(err)
	}
	code, err := sender.Send(ctx, client, s.httpURL, 10)
	if err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("the commit into the deleted segment: %d %v, want 503", code, err)
	}
	if err := s.in.Ready(); err == nil {
		t.Error("Ready says nothing after a failed commit")
	}
	for range 5 {
		if code, err := sender.Send(ctx, client, s.httpURL, 10); err != nil || code != http.StatusOK {
			t.Fatalf("send after the scratch dir was made again: %d %v", code, err)
		}
	}
	if err := s.in.Ready(); err != nil {
		t.Errorf("Ready after commits succeed again: %v", err)
	}
	s.waitFlushed()
	checkExactlyOnce(t, s, sender)
	if got := len(s.stored()); got != 100 {
		t.Fatalf("stored %d spans, want the 100 acknowledged", got)
	}
}
