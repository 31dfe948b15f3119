package odoo

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

func TestDecodeRequestValues(t *testing.T) {
	req := `<?xml version="1.0"?>
<methodCall><methodName>execute_kw</methodName><params>
 <param><value><int>1</int></value></param>
 <param><value><i4>-2</i4></value></param>
 <param><value><i8>3000000000</i8></value></param>
 <param><value><boolean>1</boolean></value></param>
 <param><value><double>2.5</double></value></param>
 <param><value>bare &amp; text</value></param>
 <param><value><string></string></value></param>
 <param><value><base64>aGVsbG8=</base64></value></param>
 <param><value><dateTime.iso8601>20240501T10:00:00</dateTime.iso8601></value></param>
 <param><value><nil/></value></param>
 <param><value><array><data><value><int>7</int></value><value><struct>
   <member><name>k</name><value><array><data/></array></value></member>
 </struct></value></data></array></value></param>
</params></methodCall>`
	method, params, err := DecodeRequest(strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	want := []any{1, -2, 3000000000, true, 2.5, "bare & text", "", []byte("hello"), "20240501T10:00:00", nil,
		[]any{7, map[string]any{"k": []any{}}}}
	if method != "execute_kw" || !reflect.DeepEqual(params, want) {
		t.Fatalf("got %s %#v", method, params)
	}
	bad := map[string]string{
		"bad boolean":  `<methodCall><methodName>m</methodName><params><param><value><boolean>2</boolean></value></param></params></methodCall>`,
		"bad int":      `<methodCall><methodName>m</methodName><params><param><value><int>x</int></value></param></params></methodCall>`,
		"unknown tag":  `<methodCall><methodName>m</methodName><params><param><value><bignum>1</bignum></value></param></params></methodCall>`,
		"no name":      `<methodCall><params/></methodCall>`,
		"truncated":    `<methodCall><methodName>m</methodName><params><param><value><int>1`,
		"wrong root":   `<methodResponse/>`,
		"member":       `<methodCall><methodName>m</methodName><params><param><value><struct><member><name>a</name></member></struct></value></param></params></methodCall>`,
		"deep nesting": `<methodCall><methodName>m</methodName><params><param><value>` + strings.Repeat("<array><data><value>", 100) + `1` + strings.Repeat("</value></data></array>", 100) + `</value></param></params></methodCall>`,
	}
	for name, body := range bad {
		if _, _, err := DecodeRequest(strings.NewReader(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEncodeLikePython(t *testing.T) {
	out, err := EncodeResponse(map[string]any{"a": []any{1, false, "x<y", 1.0}, "b": map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	want := "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><struct>\n<member>\n<name>a</name>\n" +
		"<value><array><data>\n<value><int>1</int></value>\n<value><boolean>0</boolean></value>\n<value><string>x&lt;y</string></value>\n<value><double>1.0</double></value>\n</data></array></value>\n" +
		"</member>\n<member>\n<name>b</name>\n<value><struct>\n</struct></value>\n</member>\n</struct></value>\n</param>\n</params>\n</methodResponse>\n"
	if string(out) != want {
		t.Fatalf("got\n%s\nwant\n%s", out, want)
	}
	if _, err := EncodeResponse([]any{nil}); err == nil || err.Error() != "cannot marshal None unless allow_none is enabled" {
		t.Fatalf("None: %v", err)
	}
	if _, err := EncodeResponse(1 << 40); err == nil {
		t.Fatal("int beyond 32 bits marshalled")
	}
}

// FuzzXMLRPCRequest feeds arbitrary bodies to the request decoder and to
// the whole XML-RPC endpoint: neither may panic, and every answer must be
// a well-formed XML-RPC response.
func FuzzXMLRPCRequest(f *testing.F) {
	f.Add([]byte(`<methodCall><methodName>version</methodName></methodCall>`))
	f.Add([]byte(`<methodCall><methodName>execute_kw</methodName><params><param><value>demo</value></param><param><value><int>2</int></value></param><param><value>admin</value></param><param><value>res.partner</value></param><param><value>search_read</value></param><param><value><array><data><value><array><data><value><array><data><value>name</value><value>ilike</value><value>a</value></data></array></value></data></array></value></data></array></value></param><param><value><struct><member><name>limit</name><value><int>1</int></value></member></struct></value></param></params></methodCall>`))
	f.Add([]byte(`<methodCall><methodName>authenticate</methodName><params><param><value>demo</value></param><param><value>admin</value></param><param><value>admin</value></param><param><value><struct/></value></param></params></methodCall>`))
	f.Add([]byte(`<methodCall><methodName>x</methodName><params><param><value><base64>!!</base64></value></param></params></methodCall>`))
	s, err := New(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		method, params, err := DecodeRequest(bytes.NewReader(body))
		if err == nil && params == nil {
			t.Fatalf("decoded %q without a params slice", method)
		}
		for _, service := range []string{"common", "object"} {
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/xmlrpc/2/"+service, bytes.NewReader(body)))
			if rec.Code != http.StatusOK || !bytes.HasPrefix(rec.Body.Bytes(), []byte("<?xml version='1.0'?>\n<methodResponse>")) {
				t.Fatalf("%s answered %d %q", service, rec.Code, rec.Body.String())
			}
		}
	})
}
