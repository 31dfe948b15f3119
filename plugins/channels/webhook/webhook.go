// Package webhook is the built-in SupportChannel that POSTs each ticket as
// JSON to a partner's HTTPS endpoint (`switchboard plugin serve webhook`).
//
// # Settings
//
//	url      the endpoint (https; http only for a loopback host)       required
//	secret   shared secret for the signature, at least 16 characters   required
//	timeout  how long one POST may take (default 15s)
//
// # What the partner receives
//
//	POST <url>
//	Content-Type: application/json
//	Switchboard-Event: ticket.created
//	Switchboard-Delivery: <delivery id>
//	Switchboard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>
//
//	{"event":"ticket.created","delivery_id":"…","ticket":{"id":"…","subject":"…",
//	 "body":"…","install_id":"…","customer":"…","partner_code":"…","routed_to":"…",
//	 "reason":"…","created_at":"…","diagnostics":{…}}}
//
// The signature is HMAC-SHA256 keyed with the shared secret over the bytes
// `<t>.<raw body>` (the timestamp, a dot, then the body exactly as
// received), hex encoded. To verify: recompute it over the raw body,
// compare in constant time, and refuse a t more than 5 minutes from your
// clock (replays). Verify (below) does exactly that; docs/support-webhook.md
// has the same check in Python and shell.
//
// A note added to a delivered ticket (for example the agent's "recovered"
// on an automatic ticket) is sent the same way, signed the same way, with
// Switchboard-Event: ticket.note and its own delivery id:
//
//	{"event":"ticket.note","delivery_id":"…","note":{"id":"…","ticket_id":"…",
//	 "ticket_remote_id":"…","ticket_url":"…","text":"…","author":"…","created_at":"…"}}
//
// The delivery id is the same on every retry of one delivery: a receiver
// that has seen it should answer 2xx again without creating a second
// ticket. Answer 2xx when the ticket is stored; a JSON answer
// {"id":"…","url":"…"} becomes the delivery receipt. Timeouts, 5xx and 429
// are retried with backoff (Retry-After is honoured); other 4xx answers are
// permanent and send the ticket to the vendor's queue instead.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
)

// Name is the channel type.
const Name = "webhook"

// Header names.
const (
	HeaderSignature = "Switchboard-Signature"
	HeaderDelivery  = "Switchboard-Delivery"
	HeaderEvent     = "Switchboard-Event"
)

// Events sent.
const (
	// EventTicketCreated carries a new ticket (Payload).
	EventTicketCreated = "ticket.created"
	// EventTicketNote carries a note added to a delivered ticket
	// (NotePayload).
	EventTicketNote = "ticket.note"
)

// MaxSkew is how far from the receiver's clock a signature's timestamp may
// be before Verify refuses it.
const MaxSkew = 5 * time.Minute

// MinSecretLen is the shortest shared secret accepted.
const MinSecretLen = 16

// Payload is the JSON body of a delivery.
type Payload struct {
	Event      string        `json:"event"`
	DeliveryID string        `json:"delivery_id"`
	Ticket     PayloadTicket `json:"ticket"`
}

// NotePayload is the JSON body of a ticket.note delivery.
type NotePayload struct {
	Event      string      `json:"event"`
	DeliveryID string      `json:"delivery_id"`
	Note       PayloadNote `json:"note"`
}

// PayloadNote is the note inside a NotePayload. TicketRemoteID and
// TicketURL are what the receiver answered for the ticket.
type PayloadNote struct {
	ID             string    `json:"id"`
	TicketID       string    `json:"ticket_id"`
	TicketRemoteID string    `json:"ticket_remote_id,omitempty"`
	TicketURL      string    `json:"ticket_url,omitempty"`
	Text           string    `json:"text"`
	Author         string    `json:"author,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// PayloadTicket is the ticket inside a Payload.
type PayloadTicket struct {
	ID          string          `json:"id"`
	Subject     string          `json:"subject"`
	Body        string          `json:"body"`
	InstallID   string          `json:"install_id"`
	Customer    string          `json:"customer,omitempty"`
	PartnerCode string          `json:"partner_code,omitempty"`
	RoutedTo    string          `json:"routed_to"`
	Reason      string          `json:"reason,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	Diagnostics json.RawMessage `json:"diagnostics,omitempty"`
}

// Sign returns the Switchboard-Signature header value for body at ts.
func Sign(secret []byte, ts time.Time, body []byte) string {
	t := strconv.FormatInt(ts.Unix(), 10)
	return "t=" + t + ",v1=" + mac(secret, t, body)
}

func mac(secret []byte, t string, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(t))
	m.Write([]byte("."))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify checks a Switchboard-Signature header over the raw body with the
// shared secret, and that its timestamp is within MaxSkew of now.
func Verify(secret []byte, header string, body []byte, now time.Time) error {
	var t string
	var sigs []string
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			t = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	ts, err := strconv.ParseInt(t, 10, 64)
	if err != nil || len(sigs) == 0 {
		return errors.New("signature header must be t=<unix seconds>,v1=<hex hmac>")
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("signature timestamp is %s away from now: refused as a possible replay", d.Round(time.Second))
	}
	want := mac(secret, t, body)
	for _, s := range sigs {
		if hmac.Equal([]byte(s), []byte(want)) {
			return nil
		}
	}
	return errors.New("signature does not match: wrong secret or the body was altered")
}

type config struct {
	url     *url.URL
	secret  []byte
	timeout time.Duration
}

// Channel is the webhook SupportChannel.
type Channel struct {
	log    hclog.Logger
	client *http.Client
	now    func() time.Time

	mu  sync.Mutex
	cfg *config
}

var (
	_ plugins.SupportChannel = (*Channel)(nil)
	_ plugins.NoteDeliverer  = (*Channel)(nil)
)

// New returns an unconfigured webhook channel.
func New(log hclog.Logger) *Channel {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Channel{log: log, now: time.Now, client: &http.Client{
		// A redirect would re-send the ticket somewhere the partner did
		// not configure: refuse it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// Configure implements plugins.SupportChannel.
func (c *Channel) Configure(_ context.Context, settings map[string]string) error {
	s := channels.NewSettings(settings)
	raw := s.Required("url", "the partner's HTTPS endpoint for tickets")
	secret := s.Secret("secret")
	timeout := s.Duration("timeout", 15*time.Second)
	var u *url.URL
	if raw != "" {
		var err error
		u, err = url.Parse(raw)
		switch {
		case err != nil || u.Host == "":
			s.Errorf("url %q is not an absolute URL like https://helpdesk.example.com/hooks/switchboard", raw)
		case u.Scheme == "http" && !loopback(u.Hostname()):
			s.Errorf("url %q uses http: tickets carry customer data, use https (http is accepted for a loopback host only)", raw)
		case u.Scheme != "http" && u.Scheme != "https":
			s.Errorf("url scheme %q: use https", u.Scheme)
		case u.User != nil:
			s.Errorf("url must not carry a user or password: the signature authenticates the registry")
		}
	}
	if len(secret) < MinSecretLen {
		s.Errorf("secret is required and must be at least %d characters (generate one with `openssl rand -hex 32`)", MinSecretLen)
	}
	if err := s.Err(Name); err != nil {
		return err
	}
	c.mu.Lock()
	c.cfg = &config{url: u, secret: []byte(secret), timeout: timeout}
	c.mu.Unlock()
	return nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (c *Channel) config() (*config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil {
		return nil, channels.Permanentf("webhook channel is not configured")
	}
	return c.cfg, nil
}

// Deliver implements plugins.SupportChannel: one signed POST.
func (c *Channel) Deliver(ctx context.Context, t plugins.Ticket) (plugins.Receipt, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Receipt{}, err
	}
	p := Payload{Event: EventTicketCreated, DeliveryID: t.DeliveryID, Ticket: PayloadTicket{
		ID: t.ID, Subject: t.Subject, Body: t.Body, InstallID: t.InstallID, Customer: t.Customer,
		PartnerCode: t.PartnerCode, RoutedTo: t.RoutedTo, Reason: t.Reason, CreatedAt: t.CreatedAt.UTC(),
	}}
	if len(t.Diagnostics) > 0 && json.Valid(t.Diagnostics) {
		p.Ticket.Diagnostics = t.Diagnostics
	}
	body, err := json.Marshal(p)
	if err != nil {
		return plugins.Receipt{}, channels.Permanentf("encode ticket: %v", err)
	}
	r, err := c.post(ctx, cfg, EventTicketCreated, t.DeliveryID, body)
	if err != nil {
		return plugins.Receipt{}, err
	}
	c.log.Info("ticket delivered", "ticket", t.ID, "delivery", t.DeliveryID)
	return r, nil
}

// DeliverNote implements plugins.NoteDeliverer: one signed POST of event
// ticket.note, with the note's own delivery id.
func (c *Channel) DeliverNote(ctx context.Context, n plugins.Note) (plugins.Receipt, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Receipt{}, err
	}
	p := NotePayload{Event: EventTicketNote, DeliveryID: n.DeliveryID, Note: PayloadNote{
		ID: n.NoteID, TicketID: n.TicketID, TicketRemoteID: n.TicketReceipt.RemoteID, TicketURL: n.TicketReceipt.URL,
		Text: n.Text, Author: n.Author, CreatedAt: n.CreatedAt.UTC(),
	}}
	body, err := json.Marshal(p)
	if err != nil {
		return plugins.Receipt{}, channels.Permanentf("encode note: %v", err)
	}
	r, err := c.post(ctx, cfg, EventTicketNote, n.DeliveryID, body)
	if err != nil {
		return plugins.Receipt{}, err
	}
	c.log.Info("ticket note delivered", "ticket", n.TicketID, "note", n.NoteID, "delivery", n.DeliveryID)
	return r, nil
}

// post sends one signed event and classifies the answer.
func (c *Channel) post(ctx context.Context, cfg *config, event, deliveryID string, body []byte) (plugins.Receipt, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.url.String(), bytes.NewReader(body))
	if err != nil {
		return plugins.Receipt{}, channels.Permanentf("build request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchboard-support-webhook/1")
	req.Header.Set(HeaderEvent, event)
	req.Header.Set(HeaderDelivery, deliveryID)
	req.Header.Set(HeaderSignature, Sign(cfg.secret, c.now(), body))
	resp, err := c.client.Do(req)
	if err != nil {
		// Timeouts and refused connections are worth another try.
		return plugins.Receipt{}, fmt.Errorf("POST %s: %w", redact(cfg.url), errors.Unwrap(err))
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		r := receipt(answer)
		r.Detail = fmt.Sprintf("HTTP %d from %s", code, cfg.url.Host)
		return r, nil
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code == http.StatusTooEarly || code >= 500:
		err := fmt.Errorf("POST %s answered HTTP %d%s", redact(cfg.url), code, snippet(answer))
		return plugins.Receipt{}, channels.Retry(err, retryAfter(resp.Header.Get("Retry-After"), c.now()))
	default:
		return plugins.Receipt{}, channels.Permanentf("POST %s answered HTTP %d%s: the endpoint refuses the %s; check the url and secret", redact(cfg.url), code, snippet(answer), event)
	}
}

// receipt reads {"id":…,"url":…} (or ticket_id / ticket_url) from a 2xx.
func receipt(answer []byte) plugins.Receipt {
	var a struct {
		ID        any    `json:"id"`
		TicketID  any    `json:"ticket_id"`
		URL       string `json:"url"`
		TicketURL string `json:"ticket_url"`
	}
	if json.Unmarshal(answer, &a) != nil {
		return plugins.Receipt{}
	}
	var r plugins.Receipt
	for _, v := range []any{a.ID, a.TicketID} {
		switch x := v.(type) {
		case string:
			r.RemoteID = x
		case float64:
			r.RemoteID = strconv.FormatFloat(x, 'f', -1, 64)
		}
		if r.RemoteID != "" {
			break
		}
	}
	for _, u := range []string{a.URL, a.TicketURL} {
		if pu, err := url.Parse(u); err == nil && (pu.Scheme == "https" || pu.Scheme == "http") {
			r.URL = u
			break
		}
	}
	if plugins.ValidateReceipt(r) != nil {
		return plugins.Receipt{}
	}
	return r
}

func snippet(b []byte) string {
	s := strings.TrimSpace(plugins.SanitizeMessage(string(b)))
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return ": " + s
}

// redact drops the query (which may carry a token) from a URL for messages.
func redact(u *url.URL) string {
	c := *u
	if c.RawQuery != "" {
		c.RawQuery = "…"
	}
	return c.String()
}

// maxRetryAfter caps what a partner's Retry-After can ask for.
const maxRetryAfter = time.Hour

func retryAfter(v string, now time.Time) time.Duration {
	var d time.Duration
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return max(0, min(d, maxRetryAfter))
}

// Health implements plugins.SupportChannel: configured means ready; the
// endpoint itself is only judged by deliveries.
func (c *Channel) Health(context.Context) (plugins.Health, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Health{Healthy: false, State: "unconfigured", Detail: err.Error()}, nil
	}
	return plugins.Health{Healthy: true, State: "ready", Detail: "posting to " + cfg.url.Host}, nil
}
