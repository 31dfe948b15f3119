package localapi

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/registry/api"
)

type stubAgent struct{ links []string }

func (s *stubAgent) Status(context.Context) Status {
	return Status{Licence: LicenceInfo{State: "grace", Licensed: true},
		Outbox:  OutboxInfo{Stats: outbox.Stats{Depth: 3, OldestAt: time.Now().Add(-time.Minute)}},
		Plugins: []PluginStatus{{PluginHealth: api.PluginHealth{Name: "odoo", Healthy: false}}, {PluginHealth: api.PluginHealth{Name: "asterisk", Healthy: true}}}}
}

func (s *stubAgent) RequestLink(_ context.Context, code string) (LinkAnswer, error) {
	if code == "bad" {
		return LinkAnswer{}, &Error{HTTPStatus: 409, Code: api.CodeAlreadyLinked, Message: "already linked"}
	}
	s.links = append(s.links, code)
	return LinkAnswer{Seq: 7, Code: code}, nil
}

func TestServeAndClient(t *testing.T) {
	dir, err := os.MkdirTemp("", "lapi") // short path: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "a.sock")
	c := NewClient(sock)
	if _, err := c.Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("no agent: want ErrNotRunning, got %v", err)
	}
	a := &stubAgent{}
	stop, err := Serve(context.Background(), sock, a, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer stop(context.Background())
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v %v", fi.Mode(), err)
	}
	if _, err := Serve(context.Background(), sock, a, hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "already serving") {
		t.Fatalf("second server on a live socket: %v", err)
	}
	st, err := c.Status(context.Background())
	if err != nil || st.Licence.State != "grace" || st.Outbox.Depth != 3 {
		t.Fatalf("status %+v %v", st, err)
	}
	if ans, err := c.Link(context.Background(), "K7QM-4XJD-R"); err != nil || ans.Seq != 7 {
		t.Fatalf("link %+v %v", ans, err)
	}
	var e *Error
	if _, err := c.Link(context.Background(), "bad"); !errors.As(err, &e) || e.HTTPStatus != 409 || e.Code != api.CodeAlreadyLinked {
		t.Fatalf("refused link: %v", err)
	}
	m, err := c.Metrics(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"switchboard_agent_outbox_depth 3", `switchboard_agent_licence_state{state="grace"} 1`,
		`switchboard_agent_plugin_healthy{plugin="asterisk"} 1`, `switchboard_agent_plugin_healthy{plugin="odoo"} 0`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if !strings.Contains(m, "switchboard_agent_outbox_oldest_age_seconds 6") {
		t.Errorf("oldest age not about 60s:\n%s", m)
	}
}

func TestHandlerRejectsBadInput(t *testing.T) {
	h := Handler(&stubAgent{})
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", PathLink, `{"partner_code":1}`, 400},
		{"POST", PathLink, `{"code":"x"}`, 400},
		{"POST", PathLink, strings.Repeat("x", 10000), 413},
		{"GET", "/nope", "", 404},
		{"DELETE", PathStatus, "", 405},
	} {
		rec := &recorder{header: http.Header{}}
		req, _ := http.NewRequest(c.method, c.path, strings.NewReader(c.body))
		h.ServeHTTP(rec, req)
		if rec.status != c.want {
			t.Errorf("%s %s %q: %d, want %d", c.method, c.path, c.body, rec.status, c.want)
		}
	}
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) { r.status = s }
