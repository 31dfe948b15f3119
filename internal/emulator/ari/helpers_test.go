package ari

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/websocket"
)

var (
	modelsOnce sync.Once
	models     *Models
	modelsErr  error
)

// testModels loads the official API descriptions from ../shared/reference/ari
// (or $SWITCHBOARD_ARI_MODELS).
func testModels(t *testing.T) *Models {
	t.Helper()
	modelsOnce.Do(func() {
		dir, err := FindModelsDir()
		if err != nil {
			modelsErr = err
			return
		}
		models, modelsErr = LoadModels(dir)
	})
	if modelsErr != nil {
		t.Fatalf("load ARI models: %v", modelsErr)
	}
	return models
}

// startServer runs an emulator validating its own output; at the end of the
// test it fails on any violation.
func startServer(t *testing.T, opts Options) *Server {
	t.Helper()
	opts.Models = testModels(t)
	s := New(opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		for _, v := range s.Violations() {
			t.Errorf("emulator output violation: %s", v)
		}
	})
	return s
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// call makes an ARI request with the default credentials.
func call(t *testing.T, s *Server, method, path string, body string) response {
	t.Helper()
	return callAuth(t, s, method, path, body, DefaultUser, DefaultPassword)
}

func callAuth(t *testing.T, s *Server, method, path, body, user, pass string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+s.Addr()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// mustModel fails unless r is a 200 whose body matches typ.
func mustModel(t *testing.T, r response, typ string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	if err := testModels(t).ValidateModel(typ, r.body); err != nil {
		t.Fatalf("%s: %v\n%s", typ, err, r.body)
	}
}

func wantError(t *testing.T, r response, status int, msg string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	var e struct{ Message string }
	if err := json.Unmarshal(r.body, &e); err != nil || e.Message != msg {
		t.Fatalf("body %s, want message %q", r.body, msg)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}

// wsClient is a raw events websocket, as any ARI client opens it.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialEvents(t *testing.T, s *Server, query string) *wsClient {
	t.Helper()
	cfg, err := websocket.NewConfig(s.WebsocketURL()+"?"+query, "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(DefaultUser+":"+DefaultPassword)))
	conn, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatalf("dial events: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &wsClient{t: t, conn: conn}
}

// next returns the next event (validated against the models), or nil after
// timeout.
func (c *wsClient) next(timeout time.Duration) map[string]any {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var data []byte
	if err := websocket.Message.Receive(c.conn, &data); err != nil {
		return nil
	}
	if err := testModels(c.t).ValidateMessage(data); err != nil {
		c.t.Fatalf("event does not validate: %v\n%s", err, data)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		c.t.Fatal(err)
	}
	return m
}

// expect reads the next event and checks its type and application.
func (c *wsClient) expect(typ, app string) map[string]any {
	c.t.Helper()
	ev := c.next(5 * time.Second)
	if ev == nil {
		c.t.Fatalf("no %s event arrived", typ)
	}
	if ev["type"] != typ || ev["application"] != app {
		c.t.Fatalf("got %v for %v, want %s for %s", ev["type"], ev["application"], typ, app)
	}
	for _, k := range []string{"timestamp", "asterisk_id"} {
		if _, ok := ev[k]; !ok {
			c.t.Fatalf("event lacks %s: %v", k, ev)
		}
	}
	return ev
}

// quiet checks that no event arrives for a short while.
func (c *wsClient) quiet() {
	c.t.Helper()
	if ev := c.next(150 * time.Millisecond); ev != nil {
		c.t.Fatalf("unexpected event %v", ev)
	}
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// receiveText reads one message verbatim (for raw events no model covers).
func receiveText(c *wsClient, out *string) error {
	return websocket.Message.Receive(c.conn, out)
}
