package cli

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/store"
)

// TestPrintTicketShowsNoteDelivery: staff see each note's delivery state.
func TestPrintTicketShowsNoteDelivery(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	tk := store.Ticket{ID: "tabc", Subject: "s", State: store.TicketDelivered, Notes: []store.Note{
		{ID: "recovered", Text: "healthy again", At: at, By: "install", State: store.NoteDelivered, Attempts: 2,
			DeliveredAt: at, Receipt: &store.Receipt{RemoteID: "C-1"}},
		{ID: "n2", Text: "more", At: at, By: "install", State: store.NoteUnsupported, Attempts: 1, LastError: "channel filedrop cannot deliver notes"},
		{ID: "n3", Text: "waiting", At: at, By: "install", State: store.NotePending},
		{ID: "old", Text: "legacy", At: at, By: "install"},
	}}
	var b strings.Builder
	if err := printTicket(&b, tk); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"note recovered", "delivery: delivered, 2 attempt(s)", "receipt C-1",
		"note n2", "delivery: unsupported, 1 attempt(s), last error: channel filedrop cannot deliver notes",
		"delivery: pending", "delivery: not tracked",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
