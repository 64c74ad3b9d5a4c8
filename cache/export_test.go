package cache

import "time"

// SetBodyIdle shortens how long a transfer may stall, for a test.
func SetBodyIdle(d time.Duration) (restore func()) {
	old := bodyIdle
	bodyIdle = d
	return func() { bodyIdle = old }
}
