package cli

import (
	"strings"
	"testing"
)

func TestRegistryStaffCommandsExitCodes(t *testing.T) {
	t.Setenv(envRegistryURL, "")
	t.Setenv(envAdminToken, "")
	// Nothing listens on port 1 of loopback: unreachable is exit 3.
	code, _, stderr := run(t, "registry", "partner", "list", "--registry", "http://127.0.0.1:1", "--token", strings.Repeat("t", 43))
	if code != ExitUnreachable || !strings.Contains(stderr, "unreachable") {
		t.Fatalf("unreachable registry: exit %d %q", code, stderr)
	}
	code, _, _ = run(t, "registry", "partner", "list")
	if code != ExitUsage {
		t.Fatalf("no URL: exit %d", code)
	}
	code, _, _ = run(t, "registry", "installs", "list", "--status", "sleepy", "--registry", "http://127.0.0.1:1", "--token", "x")
	if code != ExitUsage {
		t.Fatalf("bad status: exit %d", code)
	}
	code, _, _ = run(t, "registry", "installs", "move", "iabc", "K7QM-4XJD-R", "--registry", "http://127.0.0.1:1", "--token", "x")
	if code != ExitUsage {
		t.Fatalf("move without --why: exit %d", code)
	}
	code, _, _ = run(t, "registry", "serve")
	if code != ExitUsage {
		t.Fatalf("serve without --data: exit %d", code)
	}
}

func TestBenchHeartbeatsFlags(t *testing.T) {
	t.Setenv(envRegistryURL, "")
	t.Setenv(envAdminToken, "")
	code, _, _ := run(t, "bench", "heartbeats")
	if code != ExitUsage {
		t.Fatalf("no registry: exit %d", code)
	}
	code, _, _ = run(t, "bench", "heartbeats", "--registry", "http://127.0.0.1:1", "--installs", "0")
	if code != ExitUsage {
		t.Fatalf("zero installs: exit %d", code)
	}
	code, _, _ = run(t, "bench", "heartbeats", "--registry", "http://127.0.0.1:1")
	if code != ExitUsage {
		t.Fatalf("no token for verification: exit %d", code)
	}
	code, _, stderr := run(t, "bench", "heartbeats", "--registry", "http://127.0.0.1:1", "--token", "x", "--duration", "100ms", "--installs", "1")
	if code != ExitUnreachable {
		t.Fatalf("unreachable registry: exit %d %q", code, stderr)
	}
	code, _, stderr = run(t, "bench", "heartbeats", "--data", t.TempDir(), "--duration", "100ms")
	if code != ExitFailed || !strings.Contains(stderr, "registry serve --data DIR") {
		t.Fatalf("--data naming no registry: exit %d %q", code, stderr)
	}
}
