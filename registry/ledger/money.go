package ledger

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MaxAmount bounds every amount the ledger accepts (in minor units: about
// 10 billion EUR). Keeping amounts under 2^40 keeps amount × basis points
// far inside int64, and refunds use 128-bit intermediate products anyway.
const MaxAmount int64 = 1 << 40

// ParseCurrency normalises an ISO 4217 code ("eur" from Stripe becomes
// "EUR") and rejects anything that is not three ASCII letters.
func ParseCurrency(s string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(s))
	if len(c) != 3 {
		return "", fmt.Errorf("currency %q is not a three-letter ISO 4217 code (e.g. EUR, USD)", s)
	}
	for i := 0; i < 3; i++ {
		if c[i] < 'A' || c[i] > 'Z' {
			return "", fmt.Errorf("currency %q is not a three-letter ISO 4217 code (e.g. EUR, USD)", s)
		}
	}
	return c, nil
}

// minorDigits lists the ISO 4217 currencies whose minor unit is not 1/100.
// Every other currency has two decimals.
var minorDigits = map[string]int{
	"BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
	"PYG": 0, "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
	"BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}

// MinorDigits returns how many decimals the currency's minor unit has.
func MinorDigits(currency string) int {
	if d, ok := minorDigits[currency]; ok {
		return d
	}
	return 2
}

// FormatAmount renders minor units as a decimal string with a dot ("1234"
// EUR cents → "12.34", "-5" → "-0.05", 500 JPY → "500"). This is the form
// PayPal's payout file and our statements use; it never goes through a float.
func FormatAmount(minor int64, currency string) string {
	return string(appendAmount(make([]byte, 0, 24), minor, currency))
}

// appendAmount appends FormatAmount's text to dst.
func appendAmount(dst []byte, minor int64, currency string) []byte {
	d := MinorDigits(currency)
	u := uint64(minor)
	if minor < 0 {
		dst = append(dst, '-')
		u = -u
	}
	var digits [24]byte
	s := strconv.AppendUint(digits[:0], u, 10)
	if d == 0 {
		return append(dst, s...)
	}
	for len(s) <= d {
		s = append([]byte{'0'}, s...)
	}
	dst = append(dst, s[:len(s)-d]...)
	dst = append(dst, '.')
	return append(dst, s[len(s)-d:]...)
}

// ParseAmount reads a decimal amount ("12.34", "12", "12.3") into minor
// units of the currency. It refuses more decimals than the currency has,
// signs, exponents and amounts above MaxAmount, so a typo in an import file
// never becomes a silent rounding.
func ParseAmount(s, currency string) (int64, error) {
	d := MinorDigits(currency)
	t := strings.TrimSpace(s)
	whole, frac, hasDot := strings.Cut(t, ".")
	if whole == "" || (hasDot && frac == "") {
		return 0, fmt.Errorf("amount %q is not a decimal number like 12.34", s)
	}
	if len(frac) > d {
		return 0, fmt.Errorf("amount %q has more than %d decimals for %s", s, d, currency)
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("amount %q is not a decimal number like 12.34 (digits and one dot only)", s)
			}
		}
	}
	digits := whole + frac + strings.Repeat("0", d-len(frac))
	digits = strings.TrimLeft(digits, "0")
	if digits == "" {
		return 0, nil
	}
	if len(digits) > 15 {
		return 0, fmt.Errorf("amount %q is too large", s)
	}
	v, err := strconv.ParseInt(digits, 10, 64)
	if err != nil || v > MaxAmount {
		return 0, fmt.Errorf("amount %q is too large", s)
	}
	return v, nil
}

// mulDiv returns floor(a*b/c) for non-negative a, b and positive c, with a
// 128-bit intermediate product so a refund of a large payment cannot
// overflow. The result must fit in int64 (callers guarantee b <= c).
func mulDiv(a, b, c int64) int64 {
	if a <= 0 || b <= 0 || c <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi >= uint64(c) {
		// Only possible when b > c, which the callers never pass; saturate
		// rather than panic so a bug shows up as a Check discrepancy.
		return a
	}
	q, _ := bits.Div64(hi, lo, uint64(c))
	return int64(q)
}

// percentOf returns floor(amount × bp / 10000): commissions round down, in
// the vendor's favour, and the rounding is visible on the statement.
func percentOf(amount, bp int64) int64 {
	return mulDiv(amount, bp, 10000)
}
