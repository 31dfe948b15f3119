package partnercode

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// sampleCodes returns the codes the exhaustive proofs run over: fresh codes
// from New (a different sample every run), a fixed pseudo-random sample (the
// same every run, so a failure there reproduces), and the extreme codes.
func sampleCodes(t *testing.T) []string {
	t.Helper()
	var out []string
	for range 2000 {
		c, err := New()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.Compact())
	}
	rng := rand.New(rand.NewPCG(2, 32))
	for range 500 {
		var syms [compactLen]uint8
		for i := range payloadLen {
			syms[i] = uint8(rng.IntN(32))
		}
		syms[payloadLen] = checkSymbol(syms[:payloadLen])
		out = append(out, format(&syms).Compact())
	}
	return append(out, MustParse(codeExample).Compact(), MustParse(codeZeros).Compact(),
		MustParse(codeZs).Compact(), MustParse(codeDigits).Compact())
}

// rejectsAsCheckError fails the test unless s is rejected by the check
// character: it has the right length and alphabet, so any other outcome means
// the check let an error through.
func rejectsAsCheckError(t *testing.T, s, from, what string) {
	t.Helper()
	c, err := Parse(s)
	var pe *Error
	if err == nil || !errors.As(err, &pe) || pe.Kind != ErrCheck {
		t.Fatalf("%s of %s gives %s: Parse = %q, %v; want a check-character error", what, from, s, c, err)
	}
}

// TestEverySingleSubstitutionIsDetected replaces each of the 9 symbols of
// every sampled code by each of the 31 other symbols and requires Parse to
// reject every one of the results.
func TestEverySingleSubstitutionIsDetected(t *testing.T) {
	codes := sampleCodes(t)
	checked := 0
	for _, code := range codes {
		b := []byte(code)
		for pos := range compactLen {
			orig := b[pos]
			for _, sub := range []byte(Alphabet) {
				if sub == orig {
					continue
				}
				b[pos] = sub
				rejectsAsCheckError(t, string(b), code, "substitution")
				checked++
			}
			b[pos] = orig
		}
	}
	if want := len(codes) * compactLen * 31; checked != want || len(codes) < 2000 {
		t.Fatalf("checked %d substitutions over %d codes, want %d over at least 2000", checked, len(codes), want)
	}
	t.Logf("%d codes, %d single substitutions, all rejected", len(codes), checked)
}

// TestEveryTranspositionIsDetected swaps every pair of different symbols of
// every sampled code: the 8 adjacent pairs the brief demands, and also the
// pairs further apart, which the construction covers too (see check.go).
func TestEveryTranspositionIsDetected(t *testing.T) {
	codes := sampleCodes(t)
	adjacent, distant := 0, 0
	for _, code := range codes {
		b := []byte(code)
		for i := range compactLen {
			for j := i + 1; j < compactLen; j++ {
				if b[i] == b[j] {
					continue // swapping equal symbols changes nothing
				}
				b[i], b[j] = b[j], b[i]
				rejectsAsCheckError(t, string(b), code, "swap")
				b[i], b[j] = b[j], b[i]
				if j == i+1 {
					adjacent++
				} else {
					distant++
				}
			}
		}
	}
	if adjacent < 8*len(codes)*9/10 {
		t.Fatalf("only %d adjacent swaps checked over %d codes", adjacent, len(codes))
	}
	t.Logf("%d codes, %d adjacent and %d distant swaps, all rejected", len(codes), adjacent, distant)
}

// TestTwinErrorsAreDetected: aa → bb at adjacent positions, a frequent slip
// when a doubled letter is misheard on the phone.
func TestTwinErrorsAreDetected(t *testing.T) {
	b := []byte(MustParse(code1100).Compact()) // 11 00 ZZ 11 twins
	for i := 0; i+1 < compactLen; i++ {
		if b[i] != b[i+1] {
			continue
		}
		orig := b[i]
		for _, sub := range []byte(Alphabet) {
			if sub == orig {
				continue
			}
			b[i], b[i+1] = sub, sub
			rejectsAsCheckError(t, string(b), code1100, "twin error")
		}
		b[i], b[i+1] = orig, orig
	}
}

// TestQuasigroupIsTotallyAntiSymmetric checks the two properties Damm's
// algorithm rests on over the whole 32×32 table: every row and column of
// a∘b is a permutation (a quasigroup), and (c∘x)∘y = (c∘y)∘x only when x = y.
func TestQuasigroupIsTotallyAntiSymmetric(t *testing.T) {
	op := func(a, b uint8) uint8 { return mulLambda[a] ^ b }
	for a := range uint8(32) {
		var row, col [32]bool
		for b := range uint8(32) {
			row[op(a, b)] = true
			col[op(b, a)] = true
		}
		for v := range 32 {
			if !row[v] || !col[v] {
				t.Fatalf("row or column %d of the table is not a permutation", a)
			}
		}
	}
	for c := range uint8(32) {
		for x := range uint8(32) {
			for y := range uint8(32) {
				if x != y && op(op(c, x), y) == op(op(c, y), x) {
					t.Fatalf("(%d∘%d)∘%d = (%d∘%d)∘%d: not totally anti-symmetric", c, x, y, c, y, x)
				}
			}
		}
	}
}

// TestFieldIsAField: the multiplication is GF(32)'s only if fieldPoly is
// irreducible, which shows as every non-zero element having an inverse and
// λ having order 31 (the claim behind "every transposition").
func TestFieldIsAField(t *testing.T) {
	for a := uint8(1); a < 32; a++ {
		inv := false
		for b := uint8(1); b < 32; b++ {
			if gfMul(a, b) == 1 {
				inv = true
			}
		}
		if !inv {
			t.Fatalf("%d has no inverse modulo %#x", a, fieldPoly)
		}
	}
	p := uint8(1)
	for k := 1; k <= 31; k++ {
		p = gfMul(p, lambda)
		if p == 1 && k != 31 {
			t.Fatalf("λ has order %d, want 31", k)
		}
	}
	if p != 1 {
		t.Fatal("λ^31 != 1")
	}
}
