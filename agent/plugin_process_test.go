package agent_test

// Real-process tests of the agent hosting plugins: the built-in Odoo
// adapter (`switchboard plugin serve odoo`) against the Odoo emulator,
// started by the agent from its manifest exactly as on a customer's server.

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	emu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

func startOdoo(t *testing.T) *emu.Server {
	t.Helper()
	s, err := emu.New(emu.Options{Version: 17})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// odooEntry is a manifest entry running the built-in Odoo adapter under
// the given name (several entries may run the same built-in).
func odooEntry(t *testing.T, name string, s *emu.Server, extra map[string]string) host.Entry {
	t.Helper()
	settings := map[string]string{"url": s.URL(), "db": "demo", "user": "admin", "api_key": "admin"}
	for k, v := range extra {
		settings[k] = v
	}
	e, err := host.BuiltinEntry(name, plugins.KindIntegration, binary, settings)
	if err != nil {
		t.Fatal(err)
	}
	e.Args = []string{"plugin", "serve", "odoo"}
	return e
}

// saveManifest writes the manifest into the agent's state directory.
func saveManifest(t *testing.T, dir string, entries ...host.Entry) {
	t.Helper()
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	m := host.NewManifest()
	for _, e := range entries {
		if err := m.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Save(filepath.Join(state, host.ManifestFileName)); err != nil {
		t.Fatal(err)
	}
}

func pluginByName(st localapi.Status, name string) (localapi.PluginStatus, bool) {
	for _, p := range st.Plugins {
		if p.Name == name {
			return p, true
		}
	}
	return localapi.PluginStatus{}, false
}

// waitHealthy waits until every named plugin is healthy with a process,
// and returns their PIDs.
func (a *agentProc) waitHealthy(names ...string) map[string]int {
	a.t.Helper()
	pids := map[string]int{}
	waitFor(a.t, 30*time.Second, "plugins healthy: "+strings.Join(names, ", "), func() bool {
		st := a.status()
		for _, n := range names {
			p, ok := pluginByName(st, n)
			if !ok || !p.Healthy || p.PID == 0 {
				return false
			}
			pids[n] = p.PID
		}
		return true
	})
	return pids
}

// procAlive reports whether pid is a live process (a zombie is dead).
func procAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}

// TestPluginSIGKILLIsRestartedAndStatusShowsTheGap: a plugin killed with
// SIGKILL is back (new process, healthy) within seconds, and both status
// forms show the outage.
func TestPluginSIGKILLIsRestartedAndStatusShowsTheGap(t *testing.T) {
	f := newFake(t)
	s := startOdoo(t)
	dir := t.TempDir()
	saveManifest(t, dir, odooEntry(t, "odoo", s, nil))
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "")
	a := startAgent(t, dir, cfg)
	old := a.waitHealthy("odoo")["odoo"]
	if p, _ := pluginByName(a.status(), "odoo"); p.LastOutage != nil || p.Restarts != 0 {
		t.Fatalf("outage before any: %+v", p)
	}

	killed := time.Now()
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var back localapi.PluginStatus
	waitFor(t, 15*time.Second, "plugin back after SIGKILL", func() bool {
		p, _ := pluginByName(a.status(), "odoo")
		back = p
		return p.Healthy && p.PID != 0 && p.PID != old
	})
	t.Logf("plugin back %s after SIGKILL (new pid %d)", time.Since(killed).Round(time.Millisecond), back.PID)
	o := back.LastOutage
	if o == nil || o.End.IsZero() || o.Start.Before(killed.Add(-time.Second)) || !o.End.After(o.Start) ||
		!strings.Contains(o.Reason, "crashed") || back.Restarts != 1 {
		t.Fatalf("status does not show the gap: %+v outage %+v", back, o)
	}
	if procAlive(old) {
		t.Fatalf("killed plugin %d still has a live process", old)
	}

	out, err := exec.Command(binary, "status", "--config", cfg, "--output", "json").Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var st localapi.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if p, _ := pluginByName(st, "odoo"); p.LastOutage == nil || !p.LastOutage.Start.Equal(o.Start) || !p.LastOutage.End.Equal(o.End) || p.PID != back.PID {
		t.Fatalf("status --output json: %+v", p)
	}
	text, err := exec.Command(binary, "status", "--config", cfg).Output()
	if err != nil || !strings.Contains(string(text), "last outage") || !strings.Contains(string(text), "back after") {
		t.Fatalf("status text: %v\n%s", err, text)
	}
	list, err := exec.Command(binary, "plugin", "list", "--config", cfg).Output()
	if err != nil || !strings.Contains(string(list), fmt.Sprintf("healthy (pid %d); 1 restart(s); last outage", back.PID)) {
		t.Fatalf("plugin list: %v\n%s", err, list)
	}
}

const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER from <linux/prctl.h>

// TestAgentSIGKILLLeavesNoPluginProcess: after SIGKILL of the agent (no
// exit path of its own runs) its plugin processes end within seconds. The
// test process becomes a child subreaper so the orphaned plugin is
// re-parented to it and reaped here, whatever the machine's init does.
func TestAgentSIGKILLLeavesNoPluginProcess(t *testing.T) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	f := newFake(t)
	s := startOdoo(t)
	dir := t.TempDir()
	saveManifest(t, dir, odooEntry(t, "odoo", s, nil), odooEntry(t, "odoo-second", s, nil))
	a := startAgent(t, dir, writeConfig(t, dir, f.URL, f.PubKey, ""))
	pids := a.waitHealthy("odoo", "odoo-second")

	a.signal(syscall.SIGKILL)
	a.exitCode(5 * time.Second)
	killed := time.Now()
	for name, pid := range pids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			var ws syscall.WaitStatus
			got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			if (err == nil && got == pid) || !procAlive(pid) {
				break
			}
			if time.Now().After(deadline) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("plugin %s (pid %d) outlived its SIGKILLed agent by 10s", name, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("plugin %s (pid %d) gone %s after the agent was killed", name, pid, time.Since(killed).Round(time.Millisecond))
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil && procAlive(pid) {
			t.Fatalf("plugin %s (pid %d) still running", name, pid)
		}
	}
}

// TestSIGHUPReloadsManifest: SIGHUP re-reads the manifest and the
// [plugins.NAME] settings: a new plugin starts, a removed one stops, a
// changed one restarts, and an unchanged one keeps its process.
func TestSIGHUPReloadsManifest(t *testing.T) {
	f := newFake(t)
	s := startOdoo(t)
	dir := t.TempDir()
	keep, change, gone := odooEntry(t, "keep", s, nil), odooEntry(t, "change", s, nil), odooEntry(t, "gone", s, nil)
	saveManifest(t, dir, keep, change, gone)
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "")
	a := startAgent(t, dir, cfg)
	before := a.waitHealthy("keep", "change", "gone")

	// Manifest: keep as is, change a setting of "change", drop "gone", add "fresh".
	saveManifest(t, dir, keep, odooEntry(t, "change", s, map[string]string{"timeout": "9s"}), odooEntry(t, "fresh", s, nil))
	a.signal(syscall.SIGHUP)
	// The reload is asynchronous: "change" may still show its old process
	// healthy for a moment, so wait for its new one.
	var after map[string]int
	waitFor(t, 30*time.Second, "changed plugin restarted", func() bool {
		after = a.waitHealthy("keep", "change", "fresh")
		return after["change"] != before["change"]
	})
	waitFor(t, 10*time.Second, "removed plugin gone from status", func() bool {
		_, ok := pluginByName(a.status(), "gone")
		return !ok
	})
	var names []string
	for _, p := range a.status().Plugins {
		names = append(names, p.Name)
	}
	if !slices.Equal(names, []string{"change", "fresh", "keep"}) {
		t.Fatalf("plugins after reload: %v", names)
	}
	if after["keep"] != before["keep"] {
		t.Fatalf("unchanged plugin restarted: pid %d -> %d", before["keep"], after["keep"])
	}
	if procAlive(before["gone"]) || procAlive(before["change"]) {
		t.Fatalf("old processes still alive: gone %d, change %d", before["gone"], before["change"])
	}
	if p, _ := pluginByName(a.status(), "keep"); p.Restarts != 0 {
		t.Fatalf("keep restarted: %+v", p)
	}

	// Config: a [plugins.keep] override restarts only "keep".
	if err := os.WriteFile(cfg, append(mustRead(t, cfg), "\n[plugins.keep]\nmodule_prefixes = \"x_\"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	a.signal(syscall.SIGHUP)
	var third map[string]int
	waitFor(t, 30*time.Second, "keep restarted with its new settings", func() bool {
		third = a.waitHealthy("keep", "change", "fresh")
		return third["keep"] != after["keep"]
	})
	if third["change"] != after["change"] || third["fresh"] != after["fresh"] {
		t.Fatalf("untouched plugins restarted: %v -> %v", after, third)
	}

	// A broken manifest keeps the running plugins and shows in status.
	state := filepath.Join(dir, "state", host.ManifestFileName)
	if err := os.WriteFile(state, []byte(`{"version": 1, "plugins": [`), 0o600); err != nil {
		t.Fatal(err)
	}
	a.signal(syscall.SIGHUP)
	waitFor(t, 10*time.Second, "manifest error in status", func() bool {
		return strings.Contains(a.status().Agent.ReloadError, "plugin manifest")
	})
	if now := a.waitHealthy("keep", "change", "fresh"); now["keep"] != third["keep"] || now["change"] != third["change"] || now["fresh"] != third["fresh"] {
		t.Fatalf("a broken manifest changed the running plugins: %v -> %v", third, now)
	}
}

// TestSIGHUPAppliesLiveSettings: one SIGHUP changing log.format, socket,
// outbox.max_records and state_dir. The first three take effect at once;
// state_dir is kept and listed as needing a restart; the plugin, whose
// settings did not change, keeps its process.
func TestSIGHUPAppliesLiveSettings(t *testing.T) {
	f := newFake(t)
	s := startOdoo(t)
	dir := t.TempDir()
	saveManifest(t, dir, odooEntry(t, "keep", s, nil))
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "[heartbeat]\ninterval = \"50ms\"\njitter = 0\n[outbox]\nmax_records = 1000\n")
	a := startAgent(t, dir, cfg)
	before := a.waitHealthy("keep")
	waitFor(t, 10*time.Second, "activation", func() bool { return a.status().Install.Activated })
	runningState := filepath.Join(dir, "state")
	oldSock, newSock := a.socket, filepath.Join(dir, "moved.sock")

	// A backlog bigger than the new bound.
	f.SetDown(true)
	waitFor(t, 20*time.Second, "backlog", func() bool { return a.status().Outbox.Depth >= 15 })
	if st := a.status(); st.Outbox.MaxRecords != 1000 || st.Outbox.Compactions != 0 || st.Agent.Socket != oldSock {
		t.Fatalf("before the reload: agent %+v outbox %+v", st.Agent, st.Outbox)
	}

	text := string(mustRead(t, cfg))
	text = strings.Replace(text, "state_dir = \"state\"\n", fmt.Sprintf("state_dir = \"state2\"\nsocket = %q\n", newSock), 1)
	text = strings.Replace(text, "max_records = 1000", "max_records = 10", 1)
	text += "[log]\nformat = \"json\"\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	mark := len(a.logs.String())
	a.signal(syscall.SIGHUP)

	// Status answers on the new socket, and the old socket file is gone.
	waitFor(t, 10*time.Second, "status on the new socket", func() bool {
		_, err := localapi.NewClient(newSock).Status(t.Context())
		return err == nil
	})
	a.socket = newSock
	if _, err := os.Stat(oldSock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old socket file still there: %v", err)
	}
	waitFor(t, 10*time.Second, "reload finished", func() bool { return strings.Contains(a.logs.String()[mark:], `"configuration reloaded"`) })
	st := a.status()
	if st.Agent.Socket != newSock || st.Agent.StateDir != runningState || !slices.Equal(st.Agent.RestartRequired, []string{"state_dir"}) || st.Agent.ReloadError != "" {
		t.Fatalf("agent after the reload: %+v", st.Agent)
	}
	// The new bound is in force: heartbeats beyond it are compacted.
	if st.Outbox.MaxRecords != 10 {
		t.Fatalf("outbox bound after the reload: %+v", st.Outbox)
	}
	waitFor(t, 10*time.Second, "compaction under the new bound", func() bool { return a.status().Outbox.Compactions > 0 })
	out, err := exec.Command(binary, "status", "--socket", newSock).Output()
	if err != nil || !strings.Contains(string(out), "RESTART REQUIRED to apply: state_dir") || !strings.Contains(string(out), "(max 10)") {
		t.Fatalf("status text: %v\n%s", err, out)
	}
	// The plugin's settings did not change: same process, no restart.
	if after := a.waitHealthy("keep"); after["keep"] != before["keep"] {
		t.Fatalf("unchanged plugin restarted: pid %d -> %d", before["keep"], after["keep"])
	}
	if _, err := os.Stat(filepath.Join(dir, "state2")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the pending state_dir was created before a restart: %v", err)
	}

	// From the switch on, every line is JSON, the compaction warning included.
	waitFor(t, 10*time.Second, "compaction logged", func() bool { return strings.Contains(a.logs.String()[mark:], "outbox full: compacted") })
	tail := a.logs.String()[mark:]
	first := strings.Index(tail, "{")
	if first < 0 {
		t.Fatalf("no JSON line after the reload:\n%s", tail)
	}
	for _, line := range strings.Split(strings.TrimSpace(tail[first:]), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil || m["@message"] == nil || m["@level"] == nil {
			t.Fatalf("log line after the switch is not hclog JSON (%v): %s", err, line)
		}
	}
	if strings.Contains(tail[:first], "configuration reloaded") {
		t.Fatalf("reload logged in text:\n%s", tail[:first])
	}
}
