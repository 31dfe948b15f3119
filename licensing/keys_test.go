package licensing

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerateKey(t *testing.T) {
	a, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if a.ID == b.ID || !validKeyID(a.ID) {
		t.Fatalf("ids %q %q", a.ID, b.ID)
	}
	if p := a.Public(); p.ID != a.ID || p.ID != KeyID(p.Key) {
		t.Fatalf("public id %q, signing id %q", p.ID, a.ID)
	}
}

func TestWriteAndLoadKeyPair(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	k, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteKeyPair(dir, k); err != nil {
		t.Fatal(err)
	}
	privPath, pubPath := filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for path, want := range map[string]os.FileMode{privPath: 0o600, pubPath: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("left temporary files behind: %v", entries)
	}
	got, err := LoadSigningKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || !bytes.Equal(got.Private, k.Private) {
		t.Fatal("loaded signing key differs")
	}
	pub, err := LoadPublicKey(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	if pub.ID != k.ID || !bytes.Equal(pub.Key, k.Public().Key) {
		t.Fatal("loaded public key differs")
	}
	text, _ := os.ReadFile(pubPath)
	if !strings.Contains(string(text), "Key-ID: "+k.ID) {
		t.Errorf("public key file lacks its id:\n%s", text)
	}

	// A second keygen into the same directory must not destroy the key.
	k2, _ := GenerateKey()
	err = WriteKeyPair(dir, k2)
	if err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("overwrote vendor.key: %v", err)
	}
	if again, _ := LoadSigningKey(privPath); again.ID != k.ID {
		t.Fatal("vendor.key changed")
	}
}

func TestLoadSigningKeyRefusesOpenPermissions(t *testing.T) {
	dir := t.TempDir()
	k := testKey(t, 1)
	if err := WriteKeyPair(dir, k); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, PrivateKeyFile)
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadSigningKey(path)
		if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %04o: %v", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigningKey(path); err != nil {
		t.Fatalf("mode 0400: %v", err)
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	k := testKey(t, 1)
	priv, _ := MarshalPrivateKey(k)
	pub, _ := MarshalPublicKey(k.Public())
	pub2, _ := MarshalPublicKey(testKey(t, 2).Public())
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("private", func(t *testing.T) {
		for name, c := range map[string]struct{ content, want string }{
			"public given":  {string(pub), "not a Switchboard vendor private key"},
			"empty":         {"", "not a Switchboard vendor private key"},
			"edited id":     {strings.Replace(string(priv), k.ID, "0000000000000000", 1), "does not match the key"},
			"two blocks":    {string(priv) + string(priv), "more than the private key block"},
			"short seed":    {"-----BEGIN SWITCHBOARD VENDOR PRIVATE KEY-----\nKey-ID: x\n\nAAAA\n-----END SWITCHBOARD VENDOR PRIVATE KEY-----\n", "damaged"},
			"missing file":  {"", "no such file"},
			"garbage bytes": {"\x00\x01\x02", "not a Switchboard vendor private key"},
		} {
			p := write(name, c.content)
			if name == "missing file" {
				p += ".missing"
			}
			if _, err := LoadSigningKey(p); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %q", name, err, c.want)
			}
		}
	})
	t.Run("public", func(t *testing.T) {
		for name, c := range map[string]struct{ content, want string }{
			"private given": {string(priv), "PRIVATE key"},
			"empty":         {"", "holds no"},
			"edited id":     {strings.Replace(string(pub), k.ID, "0000000000000000", 1), "edited or damaged"},
			"edited key":    {strings.Replace(string(pub), "iojj", "iokj", 1), "edited or damaged"},
			"other type":    {"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "CERTIFICATE"},
			"two keys":      {string(pub) + string(pub2), "holds 2 public keys"},
		} {
			if _, err := LoadPublicKey(write(name, c.content)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want %q", name, err, c.want)
			}
		}
	})
	t.Run("bundle", func(t *testing.T) {
		keys, err := LoadPublicKeys(write("bundle.pub", "current:\n"+string(pub2)+"\nprevious:\n"+string(pub)))
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) != 2 || keys[0].ID != testKey(t, 2).ID || keys[1].ID != k.ID {
			t.Fatalf("bundle: %+v", keys)
		}
	})
}
