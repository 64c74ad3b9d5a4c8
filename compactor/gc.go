package compactor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/objstore"
)

// purgeBatch is how many tombstoned files collect deletes at a time.
const purgeBatch = 1000

// collect deletes the files tombstoned more than Grace ago, a batch at a
// time, then orphans. An object that cannot be deleted (a permission, an
// object lock) has its purge postponed by a grace period: it is tried
// again later, and does not hold up the others or the orphan scan.
func (c *Compactor) collect(ctx context.Context, p *pass) error {
	before := c.opts.Now().Add(-c.opts.Grace)
	var failed deleteErrors
	for {
		tomb, err := c.cat.Tombstoned(ctx, before, purgeBatch)
		if err != nil {
			oerr := c.orphans(ctx, p, &failed)
			return errors.Join(err, oerr, failed.err())
		}
		failedBefore := failed.n
		if err := c.purge(ctx, tomb, p, &failed); err != nil {
			return errors.Join(err, failed.err())
		}
		// A batch of nothing but failures ends the pass's purge: postponed
		// files are listed again at once if the catalog's clock is behind.
		if len(tomb) < purgeBatch || failed.n-failedBefore == len(tomb) {
			return errors.Join(c.orphans(ctx, p, &failed), failed.err())
		}
	}
}

// deleteErrors counts the objects a pass could not delete.
type deleteErrors struct {
	n     int
	first error
}

func (d *deleteErrors) add(key string, err error) {
	d.n++
	if d.first == nil {
		d.first = fmt.Errorf("delete %s: %w", key, err)
	}
}

func (d *deleteErrors) err() error {
	if d.n == 0 {
		return nil
	}
	return fmt.Errorf("%d objects could not be deleted (tried again later); the first: %w", d.n, d.first)
}

// purge deletes the objects of tombstoned files, then forgets the files
// whose objects are gone. A crash between the two steps only repeats the
// deletion next time.
func (c *Compactor) purge(ctx context.Context, tomb []catalog.File, p *pass, failed *deleteErrors) error {
	keys := make([]string, 0, len(tomb))
	var stuck []string
	deleted := 0 // not those another compactor deleted first (S3 does not tell)
	for _, f := range tomb {
		err := c.bucket.Delete(ctx, f.Key)
		if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed.add(f.Key, err)
			stuck = append(stuck, f.Key)
			continue
		}
		if err == nil {
			deleted++
		}
		keys = append(keys, f.Key)
	}
	if len(stuck) > 0 {
		if err := c.cat.PostponePurge(ctx, stuck...); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	if err := c.opts.Hook("deleted"); err != nil {
		return err
	}
	if err := c.cat.PurgeFiles(ctx, keys...); err != nil {
		return err
	}
	p.Deleted += deleted
	c.Metrics.deleted.Add(float64(deleted))
	return nil
}

// orphanScanDue reports whether OrphanGrace/4 has passed since the last
// orphan scan: listing the whole bucket is costly, and an orphan is only
// deleted once OrphanGrace old anyway.
func (c *Compactor) orphanScanDue() bool {
	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	return c.lastScan.IsZero() || c.objectNow().Sub(c.lastScan) >= c.opts.OrphanGrace/4
}

// orphans deletes data objects older than OrphanGrace that the catalog
// does not know, live or tombstoned, if the pass has a scan due, and the
// temporary files uploads killed midway left behind (fileblob writes
// KEY.HEX.tmp beside KEY). The keys the pass listed at its start only
// narrow the search: a pass can run for hours, and files other writers
// registered meanwhile (flushes of uploads up to 30 min old, other
// compactors' merges) are not among them, so each object about to be
// deleted is looked up in the catalog again first.
func (c *Compactor) orphans(ctx context.Context, p *pass, failed *deleteErrors) error {
	if p.live == nil {
		return nil
	}
	now := c.objectNow()
	known := p.live
	tomb, err := c.cat.Tombstoned(ctx, c.opts.Now().Add(100*365*24*time.Hour), 0)
	if err != nil {
		return err
	}
	for _, f := range tomb {
		known[f.Key] = true
	}
	for _, proj := range p.projects {
		it := c.bucket.List(&blob.ListOptions{Prefix: proj.ID + "/"})
		older := 0 // objects written before the catalog had the project
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if obj.IsDir || known[obj.Key] || now.Sub(obj.ModTime) < c.opts.OrphanGrace {
				continue
			}
			// An orphan is a flush or merge that crashed before it
			// registered its file, so it is younger than the project. An
			// older object is data this catalog never knew: the catalog
			// was replaced (QA: a deleted catalog.db was made anew, and
			// the scan then deleted every file of the old one).
			if obj.ModTime.Before(proj.CreatedAt) {
				older++
				continue
			}
			if !objstore.StrandedUpload(obj.Key) {
				if _, err := objstore.ParseDataKey(obj.Key); err != nil {
					continue // not ours to delete
				}
				if _, err := c.cat.File(ctx, obj.Key); !errors.Is(err, catalog.ErrNotFound) {
					if err != nil {
						return err
					}
					continue // registered since the pass listed its files
				}
			}
			err = c.bucket.Delete(ctx, obj.Key)
			if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				failed.add(obj.Key, err)
				continue
			}
			if err == nil { // not one another compactor deleted first
				p.Orphans++
				c.Metrics.orphans.Inc()
				slog.Info("deleted an object no catalog row refers to", "key", obj.Key, "written", obj.ModTime)
			}
		}
		if older > 0 {
			slog.Warn("objects older than their project in this catalog are kept, not deleted as orphans: was the catalog replaced?",
				"project", proj.ID, "created", proj.CreatedAt, "objects", older)
		}
	}
	c.scanMu.Lock()
	c.lastScan = now
	c.scanMu.Unlock()
	return nil
}
