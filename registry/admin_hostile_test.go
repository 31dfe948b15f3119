package registry_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"

	"go.yaml.in/yaml/v3"
)

// adminDo sends an admin request with the token and returns status, body
// and Content-Type of the answer. chunked hides the length from the server.
func adminDo(t *testing.T, e *env, token, method, path, contentType string, body []byte, chunked bool) (int, []byte, string) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(bytes.NewReader(body)) // no Len(): sent chunked
	}
	req, err := http.NewRequest(method, e.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, resp.Header.Get("Content-Type")
}

// TestAdminRoutesRefuseHostileBodies posts hostile bodies to every admin
// route that takes one (the server's own route list, which
// TestOpenAPIMatchesRoutes ties to openapi.yaml): each answer is a 4xx
// with the JSON error shape, and the store reads the same afterwards.
func TestAdminRoutesRefuseHostileBodies(t *testing.T) {
	const maxBody = 4096
	e := newEnv(t, func(c *registry.Config) { c.MaxBodyBytes = maxBody })
	tokenRaw, err := os.ReadFile(filepath.Join(e.data, registry.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenRaw))

	// Real objects, so each route gets past its path lookup to the body.
	p := e.partner(store.TierPartner, true)
	in := e.newInstall(p.Code)
	ticketID := newTicketID()
	tbody := mustJSON(t, api.TicketRequest{ID: ticketID, Subject: "calls drop", Body: "since Monday", Origin: api.OriginCLI, OpenedAt: e.clock.Now()})
	if status, raw := e.do("POST", api.InstallPath(api.PathTickets, in.id), tbody, in.id, in.key); status >= 300 {
		t.Fatalf("open ticket: %d %s", status, raw)
	}
	params := strings.NewReplacer("{code}", p.Code, "{id}", in.id, "{ticket}", ticketID, "{customer}", "cust-1", "{batch}", "batch-1")

	snapshot := func() string {
		var b strings.Builder
		for _, path := range []string{
			"/v1/admin/partners", "/v1/admin/partners/" + p.Code, "/v1/admin/partners/" + p.Code + "/channel",
			"/v1/admin/installs", "/v1/admin/installs/" + in.id, "/v1/admin/tickets", "/v1/admin/tickets/" + ticketID,
			"/v1/admin/customers/cust-1", "/v1/admin/ledger/balances", "/v1/admin/payouts/batch-1",
		} {
			status, raw, _ := adminDo(t, e, token, "GET", path, "", nil, false)
			b.WriteString(path + " " + http.StatusText(status) + " " + string(raw) + "\n")
		}
		return b.String()
	}
	before := snapshot()

	big := append([]byte(`{"name":"`), bytes.Repeat([]byte("A"), maxBody)...)
	big = append(big, `"}`...)
	type hostile struct {
		name, ct string
		body     []byte
		chunked  bool
		want     int // 0: any 4xx
	}
	bodies := []hostile{
		{"unknown field", "application/json", []byte(`{"zz_not_a_field":1}`), false, 0},
		{"truncated", "application/json", []byte(`{"name":"x`), false, 0},
		{"trailing data", "application/json", []byte(`{} {"zz":1}`), false, 0},
		{"array", "application/json", []byte(`[1,2,3]`), false, 0},
		{"string", "application/json", []byte(`"approve"`), false, 0},
		{"wrong types", "application/json", []byte(`{"name":1,"email":[],"tier":{},"by":false,"why":0,"partner_code":7,"type":[],"settings":"x","reason":{}}`), false, 0},
		{"deep nesting", "application/json", []byte(strings.Repeat("[", 2000) + strings.Repeat("]", 2000)), false, 0},
		{"invalid utf-8", "application/json", []byte("{\"zz\xff\":1}"), false, 0},
		{"too large", "application/json", big, false, http.StatusRequestEntityTooLarge},
		{"too large chunked", "application/json", big, true, http.StatusRequestEntityTooLarge},
		{"form body", "application/x-www-form-urlencoded", []byte("name=x&zz=1"), false, 0},
		{"text body", "text/plain", []byte("zz"), false, 0},
	}
	routes := 0
	for _, rt := range e.srv.Routes() {
		if !rt.Admin || (rt.Method != "POST" && rt.Method != "PUT" && rt.Method != "PATCH") {
			continue
		}
		routes++
		path := params.Replace(rt.Path)
		for _, h := range bodies {
			t.Run(rt.Method+" "+rt.Path+"/"+h.name, func(t *testing.T) {
				want := h.want
				if rt.Path == "/v1/admin/payments/import" {
					want = 0 // CSV imports have their own limit of 64 MiB (payments.go)
				}
				status, raw, ct := adminDo(t, e, token, rt.Method, path, h.ct, h.body, h.chunked)
				if status < 400 || status > 499 || (want != 0 && status != want) {
					t.Fatalf("%d %s, want a 4xx (%d)", status, raw, want)
				}
				if status == http.StatusNotFound && !strings.Contains(rt.Path, "{customer}") && !strings.Contains(rt.Path, "{batch}") {
					t.Fatalf("404 on a path whose object exists: %s", raw)
				}
				var eb api.ErrorBody
				dec := json.NewDecoder(bytes.NewReader(raw))
				dec.DisallowUnknownFields()
				if err := dec.Decode(&eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" || ct != "application/json" {
					t.Fatalf("answer is not {\"error\":{\"code\":…,\"message\":…}}: %q (%s, %v)", raw, ct, err)
				}
			})
		}
	}
	if routes < 10 {
		t.Fatalf("only %d admin routes with a body found", routes)
	}
	if after := snapshot(); after != before {
		t.Fatalf("the store changed under hostile bodies:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestListPartnersRefusesUnknownFilters: a mistyped filter is an error,
// not an empty list.
func TestListPartnersRefusesUnknownFilters(t *testing.T) {
	e := newEnv(t, nil)
	tokenRaw, err := os.ReadFile(filepath.Join(e.data, registry.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenRaw))
	e.partner(store.TierPartner, true)
	for q, want := range map[string]int{
		"?tier=gold": 400, "?status=asleep": 400, "?tier=Partner": 400,
		"?tier=partner": 200, "?status=approved": 200, "": 200,
	} {
		status, raw, _ := adminDo(t, e, token, "GET", "/v1/admin/partners"+q, "", nil, false)
		if status != want {
			t.Errorf("%s: %d %s, want %d", q, status, raw, want)
		}
		if status == 400 && errCode(t, raw) != api.CodeMalformed {
			t.Errorf("%s: %s", q, raw)
		}
	}
}

// TestListRoutesRefuseBadFilters: on every admin list, a filter value
// outside its enum or format, an unknown parameter or a repeated one is a
// 400 with the JSON error, never an empty or unfiltered list.
func TestListRoutesRefuseBadFilters(t *testing.T) {
	e := newEnv(t, nil)
	tokenRaw, err := os.ReadFile(filepath.Join(e.data, registry.AdminTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tokenRaw))
	p := e.partner(store.TierPartner, true)
	in := e.newInstall(p.Code)
	installs := "/v1/admin/installs"
	reports := "/v1/admin/installs/" + in.id + "/reports"
	seqs := "/v1/admin/installs/" + in.id + "/seqs"
	tickets := "/v1/admin/tickets"
	for q, want := range map[string]int{
		"/v1/admin/partners?tier=partner&tier=referral": 400,
		"/v1/admin/partners?teir=partner":               400,
		"/v1/admin/partners?limit=5":                    400,

		installs + "?status=zombie":                 400,
		installs + "?stauts=dead":                   400,
		installs + "?cloned=yes":                    400,
		installs + "?cloned=TRUE":                   400,
		installs + "?partner=NOT-A-CODE":            400,
		installs + "?after=../../x":                 400,
		installs + "?limit=0":                       400,
		installs + "?status=dead&status=active":     400,
		installs + "?status=active&cloned=false":    200,
		installs + "?cloned=true&partner=" + p.Code: 200,
		installs + "?after=" + in.id + "&limit=10":  200,
		reports + "?after=-1":                       400,
		reports + "?page=2":                         400,
		reports + "?after=0&limit=10":               200,
		seqs + "?limit=x":                           400,
		seqs + "?afterr=1":                          400,
		seqs + "?after=1":                           200,
		tickets + "?state=open":                     400,
		tickets + "?install=pbx1":                   400,
		tickets + "?after=t1":                       400,
		tickets + "?partner=nope":                   400,
		tickets + "?statee=held":                    400,
		tickets + "?state=held&state=queued":        400,
		"/v1/admin/partners/" + p.Code + "/statement?month=2026-01&fromat=csv": 400,
		tickets + "?state=held&install=" + in.id:                               200,
		tickets + "?partner=" + strings.ToLower(p.Code):                        200,
	} {
		status, raw, ct := adminDo(t, e, token, "GET", q, "", nil, false)
		if status != want {
			t.Errorf("%s: %d %s, want %d", q, status, raw, want)
			continue
		}
		if status == 400 && (errCode(t, raw) != api.CodeMalformed || !strings.HasPrefix(ct, "application/json")) {
			t.Errorf("%s: %s %s", q, ct, raw)
		}
	}
}

// TestOpenAPIListsDocumentTheir400: every GET under /v1 that takes query
// parameters lists the 400 its handler answers for a bad one.
func TestOpenAPIListsDocumentTheir400(t *testing.T) {
	raw, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Parameters map[string]struct {
				In string `yaml:"in"`
			} `yaml:"parameters"`
		} `yaml:"components"`
		Paths map[string]map[string]struct {
			Parameters []map[string]any `yaml:"parameters"`
			Responses  map[string]any   `yaml:"responses"`
		} `yaml:"paths"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	n := 0
	for path, ops := range doc.Paths {
		get, ok := ops["get"]
		if !ok || !strings.HasPrefix(path, "/v1/") {
			continue
		}
		query := false
		for _, prm := range get.Parameters {
			in, _ := prm["in"].(string)
			if ref, ok := prm["$ref"].(string); ok {
				in = doc.Components.Parameters[strings.TrimPrefix(ref, "#/components/parameters/")].In
			}
			query = query || in == "query"
		}
		if !query {
			continue
		}
		n++
		if _, ok := get.Responses["400"]; !ok {
			t.Errorf("GET %s takes query parameters but does not document its 400", path)
		}
	}
	if n < 5 {
		t.Fatalf("found only %d GET routes with query parameters: is the document read right?", n)
	}
}
