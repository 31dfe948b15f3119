package odoo_test

// Tests with real processes: the switchboard binary is built once (on
// first use) and the Odoo adapter runs inside it as `switchboard plugin
// serve odoo`, started by plugins/host exactly as the agent starts it. The
// last test runs the whole chain: emulated Odoo -> plugin -> agent ->
// registry, and reads the seats back from the registry's admin API.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	emu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
	"github.com/switchboard-dev/switchboard/internal/testenv"
	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/plugins/odoo"
	regclient "github.com/switchboard-dev/switchboard/registry/client"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m))
}

func startOdoo(t *testing.T, opts emu.Options) *emu.Server {
	t.Helper()
	s, err := emu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func supervise(t *testing.T, bin string, settings map[string]string) *host.Supervisor {
	t.Helper()
	e, err := host.BuiltinEntry(odoo.Name, plugins.KindIntegration, bin, settings)
	if err != nil {
		t.Fatal(err)
	}
	sup, err := host.NewSupervisor(e, host.Options{
		Logger:         hclog.New(&hclog.LoggerOptions{Name: "host", Level: hclog.Warn, Output: logWriter{t}}),
		CallTimeout:    10 * time.Second,
		StartTimeout:   20 * time.Second,
		HealthInterval: 100 * time.Millisecond,
		HealthTimeout:  5 * time.Second,
		BackoffInitial: 100 * time.Millisecond,
		BackoffMax:     time.Second,
		SocketDir:      t.TempDir(),
	})
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

func waitState(t *testing.T, sup *host.Supervisor, want host.State) host.Status {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := sup.Status()
		if st.State == want {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin never became %s: %s", want, st.Summary(time.Now()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPluginProcess runs the adapter as a real plugin process against
// Odoo 17 over XML-RPC and Odoo 19 without XML-RPC.
func TestPluginProcess(t *testing.T) {
	bin := testenv.BuildSwitchboard(t)
	for _, opts := range []emu.Options{{Version: 17, Edition: emu.Enterprise}, {Version: 19, DisableXMLRPC: true}} {
		t.Run(fmt.Sprintf("%d", opts.Version), func(t *testing.T) {
			s := startOdoo(t, opts)
			if _, err := s.AddUser(emu.User{Login: "alice"}); err != nil {
				t.Fatal(err)
			}
			sup := supervise(t, bin, map[string]string{
				odoo.SettingURL: s.URL(), odoo.SettingDB: "demo", odoo.SettingUser: "admin", odoo.SettingAPIKey: "admin"})
			st := waitState(t, sup, host.StateHealthy)
			if st.Plugin == nil || st.Plugin.State != odoo.StateConnected {
				t.Fatalf("status %+v", st)
			}
			in, err := sup.Integration()
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			f, err := in.Describe(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if f.Product != "odoo" || f.Version != fmt.Sprintf("%d.0", opts.Version) || f.Seats[plugins.SeatOdooUsers] != 2 {
				t.Fatalf("facts %+v", f)
			}
			if opts.DisableXMLRPC && f.Details["api"] != "json2" {
				t.Fatalf("api %q with XML-RPC disabled", f.Details["api"])
			}
			if opts.Edition == emu.Enterprise && f.Distribution != "enterprise" {
				t.Fatalf("edition %q", f.Distribution)
			}
			code, _ := partnercode.New()
			r, err := in.ApplyPartnerLink(ctx, code.String(), "partner")
			if err != nil || !r.Applied {
				t.Fatalf("apply: %+v %v", r, err)
			}
			if got, _ := s.ConfigParam(odoo.ParamPartnerCode); got != code.String() {
				t.Fatalf("code in Odoo %q", got)
			}
		})
	}
}

func TestPluginProcessWrongKey(t *testing.T) {
	bin := testenv.BuildSwitchboard(t)
	s := startOdoo(t, emu.Options{Version: 18})
	sup := supervise(t, bin, map[string]string{
		odoo.SettingURL: s.URL(), odoo.SettingDB: "demo", odoo.SettingUser: "admin", odoo.SettingAPIKey: "not-the-key"})
	st := waitState(t, sup, host.StateUnhealthy)
	want := "unauthorized: wrong login or API key (check the Odoo user and key in the agent config)"
	if st.Reason != want || strings.Contains(st.Reason, "not-the-key") {
		t.Fatalf("reason %q, want %q", st.Reason, want)
	}
	in, _ := sup.Integration()
	if _, err := in.Describe(context.Background()); err == nil || !strings.Contains(err.Error(), "wrong login or API key") {
		t.Fatalf("describe: %v", err)
	}
	// Bad settings are refused by the plugin and so by the host.
	bad := supervise(t, bin, map[string]string{odoo.SettingURL: s.URL(), "ur1": "x"})
	st = waitState(t, bad, host.StateRefused)
	if !strings.Contains(st.Reason, "unknown odoo setting(s) ur1") {
		t.Fatalf("refusal %q", st.Reason)
	}
}

// TestSeatsReachRegistry: Odoo's active users arrive in a heartbeat at the
// real registry, through the agent and the plugin process.
func TestSeatsReachRegistry(t *testing.T) {
	bin := testenv.BuildSwitchboard(t)
	s := startOdoo(t, emu.Options{Version: 18})
	for _, u := range []emu.User{{Login: "alice"}, {Login: "bob"}, {Login: "portal", Share: true}} {
		if _, err := s.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	reg := testenv.StartRegistry(t, bin, filepath.Join(root, "registry"), "127.0.0.1:0")

	state := filepath.Join(root, "agent")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	e, err := host.BuiltinEntry(odoo.Name, plugins.KindIntegration, bin, map[string]string{
		odoo.SettingURL: s.URL(), odoo.SettingDB: "demo", odoo.SettingUser: "admin", odoo.SettingAPIKey: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	m := host.NewManifest()
	if err := m.Put(e); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(filepath.Join(state, host.ManifestFileName)); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(root, "agent.toml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `state_dir = %q
[registry]
url = %q
[licence]
public_keys = [%q]
[heartbeat]
interval = "100ms"
jitter = 0
[sender]
backoff_min = "20ms"
backoff_max = "200ms"
`, state, reg.URL, reg.PubKey), 0o600); err != nil {
		t.Fatal(err)
	}
	testenv.StartProcess(t, "agent", exec.Command(bin, "agent", "run", "--config", cfg))

	local := localapi.NewClient(filepath.Join(state, "agent.sock"))
	var installID string
	waitFor(t, "activation", func() bool {
		st, err := local.Status(context.Background())
		installID = st.Install.InstallID
		return err == nil && st.Install.Activated && installID != ""
	})
	admin, err := regclient.New(reg.URL, reg.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	seats := func(want int64) {
		t.Helper()
		waitFor(t, fmt.Sprintf("odoo_users = %d at the registry", want), func() bool {
			d, err := admin.GetInstall(context.Background(), installID)
			return err == nil && d.Seats[plugins.SeatOdooUsers] == want
		})
	}
	seats(3) // admin, alice, bob; the portal user is not a seat
	if _, err := s.AddUser(emu.User{Login: "carol"}); err != nil {
		t.Fatal(err)
	}
	seats(4)
	d, err := admin.GetInstall(context.Background(), installID)
	if err != nil {
		t.Fatal(err)
	}
	healthy := false
	for _, p := range d.Plugins {
		healthy = healthy || (p.Name == odoo.Name && p.Healthy)
	}
	if !healthy {
		t.Fatalf("odoo plugin health at the registry: %+v", d.Plugins)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, testenv.Until(what, cond))
}
