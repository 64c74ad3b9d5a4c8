package catalog

import (
	"context"
	"fmt"
	"net/url"
	"strings"
)

// Open opens the catalog named by a URL:
//
//	postgres://user:pass@host:port/db?sslmode=disable   PostgreSQL
//	sqlite:///absolute/path/catalog.db                   SQLite
//	/absolute/path/catalog.db                            SQLite
func Open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return OpenPostgres(ctx, rawURL, opts)
	case strings.HasPrefix(rawURL, "sqlite://"), strings.HasPrefix(rawURL, "/"):
		path, err := SQLitePath(rawURL)
		if err != nil {
			return nil, err
		}
		return OpenSQLite(ctx, path, opts)
	}
	return nil, fmt.Errorf("unsupported catalog url %q: want postgres://… or sqlite:///path", rawURL)
}

// SQLitePath is the file of a SQLite catalog URL (sqlite:///path.db, or
// the path alone), "" for another kind of catalog.
func SQLitePath(rawURL string) (string, error) {
	switch {
	case strings.HasPrefix(rawURL, "/"):
		return rawURL, nil
	case !strings.HasPrefix(rawURL, "sqlite://"):
		return "", nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("parse sqlite url: %w", err)
	}
	if u.Host != "" || u.Path == "" {
		return "", fmt.Errorf("sqlite url %q: want sqlite:///absolute/path.db", rawURL)
	}
	return u.Path, nil
}
