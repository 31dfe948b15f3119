package cli

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchboard-dev/switchboard/internal/testenv/registrytest"
	"github.com/switchboard-dev/switchboard/registry"
)

// leaves lists every runnable command without subcommands.
func leaves() []*cobra.Command {
	var out []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.HasSubCommands() && c.Runnable() {
			out = append(out, c)
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(NewRootCommand(&App{}))
	return out
}

// argv is the arguments that name c (without "switchboard").
func argv(c *cobra.Command) []string {
	return strings.Fields(strings.TrimPrefix(c.CommandPath(), "switchboard"))
}

// oneErrorLine fails unless stderr is exactly one "error: …" line.
func oneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "error: ") || !strings.HasSuffix(stderr, "\n") {
		t.Fatalf("stderr should be one 'error: …' line, got %q", stderr)
	}
}

// isolate keeps the environment from pointing commands at real services.
func isolate(t *testing.T) {
	for _, k := range []string{envRegistryURL, envAdminToken, "SWITCHBOARD_PARTNER_CODE", "SWITCHBOARD_INSTALLER_NAME"} {
		t.Setenv(k, "")
	}
}

func TestEveryLeafRefusesAnUnknownFlag(t *testing.T) {
	isolate(t)
	n := 0
	for _, c := range leaves() {
		args := append(argv(c), "--no-such-flag-xyz=1")
		t.Run(strings.Join(argv(c), " "), func(t *testing.T) {
			code, stdout, stderr := run(t, args...)
			if code != ExitUsage {
				t.Fatalf("exit %d, want %d (stderr %q)", code, ExitUsage, stderr)
			}
			oneErrorLine(t, stderr)
			if !strings.Contains(stderr, "no-such-flag-xyz") || !strings.Contains(stderr, "--help") {
				t.Fatalf("the error should name the flag and point to --help: %q", stderr)
			}
			if stdout != "" {
				t.Fatalf("stdout on a usage error: %q", stdout)
			}
		})
		n++
	}
	if n < 40 {
		t.Fatalf("only %d leaf commands found", n)
	}
}

// TestEveryTypedFlagRefusesAWrongValue gives each number, duration and
// boolean flag of every leaf a value of the wrong type.
func TestEveryTypedFlagRefusesAWrongValue(t *testing.T) {
	isolate(t)
	bad := map[string]string{
		"int": "many", "int64": "1e3x", "uint": "-1", "uint64": "-1", "float64": "fast",
		"duration": "soon", "bool": "maybe", "count": "lots",
	}
	tried := 0
	for _, c := range leaves() {
		c.Flags().VisitAll(func(f *pflag.Flag) {
			v, ok := bad[f.Value.Type()]
			if !ok {
				return
			}
			args := append(argv(c), "--"+f.Name+"="+v)
			t.Run(strings.Join(args, " "), func(t *testing.T) {
				code, _, stderr := run(t, args...)
				if code != ExitUsage {
					t.Fatalf("exit %d, want %d (stderr %q)", code, ExitUsage, stderr)
				}
				oneErrorLine(t, stderr)
				if !strings.Contains(stderr, f.Name) {
					t.Fatalf("the error should name --%s: %q", f.Name, stderr)
				}
			})
			tried++
		})
	}
	if tried < 20 {
		t.Fatalf("only %d typed flags found", tried)
	}
}

// TestBadArgumentValues: obviously bad values give exit 1 (invalid) or 2
// (usage) with one line naming the problem.
func TestBadArgumentValues(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("\x00\xffnot a licence or config\n[[[\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	dead := []string{"--registry", "http://127.0.0.1:9", "--token", "t"}
	srv := registrytest.Start(t, nil)
	reg := []string{"--registry", srv.URL, "--token", srv.AdminToken}
	cases := []struct {
		args []string
		want string // a word the error must hold
	}{
		{[]string{"version", "extra"}, "extra"},
		{[]string{"code", "check", "!!!!"}, ""},
		{[]string{"code", "check"}, ""},
		{[]string{"code", "check", "--link", "ftp://x/y"}, ""},
		{[]string{"code", "new", "--count", "0"}, "count"},
		{[]string{"code", "new", "--count", "-3"}, "count"},
		{[]string{"docs", "--format", "xml", "--dir", dir}, "format"},
		{[]string{"licence", "show", missing}, "missing"},
		{[]string{"licence", "show", garbage}, ""},
		{[]string{"licence", "verify", "--pub", missing, garbage}, ""},
		{[]string{"licence", "verify", "--pub", garbage, garbage}, ""},
		{[]string{"licence", "issue", "--key", missing, "--install", "i1"}, ""},
		{[]string{"licence", "issue", "--key", garbage, "--install", "i1", "--seats", "-5"}, ""},
		{[]string{"licence", "keygen"}, "dir"},
		{[]string{"agent", "config", "check", missing}, "missing"},
		{[]string{"agent", "config", "check", garbage}, ""},
		{[]string{"agent", "run", "--config", garbage}, ""},
		{[]string{"dev", "emulate", "freeswitch"}, ""},
		{[]string{"plugin", "describe", "nosuch"}, ""},
		{[]string{"plugin", "serve", "nosuch"}, ""},
		{[]string{"plugin", "list", "--manifest", garbage, "--socket", filepath.Join(dir, "no.sock")}, ""},
		{[]string{"status", "--socket", "a", "--config", "b"}, ""},
		{[]string{"status", "--config", garbage}, ""},
		{[]string{"support", "open", "--socket", filepath.Join(dir, "no.sock")}, "subject"},
		{[]string{"support", "open", "--subject", "x", "--origin", "fax", "--socket", filepath.Join(dir, "no.sock")}, "origin"},
		{[]string{"support", "open", "--subject", "x", "--body-file", missing, "--socket", filepath.Join(dir, "no.sock")}, ""},
		{[]string{"partner", "set", "NOT-A-CODE!", "--socket", filepath.Join(dir, "no.sock")}, ""},
		{[]string{"install", "--root", missing, "--registry", "http://127.0.0.1:9", "--yes", "--dry-run"}, ""},
		{[]string{"install", "--root", dir, "--registry", "ftp://x", "--yes", "--dry-run"}, ""},
		{[]string{"install", "--root", dir, "--registry", "http://127.0.0.1:9", "--partner-code", "K7QM-4XJD-Q", "--yes", "--dry-run"}, ""},
		{[]string{"uninstall", "--root", missing, "--yes"}, ""},
		{[]string{"registry", "partner", "list"}, "registry"},
		{append([]string{"registry", "installs", "list", "--status", "zombie"}, dead...), "status"},
		{append([]string{"registry", "installs", "move", "i1"}, dead...), ""},
		{append([]string{"registry", "payments", "import", missing}, dead...), ""},
		{append([]string{"registry", "partner", "channel", "set", "K7QM-4XJD-R", "--type", "webhook", "--setting", "novalue"}, dead...), ""},
		// Values only the registry checks: they reach a real one and come
		// back refused (exit 1).
		{append([]string{"registry", "partner", "list", "--tier", "gold"}, reg...), "tier"},
		{append([]string{"registry", "partner", "show", "NOT-A-CODE!"}, reg...), ""},
		{append([]string{"registry", "partner", "add", "--name", "", "--email", "x", "--tier", "partner"}, reg...), ""},
		{append([]string{"registry", "partner", "approve", "K7QM-4XJD-R", "--reason", "a\x01b"}, reg...), ""},
		{append([]string{"registry", "installs", "show", "../../etc/passwd"}, reg...), ""},
		{append([]string{"registry", "installs", "move", "iabcdefghijklmnopqrstuvwxyz234567", "K7QM-4XJD-R", "--by", "me", "--why", "x"}, reg...), ""},
		{append([]string{"registry", "statement", "--partner", "K7QM-4XJD-R", "--month", "2026-13"}, reg...), "month"},
		{append([]string{"registry", "payouts", "run", "--month", "last"}, reg...), "month"},
		{append([]string{"registry", "payouts", "mark-paid", "no-such-batch", "--item", "x", "--status", "paid"}, reg...), ""},
		{append([]string{"registry", "support", "route", "tnope", "--to", "nobody", "--why", "x"}, reg...), ""},
		{[]string{"registry", "serve", "--data", garbage}, ""},
		{[]string{"bench", "noop-server", "--listen", "not-an-address"}, ""},
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := run(t, c.args...)
			if code != ExitFailed && code != ExitUsage {
				t.Fatalf("exit %d, want 1 or 2 (stderr %q)", code, stderr)
			}
			oneErrorLine(t, stderr)
			if c.want != "" && !strings.Contains(strings.ToLower(stderr), c.want) {
				t.Fatalf("the error should mention %q: %q", c.want, stderr)
			}
		})
	}
}

// TestKeysRotateRefusesAMissingDataDir: a mistyped --data must not make a
// new keyring somewhere nobody looks while the command reports success.
func TestKeysRotateRefusesAMissingDataDir(t *testing.T) {
	isolate(t)
	base := t.TempDir()
	missing := filepath.Join(base, "typo")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{missing, empty, file} {
		code, _, stderr := run(t, "registry", "keys", "rotate", "--data", dir)
		if code != ExitFailed {
			t.Fatalf("%s: exit %d, want 1 (stderr %q)", dir, code, stderr)
		}
		oneErrorLine(t, stderr)
		if !strings.Contains(stderr, dir) || !strings.Contains(stderr, "registry serve") {
			t.Errorf("%s: the error should name the path and what creates a registry: %q", dir, stderr)
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("%s was created", missing)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("%s got %d entries", empty, len(entries))
	}

	// A real data directory rotates.
	data := filepath.Join(base, "registry")
	first, err := registry.Prepare(data)
	if err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "registry", "keys", "rotate", "--data", data, "--output", "json")
	if code != ExitOK {
		t.Fatalf("rotate a real data dir: exit %d %q", code, stderr)
	}
	ks, err := registry.LoadKeys(data)
	if err != nil || ks.Current.ID == first.Keys.Current.ID || len(ks.Public) != 2 || !strings.Contains(stdout, ks.Current.ID) {
		t.Fatalf("after rotate: %+v %v %q", ks, err, stdout)
	}
}

// TestStaffDataFlagRefusesANonRegistryDir: the staff commands read
// DIR/admin.token; a wrong --data is named in the error and left as it is.
func TestStaffDataFlagRefusesANonRegistryDir(t *testing.T) {
	isolate(t)
	base := t.TempDir()
	missing := filepath.Join(base, "typo")
	empty := filepath.Join(base, "empty")
	if err := os.Mkdir(empty, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{missing, empty} {
		for _, args := range [][]string{
			{"registry", "partner", "list", "--data", dir},
			{"registry", "installs", "list", "--data", dir},
			{"registry", "partner", "list", "--data", dir, "--token", "t", "--registry", "http://" + closedAddr(t)},
		} {
			code, _, stderr := run(t, args...)
			if code != ExitFailed {
				t.Fatalf("%v: exit %d, want 1 (stderr %q)", args, code, stderr)
			}
			oneErrorLine(t, stderr)
			if !strings.Contains(stderr, dir) {
				t.Errorf("%v: the error should name %s: %q", args, dir, stderr)
			}
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("%s was created", missing)
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Errorf("%s got %d entries", empty, len(entries))
	}
}

// closedAddr is a loopback port nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestServiceAbsentExitsThree: every command that needs the registry or
// the agent exits 3 with one line when nothing answers.
func TestServiceAbsentExitsThree(t *testing.T) {
	isolate(t)
	reg := []string{"--registry", "http://" + closedAddr(t), "--token", "t"}
	dir, err := os.MkdirTemp("", "sbh") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "agent.sock")
	code := "K7QM-4XJD-R"
	csv := filepath.Join(dir, "payments.csv")
	if err := os.WriteFile(csv, []byte("id,customer,amount\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := [][]string{
		append([]string{"registry", "partner", "list"}, reg...),
		append([]string{"registry", "partner", "show", code}, reg...),
		append([]string{"registry", "partner", "add", "--name", "Acme", "--email", "ops@acme.example", "--tier", "partner"}, reg...),
		append([]string{"registry", "partner", "approve", code}, reg...),
		append([]string{"registry", "partner", "suspend", code}, reg...),
		append([]string{"registry", "partner", "update", code, "--billing-account", "b1"}, reg...),
		append([]string{"registry", "partner", "channel", "show", code}, reg...),
		append([]string{"registry", "partner", "channel", "remove", code}, reg...),
		append([]string{"registry", "partner", "channel", "set", code, "--type", "webhook", "--setting", "url=https://example.com/hook", "--skip-check"}, reg...),
		append([]string{"registry", "installs", "list"}, reg...),
		append([]string{"registry", "installs", "show", "iabcdefghijklmnopqrstuvwxyz234567"}, reg...),
		append([]string{"registry", "installs", "move", "iabcdefghijklmnopqrstuvwxyz234567", code, "--by", "me", "--why", "test"}, reg...),
		append([]string{"registry", "ledger", "check"}, reg...),
		append([]string{"registry", "payments", "import", csv}, reg...),
		append([]string{"registry", "payouts", "run", "--month", "2026-01"}, reg...),
		append([]string{"registry", "statement", "--partner", code, "--month", "2026-01"}, reg...),
		append([]string{"registry", "support", "list"}, reg...),
		append([]string{"registry", "support", "show", "tabc"}, reg...),
		append([]string{"registry", "support", "route", "tabc", "--to", "vendor", "--why", "test"}, reg...),
		append([]string{"registry", "support", "status"}, reg...),
		{"status", "--socket", sock},
		{"partner", "set", code, "--socket", sock},
		{"support", "list", "--socket", sock},
		{"support", "open", "--subject", "phones down", "--socket", sock},
	}
	for _, args := range cases {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			code, _, stderr := run(t, args...)
			if code != ExitUnreachable {
				t.Fatalf("exit %d, want %d (stderr %q)", code, ExitUnreachable, stderr)
			}
			oneErrorLine(t, stderr)
		})
	}
}
