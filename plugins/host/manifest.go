// Package host starts, checks and supervises Switchboard plugins. It is
// used by both daemons: the agent hosts Integration plugins, the registry
// hosts SupportChannel plugins.
//
// The manifest (plugins.json in the state directory) lists the plugins a
// host may start and the SHA-256 of each binary; a Supervisor keeps one
// plugin process running, restarts it when it crashes or hangs, and gives
// every call a deadline.
package host

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
	"github.com/switchboard-dev/switchboard/plugins"
)

// Defaults for where plugins live on a customer's server.
const (
	// DefaultStateDir is the agent's state directory.
	DefaultStateDir = "/var/lib/switchboard"
	// ManifestFileName is the manifest's name inside the state directory.
	ManifestFileName = "plugins.json"
	// DefaultPluginDir is where third-party plugin binaries are installed.
	DefaultPluginDir = DefaultStateDir + "/plugins"
	// BinaryPrefix starts the file name of third-party plugin binaries
	// (switchboard-plugin-NAME); Discover strips it to name unknown files.
	BinaryPrefix = "switchboard-plugin-"
)

// ManifestVersion is the manifest format this package reads and writes.
const ManifestVersion = 1

// Limits on manifest content; a manifest is written by the installer, but
// a hand-edited one must not be able to blow up the host.
const (
	maxManifestBytes = 4 << 20
	maxArgs          = 64
	maxArgLen        = 4096
	maxSettings      = 256
	maxSettingLen    = 64 << 10
)

var (
	nameRE       = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
	settingKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)
	sha256RE     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// Entry is one plugin in the manifest.
type Entry struct {
	// Name identifies the plugin in status, logs and the CLI.
	Name string `json:"name"`
	// Kind is integration or support_channel.
	Kind plugins.Kind `json:"kind"`
	// Path is the absolute path of the binary to run. For built-in plugins
	// it is the switchboard binary itself.
	Path string `json:"path"`
	// SHA256 is the lower-case hex SHA-256 of the binary at Path; the host
	// refuses to start anything else.
	SHA256 string `json:"sha256"`
	// Args are passed to the binary; built-ins use "plugin serve NAME".
	Args []string `json:"args,omitempty"`
	// Settings are handed to the plugin's Configure after every start. They
	// may hold credentials: the manifest is written with mode 0600.
	Settings map[string]string `json:"settings,omitempty"`
	// Version is the plugin's release, as the installer recorded it.
	Version string `json:"version,omitempty"`
}

// Builtin reports whether the entry runs a plugin built into switchboard.
func (e Entry) Builtin() bool {
	return len(e.Args) == 3 && e.Args[0] == "plugin" && e.Args[1] == "serve"
}

// Validate checks one entry and says what to fix.
func (e Entry) Validate() error {
	if !nameRE.MatchString(e.Name) {
		return fmt.Errorf("plugin name %q must be 1-63 lower-case letters, digits, - or _, starting with a letter", e.Name)
	}
	if !e.Kind.Valid() {
		return fmt.Errorf("plugin %q: kind %q must be %q or %q", e.Name, e.Kind, plugins.KindIntegration, plugins.KindSupportChannel)
	}
	if e.Path == "" || !filepath.IsAbs(e.Path) || filepath.Clean(e.Path) != e.Path {
		return fmt.Errorf("plugin %q: path %q must be an absolute, clean path to the plugin binary", e.Name, e.Path)
	}
	// No binary can be started from a path holding NUL (exec refuses it)
	// and a newline or other control character only serves to mislead a
	// reader of logs and status output.
	if !plainText(e.Path) {
		return fmt.Errorf("plugin %q: path %q must be UTF-8 text without NUL or other control characters", e.Name, e.Path)
	}
	if !sha256RE.MatchString(e.SHA256) {
		return fmt.Errorf("plugin %q: sha256 must be 64 lower-case hex digits (run `sha256sum %s`), got %q", e.Name, e.Path, e.SHA256)
	}
	if len(e.Args) > maxArgs {
		return fmt.Errorf("plugin %q: %d args, the limit is %d", e.Name, len(e.Args), maxArgs)
	}
	for i, a := range e.Args {
		if len(a) > maxArgLen || !plainText(a) {
			return fmt.Errorf("plugin %q: args[%d] must be UTF-8 text without NUL or other control characters, at most %d bytes", e.Name, i, maxArgLen)
		}
	}
	if e.Builtin() && !nameRE.MatchString(e.Args[2]) {
		return fmt.Errorf("plugin %q: built-in plugin name %q in args (plugin serve NAME) must be 1-63 lower-case letters, digits, - or _: re-run the installer", e.Name, e.Args[2])
	}
	if len(e.Settings) > maxSettings {
		return fmt.Errorf("plugin %q: %d settings, the limit is %d", e.Name, len(e.Settings), maxSettings)
	}
	for k, v := range e.Settings {
		if !settingKeyRE.MatchString(k) {
			return fmt.Errorf("plugin %q: setting name %q must be 1-128 letters, digits, '.', '-' or '_'", e.Name, k)
		}
		if len(v) > maxSettingLen || !utf8.ValidString(v) {
			return fmt.Errorf("plugin %q: setting %q must be UTF-8 text of at most %d bytes", e.Name, k, maxSettingLen)
		}
	}
	if len(e.Version) > 64 || !utf8.ValidString(e.Version) {
		return fmt.Errorf("plugin %q: version must be UTF-8 text of at most 64 bytes", e.Name)
	}
	return nil
}

// plainText reports whether s is valid UTF-8 without C0 control
// characters or DEL.
func plainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// Clone returns a deep copy, so callers can keep an entry while the
// original changes.
func (e Entry) Clone() Entry {
	e.Args = slices.Clone(e.Args)
	e.Settings = maps.Clone(e.Settings)
	return e
}

// equal reports whether two entries would start the same plugin the same way.
func (e Entry) equal(o Entry) bool {
	return e.Name == o.Name && e.Kind == o.Kind && e.Path == o.Path && e.SHA256 == o.SHA256 &&
		slices.Equal(e.Args, o.Args) && maps.Equal(e.Settings, o.Settings) && e.Version == o.Version
}

// Manifest lists the plugins a host may start.
type Manifest struct {
	Version int     `json:"version"`
	Plugins []Entry `json:"plugins"`
}

// NewManifest returns an empty manifest of the current version.
func NewManifest() *Manifest { return &Manifest{Version: ManifestVersion, Plugins: []Entry{}} }

// ParseManifest decodes and validates a manifest. Unknown fields are
// errors: a typo in a hand-edited manifest must not silently drop a setting.
func ParseManifest(data []byte) (*Manifest, error) {
	if len(data) > maxManifestBytes {
		return nil, fmt.Errorf("manifest is %d bytes, the limit is %d", len(data), maxManifestBytes)
	}
	// encoding/json matches field names without regard to case and lets a
	// later duplicate win, so {"name":"a","NAME":"b"} would silently
	// become "b": check the exact key names first.
	if err := checkKeys(data); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("manifest has data after the closing brace")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if m.Plugins == nil {
		m.Plugins = []Entry{}
	}
	return &m, nil
}

// Exact field names of the manifest and of an entry.
var (
	manifestKeys = []string{"version", "plugins"}
	entryKeys    = []string{"name", "kind", "path", "sha256", "args", "settings", "version"}
)

// checkKeys walks the manifest's JSON tokens and refuses an object key
// given twice, and a field name spelt with other letter case than the
// format's (which encoding/json would accept). Syntax errors are left to
// the decoder, which reports them with a line number.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(where string, fields []string, entries bool) error
	walk = func(where string, fields []string, entries bool) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('['):
			for i := 0; dec.More(); i++ {
				var f []string
				if entries {
					f = entryKeys
				}
				if err := walk(fmt.Sprintf("%s[%d]", where, i), f, false); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if seen[k] {
					return &keyError{fmt.Sprintf("%s: key %q is given twice", where, k), lineOf(data, dec.InputOffset())}
				}
				seen[k] = true
				for _, f := range fields {
					if k != f && strings.EqualFold(k, f) {
						return &keyError{fmt.Sprintf("%s: field %q must be written %q (names are case-sensitive)", where, k, f), lineOf(data, dec.InputOffset())}
					}
				}
				child, childFields, childEntries := where+"."+k, []string(nil), false
				if fields != nil && k == "plugins" && where == "manifest" {
					childEntries = true
				}
				if err := walk(child, childFields, childEntries); err != nil {
					return err
				}
			}
			_, err = dec.Token()
			return err
		}
		return nil
	}
	err := walk("manifest", manifestKeys, false)
	var ke *keyError
	if errors.As(err, &ke) {
		return fmt.Errorf("line %d: %s", ke.line, ke.msg)
	}
	return nil // syntax problems: the decoder reports them
}

type keyError struct {
	msg  string
	line int
}

func (e *keyError) Error() string { return e.msg }

// jsonError adds the line number to a JSON decoding error.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("line %d: %v", lineOf(data, syn.Offset), syn)
	case errors.As(err, &typ):
		return fmt.Errorf("line %d: field %q: %v", lineOf(data, typ.Offset), typ.Field, typ)
	case errors.Is(err, io.EOF):
		return errors.New("manifest is empty")
	}
	return err
}

func lineOf(data []byte, offset int64) int {
	offset = min(max(offset, 0), int64(len(data)))
	return bytes.Count(data[:offset], []byte("\n")) + 1
}

// Validate checks the whole manifest.
func (m *Manifest) Validate() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("manifest version %d is not supported (this switchboard reads version %d): re-run the installer",
			m.Version, ManifestVersion)
	}
	seen := map[string]bool{}
	for i, e := range m.Plugins {
		if err := e.Validate(); err != nil {
			return fmt.Errorf("plugins[%d]: %w", i, err)
		}
		if seen[e.Name] {
			return fmt.Errorf("plugins[%d]: plugin %q is listed twice", i, e.Name)
		}
		seen[e.Name] = true
	}
	return nil
}

// LoadManifest reads and validates the manifest at path. A missing file is
// an error wrapping fs.ErrNotExist, so a caller can treat it as empty.
func LoadManifest(path string) (*Manifest, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read plugin manifest: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read plugin manifest %s: %w", path, err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("plugin manifest %s: %w (fix the file or re-run the installer)", path, err)
	}
	return m, nil
}

// Save writes the manifest atomically (see atomicfile.WriteFile) with
// mode 0600, since settings may hold credentials.
func (m *Manifest) Save(path string) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("save plugin manifest %s: %w", path, err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plugin manifest: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("save plugin manifest: %w", err)
	}
	return nil
}

// Lookup returns the entry named name.
func (m *Manifest) Lookup(name string) (Entry, bool) {
	for _, e := range m.Plugins {
		if e.Name == name {
			return e.Clone(), true
		}
	}
	return Entry{}, false
}

// Put adds e, or replaces the entry of the same name.
func (m *Manifest) Put(e Entry) error {
	if err := e.Validate(); err != nil {
		return err
	}
	for i := range m.Plugins {
		if m.Plugins[i].Name == e.Name {
			m.Plugins[i] = e.Clone()
			return nil
		}
	}
	m.Plugins = append(m.Plugins, e.Clone())
	return nil
}

// Remove deletes the entry named name and reports whether there was one.
func (m *Manifest) Remove(name string) bool {
	n := len(m.Plugins)
	m.Plugins = slices.DeleteFunc(m.Plugins, func(e Entry) bool { return e.Name == name })
	return len(m.Plugins) != n
}

// BuiltinEntry makes the manifest entry of a plugin built into the
// switchboard binary at exe: it runs `exe plugin serve NAME`, and its
// checksum is exe's.
func BuiltinEntry(name string, kind plugins.Kind, exe string, settings map[string]string) (Entry, error) {
	abs, err := filepath.Abs(exe)
	if err != nil {
		return Entry{}, fmt.Errorf("built-in plugin %q: %w", name, err)
	}
	sum, err := FileSHA256(abs)
	if err != nil {
		return Entry{}, fmt.Errorf("built-in plugin %q: %w", name, err)
	}
	e := Entry{
		Name: name, Kind: kind, Path: abs, SHA256: sum,
		Args: []string{"plugin", "serve", name}, Settings: maps.Clone(settings),
	}
	return e, e.Validate()
}

// FileSHA256 returns the lower-case hex SHA-256 of the file at path.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
