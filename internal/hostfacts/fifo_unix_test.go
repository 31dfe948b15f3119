//go:build unix

package hostfacts

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSpecialFilesAreNotRead: a FIFO planted as etc/os-release under a
// root must not block the reader (the test would hang), and a directory is
// skipped for the fallback.
func TestSpecialFilesAreNotRead(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"etc/os-release", "etc/hostname", "etc/machine-id"} {
		if err := syscall.Mkfifo(filepath.Join(root, name), 0o644); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	write(t, root, "usr/lib/os-release", "PRETTY_NAME=Fallback\n")
	if got := OSRelease(root); got != "Fallback" {
		t.Errorf("os-release behind a FIFO: %q", got)
	}
	if Hostname(root) != "" || MachineID(root) != "" {
		t.Error("read a FIFO")
	}
}
