package ingest

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Window is the span of time ingest accepts rows in: timestamps from
// Oldest (zero: no lower bound, e.g. the project's retention) to maxFuture
// past Now. Others are refused: kept, they would be stored and deleted.
type Window struct{ Now, Oldest time.Time }

// ConvertTraces turns the spans of one export into a batch of the records
// table for project, refusing timestamps outside w. It returns nil for an
// export without spans.
func ConvertTraces(project string, td ptrace.Traces, w Window) (arrow.RecordBatch, error) {
	rb := newRecordsBuilder(memory.DefaultAllocator, w, td.SpanCount())
	if err := rb.addTraces(project, td); err != nil {
		rb.release()
		return nil, err
	}
	return rb.finish(), nil
}

// ConvertLogs turns the log records of one export into a records batch.
func ConvertLogs(project string, ld plog.Logs, w Window) (arrow.RecordBatch, error) {
	rb := newRecordsBuilder(memory.DefaultAllocator, w, ld.LogRecordCount())
	if err := rb.addLogs(project, ld); err != nil {
		rb.release()
		return nil, err
	}
	return rb.finish(), nil
}

// ConvertMetrics turns the data points of one export into a metrics batch.
func ConvertMetrics(project string, md pmetric.Metrics, w Window) (arrow.RecordBatch, error) {
	mb := newMetricsBuilder(memory.DefaultAllocator, w, md.DataPointCount())
	if err := mb.addMetrics(project, md); err != nil {
		mb.release()
		return nil, err
	}
	return mb.finish(), nil
}
