package plugins

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type plainChannel struct{}

func (plainChannel) Configure(context.Context, map[string]string) error { return nil }
func (plainChannel) Deliver(context.Context, Ticket) (Receipt, error) {
	return Receipt{RemoteID: "r"}, nil
}
func (plainChannel) Health(context.Context) (Health, error) {
	return Health{Healthy: true, State: "ready"}, nil
}

type notingChannel struct {
	plainChannel
	got chan Note
}

func (c notingChannel) DeliverNote(_ context.Context, n Note) (Receipt, error) {
	c.got <- n
	if n.Text == "refuse" {
		return Receipt{}, errors.New("refused by the test")
	}
	return Receipt{RemoteID: "note-" + n.NoteID}, nil
}

func serveChannel(t *testing.T, impl SupportChannel) *SupportChannelClient {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "c.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	RegisterSupportChannelServer(srv, impl)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+sock, append(DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return NewSupportChannelClient(conn)
}

// TestDeliverNoteIsOptional: a channel with NoteDeliverer gets every field
// of the note; one without it makes the host's call fail with
// ErrNotesUnsupported, not a retryable error.
func TestDeliverNoteIsOptional(t *testing.T) {
	ctx := context.Background()
	created := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := Note{TicketID: "tabc", TicketSubject: "Calls drop", TicketReceipt: Receipt{RemoteID: "HD-1", URL: "https://hd.example/1", Detail: "d"},
		NoteID: "recovered", DeliveryID: "tabc.1.note.recovered", Text: "healthy again", Author: "install", CreatedAt: created}

	got := make(chan Note, 2)
	c := serveChannel(t, notingChannel{got: got})
	r, err := c.DeliverNote(ctx, n)
	if err != nil || r.RemoteID != "note-recovered" {
		t.Fatalf("receipt %+v %v", r, err)
	}
	if recv := <-got; recv != n {
		t.Errorf("plugin got %+v, want %+v", recv, n)
	}
	bad := n
	bad.Text = "refuse"
	if _, err := c.DeliverNote(ctx, bad); err == nil || errors.Is(err, ErrNotesUnsupported) {
		t.Errorf("refusal: %v", err)
	}

	plain := serveChannel(t, plainChannel{})
	if _, err := plain.DeliverNote(ctx, n); !errors.Is(err, ErrNotesUnsupported) {
		t.Errorf("channel without notes: %v, want ErrNotesUnsupported", err)
	}
}
