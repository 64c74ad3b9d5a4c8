package ingest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// OTLP/HTTP: POST /v1/traces, /v1/logs, /v1/metrics with a protobuf or JSON
// body, optionally gzip- or zstd-compressed. Answers follow the OTLP
// specification: 200 with an export response in the request's encoding;
// 400 for bad data, 413 for a body over the limit, 415 for an unsupported
// content type or encoding, 429 and 503 with Retry-After when the client
// should try again. Error bodies are google.rpc.Status messages.

const (
	contentProto = "application/x-protobuf"
	contentJSON  = "application/json"
)

// exporter decodes one signal's request and feeds it to the receiver.
// The HTTP and gRPC front ends share them.
type exporter struct {
	signal  string
	service string // the OTLP gRPC service
	// export decodes body (protobuf or JSON) and appends its rows; it
	// returns the encoded success response.
	export func(ctx context.Context, body []byte, json bool) ([]byte, error)
}

// exporters are the three signals' exporters.
func (r *Receiver) exporters() []exporter {
	return []exporter{
		{signal: "traces", service: "opentelemetry.proto.collector.trace.v1.TraceService",
			export: func(ctx context.Context, body []byte, json bool) ([]byte, error) {
				req := ptraceotlp.NewExportRequest()
				if err := r.unmarshal(ctx, req.UnmarshalProto, req.UnmarshalJSON, body, json, mTraces); err != nil {
					return nil, err
				}
				resp := ptraceotlp.NewExportResponse()
				if err := r.tracesPartial(resp, r.Traces(ctx, req.Traces())); err != nil {
					return nil, err
				}
				return marshal(resp, json)
			}},
		{signal: "logs", service: "opentelemetry.proto.collector.logs.v1.LogsService",
			export: func(ctx context.Context, body []byte, json bool) ([]byte, error) {
				req := plogotlp.NewExportRequest()
				if err := r.unmarshal(ctx, req.UnmarshalProto, req.UnmarshalJSON, body, json, mLogs); err != nil {
					return nil, err
				}
				resp := plogotlp.NewExportResponse()
				if err := r.logsPartial(resp, r.Logs(ctx, req.Logs())); err != nil {
					return nil, err
				}
				return marshal(resp, json)
			}},
		{signal: "metrics", service: "opentelemetry.proto.collector.metrics.v1.MetricsService",
			export: func(ctx context.Context, body []byte, json bool) ([]byte, error) {
				req := pmetricotlp.NewExportRequest()
				if err := r.unmarshal(ctx, req.UnmarshalProto, req.UnmarshalJSON, body, json, mMetrics); err != nil {
					return nil, err
				}
				resp := pmetricotlp.NewExportResponse()
				if err := r.metricsPartial(resp, r.Metrics(ctx, req.Metrics())); err != nil {
					return nil, err
				}
				return marshal(resp, json)
			}},
	}
}

// Handler serves OTLP/HTTP.
func (r *Receiver) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, e := range r.exporters() {
		mux.Handle("/v1/"+e.signal, r.httpExport(e))
	}
	// Other paths get a Status body too, as OTLP/HTTP asks of every 4xx
	// (QA: /v1/trace got net/http's text/plain "404 page not found").
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		json := strings.HasPrefix(strings.ToLower(req.Header.Get("Content-Type")), contentJSON)
		writeStatus(w, http.StatusNotFound, fmt.Sprintf("no OTLP endpoint at %s: POST to /v1/traces, /v1/logs or /v1/metrics", req.URL.Path), json)
	})
	return mux
}

func (r *Receiver) unmarshal(ctx context.Context, fromProto, fromJSON func([]byte) error, body []byte, json bool, top otlpMsg) error {
	return r.withCPU(func() error { return unmarshal(ctx, fromProto, fromJSON, body, json, top) })
}

// unmarshal decodes body once the memory its decoding takes is held by
// the request's budget in ctx (if any).
func unmarshal(ctx context.Context, fromProto, fromJSON func([]byte) error, body []byte, json bool, top otlpMsg) error {
	var decoded int64
	if json {
		decoded = jsonDecodedBytes(body)
	} else {
		var err error
		if decoded, err = checkProto(body, top); err != nil {
			return err
		}
	}
	if b, ok := ctx.Value(budgetKey{}).(*budget); ok {
		if err := b.decoding(decoded); err != nil {
			return err
		}
	}
	if json {
		body = dropNullMembers(body)
		if err := fromJSON(body); err != nil {
			return badInput("invalid OTLP JSON: %v", err)
		}
		if at := jsonTrailer(body); at >= 0 {
			// The decoder reads one object and ignores the rest: spans after
			// it would be acknowledged and lost.
			return badInput("invalid OTLP JSON: more data after the request's object, at byte %d", at)
		}
		return nil
	}
	if err := fromProto(body); err != nil {
		return badInput("invalid OTLP protobuf: %v", err)
	}
	return nil
}

type response interface {
	MarshalProto() ([]byte, error)
	MarshalJSON() ([]byte, error)
}

func marshal(resp response, json bool) ([]byte, error) {
	if json {
		return resp.MarshalJSON()
	}
	return resp.MarshalProto()
}

// httpError is an HTTP status and message for a refused request.
type httpError struct {
	status int
	msg    string
}

func (e *httpError) Error() string { return e.msg }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (r *Receiver) httpExport(e exporter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		json, code := false, http.StatusOK
		defer func() { r.in.m.requests.WithLabelValues(e.signal, "http", strconv.Itoa(code)).Inc() }()
		fail := func(status int, msg string) {
			code = status
			if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
				w.Header().Set("Retry-After", strconv.Itoa(int(retryAfter.Seconds()))) // the client may retry
			}
			writeStatus(w, status, msg, json)
		}
		mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type"))
		json = err == nil && mt == contentJSON // errors answer in the request's encoding
		if req.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			fail(http.StatusMethodNotAllowed, "use POST to export "+e.signal)
			return
		}
		switch {
		case err == nil && (mt == contentProto || mt == contentJSON):
		default:
			fail(http.StatusUnsupportedMediaType, fmt.Sprintf("unsupported Content-Type %q: want %s or %s",
				req.Header.Get("Content-Type"), contentProto, contentJSON))
			return
		}
		if err := r.in.Admit(); err != nil {
			fail(http.StatusTooManyRequests, err.Error())
			return
		}
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		defer bufPool.Put(buf)
		var held int64 // memory reserved for this request
		defer func() { r.in.Release(held) }()
		herr := r.readBody(w, req, buf, &held)
		if herr == nil && !r.reserveDecoding(int64(buf.Len()), &held) {
			herr = &httpError{http.StatusTooManyRequests, ErrOverloaded.Error()}
		}
		if herr != nil {
			fail(herr.status, herr.msg)
			return
		}
		resp, err := e.export(withBudget(req.Context(), r.in, &held), buf.Bytes(), json)
		if err != nil {
			switch classify(err) {
			case kindInput:
				fail(http.StatusBadRequest, err.Error())
			case kindOverloaded:
				fail(http.StatusTooManyRequests, err.Error())
			case kindCanceled:
				code = 499 // the client is gone; nothing useful to send
			default:
				slog.Warn("otlp/http export failed", "signal", e.signal, "err", err)
				fail(http.StatusServiceUnavailable, err.Error())
			}
			return
		}
		if json {
			w.Header().Set("Content-Type", contentJSON)
		} else {
			w.Header().Set("Content-Type", contentProto)
		}
		w.WriteHeader(http.StatusOK)
		w.Write(resp)
	})
}

// zstdDecoderOptions cap a frame's window at 8 MiB, what the zstd format
// asks every decoder to support: the decoder allocates the window a frame
// declares, and a 159-byte body declaring 512 MiB (zstd --long=29) made
// each request hold that much.
var zstdDecoderOptions = []zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
	zstd.WithDecoderMaxWindow(8 << 20)}

var zstdPool = sync.Pool{New: func() any {
	d, err := zstd.NewReader(nil, zstdDecoderOptions...)
	if err != nil {
		panic(err)
	}
	return d
}}

// requestMemoryFactor is the memory a request holds while it is decoded
// and converted, per byte of its decompressed protobuf body: ~10× measured
// for spans (pdata's objects, then Arrow builders and WAL frames).
const requestMemoryFactor = 10

// reserveDecoding reserves what decoding a body of n bytes, already read
// and held, takes on top of it.
func (r *Receiver) reserveDecoding(n int64, held *int64) bool {
	extra := (requestMemoryFactor - 1) * n
	if !r.in.Reserve(extra, *held) {
		return false
	}
	*held += extra
	return true
}

// budgetReader reserves the memory of each byte it reads: the bodies being
// read at once fit the ingester's memory limit, however many clients send.
type budgetReader struct {
	r     io.Reader
	in    *Ingester
	held  *int64
	other int64 // what the same request holds besides
}

func (b *budgetReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if n > 0 {
		if !b.in.Reserve(int64(n), *b.held+b.other) {
			return 0, ErrOverloaded
		}
		*b.held += int64(n)
	}
	return n, err
}

// readBody reads the (possibly compressed) body into buf, enforcing the
// size limit both before and after decompression, and reserving its
// memory in held.
func (r *Receiver) readBody(w http.ResponseWriter, req *http.Request, buf *bytes.Buffer, held *int64) *httpError {
	limit := r.MaxRequestBytes
	if req.ContentLength > limit {
		return &httpError{http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body of %d bytes exceeds the limit of %d", req.ContentLength, limit)}
	}
	enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding")))
	switch enc {
	case "", "identity", "gzip", "zstd":
	default:
		return &httpError{http.StatusUnsupportedMediaType,
			fmt.Sprintf("unsupported Content-Encoding %q: want gzip, zstd or none", enc)}
	}
	body := http.MaxBytesReader(w, req.Body, limit)
	if enc == "" || enc == "identity" {
		return readLimited(buf, &budgetReader{r: body, in: r.in, held: held}, limit, "body")
	}
	// A compressed body is received whole before it is decompressed, so
	// that a client that stalls holds the bytes it sent, not the 1000×
	// they may expand to: 15 kB of gzip, sent but for its last byte, held
	// 16 MB of the memory limit until the read timeout.
	wire := bufPool.Get().(*bytes.Buffer)
	wire.Reset()
	defer bufPool.Put(wire)
	var wireHeld int64
	defer func() { r.in.Release(wireHeld) }()
	if herr := readLimited(wire, &budgetReader{r: body, in: r.in, held: &wireHeld}, limit, "body"); herr != nil {
		return herr
	}
	var src io.Reader
	switch enc {
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(wire.Bytes()))
		if err != nil {
			return readError(err, limit, "gzip")
		}
		defer zr.Close()
		src = zr
	case "zstd":
		zr := zstdPool.Get().(*zstd.Decoder)
		defer func() { zr.Reset(nil); zstdPool.Put(zr) }()
		if err := zr.Reset(bytes.NewReader(wire.Bytes())); err != nil {
			return readError(err, limit, "zstd")
		}
		src = zr
	}
	herr := readLimited(buf, &budgetReader{r: src, in: r.in, held: held, other: wireHeld}, limit, enc)
	if herr != nil && herr.status == http.StatusRequestEntityTooLarge {
		herr.msg = fmt.Sprintf("decompressed request body exceeds the limit of %d bytes", limit)
	}
	return herr
}

// readLimited reads src into buf, refusing more than limit bytes.
func readLimited(buf *bytes.Buffer, src io.Reader, limit int64, what string) *httpError {
	// One byte over the limit tells a body that is too large.
	n, err := buf.ReadFrom(io.LimitReader(src, limit+1))
	if errors.Is(err, ErrOverloaded) {
		return &httpError{http.StatusTooManyRequests, err.Error()}
	}
	if err != nil {
		return readError(err, limit, what)
	}
	if n > limit {
		return &httpError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", limit)}
	}
	return nil
}

func readError(err error, limit int64, what string) *httpError {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return &httpError{http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body exceeds the limit of %d bytes", limit)}
	}
	if errors.Is(err, zstd.ErrWindowSizeExceeded) || errors.Is(err, zstd.ErrDecoderSizeExceeded) {
		// Said as it is: the decoder's own words named a size limit the
		// body was under (QA).
		return &httpError{http.StatusBadRequest, "cannot read zstd: window size exceeded: the frame asks for a window over 8 MiB, " +
			"more than decoders must support (RFC 8878); compress with a smaller window (zstd -19 or lower, without --long or --ultra)"}
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A slow network, not a bad request: OTLP clients retry a 503 and
		// drop what a 400 refuses.
		return &httpError{http.StatusServiceUnavailable, fmt.Sprintf("%s did not arrive within the server's read timeout; retry", what)}
	}
	return &httpError{http.StatusBadRequest, fmt.Sprintf("cannot read %s: %v", what, err)}
}

var httpToGRPC = map[int]codes.Code{
	http.StatusBadRequest:            codes.InvalidArgument,
	http.StatusNotFound:              codes.NotFound,
	http.StatusMethodNotAllowed:      codes.Unimplemented,
	http.StatusRequestEntityTooLarge: codes.ResourceExhausted,
	http.StatusUnsupportedMediaType:  codes.InvalidArgument,
	http.StatusTooManyRequests:       codes.ResourceExhausted,
	http.StatusServiceUnavailable:    codes.Unavailable,
}

// writeStatus answers with a google.rpc.Status body, as OTLP/HTTP asks.
// Its message is made valid UTF-8 (an error quoting a few bytes of the
// body can cut a character), or marshalling it fails and the body is empty.
func writeStatus(w http.ResponseWriter, status int, msg string, json bool) {
	st := &spb.Status{Code: int32(httpToGRPC[status]), Message: strings.ToValidUTF8(msg, "\uFFFD")}
	var body []byte
	if json {
		body, _ = protojson.Marshal(st)
		w.Header().Set("Content-Type", contentJSON)
	} else {
		body, _ = proto.Marshal(st)
		w.Header().Set("Content-Type", contentProto)
	}
	w.WriteHeader(status)
	w.Write(body)
}
