package compactor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/internal/flock"
	"github.com/strata-db/strata/objstore"
)

// job merges what plan picks in one partition, under a lease so no other
// compactor does the same work. did is false when there was nothing to do
// (another compactor got there first); the error is catalog.ErrLeaseHeld
// when another holds the partition (its work still waits: a dead holder
// keeps it until the lease expires); more says the job stopped at
// maxRounds with merges left to do.
func (c *Compactor) job(ctx context.Context, p *pass, proj catalog.Project, t *schema.Table, part string, cutoff time.Time) (did, more bool, err error) {
	name := "compact/" + proj.ID + "/" + t.Name + "/" + part
	if _, err := c.cat.AcquireLease(ctx, name, c.opts.Holder, c.opts.LeaseTTL); err != nil {
		return false, false, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	renewed := make(chan struct{})
	go func() {
		// Keep the lease while the merge runs; lose the job if it is lost.
		defer close(renewed)
		tick := time.NewTicker(c.opts.LeaseTTL / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if _, err := c.cat.RenewLease(ctx, name, c.opts.Holder, c.opts.LeaseTTL); errors.Is(err, catalog.ErrLeaseLost) {
					cancel(err)
					return
				}
			}
		}
	}()
	defer func() {
		cancel(nil)
		<-renewed
		c.cat.ReleaseLease(context.WithoutCancel(ctx), name, c.opts.Holder)
	}()

	// Merge until the partition has nothing left to do: after the level-0
	// files, the compacted files they became may fill a size tier. (One
	// merge per pass let level-0 merges, due at every pass under steady
	// ingest, starve the tier merges: compacted files piled up.)
	// Every round plans as of the job's start: level-0 files that come of
	// age meanwhile wait for the next pass, rather than making a small
	// merge of their own that costs another merge later.
	asOf := c.opts.Now()
	for range maxRounds {
		merged, err := c.mergeOnce(ctx, p, proj, t, name, part, cutoff, asOf)
		if err != nil || !merged {
			return did, false, err
		}
		did = true
	}
	// The last round allowed: is there more? (Unknown counts as more.)
	left, err := c.planNow(ctx, proj, t, part, cutoff, asOf)
	return did, left != nil || err != nil, nil
}

// maxRounds bounds the merges of one job, so one busy partition cannot
// hold a compactor forever.
const maxRounds = 8

// planNow reads the partition again (under the job's lease: another
// compactor may have merged it since the pass's listing, and so may an
// earlier round; a day partition's job reads the day's hour partitions
// too) and returns what its plan merges now, or nil.
func (c *Compactor) planNow(ctx context.Context, proj catalog.Project, t *schema.Table, part string, cutoff, asOf time.Time) ([]catalog.File, error) {
	start, span, day, err := partitionSpan(part)
	if err != nil {
		return nil, err
	}
	listed, err := c.cat.ListFiles(ctx, catalog.FileFilter{Project: proj.ID, Table: t.Name, Min: start, Max: start.Add(span - time.Microsecond)})
	if err != nil {
		return nil, err
	}
	var files []catalog.File
	for _, f := range c.readable(listed) {
		if (f.Partition == part || day && strings.HasPrefix(f.Partition, part+"/")) && !f.MaxTime.Before(cutoff) {
			files = append(files, f)
		}
	}
	if len(files) == 0 {
		return nil, nil
	}
	if day {
		return dayPlan(files, asOf, cutoff, c.opts), nil
	}
	return plan(files, asOf, cutoff, c.opts), nil
}

// mergeOnce does one merge of the partition's plan under the job's lease,
// reporting false when there was nothing to merge.
func (c *Compactor) mergeOnce(ctx context.Context, p *pass, proj catalog.Project, t *schema.Table, name, part string, cutoff, asOf time.Time) (bool, error) {
	inputs, err := c.planNow(ctx, proj, t, part, cutoff, asOf)
	if err != nil || inputs == nil {
		return false, err
	}
	start, _, day, err := partitionSpan(part)
	if err != nil {
		return false, err
	}
	if err := c.opts.Hook("start"); err != nil {
		return false, err
	}
	out, err := c.merge(ctx, proj, t, start, day, inputs, cutoff)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = cause
		}
		return false, err
	}
	if err := c.opts.Hook("uploaded"); err != nil {
		return false, err
	}
	if _, err := c.cat.RenewLease(ctx, name, c.opts.Holder, c.opts.LeaseTTL); err != nil {
		return false, fmt.Errorf("before the swap: %w (the upload is left for garbage collection)", err)
	}
	old := make([]string, len(inputs))
	for i, f := range inputs {
		old[i] = f.Key
	}
	if err := c.cat.ReplaceFiles(ctx, old, out); err != nil {
		if errors.Is(err, catalog.ErrConflict) {
			slog.Warn("compactor: inputs were replaced meanwhile; output left for garbage collection", "partition", part)
			return false, nil
		}
		return false, err
	}
	p.saw(out)
	if c.opts.OnMerged != nil && len(out) > 0 {
		go c.opts.OnMerged(out)
	}
	if err := c.opts.Hook("swapped"); err != nil {
		return true, err
	}
	for _, f := range inputs {
		lvl := strconv.Itoa(f.Level)
		c.Metrics.filesIn.WithLabelValues(lvl).Inc()
		c.Metrics.bytesIn.WithLabelValues(lvl).Add(float64(f.Bytes))
	}
	for _, f := range out {
		lvl := strconv.Itoa(f.Level)
		c.Metrics.filesOut.WithLabelValues(lvl).Inc()
		c.Metrics.bytesOut.WithLabelValues(lvl).Add(float64(f.Bytes))
	}
	slog.Debug("compacted", "project", proj.ID, "table", t.Name, "partition", part, "inputs", len(inputs), "outputs", len(out))
	return true, nil
}

// A merge works in a directory of its own under WorkDir, locked while it
// runs: a compactor starting up deletes those no live merge holds — what
// merges of a killed process left (up to twice the target size each).
const (
	mergeDirPrefix = "merge-"
	mergeDirLock   = ".lock"
)

// sweepWorkDir deletes the merge directories of dead merges.
func sweepWorkDir(workDir string) {
	dirs, _ := filepath.Glob(filepath.Join(workDir, mergeDirPrefix+"*"))
	for _, dir := range dirs {
		lock := filepath.Join(dir, mergeDirLock)
		if _, err := os.Stat(lock); err != nil {
			// No lock yet: a merge between making its directory and locking
			// it, unless that was long ago.
			if fi, err := os.Stat(dir); err != nil || time.Since(fi.ModTime()) < time.Hour {
				continue
			}
		}
		unlock, err := flock.TryLock(lock)
		if err != nil {
			continue // a live merge, or not ours to touch
		}
		err = os.RemoveAll(dir)
		unlock()
		if err != nil {
			slog.Warn("compactor: cannot delete what a killed merge left", "dir", dir, "err", err)
		} else {
			slog.Info("compactor: deleted what a killed merge left", "dir", dir)
		}
	}
}

// partitionSpan parses an hour partition (date=…/hour=…) or a day
// partition (date=…).
func partitionSpan(part string) (start time.Time, span time.Duration, day bool, err error) {
	if start, err = time.Parse("date=2006-01-02/hour=15", part); err == nil {
		return start, time.Hour, false, nil
	}
	if start, err = time.Parse("date=2006-01-02", part); err == nil {
		return start, 24 * time.Hour, true, nil
	}
	return time.Time{}, 0, false, fmt.Errorf("partition %q is neither an hour nor a day", part)
}

// merge writes the merged file of inputs and uploads it into the hour
// partition starting at start, or the day's if day; it returns the catalog
// rows to register (none if retention dropped every row).
func (c *Compactor) merge(ctx context.Context, proj catalog.Project, t *schema.Table, start time.Time, day bool, inputs []catalog.File, cutoff time.Time) ([]catalog.File, error) {
	dir, err := os.MkdirTemp(c.opts.WorkDir, mergeDirPrefix)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	unlock, err := flock.TryLock(filepath.Join(dir, mergeDirLock))
	if err != nil {
		return nil, err
	}
	defer unlock()
	paths := make([]string, len(inputs))
	keepFrom := time.Time{}
	level := 1
	var inBytes int64
	for i, f := range inputs {
		inBytes += f.Bytes
		if f.MinTime.Before(cutoff) {
			keepFrom = cutoff
		}
		level = max(level, f.Level)
		if p, ok := c.bucket.LocalPath(f.Key); ok {
			paths[i] = p
			continue
		}
		paths[i] = filepath.Join(dir, fmt.Sprintf("in-%d.parquet", i))
		if err := c.bucket.GetFile(ctx, f.Key, paths[i]); err != nil {
			if errors.Is(err, objstore.ErrNotExist) {
				c.markUnreadable(f, err)
			}
			return nil, err
		}
	}
	outPath := filepath.Join(dir, "out.parquet")
	w, err := os.Create(outPath)
	if err != nil {
		return nil, err
	}
	opts := c.opts.Parquet
	if !day && c.opts.small(inBytes) {
		// An output this small will be merged again: compress it fast. The
		// merge that makes it large, or the day file, compresses it hard.
		opts.TextZstdLevel = opts.ZstdLevel
	}
	info, err := engine.MergeParquet(ctx, w, t, paths, keepFrom, opts)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	var bad *engine.InputError
	if errors.As(err, &bad) {
		for i, p := range paths {
			if p == bad.Path {
				c.markUnreadable(inputs[i], err)
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if info.Rows == 0 {
		return nil, nil
	}
	st, err := os.Stat(outPath)
	if err != nil {
		return nil, err
	}
	key, part := objstore.DataKey(proj.ID, t.Name, start, level, objstore.NewID(c.opts.Now())), objstore.Partition(start)
	if day {
		level = max(level, dayLevel)
		key, part = objstore.DayKey(proj.ID, t.Name, start, level, objstore.NewID(c.opts.Now())), objstore.DayPartition(start)
	}
	if err := c.bucket.PutFile(ctx, key, outPath); err != nil {
		return nil, err
	}
	return []catalog.File{{Key: key, Project: proj.ID, Table: t.Name, Partition: part, Level: level,
		MinTime: info.MinTime, MaxTime: info.MaxTime, Rows: info.Rows, Bytes: st.Size(), TraceFilter: info.TraceFilter,
		SchemaVersion: info.SchemaVersion}}, nil
}
