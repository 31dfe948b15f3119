package cli

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestSupportCommandErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	cases := []struct {
		name string
		args []string
		want int
		msg  string
	}{
		{"no subject", []string{"support", "open", "--socket", sock}, ExitUsage, "--subject"},
		{"body twice", []string{"support", "open", "--socket", sock, "--subject", "s", "--body", "b", "--body-file", "f"}, ExitUsage, "not both"},
		{"missing body file", []string{"support", "open", "--socket", sock, "--subject", "s", "--body-file", filepath.Join(t.TempDir(), "nope")}, ExitFailed, "read the body"},
		{"agent not running", []string{"support", "open", "--socket", sock, "--subject", "s"}, ExitUnreachable, "not running"},
		{"origin unknown", []string{"support", "open", "--socket", sock, "--subject", "s", "--origin", "email"}, ExitUsage, `--origin "email": use cli, odoo or other`},
		{"origin of the agent", []string{"support", "open", "--socket", sock, "--subject", "s", "--origin", "agent"}, ExitUsage, "opened by the agent"},
		{"origin odoo accepted", []string{"support", "open", "--socket", sock, "--subject", "s", "--origin", "ODOO"}, ExitUnreachable, "not running"},
		{"list, agent not running", []string{"support", "list", "--socket", sock}, ExitUnreachable, "not running"},
		{"route without why", []string{"registry", "support", "route", "tx", "--to", "vendor", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUsage, "--why"},
		{"channel bad setting", []string{"registry", "partner", "channel", "set", "K7QM-4XJD-R", "--type", "webhook", "--setting", "novalue", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUsage, "KEY=VALUE"},
		{"registry unreachable", []string{"registry", "support", "list", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("x", 40)}, ExitUnreachable, "unreachable"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, c.args...)
			if code != c.want || !strings.Contains(stderr, c.msg) {
				t.Fatalf("exit %d (want %d), stderr %q (want %q)", code, c.want, stderr, c.msg)
			}
		})
	}
}
