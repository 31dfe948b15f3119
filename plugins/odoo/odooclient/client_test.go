package odooclient

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	emu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
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

func newClient(t testing.TB, s *emu.Server, login, secret string, api API) *Client {
	t.Helper()
	c, err := New(Config{URL: s.URL(), Database: s.Options().Database, Login: login, Secret: secret, API: api, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func wantKind(t *testing.T, err error, kind Kind, contains string) *Error {
	t.Helper()
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("got %T %v, want *Error of kind %s", err, err, kind)
	}
	if e.Kind != kind || !strings.Contains(e.Error(), contains) {
		t.Fatalf("got kind %s %q, want %s containing %q", e.Kind, e.Error(), kind, contains)
	}
	if !errors.Is(err, kindSentinels[kind]) {
		t.Fatalf("errors.Is(%v, %v) is false", err, kindSentinels[kind])
	}
	return e
}

// TestDetection covers the protocol choice for every emulated release.
func TestDetection(t *testing.T) {
	cases := []struct {
		name       string
		opts       emu.Options
		secret     string
		api        API
		wantAPI    API
		wantSerie  string
		enterprise bool
		note       string
	}{
		{name: "16", opts: emu.Options{Version: 16}, secret: "admin", wantAPI: APIXMLRPC, wantSerie: "16.0"},
		{name: "17e", opts: emu.Options{Version: 17, Edition: emu.Enterprise}, secret: "admin", wantAPI: APIXMLRPC, wantSerie: "17.0", enterprise: true},
		{name: "18", opts: emu.Options{Version: 18}, secret: "admin", wantAPI: APIXMLRPC, wantSerie: "18.0"},
		{name: "19 key", opts: emu.Options{Version: 19, AdminPassword: "pw", AdminAPIKey: "key"}, secret: "key", wantAPI: APIJSON2, wantSerie: "19.0"},
		{name: "19 password falls back", opts: emu.Options{Version: 19, AdminPassword: "pw", AdminAPIKey: "key"}, secret: "pw", wantAPI: APIXMLRPC, wantSerie: "19.0", note: "configure an API key"},
		{name: "19 no xmlrpc", opts: emu.Options{Version: 19, Edition: emu.Enterprise, DisableXMLRPC: true}, secret: "admin", wantAPI: APIJSON2, wantSerie: "19.0", enterprise: true, note: "XML-RPC is not served"},
		{name: "19 forced xmlrpc", opts: emu.Options{Version: 19}, secret: "admin", api: APIXMLRPC, wantAPI: APIXMLRPC, wantSerie: "19.0"},
		{name: "19 forced json2", opts: emu.Options{Version: 19}, secret: "admin", api: APIJSON2, wantAPI: APIJSON2, wantSerie: "19.0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startOdoo(t, tc.opts)
			c := newClient(t, s, "admin", tc.secret, tc.api)
			sess, err := c.Session(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if sess.API != tc.wantAPI || sess.UID != emu.AdminUID || sess.Version.Serie != tc.wantSerie ||
				sess.Version.Enterprise != tc.enterprise || sess.Login != "admin" || !strings.Contains(sess.Note, tc.note) {
				t.Fatalf("session %+v", sess)
			}
			if tc.note == "" && sess.Note != "" {
				t.Fatalf("unexpected note %q", sess.Note)
			}
			if err := c.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestForcedProtocolMissing(t *testing.T) {
	s := startOdoo(t, emu.Options{Version: 19, DisableXMLRPC: true})
	_, err := newClient(t, s, "admin", "admin", APIXMLRPC).Session(context.Background())
	wantKind(t, err, KindNoAPI, "set api to auto or json2")

	s17 := startOdoo(t, emu.Options{Version: 17})
	_, err = newClient(t, s17, "admin", "admin", APIJSON2).Session(context.Background())
	wantKind(t, err, KindNoAPI, "JSON-2 is not served here")
}

// TestXMLRPCGoesAway: a session made over XML-RPC on 19 switches to JSON-2
// once the rpc module is uninstalled.
func TestXMLRPCGoesAway(t *testing.T) {
	s := startOdoo(t, emu.Options{Version: 19})
	c := newClient(t, s, "admin", "admin", APIXMLRPC)
	if _, err := c.SearchCount(context.Background(), "res.users", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetXMLRPCEnabled(false); err != nil {
		t.Fatal(err)
	}
	_, err := c.SearchCount(context.Background(), "res.users", nil)
	wantKind(t, err, KindNoAPI, "XML-RPC is not served")
	auto := newClient(t, s, "admin", "admin", APIAuto)
	if n, err := auto.SearchCount(context.Background(), "res.users", nil); err != nil || n != 1 {
		t.Fatalf("auto after XML-RPC went away: %d %v", n, err)
	}
}

// apis runs f over both protocols against Odoo 19 (XML-RPC forced, JSON-2
// forced), the admin key and password both "admin".
func apis(t *testing.T, opts emu.Options, f func(t *testing.T, s *emu.Server, api API)) {
	for _, api := range []API{APIXMLRPC, APIJSON2} {
		t.Run(string(api), func(t *testing.T) {
			o := opts
			o.Version = 19
			f(t, startOdoo(t, o), api)
		})
	}
}

func TestFaultsMapToKinds(t *testing.T) {
	apis(t, emu.Options{}, func(t *testing.T, s *emu.Server, api API) {
		ctx := context.Background()
		if _, err := s.AddUser(emu.User{Login: "emp", Password: "emp-pw", APIKeys: []string{"emp-key"}}); err != nil {
			t.Fatal(err)
		}
		// Wrong key: authenticate answers False (XML-RPC) or 401 (JSON-2).
		_, err := newClient(t, s, "admin", "nope-secret", api).Session(ctx)
		wantKind(t, err, KindCredentials, "wrong")
		if strings.Contains(err.Error(), "nope-secret") {
			t.Fatalf("the secret leaked into the error: %v", err)
		}

		emp := newClient(t, s, "emp", "emp-key", api)
		_, err = emp.SearchRead(ctx, "ir.config_parameter", nil, []string{"key"}, SearchOptions{})
		e := wantKind(t, err, KindAccess, "no access to model ir.config_parameter (System Parameter)")
		if e.Model != "ir.config_parameter" || !strings.Contains(e.Message, "Administration / Settings") {
			t.Fatalf("access error %+v", e)
		}
		if api == APIXMLRPC && e.Code != FaultAccess {
			t.Fatalf("fault code %d", e.Code)
		}

		admin := newClient(t, s, "admin", "admin", api)
		_, err = admin.SearchCount(ctx, "foo.bar", nil)
		e = wantKind(t, err, KindMissingModel, "model foo.bar does not exist")
		if e.Model != "foo.bar" {
			t.Fatalf("model %q", e.Model)
		}
		_, err = admin.SearchCount(ctx, "helpdesk.ticket", nil) // module not installed
		wantKind(t, err, KindMissingModel, "helpdesk.ticket")
		_, err = admin.SearchCount(ctx, "res.partner", Domain{Cond("nope", "=", 1)})
		wantKind(t, err, KindServer, "Invalid field 'nope'")
		_, err = admin.Read(ctx, "res.partner", []int64{999}, nil)
		wantKind(t, err, KindUser, "Record does not exist")
		_, err = admin.Create(ctx, "ir.config_parameter", map[string]any{"key": "x"})
		wantKind(t, err, KindUser, "mandatory field is not set")

		bad, err := New(Config{URL: s.URL(), Database: "nodb", Login: "admin", Secret: "admin", API: api})
		if err != nil {
			t.Fatal(err)
		}
		_, err = bad.Session(ctx)
		wantKind(t, err, KindUnknownDatabase, `database "nodb" does not exist`)
	})
}

// TestRevokedKeyAfterLogin: a key removed after login shows as a
// credentials error on the next call (fault 3 on /xmlrpc/2/object).
func TestRevokedKeyAfterLogin(t *testing.T) {
	apis(t, emu.Options{}, func(t *testing.T, s *emu.Server, api API) {
		ctx := context.Background()
		uid, err := s.AddUser(emu.User{Login: "emp", APIKeys: []string{"emp-key"}})
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(t, s, "emp", "emp-key", api)
		if err := c.Check(ctx); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserActive(uid, false); err != nil {
			t.Fatal(err)
		}
		err = c.Check(ctx)
		e := wantKind(t, err, KindCredentials, "wrong")
		if api == APIXMLRPC && e.Code != FaultDenied {
			t.Fatalf("code %d", e.Code)
		}
		if _, ok := c.CurrentSession(); ok {
			t.Fatal("session kept after a credentials error")
		}
	})
}

func TestFalseFieldsDecode(t *testing.T) {
	apis(t, emu.Options{}, func(t *testing.T, s *emu.Server, api API) {
		ctx := context.Background()
		c := newClient(t, s, "admin", "admin", api)
		id, err := c.Create(ctx, "res.partner", map[string]any{"name": "Empty Co"})
		if err != nil {
			t.Fatal(err)
		}
		recs, err := c.Read(ctx, "res.partner", []int64{id}, []string{"name", "email", "parent_id", "is_company", "city"})
		if err != nil || len(recs) != 1 {
			t.Fatalf("read: %v %v", recs, err)
		}
		r := recs[0]
		if r["email"] != false || r["parent_id"] != false {
			t.Fatalf("emulator did not send False for empty fields: %#v", r)
		}
		if r.ID() != id || r.String("name") != "Empty Co" || r.String("email") != "" || r.String("city") != "" || r.Bool("is_company") {
			t.Fatalf("record %#v", r)
		}
		if ref, ok := r.Many2One("parent_id"); ok {
			t.Fatalf("empty many2one decoded as %+v", ref)
		}
		child, err := c.Create(ctx, "res.partner", map[string]any{"name": "Child", "parent_id": id})
		if err != nil {
			t.Fatal(err)
		}
		recs, err = c.SearchRead(ctx, "res.partner", Domain{Cond("id", "=", child)}, []string{"parent_id"}, SearchOptions{Limit: 1})
		if err != nil || len(recs) != 1 {
			t.Fatalf("search_read: %v %v", recs, err)
		}
		if ref, ok := recs[0].Many2One("parent_id"); !ok || ref.ID != id || ref.Name != "Empty Co" {
			t.Fatalf("many2one %+v %v", ref, ok)
		}
		if err := c.Write(ctx, "res.partner", []int64{child}, map[string]any{"parent_id": false, "city": "Ghent"}); err != nil {
			t.Fatal(err)
		}
		fields, err := c.FieldsGet(ctx, "res.partner", []string{"type", "string"})
		if err != nil || fields["parent_id"].String("type") != "many2one" || fields["parent_id"].Bool("required") {
			t.Fatalf("fields_get %v %v", fields["parent_id"], err)
		}
	})
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := New(Config{URL: "http://" + addr, Database: "demo", Login: "admin", Secret: "admin", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Session(context.Background())
	wantKind(t, err, KindUnreachable, "")
}

func TestConfigChecks(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "", Database: "d", Login: "u", Secret: "s"},
		{URL: "ftp://x", Database: "d", Login: "u", Secret: "s"},
		{URL: "http://u:p@x", Database: "d", Login: "u", Secret: "s"},
		{URL: "http://x?db=1", Database: "d", Login: "u", Secret: "s"},
		{URL: "http://x", Database: "d", Login: "u"},
		{URL: "http://x", Login: "u", Secret: "s"},
		{URL: "http://x", Database: "d", Secret: "s"},
		{URL: "http://x", Database: "d", Login: "u", Secret: "s", API: "soap"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := New(Config{URL: "http://x/odoo/", Secret: "s", API: APIJSON2}); err != nil {
		t.Errorf("json2 without login and db: %v", err)
	}
}
