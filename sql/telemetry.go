package sql

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/engine"
)

// queryMetrics are the executor's Prometheus metrics: what dashboards
// cost, and why queries fail.
type queryMetrics struct {
	queries  *prometheus.CounterVec
	seconds  prometheus.Histogram
	files    *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	rows     prometheus.Counter
	freshRow prometheus.Counter
}

func newQueryMetrics() *queryMetrics {
	return &queryMetrics{
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_query_queries_total",
			Help: "Queries over the data (HTTP and Postgres protocol) by outcome: ok; error (the query's own: syntax, unknown column, refused by the sandbox, over the memory limit); timeout; busy (no slot, queue full); canceled (the client went); failed (strata's fault)."},
			[]string{"outcome"}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_query_duration_seconds", Help: "Time from a query's arrival to its last row sent, for queries that started.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 17)}),
		files: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_query_files_total", Help: "Parquet files of the queries' tables, scanned or pruned by the catalog and trace filters."},
			[]string{"result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_query_scanned_bytes_total", Help: "Bytes of the Parquet files queries scanned, by where they came from (cache: local SSD or a cache node; object_store)."},
			[]string{"source"}),
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_result_rows_total", Help: "Rows returned by queries."}),
		freshRow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_query_fresh_rows_total", Help: "Rows queries read from ingest's buffers (acknowledged, not yet flushed)."}),
	}
}

// Collectors returns the metrics to register with a Prometheus registry.
func (e *Executor) Collectors() []prometheus.Collector {
	m := e.m
	out := []prometheus.Collector{m.queries, m.seconds, m.files, m.bytes, m.rows, m.freshRow}
	if l := e.Limiter; l != nil {
		out = append(out,
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strata_query_running", Help: "Queries holding a slot (running, or with a result not yet read to its end)."},
				func() float64 { return float64(len(l.slots)) }),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{
				Name: "strata_query_queued", Help: "Queries waiting for a slot."},
				func() float64 { return float64(len(l.queue)) }))
	}
	return out
}

// outcome classifies how a query ended.
func outcome(err error) string {
	var qe *engine.QueryError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, engine.ErrTimeout):
		return "timeout"
	case errors.Is(err, ErrBusy):
		return "busy"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.As(err, &qe), errors.Is(err, ErrTooLong), errors.Is(err, ErrNUL):
		return "error"
	}
	return "failed"
}

// ended counts a query that ended, with err its error (nil: its rows were
// all produced) and st what it read (nil: it never started).
func (m *queryMetrics) ended(start time.Time, err error, st *Stats) {
	if m == nil {
		return
	}
	m.queries.WithLabelValues(outcome(err)).Inc()
	if st == nil {
		return // it never started
	}
	m.seconds.Observe(time.Since(start).Seconds())
	m.files.WithLabelValues("scanned").Add(float64(st.FilesScanned))
	m.files.WithLabelValues("pruned").Add(float64(st.FilesPruned))
	m.bytes.WithLabelValues("cache").Add(float64(st.BytesFromCache))
	m.bytes.WithLabelValues("object_store").Add(float64(st.BytesFromObjectStore))
	m.rows.Add(float64(st.Rows))
	m.freshRow.Add(float64(st.FreshRows))
}
