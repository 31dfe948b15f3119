package state

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
)

func goodInstall() Install {
	return Install{
		InstallID: "iabcdefghijklmnopqrstuvwxyz234567", ActivatedAt: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC),
		HeartbeatIntervalSeconds: 3600, Partner: &api.PartnerRef{Code: "ABCD-EFGH-JK", Tier: "partner", Name: "Acme"},
	}
}

// TestTruncatedInstallRecord cuts a good install.json at every length: each
// cut is either refused with an error naming the file and the remedy, or
// (never, for JSON) read as the full record; the file is never changed.
func TestTruncatedInstallRecord(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveInstall(goodInstall()); err != nil {
		t.Fatal(err)
	}
	full, err := os.ReadFile(d.File(InstallFile))
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(full)-1; n++ { // the last byte is a newline
		cut := full[:n]
		if err := os.WriteFile(d.File(InstallFile), cut, 0o600); err != nil {
			t.Fatal(err)
		}
		_, ok, err := d.LoadInstall()
		if err == nil || ok {
			t.Fatalf("%d of %d bytes read as a record (ok %v)", n, len(full), ok)
		}
		msg := err.Error()
		if !strings.Contains(msg, d.File(InstallFile)) || !strings.Contains(msg, "restore it from backup or re-run the installer") {
			t.Fatalf("cut at %d: unclear error %q", n, msg)
		}
		if after, _ := os.ReadFile(d.File(InstallFile)); !bytes.Equal(after, cut) {
			t.Fatalf("cut at %d: the file was changed", n)
		}
	}
}

func TestInstallRecordValues(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]string{
		`null`:                       "no install_id",
		`{}`:                         "no install_id",
		`{"install_id":5}`:           "damaged",
		`{"install_id":"a b"}`:       "not an install id",
		`{"install_id":"../../etc"}`: "not an install id",
		`{"install_id":"i1","heartbeat_interval_seconds":-5}`:                  "outside 0",
		`{"install_id":"i1","heartbeat_interval_seconds":9223372036854775807}`: "outside 0",
		`{"install_id":"i1","heartbeat_interval_seconds":1e400}`:               "damaged",
		`{"install_id":"i1"} {"install_id":"i2"}`:                              "damaged",
		`{"install_id":"` + strings.Repeat("i", 65) + `"}`:                     "short",
		"\xef\xbb\xbf{\"install_id\":\"i1\"}":                                  "damaged",
		`{"install_id":"i1","activated_at":"yesterday"}`:                       "damaged",
		`{"install_id":"i1","partner":{"code":["x"]}}`:                         "damaged",
		`{"install_id":"i1","heartbeat_interval_seconds":"3600"}`:              "damaged",
		`{"install_id":"i1","heartbeat_interval_seconds":3600.5}`:              "damaged",
		`[{"install_id":"i1"}]`:                                                "damaged",
		"{\"install_id\":\"i\x001\"}":                                          "damaged",
		`{"install_id":"i\u00001"}`:                                            "not an install id",
	}
	for body, want := range cases {
		if err := os.WriteFile(d.File(InstallFile), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		inst, ok, err := d.LoadInstall()
		if err == nil || ok || !strings.Contains(err.Error(), want) || inst != (Install{}) {
			t.Errorf("%s: %v %v %+v, want an error with %q", body, ok, err, inst, want)
		}
	}
	// Unknown fields are kept for a newer agent's records: not an error.
	if err := os.WriteFile(d.File(InstallFile), []byte(`{"install_id":"i1","future":true}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if inst, ok, err := d.LoadInstall(); err != nil || !ok || inst.InstallID != "i1" {
		t.Fatalf("unknown field: %+v %v %v", inst, ok, err)
	}
}

// TestLostKeyIsNotReplaced: a missing install.key next to an install
// record must not be silently replaced by a new identity.
func TestLostKeyIsNotReplaced(t *testing.T) {
	d, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := d.SaveInstall(goodInstall()); err != nil {
		t.Fatal(err)
	}
	_, created, err := d.LoadOrCreateKey()
	if err == nil || created || !strings.Contains(err.Error(), "restore the key from backup") || !strings.Contains(err.Error(), d.File(KeyFile)) {
		t.Fatalf("lost key: created %v, %v", created, err)
	}
	if _, err := os.Stat(d.File(KeyFile)); err == nil {
		t.Fatal("a new key was written")
	}
	// A truncated key is refused and kept as it is.
	if err := os.WriteFile(d.File(KeyFile), []byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2Vw"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.LoadOrCreateKey(); err == nil || !strings.Contains(err.Error(), "restore it from backup") {
		t.Fatalf("truncated key: %v", err)
	}
	if data, _ := os.ReadFile(d.File(KeyFile)); !strings.HasSuffix(string(data), "MC4CAQAwBQYDK2Vw") {
		t.Fatal("the truncated key was replaced")
	}
}

func FuzzLoadInstall(f *testing.F) {
	for _, s := range []string{
		`{"install_id":"iabcdefghijklmnopqrstuvwxyz234567","activated_at":"2026-03-01T10:00:00Z","heartbeat_interval_seconds":3600,"partner":{"code":"ABCD-EFGH-JK","tier":"partner","name":"Acme"}}`,
		`{"install_id":"i1","heartbeat_interval_seconds":-1}`,
		`{"install_id":"i1","activated_at":"2026-13-01T10:00:00Z"}`,
		`{"install_id":"i1"`,
		``,
		`null`,
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	d, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(d.File(InstallFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		inst, ok, err := d.LoadInstall()
		if err != nil {
			if ok || !strings.Contains(err.Error(), d.File(InstallFile)) {
				t.Fatalf("error without the file name or with ok: %v", err)
			}
			return
		}
		if !ok || inst.check() != nil {
			t.Fatalf("accepted a record that does not check: %+v", inst)
		}
		if d := time.Duration(inst.HeartbeatIntervalSeconds) * time.Second; d < 0 {
			t.Fatalf("interval %d overflows", inst.HeartbeatIntervalSeconds)
		}
		// What was accepted saves and reads back the same.
		if err := d.SaveInstall(inst); err != nil {
			t.Fatal(err)
		}
		back, ok, err := d.LoadInstall()
		if err != nil || !ok || back.InstallID != inst.InstallID || back.HeartbeatIntervalSeconds != inst.HeartbeatIntervalSeconds || !back.ActivatedAt.Equal(inst.ActivatedAt) {
			t.Fatalf("round trip: %+v → %+v, %v", inst, back, err)
		}
	})
}
