package email_test

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
	"github.com/switchboard-dev/switchboard/plugins/channels/email"
)

var smtpdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "email-test")
	if err != nil {
		panic(err)
	}
	smtpdBin = filepath.Join(dir, "smtpd")
	out, err := exec.Command("go", "build", "-o", smtpdBin, "github.com/switchboard-dev/switchboard/plugins/channels/email/internal/smtpd").CombinedOutput()
	if err != nil {
		os.RemoveAll(dir)
		panic("build smtpd: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// testCA writes a CA and a server certificate for 127.0.0.1 signed by it.
func testCA(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "switchboard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "smtp.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"smtp.test"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("srv.pem", "CERTIFICATE", srvDER), write("srv.key", "EC PRIVATE KEY", keyDER)
}

type smtpServer struct {
	addr, ca, maildir string
}

// startSMTP runs the smtpd test binary (go-smtp) as a separate process.
func startSMTP(t *testing.T) smtpServer {
	t.Helper()
	dir := t.TempDir()
	ca, cert, key := testCA(t, dir)
	maildir := filepath.Join(dir, "mail")
	if err := os.Mkdir(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(smtpdBin, "-cert", cert, "-key", key, "-user", "registry", "-pass", "smtp-Pa55", "-dir", maildir)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("smtpd did not start: %v", err)
	}
	return smtpServer{addr: strings.TrimSpace(strings.TrimPrefix(line, "listening ")), ca: ca, maildir: maildir}
}

func (s smtpServer) settings(extra map[string]string) map[string]string {
	m := map[string]string{"host": s.addr, "from": "Switchboard <support@vendor.example>", "to": "helpdesk@acme.example, boss@acme.example",
		"username": "registry", "password": "smtp-Pa55", "ca_file": s.ca}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func ticket() plugins.Ticket {
	return plugins.Ticket{ID: "tabc", DeliveryID: "tabc.1", Subject: "Anrufe brechen ab – nach 30 s", Body: "Since Monday.\nAll trunks.",
		InstallID: "iabc", Customer: "pbx1.acme", PartnerCode: "K7QM-4XJD-R", RoutedTo: "partner K7QM-4XJD-R", Reason: "linked partner",
		Diagnostics: []byte(`{"install_id":"iabc","outbox":{"depth":0}}`), CreatedAt: time.Now()}
}

func configure(t *testing.T, settings map[string]string) *email.Channel {
	t.Helper()
	c := email.New(nil)
	if err := c.Configure(context.Background(), settings); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestDeliverOverSTARTTLSWithAuth(t *testing.T) {
	srv := startSMTP(t)
	for _, auth := range []string{"plain", "login"} {
		t.Run(auth, func(t *testing.T) {
			c := configure(t, srv.settings(map[string]string{"auth": auth}))
			r, err := c.Deliver(context.Background(), ticket())
			if err != nil {
				t.Fatal(err)
			}
			if r.RemoteID != "<tabc.1.ticket@vendor.example>" {
				t.Errorf("receipt %+v", r)
			}
		})
	}
	files, _ := filepath.Glob(filepath.Join(srv.maildir, "*.eml"))
	if len(files) != 2 {
		t.Fatalf("%d messages stored, want 2", len(files))
	}
	raw, _ := os.ReadFile(files[0])
	msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
	if err != nil {
		t.Fatalf("not a mail message: %v", err)
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != "[Switchboard] Anrufe brechen ab – nach 30 s" {
		t.Errorf("subject %q %v", subject, err)
	}
	if msg.Header.Get("Message-ID") != "<tabc.1.ticket@vendor.example>" || !strings.Contains(msg.Header.Get("X-Envelope-To"), "boss@acme.example") {
		t.Errorf("headers %v", msg.Header)
	}
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q %v", mt, err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	text, err := mr.NextPart() // decodes quoted-printable
	if err != nil {
		t.Fatal(err)
	}
	tb, _ := io.ReadAll(text)
	if ct := text.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(string(tb), "All trunks.") || !strings.Contains(string(tb), "K7QM-4XJD-R") {
		t.Errorf("text part %q: %s", ct, tb)
	}
	att, err := mr.NextPart()
	if err != nil {
		t.Fatal(err)
	}
	if att.FileName() != "diagnostics-tabc.json" || att.Header.Get("Content-Transfer-Encoding") != "base64" {
		t.Errorf("attachment headers %v", att.Header)
	}
	ab, _ := io.ReadAll(att)
	dec := make([]byte, len(ab))
	n, err := base64Decode(dec, ab)
	var diag map[string]any
	if err != nil || json.Unmarshal(dec[:n], &diag) != nil || diag["install_id"] != "iabc" {
		t.Errorf("attachment %s: %v", ab, err)
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Errorf("more parts than text and attachment: %v", err)
	}
}

func TestDeliveryFailuresAreClassified(t *testing.T) {
	srv := startSMTP(t)
	// Wrong password: 535, permanent.
	c := configure(t, srv.settings(map[string]string{"password": "wrong"}))
	_, err := c.Deliver(context.Background(), ticket())
	if perm, _ := channels.Classify(err); err == nil || !perm || strings.Contains(err.Error(), "smtp-Pa55") {
		t.Errorf("wrong password: %v (permanent %v)", err, perm)
	}
	// A certificate from an unknown CA: permanent.
	s := srv.settings(nil)
	delete(s, "ca_file")
	c = configure(t, s)
	_, err = c.Deliver(context.Background(), ticket())
	if perm, _ := channels.Classify(err); err == nil || !perm {
		t.Errorf("unknown CA: %v (permanent %v)", err, perm)
	}
	// Nobody listening: transient.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	c = configure(t, srv.settings(map[string]string{"host": addr}))
	_, err = c.Deliver(context.Background(), ticket())
	if perm, _ := channels.Classify(err); err == nil || perm {
		t.Errorf("connection refused: %v (permanent %v)", err, perm)
	}
}

func TestConfigureRefusesBadSettings(t *testing.T) {
	for name, s := range map[string]map[string]string{
		"missing":     {},
		"bad host":    {"host": "smtp.example.com", "from": "a@b.c", "to": "d@e.f"},
		"clear text":  {"host": "smtp.example.com:25", "from": "a@b.c", "to": "d@e.f", "tls": "none"},
		"bad auth":    {"host": "smtp.example.com:587", "from": "a@b.c", "to": "d@e.f", "auth": "cram"},
		"no password": {"host": "smtp.example.com:587", "from": "a@b.c", "to": "d@e.f", "username": "u"},
		"unknown":     {"host": "smtp.example.com:587", "from": "a@b.c", "to": "d@e.f", "colour": "red"},
	} {
		if err := email.New(nil).Configure(context.Background(), s); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func base64Decode(dst, src []byte) (int, error) {
	return base64.StdEncoding.Decode(dst, []byte(strings.NewReplacer("\r", "", "\n", "").Replace(string(src))))
}

// TestNoteIsAThreadedReply: a note goes through the real SMTP server as a
// reply to the ticket's message.
func TestNoteIsAThreadedReply(t *testing.T) {
	srv := startSMTP(t)
	c := configure(t, srv.settings(nil))
	tk := ticket()
	r, err := c.Deliver(context.Background(), tk)
	if err != nil {
		t.Fatal(err)
	}
	nr, err := c.DeliverNote(context.Background(), plugins.Note{TicketID: tk.ID, TicketSubject: tk.Subject, TicketReceipt: r,
		NoteID: "recovered", DeliveryID: "tabc.1.note.recovered", Text: "asterisk is healthy again — since 10:02", Author: "install", CreatedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	if nr.RemoteID != "<tabc.1.note.recovered.note@vendor.example>" {
		t.Errorf("note receipt %+v", nr)
	}
	files, _ := filepath.Glob(filepath.Join(srv.maildir, "*.eml"))
	var reply *mail.Message
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		msg, err := mail.ReadMessage(strings.NewReader(string(raw)))
		if err != nil {
			t.Fatalf("%s is not a mail message: %v", f, err)
		}
		if msg.Header.Get("Message-ID") == nr.RemoteID {
			reply = msg
		}
	}
	if len(files) != 2 || reply == nil {
		t.Fatalf("%d messages stored, reply found: %v", len(files), reply != nil)
	}
	h := reply.Header
	if h.Get("In-Reply-To") != r.RemoteID || h.Get("References") != r.RemoteID {
		t.Errorf("threading headers: In-Reply-To %q References %q, want %q", h.Get("In-Reply-To"), h.Get("References"), r.RemoteID)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != "Re: [Switchboard] Anrufe brechen ab – nach 30 s" {
		t.Errorf("subject %q %v", subject, err)
	}
	if _, err := h.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
	if mt, _, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "text/plain" {
		t.Errorf("content type %q %v", h.Get("Content-Type"), err)
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(reply.Body))
	if !strings.Contains(string(body), "asterisk is healthy again — since 10:02") || !strings.Contains(string(body), "tabc") {
		t.Errorf("body %q", body)
	}
}
