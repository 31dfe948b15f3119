package agent_test

// Tests with real processes: the switchboard binary is built once in
// TestMain; each test starts agents (and, where it says so, the real
// registry binary) in t.TempDir() on 127.0.0.1. Where a test must look
// inside the receiver (arrival order, compacted summaries, injected
// failures) it uses fakeregistry, an in-process server following the same
// registry/api contract.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/agent/internal/fakeregistry"
	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/internal/testenv"
	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
)

var binary string

func TestMain(m *testing.M) {
	os.Exit(testenv.MainWithSwitchboard(m, &binary))
}

// --- receivers ------------------------------------------------------------

type fake struct {
	*fakeregistry.Registry
	URL    string
	PubKey string // vendor public key file
}

func newFake(t *testing.T) *fake {
	t.Helper()
	vk, err := licensing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pem, err := licensing.MarshalPublicKey(vk.Public())
	if err != nil {
		t.Fatal(err)
	}
	pub := filepath.Join(t.TempDir(), "vendor.pub")
	if err := os.WriteFile(pub, pem, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := fakeregistry.New(vk)
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	return &fake{Registry: reg, URL: srv.URL, PubKey: pub}
}

// storedSeqs lists the report seqs the real registry stored for install id.
func storedSeqs(t *testing.T, r *testenv.Registry, id string) []uint64 {
	t.Helper()
	c, err := client.New(r.URL, r.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	seqs, err := c.ReportSeqs(context.Background(), id)
	if err != nil {
		t.Fatalf("registry seqs: %v", err)
	}
	return seqs
}

// --- agent processes --------------------------------------------------------

type agentProc struct {
	*testenv.Process
	t      *testing.T
	dir    string
	cfg    string
	socket string
	logs   *testenv.Buffer // the agent's output: &Process.Output
}

// writeConfig writes an agent config under dir; extra is appended TOML.
func writeConfig(t *testing.T, dir, url, pub, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`state_dir = "state"
[registry]
url = %q
[licence]
public_keys = [%q]
[sender]
backoff_min = "20ms"
backoff_max = "200ms"
request_timeout = "5s"
%s`, url, pub, extra)
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func startAgent(t *testing.T, dir, cfg string) *agentProc {
	t.Helper()
	p := testenv.StartProcess(t, "agent", exec.Command(binary, "agent", "run", "--config", cfg))
	// The end of a test need not wait up to the flush deadline for an
	// agent whose registry is down: kill it before the SIGTERM of Stop.
	t.Cleanup(p.Kill)
	a := &agentProc{Process: p, t: t, dir: dir, cfg: cfg, socket: filepath.Join(dir, "state", "agent.sock"), logs: &p.Output}
	waitFor(t, 20*time.Second, "agent socket", func() bool {
		if a.Exited() {
			t.Fatalf("agent exited at start: %s", a.logs.String())
		}
		c, err := net.Dial("unix", a.socket)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return a
}

func (a *agentProc) status() localapi.Status {
	a.t.Helper()
	st, err := localapi.NewClient(a.socket).Status(context.Background())
	if err != nil {
		a.t.Fatalf("status: %v", err)
	}
	return st
}

func (a *agentProc) signal(s syscall.Signal) {
	a.t.Helper()
	if err := a.Cmd.Process.Signal(s); err != nil {
		a.t.Fatal(err)
	}
}

// exitCode waits for the agent to end.
func (a *agentProc) exitCode(timeout time.Duration) int {
	a.t.Helper()
	select {
	case <-a.Done():
	case <-time.After(timeout):
		a.t.Fatalf("agent did not exit within %s", timeout)
	}
	return a.Cmd.ProcessState.ExitCode()
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testenv.Eventually(t, timeout, testenv.Until(what, cond))
}

// checkOnceInOrder asserts the fake stored every report seq in want once,
// that nothing else arrived, and that first arrivals came in seq order.
func checkOnceInOrder(t *testing.T, f *fake, id string, lastSeq uint64) {
	t.Helper()
	arr := f.Arrivals()
	var prev uint64
	got := map[uint64]bool{}
	for _, a := range arr {
		if a.InstallID != id {
			t.Fatalf("report for unexpected install %s", a.InstallID)
		}
		if a.Report.Seq <= prev {
			t.Fatalf("report %d arrived after %d: out of order", a.Report.Seq, prev)
		}
		prev = a.Report.Seq
		got[a.Report.Seq] = true
	}
	// Seq 1 is the activation; every later seq is a heartbeat.
	for s := uint64(2); s <= lastSeq; s++ {
		if !got[s] {
			t.Fatalf("report %d never arrived (last seq %d, %d arrived)", s, lastSeq, len(arr))
		}
	}
	if len(got) != int(lastSeq-1) {
		t.Fatalf("%d distinct reports stored, want %d", len(got), lastSeq-1)
	}
}

// --- tests -----------------------------------------------------------------

func TestOutageThenRecoveryDeliversOnceInOrder(t *testing.T) {
	f := newFake(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "[heartbeat]\ninterval = \"30ms\"\njitter = 0\n[outbox]\nmax_records = 100000\n")
	a := startAgent(t, dir, cfg)
	waitFor(t, 10*time.Second, "activation", func() bool { return a.status().Install.Activated })
	f.SetDown(true)
	before := a.status().Outbox.LastSeq
	waitFor(t, 20*time.Second, "reports piling up", func() bool {
		st := a.status()
		return st.Outbox.Depth >= 30 && st.Outbox.LastSeq >= before+30
	})
	st := a.status()
	if st.Registry.LastError == "" || st.Registry.ConsecutiveFailures == 0 || st.Outbox.OldestAgeSeconds <= 0 {
		t.Fatalf("status does not show the outage: %+v %+v", st.Registry, st.Outbox)
	}
	f.SetDown(false)
	waitFor(t, 20*time.Second, "outbox drained", func() bool { return a.status().Outbox.Depth == 0 })
	a.signal(syscall.SIGTERM)
	if code := a.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	// The final heartbeats were flushed at exit: read the last seq from the fake.
	arr := f.Arrivals()
	checkOnceInOrder(t, f, st.Install.InstallID, arr[len(arr)-1].Report.Seq)
	for _, a := range arr {
		// The first heartbeat is queued at start, before the activation
		// brought the licence: it truthfully says "missing".
		if a.Report.Seq > 2 && a.Report.LicenceState != "valid" {
			t.Fatalf("heartbeat %d says licence %q", a.Report.Seq, a.Report.LicenceState)
		}
		if a.Report.Kind != api.KindHeartbeat || a.Report.Facts == nil || a.Report.Facts.AgentVersion == "" {
			t.Fatalf("bad heartbeat: %+v", a.Report)
		}
	}
}

func TestRealRegistryOutageAndRepeatedSIGKILL(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "registry")
	reg := testenv.StartRegistry(t, binary, data, "127.0.0.1:0")
	dir := filepath.Join(root, "agent")
	os.MkdirAll(dir, 0o700)
	cfg := writeConfig(t, dir, reg.URL, reg.PubKey, "[heartbeat]\ninterval = \"25ms\"\njitter = 0\n")
	// Small batches make the drain take many requests (each one fsync at the
	// registry), so kills land mid-drain even on a fast machine.
	os.WriteFile(cfg, bytes.Replace(mustRead(t, cfg), []byte("[sender]\n"), []byte("[sender]\nbatch_size = 2\n"), 1), 0o600)

	a := startAgent(t, dir, cfg)
	waitFor(t, 10*time.Second, "activation", func() bool { return a.status().Install.Activated })
	id := a.status().Install.InstallID
	if st := a.status(); st.Licence.State != "valid" || !st.Licence.Licensed {
		t.Fatalf("licence from the real registry: %+v", st.Licence)
	}

	// Registry down for a stretch while heartbeats pile up.
	if err := reg.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "backlog", func() bool { return a.status().Outbox.Depth >= 150 })
	if st := a.status(); st.Registry.Reachable {
		t.Fatalf("registry reported reachable while down: %+v", st.Registry)
	}
	reg = testenv.StartRegistry(t, binary, data, reg.Addr)

	// SIGKILL the agent repeatedly while it drains, restarting it each time.
	midDrain := 0
	for i := 0; i < 5; i++ {
		time.Sleep(time.Duration(30+20*i) * time.Millisecond)
		if a.status().Outbox.Depth > 0 {
			midDrain++
		}
		a.signal(syscall.SIGKILL)
		a.exitCode(5 * time.Second)
		a = startAgent(t, dir, cfg)
	}
	if midDrain < 2 {
		t.Fatalf("only %d kills landed while the outbox was draining", midDrain)
	}
	waitFor(t, 30*time.Second, "drain after kills", func() bool {
		st := a.status()
		return st.Outbox.Depth == 0 && st.Registry.Reachable
	})
	a.signal(syscall.SIGTERM)
	if code := a.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit %d after SIGTERM", code)
	}
	// Read the agent's last seq from a restarted agent's outbox stats? The
	// outbox is empty, so compare against the registry's own list: it
	// must hold every seq from 2 (after the activation) without a gap.
	seqs := storedSeqs(t, reg, id)
	if len(seqs) < 60 {
		t.Fatalf("only %d reports stored", len(seqs))
	}
	for i, s := range seqs {
		if s != uint64(i+2) {
			t.Fatalf("stored seqs have a gap or duplicate at index %d: %d (want %d)", i, s, i+2)
		}
	}
}

func TestOutboxCompactionWhenFull(t *testing.T) {
	f := newFake(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "[heartbeat]\ninterval = \"20ms\"\njitter = 0\n[outbox]\nmax_records = 10\n")
	a := startAgent(t, dir, cfg)
	waitFor(t, 10*time.Second, "activation", func() bool { return a.status().Install.Activated })
	f.SetDown(true)
	start := a.status().Outbox.LastSeq
	waitFor(t, 20*time.Second, "compaction", func() bool {
		st := a.status()
		return st.Outbox.Compactions >= 2 && st.Outbox.LastSeq > start+40
	})
	if st := a.status(); st.Outbox.Depth > 10 {
		t.Fatalf("outbox over its bound: %+v", st.Outbox)
	}
	metrics, err := localapi.NewClient(a.socket).Metrics(context.Background())
	if err != nil || !strings.Contains(metrics, "switchboard_agent_outbox_compactions_total") {
		t.Fatalf("metrics: %v\n%s", err, metrics)
	}
	f.SetDown(false)
	a.signal(syscall.SIGTERM)
	if code := a.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	// Every heartbeat is accounted for, individually or in a summary.
	covered := map[uint64]bool{}
	summaries := 0
	for _, ar := range f.Arrivals() {
		r := ar.Report
		if r.Kind == api.KindHeartbeatSummary {
			summaries++
			if r.Summary == nil || r.Summary.LastSeq != r.Seq || r.Summary.Count < 2 {
				t.Fatalf("bad summary %+v", r)
			}
			// A summary covers FirstSeq..LastSeq minus seqs sent on their own.
			covered[r.Seq] = true
			continue
		}
		covered[r.Seq] = true
	}
	if summaries == 0 {
		t.Fatal("no heartbeat_summary arrived")
	}
	total := 0
	for _, ar := range f.Arrivals() {
		if ar.Report.Summary != nil {
			total += ar.Report.Summary.Count
		} else {
			total++
		}
	}
	last := f.Arrivals()[len(f.Arrivals())-1].Report.Seq
	if total != int(last-1) {
		t.Fatalf("heartbeats accounted %d, want %d (seqs 2..%d)", total, last-1, last)
	}
}

func TestConfigErrorNamesKeyAndLine(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "bad.toml")
	os.WriteFile(cfg, []byte("[registry]\nurl = \"http://127.0.0.1:1\"\n\n[sender]\nbatch_sise = 3\n"), 0o600)
	out, err := exec.Command(binary, "agent", "run", "--config", cfg).CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 1 {
		t.Fatalf("want exit 1, got %v: %s", err, out)
	}
	if !strings.Contains(string(out), "bad.toml:5: sender.batch_sise: unknown key") {
		t.Fatalf("error does not name key and line: %s", out)
	}
	out, err = exec.Command(binary, "agent", "config", "check", cfg).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "bad.toml:5") {
		t.Fatalf("config check: %v %s", err, out)
	}
	// The shipped example passes the same check (its key file aside).
	ex, _ := exec.Command(binary, "agent", "config", "example").Output()
	os.WriteFile(cfg, ex, 0o600)
	out, _ = exec.Command(binary, "agent", "config", "check", cfg, "--output", "json").Output()
	var res struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	if err := json.Unmarshal(out, &res); err != nil || res.Error != "" || len(res.Problems) != 1 || !strings.Contains(res.Problems[0], "vendor.pub") {
		t.Fatalf("example check: %v %s", err, out)
	}
}

func TestSIGHUPReload(t *testing.T) {
	f := newFake(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "[heartbeat]\ninterval = \"1h\"\n")
	a := startAgent(t, dir, cfg)
	if iv := a.status().Heartbeat.IntervalSeconds; iv != 3600 {
		t.Fatalf("interval %v", iv)
	}
	good, _ := os.ReadFile(cfg)
	os.WriteFile(cfg, append(append([]byte(nil), good...), "\n[outbox]\nmax_recrods = 5\n"...), 0o600)
	a.signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "reload refused", func() bool { return a.status().Agent.ReloadError != "" })
	st := a.status()
	if !strings.Contains(st.Agent.ReloadError, "outbox.max_recrods") || !strings.Contains(st.Agent.ReloadError, "agent.toml:") || st.Heartbeat.IntervalSeconds != 3600 {
		t.Fatalf("refused reload: %+v", st.Agent)
	}
	// The log arrives through the child's stderr pipe, after the status.
	waitFor(t, 5*time.Second, "reload refusal logged", func() bool { return strings.Contains(a.logs.String(), "reload refused") })
	os.WriteFile(cfg, bytes.Replace(good, []byte(`interval = "1h"`), []byte(`interval = "50ms"`), 1), 0o600)
	a.signal(syscall.SIGHUP)
	waitFor(t, 5*time.Second, "reload applied", func() bool {
		st := a.status()
		return st.Agent.ReloadError == "" && st.Heartbeat.IntervalSeconds == 0.05
	})
	// The new interval is in effect: heartbeats now come quickly.
	seq := a.status().Heartbeat.LastSeq
	waitFor(t, 10*time.Second, "heartbeats on the new interval", func() bool { return a.status().Heartbeat.LastSeq >= seq+5 })
}

func TestSIGTERMFlushesWithinDeadline(t *testing.T) {
	f := newFake(t)
	dir := t.TempDir()
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "[heartbeat]\ninterval = \"20ms\"\njitter = 0\n[outbox]\nflush_deadline = \"10s\"\n")
	a := startAgent(t, dir, cfg)
	waitFor(t, 10*time.Second, "activation", func() bool { return a.status().Install.Activated })
	f.SetDown(true)
	waitFor(t, 20*time.Second, "backlog", func() bool { return a.status().Outbox.Depth >= 20 })
	f.SetDown(false)
	a.signal(syscall.SIGTERM)
	if code := a.exitCode(15 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if !strings.Contains(a.logs.String(), "outbox flushed") {
		t.Fatalf("no flush:\n%s", a.logs.String())
	}
	arr := f.Arrivals()
	checkOnceInOrder(t, f, f.Installs()[0], arr[len(arr)-1].Report.Seq)

	// Registry down at stop: exit 0 after the deadline, records kept.
	os.WriteFile(cfg, bytes.Replace(mustRead(t, cfg), []byte(`flush_deadline = "10s"`), []byte(`flush_deadline = "300ms"`), 1), 0o600)
	a = startAgent(t, dir, cfg)
	f.SetDown(true)
	waitFor(t, 10*time.Second, "backlog", func() bool { return a.status().Outbox.Depth >= 5 })
	t0 := time.Now()
	a.signal(syscall.SIGTERM)
	if code := a.exitCode(10 * time.Second); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if took := time.Since(t0); took > 8*time.Second {
		t.Fatalf("stop took %s with a 300ms flush deadline", took)
	}
	if !strings.Contains(a.logs.String(), "outbox not empty at exit") {
		t.Fatalf("no warning about records left:\n%s", a.logs.String())
	}
	f.SetDown(false)
	a = startAgent(t, dir, cfg)
	waitFor(t, 10*time.Second, "kept records sent after restart", func() bool { return a.status().Outbox.Depth == 0 })
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStatusCLIAndPartnerLink(t *testing.T) {
	f := newFake(t)
	f.Partners["K7QM-4XJD-R"] = "partner"
	dir := t.TempDir()
	cfg := writeConfig(t, dir, f.URL, f.PubKey, "")
	a := startAgent(t, dir, cfg)
	waitFor(t, 10*time.Second, "activation", func() bool { return a.status().Install.Activated })

	out, err := exec.Command(binary, "status", "--config", cfg, "--output", "json").Output()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	var st localapi.Status
	if err := json.Unmarshal(out, &st); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	if st.Licence.State != "valid" || st.Install.InstallID == "" || st.Partner.Linked || st.Registry.URL != f.URL {
		t.Fatalf("status %+v", st)
	}
	text, err := exec.Command(binary, "status", "--socket", a.socket).Output()
	if err != nil || !strings.Contains(string(text), "licence:   valid") || !strings.Contains(string(text), "outbox:") {
		t.Fatalf("status text: %v\n%s", err, text)
	}
	if fi, err := os.Stat(a.socket); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode: %v %v", fi.Mode(), err)
	}

	// partner set: a typo is caught locally (exit 1), a good code links.
	cmd := exec.Command(binary, "partner", "set", "K7QM-4XJD-X", "--config", cfg)
	if out, err := cmd.CombinedOutput(); exitOf(err) != 1 {
		t.Fatalf("typo: exit %d: %s", exitOf(err), out)
	}
	out, err = exec.Command(binary, "partner", "set", "k7qm 4xjd r", "--config", cfg, "--wait", "10s").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "linked") {
		t.Fatalf("partner set: %v\n%s", err, out)
	}
	st = a.status()
	if !st.Partner.Linked || st.Partner.Code != "K7QM-4XJD-R" || st.Licence.PartnerCode != "K7QM-4XJD-R" || st.Licence.Tier != "partner" {
		t.Fatalf("after link: partner %+v licence %+v", st.Partner, st.Licence)
	}
	// A link is permanent: another (valid) code is refused by the agent at once.
	other := partnercode.MustParse("9XG0-9YWK-W").String()
	f.Partners[other] = "partner"
	out, err = exec.Command(binary, "partner", "set", other, "--config", cfg).CombinedOutput()
	if exitOf(err) != 1 || !strings.Contains(string(out), "already linked to partner K7QM-4XJD-R") {
		t.Fatalf("second link: exit %d: %s", exitOf(err), out)
	}

	a.signal(syscall.SIGTERM)
	a.exitCode(10 * time.Second)
	out, err = exec.Command(binary, "status", "--socket", a.socket).CombinedOutput()
	if exitOf(err) != 3 || !strings.Contains(string(out), "not running") {
		t.Fatalf("status with the agent stopped: exit %d: %s", exitOf(err), out)
	}
}

func exitOf(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return -1
}

func TestLicenceGraceAndExpiry(t *testing.T) {
	for _, c := range []struct {
		name     string
		notAfter time.Duration
		want     string
		licensed bool
	}{
		{"grace", -time.Hour, "grace", true},
		{"expired", -60 * 24 * time.Hour, "expired", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake(t)
			f.LicenceFor = func(l *licensing.Licence) {
				l.NotAfter = time.Now().Add(c.notAfter)
				l.IssuedAt = l.NotAfter.Add(-24 * time.Hour)
				l.Grace = 30 * 24 * time.Hour
			}
			dir := t.TempDir()
			a := startAgent(t, dir, writeConfig(t, dir, f.URL, f.PubKey, "[heartbeat]\ninterval = \"50ms\"\n"))
			waitFor(t, 10*time.Second, "licence", func() bool { return a.status().Licence.State == c.want })
			st := a.status()
			if st.Licence.Licensed != c.licensed || st.Licence.Error == "" {
				t.Fatalf("licence %+v", st.Licence)
			}
			waitFor(t, 10*time.Second, "heartbeat with licence state", func() bool {
				for _, ar := range f.Arrivals() {
					if ar.Report.LicenceState == c.want {
						return true
					}
				}
				return false
			})
			if !strings.Contains(a.logs.String(), map[string]string{"grace": "grace period", "expired": "unlicensed"}[c.name]) {
				t.Fatalf("not logged:\n%s", a.logs.String())
			}
		})
	}
}
