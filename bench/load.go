package bench

import (
	"context"
	"fmt"
	"time"
)

// LoadOptions describe a data set to generate for query benchmarks.
type LoadOptions struct {
	Workload Workload
	Spans    int64     // at least this many spans
	Start    time.Time // the first request's time
	End      time.Time // the last request's time
}

// Validate reports options that cannot make a data set.
func (o LoadOptions) Validate() error {
	if err := o.Workload.Validate(); err != nil {
		return err
	}
	if o.Spans < 1 {
		return fmt.Errorf("spans %d: want at least 1", o.Spans)
	}
	if !o.End.After(o.Start) {
		return fmt.Errorf("the data set's end (%s) must be after its start (%s)", o.End.Format(time.RFC3339), o.Start.Format(time.RFC3339))
	}
	return nil
}

// Generate makes the data set: requests stamped at times spread evenly from
// Start to End, in time order, handed to sink one at a time (bodies are
// reused after sink returns). It stops at the first error of sink or ctx.
// The same options make the same data, ids included.
func Generate(ctx context.Context, o LoadOptions, sink func(req Request, at time.Time) error) error {
	if err := o.Validate(); err != nil {
		return err
	}
	g, err := NewGenerator(o.Workload)
	if err != nil {
		return err
	}
	// Requests average avg spans; step spreads the expected count over the range.
	avg := 0
	for _, t := range g.traces {
		avg += t.spans
	}
	n := o.Spans/int64(max(1, avg/len(g.traces))) + 1
	step := o.End.Sub(o.Start) / time.Duration(n)
	f := g.NewFiller(0)
	var bufs [3][]byte
	var spans int64
	for at := o.Start; spans < o.Spans; at = at.Add(step) {
		if err := ctx.Err(); err != nil {
			return err
		}
		if at.After(o.End) {
			at = o.End
		}
		for _, r := range f.Next(&bufs, at) {
			if err := sink(r, at); err != nil {
				return err
			}
			if r.Signal == "traces" {
				spans += int64(r.Items)
			}
		}
	}
	return nil
}
