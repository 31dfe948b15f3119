package installer

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testenv"
)

// switchboardBin is the real binary, built once in TestMain for the
// end-to-end tests; buildErr says why it is missing.
var (
	switchboardBin string
	buildErr       error
)

func TestMain(m *testing.M) {
	switchboardBin, buildErr = testenv.Switchboard()
	os.Exit(testenv.Main(m))
}

// run runs the switchboard binary and returns stdout, stderr and the exit code.
func run(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(switchboardBin, args...)
	cmd.Env = append(cleanEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run switchboard %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// cleanEnv is the environment without the variables the installer reads.
func cleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if strings.HasPrefix(e, "SWITCHBOARD_") {
			continue
		}
		env = append(env, e)
	}
	return env
}

// startRegistry runs `switchboard registry serve` on 127.0.0.1:0 in a
// temporary data directory and returns its URL and data directory.
func startRegistry(t *testing.T) (string, string) {
	t.Helper()
	data := t.TempDir()
	cmd := exec.Command(switchboardBin, "registry", "serve", "--data", data, "--listen", "127.0.0.1:0")
	cmd.Env = cleanEnv()
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if addr, err := os.ReadFile(filepath.Join(data, "registry.addr")); err == nil && len(bytes.TrimSpace(addr)) > 0 {
			return "http://" + strings.TrimSpace(string(addr)), data
		}
		select {
		case err := <-done:
			t.Fatalf("registry exited: %v\n%s", err, logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("registry did not write registry.addr:\n%s", logs.String())
	return "", ""
}

type e2eReport struct {
	Report
	Error string `json:"error"`
}

// TestEndToEndWithRealRegistry runs the real binary against the real
// registry: a partner from the registry's staff CLI, the install from the
// download link into a FreePBX root, a re-run that changes nothing, an
// unknown code that changes nothing, and the uninstall's deactivation.
func TestEndToEndWithRealRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test builds and runs the real binary; skipped with -short")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	url, data := startRegistry(t)
	out, errOut, code := run(t, nil, "registry", "partner", "add", "--data", data, "--name", "Acme PBX",
		"--email", "ops@acme.example", "--tier", "partner", "--approve", "--output", "json")
	if code != 0 {
		t.Fatalf("partner add: exit %d: %s", code, errOut)
	}
	var partner struct{ Code string }
	if err := json.Unmarshal([]byte(out), &partner); err != nil || partner.Code == "" {
		t.Fatalf("partner add output %q: %v", out, err)
	}

	root := copyRoot(t, "freepbx")
	link := url + "/download?ref=" + strings.ReplaceAll(strings.ToLower(partner.Code), "-", "")
	args := []string{"install", "--root", root, "--from-link", link, "--yes", "--configure-ari", "--output", "json"}
	out, errOut, code = run(t, nil, args...)
	if code != 0 {
		t.Fatalf("install: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	var rep e2eReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("install output: %v\n%s", err, out)
	}
	a := rep.Activation
	if a.State != "activated" || a.PartnerCode != partner.Code || a.PartnerName != "Acme PBX" || rep.Code.Source != SourceLink || rep.Registry != url {
		t.Fatalf("activation %+v, code %+v, registry %s", a, rep.Code, rep.Registry)
	}
	lay := NewLayout(root)
	if _, errOut, code := run(t, nil, "agent", "config", "check", lay.ConfigFile); code != 0 {
		t.Errorf("agent config check: %s", errOut)
	}
	// The registry knows the install, linked to the partner.
	out, errOut, code = run(t, nil, "registry", "installs", "list", "--data", data, "--output", "json")
	if code != 0 || !strings.Contains(out, a.InstallID) || !strings.Contains(out, partner.Code) {
		t.Errorf("installs list (exit %d): %s %s", code, out, errOut)
	}

	// Again: nothing changes, same install id.
	before := snapshot(t, root)
	out, errOut, code = run(t, nil, args...)
	var rep2 e2eReport
	if code != 0 || json.Unmarshal([]byte(out), &rep2) != nil {
		t.Fatalf("second install: exit %d: %s %s", code, out, errOut)
	}
	if rep2.Activation.InstallID != a.InstallID {
		t.Errorf("install id changed: %s → %s", a.InstallID, rep2.Activation.InstallID)
	}
	sameTree(t, "second install", before, snapshot(t, root))

	// An unknown code stops a non-interactive install with exit 1 and no change.
	other := copyRoot(t, "plain-asterisk")
	otherBefore := snapshot(t, other)
	unknown := testCode(t)
	_, errOut, code = run(t, []string{EnvPartnerCode + "=" + unknown.String()}, "install", "--root", other, "--registry", url, "--yes", "--configure-ari")
	if code != 1 || !strings.Contains(errOut, "unknown_partner_code") && !strings.Contains(errOut, "does not know partner code") {
		t.Errorf("unknown code: exit %d, stderr %s", code, errOut)
	}
	sameTree(t, "after an unknown code", otherBefore, snapshot(t, other))

	// Uninstall sends the deactivation to the registry.
	out, errOut, code = run(t, nil, "uninstall", "--root", root, "--output", "json")
	var u UninstallReport
	if code != 0 || json.Unmarshal([]byte(out), &u) != nil {
		t.Fatalf("uninstall: exit %d: %s %s", code, out, errOut)
	}
	if u.Deactivation.State != "delivered" || u.Deactivation.InstallID != a.InstallID {
		t.Errorf("deactivation %+v", u.Deactivation)
	}
	out, _, _ = run(t, nil, "registry", "installs", "show", a.InstallID, "--data", data, "--output", "json")
	if !strings.Contains(out, "deactivated") {
		t.Errorf("the registry does not show the install deactivated: %s", out)
	}

	// The uninstall kept the key, so installing again brings the same
	// install back at the registry, still linked to its partner.
	out, errOut, code = run(t, nil, args...)
	var again e2eReport
	if code != 0 || json.Unmarshal([]byte(out), &again) != nil {
		t.Fatalf("reinstall: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if again.Activation.State != "activated" || again.Activation.InstallID != a.InstallID || again.Activation.PartnerCode != partner.Code {
		t.Errorf("reinstall activation %+v, want install %s linked to %s", again.Activation, a.InstallID, partner.Code)
	}
	out, _, _ = run(t, nil, "registry", "installs", "show", a.InstallID, "--data", data, "--output", "json")
	if !strings.Contains(out, `"state": "registered"`) {
		t.Errorf("the registry does not show the install reactivated: %s", out)
	}
}
