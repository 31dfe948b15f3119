package installer

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeConf writes name under dir with text.
func writeConf(t testing.TB, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// parseText parses text as dir/name.conf with dir as the include directory.
func parseText(t testing.TB, dir, text string) (*confDoc, error) {
	t.Helper()
	return parseConf(writeConf(t, dir, "main.conf", text), dir, dir)
}

// userOf returns the merged section name from a parse of text.
func varOf(d *confDoc, section, key string) (string, bool) {
	s := d.section(section)
	if s == nil {
		return "", false
	}
	return s.get(key)
}

func TestIncludeLoopsAreNamedNotFollowed(t *testing.T) {
	t.Run("self", func(t *testing.T) {
		dir := t.TempDir()
		_, err := parseText(t, dir, "[general]\n#include main.conf\n")
		if err == nil || !strings.Contains(err.Error(), "include loop") || !strings.Contains(err.Error(), "main.conf includes") {
			t.Fatalf("self include: %v", err)
		}
	})
	t.Run("two files", func(t *testing.T) {
		dir := t.TempDir()
		writeConf(t, dir, "b.conf", "#tryinclude \"main.conf\"\n")
		_, err := parseText(t, dir, "#include b.conf\n")
		if err == nil || !strings.Contains(err.Error(), "include loop") || !strings.Contains(err.Error(), "b.conf") {
			t.Fatalf("a→b→a: %v", err)
		}
	})
	t.Run("glob matching itself", func(t *testing.T) {
		dir := t.TempDir()
		for _, n := range []string{"x.conf", "y.conf", "z.conf"} {
			writeConf(t, dir, n, "#include *.conf\n")
		}
		start := time.Now()
		_, err := parseText(t, dir, "#include *.conf\n")
		if err == nil || !strings.Contains(err.Error(), "include loop") {
			t.Fatalf("glob loop: %v", err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("glob loop took %v", d) // a guard against exponential work, not a speed test
		}
	})
	t.Run("symlink alias", func(t *testing.T) {
		dir := t.TempDir()
		if err := os.Symlink("main.conf", filepath.Join(dir, "alias.conf")); err != nil {
			t.Skip(err)
		}
		_, err := parseText(t, dir, "#include alias.conf\n")
		if err == nil || !strings.Contains(err.Error(), "include loop") {
			t.Fatalf("symlink loop: %v", err)
		}
	})
	t.Run("same file twice is no loop", func(t *testing.T) {
		dir := t.TempDir()
		writeConf(t, dir, "users.conf", "[u]\ntype = user\n")
		d, err := parseText(t, dir, "#include users.conf\n#include users.conf\n")
		if err != nil || len(d.Sections) != 2 {
			t.Fatalf("twice: %v %+v", err, d)
		}
	})
	t.Run("fan-out is bounded", func(t *testing.T) {
		// f0 includes f1 twice, f1 includes f2 twice…: no loop, but 2^9
		// reads. The parser stops at maxConfFiles.
		dir := t.TempDir()
		for i := range maxIncludeDepth - 1 {
			next := "f" + string(rune('0'+i+1)) + ".conf"
			if i == maxIncludeDepth-2 {
				next = "leaf.conf"
			}
			writeConf(t, dir, "f"+string(rune('0'+i))+".conf", "#include "+next+"\n#include "+next+"\n")
		}
		writeConf(t, dir, "leaf.conf", "[x]\na = 1\n")
		_, err := parseText(t, dir, "#include f0.conf\n")
		if err == nil || !strings.Contains(err.Error(), "files included in all") {
			t.Fatalf("fan-out: %v", err)
		}
	})
	t.Run("depth", func(t *testing.T) {
		dir := t.TempDir()
		for i := range maxIncludeDepth + 2 {
			writeConf(t, dir, filepath.Join("d", strings.Repeat("n", i+1)+".conf"), "#include "+strings.Repeat("n", i+2)+".conf\n")
		}
		_, err := parseConf(filepath.Join(dir, "d", "n.conf"), filepath.Join(dir, "d"), dir)
		if err == nil || !strings.Contains(err.Error(), "deeper than 10") {
			t.Fatalf("depth: %v", err)
		}
	})
}

func TestConfFilesThatAreNotConfigFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/dev/zero", filepath.Join(dir, "zero.conf")); err != nil {
		t.Skip(err)
	}
	_, err := parseText(t, dir, "#include zero.conf\n")
	if err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("/dev/zero: %v", err)
	}
	big := filepath.Join(dir, "big.conf")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(maxConfFileSize + 1); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()
	if _, err := parseText(t, dir, "#include big.conf\n"); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("huge include: %v", err)
	}
}

func TestConfCommentsAsAsteriskReadsThem(t *testing.T) {
	dir := t.TempDir()
	text := strings.Join([]string{
		";-------------------------------- a ruler, not a block comment",
		"[general]",
		"enabled = yes",
		";-- a block",
		"enabled = no",
		" ;-- nested --; still inside",
		"--; bindaddr = 127.0.0.1",
		";--;--; open: the first --; lies inside its own opener",
		"bindport = 1",
		"--;",
		"prefix = a\\;b ; c",
		"servername=x;--inline--;y",
	}, "\n")
	d, err := parseText(t, dir, text)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"enabled": "yes", "bindaddr": "127.0.0.1", "prefix": "a;b", "servername": "xy"} {
		if got, _ := varOf(d, "general", k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if v, ok := varOf(d, "general", "bindport"); ok {
		t.Errorf("bindport %q read from inside a block comment", v)
	}
}

func TestSetConfKeySkipsCommentedSections(t *testing.T) {
	in := ";--\n[general]\nenabled = no\n--;\n"
	out := setConfKey(in, "general", "enabled", "yes")
	d, err := parseText(t, t.TempDir(), out)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := varOf(d, "general", "enabled"); v != "yes" {
		t.Fatalf("enabled %q after edit:\n%s", v, out)
	}
	// A file that ends inside an open block comment gets it closed.
	out = setConfKey("[other]\n;-- forgotten\n", "general", "enabled", "yes")
	if d, err = parseText(t, t.TempDir(), out); err != nil {
		t.Fatal(err)
	}
	if v, _ := varOf(d, "general", "enabled"); v != "yes" {
		t.Fatalf("enabled %q after edit:\n%s", v, out)
	}
}

func TestARIUserChecks(t *testing.T) {
	good := []struct{ user, pw string }{
		{"switchboard", "s3cret"},
		{"sb.agent@pbx-1", "a;b=c=>d"},
		{"x", `back\slash\;and;semi ;-- not a comment --;`},
		{"u", "\u00e9t\u00e9 [brackets] #hash"},
		{strings.Repeat("u", maxARIUserLen), strings.Repeat("p", maxARIPasswordLen)},
	}
	for _, c := range good {
		if err := checkARIUser(c.user, c.pw); err != nil {
			t.Errorf("%q/%q refused: %v", c.user, c.pw, err)
			continue
		}
		d, err := parseText(t, t.TempDir(), appendBlock("[general]\nenabled = yes\n", ariUserBlock(c.user, c.pw)))
		if err != nil {
			t.Fatal(err)
		}
		if pw, _ := varOf(d, c.user, "password"); pw != c.pw {
			t.Errorf("password %q read back as %q", c.pw, pw)
		}
	}
	bad := []struct{ user, pw, want string }{
		{"", "pw", "1 to 79"},
		{strings.Repeat("u", maxARIUserLen+1), "pw", "1 to 79"},
		{"a]b", "pw", "[section] name"},
		{"a b", "pw", "[section] name"},
		{"a\nb", "pw", "[section] name"},
		{"General", "pw", "[general] section"},
		{"u", "", "1 to 255"},
		{"u", strings.Repeat("p", maxARIPasswordLen+1), "1 to 255"},
		{"u", " lead", "space"},
		{"u", "trail ", "space"},
		{"u", "line\nbreak", "control character"},
		{"u", "cr\rhere", "control character"},
		{"u", "tab\there", "control character"},
		{"u", "nul\x00", "control character"},
		{"u", "bad\xffutf8", "UTF-8"},
	}
	for _, c := range bad {
		err := checkARIUser(c.user, c.pw)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q/%q: %v, want an error with %q", c.user, c.pw, err, c.want)
		}
	}
}

func TestConfigureARIRefusesAPasswordAriConfCannotHold(t *testing.T) {
	reg := newFakeRegistry(t)
	root := copyRoot(t, "plain-asterisk")
	before := snapshot(t, root)
	opts := installOpts(t, root, reg.srv.URL)
	opts.ConfigureARI = true
	opts.ARIPassword = "two\nlines"
	_, err := Prepare(context.Background(), opts)
	if err == nil || !strings.Contains(err.Error(), "control character") {
		t.Fatalf("prepare: %v", err)
	}
	sameTree(t, "refused password", before, snapshot(t, root))

	// A password with ';' and '=' is written escaped and reads back intact.
	opts.ARIPassword = "p;w=x=>y"
	mustInstall(t, opts)
	h, err := Detect(context.Background(), root, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, ok := h.Asterisk.ARI.user(DefaultARIUser)
	if !ok || u.password != opts.ARIPassword {
		t.Fatalf("ARI user after install: %+v (password %q)", u, u.password)
	}
}

func TestParseOdooConf(t *testing.T) {
	text := "[options]\n" +
		"; comment\n" +
		"HTTP_PORT = 8070\n" +
		"db_host: db=primary\n" +
		"addons_path = /opt/odoo/addons,\n" +
		"    /opt/my addons\n" +
		"db_name = False\n" +
		"[options] ; trailing\n" +
		"db_user = odoo\n" +
		"[other]\n" +
		"db_port = 1\n"
	var o OdooInfo
	o.HTTPPort = 8069
	notes, err := parseOdooConf(strings.NewReader(text), "odoo.conf", &o)
	if err != nil || len(notes) != 0 {
		t.Fatalf("%v %v", err, notes)
	}
	want := OdooInfo{HTTPPort: 8070, DBHost: "db=primary", AddonsPath: "/opt/odoo/addons,/opt/my addons", DBUser: "odoo"}
	if o != want {
		t.Fatalf("got %+v\nwant %+v", o, want)
	}
	long := "[options]\nx = " + strings.Repeat("a", maxOdooConfLine) + "\n"
	if _, err := parseOdooConf(strings.NewReader(long), "odoo.conf", &o); err == nil || !strings.Contains(err.Error(), "line 2 is longer") {
		t.Fatalf("long line: %v", err)
	}
}

func FuzzParseOdooConf(f *testing.F) {
	for _, p := range []string{"testdata/roots/odoo/etc/odoo/odoo.conf"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("[options]\nhttp_port = 99999\nhttp_interface = \n  evil/host\n"))
	f.Add([]byte("[options]\nhttp_interface = [::1]\nxmlrpc_port: 8070\n"))
	f.Add([]byte("[options\n]\n\t= x\n:"))
	root := f.TempDir() // one root, rewritten by every run: a fresh one costs more than the parse
	f.Fuzz(func(t *testing.T, data []byte) {
		writeConf(t, root, "etc/odoo/odoo.conf", string(data))
		h, err := Detect(context.Background(), root, false, nil)
		if err != nil {
			t.Fatalf("Detect must note a bad odoo.conf, not fail: %v", err)
		}
		if h.Odoo == nil {
			t.Fatal("odoo.conf present but no Odoo detected")
		}
		u, err := url.Parse(h.Odoo.URL)
		if err != nil || u.Host == "" || u.Scheme != "http" || u.Path != "" {
			t.Fatalf("Odoo URL %q from odoo.conf: %v", h.Odoo.URL, err)
		}
		if h.Odoo.HTTPPort <= 0 || h.Odoo.HTTPPort > 65535 {
			t.Fatalf("port %d", h.Odoo.HTTPPort)
		}
	})
}

// FuzzParseAsteriskConf reads fuzzed http.conf and ari.conf (each may
// include the other and inc.conf) through Detect: it must never fail or
// hang, and the ARI URL it derives must be a URL.
func FuzzParseAsteriskConf(f *testing.F) {
	for _, root := range []string{"plain-asterisk", "freepbx", "issabel", "vitalpbx"} {
		httpConf, _ := os.ReadFile(filepath.Join("testdata/roots", root, "etc/asterisk/http.conf"))
		ariConf, _ := os.ReadFile(filepath.Join("testdata/roots", root, "etc/asterisk/ari.conf"))
		f.Add(httpConf, ariConf, []byte(""))
	}
	f.Add([]byte("[general]\nenabled=yes\nbindaddr=::\nprefix=/a b?c#d\n"), []byte("#include inc.conf\n"), []byte("#include ari.conf\n"))
	f.Add([]byte("[general](!)\n[general](+)\nbindport=0x50\n"), []byte("[u](t)\ntype=>user\npassword=a\\;b\n"), []byte("#include *\n"))
	f.Add([]byte(";--\n[general]\n--;\n;---\n"), []byte("#tryinclude </etc/asterisk/inc.conf>\n"), []byte("[\n"))
	root := f.TempDir()
	f.Fuzz(func(t *testing.T, httpConf, ariConf, inc []byte) {
		writeConf(t, root, "etc/asterisk/asterisk.conf", "[directories]\nastetcdir => /etc/asterisk\n")
		writeConf(t, root, "etc/asterisk/http.conf", string(httpConf))
		writeConf(t, root, "etc/asterisk/ari.conf", string(ariConf))
		writeConf(t, root, "etc/asterisk/inc.conf", string(inc))
		h, err := Detect(context.Background(), root, false, nil)
		if err != nil {
			t.Fatalf("Detect must note a bad file, not fail: %v", err)
		}
		a := h.Asterisk
		if a == nil {
			t.Fatal("no Asterisk detected")
		}
		u, err := url.Parse(a.ARI.URL)
		if a.ARI.File != "" {
			if err != nil || u.Host == "" || u.Port() == "" || !strings.HasSuffix(u.Path, "/ari") || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("ARI URL %q from http.conf: %v", a.ARI.URL, err)
			}
			if h := u.Hostname(); net.ParseIP(h) == nil && !validHostname(h) {
				t.Fatalf("ARI URL %q: host %q is not an address", a.ARI.URL, h)
			}
		}
		for _, usr := range a.ARI.Users {
			if strings.ContainsAny(usr.Name, "\n]") {
				t.Fatalf("user name %q", usr.Name)
			}
		}
	})
}

// FuzzEditAsteriskConf checks what --configure-ari writes: on any file
// that parses, the enabled key and the ARI user block read back as set,
// and uninstall's removal gives the file back.
func FuzzEditAsteriskConf(f *testing.F) {
	for _, root := range []string{"plain-asterisk", "vitalpbx"} {
		ariConf, _ := os.ReadFile(filepath.Join("testdata/roots", root, "etc/asterisk/ari.conf"))
		f.Add(ariConf, "switchboard", "pw")
	}
	f.Add([]byte("[general]\n;--\n[general]\nenabled=no\n--;\n"), "sb", "a;b=c")
	f.Add([]byte("[other]\n;-- open\n"), "sb", `x\;y`)
	f.Add([]byte("; no newline at end"), "sb", "p;--q--;r")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, orig []byte, user, password string) {
		text := string(orig)
		d0, err := parseText(t, dir, text)
		if err != nil || bytes.Contains(orig, []byte("#")) {
			return // unreadable as it is, or includes: nothing to compare
		}
		edited := setConfKey(text, "general", "enabled", "yes")
		d1, err := parseText(t, dir, edited)
		if err != nil {
			t.Fatalf("edited file does not parse: %v\n%q", err, edited)
		}
		if v, _ := varOf(d1, "general", "enabled"); v != "yes" {
			t.Fatalf("enabled = %q after setConfKey:\n%q", v, edited)
		}
		if checkARIUser(user, password) != nil || d0.section(user) != nil {
			return
		}
		withUser := appendBlock(text, ariUserBlock(user, password))
		d2, err := parseText(t, dir, withUser)
		if err != nil {
			t.Fatalf("file with the user does not parse: %v\n%q", err, withUser)
		}
		if pw, _ := varOf(d2, user, "password"); pw != password {
			t.Fatalf("password %q reads back as %q:\n%q", password, pw, withUser)
		}
		if ty, _ := varOf(d2, user, "type"); ty != "user" {
			t.Fatalf("type %q:\n%q", ty, withUser)
		}
		back, ok := removeMarkedBlock(withUser)
		if !ok {
			t.Fatalf("uninstall cannot find the block in %q", withUser)
		}
		if d3, err := parseText(t, dir, back); err != nil || d3.section(user) != nil {
			t.Fatalf("after removal: %v, user still there in %q", err, back)
		}
	})
}

// TestUnitConfigArgReadsLongAndContinuedLines: a unit with a line over
// bufio.Scanner's 64 KiB default (a long Environment=) before ExecStart,
// or an ExecStart split with backslashes, still names the config file;
// an oversized or odd unit is noted, not silently skipped.
func TestUnitConfigArgReadsLongAndContinuedLines(t *testing.T) {
	long := "Environment=PYTHONPATH=" + strings.Repeat("/opt/odoo/lib:", 10<<10) + "\n"
	cases := []struct {
		name, unit, want, note string
	}{
		{"long line first", "[Service]\n" + long + "ExecStart=/usr/bin/odoo -c /etc/custom/odoo.conf\n", "/etc/custom/odoo.conf", ""},
		{"long ExecStart", "[Service]\nExecStart=/usr/bin/odoo " + strings.Repeat("--dev=all ", 10<<10) + "--config=/srv/odoo.conf\n", "/srv/odoo.conf", ""},
		{"continued", "[Service]\nExecStart=/usr/bin/odoo \\\n  # a comment inside\n  --config \\\n  /etc/odoo/prod.conf\n", "/etc/odoo/prod.conf", ""},
		{"quoted and prefixed", "[Service]\nExecStart=-/usr/bin/odoo \"--config=/etc/my odoo/odoo.conf\"\n", "/etc/my odoo/odoo.conf", ""},
		{"glued short option", "[Service]\nExecStart = /usr/bin/odoo -c/etc/o.conf\n", "/etc/o.conf", ""},
		{"reset keeps the last", "[Service]\nExecStart=/usr/bin/odoo -c /etc/a.conf\nExecStart=\nExecStart=/usr/bin/odoo -c /etc/b.conf\n", "/etc/b.conf", ""},
		{"other section ignored", "[Unit]\nExecStart=/usr/bin/odoo -c /etc/wrong.conf\n[Service]\nExecStart=/usr/bin/odoo\n", "", ""},
		{"relative path", "[Service]\nExecStart=/usr/bin/odoo -c ../../etc/shadow\n", "", "not an absolute path"},
		{"too large", "[Service]\n" + strings.Repeat(long, 100) + "ExecStart=/usr/bin/odoo -c /etc/x.conf\n", "", "larger than"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			unit := "/etc/systemd/system/odoo.service"
			if err := os.MkdirAll(filepath.Join(root, filepath.Dir(unit)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(root, unit), []byte(c.unit), 0o644); err != nil {
				t.Fatal(err)
			}
			d := &detector{root: root}
			if got := d.unitConfigArg(unit); got != c.want {
				t.Errorf("got %q, want %q (notes %q)", got, c.want, d.notes)
			}
			notes := strings.Join(d.notes, "\n")
			if c.note == "" && notes != "" || c.note != "" && !strings.Contains(notes, c.note) {
				t.Errorf("notes %q, want one with %q", notes, c.note)
			}
		})
	}
}
