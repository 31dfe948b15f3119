package installer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"syscall"

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
)

// Step is one reversible change. Do makes it; Undo puts back what Do
// changed, using only what Do recorded, so it is safe to call after Do
// failed half-way or did nothing.
type Step struct {
	// Name is a short stable identifier ("state-dir", "agent-config"), used
	// in reports and by the rollback tests.
	Name string `json:"name"`
	// Summary says in one line what the step does.
	Summary string `json:"summary"`
	// Changes lists what the step will change (or changed); a dry run
	// prints them.
	Changes []string `json:"changes,omitempty"`
	// Status is planned, done, unchanged, failed or rolled-back.
	Status string `json:"status"`
	// Detail is what happened, when there is more to say than the status.
	Detail string `json:"detail,omitempty"`

	do   func(ctx context.Context, s *Step) error
	undo func(ctx context.Context) error
}

// Step statuses.
const (
	StatusPlanned    = "planned"
	StatusDone       = "done"
	StatusUnchanged  = "unchanged"
	StatusFailed     = "failed"
	StatusRolledBack = "rolled-back"
)

// Plan is the ordered list of steps of an install or uninstall.
type Plan struct {
	Steps []*Step `json:"steps"`

	// afterStep, when set (tests), is called after each step's Do; an
	// error is treated as that step failing, which rolls back every step
	// up to and including it.
	afterStep func(name string) error
}

func (p *Plan) add(s *Step) { s.Status = StatusPlanned; p.Steps = append(p.Steps, s) }

// StepError is a step that failed; the steps before it were rolled back.
type StepError struct {
	Step string
	Err  error
	// RollbackErrs lists steps whose undo failed: the host is not as it was
	// and these need a look by hand.
	RollbackErrs []error
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("step %s failed: %v", e.Step, e.Err)
	if len(e.RollbackErrs) == 0 {
		return msg + "; every earlier change was rolled back"
	}
	return fmt.Sprintf("%s; rolling back also failed, check by hand: %v", msg, errors.Join(e.RollbackErrs...))
}

func (e *StepError) Unwrap() error { return e.Err }

// Execute runs the steps in order. When one fails, the steps already run
// (and the failing one) are undone in reverse order.
func (p *Plan) Execute(ctx context.Context) error {
	for i, s := range p.Steps {
		err := ctx.Err()
		if err == nil {
			err = s.do(ctx, s)
		}
		if err == nil && p.afterStep != nil {
			err = p.afterStep(s.Name)
		}
		if err == nil {
			if s.Status == StatusPlanned {
				s.Status = StatusDone
			}
			continue
		}
		s.Status = StatusFailed
		se := &StepError{Step: s.Name, Err: err}
		// Undo must run even when ctx was cancelled (Ctrl-C): leaving a
		// half-installed server is worse than a slower exit.
		uctx := context.WithoutCancel(ctx)
		for j := i; j >= 0; j-- {
			u := p.Steps[j]
			if u.undo == nil {
				continue
			}
			if uerr := u.undo(uctx); uerr != nil {
				se.RollbackErrs = append(se.RollbackErrs, fmt.Errorf("undo %s: %w", u.Name, uerr))
				continue
			}
			if j < i {
				u.Status = StatusRolledBack
			}
		}
		return se
	}
	return nil
}

// --- file primitives -------------------------------------------------------

// fileState is what a path held before a step changed it.
type fileState struct {
	exists bool
	data   []byte
	mode   fs.FileMode
	owner  *atomicfile.Owner
}

func readState(path string) (fileState, error) {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fileState{}, nil
	}
	if err != nil {
		return fileState{}, err
	}
	if !fi.Mode().IsRegular() {
		return fileState{}, fmt.Errorf("%s is not a regular file (%s): move it away and re-run", path, fi.Mode().Type())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return fileState{}, err
	}
	return fileState{exists: true, data: data, mode: fi.Mode().Perm(), owner: ownerOf(fi)}, nil
}

// restore puts path back to st, atomically.
func (st fileState) restore(path string) error {
	if !st.exists {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return atomicfile.SyncDir(filepath.Dir(path))
	}
	return writeAtomic(path, st.data, st.mode, st.owner)
}

func ownerOf(fi fs.FileInfo) *atomicfile.Owner {
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		return &atomicfile.Owner{UID: int(sys.Uid), GID: int(sys.Gid)}
	}
	return nil
}

// writeAtomic replaces path so that a crash leaves either the old or the
// new content. The file gets mode and, when o is set, that owner (Asterisk
// reads its configuration as user asterisk); nil means "whoever writes it".
func writeAtomic(path string, data []byte, mode fs.FileMode, o *atomicfile.Owner) error {
	if o == nil {
		return atomicfile.WriteFile(path, data, mode)
	}
	return atomicfile.WriteFile(path, data, mode, atomicfile.WithOwner(*o))
}

// fileWrite is a planned write of one whole file.
type fileWrite struct {
	path string
	data []byte
	mode fs.FileMode
	// inheritOwner keeps the owner of the file it replaces, or takes the
	// owner of the directory for a new file (Asterisk configuration).
	inheritOwner bool

	before  fileState
	changed bool
}

// apply writes the file unless it already holds exactly data with mode.
func (w *fileWrite) apply() (bool, error) {
	st, err := readState(w.path)
	if err != nil {
		return false, err
	}
	w.before = st
	if st.exists && st.mode == w.mode && bytes.Equal(st.data, w.data) {
		return false, nil
	}
	var o *atomicfile.Owner
	if w.inheritOwner {
		o = st.owner
		if !st.exists {
			if fi, err := os.Stat(filepath.Dir(w.path)); err == nil {
				o = ownerOf(fi)
			}
		}
	}
	if err := writeAtomic(w.path, w.data, w.mode, o); err != nil {
		return false, fmt.Errorf("write %s: %w", w.path, err)
	}
	w.changed = true
	return true, nil
}

func (w *fileWrite) revert() error {
	if !w.changed {
		return nil
	}
	if err := w.before.restore(w.path); err != nil {
		return fmt.Errorf("restore %s: %w", w.path, err)
	}
	w.changed = false
	return nil
}

// fileRemove is a planned removal of one file, kept in memory for undo.
type fileRemove struct {
	path    string
	before  fileState
	removed bool
}

func (r *fileRemove) apply() (bool, error) {
	st, err := readState(r.path)
	if err != nil {
		return false, err
	}
	if !st.exists {
		return false, nil
	}
	r.before = st
	if err := os.Remove(r.path); err != nil {
		return false, fmt.Errorf("remove %s: %w", r.path, err)
	}
	r.removed = true
	return true, atomicfile.SyncDir(filepath.Dir(r.path))
}

func (r *fileRemove) revert() error {
	if !r.removed {
		return nil
	}
	if err := r.before.restore(r.path); err != nil {
		return fmt.Errorf("put back %s: %w", r.path, err)
	}
	r.removed = false
	return nil
}

// dirEnsure creates a directory (and missing parents) with a mode, or sets
// the mode of an existing one, remembering what to undo.
type dirEnsure struct {
	path string
	mode fs.FileMode

	created []string    // directories created, outermost first
	oldMode fs.FileMode // mode before a chmod; 0 when not changed
}

func (d *dirEnsure) apply() (bool, error) {
	fi, err := os.Stat(d.path)
	switch {
	case err == nil:
		if !fi.IsDir() {
			return false, fmt.Errorf("%s exists and is not a directory: move it away and re-run", d.path)
		}
		if fi.Mode().Perm() == d.mode {
			return false, nil
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return false, fmt.Errorf("set mode %04o on %s: %w", d.mode, d.path, err)
		}
		d.oldMode = fi.Mode().Perm()
		return true, nil
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	// Find the missing ancestors so undo removes exactly those.
	var missing []string
	for p := d.path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return false, err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	slices.Reverse(missing)
	for i, p := range missing {
		mode := fs.FileMode(0o755)
		if i == len(missing)-1 {
			mode = d.mode
		}
		if err := os.Mkdir(p, mode); err != nil {
			return true, fmt.Errorf("create directory %s: %w", p, err)
		}
		d.created = append(d.created, p)
		// Mkdir is subject to the umask; the mode must be exact.
		if err := os.Chmod(p, mode); err != nil {
			return true, fmt.Errorf("set mode %04o on %s: %w", mode, p, err)
		}
		if err := atomicfile.SyncDir(filepath.Dir(p)); err != nil {
			return true, err
		}
	}
	return true, nil
}

func (d *dirEnsure) revert() error {
	var errs []error
	for i := len(d.created) - 1; i >= 0; i-- {
		if err := os.Remove(d.created[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove directory %s: %w", d.created[i], err))
		}
	}
	d.created = nil
	if d.oldMode != 0 {
		if err := os.Chmod(d.path, d.oldMode); err != nil {
			errs = append(errs, err)
		}
		d.oldMode = 0
	}
	return errors.Join(errs...)
}

// writeStep makes a step that writes whole files.
func writeStep(name, summary string, writes ...*fileWrite) *Step {
	s := &Step{Name: name, Summary: summary}
	for _, w := range writes {
		s.Changes = append(s.Changes, fmt.Sprintf("write %s (mode %04o, %d bytes)", w.path, w.mode, len(w.data)))
	}
	s.do = func(_ context.Context, s *Step) error {
		any := false
		for _, w := range writes {
			ch, err := w.apply()
			if err != nil {
				return err
			}
			any = any || ch
		}
		if !any {
			s.Status = StatusUnchanged
		}
		return nil
	}
	s.undo = func(context.Context) error {
		var errs []error
		for i := len(writes) - 1; i >= 0; i-- {
			errs = append(errs, writes[i].revert())
		}
		return errors.Join(errs...)
	}
	return s
}
