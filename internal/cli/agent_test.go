package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/sender"
	"github.com/switchboard-dev/switchboard/registry/api"
)

func TestAgentConfigExampleAndCheck(t *testing.T) {
	code, out, _ := run(t, "agent", "config", "example")
	if code != ExitOK || out != config.Example {
		t.Fatalf("example: exit %d", code)
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "agent.toml")
	os.WriteFile(bad, []byte("[registry]\nurl = \"http://127.0.0.1:1\"\n[outbox]\nmax_records = 2\n"), 0o600)
	code, _, stderr := run(t, "agent", "config", "check", bad)
	if code != ExitFailed || !strings.Contains(stderr, "agent.toml:4: outbox.max_records") {
		t.Fatalf("check bad: exit %d %q", code, stderr)
	}
	if code, _, _ := run(t, "agent", "config", "check"); code != ExitUsage {
		t.Fatalf("check without file: exit %d", code)
	}
	if code, _, _ := run(t, "agent", "run", "--config", filepath.Join(dir, "missing.toml")); code != ExitFailed {
		t.Fatalf("run with a missing config: exit %d", code)
	}
}

func TestStatusAgentNotRunning(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	code, _, stderr := run(t, "status", "--socket", sock)
	if code != ExitUnreachable || !strings.Contains(stderr, "not running") {
		t.Fatalf("exit %d %q", code, stderr)
	}
	if code, _, _ := run(t, "status", "--socket", sock, "--config", "x"); code != ExitUsage {
		t.Fatalf("both flags: exit %d", code)
	}
}

func TestPartnerSetChecksCodeFirst(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	code, _, stderr := run(t, "partner", "set", "K7QM-4XJD-X", "--socket", sock)
	if code != ExitFailed || !strings.Contains(stderr, "check") {
		t.Fatalf("typo: exit %d %q", code, stderr)
	}
	code, _, _ = run(t, "partner", "set", "K7QM-4XJD-R", "--socket", sock)
	if code != ExitUnreachable {
		t.Fatalf("valid code, no agent: exit %d", code)
	}
}

func TestWriteStatus(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	st := localapi.Status{
		Agent: localapi.AgentInfo{Version: "1.2.3", PID: 42, StartedAt: now.Add(-time.Hour), StateDir: "/var/lib/switchboard",
			Socket: "/run/switchboard/agent.sock", ReloadError: "configuration applied, except: socket /x/agent.sock not opened",
			RestartRequired: []string{"state_dir"}},
		Install: localapi.InstallInfo{Activated: true, InstallID: "inst-1", ActivatedAt: now.Add(-48 * time.Hour)},
		Licence: localapi.LicenceInfo{State: "expired", Licensed: false, PartnerCode: "K7QM-4XJD-R", Tier: "partner",
			NotAfter: now.Add(-60 * 24 * time.Hour), Error: "licence and its grace period ended"},
		Partner: localapi.PartnerInfo{Linked: true, Code: "K7QM-4XJD-R", Tier: "partner",
			Request: &localapi.LinkRequestInfo{Code: "9XG0-9YWK-W", State: "refused", Message: "already linked to another partner"}},
		Registry: sender.Status{URL: "https://r.example", LastAttempt: now, LastError: "HTTP 503", LastErrorAt: now, ConsecutiveFailures: 4, NextAttempt: now.Add(time.Minute)},
		Outbox: localapi.OutboxInfo{Stats: outbox.Stats{Depth: 12, MaxRecords: 10000, DeadLetters: 1}, OldestAgeSeconds: 3600,
			RecentDead: []localapi.DeadSummary{{Seq: 9, Kind: outbox.KindLink, Reason: "HTTP 409 already_linked"}}},
		Heartbeat: localapi.HeartbeatInfo{IntervalSeconds: 3600, LastAt: now.Add(-time.Minute)},
		Plugins:   []localapi.PluginStatus{{PluginHealth: api.PluginHealth{Name: "asterisk", Healthy: false, State: "restarting", Detail: "crashed"}}},
	}
	var b bytes.Buffer
	if err := writeStatus(&b, st, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"install:   inst-1", "licence:   expired, UNLICENSED — partner K7QM-4XJD-R (partner)",
		"partner:   linked to K7QM-4XJD-R (partner)", "link request 9XG0-9YWK-W: refused: already linked",
		"registry:  https://r.example, unreachable", "4 failed attempts", "outbox:    12 waiting (max 10000), oldest 1h0m0s old; 1 dead letter(s)",
		"dead letter seq 9 (link)", "heartbeat: every 1h0m0s", "asterisk: UNHEALTHY (restarting) — crashed",
		"local API on /run/switchboard/agent.sock", "last reload: configuration applied, except: socket /x/agent.sock",
		"RESTART REQUIRED to apply: state_dir"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	// Nothing about reloads or the socket when there is nothing to say.
	st.Agent = localapi.AgentInfo{Version: "1.2.3", StateDir: "/var/lib/switchboard", Socket: "/var/lib/switchboard/agent.sock"}
	b.Reset()
	if err := writeStatus(&b, st, now); err != nil {
		t.Fatal(err)
	}
	if out := b.String(); strings.Contains(out, "local API on") || strings.Contains(out, "reload") || strings.Contains(out, "RESTART") {
		t.Errorf("status shows reload or socket notes it should not:\n%s", out)
	}
}
