package packaging

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cavaliergopher/cpio"
)

// entry is one file as a package holds it.
type entry struct {
	mode os.FileMode // permission bits
	body []byte
}

const exampleConfig = "# example agent configuration\n[registry]\nurl = \"https://registry.example\"\n"

func writeFile(t *testing.T, path, body string) string {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func testSpec(t *testing.T) Spec {
	t.Helper()
	src := t.TempDir()
	return Spec{
		Version:       "v1.4.0-2-gabc1234-dirty",
		Arch:          "amd64",
		Binary:        writeFile(t, filepath.Join(src, "switchboard"), "#!fake binary\x00\x01\x02"),
		ConfigExample: writeFile(t, filepath.Join(src, "agent.toml.example"), exampleConfig),
		Docs:          []string{writeFile(t, filepath.Join(src, "README.md"), "# Switchboard\n")},
		Maintainer:    "Switchboard maintainers <packages@switchboard.example>",
		License:       "Proprietary",
		MTime:         time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func wantFiles(spec Spec) map[string]entry {
	return map[string]entry{
		BinaryPath:            {0o755, []byte("#!fake binary\x00\x01\x02")},
		ConfigExamplePath:     {0o644, []byte(exampleConfig)},
		DocDir + "/README.md": {0o644, []byte("# Switchboard\n")},
	}
}

func TestBuildWritesDebAndRPMWithTheExpectedFiles(t *testing.T) {
	spec := testSpec(t)
	out := filepath.Join(t.TempDir(), "dist")
	arts, err := Build(spec, out)
	if err != nil {
		t.Fatal(err)
	}
	if len(arts) != 2 || arts[0].Format != "deb" || arts[1].Format != "rpm" {
		t.Fatalf("artifacts %+v", arts)
	}
	if got := filepath.Base(arts[0].Path); got != "switchboard_1.4.0+2.gabc1234.dirty-1_amd64.deb" {
		t.Errorf("deb file name %s", got)
	}
	if got := filepath.Base(arts[1].Path); got != "switchboard-1.4.0+2.gabc1234.dirty-1.x86_64.rpm" {
		t.Errorf("rpm file name %s", got)
	}
	left, _ := os.ReadDir(out)
	if len(left) != 2 {
		t.Errorf("output directory holds %d entries, want the 2 packages only", len(left))
	}

	t.Run("deb", func(t *testing.T) {
		control, data := readDeb(t, arts[0].Path)
		checkFiles(t, data, wantFiles(spec))
		ctl := string(control["/control"].body)
		for _, want := range []string{"Package: switchboard\n", "Version: 1.4.0+2.gabc1234.dirty-1\n", "Architecture: amd64\n", "Maintainer: Switchboard maintainers"} {
			if !strings.Contains(ctl, want) {
				t.Errorf("control lacks %q:\n%s", want, ctl)
			}
		}
		if got := strings.TrimSpace(string(control["/conffiles"].body)); got != ConfigExamplePath {
			t.Errorf("conffiles %q, want %s", got, ConfigExamplePath)
		}
		for _, script := range []string{"preinst", "postinst", "prerm", "postrm"} {
			if _, ok := control["/"+script]; ok {
				t.Errorf("deb has a %s script; packages must not run anything (the installer does)", script)
			}
		}
	})
	t.Run("rpm", func(t *testing.T) {
		hdr, payload := readRPM(t, arts[1].Path)
		if hdr.str(tagName) != "switchboard" || hdr.str(tagVersion) != "1.4.0+2.gabc1234.dirty" || hdr.str(tagRelease) != "1" || hdr.str(tagArch) != "x86_64" {
			t.Errorf("rpm name/version/release/arch %q %q %q %q", hdr.str(tagName), hdr.str(tagVersion), hdr.str(tagRelease), hdr.str(tagArch))
		}
		// The header's file list is what `rpm -qlp` prints.
		dirs, bases, idx := hdr.strs(tagDirNames), hdr.strs(tagBaseNames), hdr.ints(tagDirIndexes)
		flags := hdr.ints(tagFileFlags)
		if len(bases) != len(idx) || len(bases) != len(flags) {
			t.Fatalf("header: %d basenames, %d dir indexes, %d flags", len(bases), len(idx), len(flags))
		}
		listed := map[string]bool{}
		for i, b := range bases {
			p := dirs[idx[i]] + b
			listed[p] = true
			const rpmfileConfig = 1
			if isConfig := flags[i]&rpmfileConfig != 0; isConfig != (p == ConfigExamplePath) {
				t.Errorf("%s: %%config is %v", p, isConfig)
			}
		}
		for p := range wantFiles(spec) {
			if !listed[p] {
				t.Errorf("rpm header does not list %s (lists %v)", p, bases)
			}
		}
		checkFiles(t, payload, wantFiles(spec))
		for _, tag := range []int32{tagPreIn, tagPostIn, tagPreUn, tagPostUn} {
			if _, ok := hdr.entries[tag]; ok {
				t.Errorf("rpm has script tag %d; packages must not run anything (the installer does)", tag)
			}
		}
	})
}

// checkFiles compares the regular files of a package with want; directories
// may be listed too, nothing else may.
func checkFiles(t *testing.T, got, want map[string]entry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("package lacks %s; it holds %v", p, keys(got))
			continue
		}
		if g.mode != w.mode {
			t.Errorf("%s: mode %o, want %o", p, g.mode, w.mode)
		}
		if !bytes.Equal(g.body, w.body) {
			t.Errorf("%s: content %q, want %q", p, g.body, w.body)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("package holds unexpected file %s", p)
		}
	}
}

func keys(m map[string]entry) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestBuildRefusesMissingInputs(t *testing.T) {
	spec := testSpec(t)
	spec.Binary = filepath.Join(t.TempDir(), "nope")
	spec.Version = ""
	out := t.TempDir()
	_, err := Build(spec, out)
	if err == nil || !strings.Contains(err.Error(), "binary") || !strings.Contains(err.Error(), "version") {
		t.Fatalf("error %v, want both the missing binary and version named", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Errorf("a failed build left %d files", len(left))
	}
	spec = testSpec(t)
	spec.Docs = []string{t.TempDir()}
	if _, err := Build(spec, out); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("a directory as doc: %v", err)
	}
}

func TestPackageVersion(t *testing.T) {
	for in, want := range map[string]string{
		"v1.2.0":                  "1.2.0",
		"1.2.0":                   "1.2.0",
		"v1.2.0-3-gabc1234-dirty": "1.2.0+3.gabc1234.dirty",
		"v2.0.0-rc1":              "2.0.0+rc1",
		"abc1234-dirty":           "0.0.0+abc1234.dirty",
		"abc1234":                 "0.0.0+abc1234",
		"9fda9b4-dirty":           "0.0.0+9fda9b4.dirty",
		"1234567":                 "0.0.0+1234567",
		"v2":                      "0.0.0+2",
		"dev":                     "0.0.0+dev",
		"":                        "0.0.0",
		"v1.0_beta/../x y":        "0.0.0+1.0.beta.x.y",
	} {
		if got := PackageVersion(in); got != want {
			t.Errorf("PackageVersion(%q) = %q, want %q", in, got, want)
		}
	}
}

// readDeb returns the control files and data files of a .deb: an ar
// archive of debian-binary, control.tar.gz and data.tar.gz.
func readDeb(t *testing.T, file string) (control, data map[string]entry) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	members := map[string][]byte{}
	var order []string
	rest, ok := bytes.CutPrefix(raw, []byte("!<arch>\n"))
	if !ok {
		t.Fatalf("%s is not an ar archive", file)
	}
	for len(rest) >= 60 {
		h := rest[:60]
		name := strings.TrimSuffix(strings.TrimSpace(string(h[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(h[48:58])))
		if err != nil || string(h[58:60]) != "`\n" || 60+size > len(rest) {
			t.Fatalf("bad ar member header %q", h)
		}
		members[name] = rest[60 : 60+size]
		order = append(order, name)
		rest = rest[60+size:]
		if size%2 == 1 && len(rest) > 0 {
			rest = rest[1:]
		}
	}
	if !slices.Equal(order, []string{"debian-binary", "control.tar.gz", "data.tar.gz"}) {
		t.Fatalf("deb members %v", order)
	}
	if string(members["debian-binary"]) != "2.0\n" {
		t.Errorf("debian-binary %q", members["debian-binary"])
	}
	return readTarGz(t, members["control.tar.gz"]), readTarGz(t, members["data.tar.gz"])
}

func readTarGz(t *testing.T, b []byte) map[string]entry {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]entry{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeDir {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			t.Errorf("%s: tar entry type %c, want regular files only", h.Name, h.Typeflag)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[path.Join("/", h.Name)] = entry{mode: os.FileMode(h.Mode).Perm(), body: body}
	}
}

// RPM header tags (rpmtag.h).
const (
	tagName       = 1000
	tagVersion    = 1001
	tagRelease    = 1002
	tagArch       = 1022
	tagPreIn      = 1023
	tagPostIn     = 1024
	tagPreUn      = 1025
	tagPostUn     = 1026
	tagFileFlags  = 1037
	tagDirIndexes = 1116
	tagBaseNames  = 1117
	tagDirNames   = 1118
)

// rpmHeader is a decoded RPM header: tag → (type, count, data from its offset).
type rpmHeader struct {
	entries map[int32]rpmEntry
}

type rpmEntry struct {
	typ, count uint32
	data       []byte
}

func (h rpmHeader) str(tag int32) string {
	s := h.strs(tag)
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func (h rpmHeader) strs(tag int32) []string {
	e, ok := h.entries[tag]
	if !ok {
		return nil
	}
	var out []string
	rd := bufio.NewReader(bytes.NewReader(e.data))
	for range e.count {
		s, err := rd.ReadString(0)
		if err != nil {
			return out
		}
		out = append(out, strings.TrimSuffix(s, "\x00"))
	}
	return out
}

func (h rpmHeader) ints(tag int32) []int32 {
	e, ok := h.entries[tag]
	if !ok || e.typ != 4 || len(e.data) < int(e.count)*4 {
		return nil
	}
	out := make([]int32, e.count)
	for i := range out {
		out[i] = int32(binary.BigEndian.Uint32(e.data[i*4:]))
	}
	return out
}

// readRPM decodes the lead, skips the signature header, decodes the main
// header and unpacks the gzip'd cpio payload.
func readRPM(t *testing.T, file string) (rpmHeader, map[string]entry) {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 96 || !bytes.Equal(raw[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		t.Fatalf("%s has no RPM lead", file)
	}
	off := 96
	_, n, err := parseRPMHeader(raw[off:])
	if err != nil {
		t.Fatalf("signature header: %v", err)
	}
	off += n
	off += (8 - off%8) % 8 // the signature header is padded to 8 bytes
	hdr, n, err := parseRPMHeader(raw[off:])
	if err != nil {
		t.Fatalf("main header: %v", err)
	}
	off += n
	zr, err := gzip.NewReader(bytes.NewReader(raw[off:]))
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	cr := cpio.NewReader(zr)
	out := map[string]entry{}
	for {
		h, err := cr.Next()
		if err == io.EOF {
			return hdr, out
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Mode.IsDir() {
			continue
		}
		body, err := io.ReadAll(cr)
		if err != nil {
			t.Fatal(err)
		}
		out[path.Join("/", h.Name)] = entry{mode: os.FileMode(h.Mode.Perm()), body: body}
	}
}

func parseRPMHeader(b []byte) (rpmHeader, int, error) {
	if len(b) < 16 || !bytes.Equal(b[:4], []byte{0x8e, 0xad, 0xe8, 0x01}) {
		return rpmHeader{}, 0, fmt.Errorf("no header magic")
	}
	il, dl := int(binary.BigEndian.Uint32(b[8:])), int(binary.BigEndian.Uint32(b[12:]))
	size := 16 + il*16 + dl
	if il > 10000 || dl > 1<<26 || len(b) < size {
		return rpmHeader{}, 0, fmt.Errorf("header of %d entries and %d bytes does not fit", il, dl)
	}
	store := b[16+il*16 : size]
	h := rpmHeader{entries: map[int32]rpmEntry{}}
	for i := range il {
		e := b[16+i*16:]
		tag := int32(binary.BigEndian.Uint32(e))
		typ, offset, count := binary.BigEndian.Uint32(e[4:]), int(binary.BigEndian.Uint32(e[8:])), binary.BigEndian.Uint32(e[12:])
		if offset > len(store) {
			return rpmHeader{}, 0, fmt.Errorf("tag %d: offset %d beyond the data", tag, offset)
		}
		h.entries[tag] = rpmEntry{typ: typ, count: count, data: store[offset:]}
	}
	return h, size, nil
}
