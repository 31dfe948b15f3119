package state

import (
	"math"
	"testing"
	"time"
)

func TestClampHeartbeatInterval(t *testing.T) {
	for _, c := range []struct {
		seconds int
		want    time.Duration
		ok      bool
	}{
		{1, MinHeartbeatInterval, false},
		{9, MinHeartbeatInterval, false},
		{10, 10 * time.Second, true},
		{3600, time.Hour, true},
		{7 * 24 * 3600, MaxHeartbeatInterval, true},
		{7*24*3600 + 1, MaxHeartbeatInterval, false},
		{int(math.MaxInt64 / int64(time.Second)), MaxHeartbeatInterval, false},
		{int(math.MaxInt64/int64(time.Second)) + 1, MaxHeartbeatInterval, false}, // overflows when multiplied
		{math.MaxInt, MaxHeartbeatInterval, false},
	} {
		got, ok := ClampHeartbeatInterval(c.seconds)
		if got != c.want || ok != c.ok {
			t.Errorf("ClampHeartbeatInterval(%d) = %v %v, want %v %v", c.seconds, got, ok, c.want, c.ok)
		}
	}
}
