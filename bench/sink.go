package bench

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
)

// Sink is an OTLP receiver that acknowledges everything and keeps nothing.
// Decoding, it is a receiver built from the OpenTelemetry Collector's own
// pdata module (what a Collector with a no-op exporter does per request),
// a baseline to compare backends with; not decoding, it only reads each
// body, which measures the load generator itself.
type Sink struct {
	Decode bool

	requests, bytes, spans, logs, points atomic.Int64
	zstd                                 *zstd.Decoder
}

// SinkCounts is what a sink has received.
type SinkCounts struct {
	Requests int64 `json:"requests"`
	Bytes    int64 `json:"bytes"`
	Spans    int64 `json:"spans"`  // counted when decoding
	Logs     int64 `json:"logs"`   // counted when decoding
	Points   int64 `json:"points"` // counted when decoding
}

// NewSink makes a sink; decode chooses whether requests are unmarshalled.
func NewSink(decode bool) *Sink {
	d, _ := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	return &Sink{Decode: decode, zstd: d}
}

// Counts returns what was received so far.
func (s *Sink) Counts() SinkCounts {
	return SinkCounts{Requests: s.requests.Load(), Bytes: s.bytes.Load(), Spans: s.spans.Load(), Logs: s.logs.Load(), Points: s.points.Load()}
}

// ServeHTTP answers POST /v1/traces, /v1/logs and /v1/metrics, protobuf or
// JSON, plain, gzip or zstd.
func (s *Sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	signal := strings.TrimPrefix(r.URL.Path, "/v1/")
	if r.Method != http.MethodPost || (signal != "traces" && signal != "logs" && signal != "metrics") {
		http.Error(w, "want POST /v1/traces, /v1/logs or /v1/metrics", http.StatusNotFound)
		return
	}
	body, err := s.read(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	asJSON := strings.HasPrefix(r.Header.Get("Content-Type"), "application/json")
	if s.Decode {
		if err := s.decode(signal, body, asJSON); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
	}
	s.requests.Add(1)
	s.bytes.Add(int64(len(body)))
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
		return
	}
	// An empty Export*ServiceResponse encodes to zero bytes.
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

func (s *Sink) read(r *http.Request) ([]byte, error) {
	var rd io.Reader = r.Body
	switch r.Header.Get("Content-Encoding") {
	case "", "identity":
	case "gzip":
		z, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		rd = z
	case "zstd":
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		return s.zstd.DecodeAll(raw, nil)
	default:
		return nil, fmt.Errorf("content encoding %q: want gzip or zstd", r.Header.Get("Content-Encoding"))
	}
	return io.ReadAll(rd)
}

func (s *Sink) decode(signal string, body []byte, asJSON bool) error {
	var err error
	switch signal {
	case "traces":
		req := ptraceotlp.NewExportRequest()
		if asJSON {
			err = req.UnmarshalJSON(body)
		} else {
			err = req.UnmarshalProto(body)
		}
		s.spans.Add(int64(req.Traces().SpanCount()))
	case "logs":
		req := plogotlp.NewExportRequest()
		if asJSON {
			err = req.UnmarshalJSON(body)
		} else {
			err = req.UnmarshalProto(body)
		}
		s.logs.Add(int64(req.Logs().LogRecordCount()))
	case "metrics":
		req := pmetricotlp.NewExportRequest()
		if asJSON {
			err = req.UnmarshalJSON(body)
		} else {
			err = req.UnmarshalProto(body)
		}
		s.points.Add(int64(req.Metrics().DataPointCount()))
	}
	if err != nil {
		return fmt.Errorf("undecodable %s request: %w", signal, err)
	}
	return nil
}

// RegisterGRPC adds the three OTLP services to g. Decoding uses pdata's
// own gRPC services; otherwise each message is taken as raw bytes.
func (s *Sink) RegisterGRPC(g *grpc.Server) {
	if s.Decode {
		ptraceotlp.RegisterGRPCServer(g, &sinkTraces{s: s})
		plogotlp.RegisterGRPCServer(g, &sinkLogs{s: s})
		pmetricotlp.RegisterGRPCServer(g, &sinkMetrics{s: s})
		return
	}
	for _, method := range grpcMethods {
		service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
		g.RegisterService(&grpc.ServiceDesc{
			ServiceName: service,
			HandlerType: (*any)(nil),
			Methods: []grpc.MethodDesc{{MethodName: name, Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var m rawMessage
				if err := dec(&m); err != nil {
					return nil, err
				}
				s.requests.Add(1)
				s.bytes.Add(int64(len(m)))
				return rawMessage(nil), nil
			}}},
		}, nil)
	}
}

// ServerOptions are the gRPC server options RegisterGRPC needs.
func (s *Sink) ServerOptions() []grpc.ServerOption {
	if s.Decode {
		return nil
	}
	return []grpc.ServerOption{grpc.ForceServerCodec(rawCodec{})}
}

type sinkTraces struct {
	ptraceotlp.UnimplementedGRPCServer
	s *Sink
}

func (t *sinkTraces) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	t.s.requests.Add(1)
	t.s.spans.Add(int64(req.Traces().SpanCount()))
	return ptraceotlp.NewExportResponse(), nil
}

type sinkLogs struct {
	plogotlp.UnimplementedGRPCServer
	s *Sink
}

func (l *sinkLogs) Export(_ context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	l.s.requests.Add(1)
	l.s.logs.Add(int64(req.Logs().LogRecordCount()))
	return plogotlp.NewExportResponse(), nil
}

type sinkMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	s *Sink
}

func (m *sinkMetrics) Export(_ context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	m.s.requests.Add(1)
	m.s.points.Add(int64(req.Metrics().DataPointCount()))
	return pmetricotlp.NewExportResponse(), nil
}
