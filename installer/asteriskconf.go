package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
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

const maxIncludeDepth = 10

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
}

func (p *confParser) parse(path string, depth int) error {
	d, dir := p.d, p.dir
	if depth > maxIncludeDepth {
		return fmt.Errorf("%s: includes nest deeper than %d levels (an include loop?)", path, maxIncludeDepth)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	inBlock := false
	for i, raw := range strings.Split(string(data), "\n") {
		line, stillBlock := stripConfComment(raw, inBlock)
		inBlock = stillBlock
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

// stripConfComment removes comments from one line. inBlock says whether
// the line starts inside a ";-- … --;" block comment; the second result
// says whether the next line does.
func stripConfComment(line string, inBlock bool) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		if inBlock {
			if strings.HasPrefix(line[i:], "--;") {
				inBlock = false
				i += 2
			}
			continue
		}
		c := line[i]
		if c == '\\' && i+1 < len(line) && line[i+1] == ';' {
			b.WriteByte(';')
			i++
			continue
		}
		if c == ';' {
			if strings.HasPrefix(line[i:], ";--") {
				inBlock = true
				i += 2
				continue
			}
			break
		}
		b.WriteByte(c)
	}
	return b.String(), inBlock
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

// setConfKey returns text with key = value set in the first [section] of
// this one file: an existing uncommented key line is replaced in place, or
// a new line goes right after the header; a missing section is appended.
func setConfKey(text, section, key, value string) string {
	lines := strings.Split(text, "\n")
	header := -1
	for i, raw := range lines {
		l, _ := stripConfComment(raw, false)
		l = strings.TrimSpace(l)
		if strings.HasPrefix(l, "[") {
			if header >= 0 {
				break // end of our section
			}
			if end := strings.IndexByte(l, ']'); end > 0 && strings.EqualFold(strings.TrimSpace(l[1:end]), section) {
				header = i
			}
			continue
		}
		if header < 0 {
			continue
		}
		if k, _, ok := cutConfVar(l); ok && strings.EqualFold(k, key) {
			lines[i] = key + " = " + value + " ; set by switchboard install"
			return strings.Join(lines, "\n")
		}
	}
	if header >= 0 {
		lines = slicesInsert(lines, header+1, key+" = "+value+" ; set by switchboard install")
		return strings.Join(lines, "\n")
	}
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text + "\n[" + section + "]\n" + key + " = " + value + " ; set by switchboard install\n"
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

// ariUserBlock is the text appended for a dedicated ARI user.
func ariUserBlock(user, password string) string {
	return ariUserMarker + "\n" +
		"[" + user + "]\n" +
		"type = user\n" +
		"read_only = no\n" +
		"password = " + password + "\n" +
		"password_format = plain\n" +
		ariUserEnd + "\n"
}

// appendBlock appends block to text, separated by one blank line.
func appendBlock(text, block string) string {
	if text != "" && !strings.HasSuffix(text, "\n") {
		text += "\n"
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
