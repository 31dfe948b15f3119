package partnercode

import (
	"fmt"
	"unicode/utf8"
)

// ErrorKind says which rule an input broke.
type ErrorKind int

// The kinds of Error. Callers switch on them to choose their own wording or
// status; Error.Error already gives a complete sentence for people.
const (
	// ErrLength: after dropping separators the input does not have 9 characters.
	ErrLength ErrorKind = iota + 1
	// ErrCharacter: the input holds a character outside the alphabet and the
	// separators; Error.Position and Error.Char name it.
	ErrCharacter
	// ErrCheck: nine valid characters, but the check character does not match:
	// one of them was mistyped or two were swapped.
	ErrCheck
	// ErrNotFound: a link or file name holds no partner code at all.
	ErrNotFound
	// ErrAmbiguous: a link holds two different valid partner codes, so it is
	// not safe to attribute it to either.
	ErrAmbiguous
)

// String names the kind in lower case with underscores, for logs and JSON.
func (k ErrorKind) String() string {
	switch k {
	case ErrLength:
		return "wrong_length"
	case ErrCharacter:
		return "bad_character"
	case ErrCheck:
		return "check_failed"
	case ErrNotFound:
		return "not_found"
	case ErrAmbiguous:
		return "ambiguous"
	default:
		return fmt.Sprintf("ErrorKind(%d)", int(k))
	}
}

// Error explains why an input is not a partner code. Parse, FromLink and
// FromFilename return it as *Error.
type Error struct {
	Kind ErrorKind
	// Position is the 1-based position, counted in characters (not bytes), of
	// the offending character in Input; 0 when the error is not about one
	// character.
	Position int
	// Char is the offending character (ErrCharacter only).
	Char rune
	// Input is the text that was checked: what the user typed for Parse, the
	// candidate taken out of the link or file name for FromLink/FromFilename,
	// or the whole link or name for ErrNotFound.
	Input string

	symbols int    // ErrLength: how many code characters were found
	where   string // where the candidate came from, e.g. "the link's ref parameter"
	reason  string // ErrNotFound/ErrAmbiguous: the complete sentence
}

// Error gives one sentence: what is wrong and what to do about it.
func (e *Error) Error() string {
	from := ""
	if e.where != "" {
		from = " (code from " + e.where + ")"
	}
	switch e.Kind {
	case ErrLength:
		n := "no characters"
		switch {
		case e.symbols == 1:
			n = "1 character"
		case e.symbols > 1:
			n = fmt.Sprintf("%d characters", e.symbols)
		}
		return fmt.Sprintf("wrong length%s: %s after removing spaces and dashes, a partner code has %d (like %s)",
			from, n, compactLen, exampleCode)
	case ErrCharacter:
		return fmt.Sprintf("bad character %s at position %d%s: codes use digits and letters except I, L, O, U",
			quoteRune(e.Char), e.Position, from)
	case ErrCheck:
		return fmt.Sprintf("check character wrong%s: one character is mistyped or two are swapped — compare with the code you were given", from)
	case ErrNotFound, ErrAmbiguous:
		if e.reason != "" {
			return e.reason
		}
		return "no partner code found: type the code itself (like " + exampleCode + ")"
	default:
		return fmt.Sprintf("invalid partner code (%v)", e.Kind)
	}
}

// quoteRune prints r the way a person can recognise it: 'U', '\t', 'é',
// and U+FFFD for bytes that are not UTF-8.
func quoteRune(r rune) string {
	if r == utf8.RuneError {
		return "(a byte that is not valid text, U+FFFD)"
	}
	return fmt.Sprintf("%q", r)
}

// shorten keeps error messages readable when the input is huge or hostile.
func shorten(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
