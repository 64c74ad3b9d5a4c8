package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-db/strata/catalog"
)

const projectAbout = `Lists the projects of the catalog with their retention, or, with --id,
creates a project (if it does not exist) and sets its retention: how long
its data is kept. Ingest refuses rows older than that, queries stop seeing
them, and the compactor deletes them (within a minute of a change).

Examples:
  strata project
  strata project --id default --retention 7d
  strata project --id web --retention 90d --catalog-url postgres://…`

func runProject(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("project", "", projectAbout)
	var st storage
	st.register(c)
	c.restFromCommandLine()
	id := c.fs.String("id", "", "project `id` to create or change; without it the projects are listed")
	var keep retention
	c.fs.Var(&keep, "retention", "how long the project keeps data (`duration`: 30d, 12h, 90m; at least 1h)")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if keep != 0 && *id == "" {
		return usageError{errors.New("project: --retention needs --id (see 'strata project --help')")}
	}
	if *id != "" {
		if err := catalog.CheckProjectID(*id); err != nil {
			return usageError{fmt.Errorf("project: --id: %w", err)}
		}
	}
	if err := st.resolve(); err != nil {
		return err
	}
	// A listing reads a catalog, it does not make one (QA: a mistyped
	// --data-dir listed a fresh catalog's default project).
	if path, err := catalog.SQLitePath(st.catalogURL); err == nil && path != "" && *id == "" {
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return settingError{"data-dir", fmt.Errorf("no catalog at %s: nothing to list (a role's first start makes it; "+
				"is --data-dir or --catalog-url the one the nodes use?)", path)}
		}
	}
	cat, err := st.openCatalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	if *id != "" {
		if err := cat.CreateProject(ctx, catalog.Project{ID: *id, Retention: time.Duration(keep)}); err != nil {
			return err
		}
		if keep != 0 {
			if err := cat.SetRetention(ctx, *id, time.Duration(keep)); err != nil {
				return err
			}
		}
	}
	projects, err := cat.Projects(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tRETENTION\tCREATED")
	for _, p := range projects {
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.ID, retention(p.KeepFor()), p.CreatedAt.UTC().Format(time.RFC3339))
	}
	return w.Flush()
}

// retention is a duration flag that also takes days ("30d").
type retention time.Duration

// maxRetentionDays is a retention's limit: about 273 years, under what a
// time.Duration holds (292 years).
const maxRetentionDays = 100_000

func (r *retention) Set(s string) error {
	var d time.Duration
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || math.IsNaN(days) {
			return fmt.Errorf("%q is not a duration: want e.g. 30d, 12h or 90m", s)
		}
		if days > maxRetentionDays {
			return fmt.Errorf("%s is longer than strata keeps data: at most %dd", s, maxRetentionDays)
		}
		d = time.Duration(days * float64(24*time.Hour))
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return fmt.Errorf("%q is not a duration: want e.g. 30d, 12h or 90m", s)
		}
	}
	if d < time.Hour {
		return fmt.Errorf("%s is shorter than an hour, the compactor's partitions", s)
	}
	*r = retention(d)
	return nil
}

// String writes whole days as days.
func (r retention) String() string {
	d := time.Duration(r)
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	if d == 0 {
		return ""
	}
	return d.String()
}
