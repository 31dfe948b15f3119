package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/store"
)

// TestStaffNoteRoundTrip: a staff note added to a delivered ticket is kept
// across a reopen with its author and staff mark, makes the ticket due at
// once (the due index follows), and stops making it due once delivered.
func TestStaffNoteRoundTrip(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	s := openT(t, path)
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	installID := "i" + "abcdefghijklmnopqrstuvwxyz"
	if _, err := s.ActivateInstall(ctx, store.Activation{ID: installID, PublicKey: []byte("k"), At: now}); err != nil {
		t.Fatal(err)
	}
	tk := store.Ticket{ID: "t" + "abcdefghijklmnopqrstuvwxyz", InstallID: installID, Subject: "calls drop", ReceivedAt: now, UpdatedAt: now}
	tk.SetRoute(store.Route{Target: store.TargetVendor, Channel: "webhook", Reason: "not linked", By: "registry", At: now})
	if _, created, err := s.CreateTicket(ctx, tk); err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	// Delivered: nothing is due.
	if _, err := s.UpdateTicket(ctx, tk.ID, func(t *store.Ticket) error {
		t.State, t.NextAttemptAt, t.DeliveredAt = store.TicketDelivered, time.Time{}, now
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if due, err := s.DueTickets(ctx, now.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Fatalf("due before the note: %d %v", len(due), err)
	}

	at := now.Add(time.Minute)
	note := store.Note{ID: "staff-abcdefghijklmnop", Text: "carrier fixed it\nsince 10:40", At: at, By: "install", Staff: true}
	if _, err := s.UpdateTicket(ctx, tk.ID, func(t *store.Ticket) error { t.AddNote(note, at); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openT(t, path)
	defer s.Close()
	got, err := s.GetTicket(ctx, tk.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Notes) != 1 {
		t.Fatalf("notes after reopen: %+v", got.Notes)
	}
	n := got.Notes[0]
	if n.ID != note.ID || n.Text != note.Text || !n.At.Equal(at) || n.By != "install" || !n.Staff || n.State != store.NotePending {
		t.Errorf("note after reopen: %+v", n)
	}
	due, err := s.DueTickets(ctx, at, 10)
	if err != nil || len(due) != 1 || due[0].ID != tk.ID {
		t.Fatalf("due with a pending staff note: %+v %v", due, err)
	}
	if next, err := s.NextDue(ctx); err != nil || !next.Equal(at) {
		t.Errorf("next due %v %v, want %v", next, err, at)
	}

	// Delivered note: the ticket leaves the due index again.
	if _, err := s.UpdateTicket(ctx, tk.ID, func(t *store.Ticket) error {
		t.Notes[0].State, t.Notes[0].DeliveredAt = store.NoteDelivered, at
		t.NextAttemptAt = time.Time{}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if due, err := s.DueTickets(ctx, at.Add(time.Hour), 10); err != nil || len(due) != 0 {
		t.Errorf("due after the note went out: %d %v", len(due), err)
	}
	// An install note stays unmarked.
	if got, err := s.UpdateTicket(ctx, tk.ID, func(t *store.Ticket) error {
		t.AddNote(store.Note{ID: "recovered", Text: "healthy", At: at, By: "install"}, at)
		return nil
	}); err != nil || got.Notes[1].Staff || !got.Notes[0].Staff {
		t.Errorf("install note next to a staff note: %+v %v", got.Notes, err)
	}
}
