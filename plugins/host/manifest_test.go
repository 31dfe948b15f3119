package host

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/plugins"
)

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ManifestFileName)
	if _, err := LoadManifest(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing manifest: %v", err)
	}
	m := NewManifest()
	b, err := BuiltinEntry("asterisk", plugins.KindIntegration, testPluginPath, map[string]string{"ari.password": "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	if !b.Builtin() || b.SHA256 != testPluginSum || strings.Join(b.Args, " ") != "plugin serve asterisk" {
		t.Fatalf("builtin entry %+v", b)
	}
	if err := m.Put(b); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("manifest mode %v (settings hold credentials), %v", info.Mode(), err)
	}
	got, err := LoadManifest(path)
	if err != nil {
		t.Fatal(err)
	}
	e, ok := got.Lookup("asterisk")
	if !ok || !e.equal(b) {
		t.Fatalf("round trip: %+v", got)
	}
	if !got.Remove("asterisk") || got.Remove("asterisk") {
		t.Fatal("remove")
	}
}

func TestManifestRejectsBadInput(t *testing.T) {
	sum := strings.Repeat("a", 64)
	cases := map[string]struct{ json, want string }{
		"syntax error line":  {"{\n\"version\": 1,\n\"plugins\": [\n}", "line 4"},
		"unknown field":      {`{"version":1,"plugins":[],"plugin":[]}`, `unknown field "plugin"`},
		"wrong version":      {`{"version":2,"plugins":[]}`, "version 2 is not supported"},
		"bad kind":           {`{"version":1,"plugins":[{"name":"a","kind":"ui","path":"/x","sha256":"` + sum + `"}]}`, `kind "ui"`},
		"relative path":      {`{"version":1,"plugins":[{"name":"a","kind":"integration","path":"x","sha256":"` + sum + `"}]}`, "absolute"},
		"short sha":          {`{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/x","sha256":"abc"}]}`, "64 lower-case hex"},
		"duplicate":          {`{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/x","sha256":"` + sum + `"},{"name":"a","kind":"integration","path":"/y","sha256":"` + sum + `"}]}`, "listed twice"},
		"bad name":           {`{"version":1,"plugins":[{"name":"../a","kind":"integration","path":"/x","sha256":"` + sum + `"}]}`, "plugin name"},
		"trailing data":      {`{"version":1,"plugins":[]} {}`, "after the closing brace"},
		"empty":              {``, "empty"},
		"wrong type":         {`{"version":"1","plugins":[]}`, `field "version"`},
		"bad setting name":   {`{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/x","sha256":"` + sum + `","settings":{"a b":"c"}}]}`, "setting name"},
		"NUL in an argument": {`{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/x","sha256":"` + sum + `","args":["a\u0000b"]}]}`, "without NUL"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseManifest([]byte(c.json))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	okPath := write("switchboard-plugin-good", "good binary", 0o755)
	badPath := write("switchboard-plugin-tampered", "tampered binary", 0o755)
	write("switchboard-plugin-stray", "stray", 0o755)
	write("README", "not executable", 0o644)
	okSum, _ := FileSHA256(okPath)

	m := NewManifest()
	mustPut := func(e Entry) {
		if err := m.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	mustPut(Entry{Name: "good", Kind: plugins.KindIntegration, Path: okPath, SHA256: okSum, Version: "1.0.0"})
	mustPut(Entry{Name: "tampered", Kind: plugins.KindIntegration, Path: badPath, SHA256: okSum})
	mustPut(Entry{Name: "gone", Kind: plugins.KindSupportChannel, Path: filepath.Join(dir, "switchboard-plugin-gone"), SHA256: okSum})
	b, err := BuiltinEntry("odoo", plugins.KindIntegration, testPluginPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(b)

	got, err := Discover(dir, m)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]ChecksumState{
		"good": ChecksumOK, "tampered": ChecksumMismatch, "gone": ChecksumMissing,
		"stray": ChecksumNotInManifest, "odoo": ChecksumOK,
	}
	if len(got) != len(want) {
		t.Fatalf("discovered %d plugins, want %d: %+v", len(got), len(want), got)
	}
	for _, d := range got {
		if d.State != want[d.Name] {
			t.Errorf("%s: state %q, want %q", d.Name, d.State, want[d.Name])
		}
		if d.State != ChecksumOK && d.Detail == "" {
			t.Errorf("%s: no advice for state %q", d.Name, d.State)
		}
		if d.Name == "odoo" && !d.Builtin {
			t.Errorf("odoo should be built in")
		}
	}

	if got, err := Discover(filepath.Join(dir, "nope"), nil); err != nil || len(got) != 0 {
		t.Fatalf("missing dir: %v %v", got, err)
	}
}
