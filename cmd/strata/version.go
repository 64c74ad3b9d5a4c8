package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strata-db/strata/engine"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func runVersion(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("version", "", "Prints the strata version, the commit it was built from, and the DuckDB it bundles.")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "strata %s (commit %s, %s, DuckDB %s)\n", version, buildCommit(), runtime.Version(), engine.DuckDBVersion())
	return nil
}

// buildCommit is the commit the binary was built from, if Go recorded it.
func buildCommit() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}

// buildInfo is strata_build_info, 1, labelled with what `strata version`
// prints, so dashboards can tell which build each node runs.
func buildInfo() prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "strata_build_info",
		Help: "The build this node runs: 1, labelled with its version, commit, Go and DuckDB versions.",
		ConstLabels: prometheus.Labels{"version": version, "commit": buildCommit(), "goversion": runtime.Version(),
			"duckdb": engine.DuckDBVersion()}})
	g.Set(1)
	return g
}
