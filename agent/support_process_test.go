package agent_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/internal/testenv"
	"github.com/switchboard-dev/switchboard/plugins/channels/webhook"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// hookRx is a partner's (or the vendor's) webhook endpoint: it verifies
// every signature and counts every arrival, duplicates included.
type hookRx struct {
	srv    *httptest.Server
	secret string

	mu       sync.Mutex
	failWith int
	arrivals map[string]int // ticket id → POSTs accepted
	bodies   map[string]string
}

func newHookRx(t *testing.T, secret string) *hookRx {
	rx := &hookRx{secret: secret, arrivals: map[string]int{}, bodies: map[string]string{}}
	rx.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		rx.mu.Lock()
		defer rx.mu.Unlock()
		if rx.failWith != 0 {
			http.Error(w, "down for maintenance", rx.failWith)
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		rx.arrivals[p.Ticket.ID]++
		rx.bodies[p.Ticket.ID] = string(body)
		fmt.Fprintf(w, `{"id":"HD-%d"}`, len(rx.arrivals))
	}))
	t.Cleanup(rx.srv.Close)
	return rx
}

func (rx *hookRx) count(id string) int {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return rx.arrivals[id]
}

func (rx *hookRx) body(id string) string {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	return rx.bodies[id]
}

func (rx *hookRx) fail(status int) { rx.mu.Lock(); rx.failWith = status; rx.mu.Unlock() }

// supportRegistry is the real registry binary with a [support] config.
type supportRegistry struct {
	*testenv.Registry
	cfg   string // the --config file
	admin *client.Client
}

// startSupportRegistry runs the registry over data with the config file
// cfg, listening on listen.
func startSupportRegistry(t *testing.T, data, cfg, listen string) *supportRegistry {
	t.Helper()
	r := &supportRegistry{Registry: testenv.StartRegistry(t, binary, data, listen, "--config", cfg), cfg: cfg}
	var err error
	if r.admin, err = client.New(r.URL, r.AdminToken); err != nil {
		t.Fatal(err)
	}
	return r
}

// cli runs the switchboard binary and returns its stdout.
func cli(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("switchboard %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return string(out)
}

// supportAgent is an agent process with secrets in its config.
type supportAgent struct {
	*agentProc
	cfgPath string
	id      string
}

const agentSecret = "ARI-pa55w0rd-never-leaves"

func (r *supportRegistry) agent(t *testing.T, name, link string) *supportAgent {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, dir, r.URL, r.PubKey, fmt.Sprintf(`
[heartbeat]
interval = "1h"
[plugins.asterisk]
ari_url = "http://switchboard:%s@127.0.0.1:8088/ari"
ari_password = %q
`, agentSecret, agentSecret))
	a := &supportAgent{agentProc: startAgent(t, dir, cfg), cfgPath: cfg}
	waitFor(t, 20*time.Second, name+" activation", func() bool { return a.status().Install.Activated })
	a.id = a.status().Install.InstallID
	if link != "" {
		if _, err := localapi.NewClient(a.socket).Link(context.Background(), link); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, name+" link", func() bool { return a.status().Partner.Linked })
	}
	return a
}

func (a *supportAgent) open(t *testing.T, subject string) string {
	t.Helper()
	var ans localapi.OpenTicketAnswer
	out := cli(t, "support", "open", "--config", a.cfgPath, "--output", "json", "--subject", subject,
		"--body", "It broke. My ARI password is "+agentSecret+", and password="+agentSecret)
	if err := json.Unmarshal([]byte(out), &ans); err != nil || ans.ID == "" {
		t.Fatalf("support open: %v %s", err, out)
	}
	return ans.ID
}

func (a *supportAgent) list(t *testing.T) localapi.TicketList {
	t.Helper()
	var l localapi.TicketList
	out := cli(t, "support", "list", "--config", a.cfgPath, "--output", "json")
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("support list: %v %s", err, out)
	}
	return l
}

func ticketIn(l localapi.TicketList, id string) (localapi.TicketInfo, bool) {
	for _, t := range l.Tickets {
		if t.ID == id {
			return t, true
		}
	}
	return localapi.TicketInfo{}, false
}

// TestSupportEndToEnd: agents → registry → webhook receivers, as real
// processes, for a partner's customer, a referral's customer and an
// unlinked customer; the registry down when a ticket is opened; a failing
// partner endpoint; and no secret of the agent anywhere in a ticket.
func TestSupportEndToEnd(t *testing.T) {
	partnerRx := newHookRx(t, "partner-secret-0123456789abcdef")
	vendorRx := newHookRx(t, "vendor-secret-0123456789abcdef")
	base := t.TempDir()
	sockDir, err := os.MkdirTemp("/tmp", "sbe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	regCfg := filepath.Join(base, "registry.toml")
	cfg := fmt.Sprintf(`[support]
retry_min = "100ms"
retry_max = "500ms"
give_up_after = "2s"
poll_interval = "100ms"
plugin_socket_dir = %q
[support.vendor]
type = "webhook"
[support.vendor.settings]
url = %q
secret = "vendor-secret-0123456789abcdef"
`, sockDir, vendorRx.srv.URL+"/vendor")
	if err := os.WriteFile(regCfg, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := startSupportRegistry(t, filepath.Join(base, "registry"), regCfg, "127.0.0.1:0")
	ctx := context.Background()
	partner, err := r.admin.CreatePartner(ctx, adminapi.CreatePartnerRequest{Name: "Acme PBX", Email: "ops@acme.example", Tier: store.TierPartner, Approve: true})
	if err != nil {
		t.Fatal(err)
	}
	referral, err := r.admin.CreatePartner(ctx, adminapi.CreatePartnerRequest{Name: "Jo Referral", Email: "jo@example.org", Tier: store.TierReferral})
	if err != nil {
		t.Fatal(err)
	}
	cli(t, "registry", "partner", "channel", "set", partner.Code, "--registry", r.URL, "--data", r.Data,
		"--type", "webhook", "--setting", "url="+partnerRx.srv.URL+"/hooks", "--setting", "secret=partner-secret-0123456789abcdef")

	customers := []struct {
		name, link, to string
		rx             *hookRx
	}{
		{"partner-customer", partner.Code, "partner " + partner.Code, partnerRx},
		{"referral-customer", referral.Code, "vendor", vendorRx},
		{"unlinked-customer", "", "vendor", vendorRx},
	}
	agents := map[string]*supportAgent{}
	for _, c := range customers {
		a := r.agent(t, c.name, c.link)
		agents[c.name] = a
		// The dry run shows the ticket and sends nothing, and shows no secret.
		dry := cli(t, "support", "open", "--config", a.cfgPath, "--subject", "dry", "--body", "pw "+agentSecret, "--dry-run")
		if strings.Contains(dry, agentSecret) || !strings.Contains(dry, "install_id") || !strings.Contains(dry, "nothing was queued") {
			t.Errorf("%s: dry run:\n%s", c.name, dry)
		}
		id := a.open(t, "Calls drop ("+c.name+")")
		waitFor(t, 30*time.Second, c.name+" delivery", func() bool { return c.rx.count(id) == 1 })
		body := c.rx.body(id)
		if strings.Contains(body, agentSecret) {
			t.Errorf("%s: a secret reached the receiver: %s", c.name, body)
		}
		key, err := os.ReadFile(filepath.Join(a.dir, "state", "install.key"))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(key), "\n") {
			if len(line) > 8 && !strings.HasPrefix(line, "-----") && strings.Contains(body, line) {
				t.Errorf("%s: install key material reached the receiver", c.name)
			}
		}
		if !strings.Contains(body, a.id) || !strings.Contains(body, `"diagnostics"`) {
			t.Errorf("%s: payload lacks the install id or diagnostics: %s", c.name, body)
		}
		// The receiver has the ticket before the registry has stored the
		// channel's receipt: wait for the registry to report it delivered.
		var l localapi.TicketList
		var ti localapi.TicketInfo
		var ok bool
		delivered := func() bool {
			l = a.list(t)
			ti, ok = ticketIn(l, id)
			return ok && ti.Registry != nil && ti.Registry.State == api.TicketDelivered
		}
		if waitUntil(15*time.Second, delivered); !ok || ti.Registry == nil || ti.Registry.State != api.TicketDelivered || ti.Registry.RoutedTo != c.to {
			t.Errorf("%s: support list shows %+v (refreshed %v %s)", c.name, ti.Registry, l.Refreshed, l.RefreshError)
		}
	}
	partnerRx.mu.Lock()
	n := len(partnerRx.arrivals)
	partnerRx.mu.Unlock()
	if n != 1 {
		t.Errorf("partner got %d tickets, want 1 (its own customer's)", n)
	}

	// Registry down while a ticket is opened: it waits in the outbox and
	// arrives once after the registry is back.
	a := agents["unlinked-customer"]
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	id := a.open(t, "Opened while the registry is down")
	l := a.list(t)
	if ti, ok := ticketIn(l, id); !ok || ti.Local != "waiting" || l.RefreshError == "" {
		t.Errorf("ticket opened offline: %+v refresh error %q", ti, l.RefreshError)
	}
	time.Sleep(500 * time.Millisecond)
	r = startSupportRegistry(t, r.Data, r.cfg, r.Addr)
	waitFor(t, 30*time.Second, "delivery after the registry returned", func() bool { return vendorRx.count(id) >= 1 })
	time.Sleep(time.Second)
	if n := vendorRx.count(id); n != 1 {
		t.Errorf("ticket opened offline arrived %d times", n)
	}

	// The partner's endpoint fails: retries, then the vendor queue.
	partnerRx.fail(http.StatusServiceUnavailable)
	pa := agents["partner-customer"]
	id = pa.open(t, "Partner endpoint down")
	waitFor(t, 40*time.Second, "fallback delivery to the vendor", func() bool { return vendorRx.count(id) == 1 })
	st, err := r.admin.GetTicket(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Route.Fallback || st.Route.Target != store.TargetVendor || st.AttemptCount < 3 || len(st.Routes) != 2 {
		t.Errorf("fallback ticket: route %+v attempts %d routes %d", st.Route, st.AttemptCount, len(st.Routes))
	}
	waitFor(t, 10*time.Second, "support list shows the fallback", func() bool {
		ti, ok := ticketIn(pa.list(t), id)
		return ok && ti.Registry != nil && ti.Registry.RoutedTo == "vendor" && strings.Contains(ti.Registry.RouteReason, "failed")
	})
	show := cli(t, "registry", "support", "show", id, "--registry", r.URL, "--data", r.Data)
	if !strings.Contains(show, "(fallback)") || !strings.Contains(show, "503") {
		t.Errorf("registry support show:\n%s", show)
	}
	if strings.Contains(show, agentSecret) {
		t.Errorf("a secret is stored in the registry:\n%s", show)
	}
}

// waitUntil polls cond until it holds or timeout passes; the caller
// asserts on what cond left behind.
func waitUntil(timeout time.Duration, cond func() bool) {
	for deadline := time.Now().Add(timeout); !cond() && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
}
