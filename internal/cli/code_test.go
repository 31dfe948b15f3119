package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/partnercode"
)

func TestCodeNew(t *testing.T) {
	code, out, stderr := run(t, "code", "new", "--count", "50")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 50 {
		t.Fatalf("got %d lines, want 50:\n%s", len(lines), out)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		c, err := partnercode.Parse(l)
		if err != nil || c.String() != l {
			t.Fatalf("line %q is not a canonical code: %v", l, err)
		}
		if seen[l] {
			t.Fatalf("code %s printed twice", l)
		}
		seen[l] = true
	}

	code, out, _ = run(t, "code", "new")
	if code != ExitOK || strings.Count(out, "\n") != 1 {
		t.Fatalf("default count: exit %d, output %q; want one code", code, out)
	}
}

func TestCodeNewJSON(t *testing.T) {
	code, out, stderr := run(t, "code", "new", "-n", "3", "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var codes []string
	if err := json.Unmarshal([]byte(out), &codes); err != nil {
		t.Fatalf("not a JSON array of strings: %v\n%s", err, out)
	}
	if len(codes) != 3 {
		t.Fatalf("got %d codes, want 3", len(codes))
	}
	for _, c := range codes {
		if _, err := partnercode.Parse(c); err != nil {
			t.Fatalf("%q: %v", c, err)
		}
	}
}

func TestCodeNewCountLimits(t *testing.T) {
	for _, n := range []string{"0", "-1", "10001", "many"} {
		code, out, stderr := run(t, "code", "new", "--count", n)
		if code != ExitUsage || out != "" || !strings.HasPrefix(stderr, "error: ") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("--count %s: exit %d, stdout %q, stderr %q; want exit 2 and one error line", n, code, out, stderr)
		}
	}
	code, out, _ := run(t, "code", "new", "--count", "10000")
	if code != ExitOK || strings.Count(out, "\n") != 10000 {
		t.Fatalf("--count 10000: exit %d, %d lines", code, strings.Count(out, "\n"))
	}
}

func TestCodeCheck(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		exit    int
		stdout  string // exact, for valid input
		errPart string // substring of stderr, for invalid input
	}{
		{"canonical", []string{"K7QM-4XJD-R"}, ExitOK, "K7QM-4XJD-R\n", ""},
		{"typed", []string{"k7qm 4xjd r"}, ExitOK, "K7QM-4XJD-R\n", ""},
		{"several words", []string{"k7qm", "4xjd", "r"}, ExitOK, "K7QM-4XJD-R\n", ""},
		{"look-alikes", []string{"IOAB-oCDl-8"}, ExitOK, "10AB-0CD1-8\n", ""},
		{"wrong length", []string{"K7QM-4XJD"}, ExitFailed, "", "wrong length: 8 characters after removing spaces and dashes, a partner code has 9"},
		{"bad character", []string{"K7QMU4XJDR"}, ExitFailed, "", "bad character 'U' at position 5"},
		{"check", []string{"K7QM-4XJD-T"}, ExitFailed, "", "one character is mistyped or two are swapped"},
		{"swap", []string{"K7QM-4XDJ-R"}, ExitFailed, "", "check character wrong"},
		{"empty", []string{""}, ExitFailed, "", "wrong length"},
		{"link as input", []string{"https://switchboard.example/?ref=K7QM4XJDR"}, ExitFailed, "", "use --link"},
		{"file as input", []string{"switchboard-install-K7QM4XJDR.sh"}, ExitFailed, "", "use --file"},
		{"link", []string{"--link", "https://switchboard.example/download?ref=k7qm-4xjd-r"}, ExitOK, "K7QM-4XJD-R\n", ""},
		{"link path", []string{"--link=https://switchboard.example/r/K7QM4XJDR"}, ExitOK, "K7QM-4XJD-R\n", ""},
		{"link without code", []string{"--link", "https://switchboard.example/download"}, ExitFailed, "", "no partner code in the link"},
		{"link with bad code", []string{"--link", "https://x/?ref=K7QM4XJDT"}, ExitFailed, "", "check character wrong (code from the link's ref parameter)"},
		{"empty link", []string{"--link", ""}, ExitFailed, "", "no link given"},
		{"file", []string{"--file", "/home/ana/Downloads/switchboard-install-K7QM4XJDR (1).sh"}, ExitOK, "K7QM-4XJD-R\n", ""},
		{"file without code", []string{"--file", "switchboard-install.sh"}, ExitFailed, "", "no partner code in the file name"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, stderr := run(t, append([]string{"code", "check"}, c.args...)...)
			if code != c.exit {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, c.exit, out, stderr)
			}
			if c.exit == ExitOK {
				if out != c.stdout || stderr != "" {
					t.Fatalf("stdout %q stderr %q, want stdout %q", out, stderr, c.stdout)
				}
				return
			}
			if out != "" || !strings.HasPrefix(stderr, "error: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, c.errPart) {
				t.Fatalf("stdout %q stderr %q; want one error line containing %q", out, stderr, c.errPart)
			}
		})
	}
}

func TestCodeCheckUsage(t *testing.T) {
	for _, args := range [][]string{
		{"code", "check"},
		{"code", "check", "K7QM-4XJD-R", "--link", "https://x/?ref=K7QM4XJDR"},
		{"code", "check", "--link", "https://x/?ref=K7QM4XJDR", "--file", "switchboard-install-K7QM4XJDR.sh"},
		{"code", "check", "K7QM-4XJD-R", "--file", "switchboard-install-K7QM4XJDR.sh"},
		{"code", "check", "--bogus"},
		{"code", "bogus"},
	} {
		code, out, stderr := run(t, args...)
		if code != ExitUsage || out != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 with one error line", args, code, out, stderr)
		}
	}
}

func TestCodeCheckJSON(t *testing.T) {
	type answer struct {
		Valid    *bool   `json:"valid"`
		Code     *string `json:"code"`
		Error    *string `json:"error"`
		Kind     string  `json:"kind"`
		Position int     `json:"position"`
	}
	decode := func(t *testing.T, out string) answer {
		t.Helper()
		var a answer
		if err := json.Unmarshal([]byte(out), &a); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		if a.Valid == nil || a.Code == nil || a.Error == nil {
			t.Fatalf("valid, code and error must always be present: %s", out)
		}
		return a
	}

	code, out, stderr := run(t, "code", "check", "k7qm4xjdr", "--output", "json")
	a := decode(t, out)
	if code != ExitOK || !*a.Valid || *a.Code != "K7QM-4XJD-R" || *a.Error != "" || stderr != "" {
		t.Fatalf("valid code: exit %d, %s, stderr %q", code, out, stderr)
	}

	code, out, _ = run(t, "code", "check", "K7QMU4XJDR", "-o", "json")
	a = decode(t, out)
	if code != ExitFailed || *a.Valid || *a.Code != "" || a.Kind != "bad_character" || a.Position != 5 ||
		!strings.Contains(*a.Error, "bad character 'U' at position 5") {
		t.Fatalf("bad character: exit %d, %s", code, out)
	}

	code, out, _ = run(t, "code", "check", "--link", "https://x/download", "-o", "json")
	a = decode(t, out)
	if code != ExitFailed || *a.Valid || a.Kind != "not_found" {
		t.Fatalf("link without code: exit %d, %s", code, out)
	}

	code, out, _ = run(t, "code", "check", "--file", "switchboard-install-K7QM4XJDR.sh", "-o", "json")
	a = decode(t, out)
	if code != ExitOK || !*a.Valid || *a.Code != "K7QM-4XJD-R" {
		t.Fatalf("file: exit %d, %s", code, out)
	}
}

func TestCodeHelp(t *testing.T) {
	for _, args := range [][]string{{"code", "--help"}, {"code", "new", "--help"}, {"code", "check", "--help"}, {"code"}} {
		code, out, _ := run(t, args...)
		if code != ExitOK || !strings.Contains(out, "Examples:") {
			t.Errorf("%q: exit %d, help without examples:\n%s", args, code, out)
		}
	}
}
