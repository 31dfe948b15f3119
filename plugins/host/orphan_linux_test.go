//go:build linux

package host

import (
	"bufio"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const prSetChildSubreaper = 36 // PR_SET_CHILD_SUBREAPER from <linux/prctl.h>

// TestHostSIGKILLLeavesNoOrphan runs a real host process (sb-testhost)
// with the test plugin, SIGKILLs the host, and checks the plugin is gone
// within a few seconds. The test process makes itself a child subreaper,
// so the orphaned plugin is re-parented to it and can be reaped here: that
// shows how the plugin died and does not depend on the machine's init
// reaping zombies.
//
// Each guard is also proved alone: the parent-death signal (plugin killed
// by SIGKILL) and the plugin-side watch of its lifeline and parent (plugin
// exits 0).
func TestHostSIGKILLLeavesNoOrphan(t *testing.T) {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", errno)
	}
	for _, c := range []struct {
		name  string
		flags []string
		check func(t *testing.T, ws syscall.WaitStatus)
	}{
		{"both guards", nil, func(*testing.T, syscall.WaitStatus) {}},
		{"pdeathsig alone", []string{"-no-lifeline"}, func(t *testing.T, ws syscall.WaitStatus) {
			if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
				t.Errorf("plugin should have died of the parent-death SIGKILL, wait status %v", ws)
			}
		}},
		{"plugin-side watch alone", []string{"-no-pdeathsig"}, func(t *testing.T, ws syscall.WaitStatus) {
			if !ws.Exited() || ws.ExitStatus() != 0 {
				t.Errorf("plugin should have exited 0 on its own, wait status %v", ws)
			}
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"-plugin", testPluginPath}, c.flags...)
			hostCmd := exec.Command(testHostPath, args...)
			hostCmd.Stderr = testWriter{t}
			out, err := hostCmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := hostCmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() { _ = hostCmd.Process.Kill(); _ = hostCmd.Wait() }()

			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil {
				t.Fatalf("host did not report a healthy plugin: %v", err)
			}
			pid, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "ready "))
			if err != nil {
				t.Fatalf("host said %q", line)
			}
			if _, alive := procState(pid); !alive {
				t.Fatalf("plugin %d not running before the host is killed", pid)
			}

			if err := hostCmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = hostCmd.Wait()
			killed := time.Now()

			ws, err := reapOrphan(pid, 5*time.Second)
			if err != nil {
				state, _ := procState(pid)
				_ = syscall.Kill(pid, syscall.SIGKILL) // do not leave it behind either way
				t.Fatalf("plugin %d outlived its SIGKILLed host: %v (state %q)", pid, err, state)
			}
			t.Logf("plugin gone %s after the host was killed (%v)", time.Since(killed).Round(time.Millisecond), ws)
			c.check(t, ws)
			if _, alive := procState(pid); alive {
				t.Errorf("plugin %d still has a /proc entry after being reaped", pid)
			}
		})
	}
}

// reapOrphan waits for pid, which the subreaper made our child, to end.
func reapOrphan(pid int, timeout time.Duration) (syscall.WaitStatus, error) {
	deadline := time.Now().Add(timeout)
	for {
		var ws syscall.WaitStatus
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		switch {
		case err == nil && got == pid:
			return ws, nil
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return ws, err
		}
		if time.Now().After(deadline) {
			return ws, errors.New("still running after " + timeout.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
