package agent

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// lockedBuffer is a log sink the daemon's goroutines may write to.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startInProcess starts a daemon in dir whose registry is never reached;
// tests drive it through the sender hooks. The caller closes the outbox.
func startInProcess(t *testing.T, dir string) (*Daemon, *lockedBuffer) {
	t.Helper()
	cfgPath := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(cfgPath, []byte("state_dir = \"state\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	d, err := Start(Options{ConfigPath: cfgPath, LogOutput: logs})
	if err != nil {
		t.Fatal(err)
	}
	return d, logs
}

// TestRegistryIntervalIsClamped: an interval that overflows time.Duration
// (or floods the registry) is clamped, logged, and stored clamped, so the
// install record still loads on the next start.
func TestRegistryIntervalIsClamped(t *testing.T) {
	dir := t.TempDir()
	d, logs := startInProcess(t, dir)
	h := hooks{d}
	if err := h.Activated(api.ActivationResponse{InstallID: "iabcdefghijklmnopqrstuvwxyz", HeartbeatIntervalSeconds: math.MaxInt}); err != nil {
		t.Fatal(err)
	}
	if iv := d.heartbeatInterval(); iv != MaxHeartbeatInterval {
		t.Fatalf("after activation: interval %v, want %v", iv, MaxHeartbeatInterval)
	}
	if !strings.Contains(logs.String(), "outside the agent's bounds") {
		t.Errorf("clamping not logged:\n%s", logs)
	}
	inst, ok, err := (&state.Dir{Path: filepath.Join(dir, "state")}).LoadInstall()
	if err != nil || !ok || inst.HeartbeatIntervalSeconds != int(MaxHeartbeatInterval/time.Second) {
		t.Fatalf("install record after activation: %+v %v %v", inst, ok, err)
	}

	h.ReportsAnswered(api.ReportBatchResponse{HeartbeatIntervalSeconds: 1})
	if iv := d.heartbeatInterval(); iv != MinHeartbeatInterval {
		t.Fatalf("after a 1 s answer: interval %v, want %v", iv, MinHeartbeatInterval)
	}
	h.ReportsAnswered(api.ReportBatchResponse{HeartbeatIntervalSeconds: int(math.MaxInt64/int64(time.Second)) + 1})
	if iv := d.heartbeatInterval(); iv != MaxHeartbeatInterval {
		t.Fatalf("after an overflowing answer: interval %v, want %v", iv, MaxHeartbeatInterval)
	}
	h.ReportsAnswered(api.ReportBatchResponse{HeartbeatIntervalSeconds: 1800})
	if iv := d.heartbeatInterval(); iv != 30*time.Minute {
		t.Fatalf("after a sane answer: interval %v", iv)
	}
	if err := d.ob.Close(); err != nil {
		t.Fatal(err)
	}

	// The stored record holds the last sane value and the next start uses it.
	d2, _ := startInProcess(t, dir)
	defer d2.ob.Close()
	if iv := d2.heartbeatInterval(); iv != 30*time.Minute {
		t.Fatalf("after restart: interval %v", iv)
	}
}

// TestDamagedLinkFileIsKeptAside: a link.json the agent cannot trust is
// renamed to link.json.corrupt-TIMESTAMP with a warning naming both paths,
// never dropped or overwritten unseen.
func TestDamagedLinkFileIsKeptAside(t *testing.T) {
	good, err := json.Marshal(localapi.LinkRequestInfo{Code: "K7QM-4XJD-R", Seq: 3, State: "pending", RequestedAt: time.Now().UTC()})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string][]byte{
		"truncated":   good[:len(good)/2],
		"not json":    []byte("\x00\x01garbage"),
		"bad code":    []byte(`{"code":"NOPE","seq":3,"state":"pending"}`),
		"no code":     []byte(`{"seq":3,"state":"pending"}`),
		"bad state":   []byte(`{"code":"K7QM-4XJD-R","seq":3,"state":"maybe"}`),
		"no seq":      []byte(`{"code":"K7QM-4XJD-R","state":"pending"}`),
		"wrong shape": []byte(`["K7QM-4XJD-R"]`),
		"huge":        append([]byte(`{"code":"K7QM-4XJD-R","seq":3,"state":"pending","message":"`), bytes.Repeat([]byte("a"), maxLinkFileBytes)...),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			stateDir := filepath.Join(dir, "state")
			if err := os.MkdirAll(stateDir, 0o700); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(stateDir, linkFile)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			d, logs := startInProcess(t, dir)
			defer d.ob.Close()
			if d.link != nil {
				t.Fatalf("damaged link state adopted: %+v", d.link)
			}
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if len(aside) != 1 {
				t.Fatalf("set-aside files %v", aside)
			}
			kept, err := os.ReadFile(aside[0])
			if err != nil || !bytes.Equal(kept, content) {
				t.Fatalf("kept copy differs: %v", err)
			}
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("%s still there: %v", path, err)
			}
			out := logs.String()
			if !strings.Contains(out, "damaged") || !strings.Contains(out, path) || !strings.Contains(out, aside[0]) || !strings.Contains(out, "outbox") {
				t.Errorf("the warning should name the file, where it went and what it means:\n%s", out)
			}
		})
	}

	t.Run("second damage keeps the first copy", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "state")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, linkFile)
		now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
		for i, content := range []string{"first", "second"} {
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			aside, err := setAside(path, now)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(aside); string(got) != content {
				t.Fatalf("copy %d holds %q", i, got)
			}
		}
		if m, _ := filepath.Glob(path + ".corrupt-*"); len(m) != 2 {
			t.Fatalf("copies %v", m)
		}
	})

	t.Run("valid file loads", func(t *testing.T) {
		dir := t.TempDir()
		stateDir := filepath.Join(dir, "state")
		if err := os.MkdirAll(stateDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(stateDir, linkFile), good, 0o600); err != nil {
			t.Fatal(err)
		}
		d, _ := startInProcess(t, dir)
		defer d.ob.Close()
		if d.link == nil || d.link.Code != "K7QM-4XJD-R" || d.link.Seq != 3 || d.link.State != "pending" {
			t.Fatalf("link %+v", d.link)
		}
		if m, _ := filepath.Glob(filepath.Join(stateDir, linkFile+".corrupt-*")); len(m) != 0 {
			t.Fatalf("a valid file was set aside: %v", m)
		}
	})
}

// TestSystemFactsAreCleaned: facts from hand-edited files reach the
// registry as text it accepts (the activation would be refused otherwise),
// parsed like the installer parses them.
func TestSystemFactsAreCleaned(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"etc/os-release": "NAME='Rocky Linux'\nVERSION=\"9.3\x07 (Blue Onyx)\"\nPRETTY_NAME=\n",
		"etc/hostname":   "pbx1\x1b[2J\n",
		"etc/machine-id": strings.Repeat("0123456789abcdef\xff", 40) + "\n",
	} {
		if err := os.WriteFile(filepath.Join(root, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := SystemFacts{Root: root}.HostFacts()
	if f.OS != "Rocky Linux 9.3  (Blue Onyx)" || f.Hostname != "pbx1 [2J" {
		t.Errorf("facts %+v", f)
	}
	for name, v := range map[string]string{"os": f.OS, "hostname": f.Hostname, "machine_id": f.MachineID, "agent_version": f.AgentVersion} {
		if len(v) > 256 || !utf8.ValidString(v) || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Errorf("%s %q would be refused by the registry", name, v)
		}
	}
	if len(f.MachineID) == 0 || len(f.MachineID) > 256 {
		t.Errorf("machine id %d bytes", len(f.MachineID))
	}
}

// A damaged tickets.json is kept aside like link.json: a second damage
// must not overwrite the first copy.
func TestDamagedTicketListIsKeptAside(t *testing.T) {
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(stateDir, ticketsFile)
	for i, content := range []string{"[{\"id\":", "not json either"} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		d, logs := startInProcess(t, dir)
		d.ob.Close()
		aside, _ := filepath.Glob(path + ".corrupt-*")
		if len(aside) != i+1 {
			t.Fatalf("after damage %d: set-aside files %v", i+1, aside)
		}
		if out := logs.String(); !strings.Contains(out, "damaged") || !strings.Contains(out, path) {
			t.Errorf("the warning should name the file:\n%s", out)
		}
	}
}
