package ingest_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/internal/faultproxy"
	"github.com/strata-db/strata/internal/otlptest"
	"github.com/strata-db/strata/internal/testenv"
)

func TestBackpressure_429WhileFlushIsStuckThenRecovers(t *testing.T) {
	s3URL, s3 := viaProxy(t, testenv.S3URL(t), true)
	s := newStack(t, stackOptions{bucketURL: s3URL, ingest: ingest.Options{
		FlushInterval: 50 * time.Millisecond, OpTimeout: 200 * time.Millisecond,
		MaxScratchBytes: 4 << 20,
	}})
	sender := otlptest.NewSender("pressure")
	client := s.httpClient()
	s3.Set(faultproxy.Refuse)

	// Fill the buffers until ingest refuses.
	refused := false
	for i := 0; i < 10000 && !refused; i++ {
		code, err := sender.Send(context.Background(), client, s.httpURL, 100)
		if err != nil {
			t.Fatal(err)
		}
		switch code {
		case http.StatusOK:
		case http.StatusTooManyRequests:
			refused = true
		default:
			t.Fatalf("status %d while filling buffers", code)
		}
	}
	if !refused {
		t.Fatal("ingest never refused with the object store down and a 4 MiB WAL limit")
	}
	body, _ := sender.Request(1)
	resp, err := client.Post(s.httpURL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("overloaded answer: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if st := s.in.Stats(); st.ScratchBytes > 6<<20 {
		t.Errorf("WAL grew to %d bytes past a 4 MiB limit", st.ScratchBytes)
	}
	// Reads keep working while ingest refuses writes.
	if _, _, err := s.tryQuery(`SELECT count(*) FROM records`); err != nil {
		t.Fatalf("query while overloaded: %v", err)
	}
	// The flusher catches up by itself once the store is back.
	s3.Set(faultproxy.Pass)
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, err := sender.Send(context.Background(), client, s.httpURL, 10)
		if err == nil && code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still refused 20s after the object store came back: %d %v", code, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.waitFlushed()
	checkExactlyOnce(t, s, sender)
}
