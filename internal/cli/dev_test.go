package cli

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kolo/xmlrpc"

	"github.com/switchboard-dev/switchboard/internal/testenv"
)

// startEmulate runs 'dev emulate' in the background and returns what it
// printed on start; the emulator stops at the end of the test.
func startEmulate(t *testing.T, args ...string) emulatorInfo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr testenv.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &stdout, Stderr: &stderr}
	root := NewRootCommand(app)
	root.SetArgs(append([]string{"dev", "emulate", "--output", "json", "--listen", "127.0.0.1:0"}, args...))
	root.SetOut(&stdout)
	root.SetErr(&stderr)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("dev emulate ended with %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("dev emulate did not stop on cancel")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var info emulatorInfo
		if err := json.Unmarshal([]byte(stdout.String()), &info); err == nil && info.URL != "" {
			if !strings.Contains(stderr.String(), "emulator running") {
				t.Fatalf("no start log line: %s", stderr.String())
			}
			return info
		}
		select {
		case err := <-done:
			t.Fatalf("dev emulate exited early: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no startup output; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestDevEmulateAsterisk(t *testing.T) {
	info := startEmulate(t, "asterisk", "--endpoint", "PJSIP/100", "--endpoint", "PJSIP/101=offline", "--version", "22.5.0")
	if info.User != "asterisk" || info.Password != "asterisk" || info.Version != "22.5.0" || !strings.HasPrefix(info.WebsocketURL, "ws://127.0.0.1:") {
		t.Fatalf("info %+v", info)
	}
	req, _ := http.NewRequest("GET", info.URL+"/endpoints", nil)
	req.SetBasicAuth(info.User, info.Password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"resource":"101","state":"offline"`) {
		t.Fatalf("endpoints %d %s", resp.StatusCode, body)
	}
	resp, err = http.Get(info.ControlURL + "state")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("control state %d", resp.StatusCode)
	}
}

func TestDevEmulateOdoo(t *testing.T) {
	info := startEmulate(t, "odoo", "--version", "19", "--edition", "enterprise", "--db", "acme", "--user", "boss", "--password", "pw", "--api-key", "k1")
	if info.Database != "acme" || info.User != "boss" || info.APIKey != "k1" || info.Version != "19.0" || info.JSON2URL == "" || len(info.XMLRPCURLs) != 2 {
		t.Fatalf("info %+v", info)
	}
	c, err := xmlrpc.NewClient(info.XMLRPCURLs[0], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var uid int
	if err := c.Call("authenticate", []any{"acme", "boss", "k1", map[string]any{}}, &uid); err != nil || uid != 2 {
		t.Fatalf("authenticate %d %v", uid, err)
	}
}

func TestDevEmulateRefusesBadInput(t *testing.T) {
	cases := map[string][]string{
		"remote":            {"dev", "emulate", "asterisk", "--listen", "0.0.0.0:8088"},
		"all interfaces":    {"dev", "emulate", "odoo", "--listen", ":8069"},
		"not host:port":     {"dev", "emulate", "asterisk", "--listen", "8088"},
		"bad port":          {"dev", "emulate", "asterisk", "--listen", "127.0.0.1:99999"},
		"unknown product":   {"dev", "emulate", "freepbx", "--listen", "127.0.0.1:0"},
		"odoo flag on ari":  {"dev", "emulate", "asterisk", "--listen", "127.0.0.1:0", "--db", "x"},
		"ari flag on odoo":  {"dev", "emulate", "odoo", "--listen", "127.0.0.1:0", "--endpoint", "PJSIP/1"},
		"odoo version":      {"dev", "emulate", "odoo", "--listen", "127.0.0.1:0", "--version", "15"},
		"asterisk version":  {"dev", "emulate", "asterisk", "--listen", "127.0.0.1:0", "--version", "twenty"},
		"edition":           {"dev", "emulate", "odoo", "--listen", "127.0.0.1:0", "--edition", "pro"},
		"xmlrpc off on 18":  {"dev", "emulate", "odoo", "--listen", "127.0.0.1:0", "--version", "18", "--disable-xmlrpc"},
		"endpoint format":   {"dev", "emulate", "asterisk", "--listen", "127.0.0.1:0", "--endpoint", "PJSIP100"},
		"endpoint state":    {"dev", "emulate", "asterisk", "--listen", "127.0.0.1:0", "--endpoint", "PJSIP/100=busy"},
		"missing argument":  {"dev", "emulate"},
		"too many products": {"dev", "emulate", "odoo", "asterisk"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			code, _, stderr := run(t, args...)
			if code != ExitUsage || !strings.HasPrefix(stderr, "error: ") {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
		})
	}
}
