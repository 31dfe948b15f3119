// Package email is the built-in SupportChannel that mails each ticket
// through an SMTP server (`switchboard plugin serve email`): STARTTLS (or
// implicit TLS), AUTH PLAIN or LOGIN, and a MIME multipart/mixed message
// with the ticket as text/plain and the diagnostics as a JSON attachment.
//
// # Settings
//
//	host         SMTP server as host:port (587 for STARTTLS, 465 for tls=implicit)   required
//	from         sender address                                                     required
//	to           recipients, comma separated                                        required
//	username     SMTP login (AUTH is used when set)
//	password     SMTP password
//	auth         plain (default) or login
//	tls          starttls (default: refuse a server without STARTTLS), implicit, or none (loopback only)
//	ca_file      PEM file of CA certificates to trust instead of the system's
//	server_name  TLS name to verify, when it differs from the host
//	timeout      one delivery's time limit (default 30s)
//
// The Message-ID is derived from the delivery id, so a retried delivery has
// the same Message-ID and mail systems that deduplicate drop the copy.
// A note on a delivered ticket goes out as a plain-text reply to the
// ticket's message (In-Reply-To, References, "Re: " subject).
package email

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
)

// Name is the channel type.
const Name = "email"

type config struct {
	addr      string
	host      string
	from      *mail.Address
	to        []*mail.Address
	username  string
	password  string
	auth      string
	tlsMode   string
	tlsConfig *tls.Config
	timeout   time.Duration
	helloName string
}

// Channel is the e-mail SupportChannel.
type Channel struct {
	log hclog.Logger
	now func() time.Time

	mu  sync.Mutex
	cfg *config
}

var (
	_ plugins.SupportChannel = (*Channel)(nil)
	_ plugins.NoteDeliverer  = (*Channel)(nil)
)

// New returns an unconfigured e-mail channel.
func New(log hclog.Logger) *Channel {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Channel{log: log, now: time.Now}
}

// Configure implements plugins.SupportChannel.
func (c *Channel) Configure(_ context.Context, settings map[string]string) error {
	s := channels.NewSettings(settings)
	cfg := &config{helloName: "switchboard-registry"}
	cfg.addr = s.Required("host", "the SMTP server as host:port, e.g. smtp.example.com:587")
	fromRaw := s.Required("from", "the sender address, e.g. support@vendor.example")
	toRaw := s.Required("to", "the recipients, comma separated")
	cfg.username = s.String("username", "")
	cfg.password = s.Secret("password")
	cfg.auth = strings.ToLower(s.String("auth", "plain"))
	cfg.tlsMode = strings.ToLower(s.String("tls", "starttls"))
	caFile := s.String("ca_file", "")
	serverName := s.String("server_name", "")
	cfg.timeout = s.Duration("timeout", 30*time.Second)
	if cfg.addr != "" {
		h, p, err := net.SplitHostPort(cfg.addr)
		if err != nil || h == "" || p == "" {
			s.Errorf("host %q must be host:port, e.g. smtp.example.com:587", cfg.addr)
		}
		cfg.host = h
	}
	var err error
	if fromRaw != "" {
		if cfg.from, err = mail.ParseAddress(fromRaw); err != nil {
			s.Errorf("from %q is not an e-mail address: %v", fromRaw, err)
		}
	}
	if toRaw != "" {
		if cfg.to, err = mail.ParseAddressList(toRaw); err != nil {
			s.Errorf("to %q is not a list of e-mail addresses: %v", toRaw, err)
		}
	}
	switch cfg.auth {
	case "plain", "login":
	default:
		s.Errorf("auth %q: use plain or login", cfg.auth)
	}
	if cfg.username != "" && cfg.password == "" {
		s.Errorf("password is required with username")
	}
	roots, err := loadRoots(caFile)
	if err != nil {
		s.Errorf("ca_file: %v", err)
	}
	if serverName == "" {
		serverName = cfg.host
	}
	cfg.tlsConfig = &tls.Config{ServerName: serverName, RootCAs: roots, MinVersion: tls.VersionTLS12}
	switch cfg.tlsMode {
	case "starttls", "implicit":
	case "none":
		ip := net.ParseIP(cfg.host)
		if cfg.host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			s.Errorf("tls = none is only allowed for a loopback host: tickets and passwords must not cross a network in clear")
		}
	default:
		s.Errorf("tls %q: use starttls, implicit or none", cfg.tlsMode)
	}
	if err := s.Err(Name); err != nil {
		return err
	}
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	return nil
}

func loadRoots(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil // the system's
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

func (c *Channel) config() (*config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil {
		return nil, channels.Permanentf("e-mail channel is not configured")
	}
	return c.cfg, nil
}

// Deliver implements plugins.SupportChannel.
func (c *Channel) Deliver(ctx context.Context, t plugins.Ticket) (plugins.Receipt, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Receipt{}, err
	}
	msg, msgID, err := Compose(cfg.from, cfg.to, t, c.now())
	if err != nil {
		return plugins.Receipt{}, channels.Permanent(err)
	}
	if err := send(ctx, cfg, msg); err != nil {
		return plugins.Receipt{}, err
	}
	rcpts := make([]string, len(cfg.to))
	for i, a := range cfg.to {
		rcpts[i] = a.Address
	}
	c.log.Info("ticket mailed", "ticket", t.ID, "delivery", t.DeliveryID, "to", strings.Join(rcpts, ","))
	return plugins.Receipt{RemoteID: msgID, Detail: fmt.Sprintf("accepted by %s for %s", cfg.addr, strings.Join(rcpts, ", "))}, nil
}

// DeliverNote implements plugins.NoteDeliverer: a plain-text reply to the
// ticket's message (In-Reply-To and References name its Message-ID, the
// subject is "Re: " the ticket's), so mail clients thread it.
func (c *Channel) DeliverNote(ctx context.Context, n plugins.Note) (plugins.Receipt, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Receipt{}, err
	}
	msg, msgID, err := ComposeNote(cfg.from, cfg.to, n, c.now())
	if err != nil {
		return plugins.Receipt{}, channels.Permanent(err)
	}
	if err := send(ctx, cfg, msg); err != nil {
		return plugins.Receipt{}, err
	}
	c.log.Info("ticket note mailed", "ticket", n.TicketID, "note", n.NoteID, "delivery", n.DeliveryID)
	return plugins.Receipt{RemoteID: msgID, Detail: "reply accepted by " + cfg.addr}, nil
}

// send mails msg within the configured time limit and classifies a
// failure (permanent or worth retrying).
func send(ctx context.Context, cfg *config, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	if err := transmit(ctx, cfg, msg); err != nil {
		return classify(err)
	}
	return nil
}

// transmit is one SMTP session: connect, secure, authenticate, send msg.
func transmit(ctx context.Context, cfg *config, msg []byte) error {
	d := net.Dialer{}
	conn, err := d.DialContext(ctx, "tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", cfg.addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	var cl *smtp.Client
	switch cfg.tlsMode {
	case "implicit":
		tc := tls.Client(conn, cfg.tlsConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return &tlsError{fmt.Errorf("TLS with %s: %w", cfg.addr, err)}
		}
		cl = smtp.NewClient(tc)
	case "starttls":
		cl, err = smtp.NewClientStartTLS(conn, cfg.tlsConfig)
		if err != nil {
			conn.Close()
			if strings.Contains(err.Error(), "doesn't support STARTTLS") {
				return channels.Permanentf("%s does not offer STARTTLS: refusing to send the ticket (and the password) in clear; fix the server or set tls = implicit", cfg.addr)
			}
			return &tlsError{fmt.Errorf("STARTTLS with %s: %w", cfg.addr, err)}
		}
	default:
		cl = smtp.NewClient(conn)
		if err := cl.Hello(cfg.helloName); err != nil {
			cl.Close()
			return fmt.Errorf("EHLO to %s: %w", cfg.addr, err)
		}
	}
	defer cl.Close()
	if cfg.username != "" {
		var a sasl.Client
		mech := "PLAIN"
		if cfg.auth == "login" {
			a, mech = sasl.NewLoginClient(cfg.username, cfg.password), "LOGIN"
		} else {
			a = sasl.NewPlainClient("", cfg.username, cfg.password)
		}
		if !cl.SupportsAuth(mech) {
			return channels.Permanentf("%s does not offer AUTH %s: set auth to a mechanism it offers", cfg.addr, mech)
		}
		if err := cl.Auth(a); err != nil {
			return fmt.Errorf("AUTH %s as %s: %w", mech, cfg.username, err)
		}
	}
	if err := cl.Mail(cfg.from.Address, nil); err != nil {
		return fmt.Errorf("MAIL FROM: %w", err)
	}
	for _, r := range cfg.to {
		if err := cl.Rcpt(r.Address, nil); err != nil {
			return fmt.Errorf("RCPT TO %s: %w", r.Address, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("send the message: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("end of message: %w", err)
	}
	_ = cl.Quit()
	return nil
}

// tlsError is a TLS failure: a certificate that does not verify will not
// verify on retry either.
type tlsError struct{ err error }

func (e *tlsError) Error() string { return e.err.Error() }
func (e *tlsError) Unwrap() error { return e.err }

// classify: 5xx answers and TLS/certificate failures are permanent; 4xx,
// timeouts and connection failures are worth retrying.
func classify(err error) error {
	var pe *channels.PermanentError
	if errors.As(err, &pe) {
		return err
	}
	var se *smtp.SMTPError
	if errors.As(err, &se) && se.Code >= 500 {
		return channels.Permanent(err)
	}
	var te *tlsError
	var ce *tls.CertificateVerificationError
	if errors.As(err, &te) && errors.As(err, &ce) {
		return channels.Permanent(err)
	}
	return err
}

// messageID derives a Message-ID from a delivery id, so a retry has the
// same one.
func messageID(from *mail.Address, deliveryID, kind string) string {
	domain := "switchboard.invalid"
	if at := strings.LastIndexByte(from.Address, '@'); at >= 0 {
		domain = from.Address[at+1:]
	}
	local := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '-'
	}, deliveryID)
	return "<" + local + "." + kind + "@" + domain + ">"
}

// msgIDRE is the shape of a Message-ID this package writes (and accepts
// back from a receipt for In-Reply-To).
var msgIDRE = regexp.MustCompile(`^<[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9.-]+>$`)

// ComposeNote builds the reply carrying note n and returns it with its
// Message-ID. The ticket's Message-ID is n.TicketReceipt.RemoteID; without
// a well-formed one the reply is sent unthreaded.
func ComposeNote(from *mail.Address, to []*mail.Address, n plugins.Note, now time.Time) ([]byte, string, error) {
	msgID := messageID(from, n.DeliveryID, "note")
	addrs := make([]string, len(to))
	for i, a := range to {
		addrs[i] = a.String()
	}
	h := []struct{ k, v string }{
		{"From", from.String()},
		{"To", strings.Join(addrs, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", "Re: [Switchboard] "+n.TicketSubject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", msgID},
	}
	if parent := n.TicketReceipt.RemoteID; msgIDRE.MatchString(parent) {
		h = append(h, struct{ k, v string }{"In-Reply-To", parent}, struct{ k, v string }{"References", parent})
	}
	h = append(h, []struct{ k, v string }{
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"X-Switchboard-Ticket", n.TicketID},
		{"X-Switchboard-Delivery", n.DeliveryID},
		{"Auto-Submitted", "auto-generated"},
	}...)
	var msg bytes.Buffer
	for _, f := range h {
		if strings.ContainsAny(f.v, "\r\n") {
			return nil, "", fmt.Errorf("header %s holds a line break", f.k)
		}
		fmt.Fprintf(&msg, "%s: %s\r\n", f.k, f.v)
	}
	msg.WriteString("\r\n")
	by := n.Author
	if by == "" {
		by = "switchboard"
	}
	text := fmt.Sprintf("Note on ticket %s by %s, %s:\n\n%s\n", n.TicketID, by, n.CreatedAt.UTC().Format(time.RFC3339), n.Text)
	qp := quotedprintable.NewWriter(&msg)
	if _, err := io.WriteString(qp, strings.ReplaceAll(text, "\n", "\r\n")); err != nil {
		return nil, "", err
	}
	if err := qp.Close(); err != nil {
		return nil, "", err
	}
	return msg.Bytes(), msgID, nil
}

// Compose builds the MIME message for t and returns it with its Message-ID.
func Compose(from *mail.Address, to []*mail.Address, t plugins.Ticket, now time.Time) ([]byte, string, error) {
	msgID := messageID(from, t.DeliveryID, "ticket")

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	addrs := make([]string, len(to))
	for i, a := range to {
		addrs[i] = a.String()
	}
	h := []struct{ k, v string }{
		{"From", from.String()},
		{"To", strings.Join(addrs, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", "[Switchboard] "+t.Subject)},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", msgID},
		{"MIME-Version", "1.0"},
		{"Content-Type", "multipart/mixed; boundary=\"" + mw.Boundary() + "\""},
		{"X-Switchboard-Ticket", t.ID},
		{"X-Switchboard-Delivery", t.DeliveryID},
		{"Auto-Submitted", "auto-generated"},
	}
	var msg bytes.Buffer
	for _, f := range h {
		fmt.Fprintf(&msg, "%s: %s\r\n", f.k, f.v)
	}
	msg.WriteString("\r\n")

	tp, err := mw.CreatePart(textproto.MIMEHeader{
		"Content-Type":              {"text/plain; charset=utf-8"},
		"Content-Transfer-Encoding": {"quoted-printable"},
	})
	if err != nil {
		return nil, "", err
	}
	qp := quotedprintable.NewWriter(tp)
	if _, err := io.WriteString(qp, channels.Summary(t)); err != nil {
		return nil, "", err
	}
	if err := qp.Close(); err != nil {
		return nil, "", err
	}
	if len(t.Diagnostics) > 0 {
		name := "diagnostics-" + t.ID + ".json"
		ap, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {"application/json; name=\"" + name + "\""},
			"Content-Disposition":       {"attachment; filename=\"" + name + "\""},
			"Content-Transfer-Encoding": {"base64"},
		})
		if err != nil {
			return nil, "", err
		}
		enc := base64.StdEncoding.EncodeToString(t.Diagnostics)
		for len(enc) > 76 {
			io.WriteString(ap, enc[:76]+"\r\n")
			enc = enc[76:]
		}
		io.WriteString(ap, enc+"\r\n")
	}
	if err := mw.Close(); err != nil {
		return nil, "", err
	}
	msg.Write(body.Bytes())
	return msg.Bytes(), msgID, nil
}

// Health implements plugins.SupportChannel: configured means ready.
func (c *Channel) Health(context.Context) (plugins.Health, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Health{State: "unconfigured", Detail: err.Error()}, nil
	}
	return plugins.Health{Healthy: true, State: "ready", Detail: "mailing through " + cfg.addr}, nil
}
