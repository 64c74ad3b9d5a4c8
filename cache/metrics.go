package cache

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Metrics are a cache's Prometheus metrics. One set serves a store, the
// node around it and the clients reading through it; each set carries a
// store label, so a process with two stores (strata serve's node, and
// copies of objects other nodes own) reports them apart.
type Metrics struct {
	hits, misses, evictions prometheus.Counter
	filled, served          prometheus.Counter
	fallbacks, transient    prometheus.Counter
	used, limit             prometheus.Gauge
	fills                   prometheus.Histogram
}

// NewMetrics makes a set of unregistered metrics for a cache node's store
// (store="node").
func NewMetrics() *Metrics { return newMetrics("node") }

// NewCopyMetrics makes a set of unregistered metrics for a query node's
// copies of objects other nodes own, and its reads (store="copies").
func NewCopyMetrics() *Metrics { return newMetrics("copies") }

func newMetrics(store string) *Metrics {
	labels := prometheus.Labels{"store": store}
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_cache_" + name, Help: help, ConstLabels: labels})
	}
	return &Metrics{
		hits:      counter("hits_total", "Object reads answered from local SSD."),
		misses:    counter("misses_total", "Object reads that had to fill from the object store or the owning cache node."),
		evictions: counter("evictions_total", "Objects evicted to stay under the size limit."),
		filled:    counter("filled_bytes_total", "Bytes written into the cache by fills."),
		served:    counter("served_bytes_total", "Bytes sent to clients by the cache node's HTTP server."),
		fallbacks: counter("fallbacks_total", "Reads that went to the object store because the owning cache node failed."),
		transient: counter("transient_copies_total", "Objects copied for one query only, because the cache had no room (raise --cache-size)."),
		used: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_cache_used_bytes", ConstLabels: labels,
			Help: "Bytes of cached objects plus those reserved by fills in progress."}),
		limit: prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_cache_limit_bytes", ConstLabels: labels,
			Help: "Bytes the cache may hold: its configured size, or less for a while after its disk filled up below it."}),
		fills: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_cache_fill_seconds", ConstLabels: labels,
			Help: "Time to fill one object on a miss.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}),
	}
}

// Collectors returns the metrics to register.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{m.hits, m.misses, m.evictions, m.filled, m.served, m.fallbacks, m.transient, m.used, m.limit, m.fills}
}

// Hits, Misses and Fallbacks read the counters, for tests and reports.
func (m *Metrics) Hits() float64      { return value(m.hits) }
func (m *Metrics) Misses() float64    { return value(m.misses) }
func (m *Metrics) Fallbacks() float64 { return value(m.fallbacks) }

// Fills is how many fills completed.
func (m *Metrics) Fills() uint64 {
	var d dto.Metric
	m.fills.Write(&d)
	return d.GetHistogram().GetSampleCount()
}

func value(c prometheus.Counter) float64 {
	var d dto.Metric
	c.Write(&d)
	return d.GetCounter().GetValue()
}
