//go:build !linux

package host

import "os/exec"

// setParentDeathSignal does nothing where the kernel has no parent-death
// signal; the plugin side's lifeline watch (plugins.WatchParent) still
// ends orphaned plugins there.
func setParentDeathSignal(*exec.Cmd) {}
