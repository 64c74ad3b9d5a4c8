package ingest

import (
	"fmt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Window is what a conversion accepts. Rows' timestamps run from Oldest
// (zero: no lower bound, e.g. the project's retention) to maxFuture past
// Now; others are refused: kept, they would be stored and deleted.
type Window struct {
	Now, Oldest time.Time
	// Grow, if set, is asked for memory as the rows being built outgrow
	// what their request reserved: each row has a fixed cost, and holds a
	// copy of its resource's attributes and scope (a data point, of its
	// metric's name, unit and description), so a megabyte resource over
	// thousands of small spans takes gigabytes from a body of one. Its
	// error (ErrOverloaded, or the export refused) ends the conversion.
	Grow func(n int64) error
	// MaxBytes refuses at once an export whose rows would take more than
	// this beyond their own values (zero: no bound): retrying it later
	// would not help.
	MaxBytes int64
}

// ConvertTraces turns the spans of one export into a batch of the records
// table for project, refusing timestamps outside w. It returns nil for an
// export without spans. Spans the client got wrong are refused one by
// one: if some are good, the batch holds them and the error is a
// *PartialError; if none are, the error is the first one's.
func ConvertTraces(project string, td ptrace.Traces, w Window) (arrow.RecordBatch, error) {
	var est int64
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		res := attrsSize(rs.Resource().Attributes())
		for j := range rs.ScopeSpans().Len() {
			ss := rs.ScopeSpans().At(j)
			est += int64(ss.Spans().Len()) * int64(rowBytes+res+len(ss.Scope().Name())+len(ss.Scope().Version()))
		}
	}
	if err := w.fits(est); err != nil {
		return nil, err
	}
	return convert(td.SpanCount(), func(rj *rejects) (arrow.RecordBatch, error) {
		rb := newRecordsBuilder(memory.DefaultAllocator, w, td.SpanCount())
		if err := rb.addTraces(project, td, rj); err != nil {
			rb.release()
			return nil, err
		}
		return rb.finish(), nil
	})
}

// ConvertLogs turns the log records of one export into a records batch,
// as ConvertTraces does spans.
func ConvertLogs(project string, ld plog.Logs, w Window) (arrow.RecordBatch, error) {
	var est int64
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		rl := rls.At(i)
		res := attrsSize(rl.Resource().Attributes())
		for j := range rl.ScopeLogs().Len() {
			sl := rl.ScopeLogs().At(j)
			est += int64(sl.LogRecords().Len()) * int64(rowBytes+res+len(sl.Scope().Name())+len(sl.Scope().Version()))
		}
	}
	if err := w.fits(est); err != nil {
		return nil, err
	}
	return convert(ld.LogRecordCount(), func(rj *rejects) (arrow.RecordBatch, error) {
		rb := newRecordsBuilder(memory.DefaultAllocator, w, ld.LogRecordCount())
		if err := rb.addLogs(project, ld, rj); err != nil {
			rb.release()
			return nil, err
		}
		return rb.finish(), nil
	})
}

// ConvertMetrics turns the data points of one export into a metrics
// batch, as ConvertTraces does spans: the unit refused is a data point, or
// a whole metric if what its points share is bad (no name, no data).
func ConvertMetrics(project string, md pmetric.Metrics, w Window) (arrow.RecordBatch, error) {
	var est int64
	rms := md.ResourceMetrics()
	for i := range rms.Len() {
		rm := rms.At(i)
		res := attrsSize(rm.Resource().Attributes())
		for j := range rm.ScopeMetrics().Len() {
			sm := rm.ScopeMetrics().At(j)
			scope := len(sm.Scope().Name()) + len(sm.Scope().Version())
			for k := range sm.Metrics().Len() {
				m := sm.Metrics().At(k)
				est += int64(pointCount(m)) * int64(rowBytes+res+scope+len(m.Name())+len(m.Unit())+len(m.Description()))
			}
		}
	}
	if err := w.fits(est); err != nil {
		return nil, err
	}
	return convert(md.DataPointCount(), func(rj *rejects) (arrow.RecordBatch, error) {
		mb := newMetricsBuilder(memory.DefaultAllocator, w, md.DataPointCount())
		if err := mb.addMetrics(project, md, rj); err != nil {
			mb.release()
			return nil, err
		}
		return mb.finish(), nil
	})
}

// convert runs build fast, failing on the first bad item; only if one is
// bad does it build again item by item, to keep the good ones.
func convert(items int, build func(rj *rejects) (arrow.RecordBatch, error)) (arrow.RecordBatch, error) {
	rec, err := build(nil)
	if err == nil || !isInput(err) {
		return rec, err
	}
	rj := &rejects{}
	rec, err = build(rj)
	switch {
	case err != nil:
		return nil, err
	case rj.n >= int64(items):
		if rec != nil {
			rec.Release()
		}
		return nil, rj.first
	}
	// rec may be nil with items left: they had nothing to store (metric
	// points with no recorded value).
	return rec, &PartialError{Rejected: rj.n, Err: rj.first}
}

// fits refuses an export whose rows are estimated to take est bytes
// beyond their own values, past MaxBytes.
func (w Window) fits(est int64) error {
	if w.MaxBytes > 0 && est > w.MaxBytes {
		return &exportError{fmt.Sprintf("the export's rows would take about %d bytes, over the %d bytes of memory ingest may hold "+
			"(each span, log record or data point holds a copy of its resource's attributes and scope): "+
			"send fewer items per export, or smaller resource attributes", est, w.MaxBytes)}
	}
	return nil
}

// attrsSize is about the bytes of attributes as JSON.
func attrsSize(m pcommon.Map) int {
	n := 2
	m.Range(func(k string, v pcommon.Value) bool {
		n += len(k) + valueSize(v) + 4
		return true
	})
	return n
}

func valueSize(v pcommon.Value) int {
	switch v.Type() {
	case pcommon.ValueTypeStr:
		return len(v.Str())
	case pcommon.ValueTypeBytes:
		return v.Bytes().Len() * 4 / 3
	case pcommon.ValueTypeMap:
		return attrsSize(v.Map())
	case pcommon.ValueTypeSlice:
		n := 2
		for i := range v.Slice().Len() {
			n += valueSize(v.Slice().At(i)) + 1
		}
		return n
	}
	return 8
}
