package compactor

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/strata-db/strata/catalog"
)

// simResult is what a simulated sustained ingest leaves behind.
type simResult struct {
	writeAmp float64 // bytes written (flushes + merges) per byte flushed
	// files of the hour partition that ended most recently, at the end,
	// and the most files a query over the last hour would have opened.
	lastFullHour, maxLastHour int
	worst                     string // the files of the last hour when they were most
	medianLastHour            int    // over the second half of the run
}

// simulate runs the merge policy (plan and the job's rounds, as of each
// pass) over a steady flush of bytesPerSec every second for d, merges
// taking no time: the policy's steady state, without the machine.
func simulate(o Options, bytesPerSec int64, d time.Duration) simResult {
	return simulateLate(o, bytesPerSec, d, 0)
}

// simulateLate is simulate with every flush holding data lag old (a
// pipeline catching up): the data lands in partitions that have ended.
func simulateLate(o Options, bytesPerSec int64, d, lag time.Duration) simResult {
	o.setDefaults()
	start := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var files []catalog.File
	var flushed, written int64
	n := 0
	res := simResult{}
	var opens []int
	for now := start; now.Before(start.Add(d)); now = now.Add(time.Second) {
		n++
		at := now.Add(-lag)
		files = append(files, catalog.File{Key: fmt.Sprint(n), Partition: at.Format("date=2006-01-02/hour=15"),
			MinTime: at, MaxTime: at.Add(time.Second - time.Microsecond), Bytes: bytesPerSec, CreatedAt: now})
		flushed += bytesPerSec
		written += bytesPerSec
		open := 0
		kinds := map[string]int{}
		for _, f := range files {
			if f.MaxTime.After(now.Add(-lag - time.Hour)) {
				open++
				k := "final"
				switch {
				case f.Level == 0:
					k = "l0"
				case o.tiny(f.Bytes):
					k = "tiny"
				case o.small(f.Bytes):
					k = "small"
				}
				kinds[f.Partition[len(f.Partition)-2:]+"/"+k]++
			}
		}
		if now.Sub(start) > d/2 {
			opens = append(opens, open)
		}
		if open > res.maxLastHour {
			res.maxLastHour = open
			res.worst = fmt.Sprint(now.Format("15:04:05"), kinds)
		}
		if now.Sub(start)%o.Interval != 0 {
			continue
		}
		parts := map[string][]catalog.File{}
		for _, f := range files {
			parts[f.Partition] = append(parts[f.Partition], f)
		}
		files = files[:0]
		for _, fs := range parts {
			for round := 0; round < maxRounds; round++ {
				pick := plan(fs, now, time.Time{}, o)
				if pick == nil {
					break
				}
				out := catalog.File{Key: fmt.Sprint("m", n, round), Partition: fs[0].Partition, Level: 1, MinTime: pick[0].MinTime, CreatedAt: now}
				in := map[string]bool{}
				for _, p := range pick {
					in[p.Key] = true
					out.Bytes += p.Bytes
					if p.MaxTime.After(out.MaxTime) {
						out.MaxTime = p.MaxTime
					}
				}
				written += out.Bytes
				kept := []catalog.File{out}
				for _, f := range fs {
					if !in[f.Key] {
						kept = append(kept, f)
					}
				}
				fs = kept
			}
			files = append(files, fs...)
		}
	}
	byPart := map[string]int{}
	for _, f := range files {
		byPart[f.Partition]++
	}
	var parts []string
	for p := range byPart {
		parts = append(parts, p)
	}
	sort.Strings(parts)
	res.lastFullHour = byPart[parts[len(parts)-2]]
	res.writeAmp = float64(written) / float64(flushed)
	sort.Ints(opens)
	res.medianLastHour = opens[len(opens)/2]
	return res
}

// The merge policy on its defaults under steady ingest: the sustained run
// of bench/RESULTS.md (10k realistic spans/s, 0.87 MB/s of level-0 files,
// one flush a second) and a tenth of it, four hours each. An hour ends as
// files of the target size (3.1 GB → 12); each row is written about three
// times; a query over the last hour opens mostly level-0 files and the
// small merges of the current hour. (The policy before this one: 30 files
// an hour, a median of 77 files for the last hour at the same write
// amplification.) Merges take no time here, so this is the policy's
// floor; the sustained run measures the real thing.
func TestSimulate_SteadyIngest(t *testing.T) {
	for _, c := range []struct {
		bytesPerSec            int64
		maxWA                  float64
		maxFullHour, maxMedian int
	}{
		{870_000, 3.0, 13, 40},
		{87_000, 5.0, 3, 30},
	} {
		r := simulate(Options{}, c.bytesPerSec, 4*time.Hour)
		t.Logf("%d B/s: write amplification %.2f, the last full hour in %d files, a last-hour query opens %d (median), %d at most (%s)",
			c.bytesPerSec, r.writeAmp, r.lastFullHour, r.medianLastHour, r.maxLastHour, r.worst)
		if r.writeAmp > c.maxWA || r.lastFullHour > c.maxFullHour || r.medianLastHour > c.maxMedian {
			t.Errorf("%d B/s: want write amplification ≤ %.1f, ≤ %d files for a full hour, a median ≤ %d for the last hour",
				c.bytesPerSec, c.maxWA, c.maxFullHour, c.maxMedian)
		}
	}
}

// Data that arrives late keeps landing in hours that have ended: it is
// merged like a current hour's, not folded into one small file at every
// pass (that made write amplification 28 at 87 kB/s 45 minutes late).
func TestSimulate_LateData(t *testing.T) {
	for _, c := range []struct {
		bytesPerSec int64
		lag         time.Duration
		maxWA       float64
	}{
		{870_000, 45 * time.Minute, 3.0},
		{87_000, 15 * time.Minute, 5.0},
		{87_000, 45 * time.Minute, 5.0},
		{8_700, 45 * time.Minute, 9.0},
	} {
		r := simulateLate(Options{}, c.bytesPerSec, 4*time.Hour, c.lag)
		t.Logf("%d B/s, %v late: write amplification %.2f, the last full hour in %d files", c.bytesPerSec, c.lag, r.writeAmp, r.lastFullHour)
		if r.writeAmp > c.maxWA {
			t.Errorf("%d B/s, %v late: write amplification %.2f, want ≤ %.1f", c.bytesPerSec, c.lag, r.writeAmp, c.maxWA)
		}
	}
}

// idealMerges models the best a policy can do with one flush a second:
// every sizes[0] seconds each hour partition's level-0 files become one
// level-1 file; the level-i files of a partition become one level-i+1
// file once they hold sizes[i] seconds of data, or their hour has ended.
// Each byte is written len(sizes)+1 times (the flush and one merge per
// level). Sizes count in seconds of data, so the answer does not depend on
// the rate. It returns the median number of files a last-hour query opens
// over hours 2 to 5.
func idealMerges(sizes ...int) int {
	type file struct{ part, max, secs, level int }
	var files []file
	var opens []int
	for now := 0; now < 5*3600; now++ {
		files = append(files, file{part: now / 3600, max: now, secs: 1})
		if (now+1)%sizes[0] == 0 || (now+1)%3600 == 0 {
			for level := range sizes {
				held := map[int]file{} // by partition: the merge of its files of this level
				for _, f := range files {
					if f.level == level {
						m := held[f.part]
						m.part, m.level, m.secs, m.max = f.part, level+1, m.secs+f.secs, max(m.max, f.max)
						held[f.part] = m
					}
				}
				kept := files[:0:0]
				for _, f := range files {
					m, ok := held[f.part]
					due := ok && (level == 0 || m.secs >= sizes[level] || (f.part+1)*3600 <= now+1)
					if f.level != level || !due {
						kept = append(kept, f)
					}
				}
				for part, m := range held {
					if level == 0 || m.secs >= sizes[level] || (part+1)*3600 <= now+1 {
						kept = append(kept, m)
					}
				}
				files = kept
			}
		}
		if now >= 2*3600 {
			open := 0
			for _, f := range files {
				if f.max > now-3600 {
					open++
				}
			}
			opens = append(opens, open)
		}
	}
	sort.Ints(opens)
	return opens[len(opens)/2]
}

// With one flush a second and write amplification 3 (two merges per
// byte), the best policy of the idealised family above leaves a last-hour
// query a median of ~30 files, not issue 7's 10: level-0 files waiting (k)
// and middle files waiting (final/k) trade against each other, and the
// hour's finished data needs 3600/final files. A third merge per byte
// (write amplification 4) only brings it to ~17. The shipped policy,
// simulated on its defaults, stays within 30 % of the two-merge floor.
func TestSimulate_TwoRewriteFloor(t *testing.T) {
	best, bestK, bestFinal := 1<<30, 0, 0
	for _, k := range []int{5, 10, 15, 20, 30, 45, 60} {
		for _, final := range []int{120, 180, 300, 450, 600, 900} {
			if m := idealMerges(k, final); m < best {
				best, bestK, bestFinal = m, k, final
			}
		}
	}
	three := 1 << 30
	for _, k := range []int{5, 10, 15, 20} {
		for _, mid := range []int{60, 120, 180, 300} {
			for _, final := range []int{600, 900, 1200, 1800} {
				three = min(three, idealMerges(k, mid, final))
			}
		}
	}
	r := simulate(Options{}, 870_000, 4*time.Hour)
	t.Logf("ideal, two merges a byte: middle files every %d s, final files of %d s of data: a last-hour query opens %d files (median); "+
		"three merges a byte: %d; the shipped policy %d at write amplification %.2f", bestK, bestFinal, best, three, r.medianLastHour, r.writeAmp)
	if float64(r.medianLastHour) > 1.3*float64(best) {
		t.Errorf("the shipped policy opens a median of %d files, over 1.3× the two-rewrite floor of %d", r.medianLastHour, best)
	}
}
