package installer

import (
	"context"
	"strings"
	"testing"
)

func detectRoot(t *testing.T, name string) *Host {
	t.Helper()
	h, err := Detect(context.Background(), copyRoot(t, name), false, &fakeRunner{})
	if err != nil {
		t.Fatalf("detect %s: %v", name, err)
	}
	return h
}

func userNames(a *AsteriskInfo) string {
	var n []string
	for _, u := range a.ARI.Users {
		n = append(n, u.Name)
	}
	return strings.Join(n, ",")
}

func TestDetectPlainAsterisk(t *testing.T) {
	h := detectRoot(t, "plain-asterisk")
	a := h.Asterisk
	if a == nil {
		t.Fatal("Asterisk not found")
	}
	if a.Distribution != DistPlain || a.Version != "20.5.2" || a.ConfigDir != "/etc/asterisk" {
		t.Errorf("got distribution %q version %q config dir %q", a.Distribution, a.Version, a.ConfigDir)
	}
	if !a.HTTP.Enabled || a.HTTP.BindAddr != "127.0.0.1" || a.HTTP.BindPort != 8088 {
		t.Errorf("http: %+v", a.HTTP)
	}
	if !a.ARI.Enabled || a.ARI.URL != "http://127.0.0.1:8088/ari" || a.ARI.CustomFile != "/etc/asterisk/ari.conf" {
		t.Errorf("ari: %+v", a.ARI)
	}
	// Commented-out sample users do not count; the crypt user does.
	if got := userNames(a); got != "dashboard" {
		t.Errorf("ARI users %q, want dashboard", got)
	}
	if u, _ := a.ARI.user("dashboard"); u.PasswordFormat != "crypt" || !u.ReadOnly {
		t.Errorf("dashboard user: %+v", u)
	}
	if h.Odoo != nil || h.Systemd || a.Running != nil {
		t.Errorf("odoo %+v systemd %v running %v under a root", h.Odoo, h.Systemd, a.Running)
	}
}

func TestDetectFreePBX(t *testing.T) {
	a := detectRoot(t, "freepbx").Asterisk
	if a == nil || a.Distribution != DistFreePBX || a.DistributionVersion != "16.0.40.7" || a.Version != "18.20.0" {
		t.Fatalf("got %+v", a)
	}
	// Settings come through FreePBX's includes.
	if !a.HTTP.Enabled || a.HTTP.BindAddr != "::" || a.ARI.URL != "http://127.0.0.1:8088/ari" {
		t.Errorf("http %+v url %s", a.HTTP, a.ARI.URL)
	}
	if !a.ARI.Enabled || userNames(a) != "freepbxuser" {
		t.Errorf("ari enabled %v users %s", a.ARI.Enabled, userNames(a))
	}
	if a.ARI.CustomFile != "/etc/asterisk/ari_additional_custom.conf" {
		t.Errorf("custom file %s, want ari_additional_custom.conf", a.ARI.CustomFile)
	}
}

func TestDetectIssabel(t *testing.T) {
	a := detectRoot(t, "issabel").Asterisk
	// Issabel has amportal.conf like FreePBX: it must still be Issabel.
	if a == nil || a.Distribution != DistIssabel || a.DistributionEvidence != "/etc/issabel.conf" {
		t.Fatalf("got %+v", a)
	}
	if a.DistributionVersion != "Issabel release 4.0.0 (Core)" || a.Version != "16.30.0" {
		t.Errorf("versions %q %q", a.DistributionVersion, a.Version)
	}
	// prefix=asterisk and bindaddr 0.0.0.0 → loopback URL with the prefix.
	if a.ARI.URL != "http://127.0.0.1:8088/asterisk/ari" {
		t.Errorf("ARI URL %s", a.ARI.URL)
	}
	// This ari.conf does not include the FreePBX custom file: users go in ari.conf.
	if a.ARI.CustomFile != "/etc/asterisk/ari.conf" {
		t.Errorf("custom file %s", a.ARI.CustomFile)
	}
}

func TestDetectVitalPBX(t *testing.T) {
	a := detectRoot(t, "vitalpbx").Asterisk
	if a == nil || a.Distribution != DistVitalPBX || a.Version != "20.7.0" {
		t.Fatalf("got %+v", a)
	}
	if a.HTTP.Enabled || a.ARI.Enabled {
		t.Errorf("HTTP and ARI are off in this fixture: http %v ari %v", a.HTTP.Enabled, a.ARI.Enabled)
	}
}

func TestDetectOdoo(t *testing.T) {
	h := detectRoot(t, "odoo")
	o := h.Odoo
	if o == nil {
		t.Fatal("Odoo not found")
	}
	if h.Asterisk != nil {
		t.Errorf("Asterisk found on an Odoo-only root: %+v", h.Asterisk)
	}
	if o.ConfigFile != "/etc/odoo/odoo.conf" || o.Unit != "/lib/systemd/system/odoo.service" {
		t.Errorf("config %s unit %s", o.ConfigFile, o.Unit)
	}
	if o.HTTPPort != 8070 || o.URL != "http://127.0.0.1:8070" || o.DBName != "production" || o.DBUser != "odoo" || o.DBHost != "" {
		t.Errorf("got %+v", o)
	}
	if !strings.Contains(o.AddonsPath, "/opt/odoo/custom-addons") {
		t.Errorf("addons_path %q", o.AddonsPath)
	}
}

func TestDetectEmpty(t *testing.T) {
	h := detectRoot(t, "empty")
	if h.Asterisk != nil || h.Odoo != nil {
		t.Errorf("found something on an empty root: %+v %+v", h.Asterisk, h.Odoo)
	}
}

func TestDetectLiveRunsAsteriskV(t *testing.T) {
	r := &fakeRunner{}
	root := copyRoot(t, "plain-asterisk")
	h, err := Detect(context.Background(), root, true, r)
	if err != nil {
		t.Fatal(err)
	}
	if h.Asterisk.Version != "20.5.2" || h.Asterisk.VersionSource != "/usr/sbin/asterisk -V" {
		t.Errorf("version %q from %q", h.Asterisk.Version, h.Asterisk.VersionSource)
	}
	if h.Asterisk.Running == nil || !*h.Asterisk.Running {
		t.Errorf("running not detected: %v", h.Asterisk.Running)
	}
	if got := strings.Join(r.commands(), "; "); !strings.Contains(got, "/usr/sbin/asterisk -V") {
		t.Errorf("commands: %s", got)
	}
}

func TestConfCommentsAndEdits(t *testing.T) {
	line, block := stripConfComment(`password = a\;b ; comment`, 0)
	if strings.TrimSpace(line) != "password = a;b" || block != 0 {
		t.Errorf("got %q %v", line, block)
	}
	if line, block = stripConfComment(`x = 1 ;-- start`, 0); strings.TrimSpace(line) != "x = 1" || block != 1 {
		t.Errorf("got %q %v", line, block)
	}
	if line, block = stripConfComment(`still --; y = 2`, 1); strings.TrimSpace(line) != "y = 2" || block != 0 {
		t.Errorf("got %q %v", line, block)
	}
	in := "[general]\n;enabled = yes\nenabled = no ; off\nbindaddr=1.2.3.4\n[other]\nenabled = no\n"
	out := setConfKey(in, "general", "enabled", "yes")
	want := "[general]\n;enabled = yes\nenabled = yes ; set by switchboard install\nbindaddr=1.2.3.4\n[other]\nenabled = no\n"
	if out != want {
		t.Errorf("replace:\n%s\nwant\n%s", out, want)
	}
	out = setConfKey("[general]\nservername=x\n", "general", "bindport", "8088")
	if out != "[general]\nbindport = 8088 ; set by switchboard install\nservername=x\n" {
		t.Errorf("insert: %q", out)
	}
	if out = setConfKey("; only comments", "general", "enabled", "yes"); out != "; only comments\n\n[general]\nenabled = yes ; set by switchboard install\n" {
		t.Errorf("append: %q", out)
	}
	orig := "[general]\nenabled = yes\n"
	added := appendBlock(orig, ariUserBlock("switchboard", "pw"))
	back, ok := removeMarkedBlock(added)
	if !ok || back != orig {
		t.Errorf("remove block: ok %v, %q want %q", ok, back, orig)
	}
}
