package registry

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// The download page, the installer script and the package files. The page
// is where a partner's link lands (/download?ref=CODE, /r/CODE, and the
// affiliate-style ?via=, ?fpr=, ?code=): it names the partner (partners only,
// and only once approved; never a referral), gives the one-line install
// command with the code in it, and links the packages found in the
// --packages directory.
//
// Web referrals use last-click attribution within 90 days (DESIGN.md, flow
// 6). The click record and the first-party cookie belong to payments
// (attribution.go, trackClick); this page only hands it a usable code.

// Paths of the download routes (documented in openapi.yaml).
const (
	PathDownload      = "/download"
	PathReferralLink  = "/r/{code}"
	PathInstallScript = "/install.sh"
	// PathNamedInstaller serves switchboard-install-<CODE>.sh. A ServeMux
	// wildcard is a whole segment, so the route takes any one-segment name
	// and answers 404 for every name that is not an installer's.
	PathNamedInstaller = "/{file}"
	PathPackage        = "/packages/{file}"
)

// InstallerPrefix and InstallerSuffix frame the compact partner code in an
// installer's file name: switchboard-install-K7QM4XJDR.sh, the name
// partnercode.FromFilename reads back.
const (
	InstallerPrefix = "switchboard-install-"
	InstallerSuffix = ".sh"
)

//go:embed templates/download.html.tmpl templates/install.sh.tmpl
var templateFS embed.FS

var (
	downloadTmpl = htmltemplate.Must(htmltemplate.ParseFS(templateFS, "templates/download.html.tmpl"))
	scriptTmpl   = texttemplate.Must(texttemplate.New("install.sh.tmpl").
			Funcs(texttemplate.FuncMap{"shq": shellQuote}).
			ParseFS(templateFS, "templates/install.sh.tmpl"))
)

// downloadPage is what the page template shows.
type downloadPage struct {
	// Code is the canonical partner code built into the command; empty
	// when the link had none or it cannot be used.
	Code string
	// PartnerName is set for an approved partner of tier partner only.
	PartnerName string
	// Referral: the code is an approved referral's (shown without a name).
	Referral bool
	// Problem explains why a code in the link is not used.
	Problem string
	// Base is the registry's public URL; empty when unknown.
	Base          string
	Command       string
	ManualCommand string
	ScriptURL     string
	ScriptName    string
	Packages      []packageLink
}

type packageLink struct {
	Name, URL, For, Size string
}

// scriptData is what the installer script template gets. Every field has
// been validated to hold only shell-safe characters (see shellQuote).
type scriptData struct {
	Base       string
	Code       string
	ScriptName string
	Packages   []packageFile // one per format and architecture
}

// packageFile is one package in the packages directory.
type packageFile struct {
	Name    string
	Format  string // deb or rpm
	Arch    string // as the format names it (amd64, x86_64); "" if the name does not say
	Size    int64
	ModTime time.Time
}

// handleDownloadPage serves the download page for /download and /r/{code}.
// Whatever the link holds, the answer is the page: a code that cannot be
// used is explained on it and left out of the command.
func (s *Server) handleDownloadPage(w http.ResponseWriter, r *http.Request) {
	page := downloadPage{}
	status := http.StatusOK
	code, err := partnercode.FromLink(r.URL.RequestURI())
	var pe *partnercode.Error
	switch {
	case errors.As(err, &pe) && pe.Kind == partnercode.ErrNotFound:
		// A plain download link: no code, nothing to explain.
	case err != nil:
		page.Problem = "The partner code in this link is not valid: " + err.Error() + "."
	default:
		p, problem, perr := s.usablePartner(r.Context(), code)
		switch {
		case perr != nil:
			s.log.Error("download page: look up partner code", "code", code, "error", perr)
			status = http.StatusServiceUnavailable
			page.Problem = "The registry could not check the partner code just now: reload this page in a minute."
		case problem != "":
			page.Problem = problem
		default:
			page.Code = code.String()
			s.trackClick(w, r, p) // referral cookie and click (attribution.go)
			if p.Tier == store.TierPartner {
				page.PartnerName = p.Name
			} else {
				page.Referral = true
			}
		}
	}

	base, baseErr := s.publicBase(r)
	if baseErr != nil {
		s.log.Warn("download page without install command", "error", baseErr)
	}
	page.Base = base
	pkgs, err := s.listPackages()
	if err != nil {
		s.log.Error("download page: list packages", "dir", s.cfg.PackagesDir, "error", err)
	}
	for _, p := range pkgs {
		// Without a base URL the links are root-relative, which works from
		// both /download and /r/CODE.
		page.Packages = append(page.Packages, packageLink{Name: p.Name, URL: base + "/packages/" + p.Name, For: p.describe(), Size: humanSize(p.Size)})
	}
	manual := []string{"sudo", "switchboard", "install"}
	if page.Code != "" {
		manual = append(manual, "--partner-code", page.Code)
	}
	if base != "" {
		manual = append(manual, "--registry", shellWord(base))
		page.ScriptName = "install.sh"
		if page.Code != "" {
			page.ScriptName = InstallerName(partnercode.Code(page.Code))
		}
		page.ScriptURL = base + "/" + page.ScriptName
		cmd := []string{"curl", "-fsSL", shellWord(base + "/install.sh"), "|", "sudo", "sh", "-s", "--", "--registry", shellWord(base)}
		if page.Code != "" {
			cmd = append(cmd, "--partner-code", page.Code)
		}
		page.Command = strings.Join(cmd, " ")
	}
	page.ManualCommand = strings.Join(manual, " ")

	var buf bytes.Buffer
	if err := downloadTmpl.Execute(&buf, page); err != nil {
		s.fail(w, fmt.Errorf("render download page: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Self-contained: no scripts, no external anything; inline style only.
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache") // a partner's status can change
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// usablePartner says whether code may go into an installer: it must belong
// to an approved partner or referral. problem explains a refusal in words
// for the page; err is a store failure.
func (s *Server) usablePartner(ctx context.Context, code partnercode.Code) (p store.Partner, problem string, err error) {
	p, err = s.store.GetPartner(ctx, code.String())
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrPartnerNotFound):
		return p, fmt.Sprintf("The partner code %s is not known to this registry. Check the link with whoever sent it.", code), nil
	case err != nil:
		return p, "", err
	case p.Status != store.PartnerApproved:
		// Pending and suspended read the same: the public page does not
		// tell the world that a partner was suspended.
		return p, fmt.Sprintf("The partner code %s is not active at the moment. Ask whoever sent the link.", code), nil
	}
	return p, "", nil
}

// handleInstallScript serves /install.sh: the installer without a code
// (a code given to it as --partner-code is passed on).
func (s *Server) handleInstallScript(w http.ResponseWriter, r *http.Request) {
	s.serveScript(w, r, "", "install.sh")
}

// handleNamedInstaller serves switchboard-install-<CODE>.sh with the code
// built in, for an approved partner or referral only; any other one-segment
// path is a 404 like every unknown path.
func (s *Server) handleNamedInstaller(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	middle, ok := strings.CutPrefix(name, InstallerPrefix)
	if ok {
		middle, ok = strings.CutSuffix(middle, InstallerSuffix)
	}
	if !ok {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no endpoint %s %s: see registry/openapi.yaml", r.Method, r.URL.Path))
		return
	}
	code, err := partnercode.Parse(middle)
	if err != nil {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no installer %s: the partner code in the name is not valid: %v", shortName(name), err))
		return
	}
	_, problem, err := s.usablePartner(r.Context(), code)
	switch {
	case err != nil:
		s.fail(w, err)
		return
	case problem != "":
		writeError(w, http.StatusUnprocessableEntity, api.CodeUnknownPartnerCode, problem+" Download the installer without a code from /install.sh instead.")
		return
	}
	s.serveScript(w, r, code, InstallerName(code))
}

// InstallerName is the file name of the installer with code built in.
func InstallerName(code partnercode.Code) string {
	return InstallerPrefix + code.Compact() + InstallerSuffix
}

func (s *Server) serveScript(w http.ResponseWriter, r *http.Request, code partnercode.Code, name string) {
	base, err := s.publicBase(r)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "cannot write the installer: "+err.Error())
		return
	}
	pkgs, err := s.listPackages()
	if err != nil {
		s.fail(w, fmt.Errorf("list packages in %s: %w", s.cfg.PackagesDir, err))
		return
	}
	data := scriptData{Base: base, Code: string(code), ScriptName: name, Packages: newestPerArch(pkgs)}
	var buf bytes.Buffer
	if err := scriptTmpl.Execute(&buf, data); err != nil {
		s.fail(w, fmt.Errorf("render installer script: %w", err))
		return
	}
	h := w.Header()
	if code != "" {
		h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
		h.Set("Content-Type", "application/x-sh")
	} else {
		// Plain text, so it can be read in a browser before piping it to sh.
		h.Set("Content-Type", "text/plain; charset=utf-8")
	}
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(buf.Bytes()))
}

// handlePackage serves one file of the packages directory.
func (s *Server) handlePackage(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	notFound := func() {
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no package %s on this registry: see %s for the list", shortName(name), PathDownload))
	}
	format := packageFormat(name)
	if s.cfg.PackagesDir == "" || format == "" {
		notFound()
		return
	}
	root, err := os.OpenRoot(s.cfg.PackagesDir)
	if err != nil {
		s.fail(w, fmt.Errorf("open packages directory: %w", err))
		return
	}
	defer root.Close()
	// os.Root keeps a symlink from leading out of the directory.
	f, err := root.Open(name)
	if err != nil {
		notFound()
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		notFound()
		return
	}
	if format == "deb" {
		w.Header().Set("Content-Type", "application/vnd.debian.binary-package")
	} else {
		w.Header().Set("Content-Type", "application/x-rpm")
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, name, fi.ModTime(), f)
}

// packageName is what a package file may be called to be listed and
// served: a plain name that is also a safe shell word and URL path segment.
var packageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+~-]*\.(deb|rpm)$`)

// packageFormat is "deb" or "rpm" for a servable package name, else "".
func packageFormat(name string) string {
	if len(name) > 200 || !packageName.MatchString(name) {
		return ""
	}
	return name[len(name)-3:]
}

// packageArch reads the architecture from a conventional package name:
// name_version_ARCH.deb, name-version-release.ARCH.rpm.
func packageArch(name, format string) string {
	stem := strings.TrimSuffix(name, "."+format)
	var arch string
	if format == "deb" {
		if i := strings.LastIndexByte(stem, '_'); i >= 0 {
			arch = stem[i+1:]
		}
	} else if i := strings.LastIndexByte(stem, '.'); i >= 0 {
		arch = stem[i+1:]
	}
	if arch == "" || strings.ContainsAny(arch, ".+~") {
		return ""
	}
	return arch
}

// listPackages returns the package files that exist in the packages
// directory (regular files, symlinks only when they stay inside), by name.
func (s *Server) listPackages() ([]packageFile, error) {
	if s.cfg.PackagesDir == "" {
		return nil, nil
	}
	root, err := os.OpenRoot(s.cfg.PackagesDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	entries, err := os.ReadDir(s.cfg.PackagesDir)
	if err != nil {
		return nil, err
	}
	var out []packageFile
	for _, e := range entries {
		format := packageFormat(e.Name())
		if format == "" {
			continue
		}
		fi, err := root.Stat(e.Name())
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, packageFile{Name: e.Name(), Format: format, Arch: packageArch(e.Name(), format), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// newestPerArch keeps, for each format and architecture, the most recently
// written package: the one the installer script downloads.
func newestPerArch(pkgs []packageFile) []packageFile {
	best := map[string]packageFile{}
	for _, p := range pkgs {
		if p.Arch == "" {
			continue
		}
		k := p.Format + "/" + p.Arch
		if b, ok := best[k]; !ok || p.ModTime.After(b.ModTime) || (p.ModTime.Equal(b.ModTime) && p.Name > b.Name) {
			best[k] = p
		}
	}
	out := make([]packageFile, 0, len(best))
	for _, p := range best {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b packageFile) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func (p packageFile) describe() string {
	family := "Debian, VitalPBX"
	if p.Format == "rpm" {
		family = "FreePBX, Issabel, RHEL family"
	}
	if p.Arch == "" {
		return family
	}
	return family + " (" + p.Arch + ")"
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d bytes", n)
	}
}

// publicBase is the registry URL the installer and the page point at: the
// configured public URL, or else the scheme and Host of the request. Both
// end up in a shell script, so anything beyond a plain URL is refused.
func (s *Server) publicBase(r *http.Request) (string, error) {
	if s.cfg.PublicURL != "" {
		base := strings.TrimRight(s.cfg.PublicURL, "/")
		if err := checkBaseURL(base); err != nil {
			return "", fmt.Errorf("the registry's public URL %q %v: fix --public-url", shortName(s.cfg.PublicURL), err)
		}
		return base, nil
	}
	if !requestHost.MatchString(r.Host) {
		return "", fmt.Errorf("the request's Host %q is not a plain host name: start the registry with --public-url", shortName(r.Host))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host, nil
}

// requestHost is a host name or IP with an optional port.
var requestHost = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(:[0-9]{1,5})?$`)

// safeURLChars are the characters a base URL may hold: enough for any
// host, port and path, and nothing a shell or HTML treats specially.
var safeURLChars = regexp.MustCompile(`^[A-Za-z0-9.:/_~%+\[\]-]+$`)

func checkBaseURL(base string) error {
	if !safeURLChars.MatchString(base) {
		return errors.New("holds characters other than letters, digits and . : / _ ~ % + - [ ]")
	}
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("is not a URL (%v)", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return errors.New("must start with http:// or https://")
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("must be scheme://host[:port][/path] without user, query or fragment")
	}
	return nil
}

// shellQuote quotes s for a POSIX shell. The values it is given were
// validated before (canonical codes, checked URLs, package names), so a
// quote or control character here is a bug, and it refuses rather than
// escaping its way through.
func shellQuote(s string) (string, error) {
	for _, c := range s {
		if c == '\'' || c < 0x20 || c == 0x7f {
			return "", fmt.Errorf("refusing to put %q into a shell script", s)
		}
	}
	return "'" + s + "'", nil
}

// shellWord leaves a word bare when the shell would read it as it is, and
// single-quotes it otherwise (for the command shown on the page).
func shellWord(s string) string {
	if bareWord.MatchString(s) {
		return s
	}
	q, err := shellQuote(s)
	if err != nil {
		return "" // unreachable for validated input; never emit it unquoted
	}
	return q
}

var bareWord = regexp.MustCompile(`^[A-Za-z0-9.:/_%+-]+$`)

// shortName bounds user-supplied names quoted back in messages.
func shortName(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
