// Package installer puts Switchboard on a customer's server: it detects
// Asterisk (and its distribution) and Odoo, takes the partner code, creates
// the install key, activates with the registry (or leaves the activation in
// the agent's outbox when the registry cannot be reached), writes the agent
// configuration, the plugin manifest and a hardened systemd unit, and
// starts the agent. Uninstall reverses it.
//
// Every change is a Step with a Do and an Undo, run in order by a Plan: a
// failing step undoes the ones before it, so the server is left as it was.
// Every file is written atomically (temporary file, fsync, rename, fsync
// of the directory) and only when its content or mode differs, so running
// the installer again changes nothing and keeps the install id.
//
// With a root other than / the installer works on that directory as a
// self-contained sandbox (tests, demos): paths written into files point
// inside the root, and host commands (asterisk, systemctl) are listed in
// the report instead of being run.
package installer

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/internal/buildinfo"
	"github.com/switchboard-dev/switchboard/internal/hostfacts"
	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/builtin"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// UnitName is the systemd unit of the agent.
const UnitName = "switchboard-agent.service"

// DefaultARIUser is the dedicated ARI user --configure-ari creates.
const DefaultARIUser = "switchboard"

// Options say what to install and where.
type Options struct {
	// Root is where to install; "/" (the default) is the live system.
	Root string
	// RegistryURL is the vendor registry. When empty, the URL of an
	// earlier install (its agent.toml) is used.
	RegistryURL string
	// Code is the partner code and its source (SourceNone: no code).
	Code CodeChoice
	// DryRun plans and reports every change and makes none.
	DryRun bool

	ConfigureARI bool
	ARIURL       string
	ARIUser      string
	ARIPassword  string

	OdooURL  string
	OdooDB   string
	OdooUser string
	OdooKey  string

	// VendorKeysFile, when set, pins the vendor public keys the licence
	// must verify with instead of trusting what the registry publishes.
	VendorKeysFile string

	// Executable is the switchboard binary to install (default: the
	// running one).
	Executable string
	// Runner runs host commands (default ExecRunner). Commands run only
	// when Root is "/".
	Runner Runner
	// HTTPClient talks to the registry (default: a plain client).
	HTTPClient *http.Client
	// Now is the clock (tests).
	Now func() time.Time

	// live forces host commands under a root other than / (tests).
	live bool
}

// Layout is where everything goes. Paths are on the target system, under
// the root.
type Layout struct {
	Root       string `json:"root"`
	Binary     string `json:"binary"`
	ConfigDir  string `json:"config_dir"`
	ConfigFile string `json:"config_file"`
	StateDir   string `json:"state_dir"`
	PluginDir  string `json:"plugin_dir"`
	Manifest   string `json:"manifest"`
	Unit       string `json:"unit"`
	VendorPub  string `json:"vendor_pub"`
	ARISecret  string `json:"ari_secret"`
	OdooSecret string `json:"odoo_secret"`
}

// NewLayout returns the layout under root.
func NewLayout(root string) Layout {
	j := func(p string) string { return filepath.Join(root, p) }
	stateDir := j(config.DefaultStateDir)
	return Layout{
		Root:       root,
		Binary:     j("/usr/local/bin/switchboard"),
		ConfigDir:  filepath.Dir(j(config.DefaultPath)),
		ConfigFile: j(config.DefaultPath),
		StateDir:   stateDir,
		PluginDir:  filepath.Join(stateDir, "plugins"),
		Manifest:   filepath.Join(stateDir, host.ManifestFileName),
		Unit:       j(filepath.Join("/etc/systemd/system", UnitName)),
		VendorPub:  filepath.Join(stateDir, "vendor.pub"),
		ARISecret:  filepath.Join(stateDir, "ari.secret"),
		OdooSecret: filepath.Join(stateDir, "odoo.secret"),
	}
}

// Activation says how the install was activated.
type Activation struct {
	// State is planned (dry run), activated, already-activated or queued
	// (registry unreachable: the activation waits in the agent's outbox).
	State       string `json:"state"`
	InstallID   string `json:"install_id,omitempty"`
	LicenceID   string `json:"licence_id,omitempty"`
	PartnerCode string `json:"partner_code,omitempty"` // the code inside the licence
	Tier        string `json:"tier,omitempty"`
	PartnerName string `json:"partner_name,omitempty"`
	Note        string `json:"note,omitempty"`
	OutboxSeq   uint64 `json:"outbox_seq,omitempty"`
}

// Command is a host command the install ran or, under --root or without
// systemd, would run.
type Command struct {
	Command string `json:"command"`
	Ran     bool   `json:"ran"`
	Why     string `json:"why,omitempty"` // why it was not run
}

// Report is everything an install did or would do.
type Report struct {
	Root       string     `json:"root"`
	DryRun     bool       `json:"dry_run"`
	Registry   string     `json:"registry"`
	Code       CodeChoice `json:"partner_code"`
	Host       *Host      `json:"host"`
	Layout     Layout     `json:"layout"`
	Activation Activation `json:"activation"`
	Steps      []*Step    `json:"steps"`
	Commands   []Command  `json:"commands,omitempty"`
	// Notes are what people should do or know (lines to add to ari.conf,
	// credentials still missing, a registry that could not be reached).
	Notes []string `json:"notes,omitempty"`
}

// Installation is a prepared install: the plan and its report.
type Installation struct {
	Report *Report
	plan   *Plan
	opts   Options
	reg    *registryClient
	layout Layout
}

func (o *Options) defaults() error {
	if o.Root == "" {
		o.Root = "/"
	}
	abs, err := filepath.Abs(o.Root)
	if err != nil {
		return fmt.Errorf("--root %s: %w", o.Root, err)
	}
	o.Root = abs
	if o.Runner == nil {
		o.Runner = ExecRunner{}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Root == "/" {
		o.live = true
	}
	if o.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find the switchboard binary to install: %w", err)
		}
		o.Executable = exe
	}
	return nil
}

// Prepare detects the host and plans the install without changing
// anything. Run the plan with Execute, or print it for a dry run.
func Prepare(ctx context.Context, opts Options) (*Installation, error) {
	if err := opts.defaults(); err != nil {
		return nil, err
	}
	lay := NewLayout(opts.Root)
	h, err := Detect(ctx, opts.Root, opts.live, opts.Runner)
	if err != nil {
		return nil, err
	}
	rep := &Report{Root: opts.Root, DryRun: opts.DryRun, Code: opts.Code, Host: h, Layout: lay}
	in := &Installation{Report: rep, plan: &Plan{}, opts: opts, layout: lay}

	// The registry: the flag, or the one an earlier install reports to.
	regURL := opts.RegistryURL
	if regURL == "" {
		if c, err := readAgentConfig(lay.ConfigFile); err == nil {
			regURL = c.Registry.URL
		}
	}
	if regURL == "" {
		return nil, errors.New("no registry: pass --registry https://… (the download page's command has it)")
	}
	if rep.Registry, err = normaliseRegistryURL(regURL); err != nil {
		return nil, err
	}
	in.reg = &registryClient{base: rep.Registry, http: opts.HTTPClient, now: opts.Now}

	b := &builder{in: in, h: h, lay: lay, opts: opts}
	if err := b.build(); err != nil {
		return nil, err
	}
	rep.Steps = in.plan.Steps
	return in, nil
}

// Execute runs the plan. On failure every change is rolled back and the
// error is a *StepError (wrapping *UnknownCodeError when the registry
// refused the code).
func (in *Installation) Execute(ctx context.Context) error {
	if in.opts.DryRun {
		return errors.New("a dry run makes no changes: run without --dry-run to install")
	}
	return in.plan.Execute(ctx)
}

func readAgentConfig(path string) (*config.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return config.Parse(path, data)
}

// builder assembles the steps.
type builder struct {
	in   *Installation
	h    *Host
	lay  Layout
	opts Options

	key     ed25519.PrivateKey
	exeData []byte
	exeSum  string
	binary  string // the binary the unit and manifest run

	ariSettings  map[string]string
	odooSettings map[string]string
}

func (b *builder) rep() *Report { return b.in.Report }

func (b *builder) note(format string, args ...any) {
	b.rep().Notes = append(b.rep().Notes, fmt.Sprintf(format, args...))
}

func (b *builder) add(s *Step) { b.in.plan.add(s) }

func (b *builder) build() error {
	if err := b.binaryStep(); err != nil {
		return err
	}
	b.dirsStep()
	if err := b.keyStep(); err != nil {
		return err
	}
	if err := b.activationStep(); err != nil {
		return err
	}
	b.dropDeactivationStep()
	b.vendorKeysStep()
	b.add(b.binaryCopy())
	if err := b.asterisk(); err != nil {
		return err
	}
	if err := b.odoo(); err != nil {
		return err
	}
	if err := b.secretsStep(); err != nil {
		return err
	}
	if err := b.configStep(); err != nil {
		return err
	}
	if err := b.manifestStep(); err != nil {
		return err
	}
	b.unitStep()
	b.serviceStep()
	return nil
}

// --- binary ------------------------------------------------------------------

func (b *builder) binaryStep() error {
	exe, err := filepath.Abs(b.opts.Executable)
	if err != nil {
		return err
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	b.exeData, err = os.ReadFile(exe)
	if err != nil {
		return fmt.Errorf("read the switchboard binary %s: %w", exe, err)
	}
	sum := sha256.Sum256(b.exeData)
	b.exeSum = hex.EncodeToString(sum[:])
	b.binary = b.lay.Binary
	// A package already put the binary in place: run it from there.
	for _, p := range []string{filepath.Join(b.lay.Root, "/usr/bin/switchboard"), b.lay.Binary} {
		if exe == p {
			b.binary = p
			b.exeData = nil
		}
	}
	b.rep().Layout.Binary = b.binary
	return nil
}

func (b *builder) binaryCopy() *Step {
	if b.exeData == nil {
		return &Step{Name: "binary", Summary: "the switchboard binary is already at " + b.binary,
			do: func(_ context.Context, s *Step) error { s.Status = StatusUnchanged; return nil }}
	}
	dir := &dirEnsure{path: filepath.Dir(b.binary), mode: 0o755}
	w := &fileWrite{path: b.binary, data: b.exeData, mode: 0o755}
	s := writeStep("binary", "install the switchboard binary (the agent and its built-in plugins)", w)
	do := s.do
	s.do = func(ctx context.Context, s *Step) error {
		if _, err := dir.apply(); err != nil {
			return err
		}
		return do(ctx, s)
	}
	undo := s.undo
	s.undo = func(ctx context.Context) error { return errors.Join(undo(ctx), dir.revert()) }
	return s
}

// --- directories -------------------------------------------------------------

func (b *builder) dirsStep() {
	dirs := []*dirEnsure{
		{path: b.lay.ConfigDir, mode: 0o755},
		{path: b.lay.StateDir, mode: 0o700},
		{path: b.lay.PluginDir, mode: 0o700},
	}
	s := &Step{Name: "directories", Summary: "create the configuration and state directories"}
	for _, d := range dirs {
		s.Changes = append(s.Changes, fmt.Sprintf("directory %s (mode %04o)", d.path, d.mode))
	}
	s.do = func(_ context.Context, s *Step) error {
		changed := false
		for _, d := range dirs {
			ch, err := d.apply()
			if err != nil {
				return err
			}
			changed = changed || ch
		}
		if !changed {
			s.Status = StatusUnchanged
		}
		return nil
	}
	s.undo = func(context.Context) error {
		var errs []error
		for i := len(dirs) - 1; i >= 0; i-- {
			errs = append(errs, dirs[i].revert())
		}
		return errors.Join(errs...)
	}
	b.add(s)
}

// --- install key -------------------------------------------------------------

func (b *builder) keyStep() error {
	path := filepath.Join(b.lay.StateDir, state.KeyFile)
	st, err := readState(path)
	if err != nil {
		return fmt.Errorf("install key: %w", err)
	}
	if st.exists {
		// ParseKey, not LoadKey: LoadKey fixes modes, and a dry run must not.
		key, err := state.ParseKey(path, st.data)
		if err != nil {
			return err
		}
		b.key = key
		w := &fileWrite{path: path, data: st.data, mode: 0o600}
		s := writeStep("install-key", "keep the existing install key (the install keeps its id)", w)
		s.Changes = nil
		if st.mode != 0o600 {
			s.Changes = []string{fmt.Sprintf("tighten %s from mode %04o to 0600", path, st.mode)}
		}
		b.add(s)
		return nil
	}
	if err := (&state.Dir{Path: b.lay.StateDir}).CheckKeyNotLost(); err != nil {
		return err
	}
	key, data, err := state.NewKey()
	if err != nil {
		return err
	}
	b.key = key
	b.add(writeStep("install-key", "generate the install's Ed25519 key (its identity with the registry)",
		&fileWrite{path: path, data: data, mode: 0o600}))
	return nil
}

// --- activation --------------------------------------------------------------

func (b *builder) facts() api.Facts {
	// Facts come from files anyone may have edited; the registry refuses an
	// activation whose facts are not short single-line text, so every one
	// is cleaned (hostfacts does it for the host's own).
	f := api.Facts{OS: runtime.GOOS + "/" + runtime.GOARCH, AgentVersion: hostfacts.Clean(buildinfo.Get().Version)}
	root := b.lay.Root
	if b.opts.live {
		f.Hostname = hostfacts.LiveHostname()
	} else {
		f.Hostname = hostfacts.Hostname(root)
	}
	f.MachineID = hostfacts.MachineID(root)
	if name := hostfacts.OSRelease(root); name != "" {
		f.OS = name
	}
	if a := b.h.Asterisk; a != nil {
		f.Products = append(f.Products, api.Product{Name: "asterisk", Version: hostfacts.Clean(a.Version), Distribution: a.Distribution})
	}
	if b.h.Odoo != nil {
		f.Products = append(f.Products, api.Product{Name: "odoo"})
	}
	return f
}

func (b *builder) activationStep() error {
	// An earlier `switchboard uninstall` deactivated this install but kept
	// its key: activating again with that key brings the same install back
	// at the registry (same id, same partner link).
	var reactivate *fileRemove
	if _, err := os.Stat(filepath.Join(b.lay.StateDir, DeactivatedFile)); err == nil {
		reactivate = &fileRemove{path: filepath.Join(b.lay.StateDir, DeactivatedFile)}
	}
	dir := &state.Dir{Path: b.lay.StateDir}
	act := &b.rep().Activation
	code := b.opts.Code.Code.String()

	inst, activated, err := dir.LoadInstall()
	if err != nil {
		return err
	}
	armoured, hasLicence, err := dir.LoadLicence()
	if err != nil {
		return err
	}
	if activated && hasLicence && reactivate == nil {
		act.State, act.InstallID = "already-activated", inst.InstallID
		if keys, err := licensing.LoadPublicKeys(b.lay.VendorPub); err != nil {
			b.note("the licence could not be checked: %v", err)
		} else if l, _, err := licensing.NewKeyring(keys...).Verify([]byte(armoured), inst.InstallID, b.opts.Now()); err != nil {
			b.note("the licence of install %s does not verify: %v (the agent asks the registry for a new one)", inst.InstallID, err)
		} else {
			act.LicenceID, act.PartnerCode, act.Tier = l.ID, l.PartnerCode, string(l.Tier)
		}
		if inst.Partner != nil {
			act.PartnerName = inst.Partner.Name
		}
		switch {
		case code == "" || code == act.PartnerCode:
		case act.PartnerCode != "":
			b.note("this install is already linked to partner %s; a link is permanent (only vendor staff can move it), so code %s (%s) was not used", act.PartnerCode, code, b.opts.Code.Describe())
		default:
			b.note("this install is not linked to a partner yet: once the agent runs, link it with `switchboard partner set %s`", code)
		}
		b.add(&Step{Name: "activation", Summary: "the install is already activated as " + inst.InstallID,
			do: func(_ context.Context, s *Step) error { s.Status = StatusUnchanged; return nil }})
		return nil
	}

	act.State = "planned"
	req := api.ActivationRequest{PublicKey: b.key.Public().(ed25519.PublicKey), PartnerCode: code, Facts: b.facts()}
	var pinned []licensing.PublicKey
	if b.opts.VendorKeysFile != "" {
		if pinned, err = licensing.LoadPublicKeys(b.opts.VendorKeysFile); err != nil {
			return fmt.Errorf("--vendor-keys: %w", err)
		}
	}
	withCode := "without a partner code"
	if code != "" {
		withCode = "with partner code " + code
	}
	s := &Step{Name: "activation", Summary: "activate with the registry " + withCode,
		Changes: []string{
			"POST " + b.rep().Registry + api.PathActivations + " signed with the install key",
			"write " + filepath.Join(b.lay.StateDir, state.InstallFile) + ", " + filepath.Join(b.lay.StateDir, state.LicenceFile) + " and " + b.lay.VendorPub,
			"or, when the registry cannot be reached, queue the activation in " + filepath.Join(b.lay.StateDir, state.OutboxFile),
		}}
	if reactivate != nil {
		s.Summary = "reactivate the install the last uninstall deactivated, " + withCode
		s.Changes = append(s.Changes, "remove "+reactivate.path)
	}
	var writes []*fileWrite
	var created bool
	var installID string
	var ob *outboxAppend
	s.do = func(ctx context.Context, s *Step) error {
		resp, isNew, err := b.in.reg.activate(ctx, b.key, req)
		if isUnavailable(err) {
			ob = &outboxAppend{path: filepath.Join(b.lay.StateDir, state.OutboxFile), req: req}
			seq, err2 := ob.apply()
			if err2 != nil {
				return fmt.Errorf("%v; and queueing the activation in the outbox failed: %w", err, err2)
			}
			if reactivate != nil {
				if _, err := reactivate.apply(); err != nil {
					return err
				}
			}
			act.State, act.OutboxSeq = "queued", seq
			act.Note = err.Error()
			b.note("the registry could not be reached (%v): the activation waits in the agent's outbox and is sent when the agent starts and the registry answers; `switchboard status` shows when it went through", err)
			s.Detail = "queued in the outbox"
			return nil
		}
		if err != nil {
			return err
		}
		created, installID = isNew, resp.InstallID
		keys, pemText := pinned, ""
		if keys == nil {
			if keys, pemText, err = b.in.reg.keys(ctx); err != nil {
				return err
			}
		} else {
			data, err := os.ReadFile(b.opts.VendorKeysFile)
			if err != nil {
				return err
			}
			pemText = string(data)
		}
		l, _, err := licensing.NewKeyring(keys...).Verify([]byte(resp.Licence), resp.InstallID, b.opts.Now())
		if err != nil {
			return fmt.Errorf("the licence the registry sent does not verify with the vendor keys: %w", err)
		}
		if resp.Partner != nil && l.PartnerCode != resp.Partner.Code {
			return fmt.Errorf("the licence carries partner code %q but the registry says the install is linked to %s: refusing it", l.PartnerCode, resp.Partner.Code)
		}
		if code != "" && resp.Partner != nil && resp.Partner.Code != code {
			return fmt.Errorf("asked to link to %s but the registry linked the install to %s", code, resp.Partner.Code)
		}
		if code != "" && resp.Partner == nil {
			b.note("the registry activated the install but did not link it to %s: %s", code, resp.LinkNote)
		}
		// Stored within the agent's bounds, or the agent refuses install.json.
		interval := resp.HeartbeatIntervalSeconds
		if interval > 0 {
			if iv, ok := state.ClampHeartbeatInterval(interval); !ok {
				b.note("the registry named a heartbeat interval of %d s, outside the agent's bounds; %s is used", interval, iv)
				interval = int(iv / time.Second)
			}
		}
		rec := state.Install{InstallID: resp.InstallID, ActivatedAt: b.opts.Now().UTC(),
			HeartbeatIntervalSeconds: interval, Partner: resp.Partner, LinkNote: resp.LinkNote}
		recJSON, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return err
		}
		writes = []*fileWrite{
			{path: b.lay.VendorPub, data: []byte(pemText), mode: 0o644},
			{path: filepath.Join(b.lay.StateDir, state.LicenceFile), data: []byte(strings.TrimSpace(resp.Licence) + "\n"), mode: 0o644},
			{path: filepath.Join(b.lay.StateDir, state.InstallFile), data: append(recJSON, '\n'), mode: 0o600},
		}
		for _, w := range writes {
			if _, err := w.apply(); err != nil {
				return err
			}
		}
		// The agent reads vendor.pub with licensing.LoadPublicKeys: make
		// sure what was written is what it will read.
		if _, err := licensing.LoadPublicKeys(b.lay.VendorPub); err != nil {
			return fmt.Errorf("the vendor keys written to %s cannot be read back: %w", b.lay.VendorPub, err)
		}
		if reactivate != nil {
			if _, err := reactivate.apply(); err != nil {
				return err
			}
		}
		act.State, act.InstallID, act.LicenceID = "activated", resp.InstallID, l.ID
		act.PartnerCode, act.Tier, act.Note = l.PartnerCode, string(l.Tier), resp.LinkNote
		if resp.Partner != nil {
			act.PartnerName = resp.Partner.Name
		}
		s.Detail = "install " + resp.InstallID
		return nil
	}
	s.undo = func(ctx context.Context) error {
		var errs []error
		for i := len(writes) - 1; i >= 0; i-- {
			errs = append(errs, writes[i].revert())
		}
		if ob != nil {
			errs = append(errs, ob.revert())
		}
		if reactivate != nil {
			errs = append(errs, reactivate.revert())
		}
		// The key of a new install is removed by the key step's undo; tell
		// the registry so it does not wait for heartbeats from it.
		if created && installID != "" {
			if err := b.in.reg.deactivate(ctx, b.key, installID, "installer rolled back"); err != nil {
				b.note("the install %s created at the registry could not be marked deactivated after the rollback: %v", installID, err)
			}
			created = false
		}
		if act.State != "planned" {
			*act = Activation{State: "rolled-back"}
		}
		return errors.Join(errs...)
	}
	b.add(s)
	return nil
}

// vendorKeysStep makes sure the agent has the vendor's public keys to
// verify licences with, when the activation did not write them (it was
// queued, or an earlier install lost the file).
func (b *builder) vendorKeysStep() {
	w := &fileWrite{path: b.lay.VendorPub, mode: 0o644}
	s := &Step{Name: "vendor-keys", Summary: "store the vendor's public licence keys for the agent",
		Changes: []string{"write " + b.lay.VendorPub + " when missing (from --vendor-keys or the registry's " + api.PathKeys + ")"}}
	s.do = func(ctx context.Context, s *Step) error {
		if _, err := os.Stat(w.path); err == nil {
			s.Status = StatusUnchanged
			return nil
		}
		var text string
		if b.opts.VendorKeysFile != "" {
			data, err := os.ReadFile(b.opts.VendorKeysFile)
			if err != nil {
				return fmt.Errorf("--vendor-keys: %w", err)
			}
			text = string(data)
		} else {
			_, pemText, err := b.in.reg.keys(ctx)
			if isUnavailable(err) {
				s.Status, s.Detail = StatusUnchanged, "registry unreachable"
				b.note("the vendor keys could not be fetched, so the agent cannot verify the licence it receives until %s exists: re-run the installer once the registry answers, or pass --vendor-keys FILE", w.path)
				return nil
			}
			if err != nil {
				return err
			}
			text = pemText
		}
		w.data = []byte(text)
		if _, err := w.apply(); err != nil {
			return err
		}
		if _, err := licensing.LoadPublicKeys(w.path); err != nil {
			return fmt.Errorf("vendor keys in %s: %w", w.path, err)
		}
		return nil
	}
	s.undo = func(context.Context) error { return w.revert() }
	b.add(s)
}

// dropDeactivationStep removes from the outbox a deactivation an earlier
// uninstall could not deliver: the server is being installed again, and
// the agent must not deactivate the install it is about to run.
func (b *builder) dropDeactivationStep() {
	marker := filepath.Join(b.lay.StateDir, PendingDeactivationFile)
	if _, err := os.Stat(marker); err != nil {
		return
	}
	obPath := filepath.Join(b.lay.StateDir, state.OutboxFile)
	var before fileState
	rm := &fileRemove{path: marker}
	touched := false
	s := &Step{Name: "drop-deactivation", Summary: "drop the deactivation an earlier uninstall left in the outbox",
		Changes: []string{"remove the deactivation records from " + obPath, "remove " + marker}}
	s.do = func(_ context.Context, s *Step) error {
		st, err := readState(obPath)
		if err != nil {
			return err
		}
		before, touched = st, true
		if st.exists {
			ob, err := outbox.Open(obPath, outbox.Options{})
			if err != nil {
				return err
			}
			recs, err := ob.Pending(0)
			if err == nil {
				for _, r := range recs {
					if r.Kind == outbox.KindDeactivation {
						if err = ob.Ack(r.Seq); err != nil {
							break
						}
					}
				}
			}
			if cerr := ob.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("drop the queued deactivation: %w", err)
			}
		}
		_, err = rm.apply()
		return err
	}
	s.undo = func(context.Context) error {
		if !touched {
			return nil
		}
		touched = false
		return errors.Join(rm.revert(), before.restore(obPath))
	}
	b.add(s)
}

// outboxAppend queues an activation in the agent's outbox, keeping a copy
// of the outbox file so undo puts back exactly the bytes it found.
type outboxAppend struct {
	path   string
	req    api.ActivationRequest
	before fileState
	done   bool
}

func (o *outboxAppend) apply() (uint64, error) {
	st, err := readState(o.path)
	if err != nil {
		return 0, err
	}
	o.before = st
	o.done = true
	ob, err := outbox.Open(o.path, outbox.Options{})
	if err != nil {
		return 0, err
	}
	defer ob.Close()
	recs, err := ob.Pending(0)
	if err != nil {
		return 0, err
	}
	for _, r := range recs {
		if r.Kind != outbox.KindActivation {
			continue
		}
		var prev api.ActivationRequest
		if json.Unmarshal(r.Body, &prev) == nil && prev.PartnerCode == o.req.PartnerCode && ed25519.PublicKey(prev.PublicKey).Equal(ed25519.PublicKey(o.req.PublicKey)) {
			return r.Seq, nil // the same activation already waits
		}
		// An older activation (another code, or the agent's own without
		// one) was never delivered: this one replaces it.
		if err := ob.Ack(r.Seq); err != nil {
			return 0, err
		}
	}
	seq, err := ob.Append(outbox.KindActivation, o.req)
	if err != nil {
		return 0, fmt.Errorf("queue the activation: %w", err)
	}
	return seq, nil
}

func (o *outboxAppend) revert() error {
	if !o.done {
		return nil
	}
	o.done = false
	if err := o.before.restore(o.path); err != nil {
		return fmt.Errorf("restore the outbox %s: %w", o.path, err)
	}
	return nil
}

// --- secrets, config, manifest, unit -----------------------------------------

func (b *builder) secretsStep() error {
	var writes []*fileWrite
	if b.ariSettings != nil {
		if pw := b.ariSettings["password"]; pw != "" {
			writes = append(writes, &fileWrite{path: b.lay.ARISecret, data: []byte(pw), mode: 0o600})
		}
		delete(b.ariSettings, "password")
	}
	if b.odooSettings != nil {
		if k := b.odooSettings["key"]; k != "" {
			writes = append(writes, &fileWrite{path: b.lay.OdooSecret, data: []byte(k), mode: 0o600})
		}
		delete(b.odooSettings, "key")
	}
	if len(writes) == 0 {
		return nil
	}
	b.add(writeStep("secrets", "store the ARI password and Odoo API key for the agent (mode 0600, never in the config)", writes...))
	return nil
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&sb, `\u%04X`, r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}

func (b *builder) agentConfig() ([]byte, error) {
	var sb strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&sb, format, args...) }
	w("# Switchboard agent configuration, written by `switchboard install`.\n")
	w("# Running the installer again rewrites it; every key is documented in\n")
	w("# `switchboard agent config example`. Check edits with\n")
	w("# `switchboard agent config check %s`, then reload with\n", b.lay.ConfigFile)
	w("# `systemctl reload %s`.\n\n", UnitName)
	w("state_dir = %s\n\n", tomlString(b.lay.StateDir))
	w("[registry]\nurl = %s\n\n", tomlString(b.rep().Registry))
	w("[licence]\npublic_keys = [%s]\n\n", tomlString(b.lay.VendorPub))
	w("[plugins]\ndir = %s\nmanifest = %s\n", tomlString(b.lay.PluginDir), tomlString(b.lay.Manifest))
	section := func(name string, kv map[string]string, order []string) {
		if kv == nil {
			return
		}
		w("\n[plugins.%s]\n", name)
		for _, k := range order {
			if v, ok := kv[k]; ok {
				w("%s = %s\n", k, tomlString(v))
			}
		}
	}
	section("asterisk", b.ariSettings, []string{"ari_url", "ari_user", "ari_password_file", "distribution"})
	section("odoo", b.odooSettings, []string{"url", "db", "user", "api_key_file"})
	data := []byte(sb.String())
	if _, err := config.Parse(b.lay.ConfigFile, data); err != nil {
		return nil, fmt.Errorf("the agent configuration the installer made does not check (a bug; please report it): %w", err)
	}
	return data, nil
}

func (b *builder) configStep() error {
	data, err := b.agentConfig()
	if err != nil {
		return err
	}
	b.add(writeStep("agent-config", "write the agent configuration", &fileWrite{path: b.lay.ConfigFile, data: data, mode: 0o600}))
	return nil
}

func (b *builder) manifestStep() error {
	m := host.NewManifest()
	if old, err := host.LoadManifest(b.lay.Manifest); err == nil {
		m = old // keep third-party plugins someone installed
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%w (move it away to let the installer write a new one)", err)
	}
	want := map[string]bool{"asterisk": b.ariSettings != nil, "odoo": b.odooSettings != nil}
	for _, name := range []string{"asterisk", "odoo"} {
		if !want[name] {
			continue
		}
		if _, ok := builtin.Lookup(name); !ok {
			b.note("this switchboard build has no built-in %s plugin yet, so the manifest does not list one; the agent still reports the install. Re-run the installer with a build that has it", name)
			continue
		}
		e := host.Entry{Name: name, Kind: plugins.KindIntegration, Path: b.binary, SHA256: b.exeSum,
			Args: []string{"plugin", "serve", name}, Version: buildinfo.Get().Version}
		if err := m.Put(e); err != nil {
			return fmt.Errorf("plugin manifest entry %s: %w", name, err)
		}
	}
	if err := m.Validate(); err != nil {
		return err
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	s := writeStep("plugin-manifest", "write the plugin manifest with the SHA-256 of each plugin binary",
		&fileWrite{path: b.lay.Manifest, data: data, mode: 0o600})
	for _, e := range m.Plugins {
		s.Changes = append(s.Changes, fmt.Sprintf("plugin %s: %s %s (sha256 %s)", e.Name, e.Path, strings.Join(e.Args, " "), e.SHA256))
	}
	b.add(s)
	return nil
}

// unitText is the agent's systemd unit. The hardening leaves the agent
// only its state directory to write; KillMode=control-group stops the
// plugin processes with the agent.
func unitText(lay Layout, binary string) string {
	return `# Written by switchboard install; removed by switchboard uninstall.
[Unit]
Description=Switchboard agent: partner link, licence and heartbeats for this server
Documentation=https://github.com/switchboard-dev/switchboard
After=network-online.target asterisk.service odoo.service
Wants=network-online.target

[Service]
Type=simple
ExecStart=` + binary + ` agent run --config ` + lay.ConfigFile + `
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
# The agent flushes its outbox for up to outbox.flush_deadline on stop.
TimeoutStopSec=30s
KillMode=control-group

NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=` + lay.StateDir + `
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectControlGroups=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
UMask=0077

[Install]
WantedBy=multi-user.target
`
}

func (b *builder) unitStep() {
	dir := &dirEnsure{path: filepath.Dir(b.lay.Unit), mode: 0o755}
	w := &fileWrite{path: b.lay.Unit, data: []byte(unitText(b.lay, b.binary)), mode: 0o644}
	s := writeStep("systemd-unit", "write the hardened systemd unit "+UnitName, w)
	do := s.do
	s.do = func(ctx context.Context, s *Step) error {
		if _, err := dir.apply(); err != nil {
			return err
		}
		return do(ctx, s)
	}
	undo := s.undo
	s.undo = func(ctx context.Context) error {
		changed := w.changed
		err := errors.Join(undo(ctx), dir.revert())
		if changed && b.opts.live && b.h.Systemd {
			// systemd still has the unit it read: make it forget.
			_, rerr := b.opts.Runner.Run(ctx, "systemctl", "daemon-reload")
			err = errors.Join(err, rerr)
		}
		return err
	}
	b.add(s)
}

// serviceStep enables and starts the agent onto / with systemd; elsewhere
// it lists the commands that would do it.
func (b *builder) serviceStep() {
	cmds := [][]string{{"systemctl", "daemon-reload"}, {"systemctl", "enable", "--now", UnitName}}
	s := &Step{Name: "service", Summary: "enable and start the agent"}
	for _, c := range cmds {
		s.Changes = append(s.Changes, "run "+strings.Join(c, " "))
	}
	if !b.opts.live || !b.h.Systemd {
		why := "installed under --root " + b.lay.Root
		if b.opts.live {
			why = "systemd is not running on this host"
		}
		s.do = func(_ context.Context, s *Step) error {
			for _, c := range cmds {
				b.rep().Commands = append(b.rep().Commands, Command{Command: strings.Join(c, " "), Why: why})
			}
			s.Status, s.Detail = StatusUnchanged, "not run: "+why
			if !b.opts.live {
				b.note("start the agent of this sandbox with: %s agent run --config %s", b.binary, b.lay.ConfigFile)
			} else {
				b.note("systemd is not running: start the agent with %s agent run --config %s (under your init system)", b.binary, b.lay.ConfigFile)
			}
			return nil
		}
		b.add(s)
		return
	}
	r := b.opts.Runner
	var enabledBefore, activeBefore, ran bool
	s.do = func(ctx context.Context, s *Step) error {
		_, err := r.Run(ctx, "systemctl", "is-enabled", "--quiet", UnitName)
		enabledBefore = err == nil
		_, err = r.Run(ctx, "systemctl", "is-active", "--quiet", UnitName)
		activeBefore = err == nil
		changed := false
		for _, st := range b.in.plan.Steps {
			if st != s && st.Status == StatusDone {
				changed = true
			}
		}
		run := cmds
		if activeBefore && changed {
			run = append(run, []string{"systemctl", "restart", UnitName})
		}
		if enabledBefore && activeBefore && !changed {
			s.Status, s.Detail = StatusUnchanged, "already enabled and running"
			return nil
		}
		for _, c := range run {
			ran = true
			b.rep().Commands = append(b.rep().Commands, Command{Command: strings.Join(c, " "), Ran: true})
			if _, err := r.Run(ctx, c[0], c[1:]...); err != nil {
				return err
			}
		}
		return nil
	}
	s.undo = func(ctx context.Context) error {
		if !ran {
			return nil
		}
		var errs []error
		if !enabledBefore {
			_, err := r.Run(ctx, "systemctl", "disable", UnitName)
			errs = append(errs, err)
		}
		if !activeBefore {
			_, err := r.Run(ctx, "systemctl", "stop", UnitName)
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	b.add(s)
}
