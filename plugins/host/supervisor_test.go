package host

import (
	"context"
	"crypto/tls"
	"errors"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/internal/testplugin"
	pluginpb "github.com/switchboard-dev/switchboard/plugins/proto"
)

func describePID(t *testing.T, in plugins.Integration) int {
	t.Helper()
	f, err := in.Describe(context.Background())
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	pid, err := strconv.Atoi(f.Details["pid"])
	if err != nil {
		t.Fatalf("describe has no pid: %+v", f)
	}
	return pid
}

func TestHandshakeAndCalls(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	s := start(t, fx.entry, fastOptions(t))
	st := waitFor(t, s, "healthy", 15*time.Second, healthy)
	if st.PID == 0 || st.Plugin == nil || st.Plugin.State != "connected" || st.Restarts != 0 {
		t.Fatalf("status %+v", st)
	}
	in, err := s.Integration()
	if err != nil {
		t.Fatal(err)
	}
	f, err := in.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f.Product != "testproduct" || f.Seats[plugins.SeatPBXEndpoints] != 7 ||
		f.Details["pid"] != strconv.Itoa(st.PID) || f.Details["setting.greeting"] != "hello" {
		t.Fatalf("facts %+v (status pid %d)", f, st.PID)
	}
	r, err := in.ApplyPartnerLink(context.Background(), "K7QX-3MPA", "partner")
	if err != nil || !r.Applied {
		t.Fatalf("apply link: %+v %v", r, err)
	}
	if _, err := s.SupportChannel(); err == nil {
		t.Fatal("an integration plugin handed out as a support channel")
	}
}

func TestSupportChannelDeliver(t *testing.T) {
	fx := newFixture(t, plugins.KindSupportChannel)
	s := start(t, fx.entry, fastOptions(t))
	waitFor(t, s, "healthy", 15*time.Second, healthy)
	ch, err := s.SupportChannel()
	if err != nil {
		t.Fatal(err)
	}
	tk := plugins.Ticket{ID: "42", DeliveryID: "d-1", Subject: "no dial tone", Diagnostics: []byte(`{"a":1}`), CreatedAt: time.Now()}
	rc, err := ch.Deliver(context.Background(), tk)
	if err != nil || rc.RemoteID != "T-42" || !strings.Contains(rc.Detail, "7 bytes") {
		t.Fatalf("receipt %+v, %v", rc, err)
	}
	fx.setMode(testplugin.ModeGarbage)
	if _, err := ch.Deliver(context.Background(), tk); !errors.Is(err, plugins.ErrInvalidAnswer) {
		t.Fatalf("a javascript: receipt URL was accepted: %v", err)
	}
}

// TestAutoMTLS proves the plugin's socket only talks to the host that
// started it: a plain or certificate-less client is rejected.
func TestAutoMTLS(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	s := start(t, fx.entry, fastOptions(t))
	waitFor(t, s, "healthy", 15*time.Second, healthy)
	inst, err := s.current()
	if err != nil {
		t.Fatal(err)
	}
	addr := inst.client.ReattachConfig().Addr
	target := "unix://" + addr.String()
	for name, creds := range map[string]grpc.DialOption{
		"plaintext":      grpc.WithTransportCredentials(insecure.NewCredentials()),
		"tls no cert":    grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: true})),
		"tls wrong name": grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{ServerName: "localhost"})),
	} {
		conn, err := grpc.NewClient(target, creds)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = pluginpb.NewIntegrationClient(conn).Describe(ctx, &pluginpb.DescribeRequest{})
		cancel()
		conn.Close()
		if err == nil {
			t.Errorf("%s: a client without the host's certificate got an answer", name)
		}
	}
}

func TestOldAndNewProtocolRefused(t *testing.T) {
	for _, c := range []struct {
		speaks int
		want   []string
	}{
		{plugins.ProtocolVersion - 1, []string{"speaks plugin protocol 0", "needs protocol 1", "install switchboard-plugin-testplugin built for protocol 1", "switchboard ≥"}},
		{plugins.ProtocolVersion + 1, []string{"speaks plugin protocol 2", "upgrade switchboard", "install switchboard-plugin-testplugin built for protocol 1"}},
	} {
		t.Run("protocol "+strconv.Itoa(c.speaks), func(t *testing.T) {
			fx := newFixture(t, plugins.KindIntegration, "-protocol", strconv.Itoa(c.speaks))
			s := start(t, fx.entry, fastOptions(t))
			st := waitFor(t, s, "refused", 15*time.Second, func(st Status) bool { return st.State == StateRefused })
			for _, w := range c.want {
				if !strings.Contains(st.Reason, w) {
					t.Errorf("reason %q lacks %q", st.Reason, w)
				}
			}
			in, _ := s.Integration()
			_, err := in.Describe(context.Background())
			var nr *NotRunningError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), "refused") {
				t.Fatalf("call on a refused plugin: %v", err)
			}
		})
	}
}

func TestChecksumMismatchRefused(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	e := fx.entry
	e.SHA256 = strings.Repeat("ab", 32)
	s := start(t, e, fastOptions(t))
	st := waitFor(t, s, "refused", 15*time.Second, func(st Status) bool { return st.State == StateRefused })
	for _, w := range []string{"checksum mismatch", e.SHA256, testPluginSum, testPluginPath, "re-run the installer or update the manifest"} {
		if !strings.Contains(st.Reason, w) {
			t.Errorf("reason %q lacks %q", st.Reason, w)
		}
	}
	if st.PID != 0 {
		t.Fatalf("a refused plugin has a pid: %+v", st)
	}
	// Fixing the manifest brings it up.
	changed, err := s.UpdateEntry(fx.entry)
	if err != nil || !changed {
		t.Fatalf("update entry: %v %v", changed, err)
	}
	waitFor(t, s, "healthy after fixing the checksum", 15*time.Second, healthy)
}

func TestMissingBinaryAndWrongKindRefused(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	e := fx.entry
	e.Path = "/nonexistent/switchboard-plugin-x"
	s := start(t, e, fastOptions(t))
	st := waitFor(t, s, "refused", 10*time.Second, func(st Status) bool { return st.State == StateRefused })
	if !strings.Contains(st.Reason, "/nonexistent/switchboard-plugin-x") || !strings.Contains(st.Reason, "re-run the installer") {
		t.Errorf("missing binary reason: %q", st.Reason)
	}

	// The binary serves integration; the manifest says support_channel.
	wrong := fx.entry
	wrong.Kind = plugins.KindSupportChannel
	s2 := start(t, wrong, fastOptions(t))
	st = waitFor(t, s2, "refused", 15*time.Second, func(st Status) bool { return st.State == StateRefused })
	if !strings.Contains(st.Reason, "does not serve the support_channel contract") {
		t.Errorf("wrong kind reason: %q", st.Reason)
	}
}

func TestRejectedSettingsRefusedUntilUpdate(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	fx.setMode(testplugin.ModeRejectSettings)
	s := start(t, fx.entry, fastOptions(t))
	st := waitFor(t, s, "refused", 15*time.Second, func(st Status) bool { return st.State == StateRefused })
	if !strings.Contains(st.Reason, `rejected its settings: setting "url" is required`) {
		t.Fatalf("reason %q", st.Reason)
	}
	fx.setMode(testpluginOK)
	if !s.Update(map[string]string{"url": "http://127.0.0.1:1"}) {
		t.Fatal("Update with new settings reported no change")
	}
	waitFor(t, s, "healthy after new settings", 15*time.Second, healthy)
}

func TestUpdateRestartsOnlyOnChange(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	s := start(t, fx.entry, fastOptions(t))
	st := waitFor(t, s, "healthy", 15*time.Second, healthy)
	if s.Update(map[string]string{"greeting": "hello"}) {
		t.Fatal("equal settings restarted the plugin")
	}
	time.Sleep(300 * time.Millisecond)
	if now := s.Status(); now.PID != st.PID || now.Restarts != 0 {
		t.Fatalf("plugin restarted on equal settings: %+v", now)
	}
	if !s.Update(map[string]string{"greeting": "bonjour"}) {
		t.Fatal("changed settings did not restart")
	}
	after := waitFor(t, s, "restarted with new settings", 15*time.Second, func(n Status) bool {
		return healthy(n) && n.PID != st.PID
	})
	if after.Restarts != 1 {
		t.Errorf("restarts %d, want 1", after.Restarts)
	}
	if _, alive := procState(st.PID); alive {
		t.Errorf("old plugin process %d still exists (not killed or not reaped)", st.PID)
	}
	in, _ := s.Integration()
	f, err := in.Describe(context.Background())
	if err != nil || f.Details["setting.greeting"] != "bonjour" {
		t.Fatalf("new settings not applied: %+v %v", f, err)
	}
}

// TestCrashRestartsWithBackoff: a plugin that keeps crashing is restarted
// with growing, capped delays; when it stops crashing it comes back and the
// status shows the outage.
func TestCrashRestartsWithBackoff(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	opts := fastOptions(t)
	var mu sync.Mutex
	var delays []time.Duration
	var reasons []string
	opts.OnChange = func(st Status) {
		if st.State == StateRestarting {
			mu.Lock()
			delays = append(delays, st.RetryAt.Sub(st.Since))
			reasons = append(reasons, st.Reason)
			mu.Unlock()
		}
	}
	s := start(t, fx.entry, opts)
	first := waitFor(t, s, "healthy", 15*time.Second, healthy)

	fx.setMode(testplugin.ModeCrash)
	in, _ := s.Integration()
	if _, err := in.Describe(context.Background()); err == nil {
		t.Fatal("describe on a crashing plugin succeeded")
	}
	waitFor(t, s, "five failed restarts", 30*time.Second, func(st Status) bool { return st.Restarts >= 5 })
	mu.Lock()
	got := append([]time.Duration(nil), delays...)
	why := reasons[0]
	mu.Unlock()
	if !strings.Contains(why, "crashed") || !strings.Contains(why, "exit status 3") {
		t.Errorf("first restart reason %q should say it crashed with exit status 3", why)
	}
	if got[1] <= got[0] || got[2] <= got[1] {
		t.Errorf("backoff does not grow: %v", got)
	}
	for _, d := range got {
		if d > opts.BackoffMax {
			t.Errorf("delay %s above the cap %s: %v", d, opts.BackoffMax, got)
		}
	}
	if down := s.Status(); down.LastOutage == nil || !down.LastOutage.End.IsZero() {
		t.Fatalf("outage not open while down: %+v", down.LastOutage)
	}

	fx.setMode(testpluginOK)
	back := waitFor(t, s, "healthy again", 15*time.Second, func(st Status) bool { return healthy(st) && st.PID != first.PID })
	o := back.LastOutage
	if o == nil || o.End.IsZero() || !o.End.After(o.Start) || !strings.Contains(o.Reason, "crashed") {
		t.Fatalf("outage not recorded: %+v", o)
	}
	if _, alive := procState(first.PID); alive {
		t.Errorf("crashed process %d not reaped", first.PID)
	}
}

// TestHangDeadlineAndRestart: a hung plugin does not hold a caller past the
// per-call deadline, and is found, killed and restarted.
func TestHangDeadlineAndRestart(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	opts := fastOptions(t)
	opts.CallTimeout = 300 * time.Millisecond
	opts.HealthInterval = time.Hour // only the failed call can trigger the check
	opts.HealthTimeout = 300 * time.Millisecond
	s := start(t, fx.entry, opts)
	first := waitFor(t, s, "healthy", 15*time.Second, healthy)

	fx.setMode(testplugin.ModeHang)
	in, _ := s.Integration()
	began := time.Now()
	_, err := in.Describe(context.Background())
	waited := time.Since(began)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("describe on a hung plugin: %v", err)
	}
	if waited > 3*time.Second {
		t.Fatalf("caller held %s by a hung plugin (deadline %s)", waited, opts.CallTimeout)
	}
	down := waitFor(t, s, "restart of the hung plugin", 10*time.Second, func(st Status) bool {
		return st.State == StateRestarting || st.Restarts > 0
	})
	if down.LastOutage == nil || !strings.Contains(down.LastOutage.Reason, "hung") {
		t.Fatalf("outage reason should say hung: %+v", down.LastOutage)
	}
	fx.setMode(testpluginOK)
	waitFor(t, s, "healthy after the hang", 15*time.Second, func(st Status) bool { return healthy(st) && st.PID != first.PID })
	waitGone(t, first.PID, 5*time.Second)
}

// TestSIGKILLPluginComesBack: kill -9 of the plugin; it is back within a few
// seconds and the status shows the gap.
func TestSIGKILLPluginComesBack(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	opts := fastOptions(t)
	opts.BackoffInitial = time.Second // the production-like first delay
	s := start(t, fx.entry, opts)
	first := waitFor(t, s, "healthy", 15*time.Second, healthy)
	if err := syscall.Kill(first.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	back := waitFor(t, s, "back after SIGKILL", 5*time.Second, func(st Status) bool { return healthy(st) && st.PID != first.PID })
	t.Logf("back after %s", time.Since(killed).Round(time.Millisecond))
	o := back.LastOutage
	if o == nil || !strings.Contains(o.Reason, "signal: killed") || o.Duration(time.Now()) <= 0 {
		t.Fatalf("outage %+v", o)
	}
	if back.Restarts != 1 {
		t.Errorf("restarts %d, want 1", back.Restarts)
	}
	in, _ := s.Integration()
	if pid := describePID(t, in); pid != back.PID {
		t.Errorf("describe answered from pid %d, status says %d", pid, back.PID)
	}
	waitGone(t, first.PID, 2*time.Second)
}

func TestGarbageHealthMarksUnhealthy(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	s := start(t, fx.entry, fastOptions(t))
	first := waitFor(t, s, "healthy", 15*time.Second, healthy)
	fx.setMode(testplugin.ModeUnhealthy)
	st := waitFor(t, s, "unhealthy", 5*time.Second, func(st Status) bool { return st.State == StateUnhealthy })
	if !strings.Contains(st.Summary(time.Now()), "unhealthy since") || !strings.Contains(st.Reason, "unreachable: test product is down") {
		t.Fatalf("unhealthy status %q", st.Summary(time.Now()))
	}
	fx.setMode(testplugin.ModeGarbage)
	in, _ := s.Integration()
	if _, err := in.Describe(context.Background()); !errors.Is(err, plugins.ErrInvalidAnswer) {
		t.Fatalf("negative seats accepted: %v", err)
	}
	st = waitFor(t, s, "health check failure", 5*time.Second, func(st Status) bool {
		return st.State == StateUnhealthy && strings.Contains(st.Reason, "health check failed")
	})
	if st.PID != first.PID {
		t.Fatalf("a plugin answering badly was restarted (pid %d → %d); it should only be unhealthy", first.PID, st.PID)
	}
}

func TestStopKillsHungPlugin(t *testing.T) {
	fx := newFixture(t, plugins.KindIntegration)
	opts := fastOptions(t)
	opts.HealthInterval = time.Hour
	s, err := NewSupervisor(fx.entry, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	st := waitFor(t, s, "healthy", 15*time.Second, healthy)
	fx.setMode(testplugin.ModeHang)
	began := time.Now()
	stopAndCheck(t, s)
	if d := time.Since(began); d > killGrace+3*time.Second {
		t.Errorf("stop took %s", d)
	}
	if _, alive := procState(st.PID); alive {
		t.Fatalf("pid %d survived Stop", st.PID)
	}
	// Calls after Stop fail cleanly.
	in, _ := s.Integration()
	if _, err := in.Describe(context.Background()); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("call after stop: %v", err)
	}
}

func TestBackoffSchedule(t *testing.T) {
	s, err := NewSupervisor(Entry{Name: "x", Kind: plugins.KindIntegration, Path: "/bin/true", SHA256: strings.Repeat("0", 64)},
		Options{BackoffInitial: time.Second, BackoffMax: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for n, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: 30 * time.Second, 200: 30 * time.Second} {
		for range 50 {
			d := s.backoff(n)
			lo := time.Duration(float64(base) * 0.8)
			hi := min(time.Duration(float64(base)*1.2), 30*time.Second)
			if d < lo || d > hi {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n, d, lo, hi)
			}
		}
	}
}

func waitGone(t *testing.T, pid int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		state, alive := procState(pid)
		if !alive {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d still exists after %s (state %s)", pid, timeout, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestSocketDirTooLong(t *testing.T) {
	e := Entry{Name: "x", Kind: plugins.KindIntegration, Path: "/bin/true", SHA256: strings.Repeat("0", 64)}
	_, err := NewSupervisor(e, Options{SocketDir: "/" + strings.Repeat("d", maxSocketDirLen)})
	if err == nil || !strings.Contains(err.Error(), "choose a shorter one") {
		t.Fatalf("got %v", err)
	}
}
