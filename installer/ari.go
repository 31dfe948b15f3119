package installer

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// asteriskReloadARI is the command that makes Asterisk read ari.conf again.
var asteriskReloadARI = []string{"asterisk", "-rx", "module reload res_ari.so"}

// asteriskReloadHTTP makes Asterisk read http.conf again.
var asteriskReloadHTTP = []string{"asterisk", "-rx", "module reload http"}

func shellJoin(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if strings.ContainsAny(a, " \t'\"$\\") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

func randomPassword() (string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// prevSetting is a plugin setting from the agent configuration an earlier
// install wrote, so a re-run without the flags keeps what was set.
func (b *builder) prevSetting(plugin, key string) string {
	c, err := readAgentConfig(b.lay.ConfigFile)
	if err != nil {
		return ""
	}
	return c.Plugins.Settings[plugin][key]
}

func readSecret(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

// confEdit accumulates the new content of one Asterisk configuration file.
type confEdit struct {
	path    string // under the root
	display string // as on the target system
	before  fileState
	text    string
}

// asterisk plans the ARI connection of the agent and, with
// --configure-ari, the edits to Asterisk's configuration.
func (b *builder) asterisk() error {
	a := b.h.Asterisk
	if a == nil && b.opts.ARIURL == "" {
		if b.opts.ConfigureARI {
			return errors.New("--configure-ari: no Asterisk found (no asterisk binary, no /etc/asterisk/asterisk.conf) under " + b.lay.Root)
		}
		return nil
	}
	set := map[string]string{}
	set["ari_url"] = firstNonEmpty(b.opts.ARIURL, b.prevSetting("asterisk", "ari_url"), ariInfoURL(a))
	user := firstNonEmpty(b.opts.ARIUser, b.prevSetting("asterisk", "ari_user"), DefaultARIUser)
	set["ari_user"] = user
	set["ari_password_file"] = b.lay.ARISecret

	var existing ARIUser
	var exists bool
	if a != nil {
		existing, exists = a.ARI.user(user)
	}
	password := b.opts.ARIPassword
	userOK := false
	switch {
	case exists && existing.PasswordFormat == "plain":
		if password != "" && password != existing.password {
			return fmt.Errorf("ARI user %s already exists in %s with another password: give its password with --ari-password, or choose another --ari-user", user, existing.File)
		}
		password, userOK = existing.password, true
	case exists:
		if password == "" {
			password = readSecret(b.lay.ARISecret)
		}
		if password == "" {
			return fmt.Errorf("ARI user %s exists in %s with a %s password the installer cannot read: give it with --ari-password, or choose another --ari-user", user, existing.File, existing.PasswordFormat)
		}
		userOK = true // trusted: the person or an earlier install gave it
	}
	if password == "" {
		password = readSecret(b.lay.ARISecret)
	}
	if password == "" {
		var err error
		if password, err = randomPassword(); err != nil {
			return err
		}
	}
	set["password"] = password
	b.ariSettings = set
	if a == nil {
		return nil // only a remote ARI given by --ari-url
	}

	// What Asterisk needs: the HTTP server on, ARI on, and the user.
	edits := map[string]*confEdit{}
	var order []string
	edit := func(file string) (*confEdit, error) {
		if e, ok := edits[file]; ok {
			return e, nil
		}
		p := filepath.Join(b.lay.Root, file)
		st, err := readState(p)
		if err != nil {
			return nil, err
		}
		e := &confEdit{path: p, display: file, before: st, text: string(st.data)}
		edits[file] = e
		order = append(order, file)
		return e, nil
	}
	freepbxStyle := a.ARI.CustomFile != filepath.Join(a.ConfigDir, "ari.conf")
	var lines []string // what to tell people without --configure-ari
	reloadHTTP := false

	httpFile := filepath.Join(a.ConfigDir, "http.conf")
	if !a.HTTP.Enabled || a.HTTP.BindAddr == "" {
		switch {
		case a.Distribution == DistFreePBX || a.Distribution == DistIssabel:
			b.note("the Asterisk HTTP server is off (or has no bindaddr); ARI needs it. %s generates http.conf: turn on \"Enable the mini-HTTP Server\" in Settings → Advanced Settings and apply the configuration", distName(a.Distribution))
		case b.opts.ConfigureARI:
			e, err := edit(httpFile)
			if err != nil {
				return err
			}
			if !a.HTTP.Enabled {
				e.text = setConfKey(e.text, "general", "enabled", "yes")
			}
			if a.HTTP.BindAddr == "" {
				e.text = setConfKey(e.text, "general", "bindaddr", "127.0.0.1")
			}
			reloadHTTP = true
		default:
			lines = append(lines, fmt.Sprintf("in %s, section [general]: enabled = yes and bindaddr = 127.0.0.1 (then: %s)", httpFile, shellJoin(asteriskReloadHTTP)))
		}
	}
	ariFile := filepath.Join(a.ConfigDir, "ari.conf")
	if !a.ARI.Enabled {
		switch {
		case freepbxStyle:
			b.note("ARI is off; %s generates its settings: turn on \"Enable the Asterisk REST Interface\" in Settings → Advanced Settings and apply the configuration", distName(a.Distribution))
		case b.opts.ConfigureARI:
			e, err := edit(ariFile)
			if err != nil {
				return err
			}
			e.text = setConfKey(e.text, "general", "enabled", "yes")
		default:
			lines = append(lines, fmt.Sprintf("in %s, section [general]: enabled = yes", ariFile))
		}
	}
	if !userOK {
		if err := checkARIUser(user, password); err != nil {
			return err
		}
		block := ariUserBlock(user, password)
		if b.opts.ConfigureARI {
			e, err := edit(a.ARI.CustomFile)
			if err != nil {
				return err
			}
			e.text = appendBlock(e.text, block)
		} else {
			lines = append(lines, fmt.Sprintf("add to %s:\n%s", a.ARI.CustomFile, indent(block)))
		}
	}
	if len(lines) > 0 {
		b.note("ARI access for the agent is not set up. Re-run with --configure-ari to let the installer do it, or by hand:\n  %s\nthen run: %s\n(the agent is already configured with user %s and the password in %s)",
			strings.Join(lines, "\n  "), shellJoin(asteriskReloadARI), user, b.lay.ARISecret)
	}
	if len(order) == 0 {
		return nil
	}
	return b.ariStep(a, edits, order, reloadHTTP)
}

func indent(block string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(block, "\n"), "\n", "\n    ")
}

func distName(d string) string {
	switch d {
	case DistFreePBX:
		return "FreePBX"
	case DistIssabel:
		return "Issabel"
	case DistVitalPBX:
		return "VitalPBX"
	}
	return "Asterisk"
}

func ariInfoURL(a *AsteriskInfo) string {
	if a == nil {
		return ""
	}
	if a.ARI.URL != "" {
		return a.ARI.URL
	}
	return ariURL(a.HTTP)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// ariStep writes the edited Asterisk files (after a backup of each) and
// reloads Asterisk when it runs on this host.
func (b *builder) ariStep(a *AsteriskInfo, edits map[string]*confEdit, order []string, reloadHTTP bool) error {
	stamp := b.opts.Now().UTC().Format("20060102T150405Z")
	var writes []*fileWrite
	s := &Step{Name: "ari-config", Summary: "give the agent its own ARI user (" + distName(a.Distribution) + " way)"}
	for _, f := range order {
		e := edits[f]
		mode := e.before.mode
		if !e.before.exists {
			// A new file holds a password: readable by Asterisk (owner of
			// the directory), not by everyone.
			mode = 0o640
		}
		if e.before.exists {
			bak := e.path + ".switchboard-bak-" + stamp
			writes = append(writes, &fileWrite{path: bak, data: e.before.data, mode: e.before.mode, inheritOwner: true})
			s.Changes = append(s.Changes, "back up "+e.display+" to "+filepath.Base(bak))
			s.Changes = append(s.Changes, "edit "+e.display)
		} else {
			s.Changes = append(s.Changes, "create "+e.display)
		}
		writes = append(writes, &fileWrite{path: e.path, data: []byte(e.text), mode: mode, inheritOwner: true})
	}
	cmds := [][]string{asteriskReloadARI}
	if reloadHTTP {
		cmds = append([][]string{asteriskReloadHTTP}, cmds...)
	}
	for _, c := range cmds {
		s.Changes = append(s.Changes, "run "+shellJoin(c))
	}
	running := a.Running != nil && *a.Running
	reloaded := false
	reload := func(ctx context.Context) error {
		for _, c := range cmds {
			if _, err := b.opts.Runner.Run(ctx, c[0], c[1:]...); err != nil {
				return err
			}
		}
		return nil
	}
	s.do = func(ctx context.Context, s *Step) error {
		changed := false
		for _, w := range writes {
			ch, err := w.apply()
			if err != nil {
				return err
			}
			changed = changed || ch
		}
		if !changed {
			s.Status = StatusUnchanged
			return nil
		}
		if !b.opts.live || !running {
			why := "installed under --root " + b.lay.Root
			if b.opts.live {
				why = "Asterisk is not running; it reads the files when it starts"
			}
			for _, c := range cmds {
				b.rep().Commands = append(b.rep().Commands, Command{Command: shellJoin(c), Why: why})
			}
			return nil
		}
		for _, c := range cmds {
			b.rep().Commands = append(b.rep().Commands, Command{Command: shellJoin(c), Ran: true})
		}
		reloaded = true
		return reload(ctx)
	}
	s.undo = func(ctx context.Context) error {
		var errs []error
		for i := len(writes) - 1; i >= 0; i-- {
			errs = append(errs, writes[i].revert())
		}
		if reloaded {
			errs = append(errs, reload(ctx))
			reloaded = false
		}
		return errors.Join(errs...)
	}
	b.add(s)
	return nil
}

// odoo plans the Odoo connection of the agent.
func (b *builder) odoo() error {
	o := b.h.Odoo
	given := b.opts.OdooURL != "" || b.opts.OdooDB != "" || b.opts.OdooUser != "" || b.opts.OdooKey != ""
	if o == nil && b.opts.OdooURL == "" {
		if given {
			return errors.New("no Odoo found (no odoo.conf, no odoo.service) under " + b.lay.Root + ": pass --odoo-url too")
		}
		if b.prevSetting("odoo", "url") == "" {
			return nil
		}
	}
	set := map[string]string{}
	detected := OdooInfo{}
	if o != nil {
		detected = *o
	}
	db := detected.DBName
	if strings.Contains(db, ",") {
		db = "" // several databases: the person must choose
	}
	set["url"] = firstNonEmpty(b.opts.OdooURL, b.prevSetting("odoo", "url"), detected.URL)
	if v := firstNonEmpty(b.opts.OdooDB, b.prevSetting("odoo", "db"), db); v != "" {
		set["db"] = v
	}
	if v := firstNonEmpty(b.opts.OdooUser, b.prevSetting("odoo", "user")); v != "" {
		set["user"] = v
	}
	key := firstNonEmpty(b.opts.OdooKey, readSecret(b.lay.OdooSecret))
	if key != "" {
		set["key"] = key
		set["api_key_file"] = b.lay.OdooSecret
	}
	var missing []string
	if set["db"] == "" {
		missing = append(missing, "--odoo-db NAME")
	}
	if set["user"] == "" {
		missing = append(missing, "--odoo-user LOGIN")
	}
	if key == "" {
		missing = append(missing, "--odoo-key KEY (an API key: in Odoo, your avatar → Preferences → Account Security → New API Key)")
	}
	if len(missing) > 0 {
		b.note("the agent cannot log in to Odoo at %s yet: re-run the installer with %s", set["url"], strings.Join(missing, ", "))
	}
	b.odooSettings = set
	return nil
}
