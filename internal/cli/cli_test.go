package cli

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// run executes the CLI in-process and returns exit code, stdout and stderr.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Execute(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExitCodes(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"version"}, ExitOK},
		{"unknown command", []string{"versoin"}, ExitUsage},
		{"unknown flag", []string{"version", "--bogus"}, ExitUsage},
		{"extra argument", []string{"version", "extra"}, ExitUsage},
		{"bad output", []string{"version", "--output", "xml"}, ExitUsage},
		{"bad log level", []string{"version", "--log-level", "loud"}, ExitUsage},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, c.args...)
			if code != c.want {
				t.Fatalf("exit code %d, want %d (stderr %q)", code, c.want, stderr)
			}
			if c.want != ExitOK {
				if n := strings.Count(stderr, "\n"); n != 1 || !strings.HasPrefix(stderr, "error: ") {
					t.Fatalf("stderr should be one 'error:' line, got %q", stderr)
				}
			}
		})
	}
}

func TestVersionJSON(t *testing.T) {
	code, out, _ := run(t, "version", "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d", code)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	for _, k := range []string{"version", "commit", "go_version"} {
		if v[k] == "" {
			t.Errorf("missing %q in %s", k, out)
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, stderr := run(t, "completion", shell)
		if code != ExitOK || !strings.Contains(out, "switchboard") {
			t.Fatalf("completion %s: exit %d, stderr %q", shell, code, stderr)
		}
	}
}

func TestRootHelpDocumentsExitCodes(t *testing.T) {
	_, out, _ := run(t, "--help")
	for _, want := range []string{"Exit codes:", "0  ok", "2  usage error", "3  a service"} {
		if !strings.Contains(out, want) {
			t.Errorf("root help lacks %q", want)
		}
	}
}

func TestDocs(t *testing.T) {
	dir := t.TempDir()
	if code, _, stderr := run(t, "docs", "--dir", dir); code != ExitOK {
		t.Fatalf("docs: exit %d: %s", code, stderr)
	}
	code, _, _ := run(t, "docs", "--dir", dir, "--format", "man")
	if code != ExitOK {
		t.Fatalf("man docs: exit %d", code)
	}
}
