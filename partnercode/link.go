package partnercode

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// linkParams are the query parameters that carry a code in download and
// referral links, in the order they are looked at: ours (ref), then the ones
// affiliate platforms use (via, FirstPromoter's fpr, code).
var linkParams = []string{"ref", "via", "fpr", "code"}

// candidate is text that may hold a code, and where it was found (for errors).
type candidate struct {
	value string
	where string
}

// FromLink finds the partner code in a download or referral link: a query
// parameter ref, via, fpr or code (any case), or the segment after /r/ in
// the path, e.g.
//
//	https://switchboard.example/download?ref=K7QM-4XJD-R
//	https://switchboard.example/r/K7QM4XJDR
//
// The scheme and host are not needed. A parameter that is present but not a
// valid code is still reported (wrong length, bad character, check failed) so
// that a damaged link is not mistaken for a link without a code; other
// parameters that happen to share a name (a coupon in code=) are ignored when
// another place holds a valid code. Two different valid codes in one link are
// an ErrAmbiguous error: attributing the install to either would be a guess.
func FromLink(rawURL string) (Code, error) {
	s := strings.TrimSpace(rawURL)
	if s == "" {
		return "", &Error{Kind: ErrNotFound, Input: rawURL,
			reason: "no link given: paste the whole download link, or type the partner code itself (like " + exampleCode + ")"}
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the whole input; the message already names it
		}
		return "", &Error{Kind: ErrNotFound, Input: rawURL,
			reason: fmt.Sprintf("no partner code in the link: it is not a valid link (%v); paste the whole link, or type the partner code itself", err)}
	}
	cands := queryCandidates(u.RawQuery)
	segs := strings.Split(u.Path, "/")
	if u.Opaque != "" {
		segs = strings.Split(u.Opaque, "/")
	}
	for i := 0; i+1 < len(segs); i++ {
		if strings.EqualFold(segs[i], "r") && strings.TrimSpace(segs[i+1]) != "" {
			cands = append(cands, candidate{value: segs[i+1], where: "the link's /r/ path"})
		}
	}
	if len(cands) == 0 {
		return "", &Error{Kind: ErrNotFound, Input: rawURL,
			reason: "no partner code in the link: expected ?ref=CODE (or via=, fpr=, code=) or a /r/CODE path; ask the partner for the full link, or type the code itself"}
	}

	var found Code
	var firstErr error
	for _, c := range cands {
		code, err := Parse(c.value)
		if err != nil {
			if firstErr == nil {
				firstErr = withWhere(err, c.where)
			}
			continue
		}
		switch {
		case found == "":
			found = code
		case found != code:
			return "", &Error{Kind: ErrAmbiguous, Input: rawURL,
				reason: fmt.Sprintf("the link holds two different partner codes, %s and %s: ask the partner which one is theirs", found, code)}
		}
	}
	if found != "" {
		return found, nil
	}
	return "", firstErr
}

// queryCandidates returns the values of the code-carrying parameters in the
// order they appear. It reads the raw query itself rather than through
// url.ParseQuery so the order is kept, keys match in any case, and a value
// with a broken escape is still checked (and reported) instead of dropped.
func queryCandidates(rawQuery string) []candidate {
	var out []candidate
	for rawQuery != "" {
		var pair string
		pair, rawQuery, _ = strings.Cut(rawQuery, "&")
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		param := ""
		for _, p := range linkParams {
			if strings.EqualFold(key, p) {
				param = p
				break
			}
		}
		if param == "" {
			continue
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		if strings.TrimSpace(value) == "" {
			continue
		}
		out = append(out, candidate{value: value, where: "the link's " + param + " parameter"})
	}
	return out
}

// FromFilename finds the partner code in an installer file name such as
// switchboard-install-K7QM4XJDR.sh. It accepts a directory in front (/ or \),
// the code with or without dashes and in any case, any extension, and the
// suffixes browsers and file managers add to a second download or a copy:
// " (1)", "(1)", " 2", "-1", " - Copy", ".1".
func FromFilename(name string) (Code, error) {
	base := strings.TrimSpace(name)
	if i := strings.LastIndexAny(base, `/\`); i >= 0 {
		base = base[i+1:]
	}
	rest, ok := afterInstallPrefix(base)
	run := rest
	if i := strings.IndexAny(run, ". ([{"); i >= 0 {
		run = run[:i]
	}
	if !ok || strings.Trim(run, "-_") == "" {
		return "", &Error{Kind: ErrNotFound, Input: name,
			reason: fmt.Sprintf("no partner code in the file name %q: installers with a code are named like switchboard-install-%s.sh; type the code instead, or install without one",
				shorten(base, 80), strings.ReplaceAll(exampleCode, "-", ""))}
	}
	code, err := Parse(run)
	if err == nil {
		return code, nil
	}
	// "-1" or "_2" added to a second download makes the name one or more
	// characters too long; the code is what is left without it.
	var pe *Error
	if errors.As(err, &pe) && pe.Kind == ErrLength {
		if i := strings.LastIndexAny(run, "-_"); i > 0 && isDigits(run[i+1:]) {
			if code, err2 := Parse(run[:i]); err2 == nil {
				return code, nil
			}
		}
	}
	return "", withWhere(err, "the file name")
}

// afterInstallPrefix finds "switchboard-install" (ASCII case-insensitive,
// with -, _, . or a space between the words) in base and returns what follows
// the separators after it. A name like "switchboard-installer.sh" does not
// match: the word must end there.
func afterInstallPrefix(base string) (string, bool) {
	for i := 0; i+len("switchboard") <= len(base); i++ {
		if !strings.EqualFold(base[i:i+len("switchboard")], "switchboard") {
			continue
		}
		rest := base[i+len("switchboard"):]
		if rest == "" || !strings.ContainsRune("-_. ", rune(rest[0])) {
			continue
		}
		rest = rest[1:]
		if len(rest) < len("install") || !strings.EqualFold(rest[:len("install")], "install") {
			continue
		}
		rest = rest[len("install"):]
		if rest == "" || !strings.ContainsRune("-_ ", rune(rest[0])) {
			continue
		}
		return strings.TrimLeft(rest, "-_ "), true
	}
	return "", false
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// withWhere records where a failed candidate came from, for the message.
func withWhere(err error, where string) error {
	var pe *Error
	if errors.As(err, &pe) {
		pe.where = where
	}
	return err
}
