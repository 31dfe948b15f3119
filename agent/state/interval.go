package state

import "time"

// Bounds on the heartbeat interval a registry hands out. A registry bug or a
// hostile answer must neither flood the registry (nor overflow
// time.Duration into a negative, busy-looping timer) nor silence an install
// for months. The agent and the installer both clamp with these, so what is
// stored in install.json is always within them.
const (
	MinHeartbeatInterval = 10 * time.Second
	MaxHeartbeatInterval = 7 * 24 * time.Hour
)

// ClampHeartbeatInterval turns a registry's heartbeat_interval_seconds into
// a duration within [MinHeartbeatInterval, MaxHeartbeatInterval]. ok is
// false when the value had to be changed. Zero or less means "not named"
// and should not be passed here.
func ClampHeartbeatInterval(seconds int) (iv time.Duration, ok bool) {
	switch {
	case seconds < int(MinHeartbeatInterval/time.Second):
		return MinHeartbeatInterval, false
	case seconds > int(MaxHeartbeatInterval/time.Second):
		// Compared in seconds, before multiplying: the product overflows.
		return MaxHeartbeatInterval, false
	}
	return time.Duration(seconds) * time.Second, true
}
