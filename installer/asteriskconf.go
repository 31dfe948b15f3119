package installer

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Asterisk configuration files (asterisk.conf, http.conf, ari.conf) are
// INI-like: [section] headers, optionally followed by "(!)" or
// "(template)", "key = value" or "key => value" lines, ";" comments (with
// "\;" an escaped semicolon and ";-- … --;" block comments), and
// "#include"/"#tryinclude" of other files relative to the configuration
// directory, whose lines continue the current section. FreePBX relies on
// the includes (ari.conf includes ari_additional.conf and
// ari_additional_custom.conf), so reading a file means following them.

// confVar is one key = value line.
type confVar struct {
	Key, Value string
	File       string // path on disk
	Line       int
}

// confSection is one [name] block; a name may appear several times.
type confSection struct {
	Name string
	File string
	Vars []confVar
}

func (s *confSection) get(key string) (string, bool) {
	v, ok := "", false
	// Later lines win, as in Asterisk for single-valued options.
	for _, kv := range s.Vars {
		if strings.EqualFold(kv.Key, key) {
			v, ok = kv.Value, true
		}
	}
	return v, ok
}

// confDoc is a parsed file with its includes.
type confDoc struct {
	Sections []*confSection
	// Includes lists every file named by an #include or #tryinclude, as
	// written, and whether it was found.
	Includes []confInclude
}

type confInclude struct {
	Name  string
	Path  string
	Found bool
	Try   bool
}

// section returns the merged variables of every section named name.
func (d *confDoc) section(name string) *confSection {
	out := &confSection{Name: name}
	found := false
	for _, s := range d.Sections {
		if strings.EqualFold(s.Name, name) {
			found = true
			out.Vars = append(out.Vars, s.Vars...)
			if out.File == "" {
				out.File = s.File
			}
		}
	}
	if !found {
		return nil
	}
	return out
}

// includes reports whether the document includes a file of that base name.
func (d *confDoc) includes(base string) bool {
	for _, in := range d.Includes {
		if filepath.Base(in.Name) == base {
			return true
		}
	}
	return false
}

// Bounds on what reading one configuration file may cost. Asterisk itself
// stops at 10 nested includes; the others keep a hostile or broken file
// (an include of /dev/zero, a glob that includes everything it matches,
// itself included) from taking the installer's memory or time.
const (
	maxIncludeDepth = 10
	maxConfFiles    = 256      // files read for one top-level file
	maxConfFileSize = 16 << 20 // bytes in one file
	maxConfBytes    = 64 << 20 // bytes across all of them
	maxCommentNest  = 128      // Asterisk's MAX_NESTED_COMMENTS
)

// parseConf reads the file at path (on disk); relative includes resolve
// against dir, absolute ones under root. A missing top-level file is
// fs.ErrNotExist.
func parseConf(path, dir, root string) (*confDoc, error) {
	p := &confParser{d: &confDoc{}, dir: dir, root: root}
	if err := p.parse(path, 0); err != nil {
		return nil, err
	}
	return p.d, nil
}

type confParser struct {
	d         *confDoc
	cur       *confSection
	dir, root string

	// open is the chain of files being read, outermost first, so an
	// include loop is named instead of followed.
	open  []openConf
	files int
	bytes int64
}

type openConf struct {
	path string
	info os.FileInfo
}

// readConfFile reads one configuration file within the parser's bounds.
func (p *confParser) readConfFile(path string) ([]byte, os.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (%s): an Asterisk configuration file must be one", path, fi.Mode().Type())
	}
	p.files++
	if p.files > maxConfFiles {
		return nil, nil, fmt.Errorf("%s: more than %d files included in all: check the #include lines (a pattern that matches too much?)", path, maxConfFiles)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxConfFileSize+1))
	if err != nil {
		return nil, nil, err
	}
	if len(data) > maxConfFileSize {
		return nil, nil, fmt.Errorf("%s is larger than %d MiB: not an Asterisk configuration file?", path, maxConfFileSize>>20)
	}
	p.bytes += int64(len(data))
	if p.bytes > maxConfBytes {
		return nil, nil, fmt.Errorf("%s: the included files hold more than %d MiB in all: check the #include lines", path, maxConfBytes>>20)
	}
	return data, fi, nil
}

func (p *confParser) parse(path string, depth int) error {
	d, dir := p.d, p.dir
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: includes nest deeper than %d levels, Asterisk's own limit: check the #include lines", path, maxIncludeDepth)
	}
	data, fi, err := p.readConfFile(path)
	if err != nil {
		return err
	}
	for i, o := range p.open {
		if os.SameFile(o.info, fi) {
			chain := make([]string, 0, len(p.open)-i+1)
			for _, c := range p.open[i:] {
				chain = append(chain, c.path)
			}
			chain = append(chain, path)
			return fmt.Errorf("include loop: %s: remove one of these #include lines", strings.Join(chain, " includes "))
		}
	}
	p.open = append(p.open, openConf{path: path, info: fi})
	defer func() { p.open = p.open[:len(p.open)-1] }()

	nest := 0
	for i, raw := range strings.Split(string(data), "\n") {
		var line string
		line, nest = stripConfComment(raw, nest)
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		switch {
		case strings.HasPrefix(line, "#include") || strings.HasPrefix(line, "#tryinclude"):
			try := strings.HasPrefix(line, "#tryinclude")
			name := strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(line, "#tryinclude"), "#include"))
			name = strings.Trim(name, `"<>`)
			if name == "" {
				continue
			}
			target := name
			if !filepath.IsAbs(target) {
				target = filepath.Join(dir, target)
			} else {
				// Absolute includes are absolute on the target system: keep
				// them under the same root as dir.
				target = filepath.Join(p.root, target)
			}
			matches, _ := filepath.Glob(target)
			if len(matches) == 0 {
				d.Includes = append(d.Includes, confInclude{Name: name, Path: target, Try: try})
				continue
			}
			sort.Strings(matches)
			for _, m := range matches {
				d.Includes = append(d.Includes, confInclude{Name: name, Path: m, Found: true, Try: try})
				if err := p.parse(m, depth+1); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return err
				}
			}
		case strings.HasPrefix(line, "#"):
			// #exec and other directives: nothing to read for us.
		case strings.HasPrefix(line, "["):
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return fmt.Errorf("%s:%d: section header %q has no closing ]", path, i+1, line)
			}
			s := &confSection{Name: strings.TrimSpace(line[1:end]), File: path}
			d.Sections = append(d.Sections, s)
			p.cur = s
		default:
			k, v, ok := cutConfVar(line)
			if !ok {
				continue // Asterisk warns and skips such lines too
			}
			if p.cur == nil {
				// Variables before any section belong to no category;
				// Asterisk rejects them. Keep them under "".
				s := &confSection{File: path}
				d.Sections = append(d.Sections, s)
				p.cur = s
			}
			p.cur.Vars = append(p.cur.Vars, confVar{Key: k, Value: v, File: path, Line: i + 1})
		}
	}
	return nil
}

// cutConfVar splits "key = value" or "key => value".
func cutConfVar(line string) (key, value string, ok bool) {
	i := strings.IndexByte(line, '=')
	if i <= 0 {
		return "", "", false
	}
	key = strings.TrimSpace(line[:i])
	value = strings.TrimSpace(strings.TrimPrefix(line[i+1:], ">"))
	return key, value, key != ""
}

// stripConfComment removes comments from one line the way Asterisk's
// config loader does. nest is how many ";--" block comments are open when
// the line starts; the second result is how many are open after it.
//
// As in Asterisk: "\;" is a literal ";" (even inside a block comment);
// ";--" opens a block comment unless a fourth "-" follows (";----" is a
// line comment, as in the rulers of many sample files); "--;" closes one;
// any other ";" ends the line outside a block comment.
func stripConfComment(line string, nest int) (string, int) {
	var b strings.Builder
	from := 0 // where the scan for the next ";" started: "--;" must lie after it
	for i := 0; i < len(line); i++ {
		c := line[i]
		if c == '\\' && i+1 < len(line) && line[i+1] == ';' {
			if nest == 0 {
				b.WriteByte(';')
			}
			i++
			from = i + 1
			continue
		}
		if c != ';' {
			if nest == 0 {
				b.WriteByte(c)
			}
			continue
		}
		rest := line[i:]
		switch {
		case strings.HasPrefix(rest, ";--") && !strings.HasPrefix(rest, ";---"):
			if nest < maxCommentNest {
				nest++
			}
			i += 2
			from = i + 1
		case nest > 0 && i-2 >= from && line[i-2:i] == "--":
			nest--
			from = i + 1
		case nest == 0:
			return b.String(), 0
		default:
			from = i + 1 // a ";" inside a block comment
		}
	}
	return b.String(), nest
}

// confBool reads Asterisk's ast_true values.
func confBool(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "y", "t", "1", "on":
		return true
	}
	return false
}

// --- editing ----------------------------------------------------------------

// setConfKey returns text with key = value set in the [section] blocks of
// this one file: every uncommented key line in a block of that name is
// replaced in place (the last one wins in Asterisk, so all must change),
// or, when there is none, a new line goes right after the first header; a
// missing section is appended. Lines inside ";--" block comments are left
// alone: a commented-out [section] or key is not the live one.
func setConfKey(text, section, key, value string) string {
	lines := strings.Split(text, "\n")
	line := key + " = " + value + " ; set by switchboard install"
	header, replaced, in := -1, false, false
	nest := 0
	for i, raw := range lines {
		startNest := nest
		var l string
		l, nest = stripConfComment(raw, nest)
		l = strings.TrimSpace(l)
		if startNest > 0 || nest > 0 {
			// Partly commented out: neither a header nor a key line we
			// may rewrite (and a line added after it would be hidden).
			continue
		}
		if strings.HasPrefix(l, "[") {
			end := strings.IndexByte(l, ']')
			in = end > 0 && strings.EqualFold(strings.TrimSpace(l[1:end]), section)
			if in && header < 0 {
				header = i
			}
			continue
		}
		if k, _, ok := cutConfVar(l); in && ok && strings.EqualFold(k, key) {
			lines[i] = line
			replaced = true
		}
	}
	switch {
	case replaced:
		return strings.Join(lines, "\n")
	case header >= 0:
		return strings.Join(slicesInsert(lines, header+1, line), "\n")
	}
	return appendBlock(text, "["+section+"]\n"+line+"\n")
}

func slicesInsert(s []string, i int, v string) []string {
	s = append(s, "")
	copy(s[i+1:], s[i:])
	s[i] = v
	return s
}

// ariUserMarker starts the block the installer appends, so uninstall can
// find and remove exactly that block.
const ariUserMarker = "; --- switchboard ARI user (added by switchboard install; removed by switchboard uninstall) ---"
const ariUserEnd = "; --- end of switchboard ARI user ---"

// Limits of Asterisk: a category (section) name holds at most 79 bytes
// (config.c), an ARI password at most 255 (res/ari/config.c).
const (
	maxARIUserLen     = 79
	maxARIPasswordLen = 255
)

// checkARIUser says what is wrong with user and password for an ARI user
// section the installer writes into ari.conf.
func checkARIUser(user, password string) error {
	if user == "" || len(user) > maxARIUserLen {
		return fmt.Errorf("ARI user %q must be 1 to %d characters", user, maxARIUserLen)
	}
	for _, r := range user {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == '@') {
			return fmt.Errorf("ARI user %q may only hold letters, digits, '_', '-', '.' and '@': it becomes a [section] name in ari.conf", user)
		}
	}
	if strings.EqualFold(user, "general") {
		return fmt.Errorf("ARI user %q would be ari.conf's [general] section: choose another --ari-user", user)
	}
	if password == "" || len(password) > maxARIPasswordLen {
		return fmt.Errorf("the ARI password must be 1 to %d bytes (Asterisk's limit)", maxARIPasswordLen)
	}
	if strings.TrimSpace(password) != password {
		return errors.New("the ARI password starts or ends with a space: Asterisk would drop it, so the agent could not log in; choose another --ari-password")
	}
	for _, r := range password {
		if r < 0x20 || r == 0x7f {
			return errors.New("the ARI password contains a control character (newline, tab…): it cannot be written into ari.conf; choose another --ari-password")
		}
	}
	if !utf8.ValidString(password) {
		return errors.New("the ARI password is not valid UTF-8: choose another --ari-password")
	}
	return nil
}

// escapeConfValue escapes ";" as Asterisk reads it back ("\;"); the other
// characters of a checked value need no escape.
func escapeConfValue(v string) string { return strings.ReplaceAll(v, ";", `\;`) }

// ariUserBlock is the text appended for a dedicated ARI user; user and
// password must have passed checkARIUser.
func ariUserBlock(user, password string) string {
	return ariUserMarker + "\n" +
		"[" + user + "]\n" +
		"type = user\n" +
		"read_only = no\n" +
		"password = " + escapeConfValue(password) + "\n" +
		"password_format = plain\n" +
		ariUserEnd + "\n"
}

// appendBlock appends block to text, separated by one blank line. A text
// that ends inside a ";--" block comment gets it closed first, or the
// block would be commented out.
func appendBlock(text, block string) string {
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	nest := 0
	for _, l := range strings.Split(text, "\n") {
		_, nest = stripConfComment(l, nest)
	}
	if nest > 0 {
		// "--; " and not "--;--;": a ";--" would open another one.
		text += strings.Repeat("--; ", nest) + "; closes an unterminated block comment (switchboard install)\n"
	}
	if text != "" {
		text += "\n"
	}
	return text + block
}

// removeMarkedBlock removes the installer's ARI user block (and the blank
// line before it) from text; ok is false when there is none.
func removeMarkedBlock(text string) (string, bool) {
	start := strings.Index(text, ariUserMarker)
	if start < 0 {
		return text, false
	}
	end := strings.Index(text[start:], ariUserEnd)
	if end < 0 {
		return text, false
	}
	end = start + end + len(ariUserEnd)
	if end < len(text) && text[end] == '\n' {
		end++
	}
	before := text[:start]
	if strings.HasSuffix(before, "\n\n") {
		before = before[:len(before)-1]
	}
	return before + text[end:], true
}
