package api

import (
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSignVerify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	now := time.Unix(1_800_000_000, 0)
	body := []byte(`{"reports":[]}`)
	path := InstallPath(PathReports, "inst-1")
	if path != "/v1/installs/inst-1/reports" {
		t.Fatalf("InstallPath = %q", path)
	}
	r, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1"+path, nil)
	SignRequest(r, body, "inst-1", priv, now)
	sig, err := ParseSignature(r.Header.Get(SignatureHeader))
	if err != nil {
		t.Fatal(err)
	}
	if sig.InstallID != "inst-1" {
		t.Fatalf("install id %q", sig.InstallID)
	}
	if err := sig.Verify(http.MethodPost, path, body, pub, now.Add(time.Minute)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	for name, tamper := range map[string]func() error{
		"body":   func() error { return sig.Verify("POST", path, []byte(`{"reports":[{}]}`), pub, now) },
		"path":   func() error { return sig.Verify("POST", "/v1/installs/inst-2/reports", body, pub, now) },
		"method": func() error { return sig.Verify("PUT", path, body, pub, now) },
		"key": func() error {
			other, _, _ := ed25519.GenerateKey(nil)
			return sig.Verify("POST", path, body, other, now)
		},
		"skew": func() error { return sig.Verify("POST", path, body, pub, now.Add(MaxClockSkew+time.Hour)) },
	} {
		if tamper() == nil {
			t.Errorf("tampered %s verified", name)
		}
	}
}

func TestActivationSignatureNamesKey(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	h := Sign("POST", PathActivations, []byte("{}"), "", priv, time.Now())
	sig, err := ParseSignature(h)
	if err != nil {
		t.Fatal(err)
	}
	if !pub.Equal(sig.PublicKey) || sig.InstallID != "" {
		t.Fatalf("activation signature should carry the key, got %+v", sig)
	}
	if err := sig.Verify("POST", PathActivations, []byte("{}"), sig.PublicKey, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestParseSignatureRejects(t *testing.T) {
	for _, h := range []string{
		"",
		"v2 install=a, ts=1, sig=AA",
		"v1 install=a, ts=1",
		"v1 install=a, ts=x, sig=" + strings.Repeat("A", 86),
		"v1 ts=1, sig=" + strings.Repeat("A", 86),
		"v1 install=a, install=b, ts=1, sig=" + strings.Repeat("A", 86),
		"v1 install=a, ts=1, sig=short",
		"v1 install=a, ts=1, sig=" + strings.Repeat("A", 86) + ", extra=1",
	} {
		if _, err := ParseSignature(h); err == nil {
			t.Errorf("ParseSignature(%q) accepted", h)
		}
	}
}

func FuzzParseSignature(f *testing.F) {
	_, priv, _ := ed25519.GenerateKey(nil)
	f.Add(Sign("POST", "/v1/x", nil, "inst", priv, time.Unix(1, 0)))
	f.Add(Sign("POST", "/v1/x", nil, "", priv, time.Unix(1, 0)))
	f.Add("v1 install=, ts=, sig=")
	f.Fuzz(func(t *testing.T, h string) {
		s, err := ParseSignature(h)
		if err != nil {
			return
		}
		if len(s.Sig) != ed25519.SignatureSize || (s.InstallID == "") == (s.PublicKey == nil) {
			t.Fatalf("accepted inconsistent signature %+v from %q", s, h)
		}
	})
}
