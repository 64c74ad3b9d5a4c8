package compactor

import (
	"context"
	"errors"
	"fmt"
	"io"
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
// object lock) stays tombstoned and is tried again next pass; it does not
// hold up the others or the orphan scan.
func (c *Compactor) collect(ctx context.Context, p *pass) error {
	before := c.opts.Now().Add(-c.opts.Grace)
	var failed deleteErrors
	for {
		// The files that failed head every listing (oldest first): ask
		// for as many more.
		tomb, err := c.cat.Tombstoned(ctx, before, purgeBatch+len(failed.keys))
		if err != nil {
			oerr := c.orphans(ctx, p, &failed)
			return errors.Join(err, oerr, failed.err())
		}
		todo := tomb[:0:0]
		for _, f := range tomb {
			if !failed.keys[f.Key] {
				todo = append(todo, f)
			}
		}
		if err := c.purge(ctx, todo, p, &failed); err != nil {
			return errors.Join(err, failed.err())
		}
		if len(todo) < purgeBatch {
			return errors.Join(c.orphans(ctx, p, &failed), failed.err())
		}
	}
}

// deleteErrors gathers the objects a pass could not delete.
type deleteErrors struct {
	keys  map[string]bool
	first error
}

func (d *deleteErrors) add(key string, err error) {
	if d.keys == nil {
		d.keys = map[string]bool{}
	}
	d.keys[key] = true
	if d.first == nil {
		d.first = fmt.Errorf("delete %s: %w", key, err)
	}
}

func (d *deleteErrors) err() error {
	if len(d.keys) == 0 {
		return nil
	}
	return fmt.Errorf("%d objects could not be deleted (tried again next pass); the first: %w", len(d.keys), d.first)
}

// purge deletes the objects of tombstoned files, then forgets the files
// whose objects are gone. A crash between the two steps only repeats the
// deletion next time.
func (c *Compactor) purge(ctx context.Context, tomb []catalog.File, p *pass, failed *deleteErrors) error {
	keys := make([]string, 0, len(tomb))
	for _, f := range tomb {
		if err := c.bucket.Delete(ctx, f.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failed.add(f.Key, err)
			continue
		}
		keys = append(keys, f.Key)
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
	p.Deleted += len(keys)
	c.Metrics.deleted.Add(float64(len(keys)))
	return nil
}

// orphanScanDue reports whether OrphanGrace/4 has passed since the last
// orphan scan: listing the whole bucket is costly, and an orphan is only
// deleted once OrphanGrace old anyway.
func (c *Compactor) orphanScanDue() bool {
	c.scanMu.Lock()
	defer c.scanMu.Unlock()
	return c.lastScan.IsZero() || c.opts.Now().Sub(c.lastScan) >= c.opts.OrphanGrace/4
}

// orphans deletes data objects older than OrphanGrace that the catalog
// does not know, live or tombstoned, if the pass has a scan due. The pass
// listed the live files before the bucket and added its merges' outputs,
// so a file another writer registered since has a young object.
func (c *Compactor) orphans(ctx context.Context, p *pass, failed *deleteErrors) error {
	if p.live == nil {
		return nil
	}
	now := c.opts.Now()
	known := p.live
	tomb, err := c.cat.Tombstoned(ctx, now.Add(100*365*24*time.Hour), 0)
	if err != nil {
		return err
	}
	for _, f := range tomb {
		known[f.Key] = true
	}
	for _, proj := range p.projects {
		it := c.bucket.List(&blob.ListOptions{Prefix: proj.ID + "/"})
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
			if _, err := objstore.ParseDataKey(obj.Key); err != nil {
				continue // not ours to delete
			}
			if err := c.bucket.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				failed.add(obj.Key, err)
				continue
			}
			p.Orphans++
			c.Metrics.orphans.Inc()
		}
	}
	c.scanMu.Lock()
	c.lastScan = now
	c.scanMu.Unlock()
	return nil
}
