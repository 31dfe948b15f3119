package registry_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/plugins/channels/webhook"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/store"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

const hookSecret = "partner-hook-secret-0123456789"

// receiver is a webhook endpoint that verifies signatures and records
// what it accepted, answering with the status its mode says.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string

	mu        sync.Mutex
	status    int // answer; 0 means 200
	got       []webhook.Payload
	raw       [][]byte
	seen      map[string]bool // delivery ids
	failures  int
	badSigned int
	notes     []webhook.NotePayload // first delivery of each note
	noteHits  int                   // note POSTs, repeats included
}

func (rc *receiver) gotNotes() ([]webhook.NotePayload, int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.NotePayload(nil), rc.notes...), rc.noteHits
}

func newReceiver(t *testing.T, secret string) *receiver {
	rc := &receiver{t: t, secret: secret, seen: map[string]bool{}}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(rc.secret), r.Header.Get(webhook.HeaderSignature), body, time.Now()); err != nil {
			rc.mu.Lock()
			rc.badSigned++
			rc.mu.Unlock()
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		rc.mu.Lock()
		defer rc.mu.Unlock()
		if rc.status != 0 && rc.status != 200 {
			rc.failures++
			if rc.status == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			http.Error(w, "not now", rc.status)
			return
		}
		id := r.Header.Get(webhook.HeaderDelivery)
		if r.Header.Get(webhook.HeaderEvent) == webhook.EventTicketNote {
			var n webhook.NotePayload
			if err := json.Unmarshal(body, &n); err != nil || n.DeliveryID != id || n.Note.TicketID == "" {
				http.Error(w, fmt.Sprintf("bad note %v", err), 400)
				return
			}
			rc.noteHits++
			if !rc.seen[id] {
				rc.seen[id] = true
				rc.notes = append(rc.notes, n)
			}
			_, _ = w.Write([]byte(`{"id":"C-` + n.Note.ID + `"}`))
			return
		}
		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil || len(p.Ticket.ID) < 6 {
			http.Error(w, fmt.Sprintf("bad ticket %v", err), 400)
			return
		}
		if !rc.seen[id] {
			rc.seen[id] = true
			rc.got = append(rc.got, p)
			rc.raw = append(rc.raw, body)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"HD-` + p.Ticket.ID[:6] + `","url":"https://helpdesk.example/t/` + p.Ticket.ID + `"}`))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) setStatus(s int) { rc.mu.Lock(); rc.status = s; rc.mu.Unlock() }

func (rc *receiver) tickets() []webhook.Payload {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]webhook.Payload(nil), rc.got...)
}

func (rc *receiver) settings() map[string]string {
	return map[string]string{"url": rc.srv.URL + "/hooks/switchboard", "secret": rc.secret, "timeout": "5s"}
}

// senv is a registry served by Server.Run (so the delivery worker runs),
// restartable over the same data directory.
type senv struct {
	t      *testing.T
	data   string
	cfg    registry.Config
	url    string
	admin  *client.Client
	cancel context.CancelFunc
	done   chan error
	st     *boltstore.Store
}

func newSupportEnv(t *testing.T, tweak func(*registry.Config)) *senv {
	t.Helper()
	e := &senv{t: t, data: t.TempDir()}
	e.cfg = registry.DefaultConfig()
	e.cfg.DataDir = e.data
	e.cfg.Listen = "127.0.0.1:0"
	e.cfg.Support.Executable = binary
	e.cfg.Support.RetryMin = registry.Duration(50 * time.Millisecond)
	e.cfg.Support.RetryMax = registry.Duration(300 * time.Millisecond)
	e.cfg.Support.PollInterval = registry.Duration(100 * time.Millisecond)
	e.cfg.Support.PluginSocketDir = shortDir(t)
	if tweak != nil {
		tweak(&e.cfg)
	}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// shortDir is a temporary directory short enough for plugin sockets.
func shortDir(t *testing.T) string {
	d, err := os.MkdirTemp("/tmp", "sbs")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (e *senv) start() {
	e.t.Helper()
	setup, err := registry.Prepare(e.data)
	if err != nil {
		e.t.Fatal(err)
	}
	e.st, err = boltstore.Open(filepath.Join(e.data, registry.StoreFile), boltstore.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	srv, err := registry.New(e.cfg, e.st, setup.Keys, setup.AdminToken, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	e.url = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- srv.Run(ctx, ln) }()
	if e.admin, err = client.New(e.url, setup.AdminToken); err != nil {
		e.t.Fatal(err)
	}
}

func (e *senv) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Error(err)
	}
	if err := e.st.Close(); err != nil {
		e.t.Error(err)
	}
	e.cancel = nil
}

func (e *senv) do(method, path string, body []byte, id string, key ed25519.PrivateKey) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	api.SignRequest(req, body, id, key, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

type sinst struct {
	id  string
	key ed25519.PrivateKey
}

func (e *senv) install(code, host string) sinst {
	e.t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	body := mustJSON(e.t, api.ActivationRequest{PublicKey: k.Public().(ed25519.PublicKey), PartnerCode: code, Facts: api.Facts{Hostname: host}})
	status, raw := e.do("POST", api.PathActivations, body, "", k)
	if status != http.StatusCreated {
		e.t.Fatalf("activate: %d %s", status, raw)
	}
	var ar api.ActivationResponse
	if err := json.Unmarshal(raw, &ar); err != nil {
		e.t.Fatal(err)
	}
	return sinst{id: ar.InstallID, key: k}
}

func newTicketID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "t" + base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(b[:])
}

func (e *senv) open(in sinst, id, subject string) (int, api.TicketResponse, []byte) {
	e.t.Helper()
	body := mustJSON(e.t, api.TicketRequest{ID: id, Subject: subject, Body: "Calls drop after 30 s.\nSince Monday.", Origin: api.OriginCLI,
		OpenedAt: time.Now().UTC(), Diagnostics: json.RawMessage(`{"agent_version":"test","outbox_depth":0}`)})
	status, raw := e.do("POST", api.InstallPath(api.PathTickets, in.id), body, in.id, in.key)
	var tr api.TicketResponse
	if status < 300 {
		if err := json.Unmarshal(raw, &tr); err != nil {
			e.t.Fatal(err)
		}
	}
	return status, tr, raw
}

func (e *senv) partner(tier store.Tier, name string) store.Partner {
	e.t.Helper()
	p, err := e.admin.CreatePartner(context.Background(), adminapi.CreatePartnerRequest{Name: name, Email: "ops@example.com", Tier: tier, Approve: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *senv) setChannel(code, typ string, settings map[string]string) {
	e.t.Helper()
	if _, err := e.admin.SetPartnerChannel(context.Background(), code, adminapi.ChannelRequest{Type: typ, Settings: settings, By: "test"}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *senv) waitTicket(id string, what string, cond func(store.Ticket) bool) store.Ticket {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var t store.Ticket
	var err error
	for time.Now().Before(deadline) {
		t, err = e.admin.GetTicket(context.Background(), id)
		if err == nil && cond(t) {
			return t
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("ticket %s: %s did not happen: %+v (err %v)", id, what, t, err)
	return t
}

func delivered(t store.Ticket) bool { return t.State == store.TicketDelivered }

func TestSupportRoutingDeliveryAndReroute(t *testing.T) {
	vendorRx := newReceiver(t, "vendor-hook-secret-0123456789")
	partnerRx := newReceiver(t, hookSecret)
	e := newSupportEnv(t, func(c *registry.Config) {
		c.Support.Vendor = registry.VendorChannel{Type: "webhook", Settings: vendorRx.settings()}
	})
	p := e.partner(store.TierPartner, "Acme Integrators")
	ref := e.partner(store.TierReferral, "Bob Referral")
	bare := e.partner(store.TierPartner, "No Channel Ltd")
	e.setChannel(p.Code, "webhook", partnerRx.settings())

	cases := []struct {
		name, code, host string
		target           store.TicketTarget
		reason           string
		rx               *receiver
	}{
		{"partner's customer", p.Code, "pbx-partner", store.TargetPartner, "linked partner " + p.Code, partnerRx},
		{"referral's customer", ref.Code, "pbx-referral", store.TargetVendor, "referrals do not give support", vendorRx},
		{"unlinked customer", "", "pbx-alone", store.TargetVendor, "not linked to a partner", vendorRx},
		{"partner without channel", bare.Code, "pbx-bare", store.TargetVendor, "has no support channel", vendorRx},
	}
	ids := map[string]string{}
	for _, c := range cases {
		in := e.install(c.code, c.host)
		id := newTicketID()
		ids[c.name] = id
		status, tr, raw := e.open(in, id, "Help: "+c.name)
		if status != http.StatusCreated {
			t.Fatalf("%s: open: %d %s", c.name, status, raw)
		}
		if !strings.Contains(tr.RouteReason, c.reason) {
			t.Errorf("%s: reason %q, want it to mention %q", c.name, tr.RouteReason, c.reason)
		}
		// Repeating the same ticket (a lost answer) is a duplicate.
		status, tr2, raw := e.open(in, id, "Help: "+c.name)
		if status != http.StatusOK || !tr2.Duplicate {
			t.Fatalf("%s: resend: %d %s", c.name, status, raw)
		}
		st := e.waitTicket(id, "delivery", delivered)
		if st.Route.Target != c.target || st.Receipt == nil || !strings.HasPrefix(st.Receipt.RemoteID, "HD-") {
			t.Errorf("%s: route %+v receipt %+v", c.name, st.Route, st.Receipt)
		}
		if st.Customer != c.host || st.PartnerCode != c.code {
			t.Errorf("%s: customer %q partner %q", c.name, st.Customer, st.PartnerCode)
		}
		// The install sees the state and the receipt, not the settings.
		status, raw = e.do("GET", api.InstallPath(api.PathTickets, in.id), nil, in.id, in.key)
		if status != 200 || !strings.Contains(string(raw), `"delivered"`) || strings.Contains(string(raw), hookSecret) {
			t.Errorf("%s: install's list: %d %s", c.name, status, raw)
		}
	}
	time.Sleep(300 * time.Millisecond) // let any wrong duplicate delivery show
	if n := len(partnerRx.tickets()); n != 1 {
		t.Errorf("partner receiver got %d tickets, want 1", n)
	}
	if n := len(vendorRx.tickets()); n != 3 {
		t.Errorf("vendor receiver got %d tickets, want 3", n)
	}
	got := partnerRx.tickets()[0]
	if got.Ticket.ID != ids["partner's customer"] || got.Ticket.Customer != "pbx-partner" || !strings.Contains(string(got.Ticket.Diagnostics), "outbox_depth") {
		t.Errorf("partner's payload %+v", got)
	}

	// Staff move the unlinked customer's ticket to the partner.
	id := ids["unlinked customer"]
	if _, err := e.admin.RouteTicket(context.Background(), id, adminapi.RouteRequest{To: ref.Code, By: "alice", Why: "test"}); err == nil {
		t.Error("routing to a referral was accepted")
	}
	if _, err := e.admin.RouteTicket(context.Background(), id, adminapi.RouteRequest{To: p.Code, By: "alice"}); err == nil {
		t.Error("routing without a reason was accepted")
	}
	if _, err := e.admin.RouteTicket(context.Background(), id, adminapi.RouteRequest{To: p.Code, By: "alice", Why: "customer is Acme's now"}); err != nil {
		t.Fatal(err)
	}
	st := e.waitTicket(id, "re-delivery to the partner", func(t store.Ticket) bool { return delivered(t) && t.Route.Target == store.TargetPartner })
	if len(st.Routes) != 2 || st.Routes[1].By != "alice" || !strings.Contains(st.Routes[1].Reason, "customer is Acme's now") {
		t.Errorf("routes %+v", st.Routes)
	}
	if n := len(partnerRx.tickets()); n != 2 {
		t.Errorf("partner receiver got %d tickets after the re-route, want 2", n)
	}
	list, err := e.admin.ListTickets(context.Background(), client.TicketQuery{Partner: p.Code})
	if err != nil || len(list) != 2 {
		t.Errorf("tickets routed to the partner: %d, %v", len(list), err)
	}
	// The staff view of the channel hides the secret.
	v, err := e.admin.GetPartnerChannel(context.Background(), p.Code)
	if err != nil || v.Settings["secret"] == hookSecret || v.Settings["url"] == "" {
		t.Errorf("channel view %+v %v", v, err)
	}
}

func TestSupportFallbackAfterPartnerFailures(t *testing.T) {
	vendorRx := newReceiver(t, "vendor-hook-secret-0123456789")
	failing := newReceiver(t, hookSecret)
	refusing := newReceiver(t, hookSecret)
	failing.setStatus(http.StatusServiceUnavailable)
	refusing.setStatus(http.StatusNotFound)
	e := newSupportEnv(t, func(c *registry.Config) {
		c.Support.Vendor = registry.VendorChannel{Type: "webhook", Settings: vendorRx.settings()}
		c.Support.GiveUpAfter = registry.Duration(1500 * time.Millisecond)
	})
	p1 := e.partner(store.TierPartner, "Flaky Partner")
	p2 := e.partner(store.TierPartner, "Gone Partner")
	e.setChannel(p1.Code, "webhook", failing.settings())
	e.setChannel(p2.Code, "webhook", refusing.settings())

	id1, id2 := newTicketID(), newTicketID()
	e.open(e.install(p1.Code, "pbx-1"), id1, "flaky")
	e.open(e.install(p2.Code, "pbx-2"), id2, "refused")

	// 503s: retried with backoff, then the vendor queue after give_up_after.
	st := e.waitTicket(id1, "retrying", func(t store.Ticket) bool { return t.State == store.TicketRetrying && t.AttemptCount >= 2 })
	if !strings.Contains(st.LastError, "503") || st.NextAttemptAt.IsZero() {
		t.Errorf("retrying ticket: %+v", st)
	}
	st = e.waitTicket(id1, "fallback delivery", delivered)
	if st.Route.Target != store.TargetVendor || !st.Route.Fallback || !strings.Contains(st.Route.Reason, "failed for") {
		t.Errorf("fallback route %+v", st.Route)
	}
	if st.AttemptCount < 3 || st.Attempts[0].OK || !st.Attempts[len(st.Attempts)-1].OK {
		t.Errorf("attempts %+v", st.Attempts)
	}
	// A 404 is permanent: straight to the vendor, no waiting.
	st = e.waitTicket(id2, "fallback delivery", delivered)
	if !st.Route.Fallback || !strings.Contains(st.Route.Reason, "refused the ticket") || st.AttemptCount != 2 {
		t.Errorf("permanent failure: route %+v attempts %d", st.Route, st.AttemptCount)
	}
	if n := len(vendorRx.tickets()); n != 2 {
		t.Errorf("vendor got %d tickets, want 2", n)
	}
}

func TestSupportResumesAfterRestartMidRetry(t *testing.T) {
	rx := newReceiver(t, hookSecret)
	rx.setStatus(http.StatusBadGateway)
	e := newSupportEnv(t, func(c *registry.Config) {
		c.Support.GiveUpAfter = registry.Duration(time.Hour)
	})
	p := e.partner(store.TierPartner, "Restart Partner")
	e.setChannel(p.Code, "webhook", rx.settings())
	in := e.install(p.Code, "pbx-r")
	id := newTicketID()
	e.open(in, id, "restart")
	e.waitTicket(id, "a failed attempt", func(t store.Ticket) bool { return t.State == store.TicketRetrying })
	e.stop()
	rx.setStatus(200)
	e.start()
	st := e.waitTicket(id, "delivery after the restart", delivered)
	if st.Route.Target != store.TargetPartner || len(rx.tickets()) != 1 {
		t.Errorf("route %+v, partner got %d", st.Route, len(rx.tickets()))
	}
}

func TestSupportHeldWithoutVendorChannelAndBadSettings(t *testing.T) {
	e := newSupportEnv(t, nil)
	p := e.partner(store.TierPartner, "Settings Partner")
	_, err := e.admin.SetPartnerChannel(context.Background(), p.Code, adminapi.ChannelRequest{Type: "webhook", Settings: map[string]string{"url": "http://example.com/x"}})
	if err == nil || !strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "https") {
		t.Errorf("bad webhook settings: %v", err)
	}
	if _, err := e.admin.SetPartnerChannel(context.Background(), p.Code, adminapi.ChannelRequest{Type: "carrier-pigeon"}); err == nil {
		t.Error("unknown channel type accepted")
	}
	ref := e.partner(store.TierReferral, "Ref")
	if _, err := e.admin.SetPartnerChannel(context.Background(), ref.Code, adminapi.ChannelRequest{Type: "webhook"}); err == nil || !strings.Contains(err.Error(), "referral") {
		t.Errorf("channel for a referral: %v", err)
	}
	id := newTicketID()
	status, tr, raw := e.open(e.install("", "pbx-h"), id, "no vendor channel")
	if status != http.StatusCreated || tr.State != api.TicketHeld {
		t.Fatalf("open: %d %s", status, raw)
	}
	ss, err := e.admin.SupportStatus(context.Background())
	if err != nil || ss.ByState["held"] != 1 || len(ss.ChannelTypes) < 3 {
		t.Errorf("support status %+v %v", ss, err)
	}
	// A ticket id taken by another install is refused.
	status, _, raw = e.open(e.install("", "pbx-other"), id, "same id")
	if status != http.StatusConflict {
		t.Errorf("other install reusing a ticket id: %d %s", status, raw)
	}
}

// TestSupportFourthChannelNeedsNoRoutingCode builds a channel plugin that
// switchboard does not know, names it in the config, and routes to it.
func TestSupportFourthChannelNeedsNoRoutingCode(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "switchboard-plugin-filedrop")
	build := exec.Command("go", "build", "-o", bin, "github.com/switchboard-dev/switchboard/plugins/channels/internal/filedrop")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build filedrop: %v\n%s", err, out)
	}
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	drop := t.TempDir()
	e := newSupportEnv(t, func(c *registry.Config) {
		c.Support.ChannelTypes = map[string]registry.ChannelType{"filedrop": {Path: bin, SHA256: sum}}
	})
	p := e.partner(store.TierPartner, "File Partner")
	e.setChannel(p.Code, "filedrop", map[string]string{"dir": drop})
	id := newTicketID()
	e.open(e.install(p.Code, "pbx-f"), id, "via a fourth channel")
	st := e.waitTicket(id, "delivery", delivered)
	if st.Route.Channel != "filedrop" || st.Receipt.RemoteID != "file:"+id {
		t.Errorf("route %+v receipt %+v", st.Route, st.Receipt)
	}
	data, err := os.ReadFile(filepath.Join(drop, id+".json"))
	if err != nil || !strings.Contains(string(data), "via a fourth channel") {
		t.Errorf("dropped file: %v %s", err, data)
	}
}

func TestDecodeTicketRefusesBadInput(t *testing.T) {
	ok := api.TicketRequest{ID: newTicketID(), Subject: "s", OpenedAt: time.Now()}
	for name, mut := range map[string]func(*api.TicketRequest){
		"bad id":           func(r *api.TicketRequest) { r.ID = "x" },
		"empty subject":    func(r *api.TicketRequest) { r.Subject = "  " },
		"long subject":     func(r *api.TicketRequest) { r.Subject = strings.Repeat("a", 201) },
		"control":          func(r *api.TicketRequest) { r.Body = "a\x00b" },
		"origin":           func(r *api.TicketRequest) { r.Origin = "fax" },
		"no time":          func(r *api.TicketRequest) { r.OpenedAt = time.Time{} },
		"diagnostics list": func(r *api.TicketRequest) { r.Diagnostics = json.RawMessage(`[1]`) },
	} {
		r := ok
		mut(&r)
		b, _ := json.Marshal(r)
		if _, err := registry.DecodeTicket(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	b, _ := json.Marshal(ok)
	if _, err := registry.DecodeTicket(b); err != nil {
		t.Errorf("good ticket refused: %v", err)
	}
}
