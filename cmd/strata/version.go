package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/strata-db/strata/engine"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

func runVersion(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("version", "", "Prints the strata version, the commit it was built from, and the DuckDB it bundles.")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	commit := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "strata %s (commit %s, %s, DuckDB %s)\n", version, commit, runtime.Version(), engine.DuckDBVersion())
	return nil
}
