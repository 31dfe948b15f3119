package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	ariemu "github.com/switchboard-dev/switchboard/internal/emulator/ari"
	odooemu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
	"github.com/switchboard-dev/switchboard/plugins"
)

var (
	describeBinOnce sync.Once
	describeBin     string
	describeBinErr  error
)

// useBuiltBinary points pluginExecutable at a freshly built switchboard
// binary: the test binary itself cannot serve plugins.
func useBuiltBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the switchboard binary; skipped with -short")
	}
	describeBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-describe-test-")
		if err != nil {
			describeBinErr = err
			return
		}
		describeBin = filepath.Join(dir, "switchboard")
		out, err := exec.Command("go", "build", "-o", describeBin, "github.com/switchboard-dev/switchboard/cmd/switchboard").CombinedOutput()
		if err != nil {
			describeBinErr = err
			describeBin = string(out)
		}
	})
	if describeBinErr != nil {
		t.Fatalf("build switchboard: %v\n%s", describeBinErr, describeBin)
	}
	t.Cleanup(func() { pluginExecutable = os.Executable })
	pluginExecutable = func() (string, error) { return describeBin, nil }
}

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Execute(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

func describeEmulator(t *testing.T) *ariemu.Server {
	t.Helper()
	s := ariemu.New(ariemu.Options{Version: "20.15.0"})
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for _, res := range []string{"100", "101"} {
		if err := s.AddEndpoint("PJSIP", res, "online"); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestPluginDescribeAsterisk(t *testing.T) {
	useBuiltBinary(t)
	s := describeEmulator(t)
	code, stdout, stderr := runCLI("plugin", "describe", "asterisk", "--ari-url", s.URL(),
		"--ari-user", ariemu.DefaultUser, "--ari-password", ariemu.DefaultPassword, "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var out struct {
		Healthy bool            `json:"healthy"`
		State   string          `json:"state"`
		Health  *plugins.Health `json:"health"`
		Facts   *plugins.Facts  `json:"facts"`
	}
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, stdout)
	}
	if !out.Healthy || out.State != "healthy" || out.Health == nil || out.Health.State != "connected" ||
		out.Facts == nil || out.Facts.Version != "20.15.0" || out.Facts.Seats[plugins.SeatPBXEndpoints] != 2 {
		t.Fatalf("output %s", stdout)
	}
	// The describe run used its own application name and left no trace.
	if apps := s.Applications(); len(apps) != 0 {
		t.Fatalf("application still registered after describe: %v", apps)
	}

	code, stdout, _ = runCLI("plugin", "describe", "asterisk", "--ari-url", s.URL(),
		"--ari-user", ariemu.DefaultUser, "--ari-password", ariemu.DefaultPassword)
	if code != ExitOK || !strings.Contains(stdout, "asterisk: healthy") || !strings.Contains(stdout, "pbx_endpoints  2") {
		t.Fatalf("text output (exit %d):\n%s", code, stdout)
	}
}

func TestPluginDescribeAsteriskWrongPassword(t *testing.T) {
	useBuiltBinary(t)
	s := describeEmulator(t)
	code, stdout, stderr := runCLI("plugin", "describe", "asterisk", "--ari-url", s.URL(),
		"--ari-user", "switchboard", "--ari-password", "wrong", "--output", "json")
	if code != ExitFailed || stderr != "" {
		t.Fatalf("exit %d (want 1, nothing on stderr with --output json)\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var out describeOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Healthy || !strings.Contains(out.Reason, "fix ari.conf") || out.Health == nil || out.Health.State != "unauthorised" {
		t.Fatalf("output %+v", out)
	}

	code, stdout, stderr = runCLI("plugin", "describe", "asterisk", "--ari-url", s.URL(), "--ari-user", "switchboard", "--ari-password", "wrong")
	if code != ExitFailed || !strings.Contains(stdout, "NOT healthy") || !strings.Contains(stderr, "fix ari.conf") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}

func TestPluginDescribeUsage(t *testing.T) {
	for name, args := range map[string][]string{
		"no name":            {"plugin", "describe"},
		"unknown plugin":     {"plugin", "describe", "freeswitch"},
		"odoo flag asterisk": {"plugin", "describe", "asterisk", "--odoo-db", "prod"},
		"ari flag odoo":      {"plugin", "describe", "odoo", "--ari-user", "x"},
		"bad timeout":        {"plugin", "describe", "asterisk", "--timeout", "-1s"},
	} {
		t.Run(name, func(t *testing.T) {
			if code, _, stderr := runCLI(args...); code != ExitUsage || stderr == "" {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
		})
	}
	code, stdout, _ := runCLI("plugin", "describe", "--help")
	if code != ExitOK || !strings.Contains(stdout, "--ari-url") || !strings.Contains(stdout, "--odoo-key") || !strings.Contains(stdout, "Example") {
		t.Fatalf("help: %s", stdout)
	}
}

func TestPluginDescribeOdoo(t *testing.T) {
	useBuiltBinary(t)
	s, err := odooemu.New(odooemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	code, stdout, stderr := runCLI("plugin", "describe", "odoo", "--odoo-url", s.URL(), "--odoo-db", odooemu.DefaultDatabase,
		"--odoo-user", odooemu.DefaultLogin, "--odoo-key", odooemu.DefaultAPIKey, "--output", "json")
	if code != ExitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var out describeOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	if !out.Healthy || out.Facts == nil || out.Facts.Seats[plugins.SeatOdooUsers] < 1 {
		t.Fatalf("output %s", stdout)
	}

	code, stdout, stderr = runCLI("plugin", "describe", "odoo", "--odoo-url", s.URL(), "--odoo-db", odooemu.DefaultDatabase,
		"--odoo-user", odooemu.DefaultLogin, "--odoo-key", "wrong")
	if code != ExitFailed || !strings.Contains(stdout, "NOT healthy") || !strings.Contains(stderr, "not healthy") {
		t.Fatalf("wrong key: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
