// Command strata is the observability lakehouse: one binary whose
// subcommands run each role (or, with serve, all of them in one process).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type runner func(ctx context.Context, args []string, stdout io.Writer) error

type subcommand struct {
	name, summary string
	run           runner
}

var subcommands = []subcommand{
	{"serve", "run every role in one process (ingest, query, cache, compactor)", runServe},
	{"ingest", "run an ingest node: OTLP in, Parquet out", runIngest},
	{"query", "run a query node: SQL over HTTP and the Postgres wire protocol", runQuery},
	{"cache", "run a cache node: Parquet files on local SSD for query nodes", runCache},
	{"compactor", "run a compactor: merge small files, enforce retention", runCompactor},
	{"project", "list projects, set a project's retention", runProject},
	{"bench", "generate load, run the query suite, plan capacity", runBench},
	{"version", "print the version", runVersion},
}

const about = `strata stores OpenTelemetry traces, logs and metrics as Parquet on object
storage, tracks every file in a SQL catalog, and answers SQL over them through
DuckDB.`

func usage(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage: strata <command> [flags]\n\nCommands:\n", about)
	for _, c := range subcommands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun 'strata <command> --help' for the flags of a command.\n")
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the exit status: 0 on success,
// 1 when the command failed, 2 for a usage mistake.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	if name == "-h" || name == "--help" || name == "help" {
		if name == "help" && len(args) > 1 { // strata help serve
			return run(append(args[1:], "--help"), stdout, stderr)
		}
		usage(stdout)
		return 0
	}
	for _, c := range subcommands {
		if c.name != name {
			continue
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		// A second signal ends the process at once, as without strata's
		// handler: one that hangs in its shutdown can still be stopped.
		go func() { <-ctx.Done(); stop() }()
		err := c.run(ctx, args[1:], stdout)
		var ue usageError
		switch {
		case err == nil, errors.Is(err, errHelp):
			return 0
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "strata: %s\n", oneLine(err))
			return 2
		default:
			fmt.Fprintf(stderr, "strata %s: %s\n", name, oneLine(err))
			return 1
		}
	}
	fmt.Fprintf(stderr, "strata: unknown command %q (see 'strata --help')\n", name)
	return 2
}

// oneLine folds a multi-line error (DuckDB's, say) onto one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}
