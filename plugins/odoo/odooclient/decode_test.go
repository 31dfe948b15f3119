package odooclient

import (
	"errors"
	"fmt"
	"net/rpc"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/kolo/xmlrpc"
)

// Fault strings as Odoo sends them (reference/odoo/xmlrpc-behaviour.json).
const (
	aclRead = "You are not allowed to access 'Contact' (res.partner) records.\n\nThis operation is allowed for the following groups:\n\t- Sales / User\n\t- Technical / Partner Manager\n\nContact your administrator to request access if necessary."
	aclNone = "You are not allowed to modify 'Payslip' (hr.payslip) records.\n\nNo group currently allows this operation.\n\nContact your administrator to request access if necessary."
	tbName  = "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/odoo/service/model.py\", line 62, in dispatch\nNameError: Method not available frobnicate"
	tbNone  = "Traceback (most recent call last):\n  File \"x.py\", line 1, in dump\nTypeError: cannot marshal None unless allow_none is enabled"
	tbDB    = "Traceback (most recent call last):\n  File \"sql_db.py\", line 1\npsycopg2.OperationalError: connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  database \"acme\" does not exist\n"
)

func TestDecodeFault(t *testing.T) {
	cases := []struct {
		code      int
		str       string
		kind      Kind
		model     string
		contains  []string
		notContai string
	}{
		{3, "Access Denied", KindCredentials, "", []string{"wrong login or API key"}, "Odoo says"},
		{3, "Access denied", KindCredentials, "", []string{"wrong login or API key"}, "Odoo says"},
		{3, "Too many login failures, please wait a bit before trying again.", KindCredentials, "", []string{"wrong login or API key", "Too many login failures"}, ""},
		{4, aclRead, KindAccess, "res.partner", []string{"no access to model res.partner (Contact)", "read", "Sales / User, Technical / Partner Manager"}, "\n"},
		{4, aclNone, KindAccess, "hr.payslip", []string{"change", "no group allows it"}, ""},
		{4, "odd access text", KindAccess, "", []string{"no access: odd access text"}, ""},
		{2, "Object foo.bar doesn't exist", KindMissingModel, "foo.bar", []string{"model foo.bar does not exist", "module"}, ""},
		{2, "Record does not exist or has been deleted.\n(Record: res.partner(9,), User: 2)", KindUser, "", []string{"Odoo refused the operation: Record does not exist"}, ""},
		{1, tbName, KindMissingModel, "", []string{"method frobnicate does not exist"}, "Traceback"},
		{1, tbNone, KindServer, "", []string{"Odoo server error: TypeError: cannot marshal None"}, "Traceback"},
		{1, tbDB, KindUnknownDatabase, "", []string{`database "acme" does not exist`, "db setting"}, ""},
		{1, "", KindServer, "", []string{"no detail given"}, ""},
		{99, "weird", KindServer, "", []string{"weird"}, ""},
	}
	for _, tc := range cases {
		e := DecodeFault("res.partner.read", tc.code, tc.str)
		if e.Kind != tc.kind || e.Model != tc.model || e.Code != tc.code {
			t.Errorf("fault %d %q: kind %s model %q code %d, want %s %q", tc.code, tc.str, e.Kind, e.Model, e.Code, tc.kind, tc.model)
		}
		for _, c := range tc.contains {
			if !strings.Contains(e.Error(), c) {
				t.Errorf("fault %d %q: message %q lacks %q", tc.code, tc.str, e.Error(), c)
			}
		}
		if tc.notContai != "" && strings.Contains(e.Message, tc.notContai) {
			t.Errorf("fault %d: message %q contains %q", tc.code, e.Message, tc.notContai)
		}
	}
}

func TestFaultFromErrorForms(t *testing.T) {
	forms := []error{
		xmlrpc.FaultError{Code: 3, String: "Access Denied"},
		&xmlrpc.FaultError{Code: 3, String: "Access Denied"},
		rpc.ServerError("Fault(3): Access Denied"), // what kolo's net/rpc Client returns
		fmt.Errorf("authenticate: %w", rpc.ServerError("Fault(3): Access Denied")),
	}
	for _, f := range forms {
		e, ok := FaultFromError("common.authenticate", f)
		if !ok || e.Kind != KindCredentials || e.Code != 3 || !errors.Is(e, ErrCredentials) {
			t.Errorf("%T %v: %+v %v", f, f, e, ok)
		}
	}
	if _, ok := FaultFromError("x", errors.New("connection refused")); ok {
		t.Error("a network error read as a fault")
	}
	code, str, ok := ParseFaultText("Fault(-7): multi\nline")
	if !ok || code != -7 || str != "multi\nline" {
		t.Errorf("parse: %d %q %v", code, str, ok)
	}
}

func TestDecodeLegacyFault(t *testing.T) {
	for _, tc := range []struct {
		code, str string
		kind      Kind
	}{
		{"AccessDenied", "Access Denied", KindCredentials},
		{"warning -- AccessError\n\n" + aclRead, "", KindAccess},
		{"warning -- UserError\n\nObject foo.bar doesn't exist", "", KindMissingModel},
		{"warning -- MissingError\n\nRecord does not exist", "", KindUser},
		{"Method not available x", "Traceback ...", KindMissingModel},
		{"boom", "Traceback (most recent call last):\nValueError: boom", KindServer},
	} {
		if e := DecodeLegacyFault("op", tc.code, tc.str); e.Kind != tc.kind {
			t.Errorf("legacy %q: kind %s (%s), want %s", tc.code, e.Kind, e.Message, tc.kind)
		}
	}
	// The full path: a legacy fault body through DecodeXMLRPCResponse.
	body := `<?xml version="1.0"?><methodResponse><fault><value><struct>
<member><name>faultCode</name><value><string>AccessDenied</string></value></member>
<member><name>faultString</name><value><string>Access Denied</string></value></member>
</struct></value></fault></methodResponse>`
	_, err := DecodeXMLRPCResponse("op", []byte(body))
	if KindOf(err) != KindCredentials {
		t.Fatalf("legacy body: %v", err)
	}
}

func TestDecodeXMLRPCResponse(t *testing.T) {
	ok := `<?xml version="1.0"?><methodResponse><params><param><value><struct>
<member><name>email</name><value><boolean>0</boolean></value></member>
<member><name>id</name><value><int>7</int></value></member>
<member><name>tags</name><value><array><data><value><int>1</int></value><value><int>2</int></value></data></array></value></member>
</struct></value></param></params></methodResponse>`
	v, err := DecodeXMLRPCResponse("op", []byte(ok))
	if err != nil {
		t.Fatal(err)
	}
	r := Record(v.(map[string]any))
	if r.ID() != 7 || r.String("email") != "" || len(r.IDs("tags")) != 2 {
		t.Fatalf("%#v", r)
	}
	fault := `<?xml version="1.0"?><methodResponse><fault><value><struct>
<member><name>faultCode</name><value><int>4</int></value></member>
<member><name>faultString</name><value><string>` + strings.ReplaceAll(aclRead, "'", "&apos;") + `</string></value></member>
</struct></value></fault></methodResponse>`
	_, err = DecodeXMLRPCResponse("res.partner.read", []byte(fault))
	if e, ok := AsError(err); !ok || e.Kind != KindAccess || e.Model != "res.partner" || e.Code != 4 {
		t.Fatalf("fault: %v", err)
	}
	for _, bad := range []string{"", "<html><body>Login</body></html>", "<methodResponse><params><param><value><int>x</int></value></param></params></methodResponse>"} {
		if _, err := DecodeXMLRPCResponse("op", []byte(bad)); KindOf(err) != KindProtocol {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestDecodeJSON2Response(t *testing.T) {
	v, err := DecodeJSON2Response("op", 200, []byte(`[{"id": 3, "email": false, "parent_id": [1, "YourCompany"], "ratio": 0.5, "big": 12345678901234567890}]`))
	if err != nil {
		t.Fatal(err)
	}
	recs := AsRecords(v)
	if len(recs) != 1 || recs[0].ID() != 3 || recs[0].String("email") != "" || recs[0]["ratio"] != 0.5 {
		t.Fatalf("%#v", recs)
	}
	if ref, ok := recs[0].Many2One("parent_id"); !ok || ref.ID != 1 || ref.Name != "YourCompany" {
		t.Fatalf("ref %+v", ref)
	}
	doc := func(name, msg string) []byte {
		return []byte(fmt.Sprintf(`{"name": %q, "message": %q, "arguments": [%q], "context": {}, "debug": "Traceback..."}`, name, msg, msg))
	}
	for _, tc := range []struct {
		status int
		body   []byte
		kind   Kind
		want   string
	}{
		{401, doc("werkzeug.exceptions.Unauthorized", "Invalid apikey"), KindCredentials, "wrong API key"},
		{401, []byte("Unauthorized"), KindCredentials, "wrong API key"},
		{403, doc("odoo.exceptions.AccessError", aclRead), KindAccess, "no access to model res.partner"},
		{403, doc("odoo.exceptions.AccessDenied", "Access Denied"), KindCredentials, "wrong API key"},
		{404, doc("werkzeug.exceptions.NotFound", "the model 'foo.bar' does not exist"), KindMissingModel, "model foo.bar does not exist"},
		{404, doc("werkzeug.exceptions.NotFound", "The method 'res.users.frob' does not exist"), KindMissingModel, "method res.users.frob does not exist"},
		{404, doc("werkzeug.exceptions.NotFound", `database "x" not found`), KindUnknownDatabase, `database "x" does not exist`},
		{404, doc("odoo.exceptions.MissingError", "Record does not exist or has been deleted."), KindUser, "Record does not exist"},
		{404, []byte("<!doctype html><title>404 Not Found</title>"), KindNoAPI, "JSON-2 is not served"},
		{422, doc("odoo.exceptions.ValidationError", "The operation cannot be completed"), KindUser, "cannot be completed"},
		{500, doc("builtins.ValueError", "Invalid field 'nope' on model 'res.partner'"), KindServer, "builtins.ValueError: Invalid field"},
		{502, []byte("<html>Bad Gateway</html>"), KindUnreachable, "HTTP 502"},
		{200, []byte("not json"), KindProtocol, "not JSON"},
		{200, []byte("1 2"), KindProtocol, "data after"},
	} {
		_, err := DecodeJSON2Response("op", tc.status, tc.body)
		e, ok := AsError(err)
		if !ok || e.Kind != tc.kind || !strings.Contains(e.Error(), tc.want) {
			t.Errorf("%d %s: got %v (kind %v), want %s containing %q", tc.status, tc.body, err, KindOf(err), tc.kind, tc.want)
		}
	}
}

// checkError is what every decoded error must satisfy, whatever came in:
// a kind, a one-line message of bounded length, valid UTF-8, no control
// characters.
func checkError(t *testing.T, err error) {
	t.Helper()
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("not an *Error: %T %v", err, err)
	}
	if _, known := kindSentinels[e.Kind]; !known {
		t.Fatalf("unknown kind %d", e.Kind)
	}
	for _, s := range []string{e.Message, e.Remote, e.Model} {
		if len(s) > 2*maxMessage || !utf8.ValidString(s) {
			t.Fatalf("bad text %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				t.Fatalf("control character in %q", s)
			}
		}
	}
	if e.Message == "" {
		t.Fatal("empty message")
	}
}

func FuzzDecodeFault(f *testing.F) {
	for _, s := range []string{"Fault(3): Access Denied", "Fault(4): " + aclRead, "Fault(4): " + aclNone,
		"Fault(2): Object foo.bar doesn't exist", "Fault(1): " + tbName, "Fault(1): " + tbDB, "Fault(-1): x", "Fault(2): \xff\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, str, ok := ParseFaultText(s)
		if ok {
			if c2, s2, ok2 := ParseFaultText(fmt.Sprintf("Fault(%d): %s", code, str)); !ok2 || c2 != code || s2 != str {
				t.Fatalf("re-parse of %d %q gave %d %q %v", code, str, c2, s2, ok2)
			}
			if !strings.HasSuffix(s, str) {
				t.Fatalf("fault string %q is not the tail of %q", str, s)
			}
			checkError(t, DecodeFault("op", code, str))
		}
		// Round trip for Odoo's own codes.
		for c := 1; c <= 4; c++ {
			e := xmlrpc.FaultError{Code: c, String: s}
			got, ok := FaultFromError("op", rpc.ServerError(e.Error()))
			if !ok || got.Code != c {
				t.Fatalf("round trip of code %d with %q: %+v %v", c, s, got, ok)
			}
			checkError(t, got)
		}
		checkError(t, DecodeLegacyFault("op", s, s))
	})
}

func FuzzDecodeJSON2Response(f *testing.F) {
	f.Add(200, []byte(`{"uid": 2, "lang": "en_US", "tz": false}`))
	f.Add(200, []byte(`[{"id": 1, "name": false, "partner_id": [3, "x"]}]`))
	f.Add(401, []byte(`{"name": "werkzeug.exceptions.Unauthorized", "message": "Invalid apikey", "arguments": ["Invalid apikey", 401], "context": {}, "debug": ""}`))
	f.Add(403, []byte(`{"name": "odoo.exceptions.AccessError", "message": "You are not allowed to access 'Contact' (res.partner) records.\n\nThis operation is allowed for the following groups:\n\t- A\n\nContact", "arguments": []}`))
	f.Add(404, []byte(`{"name": "werkzeug.exceptions.NotFound", "message": "the model 'foo.bar' does not exist"}`))
	f.Add(404, []byte(`<!doctype html>404`))
	f.Add(500, []byte(`{"name": "builtins.ValueError", "message": "x\u0000y"}`))
	f.Add(200, []byte(`1e999`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		v, err := DecodeJSON2Response("op", status, body)
		if err != nil {
			checkError(t, err)
			if v != nil {
				t.Fatal("value with an error")
			}
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("status %d decoded as success", status)
		}
		var walk func(any)
		walk = func(x any) {
			switch y := x.(type) {
			case nil, bool, string, int64, float64:
			case []any:
				for _, e := range y {
					walk(e)
				}
			case map[string]any:
				for _, e := range y {
					walk(e)
				}
			default:
				t.Fatalf("value of type %T escaped normalisation", x)
			}
		}
		walk(v)
	})
}

func FuzzDecodeXMLRPCResponse(f *testing.F) {
	f.Add([]byte(`<?xml version="1.0"?><methodResponse><params><param><value><struct><member><name>uid</name><value><int>2</int></value></member><member><name>tz</name><value><boolean>0</boolean></value></member></struct></value></param></params></methodResponse>`))
	f.Add([]byte(`<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>3</int></value></member><member><name>faultString</name><value><string>Access Denied</string></value></member></struct></value></fault></methodResponse>`))
	f.Add([]byte(`<methodResponse><fault><value><struct><member><name>faultCode</name><value><string>warning -- AccessError</string></value></member></struct></value></fault></methodResponse>`))
	f.Add([]byte(`<methodResponse><params><param><value><array><data><value><dateTime.iso8601>20260102T03:04:05</dateTime.iso8601></value><value><base64>AAEC</base64></value><value><double>1.5</double></value></data></array></value></param></params></methodResponse>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := DecodeXMLRPCResponse("op", body)
		if err != nil {
			checkError(t, err)
		}
	})
}
