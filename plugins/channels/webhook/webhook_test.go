package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
	"github.com/switchboard-dev/switchboard/plugins/channels/webhook"
)

const secret = "0123456789abcdef-secret"

func TestSignVerify(t *testing.T) {
	now := time.Unix(1767225600, 0)
	body := []byte(`{"a":1}`)
	h := webhook.Sign([]byte(secret), now, body)
	if !strings.HasPrefix(h, "t=1767225600,v1=") {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify([]byte(secret), h, body, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	for name, check := range map[string]error{
		"other body":   webhook.Verify([]byte(secret), h, []byte(`{"a":2}`), now),
		"other secret": webhook.Verify([]byte("another-secret-xyz"), h, body, now),
		"replay":       webhook.Verify([]byte(secret), h, body, now.Add(10*time.Minute)),
		"garbage":      webhook.Verify([]byte(secret), "nonsense", body, now),
	} {
		if check == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

func deliver(t *testing.T, h http.HandlerFunc) (plugins.Receipt, error) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c := webhook.New(nil)
	if err := c.Configure(context.Background(), map[string]string{"url": srv.URL + "/hook", "secret": secret, "timeout": "2s"}); err != nil {
		t.Fatal(err)
	}
	return c.Deliver(context.Background(), plugins.Ticket{ID: "tx", DeliveryID: "tx.1", Subject: "s", Diagnostics: []byte(`{"k":"v"}`), CreatedAt: time.Now()})
}

func TestDeliverAndClassify(t *testing.T) {
	r, err := deliver(t, func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), body, time.Now()) != nil || r.Header.Get(webhook.HeaderDelivery) != "tx.1" {
			http.Error(w, "bad", http.StatusUnauthorized)
			return
		}
		var p webhook.Payload
		if json.Unmarshal(body, &p) != nil || string(p.Ticket.Diagnostics) != `{"k":"v"}` {
			http.Error(w, "bad body", 400)
			return
		}
		w.Write([]byte(`{"ticket_id":42,"url":"https://hd.example/t/42"}`))
	})
	if err != nil || r.RemoteID != "42" || r.URL != "https://hd.example/t/42" {
		t.Fatalf("receipt %+v %v", r, err)
	}
	_, err = deliver(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		http.Error(w, "slow down", http.StatusTooManyRequests)
	})
	if perm, after := channels.Classify(err); err == nil || perm || after != 2*time.Minute {
		t.Errorf("429: %v permanent=%v after=%s", err, perm, after)
	}
	_, err = deliver(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusBadGateway) })
	if perm, _ := channels.Classify(err); err == nil || perm {
		t.Errorf("502: %v permanent=%v", err, perm)
	}
	_, err = deliver(t, func(w http.ResponseWriter, r *http.Request) { http.Error(w, "who?", http.StatusForbidden) })
	if perm, _ := channels.Classify(err); err == nil || !perm {
		t.Errorf("403: %v permanent=%v", err, perm)
	}
	var hits atomic.Int32
	_, err = deliver(t, func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		w.WriteHeader(200)
	})
	if err == nil || hits.Load() != 1 {
		t.Errorf("redirect followed: %v hits=%d", err, hits.Load())
	}
}

func TestConfigureRefuses(t *testing.T) {
	for name, s := range map[string]map[string]string{
		"no url":       {"secret": secret},
		"http remote":  {"url": "http://example.com/x", "secret": secret},
		"short secret": {"url": "https://example.com/x", "secret": "short"},
		"userinfo":     {"url": "https://u:p@example.com/x", "secret": secret},
		"unknown key":  {"url": "https://example.com/x", "secret": secret, "colour": "red"},
	} {
		if err := webhook.New(nil).Configure(context.Background(), s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDeliverNote(t *testing.T) {
	var got webhook.NotePayload
	var event, delivery string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify([]byte(secret), r.Header.Get(webhook.HeaderSignature), body, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		event, delivery = r.Header.Get(webhook.HeaderEvent), r.Header.Get(webhook.HeaderDelivery)
		if err := json.Unmarshal(body, &got); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		w.Write([]byte(`{"id":"c-7"}`))
	}))
	t.Cleanup(srv.Close)
	c := webhook.New(nil)
	if err := c.Configure(context.Background(), map[string]string{"url": srv.URL, "secret": secret}); err != nil {
		t.Fatal(err)
	}
	r, err := c.DeliverNote(context.Background(), plugins.Note{TicketID: "tx", TicketReceipt: plugins.Receipt{RemoteID: "42", URL: "https://hd.example/t/42"},
		NoteID: "recovered", DeliveryID: "tx.1.note.recovered", Text: "asterisk is healthy again", Author: "install", CreatedAt: time.Now()})
	if err != nil || r.RemoteID != "c-7" {
		t.Fatalf("receipt %+v %v", r, err)
	}
	if event != webhook.EventTicketNote || delivery != "tx.1.note.recovered" || got.Event != webhook.EventTicketNote ||
		got.DeliveryID != delivery || got.Note.TicketID != "tx" || got.Note.TicketRemoteID != "42" || got.Note.Text != "asterisk is healthy again" {
		t.Fatalf("event %q delivery %q payload %+v", event, delivery, got)
	}
}
