package ingest

import (
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// ConvertTraces turns the spans of one export into a batch of the records
// table for project; now is the clock that far-future timestamps are
// judged by. It returns nil for an export without spans.
func ConvertTraces(project string, td ptrace.Traces, now time.Time) (arrow.RecordBatch, error) {
	rb := newRecordsBuilder(memory.DefaultAllocator, now, td.SpanCount())
	if err := rb.addTraces(project, td); err != nil {
		rb.release()
		return nil, err
	}
	return rb.finish(), nil
}

// ConvertLogs turns the log records of one export into a records batch.
func ConvertLogs(project string, ld plog.Logs, now time.Time) (arrow.RecordBatch, error) {
	rb := newRecordsBuilder(memory.DefaultAllocator, now, ld.LogRecordCount())
	if err := rb.addLogs(project, ld); err != nil {
		rb.release()
		return nil, err
	}
	return rb.finish(), nil
}

// ConvertMetrics turns the data points of one export into a metrics batch.
func ConvertMetrics(project string, md pmetric.Metrics, now time.Time) (arrow.RecordBatch, error) {
	mb := newMetricsBuilder(memory.DefaultAllocator, now, md.DataPointCount())
	if err := mb.addMetrics(project, md); err != nil {
		mb.release()
		return nil, err
	}
	return mb.finish(), nil
}
