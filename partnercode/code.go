// Package partnercode is the partner code format: codes that people read out
// on the phone, copy from PDFs and type by hand.
//
// A code is 8 random symbols (40 bits from crypto/rand) and 1 check symbol,
// all from Crockford's base32 alphabet (digits and letters except I, L, O, U,
// so nothing looks like anything else), written in groups as K7QM-4XJD-R.
// The check symbol comes from the Damm algorithm over a quasigroup of order 32
// (see check.go for the construction and the proof): it catches every single
// mistyped character and every swap of two different characters.
//
// Parse accepts what people actually type: any case, spaces, dashes,
// underscores or dots anywhere (or none), O for 0, I or L for 1. Anything else
// is rejected with an *Error that names the character and its position.
// FromLink and FromFilename pull a code out of a download link or an installer
// file name.
package partnercode

import (
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Code is a valid partner code in canonical form: upper case, grouped 4-4-1,
// e.g. "K7QM-4XJD-R". Only New, Parse, MustParse, FromLink and FromFilename
// produce Codes; a Code made by converting an arbitrary string is not checked.
type Code string

// Alphabet is Crockford's base32 alphabet; a symbol's value is its index.
const Alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

const (
	payloadLen   = 8  // random symbols: 8 × 5 = 40 bits
	compactLen   = 9  // payload + check symbol
	canonicalLen = 11 // compact + two dashes
	exampleCode  = "K7QM-4XJD-R"
)

// Marks in the decode table for bytes that are not code symbols.
const (
	symSeparator = 0xFE // dropped wherever it appears
	symInvalid   = 0xFF // rejected
)

// decode maps an ASCII byte to its symbol value, or to symSeparator or
// symInvalid. Look-alikes O, I and L map to 0, 1 and 1, as Crockford defines.
var decode = func() (t [utf8.RuneSelf]uint8) {
	for i := range t {
		t[i] = symInvalid
	}
	for v, c := range []byte(Alphabet) {
		t[c] = uint8(v)
		t[c|0x20] = uint8(v) // lower case; digits are unchanged by the bit
	}
	t['O'], t['o'] = 0, 0
	t['I'], t['i'], t['L'], t['l'] = 1, 1, 1, 1
	for _, c := range []byte(" \t\n\v\f\r-_.") {
		t[c] = symSeparator
	}
	return t
}()

// isUnicodeSeparator reports whether a non-ASCII character is a space or a
// dash. Text copied from PDFs, mail and word processors carries no-break
// spaces, en dashes, soft hyphens and zero-width spaces where the author
// typed a plain space or dash; they separate groups, they are not symbols.
// Letters and digits from other scripts (Cyrillic К, full-width Ｋ) are not
// separators and are rejected as bad characters.
func isUnicodeSeparator(r rune) bool {
	switch r {
	case '\u00AD', // soft hyphen
		'\u200B', // zero-width space
		'\u2060', // word joiner
		'\uFEFF', // zero-width no-break space / byte order mark
		'\u2212': // minus sign
		return true
	}
	return unicode.IsSpace(r) || unicode.Is(unicode.Pd, r)
}

// New returns a fresh random code: 40 bits from crypto/rand and its check
// symbol. Codes are not checked for uniqueness here; the registry that stores
// them does that.
func New() (Code, error) {
	return newFrom(rand.Reader)
}

// newFrom is New with the source of randomness given, so tests can reach the
// error path.
func newFrom(r io.Reader) (Code, error) {
	var raw [5]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", fmt.Errorf("generate partner code: read random bits: %w", err)
	}
	bits := uint64(raw[0])<<32 | uint64(raw[1])<<24 | uint64(raw[2])<<16 | uint64(raw[3])<<8 | uint64(raw[4])
	var syms [compactLen]uint8
	for i := range payloadLen {
		syms[i] = uint8(bits>>(5*(payloadLen-1-i))) & 31
	}
	syms[payloadLen] = checkSymbol(syms[:payloadLen])
	return format(&syms), nil
}

// MustParse is Parse for constants and tests: it panics on invalid input.
func MustParse(s string) Code {
	c, err := Parse(s)
	if err != nil {
		panic(fmt.Sprintf("partnercode.MustParse(%q): %v", s, err))
	}
	return c
}

// Parse normalises what a person typed and checks it. Case does not matter;
// spaces, dashes, underscores and dots are dropped wherever they are; O reads
// as 0 and I or L as 1. The result has 9 symbols and a matching check symbol,
// or Parse returns an *Error: ErrCharacter (with the 1-based position in
// input, counted in characters), ErrLength or ErrCheck.
func Parse(input string) (Code, error) {
	var syms [compactLen]uint8
	n := 0   // code symbols seen
	pos := 0 // characters seen, for error positions
	for i := 0; i < len(input); {
		pos++
		c := input[i]
		if c < utf8.RuneSelf {
			i++
			v := decode[c]
			switch v {
			case symSeparator:
				continue
			case symInvalid:
				return "", &Error{Kind: ErrCharacter, Position: pos, Char: rune(c), Input: input}
			}
			if n < compactLen {
				syms[n] = v
			}
			n++
			continue
		}
		r, size := utf8.DecodeRuneInString(input[i:])
		i += size
		if r == utf8.RuneError || !isUnicodeSeparator(r) {
			return "", &Error{Kind: ErrCharacter, Position: pos, Char: r, Input: input}
		}
	}
	if n != compactLen {
		return "", &Error{Kind: ErrLength, Input: input, symbols: n}
	}
	if dammInterim(syms[:]) != 0 {
		return "", &Error{Kind: ErrCheck, Input: input}
	}
	if isCanonical(input, &syms) {
		return Code(input), nil // already canonical: no allocation
	}
	return format(&syms), nil
}

// isCanonical reports whether s is exactly the canonical spelling of syms.
func isCanonical(s string, syms *[compactLen]uint8) bool {
	if len(s) != canonicalLen || s[4] != '-' || s[9] != '-' {
		return false
	}
	j := 0
	for i := 0; i < canonicalLen; i++ {
		if i == 4 || i == 9 {
			continue
		}
		if s[i] != Alphabet[syms[j]] {
			return false
		}
		j++
	}
	return true
}

// format writes syms in canonical grouped form.
func format(syms *[compactLen]uint8) Code {
	var b [canonicalLen]byte
	j := 0
	for i := range b {
		if i == 4 || i == 9 {
			b[i] = '-'
			continue
		}
		b[i] = Alphabet[syms[j]]
		j++
	}
	return Code(b[:])
}

// String returns the canonical grouped form, e.g. "K7QM-4XJD-R".
func (c Code) String() string { return string(c) }

// Compact returns the code without dashes, e.g. "K7QM4XJDR", for file names
// and URLs.
func (c Code) Compact() string {
	s := string(c)
	if len(s) == canonicalLen && s[4] == '-' && s[9] == '-' {
		return s[:4] + s[5:9] + s[10:]
	}
	return strings.ReplaceAll(s, "-", "")
}
