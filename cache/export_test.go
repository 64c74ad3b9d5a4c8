package cache

import "time"

// SetBodyIdle shortens how long a transfer may stall, for a test.
func SetBodyIdle(d time.Duration) (restore func()) { return setFor(&bodyIdle, d) }

// SetProbeTimeout shortens how long a probed node has to answer, for a test.
func SetProbeTimeout(d time.Duration) (restore func()) { return setFor(&probeTimeout, d) }

// SetAnswerWithin shortens how long a read waits for a node's answer
// before probing it, for a test.
func SetAnswerWithin(d time.Duration) (restore func()) { return setFor(&answerWithin, d) }

// SetRegrowAfter sets how long a store shrunk by a full disk keeps its
// lower limit, for a test.
func SetRegrowAfter(d time.Duration) (restore func()) { return setFor(&regrowAfter, d) }

// SetCatalogTimeout shortens a node's catalog lookups, for a test.
func SetCatalogTimeout(d time.Duration) (restore func()) { return setFor(&catalogTimeout, d) }

// setFor sets *v to d until restore is called.
func setFor(v *time.Duration, d time.Duration) (restore func()) {
	old := *v
	*v = d
	return func() { *v = old }
}
