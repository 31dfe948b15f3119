package odoo

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	emu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/plugins"
)

func startOdoo(t testing.TB, opts emu.Options) *emu.Server {
	t.Helper()
	s, err := emu.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func settingsFor(s *emu.Server, key string) map[string]string {
	return map[string]string{SettingURL: s.URL(), SettingDB: s.Options().Database, SettingUser: "admin",
		SettingAPIKey: key, SettingTimeout: "5s", SettingModuleAuthors: "Acme Telecom"}
}

func configured(t testing.TB, settings map[string]string) *Adapter {
	t.Helper()
	a := New(nil)
	if err := a.Configure(context.Background(), settings); err != nil {
		t.Fatal(err)
	}
	return a
}

// seed gives an emulated Odoo users of every kind and some modules.
func seed(t testing.TB, s *emu.Server) {
	t.Helper()
	for _, u := range []emu.User{
		{Login: "alice", Password: "a"}, {Login: "bob", APIKeys: []string{"bob-key"}},
		{Login: "carol", Inactive: true}, {Login: "portal1", Share: true}, {Login: "portal2", Share: true},
	} {
		if _, err := s.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []emu.Module{
		{Name: "switchboard_pbx", Author: "Switchboard"},
		{Name: "switchboard_old", Author: "Switchboard", State: "uninstalled"},
		{Name: "switchboardx_other", Author: "Someone"}, // "_" must not act as a wildcard
		{Name: "acme_crm_phone", Author: "ACME Telecom, OCA"},
		{Name: "sale_extra", Author: "Someone Else"},
	} {
		if err := s.AddModule(m); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDescribeAcrossVersions(t *testing.T) {
	cases := []struct {
		opts    emu.Options
		api     string
		edition string
		note    string
	}{
		{emu.Options{Version: 16}, "xmlrpc", "community", ""},
		{emu.Options{Version: 17, Edition: emu.Enterprise}, "xmlrpc", "enterprise", ""},
		{emu.Options{Version: 18}, "xmlrpc", "community", ""},
		{emu.Options{Version: 18, Edition: emu.Enterprise}, "xmlrpc", "enterprise", ""},
		{emu.Options{Version: 19}, "json2", "community", ""},
		{emu.Options{Version: 19, Edition: emu.Enterprise, DisableXMLRPC: true}, "json2", "enterprise", "XML-RPC is not served"},
	}
	for _, tc := range cases {
		name := fmt.Sprintf("%d-%s-xmlrpc_off=%v", tc.opts.Version, tc.edition, tc.opts.DisableXMLRPC)
		t.Run(name, func(t *testing.T) {
			s := startOdoo(t, tc.opts)
			seed(t, s)
			a := configured(t, settingsFor(s, "admin"))
			f, err := a.Describe(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if err := plugins.ValidateFacts(f); err != nil {
				t.Fatal(err)
			}
			serie := fmt.Sprintf("%d.0", tc.opts.Version)
			build := serie
			if tc.edition == "enterprise" {
				build += "+e"
			}
			// admin, alice, bob: active internal users. carol is archived,
			// portal users are share users, system users are inactive.
			if f.Product != "odoo" || f.Version != serie || f.Build != build || f.Distribution != tc.edition ||
				f.Seats[plugins.SeatOdooUsers] != 3 || len(f.Seats) != 1 {
				t.Fatalf("facts %+v", f)
			}
			v := fmt.Sprint(tc.opts.Version)
			wantMods := "acme_crm_phone " + v + ".0.1.0.0, switchboard_pbx " + v + ".0.1.0.0"
			d := f.Details
			if d["database"] != "demo" || d["api"] != tc.api || d["user"] != "admin" || d["edition"] != tc.edition ||
				d["modules"] != wantMods || d["modules_count"] != "2" || d["url"] != s.URL() || !strings.Contains(d["note"], tc.note) {
				t.Fatalf("details %+v", d)
			}
			h, err := a.Health(context.Background())
			if err != nil || !h.Healthy || h.State != StateConnected || !strings.Contains(h.Detail, "Odoo "+build) {
				t.Fatalf("health %+v %v", h, err)
			}
			// Seats follow the database.
			if _, err := s.AddUser(emu.User{Login: "dave"}); err != nil {
				t.Fatal(err)
			}
			if f, err = a.Describe(context.Background()); err != nil || f.Seats[plugins.SeatOdooUsers] != 4 {
				t.Fatalf("after a new user: %+v %v", f.Seats, err)
			}
		})
	}
}

// TestEditionFromModule: a community version string with web_enterprise
// installed (an enterprise install that reports no "+e") is enterprise.
func TestEditionFromModule(t *testing.T) {
	s := startOdoo(t, emu.Options{Version: 17})
	if err := s.AddModule(emu.Module{Name: "web_enterprise", Author: "Odoo S.A."}); err != nil {
		t.Fatal(err)
	}
	f, err := configured(t, settingsFor(s, "admin")).Describe(context.Background())
	if err != nil || f.Distribution != "enterprise" || f.Build != "17.0" || f.Details["modules_count"] != "0" || f.Details["modules"] != "" {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestModuleFilterSettings(t *testing.T) {
	s := startOdoo(t, emu.Options{Version: 18})
	seed(t, s)
	set := settingsFor(s, "admin")
	set[SettingModulePrefixes] = "sale_, acme_"
	delete(set, SettingModuleAuthors)
	f, err := configured(t, set).Describe(context.Background())
	if err != nil || f.Details["modules"] != "acme_crm_phone 18.0.1.0.0, sale_extra 18.0.1.0.0" {
		t.Fatalf("%+v %v", f.Details, err)
	}
	set[SettingModulePrefixes] = ""
	f, err = configured(t, set).Describe(context.Background())
	if err != nil || f.Details["modules_count"] != "0" {
		t.Fatalf("%+v %v", f.Details, err)
	}
}

func TestApplyPartnerLink(t *testing.T) {
	for _, opts := range []emu.Options{{Version: 16}, {Version: 17}, {Version: 18}, {Version: 19}, {Version: 19, DisableXMLRPC: true}} {
		t.Run(fmt.Sprintf("%d-xmlrpc_off=%v", opts.Version, opts.DisableXMLRPC), func(t *testing.T) {
			s := startOdoo(t, opts)
			a := configured(t, settingsFor(s, "admin"))
			ctx := context.Background()
			code, err := partnercode.New()
			if err != nil {
				t.Fatal(err)
			}
			typed := strings.ToLower(strings.ReplaceAll(code.String(), "-", " "))
			r, err := a.ApplyPartnerLink(ctx, typed, "partner")
			if err != nil || !r.Applied || !strings.Contains(r.Detail, "read back") {
				t.Fatalf("apply: %+v %v", r, err)
			}
			if got, _ := s.ConfigParam(ParamPartnerCode); got != code.String() {
				t.Fatalf("partner code in Odoo %q, want %q", got, code)
			}
			if got, _ := s.ConfigParam(ParamPartnerTier); got != "partner" {
				t.Fatalf("tier in Odoo %q", got)
			}
			r, err = a.ApplyPartnerLink(ctx, code.String(), "partner")
			if err != nil || r.Applied || !strings.Contains(r.Detail, "already set") {
				t.Fatalf("second apply: %+v %v", r, err)
			}
			// A vendor move to another code (and tier) updates both.
			other, _ := partnercode.New()
			if r, err = a.ApplyPartnerLink(ctx, other.String(), "referral"); err != nil || !r.Applied {
				t.Fatalf("update: %+v %v", r, err)
			}
			if got, _ := s.ConfigParam(ParamPartnerCode); got != other.String() {
				t.Fatalf("updated code %q", got)
			}
			if got, _ := s.ConfigParam(ParamPartnerTier); got != "referral" {
				t.Fatalf("updated tier %q", got)
			}
			recs, _ := s.Records("ir.config_parameter")
			n := 0
			for _, rec := range recs {
				if rec["key"] == ParamPartnerCode {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("%d partner code parameters", n)
			}
		})
	}
}

func TestApplyPartnerLinkRefusals(t *testing.T) {
	s := startOdoo(t, emu.Options{Version: 17})
	if _, err := s.AddUser(emu.User{Login: "bob", APIKeys: []string{"bob-key"}}); err != nil {
		t.Fatal(err)
	}
	code, _ := partnercode.New()
	ctx := context.Background()
	a := configured(t, settingsFor(s, "admin"))
	for _, tc := range []struct{ code, tier string }{{"nope", "partner"}, {code.String(), "gold"}, {"", ""}} {
		if _, err := a.ApplyPartnerLink(ctx, tc.code, tc.tier); err == nil {
			t.Errorf("code %q tier %q accepted", tc.code, tc.tier)
		}
	}
	set := settingsFor(s, "bob-key")
	set[SettingUser] = "bob"
	bob := configured(t, set)
	_, err := bob.ApplyPartnerLink(ctx, code.String(), "partner")
	if err == nil || !strings.Contains(err.Error(), "no access to model ir.config_parameter") || !strings.Contains(err.Error(), "Administration / Settings") {
		t.Fatalf("non-admin: %v", err)
	}
	if _, ok := s.ConfigParam(ParamPartnerCode); ok {
		t.Fatal("parameter written by a user without rights")
	}
	h, _ := bob.Health(ctx)
	if !h.Healthy { // bob can still read: the plugin works, the write needs an admin
		t.Fatalf("health %+v", h)
	}
}

func TestHealthStates(t *testing.T) {
	s := startOdoo(t, emu.Options{Version: 18})
	ctx := context.Background()
	a := New(nil)
	if h, _ := a.Health(ctx); h.Healthy || h.State != StateNotConfigured {
		t.Fatalf("unconfigured %+v", h)
	}
	if _, err := a.Describe(ctx); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Fatalf("unconfigured describe: %v", err)
	}

	bad := configured(t, settingsFor(s, "wrong-key"))
	h, err := bad.Health(ctx)
	if err != nil || h.Healthy || h.State != StateUnauthorized ||
		h.Detail != "wrong login or API key (check the Odoo user and key in the agent config)" {
		t.Fatalf("wrong key %+v %v", h, err)
	}
	if _, err := bad.Describe(ctx); err == nil || !strings.Contains(err.Error(), "wrong login or API key") || strings.Contains(err.Error(), "wrong-key") {
		t.Fatalf("describe with a wrong key: %v", err)
	}

	set := settingsFor(s, "admin")
	set[SettingDB] = "nodb"
	if h, _ := configured(t, set).Health(ctx); h.State != StateWrongDatabase || !strings.Contains(h.Detail, `"nodb"`) {
		t.Fatalf("wrong db %+v", h)
	}

	a = configured(t, settingsFor(s, "admin"))
	clock := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	a.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	tick := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	if h, _ := a.Health(ctx); !h.Healthy || h.State != StateConnected || !h.Since.Equal(clock) {
		t.Fatalf("connected %+v", h)
	}
	_ = s.Close()
	tick(time.Minute)
	down := clock
	h, _ = a.Health(ctx)
	want := "unreachable since 2026-03-01T10:01:00Z: "
	if h.Healthy || h.State != StateUnreachable || !strings.HasPrefix(h.Detail, want) || !h.Since.Equal(down) {
		t.Fatalf("down %+v", h)
	}
	tick(time.Minute)
	if h, _ = a.Health(ctx); !h.Since.Equal(down) || !strings.HasPrefix(h.Detail, want) {
		t.Fatalf("since moved while still down: %+v", h)
	}
	if _, err := a.Describe(ctx); err == nil {
		t.Fatal("describe while down")
	}
}

// TestSilentOdoo: a server that accepts connections and never answers
// yields "unreachable" before the caller's deadline, not a hang.
func TestSilentOdoo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}()
	a := configured(t, map[string]string{SettingURL: "http://" + ln.Addr().String(), SettingDB: "demo", SettingUser: "admin", SettingAPIKey: "k", SettingTimeout: "1m"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	h, err := a.Health(ctx)
	if err != nil || ctx.Err() != nil || h.State != StateUnreachable || !strings.Contains(h.Detail, "within the timeout") {
		t.Fatalf("health %+v %v (caller ctx: %v)", h, err, ctx.Err())
	}
}

func TestHealthRecovers(t *testing.T) {
	s := startOdoo(t, emu.Options{Version: 17})
	uid, err := s.AddUser(emu.User{Login: "bob", APIKeys: []string{"bob-key"}})
	if err != nil {
		t.Fatal(err)
	}
	set := settingsFor(s, "bob-key")
	set[SettingUser] = "bob"
	a := configured(t, set)
	ctx := context.Background()
	if h, _ := a.Health(ctx); !h.Healthy {
		t.Fatalf("%+v", h)
	}
	if err := s.SetUserActive(uid, false); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.Health(ctx); h.State != StateUnauthorized {
		t.Fatalf("archived user %+v", h)
	}
	if err := s.SetUserActive(uid, true); err != nil {
		t.Fatal(err)
	}
	if h, _ := a.Health(ctx); !h.Healthy || h.State != StateConnected {
		t.Fatalf("restored user %+v", h)
	}
}

func TestConfigureRejects(t *testing.T) {
	base := map[string]string{SettingURL: "http://127.0.0.1:8069", SettingDB: "demo", SettingUser: "admin", SettingAPIKey: "k"}
	with := func(k, v string) map[string]string {
		m := map[string]string{}
		for kk, vv := range base {
			m[kk] = vv
		}
		if v == "\x00delete" {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		settings map[string]string
		want     string
	}{
		{with("ur1", "x"), "unknown odoo setting(s) ur1"},
		{with(SettingURL, "\x00delete"), "URL is empty"},
		{with(SettingURL, "odoo.local:8069"), "http:// or https://"},
		{with(SettingURL, "http://admin:pw@odoo.local"), "must not carry a user or password"},
		{with(SettingDB, "\x00delete"), "setting db is empty"},
		{with(SettingUser, ""), "setting user is empty"},
		{with(SettingAPIKey, ""), "setting api_key is empty"},
		{with(SettingPassword, "pw"), "not both"},
		{with(SettingTimeout, "soon"), "setting timeout"},
		{with(SettingTimeout, "-1s"), "setting timeout"},
		{with(SettingAPI, "rest"), "is not auto, xmlrpc or json2"},
		{with(SettingModulePrefixes, "sw%"), "may not contain"},
	} {
		err := New(nil).Configure(context.Background(), tc.settings)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.settings, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "pw") && tc.settings[SettingPassword] == "pw" && !strings.Contains(err.Error(), "password") {
			t.Errorf("secret in error: %v", err)
		}
	}
	jsonOnly := map[string]string{SettingURL: "http://127.0.0.1:8069", SettingAPIKey: "k", SettingAPI: "json2"}
	if err := New(nil).Configure(context.Background(), jsonOnly); err != nil {
		t.Errorf("json2 with a key only: %v", err)
	}
	jsonOnly[SettingPassword], jsonOnly[SettingAPIKey] = "pw", ""
	if err := New(nil).Configure(context.Background(), jsonOnly); err == nil || !strings.Contains(err.Error(), "accepts only an API key") {
		t.Errorf("json2 with a password: %v", err)
	}
}

// The installer keeps the key out of the config file, in odoo.secret.
func TestSecretFromFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "odoo.secret")
	if err := os.WriteFile(path, []byte("file-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseSettings(map[string]string{SettingURL: "http://127.0.0.1:8069", SettingDB: "demo", SettingUser: "admin", SettingAPIKeyFile: path})
	if err != nil || c.client.Secret != "file-key" {
		t.Fatalf("secret from file: %q, %v", c.client.Secret, err)
	}
	for _, tc := range []struct {
		settings map[string]string
		want     string
	}{
		{map[string]string{SettingAPIKey: "k", SettingAPIKeyFile: path}, "not both"},
		{map[string]string{SettingAPIKeyFile: path + ".missing"}, "re-run"},
		{map[string]string{SettingPasswordFile: os.DevNull}, "is empty"},
	} {
		tc.settings[SettingURL], tc.settings[SettingDB], tc.settings[SettingUser] = "http://127.0.0.1:8069", "demo", "admin"
		if _, err := parseSettings(tc.settings); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc.settings, err, tc.want)
		}
	}
}

func TestSettingsDocumented(t *testing.T) {
	for _, d := range Settings() {
		if d.Key == "" || d.Help == "" {
			t.Errorf("undocumented setting %+v", d)
		}
	}
}

func BenchmarkDescribe(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts emu.Options
	}{
		{"xmlrpc-17", emu.Options{Version: 17}},
		{"json2-19", emu.Options{Version: 19}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := startOdoo(b, tc.opts)
			seed(b, s)
			a := configured(b, settingsFor(s, "admin"))
			ctx := context.Background()
			if _, err := a.Describe(ctx); err != nil { // log in once, as the agent does
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := a.Describe(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
