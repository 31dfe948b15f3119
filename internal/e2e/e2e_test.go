package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"github.com/switchboard-dev/switchboard/internal/testenv"
)

// What the CLI prints with --output json, as far as this test reads it.
type (
	emulatorInfo struct {
		URL string `json:"url"`
	}
	partnerOut struct {
		Code   string `json:"code"`
		Status string `json:"status"`
	}
	installOut struct {
		Registry    string `json:"registry"`
		PartnerCode struct {
			Code   string `json:"code"`
			Source string `json:"source"`
		} `json:"partner_code"`
		Layout struct {
			Binary     string `json:"binary"`
			ConfigFile string `json:"config_file"`
			StateDir   string `json:"state_dir"`
		} `json:"layout"`
		Activation struct {
			State       string `json:"state"`
			InstallID   string `json:"install_id"`
			PartnerCode string `json:"partner_code"`
			PartnerName string `json:"partner_name"`
		} `json:"activation"`
	}
	licenceOut struct {
		InstallID   string `json:"install_id"`
		PartnerCode string `json:"partner_code"`
		Tier        string `json:"tier"`
	}
	verifyOut struct {
		Valid   bool        `json:"valid"`
		Status  string      `json:"status"`
		Licence *licenceOut `json:"licence"`
	}
	pluginHealth struct {
		Name    string `json:"name"`
		Healthy bool   `json:"healthy"`
		State   string `json:"state"`
		Detail  string `json:"detail"`
	}
	installDetail struct {
		ID          string `json:"id"`
		PartnerCode string `json:"partner_code"`
		Liveness    string `json:"liveness"`
		MaxSeq      uint64 `json:"max_seq"`
		ReportCount uint64 `json:"report_count"`
		Facts       struct {
			Products []struct {
				Name         string `json:"name"`
				Version      string `json:"version"`
				Distribution string `json:"distribution"`
			} `json:"products"`
		} `json:"facts"`
		Seats   map[string]int64 `json:"seats"`
		Plugins []pluginHealth   `json:"plugins"`
	}
	agentStatus struct {
		Agent struct {
			PID int `json:"pid"`
		} `json:"agent"`
		Licence struct {
			State       string `json:"state"`
			PartnerCode string `json:"partner_code"`
		} `json:"licence"`
		Registry struct {
			Reachable bool `json:"reachable"`
		} `json:"registry"`
		Outbox struct {
			Depth   int    `json:"depth"`
			LastSeq uint64 `json:"last_seq"`
		} `json:"outbox"`
		Plugins []pluginHealth `json:"plugins"`
	}
)

const (
	partnerName  = "Acme Telecom"
	heartbeat    = "1s" // the agent's heartbeat interval in this test
	odooDB       = "demo"
	odooLogin    = "admin"
	odooKey      = "admin"
	ariUser      = "asterisk"
	ariPassword  = "asterisk"
	paramPartner = "switchboard.partner_code"
)

// TestDemoPath drives the `make demo` path with real processes and checks
// each claim the demo makes: the licence verifies and carries the code, the
// install is active, a heartbeat at the registry carries facts and seats
// from both adapters running as plugin processes of the agent, the code is
// written into the emulated Odoo, heartbeats survive a registry restart with
// every report stored once, and the agent stops with its plugins.
func TestDemoPath(t *testing.T) {
	needBinary(t)

	// 1. Registry on a free loopback port.
	regData := filepath.Join(t.TempDir(), "registry")
	reg, regURL := startRegistry(t, regData, "127.0.0.1:0")
	regAddr := strings.TrimPrefix(regURL, "http://")

	// 2. Emulators, with endpoints and Odoo users to count.
	ari, ariInfo := startEmulator(t, "asterisk")
	odooProc, odooInfo := startEmulator(t, "odoo")
	ariBase := strings.TrimSuffix(ariInfo.URL, "/ari")
	for _, ep := range []string{`{"technology":"PJSIP","resource":"100","state":"online"}`,
		`{"technology":"PJSIP","resource":"101","state":"online"}`,
		`{"technology":"PJSIP","resource":"102","state":"offline"}`} {
		if code, body, err := httpDo(http.MethodPost, ariBase+"/_emulator/endpoints", "application/json", ep); err != nil || code != http.StatusOK {
			t.Fatalf("add endpoint %s: %d %s %v", ep, code, body, err)
		}
	}
	wantEndpoints := ariEndpointCount(t, ariInfo.URL)
	if wantEndpoints != 3 {
		t.Fatalf("ARI lists %d endpoints after adding 3", wantEndpoints)
	}
	odoo := newOdoo(t, odooInfo.URL)
	for _, login := range []string{"ana", "ben"} {
		var id int64
		odoo.call(t, "res.users", "create", []any{map[string]any{"name": strings.ToUpper(login[:1]) + login[1:], "login": login}}, &id)
	}
	var wantUsers int64
	odoo.call(t, "res.users", "search_count", []any{[]any{[]any{"share", "=", false}}}, &wantUsers)
	if wantUsers < 3 {
		t.Fatalf("Odoo counts %d internal users after creating 2 besides admin", wantUsers)
	}

	// 3. An approved partner.
	var partner partnerOut
	sbJSON(t, &partner, "registry", "partner", "add", "--data", regData, "--name", partnerName,
		"--email", "ops@acme.example", "--tier", "partner", "--approve")
	if partner.Code == "" || partner.Status != "approved" {
		t.Fatalf("partner add: %+v", partner)
	}

	// 4. The download link, typed the way people share it.
	link := regURL + "/download?ref=" + strings.ToLower(strings.ReplaceAll(partner.Code, "-", ""))
	switch code, body, err := httpDo(http.MethodGet, link, "", ""); {
	case err != nil:
		t.Fatalf("GET %s: %v", link, err)
	case code == http.StatusOK:
		if !strings.Contains(body, partner.Code) || !strings.Contains(body, partnerName) {
			t.Errorf("download page does not name the partner and code %s:\n%s", partner.Code, body)
		}
	case code == http.StatusNotFound:
		t.Logf("registry serves no download page yet; the link still carries the code")
	default:
		t.Errorf("GET %s: status %d\n%s", link, code, body)
	}

	// 5. The installer into a sandbox root, the code from the link.
	root := t.TempDir()
	var inst installOut
	sbJSON(t, &inst, "install", "--root", root, "--from-link", link, "--yes", "--configure-ari",
		"--ari-url", ariInfo.URL, "--ari-user", ariUser, "--ari-password", ariPassword,
		"--odoo-url", odooInfo.URL, "--odoo-db", odooDB, "--odoo-user", odooLogin, "--odoo-key", odooKey)
	a := inst.Activation
	if a.State != "activated" || a.InstallID == "" || a.PartnerCode != partner.Code || a.PartnerName != partnerName {
		t.Fatalf("activation %+v, want activated for %s (%s)", a, partner.Code, partnerName)
	}
	if inst.PartnerCode.Source != "link" || inst.Registry != regURL {
		t.Errorf("code source %q, registry %q: want the link and %s", inst.PartnerCode.Source, inst.Registry, regURL)
	}
	conf := inst.Layout.ConfigFile
	if !strings.HasPrefix(conf, root) || !strings.HasPrefix(inst.Layout.Binary, root) || !strings.HasPrefix(inst.Layout.StateDir, root) {
		t.Fatalf("install layout %+v is not inside the sandbox %s", inst.Layout, root)
	}
	appendConfig(t, conf, fmt.Sprintf("\n[heartbeat]\ninterval = %q\njitter = 0.0\n\n[sender]\nbackoff_min = \"100ms\"\nbackoff_max = \"500ms\"\n", heartbeat))
	if out, errOut, code := sb(t, "agent", "config", "check", conf); code != 0 {
		t.Fatalf("agent config check: exit %d: %s %s", code, out, errOut)
	}

	// 6. The licence verifies with the registry's own key and carries the code.
	licFile := filepath.Join(inst.Layout.StateDir, "licence")
	var shown licenceOut
	sbJSON(t, &shown, "licence", "show", licFile)
	if shown.PartnerCode != partner.Code || shown.InstallID != a.InstallID || shown.Tier != "partner" {
		t.Errorf("licence show: %+v, want install %s, partner %s", shown, a.InstallID, partner.Code)
	}
	var verified verifyOut
	sbJSON(t, &verified, "licence", "verify", "--pub", filepath.Join(regData, "keys", "keyring.pub"), "--install", a.InstallID, licFile)
	if !verified.Valid || verified.Licence == nil || verified.Licence.PartnerCode != partner.Code {
		t.Fatalf("licence verify with the registry's key: %+v", verified)
	}

	// 7. The agent from the sandbox, with both adapters as plugin processes.
	agent := startAgent(t, inst.Layout.Binary, conf)
	var plugins map[string]int
	if err := waitFor(20*time.Second, func() error {
		plugins = pluginChildren(agent.pid())
		if plugins["asterisk"] == 0 || plugins["odoo"] == 0 {
			return fmt.Errorf("plugin processes of the agent: %v", plugins)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v; want asterisk and odoo\nagent log:\n%s", err, agent.logs())
	}

	// 8. A heartbeat at the registry with facts and seats from both adapters.
	var d installDetail
	if err := waitFor(20*time.Second, func() error {
		d = showInstall(t, regData, a.InstallID)
		return checkHeartbeat(d, wantEndpoints, wantUsers)
	}); err != nil {
		t.Fatalf("heartbeat at the registry: %v\ninstall: %+v\nagent log:\n%s", err, d, agent.logs())
	}
	if d.PartnerCode != partner.Code || d.Liveness != "active" {
		t.Errorf("install %s: partner %q liveness %q, want %s and active", d.ID, d.PartnerCode, d.Liveness, partner.Code)
	}
	var list []installDetail
	sbJSON(t, &list, "registry", "installs", "list", "--data", regData)
	found := false
	for _, in := range list {
		if in.ID == a.InstallID {
			found = true
			if in.Liveness != "active" || in.PartnerCode != partner.Code {
				t.Errorf("installs list shows %s as %q for %q", in.ID, in.Liveness, in.PartnerCode)
			}
		}
	}
	if !found {
		t.Errorf("installs list does not hold %s: %+v", a.InstallID, list)
	}

	// 9. The partner code written into the emulated Odoo.
	if err := waitFor(10*time.Second, func() error {
		var param any // fresh each time: the decoder fills only a nil interface
		odoo.call(t, "ir.config_parameter", "get_param", []any{paramPartner}, &param)
		if param != partner.Code {
			return fmt.Errorf("Odoo's ir.config_parameter %s is %#v, want %q", paramPartner, param, partner.Code)
		}
		return nil
	}); err != nil {
		t.Errorf("partner link in Odoo: %v\nagent log:\n%s", err, agent.logs())
	}

	// 10. The registry restarts; the agent queues and then delivers.
	before := showInstall(t, regData, a.InstallID).ReportCount
	if err := reg.stop(); err != nil {
		t.Fatalf("stop the registry: %v", err)
	}
	var st agentStatus
	if err := waitFor(20*time.Second, func() error {
		st = status(t, conf)
		if st.Registry.Reachable || st.Outbox.Depth < 2 {
			return fmt.Errorf("registry reachable %v, outbox depth %d", st.Registry.Reachable, st.Outbox.Depth)
		}
		return nil
	}); err != nil {
		t.Fatalf("while the registry is down the agent should queue heartbeats: %v", err)
	}
	reg, _ = startRegistry(t, regData, regAddr)
	if err := waitFor(20*time.Second, func() error {
		st = status(t, conf)
		if !st.Registry.Reachable || st.Outbox.Depth != 0 {
			return fmt.Errorf("registry reachable %v, outbox depth %d", st.Registry.Reachable, st.Outbox.Depth)
		}
		return nil
	}); err != nil {
		t.Fatalf("after the registry restart the outbox should drain: %v\nagent log:\n%s", err, agent.logs())
	}
	sent := st.Outbox.LastSeq
	d = showInstall(t, regData, a.InstallID)
	if d.ReportCount <= before || d.MaxSeq < sent {
		t.Errorf("after the restart the registry holds %d reports up to seq %d; before it held %d and the agent has sent up to %d",
			d.ReportCount, d.MaxSeq, before, sent)
	}
	if d.ReportCount != d.MaxSeq {
		t.Errorf("the registry stored %d reports for sequences 1..%d: each report must be stored exactly once", d.ReportCount, d.MaxSeq)
	}
	if err := waitFor(5*time.Second, func() error {
		if c := showInstall(t, regData, a.InstallID).ReportCount; c <= d.ReportCount {
			return fmt.Errorf("report count stays at %d", c)
		}
		return nil
	}); err != nil {
		t.Errorf("heartbeats do not continue after the restart: %v", err)
	}

	// 11. Both adapters healthy in a heartbeat (the host checks plugin
	// health every 15 s, so the first one may still say "connecting").
	if err := waitFor(25*time.Second, func() error {
		d = showInstall(t, regData, a.InstallID)
		return allHealthy(d.Plugins, "asterisk", "odoo")
	}); err != nil {
		t.Errorf("plugin health at the registry: %v", err)
	}

	// 12. The agent stops cleanly and its plugin processes with it.
	if err := agent.stop(); err != nil {
		t.Errorf("stop the agent: %v", err)
	} else if agent.Err() != nil {
		t.Errorf("agent exit on SIGTERM: %v\n%s", agent.Err(), agent.logs())
	}
	for name, pid := range plugins {
		if err := waitFor(5*time.Second, func() error {
			if alive(pid) {
				return fmt.Errorf("plugin %s (pid %d) still runs after the agent exited", name, pid)
			}
			return nil
		}); err != nil {
			t.Error(err)
		}
	}
	for _, p := range []*proc{odooProc, ari, reg} {
		if err := p.stop(); err != nil {
			t.Errorf("stop %s: %v", p.Name, err)
		}
	}
}

// startRegistry runs `registry serve` on listen and waits until it answers
// /healthz at the address it wrote to DATA/registry.addr.
func startRegistry(t *testing.T, data, listen string) (*proc, string) {
	t.Helper()
	p := start(t, "registry", "registry", "serve", "--data", data, "--listen", listen)
	return p, testenv.AwaitRegistry(t, p.Process, data).URL
}

// startEmulator runs `dev emulate PRODUCT` on a free port and waits for the
// JSON it prints once it listens.
func startEmulator(t *testing.T, product string) (*proc, emulatorInfo) {
	t.Helper()
	p := start(t, product+"-emulator", "dev", "emulate", product, "--listen", "127.0.0.1:0", "--output", "json")
	var info emulatorInfo
	if err := waitFor(20*time.Second, func() error {
		if p.Exited() {
			return errors.New("emulator exited")
		}
		b := []byte(p.stdout.String())
		if err := json.Unmarshal(b, &info); err != nil || info.URL == "" {
			return fmt.Errorf("no listening line yet: %q", b)
		}
		return nil
	}); err != nil {
		t.Fatalf("%s emulator: %v\n%s", product, err, p.logs())
	}
	return p, info
}

// startAgent runs the sandbox's own binary as the agent and waits until its
// status socket answers.
func startAgent(t *testing.T, bin, conf string) *proc {
	t.Helper()
	// The installed copy, as the systemd unit would run it.
	p := startBin(t, "agent", bin, "agent", "run", "--config", conf)
	if err := waitFor(20*time.Second, func() error {
		if p.Exited() {
			return errors.New("agent exited")
		}
		if _, _, code := sb(t, "status", "--config", conf); code != 0 {
			return fmt.Errorf("status exit %d", code)
		}
		return nil
	}); err != nil {
		t.Fatalf("agent: %v\n%s", err, p.logs())
	}
	return p
}

func appendConfig(t *testing.T, path, text string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "\n[heartbeat]") || strings.Contains(string(b), "\n[sender]") {
		t.Fatalf("%s already has [heartbeat] or [sender]; the test cannot add its own:\n%s", path, b)
	}
	if err := os.WriteFile(path, append(b, text...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func showInstall(t *testing.T, data, id string) installDetail {
	t.Helper()
	var d installDetail
	sbJSON(t, &d, "registry", "installs", "show", id, "--data", data)
	return d
}

func status(t *testing.T, conf string) agentStatus {
	t.Helper()
	var st agentStatus
	sbJSON(t, &st, "status", "--config", conf)
	return st
}

// checkHeartbeat says what is missing from the install's last heartbeat.
func checkHeartbeat(d installDetail, endpoints, users int64) error {
	if d.ReportCount == 0 {
		return errors.New("no report yet")
	}
	if got := d.Seats["pbx_endpoints"]; got != endpoints {
		return fmt.Errorf("seats pbx_endpoints %d, ARI lists %d", got, endpoints)
	}
	if got := d.Seats["odoo_users"]; got != users {
		return fmt.Errorf("seats odoo_users %d, Odoo counts %d", got, users)
	}
	products := map[string]string{}
	for _, p := range d.Facts.Products {
		products[p.Name] = p.Version
	}
	if products["asterisk"] != "20.15.0" || products["odoo"] != "17.0" {
		return fmt.Errorf("facts products %+v, want asterisk 20.15.0 and odoo 17.0", d.Facts.Products)
	}
	names := map[string]bool{}
	for _, p := range d.Plugins {
		names[p.Name] = true
	}
	if !names["asterisk"] || !names["odoo"] {
		return fmt.Errorf("plugins in the heartbeat %+v, want asterisk and odoo", d.Plugins)
	}
	return nil
}

func allHealthy(ps []pluginHealth, names ...string) error {
	for _, n := range names {
		ok := false
		for _, p := range ps {
			if p.Name == n {
				if !p.Healthy {
					return fmt.Errorf("%s: %s (%s)", n, p.State, p.Detail)
				}
				ok = true
			}
		}
		if !ok {
			return fmt.Errorf("%s missing from %+v", n, ps)
		}
	}
	return nil
}

// ariEndpointCount is what Asterisk itself lists (GET /ari/endpoints).
func ariEndpointCount(t *testing.T, ariURL string) int64 {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, ariURL+"/endpoints", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(ariUser, ariPassword)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s/endpoints: %v", ariURL, err)
	}
	defer resp.Body.Close()
	var eps []struct {
		Technology string `json:"technology"`
		Resource   string `json:"resource"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&eps); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/endpoints: %d %v", ariURL, resp.StatusCode, err)
	}
	return int64(len(eps))
}

// odooClient talks XML-RPC to the Odoo emulator as the administrator.
type odooClient struct {
	object *xmlrpc.Client
	uid    int64
}

func newOdoo(t *testing.T, url string) *odooClient {
	t.Helper()
	common, err := xmlrpc.NewClient(url+"/xmlrpc/2/common", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer common.Close()
	var uid any
	if err := common.Call("authenticate", []any{odooDB, odooLogin, odooKey, map[string]any{}}, &uid); err != nil {
		t.Fatalf("Odoo authenticate: %v", err)
	}
	id, ok := uid.(int64)
	if !ok {
		t.Fatalf("Odoo authenticate answered %#v, want a user id", uid)
	}
	object, err := xmlrpc.NewClient(url+"/xmlrpc/2/object", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = object.Close() })
	return &odooClient{object: object, uid: id}
}

func (o *odooClient) call(t *testing.T, model, method string, args []any, out any) {
	t.Helper()
	if err := o.object.Call("execute_kw", []any{odooDB, o.uid, odooKey, model, method, args}, out); err != nil {
		t.Fatalf("Odoo %s.%s: %v", model, method, err)
	}
}
