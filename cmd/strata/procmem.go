package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/engine"
)

// anonMemory is the process's anonymous resident memory (RssAnon). The
// strata binary maps about 100 MiB of DuckDB code and constants, which
// process_resident_memory_bytes counts although the kernel can drop those
// pages at any time; this gauge is what the process itself holds.
var anonMemory = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
	Name: "strata_process_anon_resident_bytes",
	Help: "Anonymous resident memory (RssAnon), without file-backed pages of the binary.",
}, func() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "RssAnon:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
})

// arrowPool reports engine.BufferPool, whose buffers live outside the Go
// heap (go_memstats does not see them): what requests, flushes and merges
// hold, and what waits for reuse. In use should fall to zero when nothing
// is being ingested or merged; if it does not, a record was not released.
var arrowPool = []prometheus.Collector{
	prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_arrow_pool_bytes", Help: arrowPoolHelp, ConstLabels: prometheus.Labels{"state": "in_use"},
	}, func() float64 { return float64(engine.BufferPool.InUse()) }),
	prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "strata_arrow_pool_bytes", Help: arrowPoolHelp, ConstLabels: prometheus.Labels{"state": "idle"},
	}, func() float64 { return float64(engine.BufferPool.Idle()) }),
}

const arrowPoolHelp = "Arrow buffers of converted requests, flushes and merges, held outside the Go heap: in use, or released and kept a few seconds for reuse (idle)."
