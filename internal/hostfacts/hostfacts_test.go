package hostfacts

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestOSReleaseAndFacts(t *testing.T) {
	cases := map[string]string{
		"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\n":      "Debian GNU/Linux 12 (bookworm)",
		"NAME='Rocky Linux'\nVERSION=\"9.3 (Blue Onyx)\"\n":     "Rocky Linux 9.3 (Blue Onyx)",
		"PRETTY_NAME=\"say \\\"hi\\\" \\\\ \\$HOME\"\n":         `say "hi" \ $HOME`,
		"# comment\nPRETTY_NAME=Bare\r\n":                       "Bare",
		"PRETTY_NAME=\"\"\nNAME=X\n":                            "X",
		"PRETTY_NAME=\"" + strings.Repeat("\u00e9", 300) + "\"": strings.Repeat("\u00e9", 128),
		"PRETTY_NAME=\"a\x01b\xffc\"":                           "a b\uFFFDc",
	}
	for in, want := range cases {
		if got := Clean(ParseOSRelease([]byte(in))); got != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
}

// acceptable is the registry's rule for one fact (checkString in
// registry/decode.go).
func acceptable(s string) bool {
	if len(s) > 256 || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

func FuzzParseOSRelease(f *testing.F) {
	for _, s := range []string{
		"PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n",
		"NAME=Fedora\nVERSION=\"39 (Server Edition)\"\n",
		"PRETTY_NAME=\"unterminated\n",
		"PRETTY_NAME='\\'\n",
		"PRETTY_NAME=\"\\\"\n",
		"=\n==\nPRETTY_NAME",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := Clean(ParseOSRelease(data))
		if !acceptable(got) {
			t.Fatalf("fact %q would be refused by the registry", got)
		}
	})
}

// write creates root/rel with content.
func write(t *testing.T, root, rel, content string) {
	t.Helper()
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestReadFromRoot(t *testing.T) {
	root := t.TempDir()
	if got := OSRelease(root); got != "" {
		t.Errorf("no os-release: %q", got)
	}
	if Hostname(root) != "" || MachineID(root) != "" {
		t.Error("facts from an empty root")
	}

	// usr/lib/os-release is the fallback os-release(5) names.
	write(t, root, "usr/lib/os-release", "NAME=\"Fallback OS\"\nVERSION=1\n")
	if got := OSRelease(root); got != "Fallback OS 1" {
		t.Errorf("fallback: %q", got)
	}
	write(t, root, "etc/os-release", "PRETTY_NAME=\"Main\x1b[31m OS\"\n")
	if got := OSRelease(root); got != "Main [31m OS" {
		t.Errorf("etc/os-release: %q", got)
	}

	write(t, root, "etc/hostname", "\n  pbx1\t\x07 \nsecond-line\n")
	if got := Hostname(root); got != "pbx1" {
		t.Errorf("hostname: %q", got)
	}
	write(t, root, "etc/machine-id", strings.Repeat("ab\xff", 100)+"\n")
	if got := MachineID(root); !acceptable(got) || got == "" {
		t.Errorf("machine id: %q", got)
	}
	if got := LiveHostname(); !acceptable(got) {
		t.Errorf("live hostname: %q", got)
	}
}
