package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

func TestPluginServeUnknownName(t *testing.T) {
	code, _, stderr := run(t, "plugin", "serve", "no-such-plugin")
	if code != ExitUsage {
		t.Fatalf("exit %d, want %d (stderr %q)", code, ExitUsage, stderr)
	}
	if !strings.Contains(stderr, `unknown built-in plugin "no-such-plugin"`) {
		t.Fatalf("stderr %q", stderr)
	}
}

func TestPluginList(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(t.TempDir(), host.ManifestFileName)
	good := filepath.Join(dir, "switchboard-plugin-good")
	if err := os.WriteFile(good, []byte("good"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "switchboard-plugin-stray"), []byte("stray"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum, _ := host.FileSHA256(good)
	m := host.NewManifest()
	exe, _ := os.Executable()
	b, err := host.BuiltinEntry("asterisk", plugins.KindIntegration, exe, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []host.Entry{
		b,
		{Name: "good", Kind: plugins.KindIntegration, Path: good, SHA256: sum, Version: "2.1.0"},
		{Name: "tampered", Kind: plugins.KindSupportChannel, Path: good + "-x", SHA256: sum},
	} {
		if err := m.Put(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Save(manifest); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := run(t, "plugin", "list", "--dir", dir, "--manifest", manifest)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"asterisk", "(built in)", "good", "2.1.0", "not in manifest", "stray", "missing", healthUnknown} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = run(t, "plugin", "list", "--dir", dir, "--manifest", manifest, "--output", "json")
	if code != ExitOK {
		t.Fatalf("json exit %d", code)
	}
	var got pluginListOutput
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	states := map[string]host.ChecksumState{}
	for _, p := range got.Plugins {
		states[p.Name] = p.State
		if p.Health != healthUnknown {
			t.Errorf("%s: health %q", p.Name, p.Health)
		}
	}
	want := map[string]host.ChecksumState{"asterisk": host.ChecksumOK, "good": host.ChecksumOK, "tampered": host.ChecksumMissing, "stray": host.ChecksumNotInManifest}
	for n, s := range want {
		if states[n] != s {
			t.Errorf("%s: %q, want %q (all: %v)", n, states[n], s, states)
		}
	}

	if err := os.WriteFile(manifest, []byte(`{"version":1,"plugins":[{"name":"x"}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = run(t, "plugin", "list", "--dir", dir, "--manifest", manifest)
	if code != ExitFailed || !strings.Contains(stderr, "re-run the installer") {
		t.Fatalf("broken manifest: exit %d, %q", code, stderr)
	}
}
