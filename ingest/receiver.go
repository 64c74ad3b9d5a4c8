package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

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
	// grpcSlots holds one token per gRPC export being received;
	// slotWaiters counts the exports waiting for one.
	grpcSlots   chan struct{}
	slotWaiters atomic.Int32
	// grpcMethods maps each OTLP export method's full name to its signal.
	grpcMethods map[string]string

	retention sync.Map // project → *retentionOf

	// rejectLogged is when items of each signal were last logged as refused.
	rejectLogged map[string]*atomic.Int64
}

// retentionRefresh is how often a project's retention is read again in
// the background; one twice as old is read before it is used.
var retentionRefresh = 30 * time.Second

// retentionOf is a project's retention as last read from the catalog.
type retentionOf struct {
	mu       sync.Mutex
	d        time.Duration // 0: unknown project, or not read yet
	until    time.Time     // read again (in the background) after
	expires  time.Time     // too old to use after: read before the request
	fetching bool
}

// window is the span of time a project's rows are accepted in: nothing
// older than its retention, which the compactor would delete at once. The
// retention is read from the catalog every 30 s in the background while
// requests come, so a slow or unreachable catalog does not hold up
// ingest; the first request of a project, and the first after a minute
// without any, wait up to a second for it, so a change of retention
// applies within a minute.
func (r *Receiver) window(project string) Window {
	v, loaded := r.retention.LoadOrStore(project, &retentionOf{})
	ro := v.(*retentionOf)
	ro.mu.Lock()
	expired := !loaded || time.Now().After(ro.expires)
	ro.mu.Unlock()
	if expired {
		r.readRetention(project, ro, time.Second)
	}
	now := r.in.opts.Now()
	ro.mu.Lock()
	if time.Now().After(ro.until) && !ro.fetching {
		ro.fetching = true
		go r.readRetention(project, ro, 10*time.Second)
	}
	d := ro.d
	ro.mu.Unlock()
	w := Window{Now: now, MaxBytes: r.in.opts.MaxMemoryBytes}
	if d > 0 {
		w.Oldest = now.Add(-d)
	}
	return w
}

func (r *Receiver) readRetention(project string, ro *retentionOf, timeout time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	p, err := r.in.cat.Project(ctx, project)
	ro.mu.Lock()
	defer ro.mu.Unlock()
	ro.fetching = false
	now := time.Now()
	switch {
	case err == nil:
		ro.d = p.KeepFor()
	case errors.Is(err, catalog.ErrNotFound):
		ro.d = 0
	default: // keep what was known; try again soon, in the background
		ro.until, ro.expires = now.Add(retentionRefresh/6), now.Add(retentionRefresh)
		return
	}
	ro.until, ro.expires = now.Add(retentionRefresh), now.Add(2*retentionRefresh)
}

// NewReceiver returns a receiver that appends to in.
func NewReceiver(in *Ingester, maxRequestBytes int64) *Receiver {
	if maxRequestBytes <= 0 {
		maxRequestBytes = 16 << 20
	}
	// grpc-go reads (and decompresses) a message, up to the request limit,
	// before the service sees it and can count it against the memory
	// limit: the exports gRPC receives at once are bounded instead, to
	// what the limit holds at their largest (at least 8).
	slots := max(8, in.opts.MaxMemoryBytes/maxRequestBytes)
	r := &Receiver{in: in, MaxRequestBytes: maxRequestBytes, cpu: make(chan struct{}, runtime.GOMAXPROCS(0)),
		grpcSlots: make(chan struct{}, slots), grpcMethods: map[string]string{},
		rejectLogged: map[string]*atomic.Int64{"traces": new(atomic.Int64), "logs": new(atomic.Int64), "metrics": new(atomic.Int64)}}
	for _, e := range r.exporters() {
		r.grpcMethods["/"+e.service+"/"+exportMethod] = e.signal
	}
	return r
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
	var ee *exportError
	switch {
	case errors.As(err, &ie), errors.As(err, &ee):
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
		return ConvertTraces(project, td, r.convertWindow(ctx, project))
	})
}

// Logs appends the log records of one export.
func (r *Receiver) Logs(ctx context.Context, ld plog.Logs) error {
	return r.convertAndAppend(ctx, schema.Records, func(project string) (arrow.RecordBatch, error) {
		return ConvertLogs(project, ld, r.convertWindow(ctx, project))
	})
}

// Metrics appends the data points of one export.
func (r *Receiver) Metrics(ctx context.Context, md pmetric.Metrics) error {
	return r.convertAndAppend(ctx, schema.Metrics, func(project string) (arrow.RecordBatch, error) {
		return ConvertMetrics(project, md, r.convertWindow(ctx, project))
	})
}

// convertWindow is the window of a conversion for project, with the
// memory budget of its request (see withBudget).
func (r *Receiver) convertWindow(ctx context.Context, project string) Window {
	w := r.window(project)
	if b, ok := ctx.Value(budgetKey{}).(*budget); ok {
		w.Need = b.need
	}
	return w
}

// budget is the memory a request holds against the ingester's limit. The
// body's reservation covers its decoding and rows up to its size; past it,
// they ask for more (decoding, need). Both passes of a conversion (fast,
// then item by item) share it, so what the first got serves the second.
type budget struct {
	in      *Ingester
	held    *int64 // what the request holds; its handler releases it
	base    int64  // the body's reservation when decoding began
	grown   int64  // reserved beyond base
	decoded int64  // what the decoded export holds while it is converted
}

type budgetKey struct{}

// withBudget lets the conversions under ctx grow what *held counts.
func withBudget(ctx context.Context, in *Ingester, held *int64) context.Context {
	return context.WithValue(ctx, budgetKey{}, &budget{in: in, held: held, base: *held})
}

// decoding makes the request hold the n bytes its decoding will allocate,
// before it is decoded: a body of empty messages decodes to a hundred
// times its size (16 MB of empty spans to 1.7 GB).
func (b *budget) decoding(n int64) error {
	if limit := b.in.opts.MaxMemoryBytes; n > limit {
		return &exportError{fmt.Sprintf("decoding the export would take about %d bytes, over the %d bytes of memory ingest may hold: "+
			"send fewer items per export", n, limit)}
	}
	b.decoded = n
	return b.need(0)
}

// need makes the request hold enough for rows that take size bytes beyond
// their own values, on top of the decoded export: ErrOverloaded (retry
// later) while other requests hold the memory, and the export refused if
// it could never have it.
func (b *budget) need(size int64) error {
	extra := b.decoded + size - b.base
	if extra <= b.grown {
		return nil
	}
	limit := b.in.opts.MaxMemoryBytes
	if b.base+extra > limit {
		return tooLarge(b.base+extra, limit)
	}
	step := min(max(extra-b.grown, growStep), limit-b.base-b.grown)
	if !b.in.Reserve(step, *b.held) {
		return ErrOverloaded
	}
	*b.held += step
	b.grown += step
	return nil
}

// convertAndAppend converts and encodes in a CPU slot, then waits for the
// WAL outside it, so waiting requests never hold a core. An export whose
// bad items were refused and the rest appended returns a *PartialError.
func (r *Receiver) convertAndAppend(ctx context.Context, table string, convert func(project string) (arrow.RecordBatch, error)) error {
	project := r.project(ctx)
	var p *Pending
	var partial *PartialError
	err := r.withCPU(func() error {
		rec, err := convert(project)
		if errors.As(err, &partial) {
			err = nil
		}
		if err != nil || rec == nil {
			return err // rec is nil for an export with no rows
		}
		defer rec.Release()
		p, err = r.in.Prepare(project, table, rec)
		return err
	})
	if err == nil && p != nil {
		err = r.in.Commit(ctx, p)
	}
	if err == nil && partial != nil {
		return partial
	}
	return err
}

// noteRejected counts the items of an export refused one by one and logs
// why, at most once every 10 s per signal: a client whose clock is off
// loses data that way, and its operator would not know from the answers.
func (r *Receiver) noteRejected(signal string, pe *PartialError) {
	r.in.m.rejected.WithLabelValues(signal).Add(float64(pe.Rejected))
	now := time.Now().UnixNano()
	last := r.rejectLogged[signal]
	if t := last.Load(); now-t >= int64(10*time.Second) && last.CompareAndSwap(t, now) {
		slog.Warn("otlp: items refused, the rest of their export stored", "signal", signal, "refused", pe.Rejected, "first_reason", pe.Err)
	}
}

// Each signal's response records a *PartialError as OTLP's partial
// success; what remains is the export's error (nil for a partial success).
// The HTTP and gRPC front ends share them.

func (r *Receiver) tracesPartial(resp ptraceotlp.ExportResponse, err error) error {
	var pe *PartialError
	if !errors.As(err, &pe) {
		return err
	}
	r.noteRejected("traces", pe)
	resp.PartialSuccess().SetRejectedSpans(pe.Rejected)
	resp.PartialSuccess().SetErrorMessage(pe.Error())
	return nil
}

func (r *Receiver) logsPartial(resp plogotlp.ExportResponse, err error) error {
	var pe *PartialError
	if !errors.As(err, &pe) {
		return err
	}
	r.noteRejected("logs", pe)
	resp.PartialSuccess().SetRejectedLogRecords(pe.Rejected)
	resp.PartialSuccess().SetErrorMessage(pe.Error())
	return nil
}

func (r *Receiver) metricsPartial(resp pmetricotlp.ExportResponse, err error) error {
	var pe *PartialError
	if !errors.As(err, &pe) {
		return err
	}
	r.noteRejected("metrics", pe)
	resp.PartialSuccess().SetRejectedDataPoints(pe.Rejected)
	resp.PartialSuccess().SetErrorMessage(pe.Error())
	return nil
}
