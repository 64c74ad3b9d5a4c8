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
	"github.com/strata-db/strata/engine/schema"
	"github.com/strata-db/strata/objstore"
)

// collect deletes the objects of files tombstoned more than Grace ago and
// then forgets them, and deletes data objects older than OrphanGrace that
// no catalog row refers to. A crash between the two steps only repeats
// the deletion next time.
func (c *Compactor) collect(ctx context.Context, p *Pass) error {
	now := c.opts.Now()
	for {
		tomb, err := c.cat.Tombstoned(ctx, now.Add(-c.opts.Grace), 1000)
		if err != nil || len(tomb) == 0 {
			return errors.Join(err, c.orphans(ctx, p))
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
		if len(tomb) < 1000 {
			return c.orphans(ctx, p)
		}
	}
}

// orphans deletes data objects older than OrphanGrace that the catalog
// does not know, live or tombstoned. The catalog is read before the
// bucket, so a file registered meanwhile has a young object.
func (c *Compactor) orphans(ctx context.Context, p *Pass) error {
	now := c.opts.Now()
	known := map[string]bool{}
	projects, err := c.cat.Projects(ctx)
	if err != nil {
		return err
	}
	for _, proj := range projects {
		for _, t := range schema.Tables() {
			files, err := c.cat.ListFiles(ctx, catalog.FileFilter{Project: proj.ID, Table: t.Name})
			if err != nil {
				return err
			}
			for _, f := range files {
				known[f.Key] = true
			}
		}
	}
	tomb, err := c.cat.Tombstoned(ctx, now.Add(100*365*24*time.Hour), 0)
	if err != nil {
		return err
	}
	for _, f := range tomb {
		known[f.Key] = true
	}
	for _, proj := range projects {
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
	return nil
}
