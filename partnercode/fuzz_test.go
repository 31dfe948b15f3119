package partnercode

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkResult holds the properties every result of Parse, FromLink and
// FromFilename must have, valid or not.
func checkResult(t *testing.T, fn, input string, c Code, err error, kinds ...ErrorKind) {
	t.Helper()
	if err != nil {
		var pe *Error
		if !errors.As(err, &pe) {
			t.Fatalf("%s(%q): error %T is not *Error: %v", fn, input, err, err)
		}
		known := false
		for _, k := range kinds {
			known = known || pe.Kind == k
		}
		if !known {
			t.Fatalf("%s(%q): unexpected kind %v", fn, input, pe.Kind)
		}
		if c != "" {
			t.Fatalf("%s(%q) returned %q together with error %v", fn, input, c, err)
		}
		if msg := err.Error(); msg == "" || strings.Contains(msg, "\n") {
			t.Fatalf("%s(%q): message %q is not one line", fn, input, msg)
		}
		return
	}
	s := string(c)
	if len(s) != canonicalLen || s[4] != '-' || s[9] != '-' {
		t.Fatalf("%s(%q) = %q, not canonical", fn, input, c)
	}
	for _, in := range []string{s, c.Compact(), strings.ToLower(s)} {
		again, err := Parse(in)
		if err != nil || again != c {
			t.Fatalf("%s(%q) = %q, but Parse(%q) = %q, %v", fn, input, c, in, again, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{codeExample, "k7qm 4xjd r", "IOAB-oCDl-8", "K7QMU4XJDR", "K7QM-4XJD-T",
		"K7QM\u20134XJD\u2013R", "K7Q\u041C-4XJD-R", "K7QM\xff4XJD-R", "", "-", strings.Repeat("Z", 20)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		c, err := Parse(input)
		checkResult(t, "Parse", input, c, err, ErrLength, ErrCharacter, ErrCheck)
		var pe *Error
		if errors.As(err, &pe) && pe.Kind == ErrCharacter {
			// The reported position and character are really there.
			runes := []rune(input)
			if pe.Position < 1 || pe.Position > len(runes) || runes[pe.Position-1] != pe.Char {
				t.Fatalf("Parse(%q): position %d char %q do not match the input", input, pe.Position, pe.Char)
			}
		}
		if err == nil {
			// Case never matters for a valid input.
			if up, err := Parse(strings.ToUpper(input)); err != nil || up != c {
				t.Fatalf("Parse(%q) = %q but upper case gives %q, %v", input, c, up, err)
			}
			if !utf8.ValidString(input) {
				t.Fatalf("Parse accepted invalid UTF-8 %q", input)
			}
		}
	})
}

func FuzzFromLink(f *testing.F) {
	for _, s := range []string{
		"https://switchboard.example/download?ref=K7QM-4XJD-R",
		"https://switchboard.example/r/k7qm4xjdr/",
		"?via=K7QM4XJDR&fpr=ZZZZZZZZV",
		"https://switchboard.example/?ref=K7QM%ZZ",
		"http://[::1/?ref=K7QM4XJDR",
		"mailto:x@example.com?code=K7QM4XJDR",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, link string) {
		c, err := FromLink(link)
		checkResult(t, "FromLink", link, c, err, ErrLength, ErrCharacter, ErrCheck, ErrNotFound, ErrAmbiguous)
	})
}

func FuzzFromFilename(f *testing.F) {
	for _, s := range []string{
		"switchboard-install-K7QM4XJDR.sh",
		"/home/ana/Downloads/switchboard-install-k7qm-4xjd-r (1).sh",
		`C:\x\switchboard_install_K7QM4XJDR-2.sh`,
		"switchboard-install-.sh",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		c, err := FromFilename(name)
		checkResult(t, "FromFilename", name, c, err, ErrLength, ErrCharacter, ErrCheck, ErrNotFound)
	})
}
