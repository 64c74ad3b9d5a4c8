package compactor

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are the compactor's Prometheus metrics.
type Metrics struct {
	filesIn, bytesIn, filesOut, bytesOut *prometheus.CounterVec
	jobs                                 *prometheus.CounterVec
	expired, deleted, orphans            prometheus.Counter
	backlog, lag, unreadable             prometheus.Gauge
}

func newMetrics() *Metrics {
	byLevel := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_compactor_" + name, Help: help}, []string{"level"})
	}
	return &Metrics{
		filesIn:  byLevel("files_in_total", "Files merged away, by their level."),
		bytesIn:  byLevel("bytes_in_total", "Bytes of files merged away, by their level."),
		filesOut: byLevel("files_out_total", "Files written by merges, by their level."),
		bytesOut: byLevel("bytes_out_total", "Bytes of files written by merges, by their level."),
		jobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_compactor_jobs_total",
			Help: "Partition merge jobs by outcome: done, skipped (another compactor had it), failed."}, []string{"outcome"}),
		expired: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_compactor_expired_files_total",
			Help: "Files tombstoned because all their rows passed retention."}),
		deleted: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_compactor_deleted_objects_total",
			Help: "Objects of tombstoned files deleted after the grace period."}),
		orphans: prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_compactor_orphans_deleted_total",
			Help: "Objects no catalog row referred to, deleted after the orphan grace period."}),
		backlog: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_compactor_backlog_partitions",
			Help: "Partitions that wanted a merge at the end of the last pass."}),
		lag: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_compactor_lag_seconds",
			Help: "Age of the oldest level-0 file in a partition the last pass left with merges to do (0: caught up; a level-0 file kept alone on purpose does not count)."}),
		unreadable: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_compactor_unreadable_files",
			Help: "Files a merge could not read (object missing, not Parquet, wrong schema) in the last hour, left out of merges meanwhile; see the log."}),
	}
}

// Collectors returns the metrics to register, with write amplification:
// bytes written by ingest and merges over bytes written by ingest.
func (m *Metrics) Collectors() []prometheus.Collector {
	wa := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "strata_compactor_write_amplification",
		Help: "(level-0 bytes merged + bytes written by merges) / level-0 bytes merged, since start."},
		func() float64 { return m.WriteAmplification() })
	return []prometheus.Collector{m.filesIn, m.bytesIn, m.filesOut, m.bytesOut, m.jobs, m.expired, m.deleted, m.orphans, m.backlog, m.lag, m.unreadable, wa}
}

// WriteAmplification is what the write_amplification gauge reports (0
// before any level-0 file was merged).
func (m *Metrics) WriteAmplification() float64 {
	l0 := value(m.bytesIn.WithLabelValues("0"))
	if l0 == 0 {
		return 0
	}
	var out float64
	for _, lvl := range []string{"1", "2", "3"} {
		out += value(m.bytesOut.WithLabelValues(lvl))
	}
	return (l0 + out) / l0
}

func value(c prometheus.Counter) float64 {
	var m dto.Metric
	c.Write(&m)
	return m.GetCounter().GetValue()
}

// FilesIn is how many files of a level this compactor merged away.
func (m *Metrics) FilesIn(level string) float64 { return value(m.filesIn.WithLabelValues(level)) }
