package host

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/plugins"
)

// ChecksumState compares a plugin binary on disk with the manifest.
type ChecksumState string

// The checksum states Discover reports.
const (
	// ChecksumOK: the binary's SHA-256 is the one in the manifest.
	ChecksumOK ChecksumState = "ok"
	// ChecksumMismatch: the binary differs from the one the manifest names;
	// the host will refuse to start it.
	ChecksumMismatch ChecksumState = "mismatch"
	// ChecksumNotInManifest: a binary in the plugin directory that no
	// manifest entry names; the host will not start it.
	ChecksumNotInManifest ChecksumState = "not in manifest"
	// ChecksumMissing: the manifest names a binary that is not there (or
	// cannot be read).
	ChecksumMissing ChecksumState = "missing"
)

// Discovered is one plugin found by Discover.
type Discovered struct {
	Name     string        `json:"name"`
	Kind     plugins.Kind  `json:"kind,omitempty"`
	Path     string        `json:"path"`
	Builtin  bool          `json:"builtin"`
	Version  string        `json:"version,omitempty"`
	State    ChecksumState `json:"checksum"`
	Expected string        `json:"expected_sha256,omitempty"`
	Actual   string        `json:"actual_sha256,omitempty"`
	// Detail says what to do when State is not ok.
	Detail string `json:"detail,omitempty"`
}

// Discover lists every plugin the manifest names (built-ins included) and
// every executable file in dir, with the state of its checksum. A missing
// dir is not an error (it only means no third-party plugin is installed);
// m may be nil when there is no manifest.
func Discover(dir string, m *Manifest) ([]Discovered, error) {
	if m == nil {
		m = NewManifest()
	}
	sums := map[string]string{} // path → actual sum, hashed once (built-ins share a binary)
	sumErrs := map[string]error{}
	sumOf := func(path string) (string, error) {
		if s, ok := sums[path]; ok {
			return s, nil
		}
		if err, ok := sumErrs[path]; ok {
			return "", err
		}
		s, err := FileSHA256(path)
		if err != nil {
			sumErrs[path] = err
			return "", err
		}
		sums[path] = s
		return s, nil
	}

	var out []Discovered
	named := map[string]bool{}
	for _, e := range m.Plugins {
		named[e.Path] = true
		d := Discovered{Name: e.Name, Kind: e.Kind, Path: e.Path, Builtin: e.Builtin(), Version: e.Version, Expected: e.SHA256}
		actual, err := sumOf(e.Path)
		switch {
		case err != nil:
			d.State = ChecksumMissing
			d.Detail = fmt.Sprintf("cannot read %s (%v): re-run the installer or remove the plugin from the manifest", e.Path, unwrapPathErr(err))
		case actual != e.SHA256:
			d.State = ChecksumMismatch
			d.Actual = actual
			d.Detail = "the binary is not the one the manifest names; it will not be started: re-run the installer or update the manifest"
		default:
			d.State = ChecksumOK
			d.Actual = actual
		}
		out = append(out, d)
	}

	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("list plugin directory %s: %w", dir, err)
	}
	for _, de := range entries {
		path := filepath.Join(dir, de.Name())
		if named[path] || strings.HasPrefix(de.Name(), ".") {
			continue
		}
		info, err := os.Stat(path) // follows symlinks: an installed link counts
		if err != nil || !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
			continue
		}
		d := Discovered{
			Name:   strings.TrimPrefix(de.Name(), BinaryPrefix),
			Path:   path,
			State:  ChecksumNotInManifest,
			Detail: "not in the manifest, so it will not be started: install it with the installer (which records its checksum)",
		}
		if actual, err := sumOf(path); err == nil {
			d.Actual = actual
		}
		out = append(out, d)
	}
	slices.SortStableFunc(out, func(a, b Discovered) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out, nil
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
