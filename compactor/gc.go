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
// time, then orphans.
func (c *Compactor) collect(ctx context.Context, p *pass) error {
	before := c.opts.Now().Add(-c.opts.Grace)
	for {
		tomb, err := c.cat.Tombstoned(ctx, before, purgeBatch)
		if err != nil {
			return errors.Join(err, c.orphans(ctx, p))
		}
		if err := c.purge(ctx, tomb, p); err != nil {
			return err
		}
		if len(tomb) < purgeBatch {
			return c.orphans(ctx, p)
		}
	}
}

// purge deletes the objects of tombstoned files, then forgets the files.
// A crash between the two steps only repeats the deletion next time.
func (c *Compactor) purge(ctx context.Context, tomb []catalog.File, p *pass) error {
	if len(tomb) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tomb))
	for _, f := range tomb {
		if err := c.bucket.Delete(ctx, f.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return fmt.Errorf("delete %s: %w", f.Key, err)
		}
		keys = append(keys, f.Key)
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
func (c *Compactor) orphans(ctx context.Context, p *pass) error {
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
				return fmt.Errorf("delete orphan %s: %w", obj.Key, err)
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
