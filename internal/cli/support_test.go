package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testenv/registrytest"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

func TestSupportCommandErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	cases := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no subject", []string{"support", "open", "--socket", sock}, ExitUsage, "--subject"},
		{"body twice", []string{"support", "open", "--socket", sock, "--subject", "s", "--body", "b", "--body-file", "f"}, ExitUsage, "not both"},
		{"missing body file", []string{"support", "open", "--socket", sock, "--subject", "s", "--body-file", filepath.Join(t.TempDir(), "nope")}, ExitFailed, "read the body"},
		{"agent not running", []string{"support", "open", "--socket", sock, "--subject", "s"}, ExitUnreachable, "not running"},
		{"origin unknown", []string{"support", "open", "--socket", sock, "--subject", "s", "--origin", "email"}, ExitUsage, `--origin "email": use cli, odoo or other`},
		{"origin of the agent", []string{"support", "open", "--socket", sock, "--subject", "s", "--origin", "agent"}, ExitUsage, "opened by the agent"},
		{"origin odoo accepted", []string{"support", "open", "--socket", sock, "--subject", "s", "--origin", "ODOO"}, ExitUnreachable, "not running"},
		{"list, agent not running", []string{"support", "list", "--socket", sock}, ExitUnreachable, "not running"},
		{"route without why", []string{"registry", "support", "route", "tx", "--to", "vendor", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUsage, "--why"},
		{"channel bad setting", []string{"registry", "partner", "channel", "set", "K7QM-4XJD-R", "--type", "webhook", "--setting", "novalue", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUsage, "KEY=VALUE"},
		{"registry unreachable", []string{"registry", "support", "list", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUnreachable, "unreachable"},
		{"note without text", []string{"registry", "support", "note", "tx", "--author", "a", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUsage, "--text TEXT or --file FILE"},
		{"note with text and file", []string{"registry", "support", "note", "tx", "--text", "a", "--file", "-", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUsage, "not both"},
		{"note without ticket", []string{"registry", "support", "note", "--text", "a", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUsage, "accepts 1 arg"},
		{"note blank text", []string{"registry", "support", "note", "tx", "--text", " \n ", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitFailed, "text is empty"},
		{"note missing file", []string{"registry", "support", "note", "tx", "--file", filepath.Join(t.TempDir(), "nope"), "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitFailed, "read the note"},
		{"note registry unreachable", []string{"registry", "support", "note", "tx", "--text", "a", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUnreachable, "unreachable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, c.args...)
			if code != c.want || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, c.want, stderr, c.msg)
			}
		})
	}
}

// openHeldTicket activates an unlinked install at the registry at url and
// opens a ticket for it; with no vendor channel the ticket is held.
func openHeldTicket(t *testing.T, url string) string {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	post := func(path, installID string, v any) []byte {
		body, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest("POST", url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		api.SignRequest(req, body, installID, key, time.Now())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", path, resp.StatusCode, raw)
		}
		return raw
	}
	var ar api.ActivationResponse
	raw := post(api.PathActivations, "", api.ActivationRequest{PublicKey: key.Public().(ed25519.PublicKey), Facts: api.Facts{Hostname: "pbx-cli"}})
	if err := json.Unmarshal(raw, &ar); err != nil {
		t.Fatal(err)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := "t" + base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding).EncodeToString(b[:])
	post(api.InstallPath(api.PathTickets, ar.InstallID), ar.InstallID, api.TicketRequest{ID: id, Subject: "calls drop", OpenedAt: time.Now().UTC()})
	return id
}

// TestRegistrySupportNote adds staff notes through the CLI to a ticket at
// a real registry and reads them back with 'registry support show'.
func TestRegistrySupportNote(t *testing.T) {
	isolate(t)
	srv := registrytest.Start(t, nil)
	reg := []string{"--registry", srv.URL, "--token", srv.AdminToken}
	id := openHeldTicket(t, srv.URL)

	code, stdout, stderr := run(t, append([]string{"registry", "support", "note", id, "--author", "alice", "--text", "Called the customer back."}, reg...)...)
	if code != ExitOK || stderr != "" || !strings.Contains(stdout, "added to ticket "+id+" by alice (staff)") ||
		!strings.Contains(stdout, "delivery: pending: the ticket is held") {
		t.Fatalf("note --text: exit %d\nstdout %q\nstderr %q", code, stdout, stderr)
	}

	// --file - with --output json.
	var out, errb bytes.Buffer
	args := append([]string{"registry", "support", "note", id, "--author", "bob", "--file", "-", "--output", "json"}, reg...)
	if code := Execute(args, strings.NewReader("line one\n\tline two\n"), &out, &errb); code != ExitOK {
		t.Fatalf("note --file -: exit %d, stderr %q", code, errb.String())
	}
	var ans adminapi.NoteResponse
	if err := json.Unmarshal(out.Bytes(), &ans); err != nil {
		t.Fatalf("--output json is not a NoteResponse: %v\n%s", err, out.String())
	}
	if ans.TicketID != id || ans.TicketState != store.TicketHeld || ans.Note.By != "bob" || !ans.Note.Staff ||
		ans.Note.Text != "line one\n\tline two" || ans.Note.State != store.NotePending || !strings.HasPrefix(ans.Note.ID, "staff-") {
		t.Errorf("json answer %+v", ans)
	}

	code, stdout, stderr = run(t, append([]string{"registry", "support", "show", id}, reg...)...)
	if code != ExitOK || !strings.Contains(stdout, "by alice (staff): Called the customer back.") ||
		!strings.Contains(stdout, "by bob (staff): line one") || strings.Count(stdout, "delivery: pending") != 2 {
		t.Fatalf("show: exit %d\nstdout %s\nstderr %q", code, stdout, stderr)
	}

	// Refused by the registry: exit 1 with its reason, nothing stored.
	long := filepath.Join(t.TempDir(), "long.txt")
	if err := os.WriteFile(long, bytes.Repeat([]byte("n"), api.MaxNoteLen+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		args []string
		msg  string
	}{
		{"unknown ticket", []string{"tabcdefghijklmnopqrstuvwxyz", "--text", "x"}, "not known"},
		{"author with a control character", []string{id, "--author", "al\x1bice", "--text", "x"}, "control characters"},
		{"text with a control character", []string{id, "--text", "a\x00b"}, "control characters"},
		{"file longer than a note", []string{id, "--file", long}, "longer than 4096 bytes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, stdout, stderr := run(t, append(append([]string{"registry", "support", "note"}, c.args...), reg...)...)
			if code != ExitFailed || stdout != "" || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d (want %d), stdout %q, stderr %q (want %q)", code, ExitFailed, stdout, stderr, c.msg)
			}
			oneErrorLine(t, stderr)
		})
	}
	code, stdout, _ = run(t, append([]string{"registry", "support", "show", id, "--output", "json"}, reg...)...)
	var tk store.Ticket
	if err := json.Unmarshal([]byte(stdout), &tk); code != ExitOK || err != nil || len(tk.Notes) != 2 {
		t.Errorf("notes after the refusals: exit %d, %d notes, %v", code, len(tk.Notes), err)
	}
}
