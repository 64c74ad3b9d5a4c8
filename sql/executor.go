package sql

import (
	"context"
	"fmt"

	"github.com/strata-db/strata/catalog"
	"github.com/strata-db/strata/engine"
	"github.com/strata-db/strata/engine/schema"
)

// FileSource makes a catalog file available as a local path for DuckDB.
type FileSource interface {
	Path(ctx context.Context, key string, size int64) (string, error)
}

// Executor runs one query for one project: it picks the project's files
// from the catalog, makes them local, and runs the SQL over them.
type Executor struct {
	Catalog catalog.Store
	Engine  *engine.DB
	Files   FileSource
}

// Request is one query.
type Request struct {
	SQL string `json:"sql"`
}

// Run starts the query; the caller reads and releases the rows.
func (e *Executor) Run(ctx context.Context, project string, req Request) (*engine.Rows, error) {
	files := map[string][]string{}
	for _, t := range schema.Tables() {
		list, err := e.Catalog.ListFiles(ctx, catalog.FileFilter{Project: project, Table: t.Name})
		if err != nil {
			return nil, fmt.Errorf("list %s files: %w", t.Name, err)
		}
		for _, f := range list {
			p, err := e.Files.Path(ctx, f.Key, f.Bytes)
			if err != nil {
				return nil, err
			}
			files[t.Name] = append(files[t.Name], p)
		}
	}
	return e.Engine.Query(ctx, engine.Query{SQL: req.SQL, Files: files})
}
