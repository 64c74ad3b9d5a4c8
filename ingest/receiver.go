package ingest

import (
	"context"
	"errors"
	"runtime"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
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
	// cpu bounds the requests decoding and converting at once to the
	// number of cores: more would only slow each other and starve the
	// flusher, whose progress is what lets ingest keep accepting.
	cpu chan struct{}
	// MaxRequestBytes bounds a request body, compressed or not (default
	// 16 MiB). Larger requests get 413 / RESOURCE_EXHAUSTED.
	MaxRequestBytes int64
}

// NewReceiver returns a receiver that appends to in.
func NewReceiver(in *Ingester, maxRequestBytes int64) *Receiver {
	if maxRequestBytes <= 0 {
		maxRequestBytes = 16 << 20
	}
	return &Receiver{in: in, MaxRequestBytes: maxRequestBytes, cpu: make(chan struct{}, runtime.GOMAXPROCS(0))}
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

// withCPU runs fn holding one of the CPU slots.
func (r *Receiver) withCPU(fn func() error) error {
	r.cpu <- struct{}{}
	defer func() { <-r.cpu }()
	return fn()
}

// Traces appends the spans of one export.
func (r *Receiver) Traces(ctx context.Context, td ptrace.Traces) error {
	return r.convertAndAppend(ctx, schema.Records, func(project string) (arrow.RecordBatch, error) {
		return ConvertTraces(project, td, r.in.opts.Now())
	})
}

// Logs appends the log records of one export.
func (r *Receiver) Logs(ctx context.Context, ld plog.Logs) error {
	return r.convertAndAppend(ctx, schema.Records, func(project string) (arrow.RecordBatch, error) {
		return ConvertLogs(project, ld, r.in.opts.Now())
	})
}

// Metrics appends the data points of one export.
func (r *Receiver) Metrics(ctx context.Context, md pmetric.Metrics) error {
	return r.convertAndAppend(ctx, schema.Metrics, func(project string) (arrow.RecordBatch, error) {
		return ConvertMetrics(project, md, r.in.opts.Now())
	})
}

// convertAndAppend converts and encodes in a CPU slot, then waits for the
// WAL outside it, so waiting requests never hold a core.
func (r *Receiver) convertAndAppend(ctx context.Context, table string, convert func(project string) (arrow.RecordBatch, error)) error {
	project := r.project(ctx)
	var p *Pending
	err := r.withCPU(func() error {
		rec, err := convert(project)
		if err != nil || rec == nil {
			return err // rec is nil for an export with no rows
		}
		defer rec.Release()
		p, err = r.in.Prepare(project, table, rec)
		return err
	})
	if err != nil || p == nil {
		return err
	}
	return r.in.Commit(ctx, p)
}
