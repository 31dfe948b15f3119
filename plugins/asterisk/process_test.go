package asterisk

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	ariemu "github.com/switchboard-dev/switchboard/internal/emulator/ari"
	"github.com/switchboard-dev/switchboard/internal/testenv"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

// superviseAdapter runs the adapter as a real plugin process under the
// plugin host, the way the agent does: cmd/switchboard serves it as
// `switchboard plugin serve asterisk`.
func superviseAdapter(t *testing.T, settings map[string]string) *host.Supervisor {
	t.Helper()
	e, err := host.BuiltinEntry("asterisk", plugins.KindIntegration, testenv.BuildSwitchboard(t), settings)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := host.NewSupervisor(e, host.Options{Logger: testLogger(t), HealthInterval: 50 * time.Millisecond,
		HealthTimeout: 2 * time.Second, CallTimeout: 5 * time.Second, SocketDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	sup.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sup.Stop(ctx); err != nil {
			t.Errorf("stop plugin: %v", err)
		}
	})
	return sup
}

func waitStatus(t *testing.T, sup *host.Supervisor, state host.State, contains string) host.Status {
	t.Helper()
	var st host.Status
	deadline := time.Now().Add(30 * time.Second)
	for {
		st = sup.Status()
		if st.State == state && strings.Contains(st.Reason, contains) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin never reached %s (%q): %+v", state, contains, st)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func hostDescribe(t *testing.T, sup *host.Supervisor) plugins.Facts {
	t.Helper()
	in, err := sup.Integration()
	if err != nil {
		t.Fatal(err)
	}
	f, err := in.Describe(context.Background())
	if err != nil {
		t.Fatalf("describe through the host: %v", err)
	}
	return f
}

// TestPluginProcessSurvivesAsterisk runs the adapter as a plugin process
// against the emulator: facts and seats arrive through the host; unknown
// event types, a websocket drop and an Asterisk restart are all survived by
// the same process.
func TestPluginProcessSurvivesAsterisk(t *testing.T) {
	s := startEmulator(t, ariemu.Options{Version: "22.5.0"})
	id := seed(t, s)
	// The event filter is off so the unknown types do reach the plugin.
	sup := superviseAdapter(t, with(fastSettings(s), SettingEventFilter, "false", SettingDistribution, "VitalPBX 4"))
	st := waitStatus(t, sup, host.StateHealthy, "")
	pid := st.PID

	f := hostDescribe(t, sup)
	if f.Product != "asterisk" || f.Version != "22.5.0" || f.Distribution != "VitalPBX 4" ||
		f.Seats[plugins.SeatPBXEndpoints] != 4 || f.Details["channels_live"] != "1" {
		t.Fatalf("facts through the host: %+v", f)
	}

	if err := s.SendEvent("ChannelTransfer", map[string]any{
		"refer_to":    map[string]any{"requested_destination": map[string]any{"destination": "200"}},
		"referred_by": map[string]any{"source_channel": id},
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.SendEvent("ChannelToneDetected", map[string]any{"channel": id}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddChannel(ariemu.ChannelSpec{Endpoint: "PJSIP/102"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "live count after unknown events", func() bool {
		f := hostDescribe(t, sup)
		return f.Details["channels_live"] == "2" && f.Details["events_ignored"] == "2"
	})

	if s.DropWebsockets() != 1 {
		t.Fatal("no websocket to drop")
	}
	eventually(t, "reconnect after websocket drop", func() bool {
		return sup.Status().State == host.StateHealthy && len(s.Applications()) == 1
	})

	before := hostDescribe(t, sup).Details["startup_time"]
	time.Sleep(1100 * time.Millisecond) // startup_time has second resolution
	if err := s.Restart(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	eventually(t, "reconnect after Asterisk restart", func() bool {
		f := hostDescribe(t, sup)
		return sup.Status().State == host.StateHealthy && f.Details["startup_time"] != before && f.Details["channels_live"] == "0"
	})

	if st := sup.Status(); st.PID != pid || st.Restarts != 0 {
		t.Fatalf("the plugin process was replaced (pid %d → %d, %d restarts): %+v", pid, st.PID, st.Restarts, st)
	}
}

func TestPluginProcessWrongCredentials(t *testing.T) {
	s := startEmulator(t, ariemu.Options{})
	seed(t, s)
	sup := superviseAdapter(t, with(fastSettings(s), SettingUser, "switchboard", SettingPassword, "wrong"))
	st := waitStatus(t, sup, host.StateUnhealthy, "fix ari.conf")
	if !strings.Contains(st.Reason, "unauthorised") || !strings.Contains(st.Reason, "[switchboard]") {
		t.Fatalf("status reason %q", st.Reason)
	}
	in, err := sup.Integration()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := in.Describe(context.Background()); err == nil || !strings.Contains(err.Error(), "fix ari.conf") {
		t.Fatalf("describe: %v", err)
	}
}

func TestPluginProcessRejectsBadSettings(t *testing.T) {
	sup := superviseAdapter(t, map[string]string{SettingURL: "ftp://pbx/ari", SettingUser: "u", SettingPassword: "p"})
	st := waitStatus(t, sup, host.StateRefused, "ari_url")
	if !strings.Contains(st.Reason, "http or https") {
		t.Fatalf("refusal %q", st.Reason)
	}
}
