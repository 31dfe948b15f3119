package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// entries lists dir, so a test can see no temporary file was left behind.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestWriteFileCreatesAndReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	old := syscall.Umask(0o077) // the mode must not depend on the umask
	defer syscall.Umask(old)
	if err := WriteFile(path, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, []byte("two"), 0o640); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "two" {
		t.Fatalf("content = %q, want %q", got, "two")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode = %v, want 0640", fi.Mode().Perm())
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "state.json" {
		t.Fatalf("directory holds %v, want only state.json", names)
	}
}

func TestFailedWriteKeepsOldFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "licence.asc")
	if err := WriteFile(path, []byte("good"), 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk on fire")
	err := Write(path, 0o644, func(w io.Writer) error {
		if _, err := w.Write([]byte("half of the ne")); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write error = %v, want it to wrap %v", err, boom)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "good" {
		t.Fatalf("content after failed write = %q, want the old %q", got, "good")
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after failed write = %v, want the old 0600", fi.Mode().Perm())
	}
	if names := entries(t, dir); len(names) != 1 {
		t.Fatalf("directory holds %v after a failed write, want only licence.asc", names)
	}
}

func TestWriteFileIntoMissingDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gone", "f")
	err := WriteFile(path, []byte("x"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error = %v, want one wrapping fs.ErrNotExist", err)
	}
}

func TestWithOwnerKeepsOwnOwner(t *testing.T) {
	// An unprivileged test can only give a file to itself; that must work,
	// and for root the chown must really be applied.
	path := filepath.Join(t.TempDir(), "extensions.conf")
	uid, gid := os.Getuid(), os.Getgid()
	if err := WriteFile(path, []byte("[ctx]\n"), 0o640, WithOwner(Owner{UID: uid, GID: gid})); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid {
		t.Fatalf("owner = %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
	}
}

func TestWithOwnerUnprivilegedIgnoresChownFailure(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can give files away; the tolerance is for other users")
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := WriteFile(path, []byte("x"), 0o600, WithOwner(Owner{UID: 0, GID: 0})); err != nil {
		t.Fatalf("unprivileged write with a foreign owner: %v", err)
	}
	if got, err := os.ReadFile(path); err != nil || string(got) != "x" {
		t.Fatalf("content = %q, %v", got, err)
	}
}

func TestSyncDirMissing(t *testing.T) {
	if err := SyncDir(filepath.Join(t.TempDir(), "nope")); err != nil {
		t.Fatalf("SyncDir of a missing directory: %v", err)
	}
}
