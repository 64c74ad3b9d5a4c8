package bench

import (
	"bufio"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine is where a measurement was taken: a capacity plan scales from it.
type Machine struct {
	Host        string    `json:"host"`
	Cores       int       `json:"cores"`
	MemoryBytes int64     `json:"memory_bytes"`
	OS          string    `json:"os"`
	Arch        string    `json:"arch"`
	MeasuredAt  time.Time `json:"measured_at"`
}

// ThisMachine describes the machine the benchmark runs on.
func ThisMachine() Machine {
	host, _ := os.Hostname()
	return Machine{Host: host, Cores: runtime.NumCPU(), MemoryBytes: memTotal(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		MeasuredAt: time.Now().UTC().Truncate(time.Second)}
}

// memTotal reads MemTotal from /proc/meminfo (0 where there is none).
func memTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// Bucket is one bar of a latency histogram: Count values ≤ UpToMs and
// above the previous bucket's bound.
type Bucket struct {
	UpToMs float64 `json:"up_to_ms"`
	Count  int64   `json:"count"`
}

// histogram buckets values (ms) on a log scale, four buckets per decade,
// dropping empty buckets at either end.
func histogram(v []float64) []Bucket {
	if len(v) == 0 {
		return nil
	}
	var bs []Bucket
	for e := -2.0; e <= 5; e += 0.25 {
		bs = append(bs, Bucket{UpToMs: math.Round(math.Pow(10, e)*1000) / 1000})
	}
	for _, x := range v {
		i := int(math.Ceil((math.Log10(math.Max(x, 0.01)) + 2) * 4))
		bs[min(max(i, 0), len(bs)-1)].Count++
	}
	lo, hi := 0, len(bs)
	for lo < hi && bs[lo].Count == 0 {
		lo++
	}
	for hi > lo && bs[hi-1].Count == 0 {
		hi--
	}
	return bs[lo:hi]
}
