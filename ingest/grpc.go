package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/gzip" // gzip-compressed requests
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
	"google.golang.org/protobuf/types/known/durationpb"
)

// NewGRPCServer returns a gRPC server with the three OTLP services
// registered. It accepts gzip- and zstd-compressed messages up to the
// receiver's request limit.
func (r *Receiver) NewGRPCServer() *grpc.Server {
	s := grpc.NewServer(grpc.MaxRecvMsgSize(int(r.MaxRequestBytes)), grpc.InTapHandle(r.admit),
		grpc.ForceServerCodecV2(depthCodec{encoding.GetCodecV2("proto")}))
	ptraceotlp.RegisterGRPCServer(s, &traceService{r: r})
	plogotlp.RegisterGRPCServer(s, &logService{r: r})
	pmetricotlp.RegisterGRPCServer(s, &metricService{r: r})
	return s
}

// depthCodec is the proto codec (pdata's, for OTLP messages) with
// checkProtoDepth in front of it.
type depthCodec struct{ encoding.CodecV2 }

func (c depthCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(interface{ UnmarshalProto([]byte) error })
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	if top := grpcRequestType(v); top != mNone {
		if err := checkProtoDepth(buf.ReadOnlyData(), top); err != nil {
			return err
		}
	}
	return m.UnmarshalProto(buf.ReadOnlyData())
}

type traceService struct {
	ptraceotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *traceService) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	resp := ptraceotlp.NewExportResponse()
	return resp, s.r.grpcError("traces", tracesPartial(resp, s.r.Traces(ctx, req.Traces())))
}

type logService struct {
	plogotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *logService) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	resp := plogotlp.NewExportResponse()
	return resp, s.r.grpcError("logs", logsPartial(resp, s.r.Logs(ctx, req.Logs())))
}

type metricService struct {
	pmetricotlp.UnimplementedGRPCServer
	r *Receiver
}

func (s *metricService) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	resp := pmetricotlp.NewExportResponse()
	return resp, s.r.grpcError("metrics", metricsPartial(resp, s.r.Metrics(ctx, req.Metrics())))
}

// admit refuses a call before its message is even read when ingest is
// over its limits, so an overloaded node spends nothing on it.
func (r *Receiver) admit(ctx context.Context, info *tap.Info) (context.Context, error) {
	if err := r.in.Admit(); err != nil {
		signal := "traces"
		switch {
		case strings.Contains(info.FullMethodName, "logs"):
			signal = "logs"
		case strings.Contains(info.FullMethodName, "metrics"):
			signal = "metrics"
		}
		return ctx, r.grpcError(signal, err)
	}
	return ctx, nil
}

// grpcError maps an export error onto the OTLP/gRPC status codes:
// INVALID_ARGUMENT is final; RESOURCE_EXHAUSTED and UNAVAILABLE carry a
// RetryInfo so clients know to retry.
func (r *Receiver) grpcError(signal string, err error) error {
	code := codes.OK
	defer func() { r.in.m.requests.WithLabelValues(signal, "grpc", code.String()).Inc() }()
	if err == nil {
		return nil
	}
	switch classify(err) {
	case kindInput:
		code = codes.InvalidArgument
		return status.Error(code, err.Error())
	case kindCanceled:
		code = codes.Canceled
		if errors.Is(err, context.DeadlineExceeded) {
			code = codes.DeadlineExceeded
		}
		return status.Error(code, err.Error())
	case kindOverloaded:
		code = codes.ResourceExhausted
	default:
		slog.Warn("otlp/grpc export failed", "signal", signal, "err", err)
		code = codes.Unavailable
	}
	st, derr := status.New(code, err.Error()).WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)})
	if derr != nil {
		return status.Error(code, err.Error())
	}
	return st.Err()
}

// zstdCodec lets gRPC clients send zstd-compressed messages
// (grpc-encoding: zstd), as the OpenTelemetry Collector does.
type zstdCodec struct {
	encoders, decoders sync.Pool
}

func (c *zstdCodec) Name() string { return "zstd" }

func (c *zstdCodec) Compress(w io.Writer) (io.WriteCloser, error) {
	enc, _ := c.encoders.Get().(*zstd.Encoder)
	if enc == nil {
		var err error
		if enc, err = zstd.NewWriter(w, zstd.WithEncoderConcurrency(1)); err != nil {
			return nil, err
		}
	} else {
		enc.Reset(w)
	}
	return &zstdWriter{Encoder: enc, pool: &c.encoders}, nil
}

type zstdWriter struct {
	*zstd.Encoder
	pool *sync.Pool
}

func (w *zstdWriter) Close() error {
	err := w.Encoder.Close()
	w.pool.Put(w.Encoder)
	return err
}

func (c *zstdCodec) Decompress(r io.Reader) (io.Reader, error) {
	dec, _ := c.decoders.Get().(*zstd.Decoder)
	if dec == nil {
		var err error
		if dec, err = zstd.NewReader(r, zstdDecoderOptions...); err != nil {
			return nil, err
		}
	} else if err := dec.Reset(r); err != nil {
		return nil, err
	}
	return &zstdReader{Decoder: dec, pool: &c.decoders}, nil
}

// zstdReader returns its decoder to the pool once the message is read.
type zstdReader struct {
	*zstd.Decoder
	pool *sync.Pool
}

func (r *zstdReader) Read(p []byte) (int, error) {
	if r.pool == nil {
		return 0, io.EOF // the decoder went back to the pool
	}
	n, err := r.Decoder.Read(p)
	if err == io.EOF && r.pool != nil {
		r.pool.Put(r.Decoder)
		r.pool = nil
	}
	return n, err
}

func init() { encoding.RegisterCompressor(&zstdCodec{}) }
