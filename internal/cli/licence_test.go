package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/partnercode"
)

// keygen makes a vendor key pair in a fresh directory and returns its paths.
func keygen(t *testing.T) (dir, key, pub string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "vendor")
	code, out, stderr := run(t, "licence", "keygen", "--dir", dir)
	if code != ExitOK {
		t.Fatalf("keygen: exit %d: %s", code, stderr)
	}
	key, pub = filepath.Join(dir, "vendor.key"), filepath.Join(dir, "vendor.pub")
	for _, want := range []string{key, pub, "key id:"} {
		if !strings.Contains(out, want) {
			t.Fatalf("keygen output lacks %q:\n%s", want, out)
		}
	}
	return dir, key, pub
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLicenceKeygenIssueVerifyShow(t *testing.T) {
	dir, key, pub := keygen(t)
	fi, err := os.Stat(key)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("vendor.key: %v, mode %v", err, fi.Mode())
	}
	// A second keygen must not replace the key.
	if code, _, stderr := run(t, "licence", "keygen", "--dir", dir); code != ExitFailed || !strings.Contains(stderr, "refusing to overwrite") {
		t.Fatalf("second keygen: exit %d, %s", code, stderr)
	}

	pc, err := partnercode.New()
	if err != nil {
		t.Fatal(err)
	}
	typed := strings.ToLower(strings.ReplaceAll(pc.String(), "-", " "))
	code, lic, stderr := run(t, "licence", "issue", "--key", key, "--install", "inst-42",
		"--partner-code", typed, "--tier", "partner", "--customer", "cust-7",
		"--product", "odoo-connector", "--product", "asterisk-callcenter", "--seats", "25",
		"--not-after", "2099-01-31", "--grace", "30d")
	if code != ExitOK {
		t.Fatalf("issue: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(lic, licensing.BeginLine+"\n") || !strings.Contains(lic, "Partner: "+pc.String()+" (partner)") {
		t.Fatalf("issue output:\n%s", lic)
	}
	licPath := writeFile(t, "inst-42.lic", []byte(lic))

	code, out, stderr := run(t, "licence", "verify", "--pub", pub, "--install", "inst-42", licPath)
	if code != ExitOK || !strings.HasPrefix(out, "valid: ") || !strings.Contains(out, "2099-01-31T23:59:59Z") {
		t.Fatalf("verify: exit %d\n%s%s", code, out, stderr)
	}
	// In the grace period: exit 0 and say so.
	code, out, _ = run(t, "licence", "verify", "--pub", pub, "--at", "2099-02-15", licPath)
	if code != ExitOK || !strings.HasPrefix(out, "grace: ") || !strings.Contains(out, "renew") {
		t.Fatalf("verify in grace: exit %d\n%s", code, out)
	}
	code, out, stderr = run(t, "licence", "verify", "--pub", pub, "--at", "2099-03-15", licPath)
	if code != ExitFailed || out != "" || !strings.Contains(stderr, "expired") || strings.Count(stderr, "\n") != 1 {
		t.Fatalf("verify expired: exit %d\n%s%s", code, out, stderr)
	}

	code, out, _ = run(t, "licence", "show", licPath)
	for _, want := range []string{"install:      inst-42", "customer:     cust-7", pc.String(),
		"asterisk-callcenter, odoo-connector", "seats:        25", "30 days", "signature not checked"} {
		if code != ExitOK || !strings.Contains(out, want) {
			t.Errorf("show lacks %q (exit %d):\n%s", want, code, out)
		}
	}
	code, out, _ = run(t, "licence", "show", licPath, "--output", "json")
	var shown map[string]any
	if err := json.Unmarshal([]byte(out), &shown); err != nil || code != ExitOK {
		t.Fatalf("show json: exit %d, %v\n%s", code, err, out)
	}
	if shown["signature_checked"] != false || shown["install_id"] != "inst-42" || shown["partner_code"] != pc.String() ||
		shown["tier"] != "partner" || shown["grace_seconds"] != float64(30*24*3600) {
		t.Fatalf("show json: %v", shown)
	}

	// The same through stdin, as pasted from an e-mail with CRLF.
	var sout, serr bytes.Buffer
	mail := "Hello,\r\n" + strings.ReplaceAll(lic, "\n", "\r\n") + "Bye\r\n"
	if code := Execute([]string{"licence", "verify", "--pub", pub, "-"}, strings.NewReader(mail), &sout, &serr); code != ExitOK {
		t.Fatalf("verify from stdin: exit %d: %s", code, serr.String())
	}
}

func TestLicenceIssueDefaultsAndJSON(t *testing.T) {
	_, key, pub := keygen(t)
	code, out, stderr := run(t, "licence", "issue", "--key", key, "--install", "inst-1", "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var issued struct {
		Licence  map[string]any `json:"licence"`
		Armoured string         `json:"armoured"`
	}
	if err := json.Unmarshal([]byte(out), &issued); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if issued.Licence["tier"] != "none" || issued.Licence["partner_code"] != "" || issued.Licence["grace_seconds"] != float64(720*3600) {
		t.Fatalf("defaults: %v", issued.Licence)
	}
	notAfter, err := time.Parse(time.RFC3339, issued.Licence["not_after"].(string))
	if err != nil || time.Until(notAfter) < 364*24*time.Hour || time.Until(notAfter) > 367*24*time.Hour {
		t.Fatalf("default not-after %v is not a year from now", notAfter)
	}
	licPath := writeFile(t, "l.lic", []byte(issued.Armoured))
	code, out, _ = run(t, "licence", "verify", "--pub", pub, licPath, "--output", "json")
	var v verifyJSON
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != ExitOK || !v.Valid || v.Status != "valid" || v.Licence.InstallID != "inst-1" {
		t.Fatalf("verify json: exit %d %v %+v", code, err, v)
	}
}

func TestLicenceIssueUsageErrors(t *testing.T) {
	_, key, _ := keygen(t)
	pc, err := partnercode.New()
	if err != nil {
		t.Fatal(err)
	}
	code := pc.String()
	base := []string{"licence", "issue", "--key", key, "--install", "inst-1"}
	cases := map[string]struct {
		args []string
		want string
	}{
		"no key":              {[]string{"licence", "issue", "--install", "x"}, "key"},
		"no install":          {[]string{"licence", "issue", "--key", key}, "install"},
		"tier none with code": {[]string{"--tier", "none", "--partner-code", code}, "none"},
		"code without tier":   {[]string{"--partner-code", code}, "--tier"},
		"tier without code":   {[]string{"--tier", "referral"}, "needs --partner-code"},
		"unknown tier":        {[]string{"--tier", "gold", "--partner-code", code}, "gold"},
		"bad code":            {[]string{"--tier", "partner", "--partner-code", "K7QM-4XJD-!"}, "--partner-code"},
		"negative seats":      {[]string{"--seats", "-3"}, "negative"},
		"bad date":            {[]string{"--not-after", "31/01/2027"}, "not-after"},
		"past date":           {[]string{"--not-after", "2001-01-01"}, "in the past"},
		"bad grace":           {[]string{"--grace", "a month"}, "grace"},
		"negative grace":      {[]string{"--grace", "-1h"}, "out of range"},
		"huge grace":          {[]string{"--grace", "99999d"}, "out of range"},
		"space in product":    {[]string{"--product", "call center"}, "product"},
		"extra argument":      {[]string{"extra"}, "unknown command"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			args := c.args
			if args[0] != "licence" {
				args = append(append([]string{}, base...), args...)
			}
			exit, out, stderr := run(t, args...)
			if exit != ExitUsage || out != "" || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stdout %q, stderr %q (want usage error mentioning %q)", exit, out, stderr, c.want)
			}
		})
	}
}

func TestLicenceIssueKeyProblems(t *testing.T) {
	_, key, pub := keygen(t)
	if err := os.Chmod(key, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "licence", "issue", "--key", key, "--install", "i")
	if code != ExitFailed || !strings.Contains(stderr, "chmod 600") {
		t.Fatalf("world-readable key: exit %d %s", code, stderr)
	}
	code, _, stderr = run(t, "licence", "issue", "--key", pub, "--install", "i")
	if code != ExitFailed || !strings.Contains(stderr, "not a Switchboard vendor private key") {
		t.Fatalf("public key as --key: exit %d %s", code, stderr)
	}
}

func TestLicenceVerifyRefusals(t *testing.T) {
	_, key, pub := keygen(t)
	_, _, otherPub := keygen(t)
	_, lic, stderr := run(t, "licence", "issue", "--key", key, "--install", "inst-9", "--not-after", "2099-01-01")
	if lic == "" {
		t.Fatal(stderr)
	}
	good := writeFile(t, "good.lic", []byte(lic))
	// Edit the body: swap one base64 character for another.
	lines := strings.Split(lic, "\n")
	body := lines[7]
	swapped := "A"
	if body[5] == 'A' {
		swapped = "B"
	}
	lines[7] = body[:5] + swapped + body[6:]
	tampered := writeFile(t, "tampered.lic", []byte(strings.Join(lines, "\n")))

	cases := map[string]struct {
		args   []string
		reason string
		want   string
	}{
		"malformed":     {[]string{"--pub", pub, writeFile(t, "x.lic", []byte("not a licence"))}, "malformed", "BEGIN"},
		"unknown key":   {[]string{"--pub", otherPub, good}, "unknown_key", "vendor.pub"},
		"tampered":      {[]string{"--pub", pub, tampered}, "", ""},
		"wrong install": {[]string{"--pub", pub, "--install", "inst-8", good}, "wrong_install", "inst-8"},
		"expired":       {[]string{"--pub", pub, "--at", "2099-03-01", good}, "expired", "renew"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			args := append([]string{"licence", "verify"}, c.args...)
			code, _, stderr := run(t, args...)
			if code != ExitFailed || !strings.Contains(stderr, c.want) || strings.Count(stderr, "\n") != 1 {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			code, out, _ := run(t, append(args, "--output", "json")...)
			var v verifyJSON
			if err := json.Unmarshal([]byte(out), &v); err != nil || code != ExitFailed || v.Valid || v.Error == "" {
				t.Fatalf("json: exit %d, %v, %s", code, err, out)
			}
			// A changed base64 character is either a bad signature or a
			// broken structure, depending on which byte it hits.
			if c.reason == "" && v.Reason != "bad_signature" && v.Reason != "malformed" {
				t.Fatalf("tampered licence refused as %q", v.Reason)
			}
			if c.reason != "" && v.Reason != c.reason {
				t.Fatalf("reason %q, want %q", v.Reason, c.reason)
			}
		})
	}
	// Rotation: both public keys given, either licence verifies.
	if code, _, stderr := run(t, "licence", "verify", "--pub", otherPub, "--pub", pub, good); code != ExitOK {
		t.Fatalf("two --pub: exit %d %s", code, stderr)
	}
	// Usage: no --pub, no file.
	if code, _, _ := run(t, "licence", "verify", good); code != ExitUsage {
		t.Fatalf("verify without --pub: exit %d", code)
	}
	if code, _, _ := run(t, "licence", "verify", "--pub", pub); code != ExitUsage {
		t.Fatalf("verify without file: exit %d", code)
	}
	if code, _, _ := run(t, "licence", "verify", "--pub", pub, "--at", "soon", good); code != ExitUsage {
		t.Fatalf("verify --at soon: exit %d", code)
	}
	if code, _, stderr := run(t, "licence", "verify", "--pub", good, good); code != ExitFailed || !strings.Contains(stderr, "vendor.pub") {
		t.Fatalf("licence as --pub: exit %d %s", code, stderr)
	}
	if code, _, stderr := run(t, "licence", "show", filepath.Join(t.TempDir(), "missing.lic")); code != ExitFailed || !strings.Contains(stderr, "no such file") {
		t.Fatalf("show missing file: exit %d %s", code, stderr)
	}
}

func TestLicenceHelp(t *testing.T) {
	for _, sub := range []string{"keygen", "issue", "verify", "show"} {
		code, out, _ := run(t, "licence", sub, "--help")
		if code != ExitOK || !strings.Contains(out, "Examples:") {
			t.Errorf("licence %s --help: exit %d\n%s", sub, code, out)
		}
	}
}
