package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine/schema"
)

// Receiver turns decoded OTLP exports into rows and hands them to the
// Ingester. The HTTP and gRPC front ends share it.
type Receiver struct {
	in *Ingester
	// MaxRequestBytes bounds a request body, compressed or not (default
	// 16 MiB). Larger requests get 413 / RESOURCE_EXHAUSTED.
	MaxRequestBytes int64
}

// NewReceiver returns a receiver that appends to in.
func NewReceiver(in *Ingester, maxRequestBytes int64) *Receiver {
	if maxRequestBytes <= 0 {
		maxRequestBytes = 16 << 20
	}
	return &Receiver{in: in, MaxRequestBytes: maxRequestBytes}
}

// project picks the project of a request. Until tokens exist every request
// goes to the default project.
func (r *Receiver) project(context.Context) string { return catalog.DefaultProject }

// errKind classifies a failed export for the protocol's status code.
type errKind int

const (
	kindInput       errKind = iota // the client's mistake: 400 / INVALID_ARGUMENT
	kindOverloaded                 // retry later: 429 / RESOURCE_EXHAUSTED
	kindUnavailable                // retry later: 503 / UNAVAILABLE
	kindCanceled                   // the client went away
)

func classify(err error) errKind {
	var ie *inputError
	switch {
	case errors.As(err, &ie):
		return kindInput
	case errors.Is(err, ErrOverloaded):
		return kindOverloaded
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kindCanceled
	}
	return kindUnavailable
}

// retryAfter is what overloaded and unavailable answers ask clients to wait.
const retryAfter = time.Second

// Traces appends the spans of one export.
func (r *Receiver) Traces(ctx context.Context, td ptrace.Traces) error {
	rb := newRecordsBuilder(memory.DefaultAllocator, r.in.opts.Now(), td.SpanCount())
	if err := rb.addTraces(r.project(ctx), td); err != nil {
		rb.release()
		return err
	}
	return r.append(ctx, schema.Records, rb.finish())
}

// Logs appends the log records of one export.
func (r *Receiver) Logs(ctx context.Context, ld plog.Logs) error {
	rb := newRecordsBuilder(memory.DefaultAllocator, r.in.opts.Now(), ld.LogRecordCount())
	if err := rb.addLogs(r.project(ctx), ld); err != nil {
		rb.release()
		return err
	}
	return r.append(ctx, schema.Records, rb.finish())
}

// Metrics appends the data points of one export.
func (r *Receiver) Metrics(ctx context.Context, md pmetric.Metrics) error {
	mb := newMetricsBuilder(memory.DefaultAllocator, r.in.opts.Now(), md.DataPointCount())
	if err := mb.addMetrics(r.project(ctx), md); err != nil {
		mb.release()
		return err
	}
	return r.append(ctx, schema.Metrics, mb.finish())
}

func (r *Receiver) append(ctx context.Context, table string, rec arrow.RecordBatch) error {
	if rec == nil {
		return nil // an export with no rows
	}
	defer rec.Release()
	return r.in.Append(ctx, r.project(ctx), table, rec)
}
