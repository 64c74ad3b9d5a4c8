package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/klauspost/compress/zstd"
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
//
// The services take each message as bytes and decode it themselves, as
// the HTTP front end does, with the same checks and in a CPU slot: a
// message gRPC decoded itself would fail as INTERNAL, not as the
// INVALID_ARGUMENT a malformed export is.
func (r *Receiver) NewGRPCServer() *grpc.Server {
	s := grpc.NewServer(grpc.MaxRecvMsgSize(int(r.MaxRequestBytes)), grpc.InTapHandle(r.admit),
		grpc.ForceServerCodecV2(rawCodec{}))
	for _, e := range r.exporters() {
		s.RegisterService(&grpc.ServiceDesc{
			ServiceName: e.service,
			HandlerType: (*any)(nil),
			Methods:     []grpc.MethodDesc{{MethodName: exportMethod, Handler: r.grpcExport(e)}},
		}, r)
	}
	return s
}

// exportMethod is the one method of each OTLP service.
const exportMethod = "Export"

func (r *Receiver) grpcExport(e exporter) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		give, err := r.takeSlot(ctx)
		if err != nil {
			return nil, r.grpcError(e.signal, err)
		}
		body, err := r.receive(dec)
		held := requestMemoryFactor * int64(len(body))
		reserved := err == nil && r.in.Reserve(held, 0)
		// The message is in hand and, if reserved, counted against the
		// memory limit: the receive slot is free for the next one.
		give()
		if errors.Is(err, ErrOverloaded) { // too slow while others waited: retry later
			return nil, r.grpcError(e.signal, err)
		}
		if err != nil {
			return nil, r.receiveError(e.signal, err)
		}
		if !reserved {
			return nil, r.grpcError(e.signal, ErrOverloaded)
		}
		defer func() { r.in.Release(held) }() // what conversion grew it to
		resp, err := e.export(withBudget(ctx, r.in, &held), body, false)
		if err := r.grpcError(e.signal, err); err != nil {
			return nil, err
		}
		return rawMessage(resp), nil
	}
}

// receiveTimeout bounds how long an admitted export may take to send its
// message: streams that sent only headers held their slots as long as
// their connection lasted, and 16 of them refused every exporter.
// receivePatience is how long one may take while other exports wait for
// its slot: 16 streams that sent only headers still held every slot for
// receiveTimeout, and, opened again and again, for good.
var receiveTimeout, receivePatience = 15 * time.Second, time.Second

// receive reads the call's message (grpc-go reads it when the service asks)
// unless it takes longer than receiveTimeout, or than receivePatience
// while other exports wait for a slot; the call then ends, and with it the
// read and the slot. A message still arriving after receivePatience comes
// at under 16 MiB/s at the request limit; its sender is told to retry.
func (r *Receiver) receive(dec func(any) error) (rawMessage, error) {
	var m rawMessage
	done := make(chan error, 1)
	go func() { done <- dec(&m) }()
	t := time.NewTimer(receiveTimeout)
	defer t.Stop()
	patience := time.NewTimer(receivePatience)
	defer patience.Stop()
	var crowded <-chan time.Time // ticks once patience has run out
	for {
		select {
		case err := <-done:
			return m, err
		case <-t.C:
			return nil, status.Errorf(codes.DeadlineExceeded, "the export's message did not arrive within %v", receiveTimeout)
		case <-patience.C:
			tick := time.NewTicker(receivePatience / 10)
			defer tick.Stop()
			crowded = tick.C
		case <-crowded:
			if r.slotWaiters.Load() > 0 {
				r.in.m.refused.Inc()
				return nil, fmt.Errorf("%w: the export's message was still arriving after %v while other exports waited for its slot",
					ErrOverloaded, receivePatience)
			}
		}
	}
}

// rawMessage is a protobuf message as bytes; rawCodec passes it through.
type rawMessage []byte

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(rawMessage)
	if !ok {
		return nil, fmt.Errorf("otlp/grpc: cannot send a %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMessage)
	if !ok {
		return fmt.Errorf("otlp/grpc: cannot receive a %T", v)
	}
	*m = data.Materialize()
	return nil
}

// admit refuses a call before its message is even read when ingest is
// over its limits, so an overloaded node spends nothing on it.
func (r *Receiver) admit(ctx context.Context, info *tap.Info) (context.Context, error) {
	signal, export := r.grpcMethods[info.FullMethodName]
	if !export {
		signal = "traces" // counted somewhere
	}
	if err := r.in.Admit(); err != nil {
		return ctx, r.grpcError(signal, err)
	}
	return ctx, nil
}

// slotWait is how long an export may wait for a receive slot.
var slotWait = 2 * time.Second

// takeSlot waits for one of the slots that bound the exports being
// received at once: grpc-go reads and decompresses a message, up to the
// request limit, before the service can count it against the memory
// limit. The slot is taken before the message is read (grpc-go holds
// no more of it than a stream's flow-control window until then), and
// give returns it, once. An export is refused only after waiting
// slotWait: exports are short, and 32 exporters at once onto 16 slots
// had 30 % of their exports refused while the node was idle.
func (r *Receiver) takeSlot(ctx context.Context) (give func(), err error) {
	select {
	case r.grpcSlots <- struct{}{}:
	default:
		r.slotWaiters.Add(1) // slow receives give way (receive)
		defer r.slotWaiters.Add(-1)
		t := time.NewTimer(slotWait)
		defer t.Stop()
		select {
		case r.grpcSlots <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
			r.in.m.refused.Inc()
			return nil, errBusy
		}
	}
	var once sync.Once
	return func() { once.Do(func() { <-r.grpcSlots }) }, nil
}

// errBusy refuses a gRPC export while the most that may be received at
// once are being received.
var errBusy = fmt.Errorf("%w: too many exports being received at once", ErrOverloaded)

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

// receiveError counts a call whose message could not be received. grpc-go
// has already answered it: a message that does not decompress gets
// INTERNAL (it writes the status itself, before the service returns).
func (r *Receiver) receiveError(signal string, err error) error {
	r.in.m.requests.WithLabelValues(signal, "grpc", status.Code(err).String()).Inc()
	return err
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
