package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/strata-db/strata/bench"
)

const benchPlanAbout = `Turns measurements taken on this hardware into a capacity plan: how many
ingest, query, cache and compactor nodes, how much scratch and cache SSD,
object storage bytes and requests, and catalog size, for the load you
expect. Every figure says which measurement and which arithmetic it comes
from, so a plan can be checked and re-made when the hardware changes.

The profile is the JSON reports of the other bench commands, run against
strata on the hardware to plan for:
  strata bench ingest --metrics-url http://127.0.0.1:8080/metrics --out ingest.json
  strata bench query --duckdb --data-dir DIR --out query.json

Query cost is scaled by how much data each suite query reads at the planned
rate (its time window × rows per hour) over what it read when measured;
trace lookups are taken as not growing with volume.

Examples:
  strata bench plan --profile ingest.json --profile query.json \
      --spans-per-second 1000000 --retention-days 30 --queries-per-second 20
  strata bench plan --profile ingest.json --spans-per-second 50000 --format json`

// profileList is a repeatable --profile flag.
type profileList []string

func (p *profileList) String() string { return strings.Join(*p, ",") }
func (p *profileList) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*p = append(*p, s)
		}
	}
	return nil
}

var _ flag.Value = (*profileList)(nil)

func runBenchPlan(ctx context.Context, args []string, stdout io.Writer) error {
	c := newCommand("bench plan", "", benchPlanAbout)
	c.restFromCommandLine()
	in := bench.DefaultPlanInputs()
	var profiles profileList
	var retention float64 = float64(in.Retention)
	var rf reportFlags
	cacheSSD, flushBytes := byteSize(in.CacheNodeSSD), byteSize(in.FlushBytes)
	c.fs.Var(&profiles, "profile", "report `file` of bench ingest or bench query (repeat, or separate with commas)")
	c.fs.Float64Var(&in.SpansPerSecond, "spans-per-second", 0, "average spans per second to plan for (`n`)")
	c.fs.Float64Var(&in.LogsPerSecond, "logs-per-second", 0, "average log records per second (`n`)")
	c.fs.Float64Var(&in.PointsPerSecond, "points-per-second", 0, "average metric data points per second (`n`)")
	c.fs.Float64Var(&in.AvgItemBytes, "avg-item-bytes", 0, "average OTLP protobuf `bytes` per span, log or point; 0: as in the profile")
	c.fs.Float64Var(&retention, "retention-days", retention, "days data is kept (`n`)")
	c.fs.Float64Var(&in.QueriesPerSecond, "queries-per-second", 0, "dashboard queries per second, the suite's mix (`n`)")
	c.fs.Float64Var(&in.PeakFactor, "peak-factor", in.PeakFactor, "peak rate over the average, for ingest and queries (`f`)")
	c.fs.Float64Var(&in.Utilization, "utilization", in.Utilization, "busy fraction each node is planned for (`f`); the rest is headroom")
	durationVar(c.fs, &in.Outage, "outage", in.Outage, "object store outage the WAL must absorb without refusing data (`duration`)")
	c.fs.Var(&cacheSSD, "cache-node-ssd", "SSD `size` of one cache node")
	durationVar(c.fs, &in.FlushInterval, "flush-interval", in.FlushInterval, "ingest flush interval the cluster will run with (`duration`)")
	c.fs.Var(&flushBytes, "flush-bytes", "WAL segment `size` that forces a flush, as the cluster will run with")
	rf.register(c)
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	if err := rf.check("plan"); err != nil {
		return err
	}
	in.Retention, in.CacheNodeSSD, in.FlushBytes = bench.Days(retention), int64(cacheSSD), int64(flushBytes)
	if len(profiles) == 0 {
		return usageError{fmt.Errorf("bench plan: no --profile: give the JSON reports of bench ingest (and bench query)")}
	}
	if err := in.Validate(); err != nil {
		return usageError{fmt.Errorf("bench plan: %w", err)}
	}
	prof, err := bench.LoadProfile(profiles)
	if err != nil {
		return fmt.Errorf("bench plan: %w", err)
	}
	plan, err := bench.MakePlan(prof, in)
	if err != nil {
		return fmt.Errorf("bench plan: %w", err)
	}
	return rf.write(stdout, plan)
}
