package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/plugins/channels/webhook"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// note adds a note to one of in's tickets, as the agent does.
func (e *senv) note(in sinst, ticketID, noteID, text string) {
	e.t.Helper()
	body := mustJSON(e.t, api.TicketNoteRequest{ID: noteID, Text: text, At: time.Now().UTC()})
	status, raw := e.do("POST", api.TicketPath(api.PathTicketNotes, in.id, ticketID), body, in.id, in.key)
	if status != http.StatusOK {
		e.t.Fatalf("note: %d %s", status, raw)
	}
}

func noteState(id string, want store.NoteState) func(store.Ticket) bool {
	return func(t store.Ticket) bool {
		for _, n := range t.Notes {
			if n.ID == id {
				return n.State == want
			}
		}
		return false
	}
}

// TestSupportNotesReachThePartnerOnce: a note on a delivered ticket goes
// to the partner's webhook as ticket.note, once, even when the first
// attempts fail and the registry restarts in between; a note added before
// the ticket was delivered follows it.
func TestSupportNotesReachThePartnerOnce(t *testing.T) {
	rx := newReceiver(t, hookSecret)
	e := newSupportEnv(t, func(c *registry.Config) { c.Support.GiveUpAfter = registry.Duration(time.Hour) })
	p := e.partner(store.TierPartner, "Note Partner")
	e.setChannel(p.Code, "webhook", rx.settings())
	in := e.install(p.Code, "pbx-n")
	id := newTicketID()
	e.open(in, id, "asterisk unhealthy")
	st := e.waitTicket(id, "delivery", delivered)

	rx.setStatus(http.StatusServiceUnavailable)
	e.note(in, id, "recovered", "asterisk is healthy again")
	e.note(in, id, "recovered", "asterisk is healthy again") // the agent retrying: one note
	st = e.waitTicket(id, "a failed note attempt", func(t store.Ticket) bool {
		return len(t.Notes) == 1 && t.Notes[0].Attempts > 0 && t.Notes[0].State == store.NotePending && t.Notes[0].LastError != ""
	})
	if st.State != store.TicketDelivered || st.NextAttemptAt.IsZero() {
		t.Fatalf("ticket with a pending note: state %s next %v", st.State, st.NextAttemptAt)
	}
	e.stop()
	rx.setStatus(200)
	e.start()
	st = e.waitTicket(id, "note delivered after the restart", noteState("recovered", store.NoteDelivered))
	n := st.Notes[0]
	if n.Receipt == nil || n.Receipt.RemoteID != "C-recovered" || n.DeliveredAt.IsZero() || n.LastError != "" || !st.NextAttemptAt.IsZero() {
		t.Errorf("note %+v, ticket next attempt %v", n, st.NextAttemptAt)
	}
	notes, _ := rx.gotNotes()
	if len(notes) != 1 {
		t.Fatalf("partner got %d notes, want 1", len(notes))
	}
	got := notes[0]
	if got.Event != webhook.EventTicketNote || got.Note.TicketID != id || got.Note.Text != "asterisk is healthy again" ||
		got.Note.TicketRemoteID != "HD-"+id[:6] || got.Note.Author != "install" || got.DeliveryID != n.DeliveryID {
		t.Errorf("note payload %+v (stored %+v)", got, n)
	}
	// Another restart does not send it again.
	e.stop()
	e.start()
	time.Sleep(300 * time.Millisecond) // a few poll intervals
	if notes, hits := rx.gotNotes(); len(notes) != 1 || hits < 1 {
		t.Errorf("after a second restart: %d notes, %d posts", len(notes), hits)
	}
	if len(rx.tickets()) != 1 {
		t.Errorf("ticket delivered %d times", len(rx.tickets()))
	}

	// A note added while the ticket waits follows the ticket.
	rx.setStatus(http.StatusBadGateway)
	id2 := newTicketID()
	e.open(in, id2, "second")
	e.waitTicket(id2, "a failed attempt", func(t store.Ticket) bool { return t.State == store.TicketRetrying })
	e.note(in, id2, "more", "it also drops inbound calls")
	rx.setStatus(200)
	e.waitTicket(id2, "note delivered after the ticket", noteState("more", store.NoteDelivered))
}

// TestSupportNotesOnAChannelWithoutNotes: the filedrop test plugin has no
// DeliverNote; its notes are marked unsupported, once, with a clear error.
func TestSupportNotesOnAChannelWithoutNotes(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "switchboard-plugin-filedrop")
	build := exec.Command("go", "build", "-o", bin, "github.com/switchboard-dev/switchboard/plugins/channels/internal/filedrop")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build filedrop: %v\n%s", err, out)
	}
	sum, err := host.FileSHA256(bin)
	if err != nil {
		t.Fatal(err)
	}
	drop := t.TempDir()
	e := newSupportEnv(t, func(c *registry.Config) {
		c.Support.ChannelTypes = map[string]registry.ChannelType{"filedrop": {Path: bin, SHA256: sum}}
	})
	p := e.partner(store.TierPartner, "File Partner")
	e.setChannel(p.Code, "filedrop", map[string]string{"dir": drop})
	in := e.install(p.Code, "pbx-fn")
	id := newTicketID()
	e.open(in, id, "no notes here")
	e.waitTicket(id, "delivery", delivered)
	e.note(in, id, "n1", "a note the channel cannot take")
	st := e.waitTicket(id, "note unsupported", noteState("n1", store.NoteUnsupported))
	n := st.Notes[0]
	if n.Attempts != 1 || !strings.Contains(n.LastError, "channel filedrop cannot deliver notes") || !st.NextAttemptAt.IsZero() {
		t.Errorf("note %+v, ticket next attempt %v", n, st.NextAttemptAt)
	}
	if _, err := os.Stat(filepath.Join(drop, id+".json")); err != nil {
		t.Errorf("ticket not dropped: %v", err)
	}
}

// staffNote adds a note to a ticket as staff do, through the admin client.
func (e *senv) staffNote(ticketID, author, text string) adminapi.NoteResponse {
	e.t.Helper()
	ans, err := e.admin.AddTicketNote(context.Background(), ticketID, adminapi.NoteRequest{Author: author, Text: text})
	if err != nil {
		e.t.Fatalf("staff note: %v", err)
	}
	return ans
}

// adminRaw sends body to path with the admin token (none when token is
// ""), for the answers the typed client does not show.
func (e *senv) adminRaw(token, method, path string, body []byte) (int, api.ErrorBody, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var eb api.ErrorBody
	_ = json.Unmarshal(raw, &eb)
	return resp.StatusCode, eb, raw
}

func (e *senv) adminToken() string {
	e.t.Helper()
	raw, err := os.ReadFile(filepath.Join(e.data, registry.AdminTokenFile))
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(string(raw))
}

func staffNotePath(ticketID string) string {
	return strings.Replace(adminapi.PathTicketNotes, "{ticket}", ticketID, 1)
}

// TestSupportStaffNoteReachesThePartner: a note staff add to a delivered
// ticket is stored as a staff note and reaches the partner's webhook as a
// ticket.note event, once, with the author marked as vendor staff.
func TestSupportStaffNoteReachesThePartner(t *testing.T) {
	rx := newReceiver(t, hookSecret)
	e := newSupportEnv(t, nil)
	p := e.partner(store.TierPartner, "Staff Note Partner")
	e.setChannel(p.Code, "webhook", rx.settings())
	in := e.install(p.Code, "pbx-s")
	id := newTicketID()
	e.open(in, id, "calls drop")
	e.waitTicket(id, "delivery", delivered)

	ans := e.staffNote(id, "  alice ", "Carrier confirmed the outage.\nFixed since 10:40.\n")
	n := ans.Note
	if ans.TicketID != id || ans.TicketState != store.TicketDelivered || ans.RoutedTo != "partner "+p.Code ||
		!strings.Contains(ans.Delivery, "goes out through the same channel now") {
		t.Errorf("answer %+v", ans)
	}
	if !strings.HasPrefix(n.ID, "staff-") || n.By != "alice" || !n.Staff || n.State != store.NotePending ||
		n.Text != "Carrier confirmed the outage.\nFixed since 10:40." || n.At.IsZero() {
		t.Errorf("note in the answer %+v", n)
	}
	st := e.waitTicket(id, "staff note delivered", noteState(n.ID, store.NoteDelivered))
	stored := st.Notes[0]
	if !stored.Staff || stored.By != "alice" || stored.Receipt == nil || stored.Receipt.RemoteID != "C-"+n.ID || !st.NextAttemptAt.IsZero() {
		t.Errorf("stored note %+v, next attempt %v", stored, st.NextAttemptAt)
	}
	notes, _ := rx.gotNotes()
	if len(notes) != 1 {
		t.Fatalf("partner got %d notes, want 1", len(notes))
	}
	got := notes[0]
	if got.Event != webhook.EventTicketNote || got.Note.ID != n.ID || got.Note.TicketID != id || got.Note.Author != "alice (vendor staff)" ||
		got.Note.Text != n.Text || got.Note.TicketRemoteID != "HD-"+id[:6] || got.DeliveryID != stored.DeliveryID {
		t.Errorf("note payload %+v (stored %+v)", got, stored)
	}
	if len(rx.tickets()) != 1 {
		t.Errorf("ticket delivered %d times", len(rx.tickets()))
	}
}

// TestSupportStaffNoteOnAHeldTicket: a held ticket (vendor queue without a
// channel) keeps the note and says so; re-routed to a partner, the ticket
// goes out and the note follows it. Notes are bounded per ticket.
func TestSupportStaffNoteOnAHeldTicket(t *testing.T) {
	rx := newReceiver(t, hookSecret)
	e := newSupportEnv(t, nil)
	in := e.install("", "pbx-held")
	id := newTicketID()
	if status, tr, raw := e.open(in, id, "nobody's customer"); status != http.StatusCreated || tr.State != api.TicketHeld {
		t.Fatalf("open: %d %s", status, raw)
	}
	ans := e.staffNote(id, "bob", "Called the customer: it is Acme's.")
	if ans.TicketState != store.TicketHeld || ans.Note.State != store.NotePending || !strings.Contains(ans.Delivery, "held") ||
		!strings.Contains(ans.Delivery, "re-routed") {
		t.Errorf("answer on a held ticket %+v", ans)
	}
	st, err := e.admin.GetTicket(context.Background(), id)
	if err != nil || st.State != store.TicketHeld || len(st.Notes) != 1 || st.Notes[0].State != store.NotePending || !st.NextAttemptAt.IsZero() {
		t.Fatalf("held ticket after the note: %+v %v", st, err)
	}

	p := e.partner(store.TierPartner, "Acme")
	e.setChannel(p.Code, "webhook", rx.settings())
	if _, err := e.admin.RouteTicket(context.Background(), id, adminapi.RouteRequest{To: p.Code, By: "bob", Why: "customer is Acme's"}); err != nil {
		t.Fatal(err)
	}
	e.waitTicket(id, "note delivered after the re-route", func(t store.Ticket) bool {
		return delivered(t) && noteState(ans.Note.ID, store.NoteDelivered)(t)
	})
	notes, _ := rx.gotNotes()
	if len(rx.tickets()) != 1 || len(notes) != 1 || notes[0].Note.Author != "bob (vendor staff)" {
		t.Errorf("partner got %d tickets and notes %+v", len(rx.tickets()), notes)
	}

	// The ticket is full at 50 notes; the 51st is refused and not stored.
	id2 := newTicketID()
	e.open(in, id2, "many notes")
	for i := range 50 {
		e.staffNote(id2, "bob", fmt.Sprintf("note %d", i+1))
	}
	status, eb, raw := e.adminRaw(e.adminToken(), "POST", staffNotePath(id2), mustJSON(t, adminapi.NoteRequest{Author: "bob", Text: "one more"}))
	if status != http.StatusUnprocessableEntity || eb.Error.Code != api.CodeInvalid || !strings.Contains(eb.Error.Message, "50 notes") {
		t.Errorf("51st note: %d %s", status, raw)
	}
	if st, err := e.admin.GetTicket(context.Background(), id2); err != nil || len(st.Notes) != 50 {
		t.Errorf("notes on the full ticket: %d %v", len(st.Notes), err)
	}
}

// TestSupportStaffNoteRefusals: bad bodies, unknown tickets and missing
// tokens get a JSON error naming the problem, and store nothing.
func TestSupportStaffNoteRefusals(t *testing.T) {
	e := newSupportEnv(t, nil)
	in := e.install("", "pbx-bad")
	id := newTicketID()
	e.open(in, id, "hostile notes")
	token := e.adminToken()
	good := mustJSON(t, adminapi.NoteRequest{Author: "alice", Text: "ok"})

	cases := []struct {
		name, token, path string
		body              []byte
		status            int
		code, msg         string
	}{
		{"no token", "", staffNotePath(id), good, http.StatusUnauthorized, api.CodeUnauthorized, "admin token"},
		{"wrong token", strings.Repeat("x", 40), staffNotePath(id), good, http.StatusUnauthorized, api.CodeUnauthorized, "admin token"},
		{"unknown ticket", token, staffNotePath(newTicketID()), good, http.StatusNotFound, api.CodeUnknownTicket, "not known"},
		{"not a ticket id", token, staffNotePath("t..x"), good, http.StatusNotFound, api.CodeUnknownTicket, "not a ticket id"},
		{"not JSON", token, staffNotePath(id), []byte(`author=alice`), http.StatusBadRequest, api.CodeMalformed, "not the expected JSON"},
		{"unknown field", token, staffNotePath(id), []byte(`{"author":"alice","text":"x","by":"bob"}`), http.StatusBadRequest, api.CodeMalformed, "unknown field"},
		{"trailing data", token, staffNotePath(id), []byte(`{"author":"alice","text":"x"} {}`), http.StatusBadRequest, api.CodeMalformed, "after the JSON"},
		{"wrong type", token, staffNotePath(id), []byte(`{"author":"alice","text":7}`), http.StatusBadRequest, api.CodeMalformed, "text"},
		{"no author", token, staffNotePath(id), []byte(`{"text":"x"}`), http.StatusUnprocessableEntity, api.CodeInvalid, "author is empty"},
		{"blank author", token, staffNotePath(id), mustJSON(t, adminapi.NoteRequest{Author: " \t", Text: "x"}), http.StatusUnprocessableEntity, api.CodeInvalid, "author is empty"},
		{"long author", token, staffNotePath(id), mustJSON(t, adminapi.NoteRequest{Author: strings.Repeat("a", 129), Text: "x"}), http.StatusUnprocessableEntity, api.CodeInvalid, "at most 128"},
		{"author with a line break", token, staffNotePath(id), mustJSON(t, adminapi.NoteRequest{Author: "alice\nbob", Text: "x"}), http.StatusUnprocessableEntity, api.CodeInvalid, "control characters"},
		{"no text", token, staffNotePath(id), []byte(`{"author":"alice"}`), http.StatusUnprocessableEntity, api.CodeInvalid, "text is empty"},
		{"blank text", token, staffNotePath(id), mustJSON(t, adminapi.NoteRequest{Author: "alice", Text: "\n  \n"}), http.StatusUnprocessableEntity, api.CodeInvalid, "text is empty"},
		{"control in text", token, staffNotePath(id), mustJSON(t, adminapi.NoteRequest{Author: "alice", Text: "a\x1b[2Jb"}), http.StatusUnprocessableEntity, api.CodeInvalid, "control characters"},
		{"long text", token, staffNotePath(id), mustJSON(t, adminapi.NoteRequest{Author: "alice", Text: strings.Repeat("n", api.MaxNoteLen+1)}), http.StatusUnprocessableEntity, api.CodeInvalid, "at most 4096"},
		{"invalid UTF-8", token, staffNotePath(id), []byte("{\"author\":\"alice\",\"text\":\"a\xffb\"}"), http.StatusBadRequest, api.CodeMalformed, "UTF-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, eb, raw := e.adminRaw(c.token, "POST", c.path, c.body)
			if status != c.status || eb.Error.Code != c.code || !strings.Contains(eb.Error.Message, c.msg) {
				t.Fatalf("%d %s, want %d %s mentioning %q", status, raw, c.status, c.code, c.msg)
			}
		})
	}
	st, err := e.admin.GetTicket(context.Background(), id)
	if err != nil || len(st.Notes) != 0 {
		t.Errorf("refused notes were stored: %+v %v", st.Notes, err)
	}
	// The longest text allowed is taken.
	if ans := e.staffNote(id, strings.Repeat("a", 128), strings.Repeat("n", api.MaxNoteLen)); len(ans.Note.Text) != api.MaxNoteLen {
		t.Errorf("a %d-byte note came back with %d bytes", api.MaxNoteLen, len(ans.Note.Text))
	}
}
