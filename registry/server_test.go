package registry_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchboard-dev/switchboard/internal/testenv/registrytest"
	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// clock is an injectable registry clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t     *testing.T
	url   string
	srv   *registry.Server
	admin *client.Client
	clock *clock
	data  string
}

func newEnv(t *testing.T, tweak func(*registry.Config)) *env {
	t.Helper()
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	srv := registrytest.Start(t, func(cfg *registry.Config) {
		cfg.Now = clk.Now
		cfg.HeartbeatInterval = registry.Duration(time.Hour)
		cfg.StaleAfter = registry.Duration(3 * time.Hour)
		cfg.DeadAfter = registry.Duration(48 * time.Hour)
		if tweak != nil {
			tweak(cfg)
		}
	})
	admin, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, url: srv.URL, srv: srv.Registry, admin: admin, clock: clk, data: srv.Data}
}

// inst is a simulated install.
type inst struct {
	e   *env
	id  string
	key ed25519.PrivateKey
}

func (e *env) newKey() ed25519.PrivateKey {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// do sends a signed request and returns status and body.
func (e *env) do(method, path string, body []byte, installID string, key ed25519.PrivateKey) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != nil {
		api.SignRequest(req, body, installID, key, e.clock.Now())
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (e *env) activate(key ed25519.PrivateKey, code string, host string) (int, api.ActivationResponse, []byte) {
	e.t.Helper()
	body := mustJSON(e.t, api.ActivationRequest{PublicKey: key.Public().(ed25519.PublicKey), PartnerCode: code,
		Facts: api.Facts{Hostname: host, MachineID: "m-" + host, Products: []api.Product{{Name: "asterisk", Version: "20"}, {Name: "Odoo Enterprise"}}}})
	status, raw := e.do("POST", api.PathActivations, body, "", key)
	var ar api.ActivationResponse
	if status < 300 {
		if err := json.Unmarshal(raw, &ar); err != nil {
			e.t.Fatalf("activation answer %s: %v", raw, err)
		}
	}
	return status, ar, raw
}

func (e *env) newInstall(code string) *inst {
	e.t.Helper()
	k := e.newKey()
	status, ar, raw := e.activate(k, code, "pbx1")
	if status != http.StatusCreated {
		e.t.Fatalf("activate: %d %s", status, raw)
	}
	return &inst{e: e, id: ar.InstallID, key: k}
}

func report(seq uint64, host string, at time.Time) api.Report {
	return api.Report{Seq: seq, Kind: api.KindHeartbeat, At: at, Facts: &api.Facts{Hostname: host, MachineID: "m-" + host}, Seats: map[string]int64{"pbx_endpoints": 10}}
}

func (in *inst) send(reports ...api.Report) (int, api.ReportBatchResponse, []byte) {
	in.e.t.Helper()
	body := mustJSON(in.e.t, api.ReportBatch{Reports: reports})
	status, raw := in.e.do("POST", api.InstallPath(api.PathReports, in.id), body, in.id, in.key)
	var br api.ReportBatchResponse
	if status == 200 {
		if err := json.Unmarshal(raw, &br); err != nil {
			in.e.t.Fatal(err)
		}
	}
	return status, br, raw
}

func errCode(t *testing.T, raw []byte) string {
	t.Helper()
	var eb api.ErrorBody
	if err := json.Unmarshal(raw, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
		t.Fatalf("not an error body: %s", raw)
	}
	return eb.Error.Code
}

func (e *env) partner(tier store.Tier, approve bool) store.Partner {
	e.t.Helper()
	p, err := e.admin.CreatePartner(context.Background(), adminapi.CreatePartnerRequest{Name: "Acme " + string(tier), Email: "ops@acme.example", Tier: tier, Approve: approve})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, nil)
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	documented := map[string]bool{}
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
				documented[strings.ToUpper(method)+" "+path] = true
			}
		}
	}
	served := map[string]bool{}
	for _, r := range e.srv.Routes() {
		served[r.Method+" "+r.Path] = true
		if !documented[r.Method+" "+r.Path] {
			t.Errorf("route %s %s is served but not in openapi.yaml", r.Method, r.Path)
		}
	}
	for k := range documented {
		if !served[k] {
			t.Errorf("openapi.yaml documents %s but the server does not serve it", k)
		}
	}
}

func TestActivationLicenceAndIdempotence(t *testing.T) {
	e := newEnv(t, nil)
	p := e.partner(store.TierPartner, true)
	k := e.newKey()
	status, ar, raw := e.activate(k, strings.ToLower(strings.ReplaceAll(p.Code, "-", " ")), "pbx1")
	if status != http.StatusCreated {
		t.Fatalf("activate: %d %s", status, raw)
	}
	if ar.Partner == nil || ar.Partner.Code != p.Code || ar.Partner.Tier != "partner" || ar.Partner.Name == "" {
		t.Fatalf("partner ref %+v", ar.Partner)
	}
	keys, err := e.admin.Keys(context.Background())
	if err != nil || len(keys.Keys) != 1 || !keys.Keys[0].Current {
		t.Fatalf("keys %+v %v", keys, err)
	}
	ring := licensing.NewKeyring(licensing.PublicKey{ID: keys.Keys[0].ID, Key: keys.Keys[0].PublicKey})
	lic, st, err := ring.Verify([]byte(ar.Licence), ar.InstallID, e.clock.Now())
	if err != nil || st != licensing.StatusValid || lic.PartnerCode != p.Code || lic.Tier != licensing.TierPartner {
		t.Fatalf("licence %+v %s %v", lic, st, err)
	}
	// The agent replays the activation: same install, 200.
	status, ar2, _ := e.activate(k, p.Code, "pbx1")
	if status != http.StatusOK || ar2.InstallID != ar.InstallID {
		t.Fatalf("replayed activation: %d %s vs %s", status, ar2.InstallID, ar.InstallID)
	}
}

func TestSuspendedPartnerActivatesUnlinked(t *testing.T) {
	e := newEnv(t, nil)
	p := e.partner(store.TierPartner, true)
	if _, err := e.admin.SuspendPartner(context.Background(), p.Code, "fraud check"); err != nil {
		t.Fatal(err)
	}
	status, ar, raw := e.activate(e.newKey(), p.Code, "pbx1")
	if status != http.StatusCreated || ar.Partner != nil || !strings.Contains(ar.LinkNote, "suspended") {
		t.Fatalf("activate with suspended code: %d %s", status, raw)
	}
}

func TestErrorStatuses(t *testing.T) {
	e := newEnv(t, func(c *registry.Config) {
		c.MaxBodyBytes = 4096
		c.SignupBurst = 2
	})
	ctx := context.Background()
	in := e.newInstall("")
	now := e.clock.Now()
	check := func(name string, status int, raw []byte, wantStatus int, wantCode string) {
		t.Helper()
		if status != wantStatus {
			t.Errorf("%s: status %d, want %d (%s)", name, status, wantStatus, raw)
			return
		}
		if c := errCode(t, raw); c != wantCode {
			t.Errorf("%s: code %s, want %s", name, c, wantCode)
		}
	}

	body := mustJSON(t, api.ReportBatch{Reports: []api.Report{report(1, "pbx1", now)}})
	path := api.InstallPath(api.PathReports, in.id)
	st, raw := e.do("POST", path, body, in.id, e.newKey())
	check("wrong key", st, raw, 401, api.CodeBadSignature)
	st, raw = e.do("POST", path, body, "", nil)
	check("unsigned", st, raw, 401, api.CodeBadSignature)
	other := e.newInstall("")
	st, raw = e.do("POST", path, body, other.id, other.key)
	check("signed by another install", st, raw, 401, api.CodeBadSignature)

	ghost := "i" + strings.Repeat("a", 26)
	st, raw = e.do("POST", api.InstallPath(api.PathReports, ghost), body, ghost, in.key)
	check("unknown install", st, raw, 404, api.CodeUnknownInstall)

	st, raw = e.do("POST", path, []byte(`{"reports":[{"seq":0}]}`), in.id, in.key)
	check("malformed", st, raw, 400, api.CodeMalformed)
	st, raw = e.do("POST", path, []byte(`not json`), in.id, in.key)
	check("not json", st, raw, 400, api.CodeMalformed)

	big := mustJSON(t, api.ReportBatch{Reports: []api.Report{{Seq: 1, Kind: api.KindHeartbeat, At: now, LicenceState: strings.Repeat("x", 5000)}}})
	st, raw = e.do("POST", path, big, in.id, in.key)
	check("too large", st, raw, 413, api.CodeTooLarge)

	st, raw, _ = func() (int, []byte, error) { s, _, r := e.activate(e.newKey(), "K7QM-4XJD-R", "x"); return s, r, nil }()
	check("unknown partner code", st, raw, 422, api.CodeUnknownPartnerCode)
	if !strings.Contains(string(raw), "K7QM-4XJD-R") {
		t.Errorf("422 does not name the code: %s", raw)
	}
	st, raw, _ = func() (int, []byte, error) { s, _, r := e.activate(e.newKey(), "K7QM-4XJD-X", "x"); return s, r, nil }()
	check("mistyped partner code", st, raw, 422, api.CodeUnknownPartnerCode)

	// Linked elsewhere: 409.
	p1, p2 := e.partner(store.TierPartner, true), e.partner(store.TierReferral, false)
	link := func(code string) (int, []byte) {
		b := mustJSON(t, api.LinkRequest{Seq: 2, PartnerCode: code})
		return e.do("POST", api.InstallPath(api.PathLink, in.id), b, in.id, in.key)
	}
	if st, raw := link(p1.Code); st != 200 {
		t.Fatalf("link: %d %s", st, raw)
	}
	if st, raw := link(p1.Code); st != 200 {
		t.Fatalf("link again to the same partner: %d %s", st, raw)
	}
	st, raw = link(p2.Code)
	check("linked elsewhere", st, raw, 409, api.CodeAlreadyLinked)

	// Deactivated: 410.
	st, raw = e.do("POST", api.InstallPath(api.PathDeactivate, in.id), []byte(`{"seq":3,"reason":"uninstalled"}`), in.id, in.key)
	if st != 200 {
		t.Fatalf("deactivate: %d %s", st, raw)
	}
	st, raw = e.do("POST", path, body, in.id, in.key)
	check("deactivated", st, raw, 410, api.CodeDeactivated)
	st, raw = e.do("GET", api.InstallPath(api.PathLicence, in.id), nil, in.id, in.key)
	check("deactivated licence", st, raw, 410, api.CodeDeactivated)

	// Admin token.
	bad, _ := client.New(e.url, strings.Repeat("x", 43))
	_, err := bad.ListPartners(ctx, "", "")
	var ae *client.APIError
	if !errors.As(err, &ae) || ae.Status != 401 || ae.Code != api.CodeUnauthorized {
		t.Errorf("wrong admin token: %v", err)
	}
	// Sign-up rate limit per client IP: burst 2.
	pub, _ := client.New(e.url, "")
	for i := range 3 {
		_, err := pub.Signup(ctx, adminapi.SignupRequest{Name: "Jo", Email: "jo@example.org"})
		if i < 2 && err != nil {
			t.Fatalf("signup %d: %v", i, err)
		}
		if i == 2 && (!errors.As(err, &ae) || ae.Status != 429 || ae.Code != api.CodeRateLimited) {
			t.Errorf("third signup: %v", err)
		}
	}
	_, err = e.admin.CreatePartner(ctx, adminapi.CreatePartnerRequest{Name: "X", Email: "not an email", Tier: store.TierPartner})
	if !errors.As(err, &ae) || ae.Status != 422 {
		t.Errorf("bad e-mail: %v", err)
	}
	st, raw = e.do("GET", "/v1/nothing", nil, "", nil)
	check("no route", st, raw, 404, api.CodeNotFound)
}

func TestIdempotentReportsAndCloneFlag(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	in := e.newInstall("")
	now := e.clock.Now()
	st, br, raw := in.send(report(1, "pbx1", now), report(2, "pbx1", now), report(2, "pbx1", now))
	if st != 200 || br.Results[0].Status != api.StatusStored || br.Results[1].Status != api.StatusStored || br.Results[2].Status != api.StatusDuplicate {
		t.Fatalf("first batch: %d %s", st, raw)
	}
	st, br, _ = in.send(report(1, "pbx1", now))
	if st != 200 || br.Results[0].Status != api.StatusDuplicate {
		t.Fatalf("resend: %+v", br)
	}
	// Re-encoded with another time zone: still the same report.
	r := report(1, "pbx1", now.In(time.FixedZone("X", 3600)))
	if _, br, _ = in.send(r); br.Results[0].Status != api.StatusDuplicate {
		t.Fatalf("re-encoded resend: %+v", br)
	}
	d, err := e.admin.GetInstall(ctx, in.id)
	if err != nil || d.ReportCount != 2 || d.Cloned {
		t.Fatalf("after duplicates: count %d cloned %v %v", d.ReportCount, d.Cloned, err)
	}
	// Same seq, other content: stored as a conflicting copy, install flagged.
	if st, br, _ = in.send(report(2, "pbx2", now)); st != 200 || br.Results[0].Status != api.StatusStored {
		t.Fatalf("conflicting seq: %d %+v", st, br)
	}
	d, _ = e.admin.GetInstall(ctx, in.id)
	if !d.Cloned || !strings.Contains(d.CloneReason, "sequence number 2") || d.ConflictCount != 1 || d.ReportCount != 2 {
		t.Fatalf("conflict not flagged: %+v", d.Install)
	}
	// Repeating the conflicting copy is a duplicate, not a new conflict.
	if _, br, _ = in.send(report(2, "pbx2", now)); br.Results[0].Status != api.StatusDuplicate {
		t.Fatalf("repeat conflict: %+v", br)
	}

	// Host alternation on a fresh install: A, B (a move), A again (a clone).
	in2 := e.newInstall("")
	in2.send(report(1, "hostA", now))
	in2.send(report(2, "hostB", now))
	if d, _ := e.admin.GetInstall(ctx, in2.id); d.Cloned {
		t.Fatal("a single host change must not flag a clone")
	}
	in2.send(report(3, "hostA", now))
	d, _ = e.admin.GetInstall(ctx, in2.id)
	if !d.Cloned || !strings.Contains(d.CloneReason, "alternate") || d.ReportCount != 3 {
		t.Fatalf("alternation not flagged: %+v", d.Install)
	}
	list, err := e.admin.ListInstalls(ctx, client.InstallQuery{Cloned: true})
	if err != nil || len(list) != 2 {
		t.Fatalf("cloned list: %d %v", len(list), err)
	}
	seqs, err := e.admin.ReportSeqs(ctx, in2.id)
	if err != nil || len(seqs) != 3 {
		t.Fatalf("seqs %v %v", seqs, err)
	}
}

func TestLivenessTransitions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	in := e.newInstall("")
	statusOf := func() adminapi.Liveness {
		d, err := e.admin.GetInstall(ctx, in.id)
		if err != nil {
			t.Fatal(err)
		}
		return d.Liveness
	}
	count := func(s string) int {
		l, err := e.admin.ListInstalls(ctx, client.InstallQuery{Status: s})
		if err != nil {
			t.Fatal(err)
		}
		return len(l)
	}
	if got := statusOf(); got != adminapi.LivenessActive {
		t.Fatalf("after activation: %s", got)
	}
	e.clock.Add(2 * time.Hour)
	in.send(report(1, "pbx1", e.clock.Now()))
	e.clock.Add(3 * time.Hour) // 3h since the heartbeat: still active (≤ stale-after)
	if got := statusOf(); got != adminapi.LivenessActive || count("active") != 1 {
		t.Fatalf("at stale-after: %s", got)
	}
	e.clock.Add(time.Second)
	if got := statusOf(); got != adminapi.LivenessStale || count("stale") != 1 || count("active") != 0 {
		t.Fatalf("after stale-after: %s", got)
	}
	e.clock.Add(45 * time.Hour)
	if got := statusOf(); got != adminapi.LivenessDead || count("dead") != 1 || count("stale") != 0 {
		t.Fatalf("after dead-after: %s", got)
	}
	in.send(report(2, "pbx1", e.clock.Now()))
	d, _ := e.admin.GetInstall(ctx, in.id)
	if d.Liveness != adminapi.LivenessActive || d.FirstSeen.After(d.LastSeen) || !d.LastSeen.Equal(e.clock.Now()) || d.Seats["pbx_endpoints"] != 10 {
		t.Fatalf("after a new heartbeat: %+v", d.InstallView)
	}
}

func TestMoveDirectoryAndSignup(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	p := e.partner(store.TierPartner, false)
	ref := e.partner(store.TierReferral, false)
	dir, err := e.admin.Directory(ctx)
	if err != nil || len(dir.Partners) != 0 {
		t.Fatalf("pending partner listed: %+v %v", dir, err)
	}
	if _, err := e.admin.ApprovePartner(ctx, p.Code, ""); err != nil {
		t.Fatal(err)
	}
	dir, _ = e.admin.Directory(ctx)
	if len(dir.Partners) != 1 || dir.Partners[0].Code != p.Code || dir.Partners[0].Email != "" {
		t.Fatalf("directory %+v", dir)
	}
	in := e.newInstall(ref.Code)
	moved, err := e.admin.MoveInstall(ctx, in.id, adminapi.MoveRequest{PartnerCode: p.Code, By: "staff@vendor", Why: "ticket 4711"})
	if err != nil || moved.PartnerCode != p.Code {
		t.Fatalf("move %v %v", moved.PartnerCode, err)
	}
	d, _ := e.admin.GetInstall(ctx, in.id)
	last := d.Events[len(d.Events)-1]
	if last.Kind != store.EventMoved || last.From != ref.Code || last.To != p.Code || last.By != "staff@vendor" || last.Why != "ticket 4711" {
		t.Fatalf("move not recorded: %+v", last)
	}
	// The next heartbeat carries a licence with the new code.
	_, br, _ := in.send(report(1, "pbx1", e.clock.Now()))
	if !strings.Contains(br.Licence, "BEGIN SWITCHBOARD LICENCE") {
		t.Fatalf("no re-issued licence after the move: %+v", br)
	}
	pub, _ := client.New(e.url, "")
	su, err := pub.Signup(ctx, adminapi.SignupRequest{Name: "Jo", Email: "jo@example.org"})
	if err != nil || su.Tier != store.TierReferral || su.Status != store.PartnerApproved || !strings.Contains(su.Link, "ref=") {
		t.Fatalf("signup %+v %v", su, err)
	}
	if _, err := e.admin.MoveInstall(ctx, in.id, adminapi.MoveRequest{PartnerCode: p.Code, By: "x"}); err == nil {
		t.Fatal("a move without why was accepted")
	}
}

func TestKeyRotationKeepsOldLicences(t *testing.T) {
	e := newEnv(t, nil)
	in := e.newInstall("")
	st, raw := e.do("GET", api.InstallPath(api.PathLicence, in.id), nil, in.id, in.key)
	if st != 200 {
		t.Fatalf("licence: %d %s", st, raw)
	}
	var old api.LicenceResponse
	_ = json.Unmarshal(raw, &old)
	if _, err := registry.RotateKey(e.data); err != nil {
		t.Fatal(err)
	}
	ks, err := registry.LoadKeys(e.data)
	if err != nil || len(ks.Public) != 2 {
		t.Fatalf("keys after rotate: %v", err)
	}
	e.srv.SetKeys(ks)
	_, br, _ := in.send(report(1, "pbx1", e.clock.Now()))
	if br.Licence == "" {
		t.Fatal("no licence signed with the new key on the next heartbeat")
	}
	keys, _ := e.admin.Keys(context.Background())
	ring := licensing.NewKeyring()
	for _, k := range keys.Keys {
		ring.Add(licensing.PublicKey{ID: k.ID, Key: k.PublicKey})
	}
	for _, l := range []string{old.Licence, br.Licence} {
		if _, _, err := ring.Verify([]byte(l), in.id, e.clock.Now()); err != nil {
			t.Errorf("licence does not verify with the published keys: %v", err)
		}
	}
}
