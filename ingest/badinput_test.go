package ingest_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"github.com/klauspost/compress/zstd"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/ingest"
	"github.com/strata-db/strata/internal/otlptest"
)

// rawSpanRequest hand-encodes an ExportTraceServiceRequest with one span, so
// a test can send what pdata would refuse to build.
func rawSpanRequest(traceID, spanID []byte, name string, start, end uint64, extra ...[]byte) []byte {
	var span []byte
	for _, e := range extra {
		span = append(span, e...)
	}
	span = protowire.AppendTag(span, 1, protowire.BytesType)
	span = protowire.AppendBytes(span, traceID)
	span = protowire.AppendTag(span, 2, protowire.BytesType)
	span = protowire.AppendBytes(span, spanID)
	span = protowire.AppendTag(span, 5, protowire.BytesType)
	span = protowire.AppendString(span, name)
	span = protowire.AppendTag(span, 7, protowire.Fixed64Type)
	span = protowire.AppendFixed64(span, start)
	span = protowire.AppendTag(span, 8, protowire.Fixed64Type)
	span = protowire.AppendFixed64(span, end)
	var scope []byte
	scope = protowire.AppendTag(scope, 2, protowire.BytesType)
	scope = protowire.AppendBytes(scope, span)
	var rs []byte
	rs = protowire.AppendTag(rs, 2, protowire.BytesType)
	rs = protowire.AppendBytes(rs, scope)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	return protowire.AppendBytes(req, rs)
}

// deepArrays encodes a span attribute (field 9) whose value is arrays
// nested depth deep, written outside in so building it costs linear time
// (pdata would recurse as deep to marshal it as its decoder does to read it).
func deepArrays(depth int) []byte {
	leaf := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "x") // AnyValue{string_value}
	// From the inside out, wrapper i holds wrapper i-1: odd ones are
	// ArrayValue{values=1}, even ones AnyValue{array_value=5}.
	sizes := make([]int, 2*depth+1)
	sizes[0] = len(leaf)
	for i := 1; i < len(sizes); i++ {
		sizes[i] = 1 + protowire.SizeVarint(uint64(sizes[i-1])) + sizes[i-1]
	}
	key := protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "deep")
	kvSize := len(key) + 1 + protowire.SizeVarint(uint64(sizes[2*depth])) + sizes[2*depth]
	b := protowire.AppendTag(nil, 9, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(kvSize))
	b = append(b, key...)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sizes[2*depth]))
	for i := 2 * depth; i >= 1; i-- {
		field := protowire.Number(5)
		if i%2 == 1 {
			field = 1
		}
		b = protowire.AppendTag(b, field, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(sizes[i-1]))
	}
	return append(b, leaf...)
}

func goodSpans(mutate func(sp ptrace.Span)) []byte {
	td := ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID([16]byte{1, 2, 3})
	sp.SetSpanID([8]byte{4, 5, 6})
	sp.SetName("ok")
	now := time.Now()
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
	if mutate != nil {
		mutate(sp)
	}
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b
}

func gz(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// zstdWindow compresses b as one zstd frame and makes its header declare
// a window of 2^log2 bytes (the encoder itself picks a window the size of
// small inputs).
func zstdWindow(b []byte, log2 byte) []byte {
	w, err := zstd.NewWriter(nil, zstd.WithSingleSegment(false))
	if err != nil {
		panic(err)
	}
	out := w.EncodeAll(b, nil)
	if out[4]&0x20 != 0 {
		panic("single-segment frame: no window descriptor")
	}
	out[5] = (log2 - 10) << 3 // Window_Descriptor: exponent, mantissa 0
	return out
}

// zstdSingleSegment compresses b as one single-segment frame, whose
// window is the content's size.
func zstdSingleSegment(b []byte) []byte {
	w, err := zstd.NewWriter(nil, zstd.WithSingleSegment(true))
	if err != nil {
		panic(err)
	}
	return w.EncodeAll(b, nil)
}

func nested(depth int) func(ptrace.Span) {
	return func(sp ptrace.Span) {
		m := sp.Attributes().PutEmptyMap("deep")
		for range depth {
			m = m.PutEmptyMap("d")
		}
		m.PutStr("leaf", "x")
	}
}

func TestHTTP_BadInputGetsAClear4xxAndServingContinues(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 16 << 20})
	now := uint64(time.Now().UnixNano())
	tid := bytes.Repeat([]byte{7}, 16)
	sid := bytes.Repeat([]byte{8}, 8)
	cases := []struct {
		name, method, path, ctype, encoding string
		body                                []byte
		status                              int
		msg                                 string
	}{
		{"truncated protobuf", "POST", "/v1/traces", "application/x-protobuf", "", goodSpans(nil)[:20], 400, "invalid OTLP protobuf"},
		{"garbage protobuf", "POST", "/v1/metrics", "application/x-protobuf", "", []byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 400, "invalid OTLP protobuf"},
		{"invalid JSON", "POST", "/v1/traces", "application/json", "", []byte(`{"resourceSpans":[{`), 400, "invalid OTLP JSON"},
		{"wrong content type", "POST", "/v1/traces", "text/plain", "", []byte("hello"), 415, "unsupported Content-Type"},
		{"no content type", "POST", "/v1/logs", "", "", goodSpans(nil), 415, "unsupported Content-Type"},
		{"unknown encoding", "POST", "/v1/traces", "application/x-protobuf", "br", goodSpans(nil), 415, "unsupported Content-Encoding"},
		{"corrupt gzip", "POST", "/v1/traces", "application/x-protobuf", "gzip", []byte("not gzip at all"), 400, "cannot read gzip"},
		{"GET instead of POST", "GET", "/v1/traces", "", "", nil, 405, "use POST"},
		// Unknown paths answer with a Status too (QA: a text/plain 404).
		{"no such path", "POST", "/v1/trace", "application/json", "", []byte(`{}`), 404, "no OTLP endpoint at /v1/trace"},
		{"a path past the endpoint", "POST", "/v1/traces/x", "application/x-protobuf", "", goodSpans(nil), 404, "POST to /v1/traces"},
		{"PUT of JSON", "PUT", "/v1/traces", "application/json", "", []byte(`{}`), 405, "use POST"},
		{"oversized body", "POST", "/v1/traces", "application/x-protobuf", "", make([]byte, 17<<20), 413, "exceeds the limit"},
		{"gzip bomb", "POST", "/v1/traces", "application/x-protobuf", "gzip", gz(make([]byte, 64<<20)), 413, "exceeds the limit"},
		{"zstd frame declaring a 512 MiB window", "POST", "/v1/traces", "application/x-protobuf", "zstd", zstdWindow(goodSpans(nil), 29), 400, "window size exceeded"},
		// A single-segment frame's window is its content: 9 MiB, under the
		// body limit, over the window limit (QA: "decompressed size exceeds
		// configured limit" named the wrong limit).
		{"zstd single-segment frame of 9 MiB", "POST", "/v1/traces", "application/json", "zstd",
			zstdSingleSegment(append([]byte(`{"resourceSpans":[]}`), bytes.Repeat([]byte(" "), 9<<20)...)), 400, "window over 8 MiB"},
		{"trace id of 5 bytes", "POST", "/v1/traces", "application/x-protobuf", "", rawSpanRequest(tid[:5], sid, "x", now, now+1), 400, "invalid OTLP protobuf"},
		{"span id of 9 bytes", "POST", "/v1/traces", "application/x-protobuf", "", rawSpanRequest(tid, append(sid, 1), "x", now, now+1), 400, "invalid OTLP protobuf"},
		{"trace id hex too short (JSON)", "POST", "/v1/traces", "application/json", "",
			[]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd","spanId":"0102030405060708","name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}`), 400, "invalid OTLP JSON"},
		{"all-zero trace id", "POST", "/v1/traces", "application/x-protobuf", "", rawSpanRequest(make([]byte, 16), sid, "x", now, now+1), 400, "trace_id is empty"},
		{"timestamp 0", "POST", "/v1/traces", "application/x-protobuf", "", rawSpanRequest(tid, sid, "x", 0, now), 400, "start_time_unix_nano is 0"},
		{"timestamp far in the future", "POST", "/v1/traces", "application/x-protobuf", "",
			rawSpanRequest(tid, sid, "x", now+uint64(48*time.Hour), now+uint64(49*time.Hour)), 400, "in the future"},
		{"start time past 2^63 ns", "POST", "/v1/traces", "application/x-protobuf", "", rawSpanRequest(tid, sid, "x", 1<<63, 1<<63+1), 400, "in the future"},
		{"timestamp in 1970", "POST", "/v1/traces", "application/x-protobuf", "", rawSpanRequest(tid, sid, "x", 1, 2), 400, "older than the project keeps data"},
		// 13 MB that would recurse a million levels in the decoder and end
		// the process on a stack overflow.
		{"arrays nested a million deep", "POST", "/v1/traces", "application/x-protobuf", "",
			rawSpanRequest(tid, sid, "x", now, now+1, deepArrays(1_300_000)), 400, "nested more than"},
		{"invalid UTF-8 span name", "POST", "/v1/traces", "application/x-protobuf", "", rawSpanRequest(tid, sid, "bad\xff\xfe", now, now+1), 400, "invalid UTF-8"},
		{"invalid UTF-8 attribute", "POST", "/v1/traces", "application/x-protobuf", "",
			goodSpans(func(sp ptrace.Span) { sp.Attributes().PutStr("k", "v\xc3\x28") }), 400, "invalid UTF-8"},
		{"attributes nested 100 deep", "POST", "/v1/traces", "application/x-protobuf", "", goodSpans(nested(100)), 400, "nested deeper than"},
		{"10 MB attribute value", "POST", "/v1/traces", "application/x-protobuf", "",
			goodSpans(func(sp ptrace.Span) { sp.Attributes().PutStr("big", strings.Repeat("x", 10<<20)) }), 400, "exceeds the limit"},
		{"1 MB resource repeated on 400 spans", "POST", "/v1/traces", "application/x-protobuf", "", resourceOver(1_000_000, 400), 400, "send fewer items per export"},
		{"histogram with mismatched buckets", "POST", "/v1/metrics", "application/x-protobuf", "", badHistogram(), 400, "bucket counts"},
		// The decoder's message quotes bytes of the body, and can cut a
		// character in half: the answer had no body at all (review).
		{"JSON error next to two-byte characters", "POST", "/v1/traces", "application/json", "",
			[]byte(`{"resourceSpans":[{"resource":{"attributes":[{"key":"k","value":{"stringValue":"` + strings.Repeat("é", 7) +
				`"}},{"key":"k2","value":{"intValue":"x"}}]}}]}`), 400, "invalid OTLP JSON"},
		{"JSON with a byte order mark", "POST", "/v1/traces", "application/json", "", []byte("\xef\xbb\xbf{}"), 400, "invalid OTLP JSON"},
		// A second object was ignored, its spans acknowledged and lost.
		{"JSON with a second object", "POST", "/v1/traces", "application/json", "",
			[]byte(`{"resourceSpans":[]} {"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708","name":"lost"}]}]}]}`),
			400, "more data after the request's object, at byte 21"},
		{"JSON with trailing text", "POST", "/v1/logs", "application/json", "", []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"}\\\"{"}}]}]}]}x`), 400, "at byte 85"},
	}
	sender := otlptest.NewSender("good")
	client := s.httpClient()
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	// Good traffic runs alongside the bad and must keep being accepted.
	wg.Add(1)
	go func() { defer wg.Done(); sender.Run(ctx, s.httpURL, 10) }()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, s.httpURL+tc.path, bytes.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.encoding != "" {
				req.Header.Set("Content-Encoding", tc.encoding)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (body %q)", resp.StatusCode, tc.status, body)
			}
			// The body is a google.rpc.Status, in the request's encoding, with
			// a message that says what is wrong.
			var st spb.Status
			unmarshal := proto.Unmarshal
			if tc.ctype == "application/json" {
				unmarshal = protojson.Unmarshal
			}
			if err := unmarshal(body, &st); err != nil {
				t.Fatalf("body is not a protobuf Status: %v (%q)", err, body)
			}
			if !strings.Contains(st.Message, tc.msg) {
				t.Fatalf("message %q does not mention %q", st.Message, tc.msg)
			}
			if len(st.Message) > 2000 {
				t.Errorf("message is %d bytes; keep errors short", len(st.Message))
			}
			if code, err := sender.Send(context.Background(), client, s.httpURL, 5); err != nil || code != 200 {
				t.Fatalf("a good request after %s: %d %v", tc.name, code, err)
			}
		})
	}
	// Nesting within the limit is fine and keeps its structure.
	if code, _ := postProto(client, s.httpURL+"/v1/traces", goodSpans(nested(20))); code != 200 {
		t.Fatalf("20-deep attributes: %d", code)
	}
	cancel()
	wg.Wait()
	s.waitFlushed()
	checkExactlyOnce(t, s, sender)
	if n := s.count(`SELECT count(*) FROM records WHERE span_name <> 'op'`); n != 1 {
		t.Fatalf("%d bad or nested spans stored, want only the 20-deep one", n)
	}
}

func postProto(client *http.Client, url string, body []byte) (int, error) {
	resp, err := client.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// resourceOver is one export of a resource with an attribute of size bytes
// over n spans, each of whose rows repeats it.
func resourceOver(size, n int) []byte {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("big", strings.Repeat("x", size))
	now := time.Now()
	for i := range n {
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{9, byte(i), byte(i >> 8)})
		sp.SetSpanID([8]byte{9, byte(i), byte(i >> 8)})
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b
}

func badHistogram() []byte {
	md := pmetric.NewMetrics()
	m := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("h")
	p := m.SetEmptyHistogram().DataPoints().AppendEmpty()
	p.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	p.BucketCounts().FromRaw([]uint64{1, 2})
	p.ExplicitBounds().FromRaw([]float64{1, 2, 3})
	b, _ := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	return b
}

func TestGRPC_BadInputIsInvalidArgument(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 1 << 20})
	conn := s.grpcConn()
	client := ptraceotlp.NewGRPCClient(conn)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		mutate func(ptrace.Span)
		code   codes.Code
		msg    string
	}{
		"zero timestamp":   {func(sp ptrace.Span) { sp.SetStartTimestamp(0) }, codes.InvalidArgument, "is 0"},
		"deep nesting":     {nested(100), codes.InvalidArgument, "nested deeper"},
		"invalid UTF-8":    {func(sp ptrace.Span) { sp.SetName("\xff") }, codes.InvalidArgument, "UTF-8"},
		"over size limit":  {func(sp ptrace.Span) { sp.Attributes().PutStr("big", strings.Repeat("y", 2<<20)) }, codes.ResourceExhausted, "larger than max"},
		"empty span id":    {func(sp ptrace.Span) { sp.SetSpanID([8]byte{}) }, codes.InvalidArgument, "span_id"},
		"far future times": {func(sp ptrace.Span) { sp.SetEndTimestamp(pcommon.Timestamp(time.Now().Add(72 * time.Hour).UnixNano())) }, codes.InvalidArgument, "future"},
		"arrays nested 100 deep": {func(sp ptrace.Span) {
			s := sp.Attributes().PutEmptySlice("deep")
			for range 100 {
				s = s.AppendEmpty().SetEmptySlice()
			}
		}, codes.InvalidArgument, "nested deeper than"},
		// Deeper than the decoder may recurse: refused before decoding.
		"arrays nested 20000 deep": {func(sp ptrace.Span) {
			s := sp.Attributes().PutEmptySlice("deep")
			for range 20_000 {
				s = s.AppendEmpty().SetEmptySlice()
			}
		}, codes.InvalidArgument, "nested more than"},
	} {
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(goodSpans(tc.mutate)); err != nil {
			t.Fatal(err)
		}
		_, err := client.Export(ctx, req)
		st, _ := status.FromError(err)
		if st.Code() != tc.code || !strings.Contains(st.Message(), tc.msg) {
			t.Errorf("%s: %v, want %v mentioning %q", name, err, tc.code, tc.msg)
		}
		good := ptraceotlp.NewExportRequest()
		good.UnmarshalProto(goodSpans(nil))
		if _, err := client.Export(ctx, good); err != nil {
			t.Fatalf("good export after %s: %v", name, err)
		}
	}
}

// Messages that do not decode are INVALID_ARGUMENT too, as over HTTP, and
// counted: gRPC's own decoding would have made them INTERNAL.
func TestGRPC_UndecodableMessagesAreInvalidArgument(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 1 << 20})
	conn := s.grpcConn()
	now := uint64(time.Now().UnixNano())
	tid, sid := bytes.Repeat([]byte{7}, 16), bytes.Repeat([]byte{8}, 8)
	for name, body := range map[string][]byte{
		"truncated":           goodSpans(nil)[:20],
		"garbage":             bytes.Repeat([]byte{0xff}, 100),
		"trace id of 5 bytes": rawSpanRequest(tid[:5], sid, "x", now, now+1),
	} {
		var out ingest.RawMessage
		err := conn.Invoke(context.Background(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
			ingest.RawMessage(body), &out, grpc.ForceCodecV2(ingest.RawCodec{}))
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument || !strings.Contains(st.Message(), "invalid OTLP protobuf") {
			t.Errorf("%s: %v, want InvalidArgument", name, err)
		}
	}
	var out ingest.RawMessage
	if err := conn.Invoke(context.Background(), "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
		ingest.RawMessage(goodSpans(nil)), &out, grpc.ForceCodecV2(ingest.RawCodec{})); err != nil {
		t.Fatalf("a good export after the bad ones: %v", err)
	}
	if got := s.in.RequestsCounted("traces", "grpc", "InvalidArgument"); got != 3 {
		t.Errorf("%v refused exports counted, want 3", got)
	}
}

// A bad item among good ones is refused alone: the export succeeds with
// OTLP's partial success, counting what was refused and saying why.
func TestPartialSuccess_BadItemsAreRefusedAlone(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 16 << 20})
	future := pcommon.NewTimestampFromTime(time.Now().Add(3 * time.Hour))
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, name := range []string{"partial-good-1", "partial-bad", "partial-good-2"} {
		sp := spans.AppendEmpty()
		sp.SetTraceID([16]byte{9, byte(i + 1)})
		sp.SetSpanID([8]byte{9, byte(i + 1)})
		sp.SetName(name)
		now := time.Now()
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Millisecond)))
		if name == "partial-bad" {
			sp.SetStartTimestamp(future)
			sp.SetEndTimestamp(future)
		}
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	resp, err := s.httpClient().Post(s.httpURL+"/v1/traces", "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d (%s), want 200 with a partial success", resp.StatusCode, raw)
	}
	out := ptraceotlp.NewExportResponse()
	if err := out.UnmarshalProto(raw); err != nil {
		t.Fatal(err)
	}
	ps := out.PartialSuccess()
	if ps.RejectedSpans() != 1 || !strings.Contains(ps.ErrorMessage(), "spans[1]") || !strings.Contains(ps.ErrorMessage(), "future") {
		t.Fatalf("partial success %d %q", ps.RejectedSpans(), ps.ErrorMessage())
	}
	// Over gRPC too, for metrics: the bad points are refused, not the
	// good point of the same metric.
	conn := s.grpcConn()
	md := pmetric.NewMetrics()
	ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	good := ms.AppendEmpty()
	good.SetName("partial.good")
	good.SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(1)
	good.Gauge().DataPoints().At(0).SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	bad := ms.AppendEmpty()
	bad.SetName("partial.bad")
	// A staleness marker (the series ended) carries no value: stored with
	// its value NULL, not refused.
	stale := ms.AppendEmpty()
	stale.SetName("partial.stale")
	sp := stale.SetEmptyGauge().DataPoints().AppendEmpty()
	sp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	sp.SetDoubleValue(1.5)
	sp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	staleSum := ms.AppendEmpty()
	staleSum.SetName("partial.stale_sum")
	staleSum.SetEmptySum().SetIsMonotonic(true)
	ssp := staleSum.Sum().DataPoints().AppendEmpty()
	ssp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	ssp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	staleHist := ms.AppendEmpty()
	staleHist.SetName("partial.stale_hist")
	shp := staleHist.SetEmptyHistogram().DataPoints().AppendEmpty()
	shp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	shp.SetCount(3) // to be ignored: the flag says there is no value
	shp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	badPoints := bad.SetEmptyGauge().DataPoints()
	for range 3 {
		badPoints.AppendEmpty().SetTimestamp(future)
	}
	badPoints.AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	badPoints.At(3).SetDoubleValue(7)
	mresp, err := pmetricotlp.NewGRPCClient(conn).Export(context.Background(), pmetricotlp.NewExportRequestFromMetrics(md))
	if err != nil {
		t.Fatal(err)
	}
	if n := mresp.PartialSuccess().RejectedDataPoints(); n != 3 {
		t.Fatalf("rejected data points %d (%q), want the bad metric's 3 bad ones", n, mresp.PartialSuccess().ErrorMessage())
	}
	// A staleness marker and one bad metric: a partial success.
	md2 := pmetric.NewMetrics()
	ms2 := md2.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
	stale.CopyTo(ms2.AppendEmpty())
	bad2 := ms2.AppendEmpty()
	bad2.SetName("partial.bad2")
	// A start time after the point's time (2^64-1 wrapped to 1970 before).
	bp := bad2.SetEmptySum().DataPoints().AppendEmpty()
	bp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	bp.SetStartTimestamp(pcommon.Timestamp(1<<64 - 1))
	mresp, err = pmetricotlp.NewGRPCClient(conn).Export(context.Background(), pmetricotlp.NewExportRequestFromMetrics(md2))
	if err != nil || mresp.PartialSuccess().RejectedDataPoints() != 1 || !strings.Contains(mresp.PartialSuccess().ErrorMessage(), "start_time_unix_nano") {
		t.Fatalf("a marker and a bad start time: %v, %d %q", err, mresp.PartialSuccess().RejectedDataPoints(), mresp.PartialSuccess().ErrorMessage())
	}
	// Operators see what was refused: 1 span, 3 + 1 points.
	if sp, dp := s.in.RejectedCounted("traces"), s.in.RejectedCounted("metrics"); sp != 1 || dp != 4 {
		t.Errorf("strata_ingest_rejected_items_total: %v spans, %v points", sp, dp)
	}
	s.waitFlushed()
	if n := s.count(`SELECT count(*) FROM records WHERE span_name LIKE 'partial-%'`); n != 2 {
		t.Fatalf("%d spans stored, want the 2 good ones", n)
	}
	if n := s.count(`SELECT count(*) FROM metrics WHERE metric_name LIKE 'partial.%' AND metric_name NOT LIKE 'partial.stale%'`); n != 2 {
		t.Fatalf("%d points stored, want the 2 good ones", n)
	}
	if n := s.count(`SELECT count(*) FROM metrics WHERE metric_name = 'partial.stale' AND scalar_value IS NULL AND metric_type = 'gauge'`); n != 2 {
		t.Fatalf("%d staleness markers stored with a NULL value, want both sent", n)
	}
	if n := s.count(`SELECT count(*) FROM metrics WHERE metric_name = 'partial.stale_sum' AND scalar_value IS NULL AND is_monotonic`); n != 1 {
		t.Fatalf("a sum's staleness marker: %d stored with a NULL value, want 1", n)
	}
	if n := s.count(`SELECT count(*) FROM metrics WHERE metric_name = 'partial.stale_hist' AND histogram_count IS NULL AND histogram_bucket_counts IS NULL`); n != 1 {
		t.Fatalf("a histogram's staleness marker: %d stored with NULL values, want 1", n)
	}
	if n := s.count(`SELECT count(*) FROM metrics WHERE metric_name = 'partial.bad' AND scalar_value = 7`); n != 1 {
		t.Fatalf("the bad metric's good point: %d stored, want 1", n)
	}
}

// A message flagged compressed whose bytes do not decompress is refused
// and counted. grpc-go answers it before the service can, with INTERNAL
// (INVALID_ARGUMENT would be right: the client's error); both codes are
// permanent failures to an OTLP exporter, which drops the export.
func TestGRPC_CorruptCompressionIsRefusedAndCounted(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 1 << 20})
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	client := &http.Client{Transport: &http.Transport{Protocols: &protocols}}
	for _, encoding := range []string{"gzip", "zstd"} {
		garbage := bytes.Repeat([]byte{0x5a}, 64)
		msg := append([]byte{1, 0, 0, 0, byte(len(garbage))}, garbage...) // compressed flag, length, bytes
		req, err := http.NewRequest("POST", "http://"+s.grpcAddr+"/opentelemetry.proto.collector.trace.v1.TraceService/Export", bytes.NewReader(msg))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/grpc")
		req.Header.Set("Grpc-Encoding", encoding)
		req.Header.Set("Te", "trailers")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code, message := resp.Trailer.Get("Grpc-Status"), resp.Trailer.Get("Grpc-Message")
		if code == "" {
			code, message = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
		}
		if code != strconv.Itoa(int(codes.Internal)) || !strings.Contains(message, "decompress") {
			t.Errorf("%s: grpc-status %q %q, want grpc-go's Internal saying the message does not decompress", encoding, code, message)
		}
	}
	// grpc-go writes its status before the handler returns and counts it:
	// the count may trail the answer a moment.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := s.in.RequestsCounted("traces", "grpc", "Internal")
		if got == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v refused exports counted, want 2", got)
		}
	}
}

// A body that does not arrive within the server's read timeout is a 503
// with Retry-After, which OTLP clients retry, not a 400, which they drop
// (review).
func TestHTTP_ABodyThatStallsIsRetryable(t *testing.T) {
	s := newStack(t, stackOptions{maxRequest: 16 << 20})
	hs := httptest.NewUnstartedServer(s.rcv.Handler())
	hs.Config.ReadTimeout = 300 * time.Millisecond
	hs.Start()
	defer hs.Close()
	body := goodSpans(nil)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(body[:len(body)/2])
		time.Sleep(time.Second) // past the read timeout
		pw.Write(body[len(body)/2:])
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", hs.URL+"/v1/traces", pr)
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.ContentLength = int64(len(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var st spb.Status
	proto.Unmarshal(raw, &st)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(st.Message, "read timeout") {
		t.Fatalf("%d (Retry-After %q): %q", resp.StatusCode, resp.Header.Get("Retry-After"), st.Message)
	}
}

// A change of a project's retention applies to ingest within twice the
// refresh interval, also when no request came in between (QA: the first
// request after an idle minute still used the old retention).
func TestHTTP_RetentionChangeAppliesAfterIdle(t *testing.T) {
	old := *ingest.RetentionRefresh
	*ingest.RetentionRefresh = 200 * time.Millisecond
	t.Cleanup(func() { *ingest.RetentionRefresh = old })
	s := newStack(t, stackOptions{})
	tid, sid := []byte("0123456789abcdef"), []byte("01234567")
	threeHoursAgo := uint64(time.Now().Add(-3 * time.Hour).UnixNano())
	send := func() (int, string) {
		resp, err := s.httpClient().Post(s.httpURL+"/v1/traces", "application/x-protobuf",
			bytes.NewReader(rawSpanRequest(tid, sid, "x", threeHoursAgo, threeHoursAgo+1000)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := send(); code != 200 {
		t.Fatalf("a span 3 h old under the default retention: %d %s", code, body)
	}
	if err := s.cat.SetRetention(context.Background(), catalog.DefaultProject, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // no request: the value read ages past twice the refresh
	if code, body := send(); code != 400 || !strings.Contains(body, "older than the project keeps data") {
		t.Fatalf("a span 3 h old after the retention became 2 h: %d %s, want 400", code, body)
	}
}

// OTLP/JSON follows the protobuf JSON mapping, where null is a field's
// default: an export with null ids, enums, counts and attribute values is
// stored as if those fields were absent (QA: 400 for the whole export; the
// Vercel AI SDK sends doubleValue: null for non-finite values).
func TestHTTP_JSONNullIsTheFieldsDefault(t *testing.T) {
	s := newStack(t, stackOptions{})
	now := time.Now().UnixNano()
	body := fmt.Sprintf(`{"resourceSpans":[{"resource":null,"scopeSpans":[{"scope":null,"spans":[{"traceId":"0102030405060708090a0b0c0d0e0f10",`+
		`"spanId":"0102030405060708","parentSpanId":null,"name":"nulls","kind":null,"startTimeUnixNano":"%d","endTimeUnixNano":"%d",`+
		`"droppedAttributesCount":null,"status":{"code":null,"message":"m"},"attributes":[{"key":"d","value":{"doubleValue":null}},`+
		`{"key":"s","value":{"stringValue":"null"}}]}]}]}]}`, now, now+1000)
	resp, err := s.httpClient().Post(s.httpURL+"/v1/traces", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("export with nulls: %d %s", resp.StatusCode, msg)
	}
	s.waitFlushed()
	rows := s.query(`SELECT parent_span_id IS NULL, attributes->>'s', otel_status_message FROM records WHERE span_name = 'nulls'`)
	if len(rows) != 1 || fmt.Sprint(rows[0]) != "[true null m]" {
		t.Fatalf("stored: %v", rows)
	}
}
