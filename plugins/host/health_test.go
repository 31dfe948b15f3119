package host

import (
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/internal/testplugin"
)

func TestHealthCheckSchedule(t *testing.T) {
	opts := Options{HealthInterval: 15 * time.Second}.withDefaults()
	c := checkSchedule{opts: &opts}
	ms := time.Millisecond
	steps := []struct {
		healthy bool
		want    time.Duration
	}{
		{true, 15 * time.Second},
		{false, 250 * ms}, {false, 500 * ms}, {false, time.Second}, {false, 2 * time.Second},
		{false, 4 * time.Second}, {false, 8 * time.Second}, {false, 15 * time.Second}, {false, 15 * time.Second},
		{true, 15 * time.Second},
		{false, 250 * ms}, // starts over after a healthy answer
		{false, 500 * ms},
	}
	for i, st := range steps {
		if got := c.next(st.healthy); got != st.want {
			t.Fatalf("step %d (healthy=%v): next check in %s, want %s", i, st.healthy, got, st.want)
		}
	}
	// A recheck delay above the interval never delays a check past it.
	opts = Options{HealthInterval: 200 * ms, HealthRecheck: time.Second}.withDefaults()
	c = checkSchedule{opts: &opts}
	if got := c.next(false); got != 200*ms {
		t.Fatalf("recheck above the interval: %s", got)
	}
}

// A plugin that answers "connecting" at its first health check is asked
// again soon, not after a whole HealthInterval.
func TestUnhealthyPluginRecheckedSoon(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	fx.setMode(testplugin.ModeHealthyAfter + " 1h") // connecting until the test says otherwise
	opts := fastOptions(t)
	opts.HealthInterval = time.Hour // only the recheck schedule can notice the change
	opts.HealthRecheck = 50 * time.Millisecond
	s := start(t, fx.entry, opts)
	st := waitFor(t, s, "connecting", 15*time.Second, func(st Status) bool { return st.State == StateUnhealthy })
	if !strings.Contains(st.Reason, "connecting: first connection") {
		t.Fatalf("unhealthy for another reason: %q", st.Reason)
	}
	fx.setMode(testplugin.ModeOK)
	waitFor(t, s, "healthy without waiting for the hourly check", 20*time.Second, healthy)
}

// The realistic case with the default schedule: an adapter whose first
// connection takes a moment is shown healthy moments later.
func TestConnectingPluginHealthyAfterStart(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	fx.setMode(testplugin.ModeHealthyAfter + " 300ms")
	opts := fastOptions(t)
	opts.HealthInterval = time.Hour
	opts.HealthRecheck = 0 // the default
	s := start(t, fx.entry, opts)
	waitFor(t, s, "healthy", 20*time.Second, healthy)
}

var healthCheckNumber = regexp.MustCompile(`\(health check (\d+)\)`)

// A plugin that stays unhealthy is asked less and less often, up to
// HealthInterval: the gaps between checks are at least the schedule's.
// (Load can only make them longer, so the assertion holds on a busy
// machine.)
func TestBrokenPluginNotHammered(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	fx.setMode(testplugin.ModeUnhealthy)
	opts := fastOptions(t)
	opts.HealthRecheck = 40 * time.Millisecond
	opts.HealthInterval = 320 * time.Millisecond
	type check struct {
		n  int
		at time.Time
	}
	var (
		mu     sync.Mutex
		checks []check
	)
	opts.OnChange = func(st Status) {
		if st.State != StateUnhealthy {
			return
		}
		m := healthCheckNumber.FindStringSubmatch(st.Reason)
		if m == nil {
			return
		}
		n, _ := strconv.Atoi(m[1])
		mu.Lock()
		checks = append(checks, check{n, time.Now()})
		mu.Unlock()
	}
	s := start(t, fx.entry, opts)
	const want = 8
	waitFor(t, s, "unhealthy checks", 20*time.Second, func(Status) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(checks) >= want
	})
	mu.Lock()
	got := append([]check(nil), checks[:want]...)
	mu.Unlock()
	ms := time.Millisecond
	minGaps := []time.Duration{40 * ms, 80 * ms, 160 * ms, 320 * ms, 320 * ms, 320 * ms, 320 * ms}
	for i := 1; i < want; i++ {
		if got[i].n != got[i-1].n+1 {
			t.Fatalf("health checks not counted one by one: %+v", got)
		}
		if gap := got[i].at.Sub(got[i-1].at); gap < minGaps[i-1] {
			t.Fatalf("check %d came %s after the previous one, want at least %s", got[i].n, gap, minGaps[i-1])
		}
	}
}
