package odoochannel_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	emu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
	"github.com/switchboard-dev/switchboard/plugins/channels/odoochannel"
)

func startOdoo(t *testing.T, edition string, module string) *emu.Server {
	t.Helper()
	s, err := emu.New(emu.Options{Edition: edition})
	if err != nil {
		t.Fatal(err)
	}
	if module != "" {
		if err := s.InstallModule(module); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func channel(t *testing.T, s *emu.Server, api string, extra map[string]string) *odoochannel.Channel {
	t.Helper()
	o := s.Options()
	settings := map[string]string{"url": s.URL(), "database": o.Database, "login": o.AdminLogin, "api_key": o.AdminAPIKey, "api": api}
	for k, v := range extra {
		settings[k] = v
	}
	c := odoochannel.New(nil)
	if err := c.Configure(context.Background(), settings); err != nil {
		t.Fatal(err)
	}
	return c
}

func ticket(id string) plugins.Ticket {
	return plugins.Ticket{ID: id, DeliveryID: id + ".1", Subject: "Calls drop", Body: "Since Monday <b>all</b> trunks.",
		InstallID: "iabc", Customer: "pbx1.acme", PartnerCode: "K7QM-4XJD-R", RoutedTo: "partner K7QM-4XJD-R",
		Diagnostics: []byte(`{"install_id":"iabc"}`), CreatedAt: time.Now()}
}

func TestFilesWhereTheDatabaseCan(t *testing.T) {
	cases := []struct {
		name, edition, module, api, model string
	}{
		{"enterprise helpdesk", emu.Enterprise, "helpdesk", "xmlrpc", odoochannel.ModelHelpdesk},
		{"community helpdesk_mgmt", emu.Community, "helpdesk_mgmt", "auto", odoochannel.ModelHelpdesk},
		{"no helpdesk: project task", emu.Community, "", "xmlrpc", odoochannel.ModelTask},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startOdoo(t, c.edition, c.module)
			ch := channel(t, s, c.api, nil)
			r, err := ch.Deliver(context.Background(), ticket("tone"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(r.RemoteID, c.model+",") || !strings.Contains(r.URL, "model="+c.model) {
				t.Errorf("receipt %+v", r)
			}
			// A retried delivery finds the record instead of making another.
			r2, err := ch.Deliver(context.Background(), ticket("tone"))
			if err != nil || r2.RemoteID != r.RemoteID {
				t.Errorf("retry: %+v %v", r2, err)
			}
			recs, err := s.Records(c.model)
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != 1 {
				t.Fatalf("%d records in %s, want 1", len(recs), c.model)
			}
			desc, _ := recs[0]["description"].(string)
			if name, _ := recs[0]["name"].(string); name != "Calls drop [tone]" || !strings.Contains(desc, "&lt;b&gt;all&lt;/b&gt;") || !strings.Contains(desc, "pbx1.acme") {
				t.Errorf("record %v", recs[0])
			}
		})
	}
}

func TestTeamSettingAndFailures(t *testing.T) {
	s := startOdoo(t, emu.Enterprise, "helpdesk")
	ch := channel(t, s, "xmlrpc", map[string]string{"team": "Customer Care"})
	if _, err := ch.Deliver(context.Background(), ticket("tteam")); err != nil {
		t.Fatal(err)
	}
	recs, _ := s.Records(odoochannel.ModelHelpdesk)
	if len(recs) != 1 || recs[0]["team_id"] == nil || recs[0]["team_id"] == false {
		t.Errorf("team not set: %v", recs)
	}
	// An unknown team and a wrong key are permanent: retrying cannot help.
	ch = channel(t, s, "xmlrpc", map[string]string{"team": "Nobody"})
	if _, err := ch.Deliver(context.Background(), ticket("tnoteam")); err == nil {
		t.Error("unknown team accepted")
	} else if perm, _ := channels.Classify(err); !perm {
		t.Errorf("unknown team not permanent: %v", err)
	}
	ch = channel(t, s, "xmlrpc", map[string]string{"api_key": "wrong-key"})
	if _, err := ch.Deliver(context.Background(), ticket("tkey")); err == nil {
		t.Error("wrong key accepted")
	} else if perm, _ := channels.Classify(err); !perm || strings.Contains(err.Error(), "wrong-key") {
		t.Errorf("wrong key: %v (permanent %v)", err, perm)
	}
	// Odoo gone: transient.
	url := s.URL()
	_ = s.Close()
	ch = channel(t, s, "xmlrpc", map[string]string{"url": url})
	if _, err := ch.Deliver(context.Background(), ticket("tgone")); err == nil {
		t.Error("delivered to a stopped Odoo")
	} else if perm, _ := channels.Classify(err); perm {
		t.Errorf("unreachable Odoo is permanent: %v", err)
	}
	if err := odoochannel.New(nil).Configure(context.Background(), map[string]string{"url": "ftp://x"}); err == nil {
		t.Error("bad settings accepted")
	}
}

// TestNotesArePostedOnTheRecord: a note becomes one internal note
// (message_post) on the record the ticket created, over both APIs, also
// when it is delivered twice.
func TestNotesArePostedOnTheRecord(t *testing.T) {
	for _, api := range []string{"xmlrpc", "auto"} {
		t.Run(api, func(t *testing.T) {
			s := startOdoo(t, emu.Enterprise, "helpdesk")
			ch := channel(t, s, api, nil)
			tk := ticket("tnote")
			r, err := ch.Deliver(context.Background(), tk)
			if err != nil {
				t.Fatal(err)
			}
			n := plugins.Note{TicketID: tk.ID, TicketSubject: tk.Subject, TicketReceipt: r, NoteID: "recovered",
				DeliveryID: "tnote.1.note.recovered", Text: "asterisk <healthy> again", Author: "install", CreatedAt: time.Now()}
			nr, err := ch.DeliverNote(context.Background(), n)
			if err != nil {
				t.Fatal(err)
			}
			nr2, err := ch.DeliverNote(context.Background(), n)
			if err != nil || nr2.RemoteID != nr.RemoteID {
				t.Fatalf("retry: %+v %v (first %+v)", nr2, err, nr)
			}
			msgs, err := s.Records("mail.message")
			if err != nil {
				t.Fatal(err)
			}
			if len(msgs) != 1 {
				t.Fatalf("%d messages, want 1: %v", len(msgs), msgs)
			}
			m := msgs[0]
			body, _ := m["body"].(string)
			if m["model"] != odoochannel.ModelHelpdesk || r.RemoteID != odoochannel.ModelHelpdesk+","+itoa(m["res_id"]) ||
				m["message_type"] != "comment" || m["subtype_xmlid"] != "mail.mt_note" || !strings.Contains(body, "asterisk &lt;healthy&gt; again") {
				t.Fatalf("message %v (ticket receipt %+v)", m, r)
			}
			if nr.RemoteID != "mail.message,"+itoa(m["id"]) {
				t.Errorf("note receipt %+v", nr)
			}
			// A receipt that names no record is a permanent failure.
			n.TicketReceipt = plugins.Receipt{RemoteID: "<x@y>"}
			if _, err := ch.DeliverNote(context.Background(), n); err == nil {
				t.Error("note without a record delivered")
			} else if perm, _ := channels.Classify(err); !perm {
				t.Errorf("bad receipt not permanent: %v", err)
			}
		})
	}
}

func itoa(v any) string { return fmt.Sprint(v) }
