package compactor

import (
	"testing"
	"time"

	"github.com/strata-db/strata/catalog"
)

// The file at the retention boundary is rewritten a few times as the
// boundary moves through it, not at every pass: with a pass every 30 s
// over an hour file, at most 8 rewrites, together less than the file.
func TestPlan_RetentionRewritesTheBoundaryFileLogarithmically(t *testing.T) {
	var o Options
	o.setDefaults()
	hour := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	f := catalog.File{Key: "k", Partition: "date=2026-11-01/hour=10", Level: 1, MinTime: hour, MaxTime: hour.Add(time.Hour - time.Microsecond),
		Bytes: 100 << 20, CreatedAt: hour.Add(2 * time.Hour)}
	now := hour.Add(30 * 24 * time.Hour)
	rewrites, rewritten := 0, int64(0)
	for cutoff := hour; cutoff.Before(f.MaxTime); cutoff = cutoff.Add(30 * time.Second) {
		pick := plan([]catalog.File{f}, now, cutoff, o)
		if pick == nil {
			continue
		}
		if len(pick) != 1 || cutoff.Sub(f.MinTime) < f.MaxTime.Sub(f.MinTime)/2 {
			t.Fatalf("cutoff %v: picked %d files of a file from %v to %v", cutoff, len(pick), f.MinTime, f.MaxTime)
		}
		// The rewrite keeps the rows from the cutoff on, in proportion.
		rewrites++
		f.Bytes = int64(float64(f.Bytes) * float64(f.MaxTime.Sub(cutoff)) / float64(f.MaxTime.Sub(f.MinTime)))
		rewritten += f.Bytes
		f.MinTime = cutoff
	}
	if rewrites == 0 || rewrites > 8 || rewritten > 100<<20 {
		t.Fatalf("%d rewrites writing %d MiB for a 100 MiB file", rewrites, rewritten>>20)
	}
	t.Logf("%d rewrites, %d MiB written", rewrites, rewritten>>20)
}

func TestPlan_DayWaitsForItsHours(t *testing.T) {
	var o Options
	o.setDefaults()
	day := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	file := func(hour, level int, created time.Time) catalog.File {
		h := day.Add(time.Duration(hour) * time.Hour)
		return catalog.File{Key: h.String(), Partition: h.Format("date=2006-01-02/hour=15"), Level: level,
			MinTime: h, MaxTime: h.Add(time.Minute), Bytes: 1 << 20, CreatedAt: created}
	}
	late, written := day.Add(24*time.Hour+2*time.Hour), day.Add(5*time.Hour)
	// A lone level-0 file in a settled hour is first rewritten as level 1.
	hours := []catalog.File{file(1, 1, written), file(2, 0, written), file(3, 1, written)}
	if got := plan(hours[1:2], late, time.Time{}, o); len(got) != 1 {
		t.Fatalf("a lone level-0 file in a settled hour: picked %d", len(got))
	}
	if got := dayPlan(hours, late, time.Time{}, o); got != nil {
		t.Fatalf("picked %d files while an hour has a lone level-0 file", len(got))
	}
	hours[1].Level = 1
	if got := dayPlan(hours, late, time.Time{}, o); len(got) != 3 {
		t.Fatalf("cold day: picked %d of 3 settled hour files", len(got))
	}
	if got := dayPlan(hours, day.Add(24*time.Hour+time.Minute), time.Time{}, o); got != nil {
		t.Fatalf("a day that ended a minute ago is not cold: picked %d", len(got))
	}
	busy := append(hours, file(2, 0, written)) // hour 2 has a level-0 file: it merges first
	if got := dayPlan(busy, late, time.Time{}, o); got != nil {
		t.Fatalf("picked %d files while an hour has work", len(got))
	}
}

// An hour settles — its small files merged whatever their number — once it
// ended and received nothing for ColdAfter: data still arriving late is
// merged like a current hour's, not folded into one file at every pass.
func TestPlan_HourSettlesWhenQuiet(t *testing.T) {
	var o Options
	o.setDefaults()
	hour := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	file := func(key string, mb int64, created time.Time) catalog.File {
		return catalog.File{Key: key, Partition: "date=2026-11-01/hour=10", Level: 1, MinTime: hour,
			MaxTime: hour.Add(time.Hour - time.Microsecond), Bytes: mb << 20, CreatedAt: created}
	}
	now := hour.Add(3 * time.Hour)
	files := []catalog.File{file("a", 30, hour.Add(time.Hour)), file("b", 30, hour.Add(time.Hour)), file("late", 30, now.Add(-time.Minute))}
	if got := plan(files, now, time.Time{}, o); got != nil {
		t.Fatalf("a file arrived a minute ago, yet %d files were picked", len(got))
	}
	if got := plan(files, now.Add(o.ColdAfter), time.Time{}, o); len(got) != 3 {
		t.Fatalf("quiet for ColdAfter: picked %d of 3 small files", len(got))
	}
}

// A merge reads at most MaxInputs files, whatever their sizes: its memory
// grows with its inputs. A compactor catching up on hundreds of level-0
// files merges them over several rounds, the oldest data first.
func TestPlan_MergeReadsAtMostMaxInputs(t *testing.T) {
	o := Options{MaxInputs: 16}
	o.setDefaults()
	hour := time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)
	var files []catalog.File
	for i := range 300 {
		at := hour.Add(time.Duration(300-i) * time.Second) // listed newest first
		files = append(files, catalog.File{Key: at.String(), Partition: "date=2026-11-01/hour=10", MinTime: at, MaxTime: at.Add(time.Second),
			Bytes: 1 << 20, CreatedAt: at.Add(time.Second)})
	}
	for _, now := range []time.Time{hour.Add(10 * time.Minute), hour.Add(3 * time.Hour)} { // current hour, settled hour
		got := plan(files, now, time.Time{}, o)
		if len(got) != o.MaxInputs {
			t.Fatalf("at %v: picked %d of 300 level-0 files, want MaxInputs (%d)", now, len(got), o.MaxInputs)
		}
		for i := 1; i < len(got); i++ {
			if got[i].MinTime.Before(got[i-1].MinTime) || got[i].MinTime.After(hour.Add(time.Duration(o.MaxInputs)*time.Second)) {
				t.Fatalf("at %v: picked %v after %v; want the oldest %d files in time order", now, got[i].MinTime, got[i-1].MinTime, o.MaxInputs)
			}
		}
	}
}
