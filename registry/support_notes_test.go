package registry_test

import (
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
