package partnercode

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// Codes whose check symbols were computed outside this package (a separate
// Python implementation of the same field and λ), so these tests do not only
// compare the package with itself.
const (
	codeExample = "K7QM-4XJD-R"
	codeDigits  = "10AB-0CD1-8"
	codeZeros   = "0000-0000-0"
	codeZs      = "ZZZZ-ZZZZ-V"
	code1100    = "1100-ZZ11-Z"
)

func TestKnownCodesAreValid(t *testing.T) {
	for _, s := range []string{codeExample, codeDigits, codeZeros, codeZs, code1100} {
		c, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(%q): %v", s, err)
			continue
		}
		if string(c) != s {
			t.Errorf("Parse(%q) = %q, want it unchanged", s, c)
		}
	}
}

func TestParseNormalises(t *testing.T) {
	cases := []struct {
		in, want string
	}{
		{"K7QM-4XJD-R", codeExample},
		{"k7qm-4xjd-r", codeExample},
		{"K7QM4XJDR", codeExample},
		{"k7qm4xjdr", codeExample},
		{"  K7QM 4XJD R  ", codeExample},
		{"K7QM 4XJD R\n", codeExample},
		{"\tK7QM-4XJD-R\r\n", codeExample},
		{"K7QM--4XJD--R", codeExample},
		{"-K7QM-4XJD-R-", codeExample},
		{"K7-QM-4X-JD-R", codeExample},
		{"K7QM_4XJD_R", codeExample},
		{"K7QM.4XJD.R", codeExample},
		{"k 7 q m 4 x j d r", codeExample},
		{"K7QM\u00A04XJD\u00A0R", codeExample}, // no-break spaces from a PDF
		{"K7QM\u20134XJD\u2013R", codeExample}, // en dashes from a word processor
		{"K7QM\u20144XJD\u2014R", codeExample}, // em dashes
		{"K7QM\u22124XJD\u2212R", codeExample}, // minus signs
		{"K7QM\u00AD4XJD\u200BR", codeExample}, // soft hyphen, zero-width space
		{"\uFEFFK7QM-4XJD-R", codeExample},     // byte order mark from a text file
		{"K7QM\u30004XJD\u3000R", codeExample}, // ideographic space
		{"10AB-0CD1-8", codeDigits},
		{"IOAB-oCDl-8", codeDigits}, // I→1, O→0, o→0, l→1
		{"lOab ocdi 8", codeDigits},
		{"LoAB0CDI8", codeDigits},
		{"oooo oooo o", codeZeros},
		{"OOOO-0000-O", codeZeros},
		{"zzzzzzzzv", codeZs},
		{"il00zzLI z", code1100},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("Parse(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseRejects(t *testing.T) {
	cases := []struct {
		in   string
		kind ErrorKind
		pos  int
		char rune
		msg  string // exact message when not empty
	}{
		{in: "K7QM-4XJD", kind: ErrLength,
			msg: "wrong length: 8 characters after removing spaces and dashes, a partner code has 9 (like K7QM-4XJD-R)"},
		{in: "", kind: ErrLength,
			msg: "wrong length: no characters after removing spaces and dashes, a partner code has 9 (like K7QM-4XJD-R)"},
		{in: " - _ . ", kind: ErrLength},
		{in: "K", kind: ErrLength,
			msg: "wrong length: 1 character after removing spaces and dashes, a partner code has 9 (like K7QM-4XJD-R)"},
		{in: "K7QM-4XJD-RR", kind: ErrLength},
		{in: "K7QM-4XJD-R K7QM-4XJD-R", kind: ErrLength},
		{in: "K7QMU4XJDR", kind: ErrCharacter, pos: 5, char: 'U',
			msg: "bad character 'U' at position 5: codes use digits and letters except I, L, O, U"},
		{in: "k7qm-u", kind: ErrCharacter, pos: 6, char: 'u'}, // bad character wins over length
		{in: "K7QM-4XJD-T", kind: ErrCheck,
			msg: "check character wrong: one character is mistyped or two are swapped — compare with the code you were given"},
		{in: "7KQM-4XJD-R", kind: ErrCheck}, // adjacent swap
		{in: "K7QM-4XJD-R!", kind: ErrCharacter, pos: 12, char: '!'},
		{in: "K7QM/4XJD/R", kind: ErrCharacter, pos: 5, char: '/'},
		{in: "K7QM\x004XJDR", kind: ErrCharacter, pos: 5, char: 0},
		{in: "K7Q\u041C-4XJD-R", kind: ErrCharacter, pos: 4, char: 'М'},        // Cyrillic Em
		{in: "\uFF2B7QM-4XJD-R", kind: ErrCharacter, pos: 1, char: '\uFF2B'},   // full-width K
		{in: "K7QM\u20134XJD\u2013R?", kind: ErrCharacter, pos: 12, char: '?'}, // positions count characters, not bytes
		{in: "é7QM-4XJD-R", kind: ErrCharacter, pos: 1, char: 'é'},             // non-ASCII letter
		{in: "K7QM\xff4XJD-R", kind: ErrCharacter, pos: 5, char: '\uFFFD'},     // not UTF-8
		{in: "K7QM-4XJD-R\u212A", kind: ErrCharacter, pos: 12, char: '\u212A'}, // Kelvin sign, folds to K elsewhere
		{in: "https://example.com/?ref=K7QM4XJDR", kind: ErrCharacter, pos: 6, char: ':'},
	}
	for _, c := range cases {
		got, err := Parse(c.in)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want an error", c.in, got)
			continue
		}
		if got != "" {
			t.Errorf("Parse(%q) returned code %q with an error", c.in, got)
		}
		var pe *Error
		if !errors.As(err, &pe) {
			t.Errorf("Parse(%q): error %T is not *Error", c.in, err)
			continue
		}
		if pe.Kind != c.kind || pe.Position != c.pos || pe.Char != c.char || pe.Input != c.in {
			t.Errorf("Parse(%q) = %+v, want kind %v position %d char %q", c.in, *pe, c.kind, c.pos, c.char)
		}
		if c.msg != "" && err.Error() != c.msg {
			t.Errorf("Parse(%q) message\n got %q\nwant %q", c.in, err.Error(), c.msg)
		}
	}
}

func TestErrorMessagesSayWhatToDo(t *testing.T) {
	for _, in := range []string{"", "K7QM", "K7QMU4XJDR", "K7QM-4XJD-T", "K7QM\xff"} {
		_, err := Parse(in)
		msg := err.Error()
		if !strings.Contains(msg, ": ") || strings.Contains(msg, "\n") {
			t.Errorf("Parse(%q): message should be one sentence 'problem: what to do', got %q", in, msg)
		}
	}
}

func TestNewRoundTrip(t *testing.T) {
	seen := map[Code]bool{}
	var symbolsUsed [compactLen][32]bool
	for range 2000 {
		c, err := New()
		if err != nil {
			t.Fatal(err)
		}
		if len(c) != canonicalLen || c[4] != '-' || c[9] != '-' {
			t.Fatalf("New() = %q, not in the form XXXX-XXXX-C", c)
		}
		if seen[c] {
			t.Fatalf("New() repeated %q within 2000 codes", c)
		}
		seen[c] = true
		for _, in := range []string{c.String(), c.Compact(), strings.ToLower(c.Compact()), " " + strings.ToLower(string(c)) + " "} {
			got, err := Parse(in)
			if err != nil || got != c {
				t.Fatalf("Parse(%q) = %q, %v; want %q", in, got, err, c)
			}
		}
		for i, r := range c.Compact() {
			symbolsUsed[i][strings.IndexRune(Alphabet, r)] = true
		}
	}
	// 2000 draws miss one of 32 symbols with probability about 32·(31/32)^2000 ≈ 1e-26:
	// a position that never shows some symbol means the bits are not used.
	for pos, used := range symbolsUsed {
		for v, ok := range used {
			if !ok {
				t.Errorf("symbol %c never appeared at position %d in 2000 codes", Alphabet[v], pos+1)
			}
		}
	}
}

func TestNewReportsRandomFailure(t *testing.T) {
	_, err := newFrom(iotest.ErrReader(errors.New("entropy gone")))
	if err == nil || !strings.Contains(err.Error(), "entropy gone") {
		t.Fatalf("newFrom with a failing reader: err = %v, want it wrapped", err)
	}
	// 40 bits exactly: the payload of 0xFFFFFFFFFF is all Z.
	c, err := newFrom(strings.NewReader("\xff\xff\xff\xff\xff"))
	if err != nil || c != codeZs {
		t.Fatalf("newFrom(all ones) = %q, %v; want %q", c, err, codeZs)
	}
	c, err = newFrom(strings.NewReader("\x00\x00\x00\x00\x00"))
	if err != nil || c != codeZeros {
		t.Fatalf("newFrom(all zeros) = %q, %v; want %q", c, err, codeZeros)
	}
}

func TestMustParse(t *testing.T) {
	if got := MustParse("k7qm 4xjd r"); got != codeExample {
		t.Fatalf("MustParse = %q", got)
	}
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(r.(string), "check character wrong") {
			t.Fatalf("MustParse of a bad code: recovered %v, want a panic naming the problem", r)
		}
	}()
	MustParse("K7QM-4XJD-T")
}

func TestCodeForms(t *testing.T) {
	c := MustParse(codeExample)
	if c.String() != "K7QM-4XJD-R" || c.Compact() != "K7QM4XJDR" {
		t.Fatalf("String %q Compact %q", c.String(), c.Compact())
	}
	if Code("").Compact() != "" || Code("AB-C").Compact() != "ABC" {
		t.Fatal("Compact of a Code not made by Parse must not panic and must drop dashes")
	}
}

func TestParseCanonicalDoesNotAllocate(t *testing.T) {
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse(codeExample) }); n != 0 {
		t.Errorf("Parse of a canonical code allocates %.0f times, want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = Parse("k7qm-4xjd-r") }); n > 1 {
		t.Errorf("Parse of a typed code allocates %.0f times, want at most 1 (the result)", n)
	}
}

func TestErrorKindString(t *testing.T) {
	for k, want := range map[ErrorKind]string{
		ErrLength: "wrong_length", ErrCharacter: "bad_character", ErrCheck: "check_failed",
		ErrNotFound: "not_found", ErrAmbiguous: "ambiguous", 0: "ErrorKind(0)",
	} {
		if k.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(k), k.String(), want)
		}
	}
}
