// Package config reads the agent's one TOML configuration file. Every key
// has a default except registry.url; a bad file is refused with an error
// that names the key and its line, so a partner editing it on a customer's
// server knows exactly what to fix.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/hashicorp/go-hclog"
)

// Example is the commented example configuration shipped with the agent.
//
//go:embed example.toml
var Example string

// DefaultPath is where the installer writes the agent configuration.
const DefaultPath = "/etc/switchboard/agent.toml"

// DefaultStateDir is the state directory when state_dir is not set.
const DefaultStateDir = "/var/lib/switchboard"

// Config is the agent's configuration with every default filled in and
// every path absolute.
type Config struct {
	StateDir  string
	Socket    string
	Registry  Registry
	Licence   Licence
	Outbox    Outbox
	Sender    Sender
	Heartbeat Heartbeat
	Plugins   Plugins
	Log       Log
	Support   Support
}

// Support tunes support tickets.
type Support struct {
	// AutoTicketAfter opens one ticket for an Integration plugin that stays
	// unhealthy this long (0: never); its recovery is noted on the ticket.
	AutoTicketAfter time.Duration
}

// Registry says where reports go.
type Registry struct {
	URL string
}

// Licence lists the vendor public key files licences are verified with.
type Licence struct {
	PublicKeys []string
}

// Outbox bounds the durable queue of reports.
type Outbox struct {
	MaxRecords    int
	FlushDeadline time.Duration
}

// Sender tunes delivery to the registry.
type Sender struct {
	BatchSize      int
	BackoffMin     time.Duration
	BackoffMax     time.Duration
	RequestTimeout time.Duration
}

// Heartbeat tunes the heartbeat schedule.
type Heartbeat struct {
	// Interval overrides the registry's interval when non-zero.
	Interval time.Duration
	Jitter   float64
}

// Plugins says where plugins live and what each one is told.
type Plugins struct {
	Dir      string
	Manifest string
	// Settings holds one map per [plugins.NAME] table, values as strings
	// (the plugin contract's ConfigureRequest carries strings).
	Settings map[string]map[string]string
}

// Log sets the daemon's logging.
type Log struct {
	Level  string
	Format string
}

// Error is a problem with one key of the file.
type Error struct {
	File string
	Key  string
	Line int // 0 when the key is absent from the file
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Key == "" && e.Line > 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	case e.Key == "":
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Line == 0:
		return fmt.Sprintf("%s: %s: %s", e.File, e.Key, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
}

// raw mirrors the file. Pointers tell "absent" from "zero".
type raw struct {
	StateDir *string `toml:"state_dir"`
	Socket   *string `toml:"socket"`
	Registry struct {
		URL *string `toml:"url"`
	} `toml:"registry"`
	Licence struct {
		PublicKeys *[]string `toml:"public_keys"`
	} `toml:"licence"`
	Outbox struct {
		MaxRecords    *int           `toml:"max_records"`
		FlushDeadline *time.Duration `toml:"flush_deadline"`
	} `toml:"outbox"`
	Sender struct {
		BatchSize      *int           `toml:"batch_size"`
		BackoffMin     *time.Duration `toml:"backoff_min"`
		BackoffMax     *time.Duration `toml:"backoff_max"`
		RequestTimeout *time.Duration `toml:"request_timeout"`
	} `toml:"sender"`
	Heartbeat struct {
		Interval *string  `toml:"interval"`
		Jitter   *float64 `toml:"jitter"`
	} `toml:"heartbeat"`
	Plugins map[string]toml.Primitive `toml:"plugins"`
	Log     struct {
		Level  *string `toml:"level"`
		Format *string `toml:"format"`
	} `toml:"log"`
	Support struct {
		AutoTicketAfter *string `toml:"auto_ticket_after"`
	} `toml:"support"`
}

// Load reads and checks the file at path.
func Load(path string) (*Config, error) {
	c, _, err := load(path, "")
	return c, err
}

// LoadRunning reads and checks the file at path for an agent that already
// runs with its state in stateDir (a reload). state_dir takes effect only
// at a restart (the install key, licence and outbox live there), so the
// configuration returned keeps stateDir, and so does every default derived
// from it (socket, licence.public_keys, plugins.dir, plugins.manifest):
// a new state_dir must not move them under the running agent either.
// fileStateDir is the state_dir the file names, checked like any key, for
// the caller to report when it differs.
func LoadRunning(path, stateDir string) (cfg *Config, fileStateDir string, err error) {
	if stateDir == "" {
		return nil, "", errors.New("load agent config for a running agent: no running state directory given")
	}
	return load(path, stateDir)
}

func load(path, stateDir string) (*Config, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read agent config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", fmt.Errorf("agent config path %s: %w", path, err)
	}
	return parse(abs, data, stateDir)
}

// Parse checks data as the content of the file named file (used in errors
// and to resolve relative paths).
func Parse(file string, data []byte) (*Config, error) {
	c, _, err := parse(file, data, "")
	return c, err
}

// parse is Parse; a non-empty stateDir replaces the file's state_dir (see
// LoadRunning), whose own value is returned.
func parse(file string, data []byte, stateDir string) (*Config, string, error) {
	p := parser{file: file, lines: keyLines(string(data)), runningStateDir: stateDir}
	var r raw
	md, err := toml.Decode(string(data), &r)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, "", &Error{File: file, Key: pe.LastKey, Line: pe.Position.Line, Msg: strings.TrimPrefix(pe.Message, "toml: ")}
		}
		// Type mismatches carry "line N (last key "k")" in their text.
		return nil, "", &Error{File: file, Msg: strings.TrimPrefix(err.Error(), "toml: ")}
	}
	c := &Config{}
	if err := p.build(c, &r, md); err != nil {
		return nil, "", err
	}
	if und := md.Undecoded(); len(und) > 0 {
		// An unknown table hides its keys: name the table only.
		var names []string
		for _, u := range und {
			n := u.String()
			if len(names) > 0 && strings.HasPrefix(n, names[len(names)-1]+".") {
				continue
			}
			names = append(names, n)
		}
		k := names[0]
		msg := "unknown key (check its spelling and section; see `switchboard agent config example`)"
		if len(names) > 1 {
			msg = fmt.Sprintf("unknown key; all unknown keys: %s (see `switchboard agent config example`)", strings.Join(names, ", "))
		}
		return nil, "", p.errf(k, "%s", msg)
	}
	return c, p.fileStateDir, nil
}

type parser struct {
	file  string
	lines map[string]int
	// runningStateDir, when set, replaces the file's state_dir, which is
	// kept in fileStateDir.
	runningStateDir string
	fileStateDir    string
}

func (p *parser) errf(key, format string, args ...any) error {
	return &Error{File: p.file, Key: key, Line: p.lines[key], Msg: fmt.Sprintf(format, args...)}
}

// path resolves a configured path against the config file's directory.
func (p *parser) path(key, v string) (string, error) {
	if v == "" {
		return "", p.errf(key, "must not be empty")
	}
	if strings.ContainsRune(v, 0) {
		return "", p.errf(key, "contains a NUL byte")
	}
	if !filepath.IsAbs(v) {
		v = filepath.Join(filepath.Dir(p.file), v)
	}
	return filepath.Clean(v), nil
}

func (p *parser) build(c *Config, r *raw, md toml.MetaData) error {
	var err error
	c.StateDir = DefaultStateDir
	if r.StateDir != nil {
		if c.StateDir, err = p.path("state_dir", *r.StateDir); err != nil {
			return err
		}
	}
	p.fileStateDir = c.StateDir
	if p.runningStateDir != "" {
		c.StateDir = p.runningStateDir
	}
	c.Socket = filepath.Join(c.StateDir, "agent.sock")
	if r.Socket != nil {
		if c.Socket, err = p.path("socket", *r.Socket); err != nil {
			return err
		}
		// sun_path holds 108 bytes including the NUL.
		if len(c.Socket) > 107 {
			return p.errf("socket", "path is %d bytes; a unix socket path must be at most 107", len(c.Socket))
		}
	}

	if r.Registry.URL == nil {
		return &Error{File: p.file, Key: "registry.url", Msg: "is required: add a [registry] section with url = \"https://…\" (the installer writes it)"}
	}
	u, perr := url.Parse(*r.Registry.URL)
	switch {
	case perr != nil:
		return p.errf("registry.url", "not a URL: %v", perr)
	case u.Scheme != "http" && u.Scheme != "https":
		return p.errf("registry.url", "scheme must be https (or http for a registry on loopback), not %q", u.Scheme)
	case u.Host == "":
		return p.errf("registry.url", "has no host")
	case u.RawQuery != "" || u.Fragment != "":
		return p.errf("registry.url", "must not carry a query or fragment")
	}
	c.Registry.URL = strings.TrimRight(u.String(), "/")

	c.Licence.PublicKeys = []string{filepath.Join(c.StateDir, "vendor.pub")}
	if r.Licence.PublicKeys != nil {
		if len(*r.Licence.PublicKeys) == 0 {
			return p.errf("licence.public_keys", "lists no key file: licences cannot be verified without the vendor's public key")
		}
		c.Licence.PublicKeys = nil
		for _, k := range *r.Licence.PublicKeys {
			path, err := p.path("licence.public_keys", k)
			if err != nil {
				return err
			}
			c.Licence.PublicKeys = append(c.Licence.PublicKeys, path)
		}
	}

	c.Outbox.MaxRecords = 10000
	if v := r.Outbox.MaxRecords; v != nil {
		if *v < 10 || *v > 10_000_000 {
			return p.errf("outbox.max_records", "must be between 10 and 10000000, not %d", *v)
		}
		c.Outbox.MaxRecords = *v
	}
	c.Outbox.FlushDeadline = 10 * time.Second
	if v := r.Outbox.FlushDeadline; v != nil {
		if *v < 0 || *v > 10*time.Minute {
			return p.errf("outbox.flush_deadline", "must be between 0s and 10m, not %s", *v)
		}
		c.Outbox.FlushDeadline = *v
	}

	c.Sender.BatchSize = 500
	if v := r.Sender.BatchSize; v != nil {
		if *v < 1 || *v > 10000 {
			return p.errf("sender.batch_size", "must be between 1 and 10000, not %d", *v)
		}
		c.Sender.BatchSize = *v
	}
	c.Sender.BackoffMin = time.Second
	if v := r.Sender.BackoffMin; v != nil {
		if *v < time.Millisecond {
			return p.errf("sender.backoff_min", "must be at least 1ms, not %s", *v)
		}
		c.Sender.BackoffMin = *v
	}
	c.Sender.BackoffMax = 5 * time.Minute
	if v := r.Sender.BackoffMax; v != nil {
		if *v < c.Sender.BackoffMin || *v > 24*time.Hour {
			return p.errf("sender.backoff_max", "must be between backoff_min (%s) and 24h, not %s", c.Sender.BackoffMin, *v)
		}
		c.Sender.BackoffMax = *v
	} else if c.Sender.BackoffMax < c.Sender.BackoffMin {
		c.Sender.BackoffMax = c.Sender.BackoffMin
	}
	c.Sender.RequestTimeout = 30 * time.Second
	if v := r.Sender.RequestTimeout; v != nil {
		if *v < 100*time.Millisecond || *v > 10*time.Minute {
			return p.errf("sender.request_timeout", "must be between 100ms and 10m, not %s", *v)
		}
		c.Sender.RequestTimeout = *v
	}

	if v := r.Heartbeat.Interval; v != nil && *v != "" {
		d, err := time.ParseDuration(*v)
		if err != nil {
			return p.errf("heartbeat.interval", "not a duration (use e.g. \"1h\" or \"30s\"): %q", *v)
		}
		if d < 10*time.Millisecond || d > 7*24*time.Hour {
			return p.errf("heartbeat.interval", "must be between 10ms and 168h, not %s", d)
		}
		c.Heartbeat.Interval = d
	}
	c.Heartbeat.Jitter = 0.1
	if v := r.Heartbeat.Jitter; v != nil {
		if *v < 0 || *v > 0.5 {
			return p.errf("heartbeat.jitter", "must be between 0 and 0.5, not %v", *v)
		}
		c.Heartbeat.Jitter = *v
	}

	if err := p.plugins(c, r, md); err != nil {
		return err
	}

	if v := r.Support.AutoTicketAfter; v != nil && *v != "" && *v != "0" {
		d, err := time.ParseDuration(*v)
		if err != nil || d < time.Second || d > 30*24*time.Hour {
			return p.errf("support.auto_ticket_after", "must be a duration between 1s and 720h (e.g. \"30m\"), or \"\" to never open tickets by itself; got %q", *v)
		}
		c.Support.AutoTicketAfter = d
	}

	c.Log.Level = "info"
	if v := r.Log.Level; v != nil {
		if hclog.LevelFromString(*v) == hclog.NoLevel || *v == "off" {
			return p.errf("log.level", "must be trace, debug, info, warn or error, not %q", *v)
		}
		c.Log.Level = *v
	}
	c.Log.Format = "text"
	if v := r.Log.Format; v != nil {
		if *v != "text" && *v != "json" {
			return p.errf("log.format", "must be text or json, not %q", *v)
		}
		c.Log.Format = *v
	}
	return nil
}

var pluginName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

func (p *parser) plugins(c *Config, r *raw, md toml.MetaData) error {
	c.Plugins.Dir = filepath.Join(c.StateDir, "plugins")
	c.Plugins.Manifest = filepath.Join(c.StateDir, "plugins.json")
	c.Plugins.Settings = map[string]map[string]string{}
	names := make([]string, 0, len(r.Plugins))
	for k := range r.Plugins {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		prim := r.Plugins[name]
		key := "plugins." + name
		switch name {
		case "dir", "manifest":
			var s string
			if err := md.PrimitiveDecode(prim, &s); err != nil {
				return p.errf(key, "must be a path string")
			}
			path, err := p.path(key, s)
			if err != nil {
				return err
			}
			if name == "dir" {
				c.Plugins.Dir = path
			} else {
				c.Plugins.Manifest = path
			}
			continue
		}
		if md.Type("plugins", name) != "Hash" {
			return p.errf(key, "must be a table [plugins.%s] of settings for that plugin (or one of plugins.dir, plugins.manifest)", name)
		}
		if !pluginName.MatchString(name) {
			return p.errf(key, "plugin names are lower-case letters, digits, '-' and '_'")
		}
		var m map[string]any
		if err := md.PrimitiveDecode(prim, &m); err != nil {
			return p.errf(key, "%v", err)
		}
		settings := make(map[string]string, len(m))
		for k, v := range m {
			sk := key + "." + k
			switch v := v.(type) {
			case string:
				settings[k] = v
			case int64:
				settings[k] = strconv.FormatInt(v, 10)
			case float64:
				settings[k] = strconv.FormatFloat(v, 'g', -1, 64)
			case bool:
				settings[k] = strconv.FormatBool(v)
			default:
				return p.errf(sk, "plugin settings must be strings, numbers or booleans, not %s", md.Type("plugins", name, k))
			}
		}
		c.Plugins.Settings[name] = settings
	}
	return nil
}

var (
	headerRe = regexp.MustCompile(`^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$`)
	keyRe    = regexp.MustCompile(`^\s*([A-Za-z0-9_\-."' ]+?)\s*=`)
)

// keyLines maps each dotted key to the line it is set (or its table
// opened) on. The toml package keeps positions to itself, and a message
// such as "line 12: sender.batch_size" is what lets people fix a file.
func keyLines(text string) map[string]int {
	lines := map[string]int{}
	table := ""
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if m := headerRe.FindStringSubmatch(line); m != nil {
			table = normKey(m[1])
			if _, ok := lines[table]; !ok {
				lines[table] = n
			}
			continue
		}
		if m := keyRe.FindStringSubmatch(line); m != nil {
			k := normKey(m[1])
			if table != "" {
				k = table + "." + k
			}
			if _, ok := lines[k]; !ok {
				lines[k] = n
			}
		}
	}
	return lines
}

// normKey turns `a . "b"` into `a.b` the way toml.Key.String prints plain keys.
func normKey(k string) string {
	parts := strings.Split(k, ".")
	for i, part := range parts {
		parts[i] = strings.Trim(strings.TrimSpace(part), `"'`)
	}
	return strings.Join(parts, ".")
}
