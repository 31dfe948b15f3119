package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// ticketStub accepts every request and records what it was given.
type ticketStub struct {
	stubAgent
	mu      sync.Mutex
	tickets []OpenTicketRequest
}

func (s *ticketStub) OpenTicket(_ context.Context, req OpenTicketRequest) (OpenTicketAnswer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tickets = append(s.tickets, req)
	return OpenTicketAnswer{ID: "t1", Seq: 1, Message: "queued"}, nil
}

func (s *ticketStub) Tickets(context.Context, bool) (TicketList, error) {
	return TicketList{Tickets: []TicketInfo{}}, nil
}

// post sends body to path on h and returns the status and decoded error.
func post(t testing.TB, h http.Handler, path, contentType string, body []byte) (int, api.ErrorBody, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var eb api.ErrorBody
	if rec.Code >= 400 {
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
			t.Fatalf("POST %s: %d with a body that is not the JSON error shape: %q", path, rec.Code, rec.Body.String())
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("POST %s: error with Content-Type %q", path, ct)
		}
	}
	return rec.Code, eb, rec.Body.Bytes()
}

func TestHostileBodies(t *testing.T) {
	a := &ticketStub{}
	h := Handler(a)
	big := []byte(`{"partner_code":"` + strings.Repeat("A", maxLinkBody) + `"}`)
	bigTicket := []byte(`{"subject":"s","body":"` + strings.Repeat("b", maxTicketBody) + `"}`)
	cases := []struct {
		name, path, ct, body string
		status               int
		code, msg            string
	}{
		{"empty", PathLink, "", "", 400, api.CodeMalformed, "body must be"},
		{"not json", PathLink, "", "partner_code=ABC", 400, api.CodeMalformed, "body must be"},
		{"unknown field", PathLink, "", `{"partner_code":"X","admin":true}`, 400, api.CodeMalformed, `unknown field "admin"`},
		{"wrong type", PathLink, "", `{"partner_code":["X"]}`, 400, api.CodeMalformed, "body must be"},
		{"trailing data", PathLink, "", `{"partner_code":"X"} {"partner_code":"Y"}`, 400, api.CodeMalformed, "nothing after it"},
		{"trailing garbage", PathLink, "", `{"partner_code":"X"}]`, 400, api.CodeMalformed, "nothing after it"},
		{"array", PathLink, "", `[{"partner_code":"X"}]`, 400, api.CodeMalformed, "body must be"},
		{"too large", PathLink, "", string(big), 413, api.CodeTooLarge, "larger than 4096 bytes"},
		{"form content type", PathLink, "application/x-www-form-urlencoded", `{"partner_code":"X"}`, 415, api.CodeMalformed, "not application/json"},
		{"bad content type", PathLink, ";;;", `{"partner_code":"X"}`, 415, api.CodeMalformed, "not application/json"},
		{"ticket unknown field", PathTickets, "", `{"subject":"s","priority":1}`, 400, api.CodeMalformed, `unknown field "priority"`},
		{"ticket too large", PathTickets, "", string(bigTicket), 413, api.CodeTooLarge, "larger than"},
		{"ticket trailing", PathTickets, "", `{"subject":"s"}{}`, 400, api.CodeMalformed, "nothing after it"},
		{"ticket text/plain", PathTickets, "text/plain", `{"subject":"s"}`, 415, api.CodeMalformed, "not application/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, eb, raw := post(t, h, c.path, c.ct, []byte(c.body))
			if status != c.status || eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.msg) {
				t.Fatalf("%d %s, want %d %s with %q", status, raw, c.status, c.code, c.msg)
			}
		})
	}
	if len(a.links) != 0 || len(a.tickets) != 0 {
		t.Fatalf("a refused body reached the agent: links %v, tickets %v", a.links, a.tickets)
	}
	// The good bodies still pass, with or without a JSON Content-Type.
	for _, ct := range []string{"", "application/json", "application/json; charset=utf-8"} {
		if status, _, raw := post(t, h, PathLink, ct, []byte(`{"partner_code":"K7QM-4XJD-R"}`)); status != 202 {
			t.Fatalf("good link with %q: %d %s", ct, status, raw)
		}
	}
	if status, _, raw := post(t, h, PathTickets, "", []byte(`{"subject":"s","body":"b","dry_run":true}`)); status != 200 {
		t.Fatalf("good ticket: %d %s", status, raw)
	}
}

// TestOversizedBodyOnTheSocket sends a body far above the limit over the
// real unix socket: the agent answers 413 and keeps serving.
func TestOversizedBodyOnTheSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "lapi") // short path: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "a.sock")
	a := &ticketStub{}
	stop, err := Serve(context.Background(), sock, a, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	body := bytes.Repeat([]byte("x"), 8<<20)
	resp, err := hc.Post("http://agent"+PathLink, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var eb api.ErrorBody
	_ = json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if resp.StatusCode != 413 || eb.Error.Code != api.CodeTooLarge {
		t.Fatalf("8 MiB body: %d %+v", resp.StatusCode, eb)
	}
	if _, err := NewClient(sock).Link(context.Background(), "K7QM-4XJD-R"); err != nil {
		t.Fatalf("agent after the big body: %v", err)
	}
	var e *Error
	if _, err := NewClient(sock).Link(context.Background(), strings.Repeat("A", 5000)); !errors.As(err, &e) || e.HTTPStatus != 413 {
		t.Fatalf("client with a too long code: %v", err)
	}
}

func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{
		`{"partner_code":"K7QM-4XJD-R"}`,
		`{"subject":"phones down","body":"since 9:00","no_diagnostics":true,"dry_run":true,"origin":"cli"}`,
		`{"partner_code":"\u0000\ud800"}`,
		`{"subject":1e999}`,
		`{"partner_code":"a"}{`,
		`{"PARTNER_CODE":"x"}`,
		`nul`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, tickets bool) {
		a := &ticketStub{}
		path := PathLink
		if tickets {
			path = PathTickets
		}
		status, eb, raw := post(t, Handler(a), path, "", body)
		switch {
		case status == 202 || status == 200:
			// Accepted: the body must be exactly one JSON object.
			dec := json.NewDecoder(bytes.NewReader(body))
			var v map[string]any
			if err := dec.Decode(&v); err != nil || v == nil && !bytes.Equal(bytes.TrimSpace(body), []byte("null")) {
				t.Fatalf("accepted %q: %v", body, err)
			}
			if len(a.links)+len(a.tickets) != 1 {
				t.Fatalf("accepted without reaching the agent once: %q", body)
			}
		case status == 400 || status == 413:
			if eb.Error.Code != api.CodeMalformed && eb.Error.Code != api.CodeTooLarge {
				t.Fatalf("error code %q", eb.Error.Code)
			}
			if len(a.links)+len(a.tickets) != 0 {
				t.Fatalf("refused %q but the agent got it", body)
			}
		default:
			t.Fatalf("status %d for %q: %s", status, body, raw)
		}
	})
}
