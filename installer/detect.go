package installer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Runner runs host commands (asterisk, systemctl). Commands only run when
// installing onto / (see Options.Live); under --root they are listed in the
// plan instead.
type Runner interface {
	LookPath(name string) (string, error)
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

// LookPath implements Runner.
func (ExecRunner) LookPath(name string) (string, error) { return exec.LookPath(name) }

// Run implements Runner; it returns the combined output.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Distributions of Asterisk the detector tells apart.
const (
	DistPlain    = "plain"
	DistFreePBX  = "freepbx"
	DistIssabel  = "issabel"
	DistVitalPBX = "vitalpbx"
)

// Host is what the detector found under the root.
type Host struct {
	Root     string        `json:"root"`
	Asterisk *AsteriskInfo `json:"asterisk,omitempty"`
	Odoo     *OdooInfo     `json:"odoo,omitempty"`
	// Systemd is set when installing onto / on a host booted with systemd
	// (/run/systemd/system exists and systemctl is on the PATH).
	Systemd bool `json:"systemd"`
	// Notes are things found that people should know (unreadable files…).
	Notes []string `json:"notes,omitempty"`
}

// AsteriskInfo describes the Asterisk install.
type AsteriskInfo struct {
	Binary        string `json:"binary,omitempty"`
	Version       string `json:"version,omitempty"`
	VersionSource string `json:"version_source,omitempty"`
	// Running is only known when installing onto /.
	Running *bool `json:"running,omitempty"`
	// ConfigFile is asterisk.conf; ConfigDir its astetcdir.
	ConfigFile string `json:"config_file,omitempty"`
	ConfigDir  string `json:"config_dir"`

	Distribution         string `json:"distribution"`
	DistributionVersion  string `json:"distribution_version,omitempty"`
	DistributionEvidence string `json:"distribution_evidence,omitempty"`

	HTTP HTTPInfo `json:"http"`
	ARI  ARIInfo  `json:"ari"`
}

// HTTPInfo is the Asterisk HTTP server as http.conf configures it.
type HTTPInfo struct {
	File     string `json:"file,omitempty"`
	Enabled  bool   `json:"enabled"`
	BindAddr string `json:"bindaddr,omitempty"`
	BindPort int    `json:"bindport"`
	Prefix   string `json:"prefix,omitempty"`
	// TLSEnabled is set when the HTTPS server is on too (the agent still
	// uses plain HTTP on loopback).
	TLSEnabled bool `json:"tls_enabled,omitempty"`
}

// ARIInfo is the ARI configuration from ari.conf.
type ARIInfo struct {
	File    string    `json:"file,omitempty"`
	Enabled bool      `json:"enabled"`
	Users   []ARIUser `json:"users,omitempty"`
	// URL is the ARI base URL the agent should use (loopback when the HTTP
	// server binds to every address).
	URL string `json:"url,omitempty"`
	// CustomFile is where a user is added the distribution's way: FreePBX's
	// ari_additional_custom.conf when ari.conf includes it, else ari.conf.
	CustomFile string `json:"custom_file,omitempty"`
	// Includes names the files ari.conf includes (FreePBX generates some).
	Includes []string `json:"includes,omitempty"`
}

// ARIUser is one [name] type=user section (the password is never shown).
type ARIUser struct {
	Name           string `json:"name"`
	ReadOnly       bool   `json:"read_only"`
	PasswordFormat string `json:"password_format"`
	File           string `json:"file"`

	password string
}

// OdooInfo describes the Odoo install.
type OdooInfo struct {
	ConfigFile string `json:"config_file,omitempty"`
	Unit       string `json:"systemd_unit,omitempty"`
	HTTPPort   int    `json:"http_port"`
	Interface  string `json:"http_interface,omitempty"`
	AddonsPath string `json:"addons_path,omitempty"`
	DBName     string `json:"db_name,omitempty"`
	DBHost     string `json:"db_host,omitempty"`
	DBPort     string `json:"db_port,omitempty"`
	DBUser     string `json:"db_user,omitempty"`
	URL        string `json:"url"`
}

// detector reads a root.
type detector struct {
	root   string
	live   bool
	runner Runner
	notes  []string
}

// path maps a path on the target system to the file under the root.
func (d *detector) path(p string) string { return filepath.Join(d.root, p) }

func (d *detector) exists(p string) bool {
	_, err := os.Stat(d.path(p))
	return err == nil
}

func (d *detector) isDir(p string) bool {
	fi, err := os.Stat(d.path(p))
	return err == nil && fi.IsDir()
}

// Detect reads the host under root. live allows running commands
// (asterisk -V, asterisk -rx, systemctl), which only makes sense onto /.
func Detect(ctx context.Context, root string, live bool, runner Runner) (*Host, error) {
	if runner == nil {
		runner = ExecRunner{}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("root %s: %w", root, err)
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("root %s is not a directory", root)
	}
	d := &detector{root: abs, live: live, runner: runner}
	h := &Host{Root: abs}
	if h.Asterisk, err = d.asterisk(ctx); err != nil {
		return nil, err
	}
	if h.Odoo, err = d.odoo(); err != nil {
		return nil, err
	}
	if live && d.isDir("/run/systemd/system") {
		if _, err := runner.LookPath("systemctl"); err == nil {
			h.Systemd = true
		}
	}
	h.Notes = d.notes
	return h, nil
}

func (d *detector) note(format string, args ...any) {
	d.notes = append(d.notes, fmt.Sprintf(format, args...))
}

// --- Asterisk ---------------------------------------------------------------

func (d *detector) asterisk(ctx context.Context) (*AsteriskInfo, error) {
	a := &AsteriskInfo{ConfigDir: "/etc/asterisk"}
	found := false
	for _, bin := range []string{"/usr/sbin/asterisk", "/usr/local/sbin/asterisk", "/usr/bin/asterisk"} {
		if d.exists(bin) {
			a.Binary, found = bin, true
			break
		}
	}
	if d.live && a.Binary == "" {
		if p, err := d.runner.LookPath("asterisk"); err == nil {
			a.Binary, found = p, true
		}
	}
	if d.exists("/etc/asterisk/asterisk.conf") {
		a.ConfigFile, found = "/etc/asterisk/asterisk.conf", true
	}
	if !found {
		return nil, nil
	}
	a.Version, a.VersionSource = d.asteriskVersion(ctx, a.Binary)

	if a.ConfigFile != "" {
		doc, err := parseConf(d.path(a.ConfigFile), d.path(a.ConfigDir), d.root)
		if err != nil {
			d.note("cannot read %s: %v", a.ConfigFile, err)
		} else if s := doc.section("directories"); s != nil {
			if v, ok := s.get("astetcdir"); ok && filepath.IsAbs(v) {
				a.ConfigDir = filepath.Clean(v)
			}
		}
	}
	if d.live && a.Binary != "" {
		_, err := d.runner.Run(ctx, a.Binary, "-rx", "core show uptime")
		running := err == nil
		a.Running = &running
	}

	d.distribution(a)
	if err := d.http(a); err != nil {
		return nil, err
	}
	if err := d.ari(a); err != nil {
		return nil, err
	}
	return a, nil
}

// asteriskVersion runs `asterisk -V` onto /. Under a root nothing is run:
// a fixture or sandbox root holds a text file in place of the binary whose
// first line is what `asterisk -V` prints.
func (d *detector) asteriskVersion(ctx context.Context, bin string) (version, source string) {
	if bin == "" {
		return "", ""
	}
	if d.live {
		out, err := d.runner.Run(ctx, bin, "-V")
		if err != nil {
			d.note("asterisk -V failed: %v", err)
			return "", ""
		}
		return parseAsteriskV(string(out)), bin + " -V"
	}
	data, err := readHead(d.path(bin), 4096)
	if err != nil || bytes.IndexByte(data, 0) >= 0 || !bytes.HasPrefix(data, []byte("Asterisk ")) {
		return "", ""
	}
	return parseAsteriskV(string(data)), bin + " (text stand-in under --root)"
}

func parseAsteriskV(out string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	v, ok := strings.CutPrefix(strings.TrimSpace(line), "Asterisk ")
	if !ok {
		return ""
	}
	return strings.TrimSpace(v)
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	buf := make([]byte, n)
	m, err := f.Read(buf)
	if m == 0 && err != nil {
		return nil, err
	}
	return buf[:m], nil
}

// distribution tells Issabel, FreePBX, VitalPBX and plain Asterisk apart.
// Issabel is checked first: it is a FreePBX fork and has amportal.conf too.
func (d *detector) distribution(a *AsteriskInfo) {
	issabelFiles := []string{"/etc/issabel.conf"}
	if m, _ := filepath.Glob(d.path("/etc/issabel*-release")); len(m) > 0 {
		for _, f := range m {
			issabelFiles = append(issabelFiles, strings.TrimPrefix(f, d.root))
		}
	}
	for _, f := range issabelFiles {
		if d.exists(f) {
			a.Distribution, a.DistributionEvidence = DistIssabel, f
			for _, rel := range issabelFiles[1:] {
				if line := d.firstLine(rel); line != "" {
					a.DistributionVersion = line
					break
				}
			}
			return
		}
	}
	for _, f := range []string{"/etc/freepbx.conf", "/etc/amportal.conf"} {
		if d.exists(f) {
			a.Distribution, a.DistributionEvidence = DistFreePBX, f
			a.DistributionVersion = d.firstLine("/etc/schmooze/pbx-version")
			return
		}
	}
	for _, f := range []string{"/etc/vitalpbx", "/usr/share/vitalpbx", "/etc/asterisk/vitalpbx"} {
		if d.exists(f) {
			a.Distribution, a.DistributionEvidence = DistVitalPBX, f
			return
		}
	}
	a.Distribution = DistPlain
}

func (d *detector) firstLine(p string) string {
	data, err := readHead(d.path(p), 512)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(data), "\n")
	return strings.TrimSpace(line)
}

func (d *detector) http(a *AsteriskInfo) error {
	h := &a.HTTP
	h.BindPort = 8088
	file := filepath.Join(a.ConfigDir, "http.conf")
	doc, err := parseConf(d.path(file), d.path(a.ConfigDir), d.root)
	if errors.Is(err, fs.ErrNotExist) {
		d.note("%s is missing: the Asterisk HTTP server (and so ARI) is off", file)
		return nil
	}
	if err != nil {
		d.note("cannot read %s: %v", file, err)
		return nil
	}
	h.File = file
	s := doc.section("general")
	if s == nil {
		return nil
	}
	if v, ok := s.get("enabled"); ok {
		h.Enabled = confBool(v)
	}
	if v, ok := s.get("bindaddr"); ok {
		if net.ParseIP(strings.Trim(v, "[]")) != nil || validHostname(v) {
			h.BindAddr = v
		} else {
			d.note("%s: bindaddr %q is not an address: Asterisk cannot bind its HTTP server to it", file, v)
		}
	}
	if v, ok := s.get("bindport"); ok {
		if p, err := strconv.Atoi(v); err == nil && p > 0 && p < 65536 {
			h.BindPort = p
		} else {
			d.note("%s: bindport %q is not a port number; assuming 8088", file, v)
		}
	}
	if v, ok := s.get("prefix"); ok {
		h.Prefix = strings.Trim(v, "/")
	}
	if v, ok := s.get("tlsenable"); ok {
		h.TLSEnabled = confBool(v)
	}
	return nil
}

func (d *detector) ari(a *AsteriskInfo) error {
	r := &a.ARI
	file := filepath.Join(a.ConfigDir, "ari.conf")
	r.CustomFile = file
	doc, err := parseConf(d.path(file), d.path(a.ConfigDir), d.root)
	if errors.Is(err, fs.ErrNotExist) {
		d.note("%s is missing: ARI is off", file)
		return nil
	}
	if err != nil {
		d.note("cannot read %s: %v", file, err)
		return nil
	}
	r.File = file
	for _, in := range doc.Includes {
		r.Includes = append(r.Includes, in.Name)
	}
	// FreePBX (and Issabel, its fork) generate ari_additional.conf and
	// ari_general_additional.conf on every reload; hand-made users belong
	// in ari_additional_custom.conf, which ari.conf includes.
	if (a.Distribution == DistFreePBX || a.Distribution == DistIssabel) && doc.includes("ari_additional_custom.conf") {
		r.CustomFile = filepath.Join(a.ConfigDir, "ari_additional_custom.conf")
	}
	if s := doc.section("general"); s != nil {
		if v, ok := s.get("enabled"); ok {
			r.Enabled = confBool(v)
		} else {
			r.Enabled = true // res_ari's default
		}
	}
	seen := map[string]bool{}
	for _, s := range doc.Sections {
		if t, _ := s.get("type"); !strings.EqualFold(t, "user") || seen[s.Name] {
			continue
		}
		seen[s.Name] = true
		u := ARIUser{Name: s.Name, PasswordFormat: "plain", File: strings.TrimPrefix(s.File, d.root)}
		if v, ok := s.get("read_only"); ok {
			u.ReadOnly = confBool(v)
		}
		if v, ok := s.get("password_format"); ok {
			u.PasswordFormat = strings.ToLower(v)
		}
		u.password, _ = s.get("password")
		r.Users = append(r.Users, u)
	}
	r.URL = ariURL(a.HTTP)
	return nil
}

// ariURL is the ARI base URL for an HTTP server configuration; a server
// bound to every address is reached on loopback.
func ariURL(h HTTPInfo) string {
	host := h.BindAddr
	switch host {
	case "", "0.0.0.0", "::", "[::]":
		host = "127.0.0.1"
	}
	host = strings.Trim(host, "[]")
	u := url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(h.BindPort)), Path: "/ari"}
	if h.Prefix != "" {
		// url.URL escapes what the prefix holds ("?", "#", spaces…).
		u.Path = "/" + h.Prefix + "/ari"
	}
	return u.String()
}

// user returns the ARI user named name.
func (r *ARIInfo) user(name string) (ARIUser, bool) {
	for _, u := range r.Users {
		if u.Name == name {
			return u, true
		}
	}
	return ARIUser{}, false
}

// --- Odoo -------------------------------------------------------------------

var odooUnits = []string{
	"/etc/systemd/system/odoo.service", "/lib/systemd/system/odoo.service", "/usr/lib/systemd/system/odoo.service",
	"/etc/systemd/system/odoo-server.service", "/lib/systemd/system/odoo-server.service", "/usr/lib/systemd/system/odoo-server.service",
}

var odooConfigs = []string{"/etc/odoo/odoo.conf", "/etc/odoo-server.conf", "/etc/odoo/odoo-server.conf"}

func (d *detector) odoo() (*OdooInfo, error) {
	o := &OdooInfo{HTTPPort: 8069}
	found := false
	var unitConfig string
	for _, u := range odooUnits {
		if d.exists(u) {
			o.Unit, found = u, true
			unitConfig = d.unitConfigArg(u)
			break
		}
	}
	candidates := odooConfigs
	if unitConfig != "" {
		candidates = append([]string{unitConfig}, odooConfigs...)
	}
	for _, c := range candidates {
		if d.exists(c) {
			o.ConfigFile, found = c, true
			break
		}
	}
	if !found {
		return nil, nil
	}
	if o.ConfigFile != "" {
		if err := d.readOdooConf(o); err != nil {
			d.note("cannot read %s: %v", o.ConfigFile, err)
		}
	}
	host := o.Interface
	if host != "" && net.ParseIP(host) == nil && !validHostname(host) {
		d.note("%s: http_interface %q is not an address; the agent will use 127.0.0.1", o.ConfigFile, host)
		o.Interface, host = "", ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	o.URL = "http://" + net.JoinHostPort(host, strconv.Itoa(o.HTTPPort))
	return o, nil
}

// maxUnitFileBytes bounds a systemd unit file read for its ExecStart;
// real ones are a few KiB, with long Environment= lines at most.
const maxUnitFileBytes = 1 << 20

// unitConfigArg finds -c FILE / -cFILE / --config FILE / --config=FILE in
// the [Service] ExecStart of the unit (the last one: an empty ExecStart=
// resets the list). Lines of any length and backslash continuations are
// read as systemd reads them. A unit that cannot be read, or a config path
// that is not absolute, is noted and gives "".
func (d *detector) unitConfigArg(unit string) string {
	data, err := readBounded(d.path(unit), maxUnitFileBytes)
	if err != nil {
		d.note("cannot read %s for Odoo's --config: %v", unit, err)
		return ""
	}
	cmdline := unitExecStart(string(data))
	if cmdline == "" {
		return ""
	}
	args := splitExecArgs(cmdline)
	var conf string
	for i, a := range args {
		switch {
		case (a == "-c" || a == "--config") && i+1 < len(args):
			conf = args[i+1]
		case strings.HasPrefix(a, "--config="):
			conf = strings.TrimPrefix(a, "--config=")
		case strings.HasPrefix(a, "-c") && !strings.HasPrefix(a, "--") && len(a) > 2:
			conf = a[2:]
		default:
			continue
		}
		break
	}
	if conf == "" {
		return ""
	}
	if !filepath.IsAbs(conf) {
		d.note("%s: ExecStart names Odoo config %q, which is not an absolute path; looking in the usual places instead", unit, conf)
		return ""
	}
	return filepath.Clean(conf)
}

// readBounded reads a regular file of at most max bytes; a longer one is
// an error, not silently cut.
func readBounded(path string, max int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > max {
		return nil, fmt.Errorf("larger than %d bytes, which no unit file is", max)
	}
	return data, nil
}

// unitExecStart returns the value of the last ExecStart= of the [Service]
// section of a systemd unit, as systemd.syntax(7) reads it: comment lines
// start with # or ;, a trailing backslash joins the next line (comment
// lines inside a continuation are dropped), keys and values are trimmed.
func unitExecStart(text string) string {
	var cmdline, section, logical string
	continued := false
	for _, raw := range strings.Split(text, "\n") {
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if continued && (strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";")) {
			continue
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			logical += body + " "
			continued = true
			continue
		}
		logical += line
		line, logical, continued = strings.TrimSpace(logical), "", false
		switch {
		case line == "", line[0] == '#', line[0] == ';':
		case line[0] == '[':
			section = line
		case section == "[Service]":
			k, v, ok := strings.Cut(line, "=")
			if ok && strings.TrimSpace(k) == "ExecStart" {
				cmdline = strings.TrimSpace(v) // empty resets
			}
		}
	}
	return cmdline
}

// splitExecArgs splits an ExecStart command line into words: whitespace
// separates, "…" and '…' quote (with backslash escapes), and the
// executable's prefixes (@ - : + !) are dropped.
func splitExecArgs(cmd string) []string {
	var args []string
	var cur strings.Builder
	inWord := false
	var quote byte
	for i := 0; i < len(cmd); i++ {
		c := cmd[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case c == '\\' && i+1 < len(cmd):
			i++
			cur.WriteByte(cmd[i])
			inWord = true
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, inWord = c, true
		case c == ' ' || c == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) > 0 {
		args[0] = strings.TrimLeft(args[0], "@-:+!")
	}
	return args
}

// readOdooConf reads the [options] section of the Odoo configuration file.
func (d *detector) readOdooConf(o *OdooInfo) error {
	f, err := os.Open(d.path(o.ConfigFile))
	if err != nil {
		return err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil {
		return err
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	notes, err := parseOdooConf(f, o.ConfigFile, o)
	for _, n := range notes {
		d.note("%s", n)
	}
	return err
}

// maxOdooConfLine bounds one line of odoo.conf (addons_path lines are the
// longest real ones, a few KiB).
const maxOdooConfLine = 1 << 20

// parseOdooConf reads the [options] section of an Odoo configuration file
// into o. The syntax is Python's ConfigParser, as Odoo reads it: "key =
// value" or "key: value" (the first of '=' or ':' splits), keys are
// case-insensitive, whole-line ";" or "#" comments, and indented lines
// continue the value above them. notes are values that were skipped.
func parseOdooConf(r io.Reader, file string, o *OdooInfo) (notes []string, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxOdooConfLine)
	section := ""
	var lastKey string
	vals := map[string]string{}
	lines := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if (raw[0] == ' ' || raw[0] == '\t') && lastKey != "" {
			// A continuation line (addons_path is often split like this).
			vals[lastKey] += "\n" + line
			continue
		}
		lastKey = ""
		if line[0] == '[' {
			if end := strings.LastIndexByte(line, ']'); end > 0 {
				section = line[1:end]
				continue
			}
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			continue // ConfigParser refuses such a line; Odoo would not start
		}
		k, v := strings.ToLower(strings.TrimSpace(line[:i])), strings.TrimSpace(line[i+1:])
		if section != "options" || k == "" {
			continue
		}
		vals[k], lines[k], lastKey = v, n, k
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return notes, fmt.Errorf("line %d is longer than %d KiB: not an Odoo configuration file?", n+1, maxOdooConfLine>>10)
		}
		return notes, err
	}
	get := func(k string) string {
		v := vals[k]
		if strings.EqualFold(v, "False") || strings.EqualFold(v, "None") {
			return ""
		}
		return v
	}
	for _, k := range []string{"xmlrpc_port", "http_port"} { // http_port wins, as in Odoo ≥ 11
		v := get(k)
		if v == "" {
			continue
		}
		p, err := strconv.Atoi(v)
		if err != nil || p <= 0 || p > 65535 {
			notes = append(notes, fmt.Sprintf("%s:%d: %s %q is not a port number; assuming %d", file, lines[k], k, v, o.HTTPPort))
			continue
		}
		o.HTTPPort = p
	}
	for _, k := range []string{"xmlrpc_interface", "http_interface"} {
		if v := get(k); v != "" {
			o.Interface = v
		}
	}
	if v := get("addons_path"); v != "" {
		var parts []string
		for _, p := range strings.Split(strings.ReplaceAll(v, "\n", ","), ",") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
		o.AddonsPath = strings.Join(parts, ",")
	}
	o.DBName, o.DBHost, o.DBPort, o.DBUser = get("db_name"), get("db_host"), get("db_port"), get("db_user")
	return notes, nil
}

// validHostname reports whether h is a DNS name: dot-separated labels of
// letters, digits and '-', at most 253 bytes.
func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range []byte(label) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
