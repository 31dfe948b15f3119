package partnercode

// The check character.
//
// A partner code is 8 payload symbols d1…d8 followed by one check symbol d9,
// each a value 0…31 (its index in the Crockford alphabet). The check is the
// Damm algorithm run over a quasigroup of order 32 instead of Damm's usual
// order-10 table, so the check symbol stays inside the alphabet people can type.
//
// The quasigroup. Read every symbol as an element of the field GF(2^5) =
// GF(2)[x]/(p(x)), ⊕ being XOR, and fix λ ∉ {0, 1}. Define
//
//	a ∘ b = λ·a ⊕ b
//
// It is a quasigroup: for fixed a, b ↦ λa ⊕ b is a bijection (add a constant);
// for fixed b, a ↦ λa ⊕ b is a bijection because λ ≠ 0 is invertible.
// It is totally anti-symmetric in Damm's sense,
//
//	(c∘x)∘y = (c∘y)∘x  ⇒  x = y,
//
// because (c∘x)∘y = λ²c ⊕ λx ⊕ y, so equality means λx ⊕ y = λy ⊕ x, that is
// (λ ⊕ 1)(x ⊕ y) = 0; λ ≠ 1 makes λ ⊕ 1 non-zero and a field has no zero
// divisors, so x ⊕ y = 0, x = y.
//
// Damm's algorithm: r0 = 0, ri = r(i-1) ∘ di; a code is valid when r9 = 0.
// The check symbol is the unique d9 with r8 ∘ d9 = 0, which is d9 = λ·r8.
// Unrolled, r9 = λ⁸d1 ⊕ λ⁷d2 ⊕ … ⊕ λd8 ⊕ d9, a linear form, so any error
// changes r9 by the same amount whatever the rest of the code is:
//
//   - Substituting e ≠ 0 into position i (dᵢ → dᵢ ⊕ e) changes r9 by
//     λ^(9-i)·e. λ^k ≠ 0 and e ≠ 0, so the change is non-zero: every single
//     substitution is detected.
//   - Swapping different symbols x ≠ y at positions i and i+1 changes r9 by
//     λ^k·(λ ⊕ 1)·(x ⊕ y) with k = 8-i: a product of three non-zero field
//     elements, so non-zero. Every adjacent transposition is detected; this is
//     exactly the total anti-symmetry above.
//   - More than Damm promises: a swap at distance d changes r9 by
//     λ^k·(λ^d ⊕ 1)·(x ⊕ y). The multiplicative group of GF(32) has prime
//     order 31, so every λ ∉ {0, 1} has order 31 and λ^d ≠ 1 for 0 < d < 31.
//     Every transposition inside a 9-symbol code is therefore detected, as are
//     twin errors xx → yy at adjacent positions (change λ^k(λ ⊕ 1)(x ⊕ y)).
//
// What it cannot do: two independent substitutions may cancel (1 in 32 of
// them pass), as with any single check symbol.
//
// The constants. Every irreducible quintic over GF(2) gives the same field and
// every λ ∉ {0, 1} gives the guarantees above, so among the 6 × 30 equivalent
// choices we took p(x) = x⁵+x⁴+x²+x+1 and λ = x² because they make K7QM-4XJD-R,
// the example printed in messages and documentation, a valid code.
const (
	fieldPoly = 0x37 // x⁵ + x⁴ + x² + x + 1
	lambda    = 0x04 // x²
)

// mulLambda[a] = λ·a in GF(32): a ∘ b is mulLambda[a] ^ b, one lookup and one XOR.
var mulLambda = func() (t [32]uint8) {
	for a := range t {
		t[a] = gfMul(uint8(a), lambda)
	}
	return t
}()

// gfMul multiplies two elements of GF(2^5) modulo fieldPoly (shift and add).
func gfMul(a, b uint8) uint8 {
	var r uint8
	for b != 0 {
		if b&1 != 0 {
			r ^= a
		}
		b >>= 1
		a <<= 1
		if a&0x20 != 0 {
			a ^= fieldPoly
		}
	}
	return r
}

// dammInterim runs Damm's algorithm over syms and returns the interim value:
// 0 for a valid payload+check sequence.
func dammInterim(syms []uint8) uint8 {
	var r uint8
	for _, d := range syms {
		r = mulLambda[r] ^ d
	}
	return r
}

// checkSymbol returns the symbol that, appended to payload, makes Damm's
// interim value 0.
func checkSymbol(payload []uint8) uint8 {
	return mulLambda[dammInterim(payload)]
}
