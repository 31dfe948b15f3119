package testenv

import (
	"os/exec"
	"path"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry"
)

func TestProcessOutputAndExit(t *testing.T) {
	p := StartProcess(t, "echo", exec.Command("sh", "-c", "echo out; echo err >&2; exit 3"))
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("sh did not exit")
	}
	if !p.Exited() {
		t.Fatal("Exited is false after Done")
	}
	if ee, ok := p.Err().(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Fatalf("Err = %v, want exit status 3", p.Err())
	}
	if out := p.Output.String(); !strings.Contains(out, "out\n") || !strings.Contains(out, "err\n") {
		t.Fatalf("output %q lacks stdout or stderr", out)
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop after exit: %v", err)
	}
}

func TestProcessStopAndKill(t *testing.T) {
	p := StartProcess(t, "sleep", exec.Command("sleep", "60"))
	if p.Exited() {
		t.Fatal("sleep exited at once")
	}
	if err := p.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if ee, ok := p.Err().(*exec.ExitError); !ok || ee.String() != "signal: terminated" {
		t.Fatalf("Err after Stop = %v, want signal: terminated", p.Err())
	}
	k := StartProcess(t, "sleep", exec.Command("sleep", "60"))
	k.Kill()
	if ee, ok := k.Err().(*exec.ExitError); !ok || ee.String() != "signal: killed" {
		t.Fatalf("Err after Kill = %v, want signal: killed", k.Err())
	}
}

func TestProcessKeepsCallersStream(t *testing.T) {
	var stdout Buffer
	cmd := exec.Command("sh", "-c", "echo json; echo log >&2")
	cmd.Stdout = &stdout
	p := StartProcess(t, "sh", cmd)
	<-p.Done()
	if stdout.String() != "json\n" || p.Output.String() != "log\n" {
		t.Fatalf("stdout %q, Output %q: want json on stdout and log in Output", stdout.String(), p.Output.String())
	}
}

func TestCleanEnv(t *testing.T) {
	t.Setenv("SWITCHBOARD_REGISTRY_URL", "http://example.invalid")
	t.Setenv("TESTENV_KEEP", "1")
	env := strings.Join(CleanEnv(), "\n")
	if strings.Contains(env, "SWITCHBOARD_") || !strings.Contains(env, "TESTENV_KEEP=1") {
		t.Fatalf("CleanEnv kept a SWITCHBOARD_ variable or dropped another:\n%s", env)
	}
}

// TestRegistryFileNames: the names StartRegistry reads are the registry's.
func TestRegistryFileNames(t *testing.T) {
	for ours, theirs := range map[string]string{
		registryAddrFile:  registry.AddrFile,
		registryTokenFile: registry.AdminTokenFile,
		registryPubKey:    path.Join(registry.KeysDir, registry.KeyringFile),
	} {
		if ours != theirs {
			t.Errorf("testenv reads %q where the registry writes %q", ours, theirs)
		}
	}
}
