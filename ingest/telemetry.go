package ingest

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ingestMetrics are the ingester's Prometheus metrics.
type ingestMetrics struct {
	rows         prometheus.Counter
	commits      prometheus.Counter
	walWritten   prometheus.Counter
	refused      prometheus.Counter
	fsync        prometheus.Histogram
	flushSeconds prometheus.Histogram
	flushedFiles prometheus.Counter
	flushedBytes prometheus.Counter
	flushErrors  prometheus.Counter
	walErrors    prometheus.Counter
	damagedRows  prometheus.Counter
	keptSegments prometheus.Counter
	requests     *prometheus.CounterVec
	rejected     *prometheus.CounterVec
}

func newIngestMetrics() *ingestMetrics {
	return &ingestMetrics{
		rows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_rows_total", Help: "Rows acknowledged (made durable in the WAL)."}),
		commits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_wal_commits_total", Help: "WAL group commits (one fsync each)."}),
		walWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_wal_written_bytes_total", Help: "Bytes appended to the WAL (Arrow IPC), for sizing scratch disks."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_refused_total", Help: "Appends refused because buffers were over their limits."}),
		fsync: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_ingest_wal_commit_seconds", Help: "Time to write and fsync one group commit.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
		flushSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "strata_ingest_flush_seconds", Help: "Time to flush one WAL segment to the object store and catalog.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
		flushedFiles: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_flushed_files_total", Help: "Parquet files flushed."}),
		flushedBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_flushed_bytes_total", Help: "Bytes of Parquet flushed."}),
		flushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_flush_errors_total", Help: "Failed upload or registration attempts (each is retried)."}),
		walErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_wal_write_errors_total", Help: "Group commits that failed (a full or lost scratch disk): their requests got 503 / UNAVAILABLE."}),
		damagedRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_wal_damaged_rows_total", Help: "Acknowledged rows lost because the disk damaged their WAL frames before their flush (a copy of the segment is kept beside it)."}),
		keptSegments: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "strata_ingest_flush_kept_segments_total", Help: "WAL segments a flush could not turn into Parquet: kept in the WAL, flushed again at the next start."}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ingest_requests_total", Help: "OTLP export requests by signal, protocol and result code."},
			[]string{"signal", "protocol", "code"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ingest_rejected_items_total", Help: "Spans, log records and data points refused one by one (out of the retention window, too far ahead, invalid ids or UTF-8…) while the rest of their export was stored: OTLP's partial success."},
			[]string{"signal"}),
	}
}

// Collectors returns the metrics to register with a Prometheus registry.
func (in *Ingester) Collectors() []prometheus.Collector {
	m := in.m
	return []prometheus.Collector{m.rows, m.commits, m.walWritten, m.refused, m.walErrors, m.fsync, m.flushSeconds,
		m.flushedFiles, m.flushedBytes, m.flushErrors, m.damagedRows, m.keptSegments, m.requests, m.rejected,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_ingest_inflight_bytes", Help: "Memory held by requests being read, decoded and converted, and by frames waiting for the WAL."},
			func() float64 { return float64(in.inflight.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_ingest_unflushed_rows", Help: "Rows acknowledged but not yet flushed to the catalog."},
			func() float64 { return float64(in.pending.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_ingest_wal_bytes", Help: "WAL bytes on scratch disk."},
			func() float64 { return float64(in.disk.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_ingest_unflushed_age_seconds",
			Help: "How long the oldest row acknowledged but not yet flushed has waited (0 when none): the flush lag."},
			in.unflushedAge),
	}
}

// unflushedAge is the age in seconds of the oldest row not yet flushed.
func (in *Ingester) unflushedAge() float64 {
	in.mu.Lock()
	defer in.mu.Unlock()
	var oldest time.Time
	for _, s := range append([]*segment{in.active}, in.sealed...) {
		if s == nil || s.rows == 0 {
			continue
		}
		first := s.first
		if first.IsZero() { // replayed at start: its rows are as old as the segment
			first = s.created
		}
		if oldest.IsZero() || first.Before(oldest) {
			oldest = first
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return in.opts.Now().Sub(oldest).Seconds()
}
