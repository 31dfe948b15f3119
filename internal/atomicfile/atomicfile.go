// Package atomicfile replaces files so that a crash or a failed write leaves
// either the old content or the new one, never a mix or a truncated file.
//
// The data goes to a temporary file in the target's directory (so the final
// rename stays on one filesystem), which is synced, renamed over the target,
// and then the directory is synced so the rename itself survives a crash.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// Owner is a numeric user and group for the written file.
type Owner struct{ UID, GID int }

// Option adjusts one write.
type Option func(*options)

type options struct {
	owner *Owner
}

// WithOwner gives the new file to o before it replaces the target (Asterisk,
// for one, reads its configuration as user asterisk). Only root can give
// files away; for any other user a failed chown is ignored, since such a
// process owns everything it writes anyway (a sandboxed or test install).
func WithOwner(o Owner) Option {
	return func(opts *options) { opts.owner = &o }
}

// WriteFile atomically replaces path with data and sets its permission bits
// to exactly mode, whatever the umask.
func WriteFile(path string, data []byte, mode fs.FileMode, opts ...Option) error {
	return Write(path, mode, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	}, opts...)
}

// Write is WriteFile for content produced by a writer function, such as a
// packager streaming an archive; when write fails, path is left untouched.
func Write(path string, mode fs.FileMode, write func(io.Writer) error, opts ...Option) (err error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	renamed := false
	defer func() {
		if !renamed {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	// CreateTemp makes 0600 files; Chmod sets the exact mode.
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("set mode of %s: %w", path, err)
	}
	if o.owner != nil {
		if err := f.Chown(o.owner.UID, o.owner.GID); err != nil && os.Geteuid() == 0 {
			return fmt.Errorf("set owner of %s: %w", path, err)
		}
	}
	if err := write(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	renamed = true
	return SyncDir(dir)
}

// SyncDir makes a rename, creation or removal in dir durable. A directory
// that no longer exists has nothing to sync, and filesystems that cannot
// sync directories are not an error: there is nothing more the caller could
// do about them.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open directory %s to sync it: %w", dir, err)
	}
	defer d.Close()
	_ = d.Sync()
	return nil
}
