package plugins

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// referenceProblem is the straightforward form of textProblem (the one the
// fast path replaced): the fast path must agree with it on every input.
func referenceProblem(s string, max int, multiline bool) string {
	if len(s) > max {
		return fmt.Sprintf("is %d bytes long, the limit is %d", len(s), max)
	}
	if !utf8.ValidString(s) {
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) && (!multiline || (r != '\n' && r != '\r' && r != '\t')) {
			return fmt.Sprintf("contains control character %U", r)
		}
	}
	return ""
}

var referenceSeatKey = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

var textSamples = []string{
	"", "Asterisk", "20.5.1 (certified)", "line one\nline two\r\n\tindented",
	"Zürich Üñíçødé ✓ 日本語 🎉", "\x00", "a\x1fb", "a\x7fb", "a\u0085b", "a\u009fb", "a\u00a0b",
	"\xff", "ok\xfe\xff", "\x01\xff", "\xff\x01", "\xc3", "\xe2\x82", "\xed\xa0\x80", // surrogate
	"\uFFFD", "\U0010FFFF", "\xf4\x90\x80\x80", strings.Repeat("x", MaxShortLen), strings.Repeat("x", MaxShortLen+1),
	strings.Repeat("é", MaxShortLen/2) + "\n",
}

func TestTextProblemMatchesReference(t *testing.T) {
	for _, s := range textSamples {
		for _, multiline := range []bool{false, true} {
			got, want := textProblem(s, MaxShortLen, multiline), referenceProblem(s, MaxShortLen, multiline)
			if got != want {
				t.Errorf("textProblem(%q, multiline=%v) = %q, want %q", s, multiline, got, want)
			}
		}
	}
	for _, k := range []string{"", "a", "pbx_endpoints", "Users", "1x", "_x", "a-b", "aé", strings.Repeat("a", 64), strings.Repeat("a", 65), "a\n"} {
		if got, want := validSeatKey(k), referenceSeatKey.MatchString(k); got != want {
			t.Errorf("validSeatKey(%q) = %v, want %v", k, got, want)
		}
	}
}

func FuzzTextProblem(f *testing.F) {
	for _, s := range textSamples {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, multiline bool) {
		if got, want := textProblem(s, MaxShortLen, multiline), referenceProblem(s, MaxShortLen, multiline); got != want {
			t.Fatalf("textProblem(%q, %v) = %q, want %q", s, multiline, got, want)
		}
		if got, want := validSeatKey(s), referenceSeatKey.MatchString(s); got != want {
			t.Fatalf("validSeatKey(%q) = %v, want %v", s, got, want)
		}
	})
}

// An answer that passes the checks costs no allocation.
func TestValidateFactsAllocatesNothing(t *testing.T) {
	f := benchFacts()
	if err := ValidateFacts(f); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = ValidateFacts(f) }); n != 0 {
		t.Fatalf("ValidateFacts allocates %.0f times per valid answer", n)
	}
}

// benchFacts is the shape of a real Describe answer (the Asterisk adapter's).
func benchFacts() Facts {
	return Facts{
		Product: "Asterisk", Version: "20.15.2", Distribution: "Debian 12 (bookworm)", Build: "x86_64 Linux 6.1.0",
		Details: map[string]string{
			"system_name": "pbx1", "entity_id": "00:16:3e:4a:2b:1c", "uptime": "12d 4h 3m",
			"channels": "17", "endpoints.PJSIP": "42 online, 3 offline", "ari_user": "switchboard",
			"note": "Tëst — UTF-8 détails\nsecond line",
		},
		Seats: map[string]int64{SeatPBXEndpoints: 45, "pbx_channels": 17},
	}
}

func BenchmarkValidateFacts(b *testing.B) {
	f := benchFacts()
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateFacts(f); err != nil {
			b.Fatal(err)
		}
	}
}
