package registry_test

import (
	"context"
	"html"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// get fetches path (with an optional Host header) and returns status,
// headers and body.
func (e *env) get(path, host string) (int, http.Header, string) {
	e.t.Helper()
	req, err := http.NewRequest("GET", e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(b)
}

func (e *env) namedPartner(name string, tier store.Tier, approve bool) store.Partner {
	e.t.Helper()
	p, err := e.admin.CreatePartner(context.Background(), adminapi.CreatePartnerRequest{Name: name, Email: "ops@acme.example", Tier: tier, Approve: approve})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

func contains(t *testing.T, what, body string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, body)
		}
	}
}

func lacks(t *testing.T, what, body string, unwanted ...string) {
	t.Helper()
	for _, u := range unwanted {
		if strings.Contains(body, u) {
			t.Errorf("%s holds %q:\n%s", what, u, body)
		}
	}
}

func TestDownloadPageNamesAnApprovedPartnerInEveryLinkForm(t *testing.T) {
	e := newEnv(t, nil)
	p := e.namedPartner("Acme PBX Integrators", store.TierPartner, true)
	code := partnercode.MustParse(p.Code)
	typed := strings.ToLower(code.Compact()) // how people paste it
	base := e.url
	for _, path := range []string{
		"/download?ref=" + code.String(),
		"/download?ref=" + typed,
		"/download?via=" + typed,
		"/download?fpr=" + code.String(),
		"/download?code=" + typed,
		"/download?utm_source=mail&ref=" + typed,
		"/r/" + code.String(),
		"/r/" + typed,
	} {
		t.Run(path, func(t *testing.T) {
			status, h, body := e.get(path, "")
			if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/html") {
				t.Fatalf("status %d, type %s", status, h.Get("Content-Type"))
			}
			contains(t, "page", body,
				"Acme PBX Integrators",
				"curl -fsSL "+base+"/install.sh | sudo sh -s -- --registry "+base+" --partner-code "+code.String(),
				`href="`+base+"/"+registry.InstallerName(code)+`"`,
			)
			lacks(t, "page", body, typed, "<script", "class=\"problem\"")
			if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
				t.Errorf("CSP %q", csp)
			}
		})
	}
}

func TestDownloadPageForAReferralShowsNothingIdentifying(t *testing.T) {
	e := newEnv(t, nil)
	p := e.namedPartner("Jane Hobbyist", store.TierReferral, true)
	status, _, body := e.get("/r/"+p.Code, "")
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	contains(t, "page", body, "--partner-code "+p.Code, "referral code")
	lacks(t, "page", body, "Jane", "Hobbyist", "ops@acme.example")
}

func TestDownloadPageWithoutAUsableCode(t *testing.T) {
	e := newEnv(t, nil)
	pending := e.namedPartner("Pending Partner Ltd", store.TierPartner, false)
	suspended := e.namedPartner("Suspended Partner Ltd", store.TierPartner, true)
	if _, err := e.admin.SuspendPartner(context.Background(), suspended.Code, "fraud check"); err != nil {
		t.Fatal(err)
	}
	unknown, err := partnercode.New()
	if err != nil {
		t.Fatal(err)
	}
	// One character changed: the check character catches it.
	good := partnercode.MustParse(pending.Code).Compact()
	flip := byte('0')
	if good[0] == '0' {
		flip = '1'
	}
	mistyped := string(flip) + good[1:]
	_, mistypedErr := partnercode.FromLink("/download?ref=" + mistyped)
	if mistypedErr == nil {
		t.Fatal("mistyped code parses")
	}
	_, badCharErr := partnercode.FromLink("/download?via=K7QM-4XJD-U")

	for _, c := range []struct {
		name, path string
		explain    string
	}{
		{"unknown", "/download?ref=" + unknown.String(), "The partner code " + unknown.String() + " is not known to this registry"},
		{"pending", "/download?ref=" + pending.Code, "The partner code " + pending.Code + " is not active at the moment"},
		{"suspended", "/r/" + suspended.Code, "The partner code " + suspended.Code + " is not active at the moment"},
		{"check character", "/download?ref=" + mistyped, html.EscapeString(mistypedErr.Error())},
		{"bad character", "/download?via=K7QM-4XJD-U", html.EscapeString(badCharErr.Error())},
		{"garbage", "/r/%3Cscript%3Ealert(1)%3C%2Fscript%3E", "The partner code in this link is not valid"},
		{"two codes", "/download?ref=" + pending.Code + "&via=" + suspended.Code, "two different partner codes"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, _, body := e.get(c.path, "")
			if status != http.StatusOK {
				t.Fatalf("status %d, want the page with 200", status)
			}
			contains(t, "page", body, c.explain, "install without one", "curl -fsSL "+e.url+"/install.sh | sudo sh -s -- --registry "+e.url+"</code>")
			lacks(t, "page", body, "--partner-code", "Pending Partner", "Suspended Partner", "suspended", "<script>")
		})
	}
	t.Run("no code at all", func(t *testing.T) {
		status, _, body := e.get("/download", "")
		if status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		contains(t, "page", body, "curl -fsSL "+e.url+"/install.sh")
		lacks(t, "page", body, "--partner-code", `class="problem"`)
	})
}

func TestDownloadPageEscapesAHostilePartnerName(t *testing.T) {
	e := newEnv(t, nil)
	hostile := `<script>alert("x")</script> & 'Co' <img src=x onerror=alert(1)>`
	p := e.namedPartner(hostile, store.TierPartner, true)
	_, _, body := e.get("/download?ref="+p.Code, "")
	lacks(t, "page", body, "<script>", "<img", `"x"`)
	contains(t, "page", body, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &#39;Co&#39; &lt;img src=x onerror=alert(1)&gt;")
}

func TestDownloadPageRefusesAHostileHostHeader(t *testing.T) {
	e := newEnv(t, nil)
	p := e.namedPartner("Acme", store.TierPartner, true)
	// Go's server accepts ' $ ( ) in Host (RFC 3986 sub-delims); none of it
	// may reach the command or the script.
	host := "x'$(reboot)"
	status, _, body := e.get("/download?ref="+p.Code, host)
	if status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	lacks(t, "page", body, "reboot", "curl ")
	contains(t, "page", body, "--public-url")
	status, _, body = e.get("/install.sh", host)
	if status != http.StatusServiceUnavailable || strings.Contains(body, "#!/bin/sh") {
		t.Fatalf("install.sh with hostile Host: %d %s", status, body)
	}
}

func TestInstallScriptsCarryOnlyTheCanonicalCode(t *testing.T) {
	e := newEnv(t, func(c *registry.Config) { c.PublicURL = "https://registry.example/sb/" })
	p := e.namedPartner("Acme", store.TierPartner, true)
	code := partnercode.MustParse(p.Code)
	typed := strings.ToLower(code.Compact())

	status, h, script := e.get("/switchboard-install-"+typed+".sh", "")
	if status != http.StatusOK {
		t.Fatalf("named installer: %d %s", status, script)
	}
	if cd := h.Get("Content-Disposition"); cd != `attachment; filename="`+registry.InstallerName(code)+`"` {
		t.Errorf("Content-Disposition %q", cd)
	}
	contains(t, "script", script, "#!/bin/sh\n", "REGISTRY='https://registry.example/sb'\n", "PARTNER_CODE='"+code.String()+"'\n",
		`/usr/bin/switchboard install --registry "$REGISTRY" "$@"`)
	lacks(t, "script", script, typed)
	shellSyntax(t, script)

	status, _, plain := e.get("/install.sh", "")
	if status != http.StatusOK {
		t.Fatalf("install.sh: %d", status)
	}
	contains(t, "install.sh", plain, "PARTNER_CODE=''\n", "REGISTRY='https://registry.example/sb'\n")
	shellSyntax(t, plain)

	// The page points at the same names under the public URL.
	_, _, page := e.get("/r/"+typed, "")
	contains(t, "page", page, `href="https://registry.example/sb/`+registry.InstallerName(code)+`"`,
		"curl -fsSL https://registry.example/sb/install.sh | sudo sh -s -- --registry https://registry.example/sb --partner-code "+code.String())

	pending := e.namedPartner("Pending", store.TierPartner, false)
	unknown, _ := partnercode.New()
	for _, c := range []struct {
		path   string
		status int
		code   string
	}{
		{"/switchboard-install-" + partnercode.MustParse(pending.Code).Compact() + ".sh", http.StatusUnprocessableEntity, "unknown_partner_code"},
		{"/switchboard-install-" + unknown.Compact() + ".sh", http.StatusUnprocessableEntity, "unknown_partner_code"},
		{"/switchboard-install-K7QM'$(reboot).sh", http.StatusNotFound, "not_found"},
		{"/switchboard-install-.sh", http.StatusNotFound, "not_found"},
		{"/switchboard-install-" + code.Compact() + ".exe", http.StatusNotFound, "not_found"},
		{"/favicon.ico", http.StatusNotFound, "not_found"},
		{"/", http.StatusNotFound, "not_found"},
		{"/no/such/path", http.StatusNotFound, "not_found"},
	} {
		status, _, body := e.get(c.path, "")
		if status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.path, status, c.status, body)
			continue
		}
		if got := errCode(t, []byte(body)); got != c.code {
			t.Errorf("%s: code %s, want %s", c.path, got, c.code)
		}
		lacks(t, c.path, body, "#!/bin/sh")
	}
}

// shellSyntax checks the script parses as POSIX sh (when sh is there).
func shellSyntax(t *testing.T, script string) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Log("no sh on this machine: syntax not checked")
		return
	}
	cmd := exec.Command(sh, "-n")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("sh -n: %v\n%s", err, out)
	}
}

func TestDownloadListsAndServesOnlyExistingPackages(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	write := func(path, body string, mtime time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-time.Hour)
	write(filepath.Join(dir, "switchboard_1.0.0-1_amd64.deb"), "deb-old", old)
	write(filepath.Join(dir, "switchboard_1.1.0-1_amd64.deb"), "deb-new", time.Now())
	write(filepath.Join(dir, "switchboard-1.1.0-1.x86_64.rpm"), "rpm-new", time.Now())
	write(filepath.Join(dir, "README.txt"), "not a package", time.Now())
	write(filepath.Join(dir, "bad name.deb"), "spaces", time.Now())
	write(filepath.Join(outside, "secret.deb"), "TOP-SECRET-CONTENT", time.Now())
	if err := os.Symlink(filepath.Join(outside, "secret.deb"), filepath.Join(dir, "escape_1_amd64.deb")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir.rpm"), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *registry.Config) { c.PackagesDir = dir })

	_, _, page := e.get("/download", "")
	contains(t, "page", page,
		`href="`+e.url+`/packages/switchboard_1.0.0-1_amd64.deb"`,
		`href="`+e.url+`/packages/switchboard_1.1.0-1_amd64.deb"`,
		`href="`+e.url+`/packages/switchboard-1.1.0-1.x86_64.rpm"`)
	lacks(t, "page", page, "README", "bad name", "escape_", "adir", "secret", "No packages are published")

	_, _, script := e.get("/install.sh", "")
	contains(t, "script", script, "'deb/amd64') pkg='switchboard_1.1.0-1_amd64.deb' ;;", "'rpm/x86_64') pkg='switchboard-1.1.0-1.x86_64.rpm' ;;")
	lacks(t, "script", script, "1.0.0", "escape_")
	shellSyntax(t, script)

	status, h, body := e.get("/packages/switchboard_1.1.0-1_amd64.deb", "")
	if status != http.StatusOK || body != "deb-new" || h.Get("Content-Type") != "application/vnd.debian.binary-package" {
		t.Errorf("deb: %d %q %s", status, body, h.Get("Content-Type"))
	}
	status, h, body = e.get("/packages/switchboard-1.1.0-1.x86_64.rpm", "")
	if status != http.StatusOK || body != "rpm-new" || h.Get("Content-Type") != "application/x-rpm" {
		t.Errorf("rpm: %d %q %s", status, body, h.Get("Content-Type"))
	}
	for _, p := range []string{"README.txt", "escape_1_amd64.deb", "adir.rpm", "missing_1_amd64.deb", "..%2Fsecret.deb", "bad%20name.deb"} {
		if status, _, body := e.get("/packages/"+p, ""); status != http.StatusNotFound || strings.Contains(body, "TOP-SECRET") {
			t.Errorf("/packages/%s: %d %s", p, status, body)
		}
	}

	// Without --packages: no links, no package in the script, 404s.
	e2 := newEnv(t, nil)
	_, _, page = e2.get("/download", "")
	contains(t, "page", page, "No packages are published")
	if status, _, _ := e2.get("/packages/switchboard_1.1.0-1_amd64.deb", ""); status != http.StatusNotFound {
		t.Errorf("package without --packages: %d", status)
	}
}

func TestPackagesDirMustExist(t *testing.T) {
	cfg := registry.DefaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.PackagesDir = filepath.Join(t.TempDir(), "missing")
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "--packages") {
		t.Fatalf("Validate: %v", err)
	}
}

func TestCheckpointIntervalRange(t *testing.T) {
	for _, d := range []time.Duration{time.Millisecond, time.Hour} {
		cfg := registry.DefaultConfig()
		cfg.DataDir = t.TempDir()
		cfg.CheckpointInterval = registry.Duration(d)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "checkpoint interval") {
			t.Errorf("checkpoint interval %s: %v", d, err)
		}
	}
}
