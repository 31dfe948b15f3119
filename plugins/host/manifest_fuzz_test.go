package host

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseManifest: ParseManifest never panics, whatever it accepts
// validates, and what it accepts survives Save's encoding unchanged.
func FuzzParseManifest(f *testing.F) {
	sum := strings.Repeat("0123456789abcdef", 4)
	for _, s := range []string{
		`{"version":1,"plugins":[]}`,
		`{"version":1,"plugins":[{"name":"asterisk","kind":"integration","path":"/usr/bin/switchboard","sha256":"` + sum + `","args":["plugin","serve","asterisk"],"settings":{"ari.password":"s3cret","ari_url":"http://127.0.0.1:8088/ari"},"version":"1.2.3"}]}`,
		`{"version":1,"plugins":[{"name":"webhook","kind":"support_channel","path":"/var/lib/switchboard/plugins/switchboard-plugin-webhook","sha256":"` + sum + `"}]}`,
		`{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/x/../y","sha256":"` + strings.ToUpper(sum) + `"}]}`,
		`{"version":1,"plugins":null}`,
		`{"Version":1,"PLUGINS":[{"NAME":"a","name":"b","kind":"integration","path":"/x","sha256":"` + sum + `"}]}`,
		`{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/x","sha256":"` + sum + `","settings":{"k":"\ud800"}}]}`,
		`{"version":1e0,"plugins":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseManifest(data)
		if err != nil {
			if m != nil {
				t.Fatal("a manifest with an error")
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted a manifest that does not validate: %v", err)
		}
		seen := map[string]bool{}
		for _, e := range m.Plugins {
			if !nameRE.MatchString(e.Name) || seen[e.Name] {
				t.Fatalf("name %q accepted (dup %v)", e.Name, seen[e.Name])
			}
			seen[e.Name] = true
			if !filepath.IsAbs(e.Path) || filepath.Clean(e.Path) != e.Path {
				t.Fatalf("path %q accepted", e.Path)
			}
			if !sha256RE.MatchString(e.SHA256) {
				t.Fatalf("sha256 %q accepted", e.SHA256)
			}
		}
		// Save writes json.MarshalIndent of the manifest: it must read back
		// as the same manifest.
		out, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		back, err := ParseManifest(out)
		if err != nil {
			t.Fatalf("a saved manifest does not load: %v\n%s", err, out)
		}
		if back.Version != m.Version || len(back.Plugins) != len(m.Plugins) {
			t.Fatalf("round trip: %+v → %+v", m, back)
		}
		for i := range m.Plugins {
			if !back.Plugins[i].equal(m.Plugins[i]) {
				t.Fatalf("entry %d changed on a round trip: %+v → %+v", i, m.Plugins[i], back.Plugins[i])
			}
		}
	})
}

// TestManifestRefusesUnusableEntries lists manifests ParseManifest must
// refuse: entries no plugin can start from, and keys encoding/json would
// silently fold together.
func TestManifestRefusesUnusableEntries(t *testing.T) {
	sum := strings.Repeat("0123456789abcdef", 4)
	for name, body := range map[string]string{
		"NUL in path":             `{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/usr/bin/x\u0000y","sha256":"` + sum + `"}]}`,
		"newline in path":         `{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/usr/bin/x\ny","sha256":"` + sum + `"}]}`,
		"built-in without a name": `{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/usr/bin/switchboard","sha256":"` + sum + `","args":["plugin","serve",""]}]}`,
		"newline in an arg":       `{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/usr/bin/x","sha256":"` + sum + `","args":["a\nb"]}]}`,
		"upper-case NAME":         `{"version":1,"plugins":[{"name":"a","NAME":"b","kind":"integration","path":"/usr/bin/x","sha256":"` + sum + `"}]}`,
		"upper-case Version":      `{"Version":1,"plugins":[]}`,
		"name given twice":        `{"version":1,"plugins":[{"name":"a","name":"b","kind":"integration","path":"/usr/bin/x","sha256":"` + sum + `"}]}`,
		"setting given twice":     `{"version":1,"plugins":[{"name":"a","kind":"integration","path":"/usr/bin/x","sha256":"` + sum + `","settings":{"k":"1","k":"2"}}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			m, err := ParseManifest([]byte(body))
			if err == nil {
				t.Fatalf("accepted: %+v", m.Plugins)
			}
			t.Log(err)
		})
	}
}
