package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/internal/faultproxy"
	"github.com/strata-db/strata/internal/otlptest"
	"github.com/strata-db/strata/internal/testenv"
)

func TestBackpressure_429WhileFlushIsStuckThenRecovers(t *testing.T) {
	s3URL, s3 := faultproxy.Via(t, testenv.S3URL(t), true)
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

// The memory of requests being read and decoded counts against
// --max-buffer-bytes: a request that would pass it while another holds
// memory gets 429, and a request larger than the limit still goes through
// when it is alone.
func TestBackpressure_RequestMemoryIsBounded(t *testing.T) {
	s := newStack(t, stackOptions{ingest: ingest.Options{MaxMemoryBytes: 4 << 20}})
	client := s.httpClient()
	big := func(id byte) []byte {
		return goodSpans(func(sp ptrace.Span) {
			sp.SetSpanID([8]byte{9, id})
			sp.Attributes().PutStr("a", strings.Repeat("x", 900<<10))
			sp.Attributes().PutStr("b", strings.Repeat("y", 900<<10))
		})
	}
	post := func(body io.Reader) *http.Response {
		t.Helper()
		resp, err := client.Post(s.httpURL+"/v1/traces", "application/x-protobuf", body)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// A's body arrives slowly: the first MiB, then nothing for a while.
	a := big(1)
	pr, pw := io.Pipe()
	done := make(chan *http.Response)
	go func() { done <- post(pr) }()
	pw.Write(a[:1<<20])
	for deadline := time.Now().Add(10 * time.Second); s.in.Stats().InflightBytes < 1<<20; {
		if time.Now().After(deadline) {
			t.Fatal("the server never held the first MiB of the body")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// B, whole, would take ~18 MiB decoded: refused while A holds memory.
	if resp := post(bytes.NewReader(big(2))); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("a request past the memory limit while another holds memory: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	// C's body is small, but its rows repeat a 2 kB resource 500 times:
	// converting it asks for memory beyond its body's reservation, which
	// it cannot have while A holds some.
	c := resourceOver(2048, 500)
	if resp := post(bytes.NewReader(c)); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a small body whose rows outgrow its reservation while another holds memory: %d", resp.StatusCode)
	}
	// A, alone, goes through, and then B and C do.
	pw.Write(a[1<<20:])
	pw.Close()
	if resp := <-done; resp.StatusCode != http.StatusOK {
		t.Errorf("the slow request, alone: %d", resp.StatusCode)
	}
	if resp := post(bytes.NewReader(big(2))); resp.StatusCode != http.StatusOK {
		t.Errorf("the big request, alone: %d", resp.StatusCode)
	}
	if resp := post(bytes.NewReader(c)); resp.StatusCode != http.StatusOK {
		t.Errorf("the repeating request, alone: %d", resp.StatusCode)
	}
	if got := s.in.Stats().InflightBytes; got != 0 {
		t.Errorf("%d bytes still reserved after every request ended", got)
	}
}

// A compressed body is received whole before it is decompressed: a client
// that stalls holds the bytes it sent against the memory limit, not what
// they expand to, and others keep being served.
func TestBackpressure_StalledCompressedBodyHoldsItsWireBytes(t *testing.T) {
	s := newStack(t, stackOptions{ingest: ingest.Options{MaxMemoryBytes: 16 << 20}})
	client := s.httpClient()
	// 12 MB of attributes in ~12 kB of gzip, sent but for its trailer.
	body := goodSpans(func(sp ptrace.Span) {
		sp.SetSpanID([8]byte{7, 7})
		for i := range 12 {
			sp.Attributes().PutStr(fmt.Sprint("a", i), strings.Repeat("x", 1_000_000))
		}
	})
	var gzBuf bytes.Buffer
	zw := gzip.NewWriter(&gzBuf)
	zw.Write(body)
	zw.Flush() // all of it decodable, without the trailer
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", s.httpURL+"/v1/traces", pr)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("Content-Encoding", "gzip")
	go func() {
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pw.Write(gzBuf.Bytes())
	time.Sleep(300 * time.Millisecond)
	if held := s.in.Stats().InflightBytes; held > 1<<20 {
		t.Errorf("a stalled gzip body of %d bytes holds %d bytes of the memory limit", gzBuf.Len(), held)
	}
	// Another client's 1 MB export (10 MB to decode) fits beside it.
	other := goodSpans(func(sp ptrace.Span) {
		sp.SetSpanID([8]byte{7, 8})
		sp.Attributes().PutStr("a", strings.Repeat("y", 1_000_000))
	})
	resp, err := client.Post(s.httpURL+"/v1/traces", "application/x-protobuf", bytes.NewReader(other))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("an export beside a stalled client: %d", resp.StatusCode)
	}
	pw.CloseWithError(io.ErrUnexpectedEOF)
}

// A body of empty messages decodes to a hundred times its size. What its
// decoding takes is counted before it is decoded: an export that could
// never fit the memory limit is refused with 400 without being decoded,
// over protobuf and JSON, and the server goes on serving.
func TestBackpressure_DecodingIsCountedBeforeItHappens(t *testing.T) {
	s := newStack(t, stackOptions{})
	client := s.httpClient()
	// 8 million empty spans in 16 MB: 1.7 GB once decoded.
	var spans []byte
	for range 8_000_000 {
		spans = protowire.AppendTag(spans, 2, protowire.BytesType)
		spans = protowire.AppendVarint(spans, 0)
	}
	for _, field := range []protowire.Number{2, 1} { // in a ScopeSpans, in a ResourceSpans
		spans = protowire.AppendBytes(protowire.AppendTag(nil, field, protowire.BytesType), spans)
	}
	// 5 million in 15 MB of JSON.
	json := `{"resourceSpans":[{"scopeSpans":[{"spans":[` + strings.Repeat("{},", 5_000_000-1) + `{}]}]}]}`
	for _, c := range []struct{ name, contentType, body string }{
		{"protobuf", "application/x-protobuf", string(spans)},
		{"JSON", "application/json", json},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		resp, err := client.Post(s.httpURL+"/v1/traces", c.contentType, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		runtime.ReadMemStats(&after)
		if resp.StatusCode != http.StatusBadRequest || !bytes.Contains(msg, []byte("decoding the export would take")) {
			t.Errorf("%s: %d %q", c.name, resp.StatusCode, msg)
		}
		if took := after.TotalAlloc - before.TotalAlloc; took > 128<<20 {
			t.Errorf("%s: refusing %d bytes allocated %d MiB", c.name, len(c.body), took>>20)
		}
	}
	resp, err := client.Post(s.httpURL+"/v1/traces", "application/x-protobuf", bytes.NewReader(goodSpans(nil)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("a good export afterwards: %d", resp.StatusCode)
	}
}
