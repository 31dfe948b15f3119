// Package licensing issues and verifies Switchboard install licences.
//
// A licence is a small document that binds one install to a customer, a
// partner code and its tier, a list of products and a seat count, for a
// period of time plus a grace period. The vendor signs it with an Ed25519 key
// over a canonical binary encoding; the agent verifies it offline against a
// keyring of vendor public keys, so keys can rotate without invalidating the
// licences already out there.
//
// On disk and in e-mail a licence is an armoured text block:
//
//	-----BEGIN SWITCHBOARD LICENCE-----
//	Licence: 5f0c…
//	Install: inst-42
//	Partner: K7QM-4XJD-R (partner)
//	Not-After: 2027-01-31T23:59:59Z
//	Key: 3f2a9c0e11223344
//
//	<base64 of payload + signature + key id, 64 columns>
//	-----END SWITCHBOARD LICENCE-----
//
// The readable header lines are not signed themselves; they are rendered from
// the signed payload and must match it byte for byte, so they cannot lie.
// Inside the block the format is strict (exact line structure, strict base64)
// so that every single-byte change is rejected; outside it, text such as an
// e-mail body is ignored, CRLF line ends are accepted and every line of the
// block may carry the same quote prefix ("> ", indentation).
package licensing

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrInvalid is wrapped by the errors Issue and Canonical return for a
// licence whose fields are not acceptable (missing install id, tier none with
// a partner code, not-after before issued-at, ...). It is the caller's input
// that is wrong, not the key or the system.
var ErrInvalid = errors.New("invalid licence")

// Tier says how the partner code in a licence was earned: an integrator
// (partner), a hobbyist or affiliate (referral), or nobody.
type Tier string

// The tiers a licence can carry.
const (
	TierPartner  Tier = "partner"
	TierReferral Tier = "referral"
	TierNone     Tier = "none"
)

// ParseTier returns the tier named by s, or an error listing the valid names.
func ParseTier(s string) (Tier, error) {
	switch t := Tier(s); t {
	case TierPartner, TierReferral, TierNone:
		return t, nil
	}
	return "", fmt.Errorf("unknown tier %q: use partner, referral or none", s)
}

// Licence is the content of an install licence. The zero value is not a
// valid licence: Issue checks and normalises it.
type Licence struct {
	// ID identifies this licence; Issue generates a random one when empty.
	ID string
	// InstallID is the install the licence belongs to.
	InstallID string
	// CustomerID is the vendor's customer; it may be empty.
	CustomerID string
	// PartnerCode is the canonical partner code (see package partnercode),
	// empty exactly when Tier is TierNone.
	PartnerCode string
	Tier        Tier
	// Products are the module names the licence enables. The canonical
	// encoding sorts them and drops duplicates.
	Products []string
	// Seats is the number of seats (PBX endpoints, Odoo users) paid for;
	// 0 means no seat limit.
	Seats int
	// IssuedAt is when the licence was signed; Issue uses the current time
	// when it is zero. Times are kept in UTC at second precision.
	IssuedAt time.Time
	// NotAfter is the end of the paid period.
	NotAfter time.Time
	// Grace is how long after NotAfter the licence still works (with
	// StatusGrace) so a late renewal does not stop the install. Whole seconds.
	Grace time.Duration
	// KeyID is the id of the vendor key that signed the licence; Issue sets it.
	KeyID string
}

// Status is the state of a verified licence at a given moment.
type Status string

// The states Keyring.Verify reports.
const (
	// StatusValid: before or at NotAfter.
	StatusValid Status = "valid"
	// StatusGrace: past NotAfter but within the grace period; renew soon.
	StatusGrace Status = "grace"
	// StatusExpired: past NotAfter + Grace.
	StatusExpired Status = "expired"
)

// GraceEnds is the last moment the licence works: NotAfter + Grace.
func (l Licence) GraceEnds() time.Time { return l.NotAfter.Add(l.Grace) }

// StatusAt reports whether the licence is valid, in its grace period or
// expired at now. It does not check the signature: use Keyring.Verify.
func (l Licence) StatusAt(now time.Time) Status {
	switch {
	case !now.After(l.NotAfter):
		return StatusValid
	case !now.After(l.GraceEnds()):
		return StatusGrace
	default:
		return StatusExpired
	}
}

// Limits of the canonical encoding. They keep a licence small enough to paste
// into an e-mail and keep hostile input from allocating much.
const (
	// MaxFieldLen is the longest id, code or product name, in bytes.
	MaxFieldLen = 128
	// MaxProducts is the most products a licence can list.
	MaxProducts = 64
	// MaxSeats is the largest seat count.
	MaxSeats = math.MaxInt32
	// MaxGrace is the longest grace period.
	MaxGrace = 10 * 365 * 24 * time.Hour
)

var (
	// Times are limited to years 1970..9999 so they encode as positive
	// seconds and print as four-digit RFC 3339 years.
	minTime = time.Unix(0, 0).UTC()
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
)

// checkField accepts printable ASCII without spaces: ids, codes and product
// names are copied between systems and typed into config files, where
// anything else causes trouble.
func checkField(name, v string, required bool) error {
	if v == "" {
		if required {
			return fmt.Errorf("%s is empty: it is required", name)
		}
		return nil
	}
	if len(v) > MaxFieldLen {
		return fmt.Errorf("%s is %d bytes long: at most %d are allowed", name, len(v), MaxFieldLen)
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x21 || c > 0x7e {
			return fmt.Errorf("%s has %q at position %d: only printable ASCII without spaces is allowed", name, c, i+1)
		}
	}
	return nil
}

func checkTime(name string, t time.Time) error {
	if t.Before(minTime) || t.After(maxTime) {
		return fmt.Errorf("%s %s is out of range: use a time between 1970 and 9999", name, t.Format(time.RFC3339))
	}
	return nil
}

// normalise returns the canonical form of l (UTC second-precision times,
// sorted unique products, whole-second grace) after checking every field.
// It never modifies the caller's Products slice.
func normalise(l Licence) (Licence, error) {
	l.IssuedAt = l.IssuedAt.UTC().Truncate(time.Second)
	l.NotAfter = l.NotAfter.UTC().Truncate(time.Second)
	l.Grace = l.Grace.Truncate(time.Second)
	if len(l.Products) == 0 {
		l.Products = nil
	} else {
		p := slices.Clone(l.Products)
		slices.Sort(p)
		l.Products = slices.Compact(p)
	}
	return l, check(l)
}

// check validates a licence that is already in canonical form.
func check(l Licence) error {
	for _, f := range []struct {
		name, v  string
		required bool
	}{
		{"licence id", l.ID, true},
		{"install id", l.InstallID, true},
		{"customer id", l.CustomerID, false},
		{"partner code", l.PartnerCode, false},
	} {
		if err := checkField(f.name, f.v, f.required); err != nil {
			return err
		}
	}
	switch l.Tier {
	case TierNone:
		if l.PartnerCode != "" {
			return fmt.Errorf("tier is none but partner code %q is set: use tier partner or referral, or drop the code", l.PartnerCode)
		}
	case TierPartner, TierReferral:
		if l.PartnerCode == "" {
			return fmt.Errorf("tier is %s but the partner code is empty: set the code, or use tier none", l.Tier)
		}
	default:
		return fmt.Errorf("unknown tier %q: use partner, referral or none", l.Tier)
	}
	if len(l.Products) > MaxProducts {
		return fmt.Errorf("%d products listed: at most %d are allowed", len(l.Products), MaxProducts)
	}
	for i, p := range l.Products {
		if err := checkField("product name", p, true); err != nil {
			return err
		}
		if i > 0 && p <= l.Products[i-1] {
			return fmt.Errorf("products are not sorted and unique at %q", p)
		}
	}
	if l.Seats < 0 || l.Seats > MaxSeats {
		return fmt.Errorf("seats %d out of range: use 0 (no limit) up to %d", l.Seats, MaxSeats)
	}
	if err := checkTime("issued-at", l.IssuedAt); err != nil {
		return err
	}
	if err := checkTime("not-after", l.NotAfter); err != nil {
		return err
	}
	if !l.NotAfter.After(l.IssuedAt) {
		return fmt.Errorf("not-after %s is not later than issued-at %s: pick a later end date",
			l.NotAfter.Format(time.RFC3339), l.IssuedAt.Format(time.RFC3339))
	}
	if l.Grace < 0 || l.Grace > MaxGrace {
		return fmt.Errorf("grace period %s out of range: use 0 up to %s", l.Grace, MaxGrace)
	}
	if l.Grace%time.Second != 0 {
		return fmt.Errorf("grace period %s is not whole seconds", l.Grace)
	}
	if !validKeyID(l.KeyID) {
		return fmt.Errorf("key id %q is not %d lowercase hex digits", l.KeyID, 2*keyIDBytes)
	}
	return nil
}

// payloadMagic starts every canonical payload: it names the format and its
// version, and separates licence signatures from anything else the same key
// might ever sign.
const payloadMagic = "SBLP\x01"

// Canonical returns the bytes a licence is signed over. The same licence gives
// the same bytes however it was built: fields in fixed order, times as UTC
// seconds, products sorted and de-duplicated, no maps. l.KeyID must already be
// set (Issue sets it).
//
// Layout: magic "SBLP" 0x01, then id, install id, customer id, partner code,
// tier (each a big-endian uint16 length and the bytes), uint16 product count
// and the products as strings, uint32 seats, int64 issued-at and not-after
// (Unix seconds), int64 grace seconds, key id as a string.
func Canonical(l Licence) ([]byte, error) {
	n, err := normalise(l)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	return encodePayload(n), nil
}

func encodePayload(l Licence) []byte {
	b := make([]byte, 0, 256)
	b = append(b, payloadMagic...)
	for _, s := range []string{l.ID, l.InstallID, l.CustomerID, l.PartnerCode, string(l.Tier)} {
		b = appendString(b, s)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(l.Products)))
	for _, p := range l.Products {
		b = appendString(b, p)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(l.Seats))
	b = binary.BigEndian.AppendUint64(b, uint64(l.IssuedAt.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(l.NotAfter.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(l.Grace/time.Second))
	b = appendString(b, l.KeyID)
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// reader consumes a byte slice and remembers the first error, so decoding
// code reads like the layout it follows.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("payload ends inside the %s", what)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u16(what string) int {
	if v := r.take(2, what); v != nil {
		return int(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) u32(what string) uint32 {
	if v := r.take(4, what); v != nil {
		return binary.BigEndian.Uint32(v)
	}
	return 0
}

func (r *reader) i64(what string) int64 {
	if v := r.take(8, what); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (r *reader) str(what string) string {
	n := r.u16(what + " length")
	if n > MaxFieldLen {
		if r.err == nil {
			r.err = fmt.Errorf("%s is %d bytes long: at most %d are allowed", what, n, MaxFieldLen)
		}
		return ""
	}
	return string(r.take(n, what))
}

// decodePayload parses a canonical payload and accepts it only if it is
// exactly what encodePayload would produce for the licence it describes.
func decodePayload(b []byte) (Licence, error) {
	if len(b) < len(payloadMagic) || string(b[:len(payloadMagic)]) != payloadMagic {
		return Licence{}, fmt.Errorf("payload does not start with the licence format marker (format version 1)")
	}
	r := &reader{b: b[len(payloadMagic):]}
	var l Licence
	l.ID = r.str("licence id")
	l.InstallID = r.str("install id")
	l.CustomerID = r.str("customer id")
	l.PartnerCode = r.str("partner code")
	l.Tier = Tier(r.str("tier"))
	if n := r.u16("product count"); n > MaxProducts {
		return Licence{}, fmt.Errorf("payload lists %d products: at most %d are allowed", n, MaxProducts)
	} else if n > 0 && r.err == nil {
		l.Products = make([]string, n)
		for i := range l.Products {
			l.Products[i] = r.str("product name")
		}
	}
	seats := r.u32("seats")
	issued := r.i64("issued-at")
	notAfter := r.i64("not-after")
	grace := r.i64("grace")
	l.KeyID = r.str("key id")
	if r.err != nil {
		return Licence{}, r.err
	}
	if len(r.b) != 0 {
		return Licence{}, fmt.Errorf("payload has %d unexpected bytes after the key id", len(r.b))
	}
	if seats > MaxSeats {
		return Licence{}, fmt.Errorf("seats %d out of range", seats)
	}
	l.Seats = int(seats)
	if issued < minTime.Unix() || issued > maxTime.Unix() || notAfter < minTime.Unix() || notAfter > maxTime.Unix() {
		return Licence{}, fmt.Errorf("issued-at or not-after is outside the years 1970..9999")
	}
	l.IssuedAt = time.Unix(issued, 0).UTC()
	l.NotAfter = time.Unix(notAfter, 0).UTC()
	if grace < 0 || grace > int64(MaxGrace/time.Second) {
		return Licence{}, fmt.Errorf("grace period of %d seconds out of range", grace)
	}
	l.Grace = time.Duration(grace) * time.Second
	if err := check(l); err != nil {
		return Licence{}, err
	}
	return l, nil
}

// newLicenceID returns 128 random bits in hex.
func newLicenceID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate licence id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}
