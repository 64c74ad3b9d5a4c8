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
	case strings.HasPrefix(rawURL, "sqlite://"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, fmt.Errorf("parse sqlite url: %w", err)
		}
		if u.Host != "" || u.Path == "" {
			return nil, fmt.Errorf("sqlite url %q: want sqlite:///absolute/path.db", rawURL)
		}
		return OpenSQLite(ctx, u.Path, opts)
	case strings.HasPrefix(rawURL, "/"):
		return OpenSQLite(ctx, rawURL, opts)
	}
	return nil, fmt.Errorf("unsupported catalog url %q: want postgres://… or sqlite:///path", rawURL)
}
