package state

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestKeyCreatedOnceWithTightModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(path, 0o755); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode %o", fi.Mode().Perm())
	}
	k1, created, err := d.LoadOrCreateKey()
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	if fi, _ := os.Stat(d.File(KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %o", fi.Mode().Perm())
	}
	os.Chmod(d.File(KeyFile), 0o644)
	k2, created, err := d.LoadOrCreateKey()
	if err != nil || created || !k1.Equal(k2) {
		t.Fatalf("reload: created=%v err=%v same=%v", created, err, k1.Equal(k2))
	}
	if fi, _ := os.Stat(d.File(KeyFile)); fi.Mode().Perm() != 0o600 {
		t.Fatalf("loose key mode not tightened: %o", fi.Mode().Perm())
	}
	os.WriteFile(d.File(KeyFile), []byte("garbage"), 0o600)
	if _, _, err := d.LoadOrCreateKey(); err == nil {
		t.Fatal("a damaged key was replaced or accepted")
	}
}

func TestInstallAndLicence(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := d.LoadInstall(); ok || err != nil {
		t.Fatalf("fresh dir: %v %v", ok, err)
	}
	in := Install{InstallID: "i1", ActivatedAt: time.Now().UTC().Truncate(time.Second), HeartbeatIntervalSeconds: 60}
	if err := d.SaveInstall(in); err != nil {
		t.Fatal(err)
	}
	got, ok, err := d.LoadInstall()
	if err != nil || !ok || got.InstallID != "i1" || !got.ActivatedAt.Equal(in.ActivatedAt) {
		t.Fatalf("install %+v %v %v", got, ok, err)
	}
	os.WriteFile(d.File(InstallFile), []byte("{"), 0o600)
	if _, _, err := d.LoadInstall(); err == nil {
		t.Fatal("damaged install record accepted")
	}
	if err := d.SaveLicence("  LIC\n"); err != nil {
		t.Fatal(err)
	}
	if l, ok, err := d.LoadLicence(); l != "LIC" || !ok || err != nil {
		t.Fatalf("licence %q %v %v", l, ok, err)
	}
	matches, _ := filepath.Glob(filepath.Join(d.Path, ".*tmp*"))
	if len(matches) != 0 {
		t.Fatalf("temporary files left: %v", matches)
	}
}
