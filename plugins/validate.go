package plugins

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// ErrInvalidAnswer marks an answer from a plugin that breaks the contract
// (negative seats, oversized or non-UTF-8 strings ...). The host treats the
// answer as an error and never passes it on.
var ErrInvalidAnswer = errors.New("plugin answer breaks the contract")

// Limits on what a plugin may answer. They are generous for any real
// product and small enough that one answer cannot flood a heartbeat.
const (
	MaxShortLen   = 256      // product, version, distribution, build, state, remote id, map keys
	MaxTextLen    = 8 << 10  // details values, health detail, receipt detail
	MaxURLLen     = 2048     // receipt URL
	MaxDetails    = 64       // entries in Facts.Details
	MaxSeatKinds  = 32       // entries in Facts.Seats
	MaxSeatCount  = 10000000 // a single seat count; more is a bug, not a customer
	MaxClockAhead = 5 * time.Minute
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidAnswer, fmt.Sprintf(format, args...))
}

// Every answer of every call goes through the checks below, so they take
// one pass over the bytes and allocate nothing unless the answer is bad;
// field names that need formatting (details[%q]) are only built for the
// error.

// checkShort checks a one-line string: valid UTF-8, no control characters,
// at most MaxShortLen bytes.
func checkShort(field, s string) error {
	if problem := textProblem(s, MaxShortLen, false); problem != "" {
		return invalid("%s %s", field, problem)
	}
	return nil
}

// checkText checks a multi-line string: valid UTF-8, no control characters
// other than tab and newlines, at most max bytes.
func checkText(field, s string, max int) error {
	if problem := textProblem(s, max, true); problem != "" {
		return invalid("%s %s", field, problem)
	}
	return nil
}

// textProblem says what is wrong with s ("" when nothing): longer than max
// bytes, not valid UTF-8, or holding a control character (C0, DEL or C1,
// as unicode.IsControl; tab, CR and LF allowed when multiline). Invalid
// UTF-8 anywhere is reported before a control character, whatever their
// order.
func textProblem(s string, max int, multiline bool) string {
	if len(s) > max {
		return "is " + strconv.Itoa(len(s)) + " bytes long, the limit is " + strconv.Itoa(max)
	}
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf { // ASCII: no decoding
			if b < 0x20 || b == 0x7f {
				if !multiline || (b != '\n' && b != '\r' && b != '\t') {
					return controlProblem(s[i:], rune(b))
				}
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "is not valid UTF-8"
		}
		if unicode.IsControl(r) { // C1 controls U+0080–U+009F
			return controlProblem(s[i:], r)
		}
		i += size
	}
	return ""
}

// controlProblem reports control character r at the start of rest, unless
// invalid UTF-8 follows, which is the worse problem.
func controlProblem(rest string, r rune) string {
	if !utf8.ValidString(rest) {
		return "is not valid UTF-8"
	}
	return fmt.Sprintf("contains control character %U", r)
}

// validSeatKey reports whether k is lower-case letters, digits and _, at
// most 64 bytes, starting with a letter (^[a-z][a-z0-9_]{0,63}$).
func validSeatKey(k string) bool {
	if len(k) == 0 || len(k) > 64 || k[0] < 'a' || k[0] > 'z' {
		return false
	}
	for i := 1; i < len(k); i++ {
		c := k[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

func checkSince(field string, t time.Time, now time.Time) error {
	if !t.IsZero() && t.After(now.Add(MaxClockAhead)) {
		return invalid("%s %s is in the future", field, t.Format(time.RFC3339))
	}
	return nil
}

// ValidateFacts checks facts as a host receives them from a plugin.
func ValidateFacts(f Facts) error {
	if f.Product == "" {
		return invalid("product is empty")
	}
	for _, c := range []struct{ name, v string }{
		{"product", f.Product}, {"version", f.Version},
		{"distribution", f.Distribution}, {"build", f.Build},
	} {
		if err := checkShort(c.name, c.v); err != nil {
			return err
		}
	}
	if len(f.Details) > MaxDetails {
		return invalid("details has %d entries, the limit is %d", len(f.Details), MaxDetails)
	}
	for k, v := range f.Details {
		if k == "" {
			return invalid("details has an empty key")
		}
		if err := checkShort("details key", k); err != nil {
			return err
		}
		if problem := textProblem(v, MaxTextLen, true); problem != "" {
			return invalid("details[%q] %s", k, problem)
		}
	}
	if len(f.Seats) > MaxSeatKinds {
		return invalid("seats has %d entries, the limit is %d", len(f.Seats), MaxSeatKinds)
	}
	for k, n := range f.Seats {
		if !validSeatKey(k) {
			return invalid("seat name %q must be lower-case letters, digits and _ (at most 64), starting with a letter", truncate(k, 80))
		}
		if n < 0 {
			return invalid("seats[%q] = %d is negative", k, n)
		}
		if n > MaxSeatCount {
			return invalid("seats[%q] = %d is above the limit of %d", k, n, MaxSeatCount)
		}
	}
	return nil
}

// ValidateHealth checks a health report as a host receives it.
func ValidateHealth(h Health, now time.Time) error {
	if err := checkShort("health state", h.State); err != nil {
		return err
	}
	if err := checkText("health detail", h.Detail, MaxTextLen); err != nil {
		return err
	}
	return checkSince("health since", h.Since, now)
}

// ValidateLinkResult checks an ApplyPartnerLink answer.
func ValidateLinkResult(r LinkResult) error {
	return checkText("detail", r.Detail, MaxTextLen)
}

// ValidateReceipt checks a delivery receipt.
func ValidateReceipt(r Receipt) error {
	if err := checkShort("remote id", r.RemoteID); err != nil {
		return err
	}
	if err := checkText("detail", r.Detail, MaxTextLen); err != nil {
		return err
	}
	if r.URL == "" {
		return nil
	}
	if len(r.URL) > MaxURLLen {
		return invalid("url is %d bytes long, the limit is %d", len(r.URL), MaxURLLen)
	}
	if err := checkShort("url", truncate(r.URL, MaxShortLen)); err != nil {
		return err
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return invalid("url does not parse: %v", err)
	}
	switch u.Scheme {
	case "http", "https", "mailto":
	default:
		return invalid("url scheme %q is not http, https or mailto", truncate(u.Scheme, 32))
	}
	return nil
}

// SanitizeMessage makes an error text that came from a plugin safe to log
// and show: invalid UTF-8 and control characters replaced, length capped.
func SanitizeMessage(s string) string {
	s = truncate(s, 1024)
	out := make([]rune, 0, len(s))
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			out = append(out, '?')
		case unicode.IsControl(r):
			out = append(out, ' ')
		default:
			out = append(out, r)
		}
	}
	return string(out)
}

// truncate cuts s to at most n bytes without splitting a rune, adding "…"
// when it cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
