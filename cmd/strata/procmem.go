package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
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
