// Package packaging builds the switchboard .deb and .rpm packages with nfpm
// (github.com/goreleaser/nfpm/v2) used as a library. FreePBX and Issabel are
// RPM-based, VitalPBX is Debian-based, so both formats ship from one build.
//
// A package holds the binary, the example agent configuration and the
// product's docs, and nothing else: no maintainer scripts. Writing the
// configuration, the systemd unit and starting the agent is the job of
// `switchboard install`, which asks for the partner code, can roll back and
// can run again; a package script that started a half-configured agent
// would do none of that.
package packaging

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the "deb" packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the "rpm" packager

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
)

// Formats are the package formats Build produces.
var Formats = []string{"deb", "rpm"}

// Where things go inside the packages.
const (
	BinaryPath        = "/usr/bin/switchboard"
	ConfigExamplePath = "/etc/switchboard/agent.toml.example"
	DocDir            = "/usr/share/doc/switchboard"
)

// Spec describes one package build.
type Spec struct {
	// Name is the package name; empty means "switchboard".
	Name string
	// Version is the version as `git describe --tags --always --dirty`
	// prints it (v1.2.0, v1.2.0-3-gabc1234-dirty, abc1234, dev); see
	// PackageVersion for what the packages get.
	Version string
	// Arch is the Go architecture the binary was built for (amd64, arm64);
	// nfpm names it the Debian or RPM way.
	Arch string
	// Binary is the switchboard executable to ship as /usr/bin/switchboard.
	Binary string
	// ConfigExample is a file holding the output of
	// `switchboard agent config example`, shipped as ConfigExamplePath.
	ConfigExample string
	// Docs are files shipped under DocDir by their base name (README,
	// licence).
	Docs []string
	// Maintainer ("Name <email>"), Vendor, Homepage and License fill the
	// package metadata.
	Maintainer string
	Vendor     string
	Homepage   string
	License    string
	// MTime is the time stamped on every file; zero means
	// SOURCE_DATE_EPOCH when set, else now (nfpm's rule).
	MTime time.Time
}

// Artifact is one package file written by Build.
type Artifact struct {
	Format string `json:"format"`
	Path   string `json:"path"`
	Size   int64  `json:"size"`
}

// Build writes one package per format in Formats into outDir, which it
// creates, and returns them. A package is written to a temporary file and
// renamed, so outDir never holds a half-written package.
func Build(spec Spec, outDir string) ([]Artifact, error) {
	if err := spec.check(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory %s: %w", outDir, err)
	}
	var out []Artifact
	for _, format := range Formats {
		a, err := buildOne(spec, format, outDir)
		if err != nil {
			return out, fmt.Errorf("build %s package: %w", format, err)
		}
		out = append(out, a)
	}
	return out, nil
}

// check says what is missing before nfpm gets a chance to fail obscurely.
func (s Spec) check() error {
	var errs []error
	if s.Version == "" {
		errs = append(errs, errors.New("no version given: pass the version (e.g. from git describe)"))
	}
	if s.Arch == "" {
		errs = append(errs, errors.New("no architecture given: pass the Go architecture the binary was built for (amd64, arm64)"))
	}
	for what, path := range map[string]string{"binary": s.Binary, "config example": s.ConfigExample} {
		if path == "" {
			errs = append(errs, fmt.Errorf("no %s file given", what))
			continue
		}
		if err := regularFile(path); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	for _, d := range s.Docs {
		if err := regularFile(d); err != nil {
			errs = append(errs, fmt.Errorf("doc: %w", err))
		}
	}
	return errors.Join(errs...)
}

func regularFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}

// info is the nfpm description of the package for one format.
func (s Spec) info(format string) *nfpm.Info {
	name := s.Name
	if name == "" {
		name = "switchboard"
	}
	contents := files.Contents{
		{Source: s.Binary, Destination: BinaryPath, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		// A config file, so a changed copy survives upgrades (dpkg conffile,
		// rpm %config). The agent never reads it: it documents the keys.
		{Source: s.ConfigExample, Destination: ConfigExamplePath, Type: files.TypeConfig, FileInfo: &files.ContentFileInfo{Mode: 0o644}},
	}
	for _, d := range s.Docs {
		contents = append(contents, &files.Content{Source: d, Destination: DocDir + "/" + filepath.Base(d), FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}
	info := &nfpm.Info{
		Name:     name,
		Arch:     s.Arch,
		Platform: "linux",
		// Our own normalisation (PackageVersion) instead of nfpm's semver
		// split, which would put a git describe suffix before the release.
		Version:         PackageVersion(s.Version),
		VersionSchema:   "none",
		Release:         "1",
		Section:         "net",
		Priority:        "optional",
		Maintainer:      s.Maintainer,
		Vendor:          s.Vendor,
		Homepage:        s.Homepage,
		License:         s.License,
		DisableGlobbing: true, // paths are literal; a [ in a name is not a pattern
		MTime:           s.MTime,
		Description: "Switchboard agent and installer for Asterisk-based PBXs and Odoo\n" +
			"Links the install to the partner who brought it, reports heartbeats to the\n" +
			"vendor registry and routes support requests. Run 'switchboard install' to\n" +
			"configure and start it; the package itself starts nothing.",
	}
	info.Overridables = nfpm.Overridables{Contents: contents}
	// gzip: read by every dpkg and rpm still in the field, including the
	// CentOS 7 based FreePBX (SNG7) and Issabel 4 images.
	info.Deb.Compression = "gzip"
	info.RPM.Compression = "gzip"
	info.RPM.Summary = "Switchboard agent and installer for Asterisk-based PBXs and Odoo"
	info.RPM.Group = "Applications/Communications"
	return nfpm.WithDefaults(info)
}

func buildOne(spec Spec, format, outDir string) (Artifact, error) {
	packager, err := nfpm.Get(format)
	if err != nil {
		return Artifact{}, err
	}
	info := spec.info(format)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return Artifact{}, err
	}
	name := packager.ConventionalFileName(info)
	dst := filepath.Join(outDir, name)
	if err := atomicfile.Write(dst, 0o644, func(w io.Writer) error { return packager.Package(info, w) }); err != nil {
		return Artifact{}, fmt.Errorf("build %s package: %w", format, err)
	}
	fi, err := os.Stat(dst)
	if err != nil {
		return Artifact{}, err
	}
	return Artifact{Format: format, Path: dst, Size: fi.Size()}, nil
}

// PackageVersion turns a git describe version into one dpkg and rpm both
// accept and order correctly:
//
//	v1.2.0                   → 1.2.0
//	v1.2.0-3-gabc1234-dirty  → 1.2.0+3.gabc1234.dirty  (after 1.2.0)
//	9fda9b4-dirty, dev       → 0.0.0+9fda9b4.dirty, 0.0.0+dev
//
// dpkg needs a leading digit, rpm forbids '-' in a version, and '+' sorts
// after the base version in both (a '~' would sort before it).
func PackageVersion(v string) string {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	base, rest, _ := strings.Cut(v, "-")
	// Only a dotted number is a release; a bare commit hash can start with
	// (or be all) digits, so it goes after 0.0.0 like any untagged build.
	if !releaseVersion.MatchString(base) {
		base, rest = "0.0.0", v
	}
	if rest = strings.Trim(sanitizeVersion(rest), "."); rest != "" {
		return base + "+" + rest
	}
	return base
}

var releaseVersion = regexp.MustCompile(`^[0-9]+(\.[0-9]+)+$`)

// sanitizeVersion keeps letters, digits and dots; anything else becomes a
// dot, and runs of dots become one.
func sanitizeVersion(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '.':
			return r
		default:
			return '.'
		}
	}, s)
	for strings.Contains(s, "..") {
		s = strings.ReplaceAll(s, "..", ".")
	}
	return s
}
