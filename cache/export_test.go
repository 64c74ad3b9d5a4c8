package cache

import "time"

// SetBodyIdle shortens how long a transfer may stall, for a test.
func SetBodyIdle(d time.Duration) (restore func()) {
	old := bodyIdle
	bodyIdle = d
	return func() { bodyIdle = old }
}

// SetProbeTimeout shortens how long a probed node has to answer, for a test.
func SetProbeTimeout(d time.Duration) (restore func()) {
	old := probeTimeout
	probeTimeout = d
	return func() { probeTimeout = old }
}

// SetAnswerWithin shortens how long a read waits for a node's answer
// before probing it, for a test.
func SetAnswerWithin(d time.Duration) (restore func()) {
	old := answerWithin
	answerWithin = d
	return func() { answerWithin = old }
}

// SetRegrowAfter sets how long a store shrunk by a full disk keeps its
// lower limit, for a test.
func SetRegrowAfter(d time.Duration) (restore func()) {
	old := regrowAfter
	regrowAfter = d
	return func() { regrowAfter = old }
}

// SetCatalogTimeout shortens a node's catalog lookups, for a test.
func SetCatalogTimeout(d time.Duration) (restore func()) {
	old := catalogTimeout
	catalogTimeout = d
	return func() { catalogTimeout = old }
}
