package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/objstore"
)

// Options tune a Compactor. The zero value gives the defaults.
type Options struct {
	// Holder names this compactor in leases (default host-pid).
	Holder string
	// Interval is the pause between passes (default 20 s).
	Interval time.Duration
	// TargetBytes is the size merged files grow to (default 256 MiB).
	TargetBytes int64
	// MinAge: level-0 files younger than this wait for the next pass
	// (default none). Level-0 files are most of what a query over the
	// last hour opens, and a pass every Interval already merges ~20 of
	// them: a 5 s wait left 5 more for a query to open at the same write
	// amplification (TestSimulate_TwoRewriteFloor).
	MinAge time.Duration
	// MaxInputs caps the files one merge reads at once (default 32). A
	// merge holds a page and a batch of every column of every input, so
	// its memory grows with this, not with the inputs' sizes: 5–15 MB an
	// input on realistic spans. A partition with more files to merge
	// (a compactor catching up) merges them over several rounds.
	MaxInputs int
	// Fanout: tiny compacted files of about the same size are merged
	// when there are this many (default 4).
	Fanout int
	// ColdAfter: once an hour partition ended this long ago and received
	// nothing for as long, all its small files are merged whatever their
	// number; a day's, once the day ended this long ago (default 5 min: a
	// finished hour should not keep its small files while the next hour
	// is queried).
	ColdAfter time.Duration
	// LeaseTTL bounds how long a dead compactor holds a partition (default
	// 2 min); a live one renews its lease before the swap.
	LeaseTTL time.Duration
	// Grace is how long tombstoned objects stay readable before deletion:
	// longer than the longest query (default 10 min).
	Grace time.Duration
	// OrphanGrace is the age at which an object no catalog row refers to
	// (a crashed flush or merge) is deleted (default 6 h): far longer than
	// a flush can take to register its upload.
	OrphanGrace time.Duration
	// WorkDir holds downloaded inputs and outputs being written.
	WorkDir string
	// Parquet tunes the output files (default: engine's, with text
	// columns at zstd level 6 — merges run in the background, and their
	// files are the ones kept).
	Parquet engine.ParquetOptions
	// OnMerged, if set, is called (in its own goroutine) with the files of
	// each merge once the catalog has them, e.g. to warm the cache tier so
	// the first query after a merge does not fetch them cold.
	OnMerged func(files []catalog.File)
	// Now is the clock (default: the catalog's, Store.Now).
	Now func() time.Time
	// Hooks, for tests: called at each step of a job; an error aborts it
	// as a crash there would.
	Hook func(step string) error
}

func (o *Options) setDefaults() {
	if o.Holder == "" {
		// Random too: containers each run as PID 1 under one host name,
		// and a lease's holder may take it again.
		host, _ := os.Hostname()
		o.Holder = fmt.Sprintf("%s-%d-%08x", host, os.Getpid(), rand.Uint32())
	}
	if o.Interval <= 0 {
		o.Interval = 20 * time.Second
	}
	if o.TargetBytes <= 0 {
		o.TargetBytes = 256 << 20
	}
	if o.MinAge < 0 {
		o.MinAge = 0
	}
	if o.MaxInputs < 2 {
		o.MaxInputs = 32
	}
	if o.Fanout < 2 {
		o.Fanout = 4
	}
	if o.ColdAfter <= 0 {
		o.ColdAfter = 5 * time.Minute
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 2 * time.Minute
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Minute
	}
	if o.OrphanGrace <= 0 {
		o.OrphanGrace = 6 * time.Hour
	}
	if o.WorkDir == "" {
		o.WorkDir = os.TempDir()
	}
	if o.Parquet.TextZstdLevel == 0 {
		o.Parquet.TextZstdLevel = 6
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Hook == nil {
		o.Hook = func(string) error { return nil }
	}
}

// Compactor merges, expires and collects the files of every project.
type Compactor struct {
	cat     catalog.Store
	bucket  *objstore.Bucket
	opts    Options
	Metrics *Metrics
	// objectNow is the clock objects' ages are measured on (orphans).
	objectNow func() time.Time

	scanMu   sync.Mutex
	lastScan time.Time // when the orphan scan last listed the bucket

	// unreadable holds the keys of files a merge could not read (their
	// object is missing, not Parquet, or not of the table's schema), with
	// when. Plans leave them out for unreadableFor, so one bad file does
	// not fail its partition's merges at every pass; they stay in the
	// catalog, for retention to expire or an operator to look at (or
	// restore: they are tried again).
	unreadableMu sync.Mutex
	unreadable   map[string]time.Time
}

// unreadableFor is how long a file a merge could not read is left out.
const unreadableFor = time.Hour

// New returns a compactor; call Run or RunOnce.
func New(cat catalog.Store, bucket *objstore.Bucket, opts Options) (*Compactor, error) {
	// Objects' ages come from the object store's clock, closer to the
	// host's than to the database's; the times the catalog stamps
	// (created, tombstoned) from the catalog's.
	objectNow := opts.Now
	if opts.Now == nil {
		opts.Now, objectNow = cat.Now, time.Now
	}
	opts.setDefaults()
	if err := os.MkdirAll(opts.WorkDir, 0o755); err != nil {
		return nil, fmt.Errorf("compactor work dir: %w", err)
	}
	sweepWorkDir(opts.WorkDir)
	return &Compactor{cat: cat, bucket: bucket, opts: opts, objectNow: objectNow, Metrics: newMetrics(), unreadable: map[string]time.Time{}}, nil
}

// markUnreadable leaves the file out of plans for unreadableFor.
func (c *Compactor) markUnreadable(f catalog.File, err error) {
	c.unreadableMu.Lock()
	defer c.unreadableMu.Unlock()
	c.unreadable[f.Key] = c.opts.Now()
	c.Metrics.unreadable.Set(float64(len(c.unreadable)))
	slog.Error("compactor: a file cannot be read; its partition is merged without it for an hour", "key", f.Key, "err", err)
}

// readable drops the files marked unreadable, and forgets marks made
// unreadableFor ago. It drops files of a newer table schema version than
// this build's too: they are a newer compactor's to merge (during a rolling
// upgrade), not unreadable.
func (c *Compactor) readable(files []catalog.File) []catalog.File {
	c.unreadableMu.Lock()
	defer c.unreadableMu.Unlock()
	if len(c.unreadable) == 0 && !slices.ContainsFunc(files, newerSchema) {
		return files
	}
	now := c.opts.Now()
	for key, at := range c.unreadable {
		if now.Sub(at) >= unreadableFor {
			delete(c.unreadable, key)
		}
	}
	c.Metrics.unreadable.Set(float64(len(c.unreadable)))
	out := files[:0:0]
	for _, f := range files {
		if _, bad := c.unreadable[f.Key]; !bad && !newerSchema(f) {
			out = append(out, f)
		}
	}
	return out
}

func newerSchema(f catalog.File) bool { return f.SchemaVersion > schema.Version }

// Run makes a pass every Interval until ctx ends.
func (c *Compactor) Run(ctx context.Context) {
	t := time.NewTicker(c.opts.Interval)
	defer t.Stop()
	for {
		if _, err := c.RunOnce(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("compactor pass failed; retrying next pass", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Pass counts what one RunOnce did.
type Pass struct {
	Jobs, Skipped, Expired, Deleted, Orphans int
	Backlog                                  int // partitions that still want work
}

// pass is one RunOnce under way.
type pass struct {
	Pass
	projects []catalog.Project
	// live holds the keys of the files the pass listed live or registered,
	// for the orphan scan. It is nil when no scan is due, or once a listing
	// failed: the scan would delete the objects of the files it missed.
	live map[string]bool
}

// saw adds files to the keys the orphan scan must keep.
func (p *pass) saw(files []catalog.File) {
	if p.live == nil {
		return
	}
	for _, f := range files {
		p.live[f.Key] = true
	}
}

// RunOnce expires, merges and collects once over every project.
func (c *Compactor) RunOnce(ctx context.Context) (Pass, error) {
	projects, err := c.cat.Projects(ctx)
	if err != nil {
		return Pass{}, err
	}
	p := &pass{projects: projects}
	if c.orphanScanDue() {
		p.live = map[string]bool{}
	}
	var errs []error
	var oldestL0 time.Time
	for _, proj := range projects {
		for _, t := range schema.Tables() {
			files, err := c.cat.ListFiles(ctx, catalog.FileFilter{Project: proj.ID, Table: t.Name})
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", proj.ID, t.Name, err))
				p.live = nil // no orphan scan on a partial listing
				continue
			}
			p.saw(files)
			o, err := c.table(ctx, proj, t, files, p)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%s: %w", proj.ID, t.Name, err))
			}
			if !o.IsZero() && (oldestL0.IsZero() || o.Before(oldestL0)) {
				oldestL0 = o
			}
		}
	}
	lag := 0.0
	if !oldestL0.IsZero() {
		lag = c.opts.Now().Sub(oldestL0).Seconds()
	}
	c.Metrics.lag.Set(lag)
	c.Metrics.backlog.Set(float64(p.Backlog))
	if err := c.collect(ctx, p); err != nil {
		errs = append(errs, err)
	}
	return p.Pass, errors.Join(errs...)
}

// table expires the live files of one project's table, then runs the
// merge jobs its partitions want. It returns the creation time of the
// oldest level-0 file in a partition left with work to do (zero if none),
// for the lag metric, and counts those partitions in p.Backlog. Level-0
// files the plan holds on purpose (one alone in the current hour) are
// not lag.
func (c *Compactor) table(ctx context.Context, proj catalog.Project, t *schema.Table, files []catalog.File, p *pass) (time.Time, error) {
	now := c.opts.Now()
	cutoff := now.Add(-proj.KeepFor())
	// Files wholly older than retention go at once; no rewrite needed.
	var expired []string
	byPart := map[string][]catalog.File{}
	oldestIn := map[string]time.Time{} // oldest level-0 file, by hour and by day partition
	var oldestL0 time.Time
	var kept []catalog.File
	for _, f := range files {
		if f.MaxTime.Before(cutoff) {
			expired = append(expired, f.Key)
		} else {
			kept = append(kept, f)
		}
	}
	for _, f := range c.readable(kept) {
		byPart[f.Partition] = append(byPart[f.Partition], f)
		if f.Level == 0 {
			dayPart, _, _ := strings.Cut(f.Partition, "/")
			for _, part := range []string{f.Partition, dayPart} {
				if o, ok := oldestIn[part]; !ok || f.CreatedAt.Before(o) {
					oldestIn[part] = f.CreatedAt
				}
			}
		}
	}
	// left notes a partition still wanting work after this pass.
	left := func(part string) {
		p.Backlog++
		if o, ok := oldestIn[part]; ok && (oldestL0.IsZero() || o.Before(oldestL0)) {
			oldestL0 = o
		}
	}
	if len(expired) > 0 {
		n, err := c.cat.TombstoneFiles(ctx, expired...)
		if err != nil {
			return oldestL0, err
		}
		p.Expired += int(n) // not those another compactor expired first
		c.Metrics.expired.Add(float64(n))
	}
	// Hour partitions first; a day is merged once none of its hours has
	// work left (dayPlan checks), so a day job waits for a later pass.
	parts := make([]string, 0, len(byPart))
	days := map[string][]catalog.File{}
	for part, fs := range byPart {
		dayPart, _, _ := strings.Cut(part, "/")
		days[dayPart] = append(days[dayPart], fs...)
		if part != dayPart && plan(fs, now, cutoff, c.opts) != nil {
			parts = append(parts, part)
		}
	}
	for dayPart, fs := range days {
		if dayPlan(fs, now, cutoff, c.opts) != nil {
			parts = append(parts, dayPart)
		}
	}
	// Newest partitions first: their level-0 merges are quick and they are
	// what dashboards query; the long merge that settles a finished hour
	// must not keep the current hour's level-0 files waiting.
	sort.Sort(sort.Reverse(sort.StringSlice(parts)))
	var errs []error
	for i, part := range parts {
		if ctx.Err() != nil {
			for _, part := range parts[i:] {
				left(part)
			}
			return oldestL0, ctx.Err()
		}
		did, more, err := c.job(ctx, p, proj, t, part, cutoff)
		held := errors.Is(err, catalog.ErrLeaseHeld)
		switch {
		case err != nil && !held:
			errs = append(errs, fmt.Errorf("partition %s: %w", part, err))
			c.Metrics.jobs.WithLabelValues("failed").Inc()
			left(part)
		case did:
			p.Jobs++
			c.Metrics.jobs.WithLabelValues("done").Inc()
			if more {
				left(part)
			}
		default: // another compactor holds it, or did it first
			p.Skipped++
			c.Metrics.jobs.WithLabelValues("skipped").Inc()
			if held {
				left(part) // its work still waits (a dead holder's until the lease expires)
			}
		}
	}
	return oldestL0, errors.Join(errs...)
}

// small says whether a compacted file of this size should be merged
// again: under half the target size. Small files merge once together they reach the target
// (or their partition is settled), so every row is written about three
// times — flushed, merged with its pass's level-0 files, merged into a
// file of the target size — and a busy hour ends as files of the target
// size. (Merging groups of four by size instead made 110 MB files, 30 of
// them in an hour of 10k spans/s; see sim_test.go.)
func (o Options) small(bytes int64) bool { return bytes < o.TargetBytes/2 }

// tiny says whether a small file of this size also merges by size tiers:
// a partition with little data would otherwise keep every pass's merge
// until it is settled, one file per pass.
func (o Options) tiny(bytes int64) bool { return bytes < o.TargetBytes/16 }

// dayLevel is the level of day-level files.
const dayLevel = 2

// rewriteExpired says whether a file must be rewritten for retention now:
// when at least half of its time span is older than the cutoff. A file
// with less expired is rewritten at its next merge, or dropped whole once
// all of it is older; so the file at the retention boundary is rewritten
// a few times as the boundary moves through it (each time at half the
// size), not at every pass.
func rewriteExpired(f catalog.File, cutoff time.Time) bool {
	return f.MinTime.Before(cutoff) && cutoff.Sub(f.MinTime) >= f.MaxTime.Sub(f.MinTime)/2
}

// plan picks the files of one hour partition to merge now, or nil:
//   - files at least half older than the retention cutoff (rewritten
//     without the expired rows; every merge drops them too);
//   - everything small, once the partition is settled (a lone level-0
//     file too);
//   - level-0 files at least MinAge old, when there are two or more;
//   - small compacted files, once together they reach the target size;
//   - tiny compacted files in the same size tier, when a tier has Fanout.
//
// Inputs are capped near TargetBytes, so outputs stay near it.
func plan(files []catalog.File, now, cutoff time.Time, o Options) []catalog.File {
	var pick []catalog.File
	var l0, small, tiny, expired []catalog.File
	var smallBytes int64
	var newest time.Time // the last file to arrive or be merged
	for _, f := range files {
		if f.CreatedAt.After(newest) {
			newest = f.CreatedAt
		}
		if rewriteExpired(f, cutoff) {
			expired = append(expired, f)
		}
		switch {
		case f.Level == 0 && now.Sub(f.CreatedAt) >= o.MinAge:
			l0 = append(l0, f)
		case f.Level > 0 && o.small(f.Bytes):
			small = append(small, f)
			smallBytes += f.Bytes
			if o.tiny(f.Bytes) {
				tiny = append(tiny, f)
			}
		}
	}
	// A partition settles once its hour ended ColdAfter ago and nothing
	// arrived in it for as long. Data that keeps arriving late (a pipeline
	// catching up) is merged like a current hour's, rather than folded into
	// the same small file at every pass.
	hourEnd := files[0].MinTime.Truncate(time.Hour).Add(time.Hour)
	settled := now.Sub(hourEnd) >= o.ColdAfter && now.Sub(newest) >= o.ColdAfter
	// A late level-0 file alone among large files is rewritten alone as
	// level 1: it would otherwise stay level 0 (and hold the lag metric).
	lone := settled && len(l0) == 1 && len(small) == 0
	switch {
	case len(expired) > 0:
		pick = expired
	case settled && len(l0)+len(small) >= 2:
		pick = append(append(pick, l0...), small...)
	case lone:
		pick = l0
	case len(l0) >= 2:
		pick = l0
	case smallBytes >= o.TargetBytes:
		pick = small
	default:
		tiers := map[int][]catalog.File{}
		for _, f := range tiny {
			tier := int(math.Log(float64(max(f.Bytes, 1<<20))/(1<<20)) / math.Log(float64(o.Fanout)))
			tiers[tier] = append(tiers[tier], f)
		}
		for tier := 0; tier < 64; tier++ {
			if len(tiers[tier]) >= o.Fanout {
				pick = tiers[tier]
				break
			}
		}
	}
	return capInputs(pick, o, len(expired) > 0 || lone)
}

// dayPlan picks the files of one day to merge into a day-level file, or
// nil: once the day ended ColdAfter ago and none of its hour partitions
// has work left (they merge first), its small files (what the hours were
// merged into, or a lone level-0 file, and earlier day files) when there
// are two or more, and files due for a retention rewrite. A small project
// then keeps one file a day instead of 24.
func dayPlan(files []catalog.File, now, cutoff time.Time, o Options) []catalog.File {
	dayPart, _, _ := strings.Cut(files[0].Partition, "/")
	dayStart, _, _, err := partitionSpan(dayPart)
	if err != nil || now.Sub(dayStart.Add(24*time.Hour)) < o.ColdAfter {
		return nil
	}
	hours := map[string][]catalog.File{}
	var late, days, expired []catalog.File
	var newest time.Time
	for _, f := range files {
		if f.CreatedAt.After(newest) {
			newest = f.CreatedAt
		}
		if strings.Contains(f.Partition, "/") {
			hours[f.Partition] = append(hours[f.Partition], f)
		}
		switch {
		case f.Partition == dayPart && rewriteExpired(f, cutoff):
			expired = append(expired, f)
		case !o.small(f.Bytes):
		case f.Partition == dayPart:
			days = append(days, f)
		default:
			late = append(late, f)
		}
	}
	if len(expired) > 0 {
		return capInputs(expired, o, true)
	}
	// Like an hour, a day settles once nothing arrived in it for ColdAfter.
	if now.Sub(newest) < o.ColdAfter {
		return nil
	}
	for _, fs := range hours {
		if plan(fs, now, cutoff, o) != nil {
			return nil
		}
	}
	return capInputs(joinDays(late, days), o, false)
}

// joinDays adds to the hour files of a settled day (what its hours were
// merged into, or data that came late) the day files that are at most
// four times as large as what they would be merged with, smallest first:
// a few late rows must not rewrite a large day file (at every pass they
// arrived, once), yet the files a day keeps stay few — each a quarter of
// the next at most.
func joinDays(late, days []catalog.File) []catalog.File {
	sort.Slice(days, func(i, j int) bool { return days[i].Bytes < days[j].Bytes })
	var sum int64
	for _, f := range late {
		sum += f.Bytes
	}
	pick := late
	for _, d := range days {
		if len(pick) > 0 && d.Bytes > 4*sum {
			break
		}
		pick = append(pick, d)
		sum += d.Bytes
	}
	return pick
}

// capInputs orders picked files oldest data first and caps them near the
// target size (but at least two) and at MaxInputs; fewer than two is
// nothing to merge, unless one file must be rewritten alone.
func capInputs(pick []catalog.File, o Options, rewrite bool) []catalog.File {
	sort.Slice(pick, func(i, j int) bool { return pick[i].MinTime.Before(pick[j].MinTime) })
	var total int64
	for i, f := range pick {
		total += f.Bytes
		if total >= o.TargetBytes && i >= 1 || i+1 == o.MaxInputs {
			pick = pick[:i+1]
			break
		}
	}
	if len(pick) == 0 || len(pick) < 2 && !rewrite {
		return nil
	}
	return pick
}
