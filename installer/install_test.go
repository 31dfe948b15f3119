package installer

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry/api"
)

var allRoots = []string{"plain-asterisk", "freepbx", "issabel", "vitalpbx", "odoo", "empty"}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// checkInstalled verifies what every install must leave behind.
func checkInstalled(t *testing.T, root string, rep *Report, reg *fakeRegistry, code string) {
	t.Helper()
	lay := NewLayout(root)
	if m := mode(t, lay.StateDir); m != 0o700 {
		t.Errorf("state dir mode %04o", m)
	}
	key := filepath.Join(lay.StateDir, state.KeyFile)
	if m := mode(t, key); m != 0o600 {
		t.Errorf("install key mode %04o", m)
	}
	if _, err := state.LoadKey(key); err != nil {
		t.Errorf("the agent cannot read the install key: %v", err)
	}
	cfg, err := config.Load(lay.ConfigFile)
	if err != nil {
		t.Fatalf("agent config does not load: %v", err)
	}
	if cfg.StateDir != lay.StateDir || cfg.Registry.URL != reg.srv.URL {
		t.Errorf("config state_dir %s registry %s", cfg.StateDir, cfg.Registry.URL)
	}
	if _, err := host.LoadManifest(lay.Manifest); err != nil {
		t.Errorf("plugin manifest: %v", err)
	}
	unit := readFile(t, lay.Unit)
	for _, want := range []string{"NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=" + lay.StateDir,
		"PrivateTmp=yes", "KillMode=control-group", "Restart=on-failure", "ExecStart=" + lay.Binary + " agent run --config " + lay.ConfigFile} {
		if !strings.Contains(unit, want+"\n") {
			t.Errorf("unit lacks %q", want)
		}
	}
	// The agent's own view: install record and a licence that verifies.
	d := &state.Dir{Path: lay.StateDir}
	inst, ok, err := d.LoadInstall()
	if err != nil || !ok || inst.InstallID == "" {
		t.Fatalf("install record: %v %v %+v", ok, err, inst)
	}
	arm, ok, err := d.LoadLicence()
	if err != nil || !ok {
		t.Fatalf("licence: %v %v", ok, err)
	}
	keys, err := licensing.LoadPublicKeys(lay.VendorPub)
	if err != nil {
		t.Fatal(err)
	}
	l, _, err := licensing.NewKeyring(keys...).Verify([]byte(arm), inst.InstallID, time.Now())
	if err != nil {
		t.Fatalf("licence does not verify: %v", err)
	}
	if l.PartnerCode != code || rep.Activation.PartnerCode != code || rep.Activation.State != "activated" {
		t.Errorf("licence code %q, report %+v, want %q", l.PartnerCode, rep.Activation, code)
	}
}

func TestInstallEachRoot(t *testing.T) {
	for _, name := range allRoots {
		t.Run(name, func(t *testing.T) {
			code := testCode(t)
			reg := newFakeRegistry(t, code.String())
			root := copyRoot(t, name)
			opts := installOpts(t, root, reg.srv.URL)
			opts.Code = CodeChoice{Code: code, Source: SourceFlag}
			opts.ConfigureARI = name != "odoo" && name != "empty"
			rep := mustInstall(t, opts)
			checkInstalled(t, root, rep, reg, code.String())
			cfg, _ := config.Load(NewLayout(root).ConfigFile)
			ast, hasAst := cfg.Plugins.Settings["asterisk"]
			_, hasOdoo := cfg.Plugins.Settings["odoo"]
			if hasAst != opts.ConfigureARI || hasOdoo != (name == "odoo") {
				t.Errorf("plugin settings %v", cfg.Plugins.Settings)
			}
			if hasAst {
				pw := readFile(t, ast["ari_password_file"])
				if len(pw) < 20 || mode(t, ast["ari_password_file"]) != 0o600 {
					t.Errorf("ARI secret %q mode %04o", pw, mode(t, ast["ari_password_file"]))
				}
				// The password in the secret is the one given to Asterisk.
				h, err := Detect(context.Background(), root, false, &fakeRunner{})
				if err != nil {
					t.Fatal(err)
				}
				u, ok := h.Asterisk.ARI.user(DefaultARIUser)
				if !ok || u.password != pw || u.PasswordFormat != "plain" || u.ReadOnly {
					t.Errorf("ARI user after install: %+v found %v", u, ok)
				}
				if !h.Asterisk.ARI.Enabled || !h.Asterisk.HTTP.Enabled {
					t.Errorf("ARI/HTTP still off after --configure-ari: %v %v", h.Asterisk.ARI.Enabled, h.Asterisk.HTTP.Enabled)
				}
			}
		})
	}
}

// The FreePBX way: the user goes to ari_additional_custom.conf, the
// generated files stay untouched, the edited file is backed up.
func TestConfigureARIFreePBXWay(t *testing.T) {
	reg := newFakeRegistry(t)
	root := copyRoot(t, "freepbx")
	before := snapshot(t, root)
	opts := installOpts(t, root, reg.srv.URL)
	opts.ConfigureARI = true
	now := time.Now().UTC().Truncate(time.Second)
	opts.Now = func() time.Time { return now }
	rep := mustInstall(t, opts)
	after := snapshot(t, root)
	for _, f := range []string{"ari.conf", "ari_additional.conf", "ari_general_additional.conf", "http.conf", "http_additional.conf"} {
		p := filepath.Join("etc/asterisk", f)
		if before[p] != after[p] {
			t.Errorf("%s was changed; FreePBX generates it", f)
		}
	}
	custom := after["etc/asterisk/ari_additional_custom.conf"].data
	if !strings.Contains(custom, "[switchboard]\ntype = user\n") {
		t.Errorf("custom file:\n%s", custom)
	}
	if _, ok := after["etc/asterisk/ari_additional_custom.conf.switchboard-bak-"+now.Format("20060102T150405Z")]; !ok {
		t.Error("no backup of ari_additional_custom.conf")
	}
	if len(rep.Commands) == 0 || rep.Commands[0].Command != "asterisk -rx 'module reload res_ari.so'" || rep.Commands[0].Ran {
		t.Errorf("reload not recorded as a command not run under --root: %+v", rep.Commands)
	}
}

func TestConfigureARIPlainEnablesHTTPAndARI(t *testing.T) {
	reg := newFakeRegistry(t)
	root := copyRoot(t, "vitalpbx")
	opts := installOpts(t, root, reg.srv.URL)
	opts.ConfigureARI = true
	mustInstall(t, opts)
	httpConf := readFile(t, filepath.Join(root, "etc/asterisk/http.conf"))
	ariConf := readFile(t, filepath.Join(root, "etc/asterisk/ari.conf"))
	if !strings.Contains(httpConf, "enabled = yes ; set by switchboard install") || strings.Contains(httpConf, "enabled=no") {
		t.Errorf("http.conf:\n%s", httpConf)
	}
	if !strings.Contains(ariConf, "[general]\nenabled = yes ; set by switchboard install") || !strings.Contains(ariConf, "[switchboard]") {
		t.Errorf("ari.conf:\n%s", ariConf)
	}
	baks, _ := filepath.Glob(filepath.Join(root, "etc/asterisk/*.switchboard-bak-*"))
	if len(baks) != 2 {
		t.Errorf("backups: %v", baks)
	}
}

func TestWithoutConfigureARIPrintsLines(t *testing.T) {
	reg := newFakeRegistry(t)
	root := copyRoot(t, "plain-asterisk")
	before := snapshot(t, root)
	rep := mustInstall(t, installOpts(t, root, reg.srv.URL))
	after := snapshot(t, root)
	if before["etc/asterisk/ari.conf"] != after["etc/asterisk/ari.conf"] {
		t.Error("ari.conf changed without --configure-ari")
	}
	notes := strings.Join(rep.Notes, "\n")
	pw := readFile(t, NewLayout(root).ARISecret)
	for _, want := range []string{"add to /etc/asterisk/ari.conf:", "[switchboard]", "password = " + pw, "module reload res_ari.so"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	for _, name := range allRoots {
		t.Run(name, func(t *testing.T) {
			reg := newFakeRegistry(t)
			root := copyRoot(t, name)
			before := snapshot(t, root)
			opts := installOpts(t, root, reg.srv.URL)
			opts.DryRun, opts.ConfigureARI = true, name != "odoo" && name != "empty"
			in, err := Prepare(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Execute(context.Background()); err == nil {
				t.Error("Execute of a dry run did not refuse")
			}
			sameTree(t, "after a dry run", before, snapshot(t, root))
			if len(in.Report.Steps) < 8 {
				t.Errorf("dry run lists %d steps", len(in.Report.Steps))
			}
			for _, s := range in.Report.Steps {
				if s.Status != StatusPlanned {
					t.Errorf("step %s is %s in a dry run", s.Name, s.Status)
				}
			}
		})
	}
}

func TestIdempotent(t *testing.T) {
	for _, name := range []string{"freepbx", "odoo"} {
		t.Run(name, func(t *testing.T) {
			code := testCode(t)
			reg := newFakeRegistry(t, code.String())
			root := copyRoot(t, name)
			opts := installOpts(t, root, reg.srv.URL)
			opts.Code = CodeChoice{Code: code, Source: SourceFlag}
			opts.ConfigureARI = name == "freepbx"
			opts.OdooUser, opts.OdooKey = "admin", "k3y"
			if name != "odoo" {
				opts.OdooUser, opts.OdooKey = "", ""
			}
			first := mustInstall(t, opts)
			after1 := snapshot(t, root)
			// The same command again, and once more without the flags.
			second := mustInstall(t, opts)
			sameTree(t, "second run", after1, snapshot(t, root))
			bare := opts
			bare.ConfigureARI, bare.OdooUser, bare.OdooKey, bare.RegistryURL = false, "", "", ""
			third := mustInstall(t, bare)
			sameTree(t, "run without flags", after1, snapshot(t, root))
			for _, rep := range []*Report{second, third} {
				if rep.Activation.InstallID != first.Activation.InstallID || rep.Activation.State != "already-activated" {
					t.Errorf("activation %+v, first was %+v", rep.Activation, first.Activation)
				}
				for _, s := range rep.Steps {
					if s.Status != StatusUnchanged {
						t.Errorf("step %s is %s on a re-run", s.Name, s.Status)
					}
				}
			}
		})
	}
}

// stepNames lists the steps of an install plan for these options.
func stepNames(t *testing.T, opts Options) []string {
	t.Helper()
	o := opts
	o.DryRun = true
	in, err := Prepare(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range in.Report.Steps {
		names = append(names, s.Name)
	}
	return names
}

// TestRollbackEachStep fails each step in turn (after it made its change)
// and checks that the root is byte for byte, mode for mode, what it was.
func TestRollbackEachStep(t *testing.T) {
	cases := []struct {
		name, root string
		online     bool
		live       bool
	}{
		{"freepbx-online", "freepbx", true, false},
		{"vitalpbx-offline", "vitalpbx", false, false},
		{"odoo-online", "odoo", true, false},
		{"plain-live-systemd", "plain-asterisk", true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := testCode(t)
			reg := newFakeRegistry(t, code.String())
			url := reg.srv.URL
			if !tc.online {
				url = unreachableURL(t)
			}
			template := copyRoot(t, tc.root)
			if tc.live {
				// A host with systemd: commands go to the fake runner.
				if err := os.MkdirAll(filepath.Join(template, "run/systemd/system"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			base := installOpts(t, template, url)
			base.Code = CodeChoice{Code: code, Source: SourceFlag}
			base.ConfigureARI = tc.root != "odoo"
			base.OdooUser, base.OdooKey = "admin", "secret-key"
			if tc.root != "odoo" {
				base.OdooUser, base.OdooKey = "", ""
			}
			base.live = tc.live
			base.Runner = &fakeRunner{}
			names := stepNames(t, base)
			for _, step := range names {
				t.Run(step, func(t *testing.T) {
					root := copyRoot(t, tc.root)
					if tc.live {
						_ = os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755)
					}
					before := snapshot(t, root)
					runner := &fakeRunner{}
					opts := base
					opts.Root, opts.Runner = root, runner
					in, err := Prepare(context.Background(), opts)
					if err != nil {
						t.Fatal(err)
					}
					injected := errors.New("injected failure")
					in.plan.afterStep = func(name string) error {
						if name == step {
							return injected
						}
						return nil
					}
					err = in.Execute(context.Background())
					var se *StepError
					if !errors.As(err, &se) || se.Step != step || !errors.Is(err, injected) || len(se.RollbackErrs) > 0 {
						t.Fatalf("got %v", err)
					}
					sameTree(t, "after rollback of "+step, before, snapshot(t, root))
					cmds := strings.Join(runner.commands(), "\n")
					if step == "service" && tc.live {
						for _, want := range []string{"systemctl enable --now " + UnitName, "systemctl disable " + UnitName, "systemctl stop " + UnitName, "systemctl daemon-reload"} {
							if !strings.Contains(cmds, want) {
								t.Errorf("commands lack %q:\n%s", want, cmds)
							}
						}
					}
					if step == "ari-config" && tc.live && strings.Count(cmds, "module reload res_ari.so") != 2 {
						t.Errorf("Asterisk not reloaded after the edit and after its undo:\n%s", cmds)
					}
				})
			}
			if tc.online && len(reg.deactivated()) == 0 {
				t.Error("rolled-back activations were never deactivated at the registry")
			}
		})
	}
}

func TestUnknownCodeChangesNothing(t *testing.T) {
	reg := newFakeRegistry(t) // knows no partner
	root := copyRoot(t, "freepbx")
	before := snapshot(t, root)
	opts := installOpts(t, root, reg.srv.URL)
	opts.Code = CodeChoice{Code: testCode(t), Source: SourceEnv}
	opts.ConfigureARI = true
	in, err := Prepare(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	err = in.Execute(context.Background())
	var uc *UnknownCodeError
	if !errors.As(err, &uc) || uc.Code != opts.Code.Code.String() {
		t.Fatalf("got %v", err)
	}
	sameTree(t, "after an unknown code", before, snapshot(t, root))
}

func TestRegistryUnreachableQueuesActivation(t *testing.T) {
	root := copyRoot(t, "plain-asterisk")
	code := testCode(t)
	opts := installOpts(t, root, unreachableURL(t))
	opts.Code = CodeChoice{Code: code, Source: SourceFilename, From: "switchboard-install-" + code.Compact() + ".sh"}
	rep := mustInstall(t, opts)
	if rep.Activation.State != "queued" || rep.Activation.OutboxSeq == 0 {
		t.Fatalf("activation %+v", rep.Activation)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "waits in the agent's outbox") {
		t.Errorf("the report does not say the activation waits: %v", rep.Notes)
	}
	lay := NewLayout(root)
	ob, err := outbox.Open(filepath.Join(lay.StateDir, state.OutboxFile), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	recs, err := ob.Pending(0)
	if err != nil || len(recs) != 1 || recs[0].Kind != outbox.KindActivation {
		t.Fatalf("outbox: %v %+v", err, recs)
	}
	var req api.ActivationRequest
	if err := json.Unmarshal(recs[0].Body, &req); err != nil || req.PartnerCode != code.String() {
		t.Errorf("queued activation %+v: %v", req, err)
	}
	key, err := state.LoadKey(filepath.Join(lay.StateDir, state.KeyFile))
	if err != nil || !ed25519.PublicKey(req.PublicKey).Equal(key.Public()) {
		t.Errorf("the queued activation is not for the install key: %v", err)
	}
}

// A registry answering an absurd heartbeat interval must not leave an
// install.json the agent refuses to load.
func TestActivationClampsHeartbeatInterval(t *testing.T) {
	reg := newFakeRegistry(t)
	reg.interval = 1 << 40
	root := copyRoot(t, "plain-asterisk")
	rep := mustInstall(t, installOpts(t, root, reg.srv.URL))
	inst, ok, err := (&state.Dir{Path: NewLayout(root).StateDir}).LoadInstall()
	if err != nil || !ok {
		t.Fatalf("install.json does not load: %v (found %v)", err, ok)
	}
	if want := int(state.MaxHeartbeatInterval / time.Second); inst.HeartbeatIntervalSeconds != want {
		t.Errorf("stored interval %d s, want %d", inst.HeartbeatIntervalSeconds, want)
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), "outside the agent's bounds") {
		t.Errorf("the report does not say the interval was clamped: %v", rep.Notes)
	}
}
