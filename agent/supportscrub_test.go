package agent

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestScrubberRemovesEverySecret(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	keyPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	settings := map[string]map[string]string{
		"asterisk": {"ari_password": "ari-S3cret!", "ari_url": "http://sb:ari-S3cret!@127.0.0.1:8088/ari"},
		"odoo":     {"api_key": "0d00-key-4f8a2b", "database": "acme-prod"},
	}
	sc := newScrubber(key, "https://agent:reg-Pa55w0rd@registry.example.com", settings)
	secrets := []string{"ari-S3cret!", "0d00-key-4f8a2b", "acme-prod", "reg-Pa55w0rd", "hunter2hunter2",
		hex.EncodeToString(key.Seed()), base64.StdEncoding.EncodeToString(key), "tok-123456789"}
	for _, line := range strings.Split(strings.TrimSpace(keyPEM), "\n") {
		if !strings.HasPrefix(line, "-----") {
			secrets = append(secrets, line)
		}
	}
	doc := map[string]any{
		"plugins":  []any{map[string]any{"name": "asterisk", "detail": "login to http://sb:ari-S3cret!@127.0.0.1:8088/ari failed"}},
		"odoo":     map[string]any{"detail": "database acme-prod refused key 0d00-key-4f8a2b"},
		"config":   map[string]any{"password": "hunter2hunter2", "api_token": "tok-123456789", "empty_password": ""},
		"log":      []any{"connect failed password=hunter2hunter2 user=admin", "seed " + hex.EncodeToString(key.Seed())},
		"key":      base64.StdEncoding.EncodeToString(key),
		"pem":      keyPEM,
		"registry": "https://agent:reg-Pa55w0rd@registry.example.com",
		"fine":     "Asterisk 20.5.0 on pbx1",
	}
	raw, err := sc.object(doc)
	if err != nil {
		t.Fatal(err)
	}
	out := string(raw)
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q survived: %s", s, out)
		}
	}
	if !strings.Contains(out, "Asterisk 20.5.0 on pbx1") || !strings.Contains(out, Redacted) || !strings.Contains(out, "user=admin") {
		t.Errorf("scrubbed too much or nothing: %s", out)
	}
	if got := sc.text("my password: hunter3hunter3, thanks"); strings.Contains(got, "hunter3") {
		t.Errorf("free-text password survived: %q", got)
	}
}

func TestLogRingKeepsLastWarningsWithoutSecretArgs(t *testing.T) {
	ring := newLogRing(3)
	log := hclog.NewInterceptLogger(&hclog.LoggerOptions{Output: &strings.Builder{}, Level: hclog.Trace})
	log.RegisterSink(ring)
	log.Info("not kept")
	for i, msg := range []string{"one", "two", "three", "four"} {
		log.Named("sender").Warn(msg, "n", i, "password", "pw-"+msg)
	}
	lines := ring.Lines()
	if len(lines) != 3 || !strings.HasPrefix(lines[0].Message, "two") || !strings.HasPrefix(lines[2].Message, "four") {
		t.Fatalf("lines %+v", lines)
	}
	for _, l := range lines {
		if strings.Contains(l.Message, "pw-") || l.Level != "warn" || !strings.Contains(l.Logger, "sender") {
			t.Errorf("line %+v", l)
		}
	}
}
