package agent

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/localapi"
)

// TestLogSwitchFollowsSubLoggers: sub-loggers made before a switch write in
// the new format and level after it, the support-ticket ring keeps
// receiving, and no line is written twice.
func TestLogSwitchFollowsSubLoggers(t *testing.T) {
	out := &lockedBuffer{}
	root, sw := newDaemonLogger(out, config.Log{Level: "info", Format: "text"})
	ring := newLogRing(10)
	root.RegisterSink(ring)
	sender := root.Named("sender")
	plugin := sender.ResetNamed("agent.plugins").Named("odoo")
	std := root.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})

	sender.Info("text line", "k", "v")
	sender.Debug("hidden at info")
	if got := out.String(); !strings.Contains(got, "[INFO]  agent.sender: text line: k=v") || strings.Contains(got, "hidden") || strings.Count(got, "\n") != 1 {
		t.Fatalf("text output:\n%s", got)
	}

	sw.set(config.Log{Level: "debug", Format: "json"})
	root.SetLevel(hclog.Debug)
	mark := len(out.String())
	sender.Debug("debug now", "k", "v")
	plugin.Warn("plugin says", "password", "s3cret")
	std.Print("[ERR] from the standard logger")
	lines := strings.Split(strings.TrimSpace(out.String()[mark:]), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 JSON lines, got:\n%s", out.String()[mark:])
	}
	want := []struct{ module, level, msg string }{
		{"agent.sender", "debug", "debug now"},
		{"agent.plugins.odoo", "warn", "plugin says"},
		{"agent", "error", "from the standard logger"},
	}
	for i, l := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d is not JSON: %v\n%s", i, err, l)
		}
		if m["@module"] != want[i].module || m["@level"] != want[i].level || !strings.Contains(m["@message"].(string), want[i].msg) {
			t.Errorf("line %d: %v, want %+v", i, m, want[i])
		}
	}
	if sw.config() != (config.Log{Level: "debug", Format: "json"}) {
		t.Errorf("switch reports %+v", sw.config())
	}
	// The ring saw the warning and the error (not the debug line), with the
	// secret scrubbed.
	rl := ring.Lines()
	if len(rl) != 2 || strings.Contains(rl[0].Message, "s3cret") {
		t.Fatalf("ring %+v", rl)
	}

	// Back to text at warn: info is filtered, by the root and the output.
	sw.set(config.Log{Level: "warn", Format: "text"})
	root.SetLevel(hclog.Warn)
	mark = len(out.String())
	sender.Info("not shown")
	sender.Warn("shown")
	if got := out.String()[mark:]; strings.Contains(got, "not shown") || !strings.Contains(got, "[WARN]  agent.sender: shown") {
		t.Fatalf("after the switch back:\n%s", got)
	}
}

// TestReloadSocketMove: a socket that cannot be opened leaves the old one
// serving and shows as the reload error; a good one takes over and the old
// file is removed; state_dir waits for a restart and is listed as such.
func TestReloadSocketMove(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.toml")
	write := func(extra string) {
		t.Helper()
		cfg := "state_dir = \"state\"\n" + extra + "[registry]\nurl = \"http://127.0.0.1:1\"\n[outbox]\nflush_deadline = \"0s\"\n"
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	sigs := make(chan os.Signal, 1)
	d, err := Start(Options{ConfigPath: cfgPath, LogOutput: &lockedBuffer{}, Signals: sigs})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Wait(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("wait: %v", err)
		}
	}()
	oldSock := filepath.Join(dir, "state", "agent.sock")
	status := func(sock string) (localapi.Status, error) {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return localapi.NewClient(sock).Status(c)
	}
	// reload sends SIGHUP and waits until the daemon has taken it.
	reload := func() {
		t.Helper()
		lastReload := func() time.Time {
			d.mu.Lock()
			defer d.mu.Unlock()
			return d.lastReload
		}
		before := lastReload()
		sigs <- syscall.SIGHUP
		deadline := time.Now().Add(10 * time.Second)
		for {
			if lastReload().After(before) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("reload not taken within 10s")
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := status(oldSock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("local API not up")
		}
		time.Sleep(10 * time.Millisecond)
	}

	write("socket = \"no-such-dir/agent.sock\"\n")
	reload()
	st, err := status(oldSock)
	if err != nil {
		t.Fatalf("old socket stopped serving after a failed move: %v", err)
	}
	if !strings.Contains(st.Agent.ReloadError, "no-such-dir/agent.sock") || st.Agent.Socket != oldSock || len(st.Agent.RestartRequired) != 0 {
		t.Fatalf("after a failed move: %+v", st.Agent)
	}

	newSock := filepath.Join(dir, "moved.sock")
	write("socket = \"moved.sock\"\n")
	reload()
	if st, err = status(newSock); err != nil {
		t.Fatalf("new socket: %v", err)
	}
	if st.Agent.ReloadError != "" || st.Agent.Socket != newSock {
		t.Fatalf("after the move: %+v", st.Agent)
	}
	if fi, err := os.Stat(newSock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("new socket mode: %v", err)
	}
	if _, err := os.Stat(oldSock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old socket file still there: %v", err)
	}

	// A new state_dir waits for a restart: status keeps the running one,
	// and the socket (set explicitly) stays where it is.
	stateDir := filepath.Join(dir, "state")
	os.WriteFile(cfgPath, []byte("state_dir = \"elsewhere\"\nsocket = \"moved.sock\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n[outbox]\nflush_deadline = \"0s\"\n"), 0o600)
	reload()
	if st, err = status(newSock); err != nil {
		t.Fatal(err)
	}
	if st.Agent.StateDir != stateDir || len(st.Agent.RestartRequired) != 1 || st.Agent.RestartRequired[0] != "state_dir" || st.Agent.ReloadError != "" {
		t.Fatalf("after a state_dir change: %+v", st.Agent)
	}
	if c := d.config(); c.Plugins.Manifest != filepath.Join(stateDir, "plugins.json") || c.Licence.PublicKeys[0] != filepath.Join(stateDir, "vendor.pub") {
		t.Fatalf("defaults moved with the pending state_dir: %+v", c)
	}
	// Setting it back clears the restart notice.
	write("socket = \"moved.sock\"\n")
	reload()
	if st, err = status(newSock); err != nil || len(st.Agent.RestartRequired) != 0 {
		t.Fatalf("after restoring state_dir: %+v %v", st.Agent, err)
	}
}
