package registry_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	emu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// startSMTPD builds and runs the e-mail channel's test SMTP server (go-smtp,
// STARTTLS with a test CA, AUTH) as its own process.
func startSMTPD(t *testing.T) (addr, caFile, maildir string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "smtpd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/switchboard-dev/switchboard/plugins/channels/email/internal/smtpd").CombinedOutput(); err != nil {
		t.Fatalf("build smtpd: %v\n%s", err, out)
	}
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile = write("ca.pem", "CERTIFICATE", caDER)
	maildir = filepath.Join(dir, "mail")
	_ = os.Mkdir(maildir, 0o700)
	cmd := exec.Command(bin, "-cert", write("c.pem", "CERTIFICATE", der), "-key", write("k.pem", "EC PRIVATE KEY", keyDER),
		"-user", "vendor", "-pass", "smtp-secret-pw", "-dir", maildir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("smtpd: %v", err)
	}
	return strings.TrimSpace(strings.TrimPrefix(line, "listening ")), caFile, maildir
}

// TestSupportEmailAndOdooChannels: the vendor queue is e-mail through a
// real SMTP server process; a partner files tickets in its Odoo (the
// emulator); both through the registry's channel plugin processes.
func TestSupportEmailAndOdooChannels(t *testing.T) {
	addr, caFile, maildir := startSMTPD(t)
	odoo, err := emu.New(emu.Options{Edition: emu.Enterprise})
	if err != nil {
		t.Fatal(err)
	}
	if err := odoo.InstallModule("helpdesk"); err != nil {
		t.Fatal(err)
	}
	if err := odoo.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = odoo.Close() })

	e := newSupportEnv(t, func(c *registry.Config) {
		c.Support.Vendor = registry.VendorChannel{Type: "email", Settings: map[string]string{
			"host": addr, "from": "support@vendor.example", "to": "queue@vendor.example",
			"username": "vendor", "password": "smtp-secret-pw", "ca_file": caFile}}
	})
	p := e.partner(store.TierPartner, "Odoo Partner")
	o := odoo.Options()
	e.setChannel(p.Code, "odoo", map[string]string{"url": odoo.URL(), "database": o.Database, "login": o.AdminLogin, "api_key": o.AdminAPIKey, "team": "Customer Care"})

	partnerTicket, vendorTicket := newTicketID(), newTicketID()
	e.open(e.install(p.Code, "pbx-odoo"), partnerTicket, "Odoo sync stopped")
	e.open(e.install("", "pbx-mail"), vendorTicket, "Need help")

	st := e.waitTicket(partnerTicket, "delivery to the partner's Odoo", delivered)
	if !strings.HasPrefix(st.Receipt.RemoteID, "helpdesk.ticket,") || st.Route.Channel != "odoo" {
		t.Errorf("odoo receipt %+v route %+v", st.Receipt, st.Route)
	}
	recs, _ := odoo.Records("helpdesk.ticket")
	if len(recs) != 1 || !strings.Contains(recs[0]["name"].(string), partnerTicket) {
		t.Errorf("helpdesk tickets %v", recs)
	}
	st = e.waitTicket(vendorTicket, "delivery by e-mail", delivered)
	if !strings.Contains(st.Receipt.RemoteID, "@vendor.example>") {
		t.Errorf("email receipt %+v", st.Receipt)
	}
	mails, _ := filepath.Glob(filepath.Join(maildir, "*.eml"))
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	raw, _ := os.ReadFile(mails[0])
	if !strings.Contains(string(raw), vendorTicket) || !strings.Contains(string(raw), "multipart/mixed") || strings.Contains(string(raw), "smtp-secret-pw") {
		t.Errorf("mail:\n%s", raw)
	}
}
