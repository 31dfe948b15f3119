package asterisk

import (
	"context"
	"fmt"
	"testing"
	"time"

	ariemu "github.com/switchboard-dev/switchboard/internal/emulator/ari"
	"github.com/switchboard-dev/switchboard/plugins"
)

// BenchmarkDescribe times one Describe against the emulator holding a
// mid-size PBX (200 endpoints, 20 live channels):
//
//	full: the snapshot is stale, so Describe reads info, endpoints and
//	      channels over ARI first (what a heartbeat costs after
//	      refresh_interval);
//	live: Describe answers from the event-maintained snapshot.
func BenchmarkDescribe(b *testing.B) {
	s := startEmulator(b, ariemu.Options{})
	for i := range 200 {
		tech := "PJSIP"
		if i%10 == 0 {
			tech = "IAX2"
		}
		if err := s.AddEndpoint(tech, fmt.Sprint(1000+i), []string{"online", "offline", "unknown"}[i%3]); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 20 {
		if _, err := s.AddChannel(ariemu.ChannelSpec{Endpoint: fmt.Sprintf("PJSIP/%d", 1001+i+i/9)}); err != nil {
			b.Fatal(err)
		}
	}
	a := startAdapter(b, with(fastSettings(s), SettingPingInterval, "10s", SettingRequestTimeout, "5s"))
	waitState(b, a, StateConnected)
	ctx := context.Background()
	check := func(f plugins.Facts, err error) {
		if err != nil || f.Seats[plugins.SeatPBXEndpoints] != 200 {
			b.Fatalf("describe: %v %v", f.Seats, err)
		}
	}
	b.Run("full", func(b *testing.B) {
		for b.Loop() {
			a.mu.Lock()
			a.snap.readAt = time.Time{}
			a.mu.Unlock()
			check(a.Describe(ctx))
		}
	})
	b.Run("live", func(b *testing.B) {
		for b.Loop() {
			check(a.Describe(ctx))
		}
	})
}
