//go:build linux

package host

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal asks the kernel to SIGKILL the plugin when the
// thread that spawned it exits (see Supervisor.run for why that thread
// lives as long as the supervisor). Go's fork code also covers the race
// where the parent dies between fork and prctl.
func setParentDeathSignal(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
