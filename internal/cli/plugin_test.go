package cli

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry/api"
)

func TestPluginServeUnknownName(t *testing.T) {
	code, _, stderr := run(t, "plugin", "serve", "no-such-plugin")
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d (stderr %q)", code, ExitUsage, stderr)
	}
	if !strings.Contains(stderr, `unknown built-in plugin "no-such-plugin"`) {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestPluginList(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(t.TempDir(), host.ManifestFileName)
	good := filepath.Join(dir, "switchboard-plugin-good")
	if err := os.WriteFile(good, []byte("good"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "switchboard-plugin-stray"), []byte("stray"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _ := host.FileSHA256(good)
	m := host.NewManifest()
	exe, _ := os.Executable()
	b, err := host.BuiltinEntry("asterisk", plugins.KindIntegration, exe, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []host.Entry{
		b,
		{Name: "good", Kind: plugins.KindIntegration, Path: good, SHA256: sum, Version: "2.1.0"},
		{Name: "tampered", Kind: plugins.KindSupportChannel, Path: good + "-x", SHA256: sum},
	} {
		if err := m.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Save(manifest); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, "plugin", "list", "--dir", dir, "--manifest", manifest)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"asterisk", "(built in)", "good", "2.1.0", "not in manifest", "stray", "missing", healthUnknown} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = run(t, "plugin", "list", "--dir", dir, "--manifest", manifest, "--output", "json")
	if code != ExitOK {
		t.Fatalf("json exit %d", code)
	}
	var got pluginListOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	states := map[string]host.ChecksumState{}
	for _, p := range got.Plugins {
		states[p.Name] = p.State
		if p.Health != healthUnknown {
			t.Errorf("%s: health %q", p.Name, p.Health)
		}
	}
	want := map[string]host.ChecksumState{"asterisk": host.ChecksumOK, "good": host.ChecksumOK, "tampered": host.ChecksumMissing, "stray": host.ChecksumNotInManifest}
	for n, s := range want {
		if states[n] != s {
			t.Errorf("%s: %q, want %q (all: %v)", n, states[n], s, states)
		}
	}

	if err := os.WriteFile(manifest, []byte(`{"version":1,"plugins":[{"name":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "plugin", "list", "--dir", dir, "--manifest", manifest)
	if code != ExitFailed || !strings.Contains(stderr, "re-run the installer") {
		t.Fatalf("broken manifest: exit %d, %q", code, stderr)
	}
}

// TestPluginListAsksAgent: with an agent answering on --socket, health is
// the agent's view of each plugin; a broken socket path still lists.
func TestPluginListAsksAgent(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, host.ManifestFileName)
	exe, _ := os.Executable()
	m := host.NewManifest()
	for _, name := range []string{"asterisk", "odoo", "fresh"} {
		e, err := host.BuiltinEntry(name, plugins.KindIntegration, exe, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Save(manifest); err != nil {
		t.Fatal(err)
	}
	outageStart := time.Now().Add(-time.Minute)
	st := localapi.Status{Plugins: []localapi.PluginStatus{
		{PluginHealth: api.PluginHealth{Name: "asterisk", Healthy: true, State: "healthy"}, PID: 4242, Restarts: 1,
			LastOutage: &localapi.PluginOutage{Start: outageStart, End: outageStart.Add(1500 * time.Millisecond), Reason: "crashed (signal: killed)"}},
		{PluginHealth: api.PluginHealth{Name: "odoo", State: "unhealthy", Detail: "unauthorized: wrong login or API key"}, PID: 4243},
	}}
	socket := filepath.Join(t.TempDir(), "agent.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != localapi.PathStatus {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(st)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	code, out, stderr := run(t, "plugin", "list", "--dir", dir, "--manifest", manifest, "--socket", socket)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"healthy (pid 4242); 1 restart(s); last outage", "1.5s): crashed (signal: killed)",
		"unhealthy: unauthorized: wrong login or API key", "not loaded by the agent"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = run(t, "plugin", "list", "--dir", dir, "--manifest", manifest, "--socket", socket, "--output", "json")
	var got pluginListOutput
	if err := json.Unmarshal([]byte(out), &got); code != ExitOK || err != nil {
		t.Fatalf("json: exit %d %v\n%s", code, err, out)
	}
	if !got.AgentRunning || got.Socket != socket {
		t.Fatalf("agent not seen: %+v", got)
	}
	for _, p := range got.Plugins {
		if p.Name == "asterisk" && (p.Agent == nil || p.Agent.PID != 4242 || p.Agent.LastOutage == nil) {
			t.Fatalf("asterisk row %+v", p)
		}
	}

	// Offline: nothing answers on the socket; the list still works.
	code, out, _ = run(t, "plugin", "list", "--dir", dir, "--manifest", manifest, "--socket", filepath.Join(dir, "none.sock"))
	if code != ExitOK || !strings.Contains(out, healthUnknown) {
		t.Fatalf("offline: exit %d\n%s", code, out)
	}
	// --socket and --config together are a usage error.
	if code, _, _ := run(t, "plugin", "list", "--socket", socket, "--config", "x.toml"); code != ExitUsage {
		t.Fatalf("--socket with --config: exit %d", code)
	}
}
