package ingest

import (
	"fmt"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/strata-db/strata/engine"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Window is what a conversion accepts. Rows' timestamps run from Oldest
// (zero: no lower bound, e.g. the project's retention) to maxFuture past
// Now; others are refused: kept, they would be stored and deleted.
type Window struct {
	Now, Oldest time.Time
	// Need, if set, is told as the rows being built grow how many bytes
	// they take beyond their own values: a fixed cost each, and a copy of
	// their resource's attributes and scope (a data point's, of its
	// metric's name, unit and description), so a megabyte resource over
	// thousands of small spans takes gigabytes from a body of one. Its
	// error (ErrOverloaded, or the export refused) ends the conversion.
	Need func(size int64) error
	// MaxBytes refuses an export whose rows take more than this beyond
	// their own values (zero: no bound), when there is no Need to ask.
	MaxBytes int64
}

// ConvertTraces turns the spans of one export into a batch of the records
// table for project, refusing timestamps outside w. It returns nil for an
// export without spans. Spans the client got wrong are refused one by
// one: if some are good, the batch holds them and the error is a
// *PartialError; if none are, the error is the first one's.
func ConvertTraces(project string, td ptrace.Traces, w Window) (arrow.RecordBatch, error) {
	return convert(td.SpanCount(), func(rj *rejects) (arrow.RecordBatch, error) {
		rb := newRecordsBuilder(engine.BufferPool, w, td.SpanCount())
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
	return convert(ld.LogRecordCount(), func(rj *rejects) (arrow.RecordBatch, error) {
		rb := newRecordsBuilder(engine.BufferPool, w, ld.LogRecordCount())
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
	return convert(md.DataPointCount(), func(rj *rejects) (arrow.RecordBatch, error) {
		mb := newMetricsBuilder(engine.BufferPool, w, md.DataPointCount())
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
	return rec, &PartialError{Rejected: rj.n, Err: rj.first}
}

// tooLarge refuses an export whose rows would take size bytes of memory.
func tooLarge(size, limit int64) error {
	return &exportError{fmt.Sprintf("the export's rows would take more than %d bytes, over the %d bytes of memory ingest may hold "+
		"(each span, log record or data point holds a copy of its resource's attributes and scope): "+
		"send fewer items per export, or smaller resource attributes", size, limit)}
}
