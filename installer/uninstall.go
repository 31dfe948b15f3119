package installer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/sender"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/internal/atomicfile"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// UninstallOptions say what to remove.
type UninstallOptions struct {
	Root string
	// Purge also removes the install key, licence, install record and
	// outbox. Without it they stay, so a later install keeps the install id.
	Purge bool
	// DryRun lists every change and makes none.
	DryRun bool
	// FlushTimeout bounds how long the deactivation (and any report still
	// waiting) is tried (default 15s).
	FlushTimeout time.Duration

	Runner     Runner
	HTTPClient *http.Client
	Now        func() time.Time

	live bool
}

// Deactivation says what became of the deactivation.
type Deactivation struct {
	// State is planned, delivered, queued (the registry could not be
	// reached: it waits in the outbox), refused or not-activated.
	State     string `json:"state"`
	InstallID string `json:"install_id,omitempty"`
	Note      string `json:"note,omitempty"`
}

// UninstallReport is everything an uninstall did or would do.
type UninstallReport struct {
	Root         string       `json:"root"`
	DryRun       bool         `json:"dry_run"`
	Purge        bool         `json:"purge"`
	Steps        []*Step      `json:"steps"`
	Deactivation Deactivation `json:"deactivation"`
	Commands     []Command    `json:"commands,omitempty"`
	// Kept lists what stays on the server.
	Kept  []string `json:"kept,omitempty"`
	Notes []string `json:"notes,omitempty"`
}

// Uninstallation is a prepared uninstall.
type Uninstallation struct {
	Report *UninstallReport
	plan   *Plan
	opts   UninstallOptions
}

// PrepareUninstall plans the removal without changing anything.
func PrepareUninstall(ctx context.Context, opts UninstallOptions) (*Uninstallation, error) {
	if opts.Root == "" {
		opts.Root = "/"
	}
	abs, err := filepath.Abs(opts.Root)
	if err != nil {
		return nil, err
	}
	opts.Root = abs
	if opts.Root == "/" {
		opts.live = true
	}
	if opts.Runner == nil {
		opts.Runner = ExecRunner{}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.FlushTimeout <= 0 {
		opts.FlushTimeout = 15 * time.Second
	}
	h, err := Detect(ctx, opts.Root, opts.live, opts.Runner)
	if err != nil {
		return nil, err
	}
	lay := NewLayout(opts.Root)
	u := &Uninstallation{opts: opts, plan: &Plan{},
		Report: &UninstallReport{Root: opts.Root, DryRun: opts.DryRun, Purge: opts.Purge}}
	ub := &uninstallBuilder{u: u, h: h, lay: lay}
	if err := ub.build(); err != nil {
		return nil, err
	}
	u.Report.Steps = u.plan.Steps
	return u, nil
}

// Execute runs the uninstall; a failing step rolls back the ones before.
func (u *Uninstallation) Execute(ctx context.Context) error {
	if u.opts.DryRun {
		return errors.New("a dry run makes no changes: run without --dry-run to uninstall")
	}
	return u.plan.Execute(ctx)
}

type uninstallBuilder struct {
	u   *Uninstallation
	h   *Host
	lay Layout
}

func (b *uninstallBuilder) note(format string, args ...any) {
	b.u.Report.Notes = append(b.u.Report.Notes, fmt.Sprintf(format, args...))
}

func (b *uninstallBuilder) live() bool { return b.u.opts.live && b.h.Systemd }

func (b *uninstallBuilder) build() error {
	b.serviceStep()
	if err := b.ariStep(); err != nil {
		return err
	}
	b.filesStep()
	if err := b.deactivationStep(); err != nil {
		return err
	}
	b.purgeStep()
	return nil
}

func (b *uninstallBuilder) serviceStep() {
	r := b.u.opts.Runner
	s := &Step{Name: "service", Summary: "stop and disable the agent",
		Changes: []string{"run systemctl disable --now " + UnitName}}
	if !b.live() {
		why := "uninstalling under --root " + b.lay.Root
		if b.u.opts.live {
			why = "systemd is not running on this host"
		}
		s.do = func(_ context.Context, s *Step) error {
			b.u.Report.Commands = append(b.u.Report.Commands, Command{Command: "systemctl disable --now " + UnitName, Why: why})
			s.Status, s.Detail = StatusUnchanged, "not run: "+why
			return nil
		}
		b.u.plan.add(s)
		return
	}
	var wasEnabled, wasActive bool
	s.do = func(ctx context.Context, s *Step) error {
		_, err := r.Run(ctx, "systemctl", "is-enabled", "--quiet", UnitName)
		wasEnabled = err == nil
		_, err = r.Run(ctx, "systemctl", "is-active", "--quiet", UnitName)
		wasActive = err == nil
		if !wasEnabled && !wasActive {
			s.Status = StatusUnchanged
			return nil
		}
		b.u.Report.Commands = append(b.u.Report.Commands, Command{Command: "systemctl disable --now " + UnitName, Ran: true})
		_, err = r.Run(ctx, "systemctl", "disable", "--now", UnitName)
		return err
	}
	s.undo = func(ctx context.Context) error {
		var errs []error
		if wasEnabled {
			_, err := r.Run(ctx, "systemctl", "enable", UnitName)
			errs = append(errs, err)
		}
		if wasActive {
			_, err := r.Run(ctx, "systemctl", "start", UnitName)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	b.u.plan.add(s)
}

// ariStep removes the ARI user block the installer added (with a backup).
func (b *uninstallBuilder) ariStep() error {
	a := b.h.Asterisk
	if a == nil {
		return nil
	}
	var writes []*fileWrite
	stamp := b.u.opts.Now().UTC().Format("20060102T150405Z")
	s := &Step{Name: "ari-user", Summary: "remove the agent's ARI user added by the installer"}
	seen := map[string]bool{}
	for _, f := range []string{a.ARI.CustomFile, filepath.Join(a.ConfigDir, "ari.conf")} {
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		p := filepath.Join(b.lay.Root, f)
		st, err := readState(p)
		if err != nil {
			return err
		}
		text, ok := removeMarkedBlock(string(st.data))
		if !st.exists || !ok {
			continue
		}
		writes = append(writes,
			&fileWrite{path: p + ".switchboard-bak-" + stamp, data: st.data, mode: st.mode, inheritOwner: true},
			&fileWrite{path: p, data: []byte(text), mode: st.mode, inheritOwner: true})
		s.Changes = append(s.Changes, "back up and edit "+f)
	}
	if len(writes) == 0 {
		return nil
	}
	running := a.Running != nil && *a.Running
	s.Changes = append(s.Changes, "run "+shellJoin(asteriskReloadARI))
	s.do = func(ctx context.Context, s *Step) error {
		for _, w := range writes {
			if _, err := w.apply(); err != nil {
				return err
			}
		}
		if b.u.opts.live && running {
			b.u.Report.Commands = append(b.u.Report.Commands, Command{Command: shellJoin(asteriskReloadARI), Ran: true})
			_, err := b.u.opts.Runner.Run(ctx, asteriskReloadARI[0], asteriskReloadARI[1:]...)
			return err
		}
		b.u.Report.Commands = append(b.u.Report.Commands, Command{Command: shellJoin(asteriskReloadARI), Why: "Asterisk is not running here (or under --root)"})
		return nil
	}
	s.undo = func(context.Context) error {
		var errs []error
		for i := len(writes) - 1; i >= 0; i-- {
			errs = append(errs, writes[i].revert())
		}
		return errors.Join(errs...)
	}
	b.u.plan.add(s)
	return nil
}

// removeSet removes files and then directories that end up empty.
type removeSet struct {
	files []*fileRemove
	dirs  []string // removed only when empty, in this order

	removedDirs []dirRemoved
}

type dirRemoved struct {
	path string
	mode fs.FileMode
}

func (r *removeSet) apply() (bool, error) {
	changed := false
	for _, f := range r.files {
		ch, err := f.apply()
		if err != nil {
			return changed, err
		}
		changed = changed || ch
	}
	for _, d := range r.dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() {
			continue
		}
		if err := os.Remove(d); err != nil {
			continue // not empty: something else lives there; keep it
		}
		r.removedDirs = append(r.removedDirs, dirRemoved{path: d, mode: fi.Mode().Perm()})
		changed = true
		if err := atomicfile.SyncDir(filepath.Dir(d)); err != nil {
			return changed, err
		}
	}
	return changed, nil
}

func (r *removeSet) revert() error {
	var errs []error
	for i := len(r.removedDirs) - 1; i >= 0; i-- {
		d := r.removedDirs[i]
		if err := os.Mkdir(d.path, d.mode); err != nil && !errors.Is(err, fs.ErrExist) {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, os.Chmod(d.path, d.mode))
	}
	r.removedDirs = nil
	for i := len(r.files) - 1; i >= 0; i-- {
		errs = append(errs, r.files[i].revert())
	}
	return errors.Join(errs...)
}

func removeStep(name, summary string, rs *removeSet, after func(ctx context.Context) error) *Step {
	s := &Step{Name: name, Summary: summary}
	for _, f := range rs.files {
		if _, err := os.Lstat(f.path); err == nil {
			s.Changes = append(s.Changes, "remove "+f.path)
		}
	}
	for _, d := range rs.dirs {
		if _, err := os.Stat(d); err == nil {
			s.Changes = append(s.Changes, "remove directory "+d+" when empty")
		}
	}
	s.do = func(ctx context.Context, s *Step) error {
		ch, err := rs.apply()
		if err != nil {
			return err
		}
		if !ch {
			s.Status = StatusUnchanged
			return nil
		}
		if after != nil {
			return after(ctx)
		}
		return nil
	}
	s.undo = func(context.Context) error { return rs.revert() }
	return s
}

// pluginFiles lists the files in the plugin directory.
func pluginFiles(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(out)
	return out
}

func (b *uninstallBuilder) filesStep() {
	lay := b.lay
	rs := &removeSet{}
	for _, p := range []string{lay.Unit, lay.ConfigFile, lay.Manifest, lay.ARISecret, lay.OdooSecret, lay.Binary,
		filepath.Join(lay.StateDir, "agent.sock")} {
		rs.files = append(rs.files, &fileRemove{path: p})
	}
	for _, p := range pluginFiles(lay.PluginDir) {
		rs.files = append(rs.files, &fileRemove{path: p})
	}
	rs.dirs = []string{lay.PluginDir, lay.ConfigDir}
	var after func(ctx context.Context) error
	if b.live() {
		after = func(ctx context.Context) error {
			b.u.Report.Commands = append(b.u.Report.Commands, Command{Command: "systemctl daemon-reload", Ran: true})
			_, err := b.u.opts.Runner.Run(ctx, "systemctl", "daemon-reload")
			return err
		}
	}
	b.u.plan.add(removeStep("files", "remove the unit, the agent configuration, the plugins and the secrets", rs, after))
}

// deactivationStep queues the deactivation in the agent's outbox and
// delivers it (with anything else still waiting) through the agent's
// sender, so it is signed and sequenced exactly as the agent would.
func (b *uninstallBuilder) deactivationStep() error {
	lay := b.lay
	rep := b.u.Report
	keyPath := filepath.Join(lay.StateDir, state.KeyFile)
	obPath := filepath.Join(lay.StateDir, state.OutboxFile)
	dir := &state.Dir{Path: lay.StateDir}
	inst, activated, err := dir.LoadInstall()
	if err != nil {
		return err
	}
	keyState, err := readState(keyPath)
	if err != nil {
		return err
	}
	_, obErr := os.Stat(obPath)
	if !keyState.exists || (!activated && obErr != nil) {
		rep.Deactivation = Deactivation{State: "not-activated"}
		return nil
	}
	if _, err := os.Stat(filepath.Join(lay.StateDir, DeactivatedFile)); err == nil {
		rep.Deactivation = Deactivation{State: "delivered", InstallID: inst.InstallID, Note: "by an earlier uninstall"}
		return nil
	}
	key, err := state.ParseKey(keyPath, keyState.data)
	if err != nil {
		return err
	}
	regURL := ""
	if c, err := readAgentConfig(lay.ConfigFile); err == nil {
		regURL = c.Registry.URL
	}
	rep.Deactivation = Deactivation{State: "planned", InstallID: inst.InstallID}
	s := &Step{Name: "deactivation", Summary: "tell the registry this install is removed",
		Changes: []string{"queue a deactivation in " + obPath, "send it to " + orDash(regURL) + " (for up to " + b.u.opts.FlushTimeout.String() + ")"}}
	var before fileState
	touched := false
	marker := &fileWrite{path: filepath.Join(lay.StateDir, PendingDeactivationFile), mode: 0o600}
	pendingMarker := &fileRemove{path: marker.path} // a marker left by an earlier, offline uninstall
	done := &fileWrite{path: filepath.Join(lay.StateDir, DeactivatedFile), mode: 0o600}
	s.do = func(ctx context.Context, s *Step) error {
		st, err := readState(obPath)
		if err != nil {
			return err
		}
		before, touched = st, true
		ob, err := outbox.Open(obPath, outbox.Options{})
		if err != nil {
			return err
		}
		defer ob.Close()
		recs, err := ob.Pending(0)
		if err != nil {
			return err
		}
		var seq uint64
		for _, r := range recs {
			if r.Kind == outbox.KindDeactivation {
				seq = r.Seq // an earlier uninstall queued it already
			}
		}
		if seq == 0 {
			if seq, err = ob.Append(outbox.KindDeactivation, api.DeactivateRequest{Reason: "uninstalled with switchboard uninstall"}); err != nil {
				return fmt.Errorf("queue the deactivation: %w", err)
			}
		}
		if regURL == "" {
			rep.Deactivation.State = "queued"
			rep.Deactivation.Note = "no registry URL (the agent configuration is missing)"
			return nil
		}
		hk := &uninstallHooks{dir: dir, inst: inst, activated: activated, seq: seq}
		snd := sender.New(ob, sender.Options{URL: regURL, Key: key, BackoffMin: 250 * time.Millisecond, BackoffMax: 2 * time.Second,
			RequestTimeout: 10 * time.Second, Client: b.u.opts.HTTPClient, Hooks: hk, Now: b.u.opts.Now})
		fctx, cancel := context.WithTimeout(ctx, b.u.opts.FlushTimeout)
		ferr := snd.Flush(fctx)
		cancel()
		rep.Deactivation.InstallID = hk.installID()
		switch {
		case hk.delivered():
			rep.Deactivation.State = "delivered"
		case ferr != nil:
			rep.Deactivation.State = "queued"
			rep.Deactivation.Note = snd.Status().LastError
		default:
			// Flushed, but not delivered: the registry refused it.
			rep.Deactivation.State = "refused"
			if dl, err := ob.DeadLetters(0); err == nil {
				for _, d := range dl {
					if d.Seq == seq {
						rep.Deactivation.Note = d.Reason
						if d.Status == http.StatusGone {
							rep.Deactivation.State = "delivered" // deactivated before
						}
					}
				}
			}
		}
		s.Detail = rep.Deactivation.State
		if rep.Deactivation.State == "delivered" {
			done.data = []byte(fmt.Sprintf("{\"install_id\": %q}\n", rep.Deactivation.InstallID))
			if _, err := done.apply(); err != nil {
				return err
			}
			if _, err := pendingMarker.apply(); err != nil {
				return err
			}
		}
		if rep.Deactivation.State == "queued" {
			// Tell a later install that a deactivation it must drop waits
			// in the outbox (reading the outbox itself would change it).
			marker.data = []byte(fmt.Sprintf("{\"seq\": %d}\n", seq))
			if _, err := marker.apply(); err != nil {
				return err
			}
		}
		return nil
	}
	s.undo = func(context.Context) error {
		if !touched {
			return nil
		}
		touched = false
		return errors.Join(pendingMarker.revert(), done.revert(), marker.revert(), before.restore(obPath))
	}
	b.u.plan.add(s)
	return nil
}

// DeactivatedFile in the state directory records that the registry took
// the deactivation: the identity left there cannot be used again (the
// registry keeps that install deactivated), so install refuses it and
// uninstall does not send the deactivation twice.
const DeactivatedFile = "deactivated.json"

// PendingDeactivationFile in the state directory says that an uninstall
// left a deactivation in the outbox; the next install removes it there.
const PendingDeactivationFile = "deactivation-pending.json"

// uninstallHooks are the sender hooks of an uninstall: only the install
// id and the activation answer matter.
type uninstallHooks struct {
	dir       *state.Dir
	seq       uint64
	mu        sync.Mutex
	inst      state.Install
	activated bool
	done      bool
}

func (h *uninstallHooks) installID() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.activated {
		return ""
	}
	return h.inst.InstallID
}

func (h *uninstallHooks) delivered() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.done
}

// InstallID implements sender.Hooks.
func (h *uninstallHooks) InstallID() string { return h.installID() }

// Activated implements sender.Hooks: an activation that was still waiting
// goes through first, so the deactivation can name the install.
func (h *uninstallHooks) Activated(resp api.ActivationResponse) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.inst = state.Install{InstallID: resp.InstallID, ActivatedAt: time.Now().UTC(), Partner: resp.Partner, LinkNote: resp.LinkNote}
	h.activated = true
	return h.dir.SaveInstall(h.inst)
}

// ReportsAnswered implements sender.Hooks.
func (h *uninstallHooks) ReportsAnswered(api.ReportBatchResponse) {}

// Linked implements sender.Hooks.
func (h *uninstallHooks) Linked(uint64, api.LinkResponse) {}

// LinkRefused implements sender.Hooks.
func (h *uninstallHooks) LinkRefused(uint64, *sender.APIError) {}

// Deactivated implements sender.Hooks.
func (h *uninstallHooks) Deactivated(seq uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if seq == h.seq {
		h.done = true
	}
}

func (b *uninstallBuilder) purgeStep() {
	lay := b.lay
	rep := b.u.Report
	identity := []string{state.KeyFile, state.InstallFile, state.LicenceFile, "vendor.pub", state.OutboxFile, "link.json", PendingDeactivationFile, DeactivatedFile}
	if !b.u.opts.Purge {
		for _, f := range identity {
			if _, err := os.Stat(filepath.Join(lay.StateDir, f)); err == nil {
				rep.Kept = append(rep.Kept, filepath.Join(lay.StateDir, f))
			}
		}
		if len(rep.Kept) > 0 {
			b.note("the install key and licence stay in %s, so installing again keeps this install's id; remove them with --purge", lay.StateDir)
		}
		return
	}
	rs := &removeSet{dirs: []string{lay.StateDir}}
	for _, f := range identity {
		rs.files = append(rs.files, &fileRemove{path: filepath.Join(lay.StateDir, f)})
	}
	s := removeStep("purge", "remove the install key, licence, install record and outbox", rs, nil)
	do := s.do
	s.do = func(ctx context.Context, s *Step) error {
		// Without the key and the outbox a queued deactivation could never
		// be sent: keep them until it is.
		if rep.Deactivation.State == "queued" {
			keep := map[string]bool{state.KeyFile: true, state.OutboxFile: true, state.InstallFile: true, PendingDeactivationFile: true}
			var files []*fileRemove
			for _, f := range rs.files {
				if keep[filepath.Base(f.path)] {
					rep.Kept = append(rep.Kept, f.path)
					continue
				}
				files = append(files, f)
			}
			rs.files = files
			b.note("the deactivation could not be delivered, so %s keeps the install key and the outbox: run `switchboard uninstall --purge` again once the registry is reachable", lay.StateDir)
		}
		return do(ctx, s)
	}
	b.u.plan.add(s)
}

// WriteText prints the uninstall report for people.
func (r *UninstallReport) WriteText(w io.Writer) {
	title := "Switchboard uninstall"
	if r.DryRun {
		title += " (dry run: nothing is changed)"
	}
	if r.Purge {
		title += " with --purge"
	}
	fmt.Fprintf(w, "%s from %s\nSteps:\n", title, r.Root)
	writeSteps(w, r.Steps, r.DryRun)
	d := r.Deactivation
	switch d.State {
	case "delivered":
		fmt.Fprintf(w, "The registry recorded the deactivation of install %s.\n", d.InstallID)
	case "queued":
		fmt.Fprintf(w, "The deactivation of install %s waits in the outbox: %s\n", orDash(d.InstallID), orDash(d.Note))
	case "refused":
		fmt.Fprintf(w, "The registry refused the deactivation of install %s: %s\n", orDash(d.InstallID), orDash(d.Note))
	case "not-activated":
		fmt.Fprintln(w, "This server had no activated install: nothing to deactivate.")
	}
	for _, c := range r.Commands {
		if c.Ran {
			fmt.Fprintf(w, "Ran: %s\n", c.Command)
		} else {
			fmt.Fprintf(w, "Not run (%s): %s\n", c.Why, c.Command)
		}
	}
	for _, k := range r.Kept {
		fmt.Fprintf(w, "Kept: %s\n", k)
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "Note: %s\n", n)
	}
}
