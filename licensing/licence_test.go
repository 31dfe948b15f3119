package licensing

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

// testKey returns a fixed signing key so fixtures are reproducible.
func testKey(t testing.TB, seedByte byte) SigningKey {
	t.Helper()
	k, err := NewSigningKeyFromSeed(bytes.Repeat([]byte{seedByte}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	t0       = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)
	notAfter = time.Date(2027, 1, 14, 23, 59, 59, 0, time.UTC)
)

func sampleLicence() Licence {
	return Licence{
		ID:          "lic-0001",
		InstallID:   "inst-7f3a9c",
		CustomerID:  "cust-42",
		PartnerCode: "K7QM-4XJD-R",
		Tier:        TierPartner,
		Products:    []string{"odoo-connector", "asterisk-callcenter"},
		Seats:       25,
		IssuedAt:    t0,
		NotAfter:    notAfter,
		Grace:       30 * 24 * time.Hour,
	}
}

func issue(t testing.TB, l Licence, k SigningKey) []byte {
	t.Helper()
	b, err := Issue(l, k)
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	k := testKey(t, 1)
	in := sampleLicence()
	file := issue(t, in, k)

	if !bytes.HasPrefix(file, []byte(BeginLine+"\n")) || !bytes.HasSuffix(file, []byte(EndLine+"\n")) {
		t.Fatalf("armour lines missing:\n%s", file)
	}
	for _, ln := range strings.Split(strings.TrimSuffix(string(file), "\n"), "\n") {
		if len(ln) > 64 {
			t.Errorf("line longer than 64 columns: %q", ln)
		}
	}
	kr := NewKeyring(k.Public())
	got, st, err := kr.Verify(file, "inst-7f3a9c", t0.Add(time.Hour))
	if err != nil || st != StatusValid {
		t.Fatalf("Verify: %v, %v", st, err)
	}
	want := in
	want.KeyID = k.ID
	want.Products = []string{"asterisk-callcenter", "odoo-connector"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip changed the licence:\n got %+v\nwant %+v", got, want)
	}
	// Issue must not reorder the caller's slice.
	if in.Products[0] != "odoo-connector" {
		t.Fatal("Issue modified the caller's Products")
	}

	s, err := Decode(file)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s.Licence, want) {
		t.Fatalf("Decode: %+v", s.Licence)
	}
	again, err := Armour(s)
	if err != nil || !bytes.Equal(again, file) {
		t.Fatalf("Armour(Decode(f)) != f: %v\n%s", err, again)
	}
}

func TestIssueDefaults(t *testing.T) {
	k := testKey(t, 1)
	l := sampleLicence()
	l.ID, l.IssuedAt = "", time.Time{}
	l.NotAfter = time.Now().Add(24 * time.Hour)
	a, b := issue(t, l, k), issue(t, l, k)
	sa, err := Decode(a)
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := Decode(b)
	if len(sa.Licence.ID) != 32 || sa.Licence.ID == sb.Licence.ID {
		t.Fatalf("generated ids %q, %q: want two different 32-hex ids", sa.Licence.ID, sb.Licence.ID)
	}
	if d := time.Since(sa.Licence.IssuedAt); d < 0 || d > time.Minute {
		t.Fatalf("issued-at %v is not now", sa.Licence.IssuedAt)
	}
}

func TestCanonicalIsOrderIndependent(t *testing.T) {
	a := sampleLicence()
	a.KeyID = "0123456789abcdef"
	b := a
	b.Products = []string{"asterisk-callcenter", "odoo-connector", "asterisk-callcenter"}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	b.IssuedAt = a.IssuedAt.In(paris).Add(700 * time.Millisecond)
	b.NotAfter = a.NotAfter.In(time.FixedZone("X", -5*3600)).Add(999 * time.Millisecond)
	b.Grace = a.Grace + 400*time.Millisecond

	ca, err := Canonical(a)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := Canonical(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca, cb) {
		t.Fatalf("same licence, different bytes:\n%x\n%x", ca, cb)
	}
	// The signature covers those bytes, so the files are identical too.
	k := testKey(t, 1)
	if fa, fb := issue(t, a, k), issue(t, b, k); !bytes.Equal(fa, fb) {
		t.Fatalf("same licence, different files:\n%s\n%s", fa, fb)
	}
	// And a real difference shows.
	c := a
	c.Seats++
	if cc, _ := Canonical(c); bytes.Equal(ca, cc) {
		t.Fatal("different seats, same bytes")
	}
}

func TestIssueRejectsInvalidLicences(t *testing.T) {
	k := testKey(t, 1)
	cases := map[string]func(*Licence){
		"no install":             func(l *Licence) { l.InstallID = "" },
		"space in install":       func(l *Licence) { l.InstallID = "inst 1" },
		"newline in customer":    func(l *Licence) { l.CustomerID = "a\nInstall: other" },
		"long id":                func(l *Licence) { l.ID = strings.Repeat("x", MaxFieldLen+1) },
		"tier none with code":    func(l *Licence) { l.Tier = TierNone },
		"partner without code":   func(l *Licence) { l.PartnerCode = "" },
		"unknown tier":           func(l *Licence) { l.Tier = "gold" },
		"empty tier":             func(l *Licence) { l.Tier = "" },
		"negative seats":         func(l *Licence) { l.Seats = -1 },
		"not-after before":       func(l *Licence) { l.NotAfter = l.IssuedAt.Add(-time.Hour) },
		"not-after zero":         func(l *Licence) { l.NotAfter = time.Time{} },
		"negative grace":         func(l *Licence) { l.Grace = -time.Second },
		"huge grace":             func(l *Licence) { l.Grace = MaxGrace + time.Second },
		"empty product":          func(l *Licence) { l.Products = []string{"a", ""} },
		"too many products":      func(l *Licence) { l.Products = make([]string, MaxProducts+1); fillDistinct(l.Products) },
		"year 10000":             func(l *Licence) { l.NotAfter = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) },
		"issued before 1970":     func(l *Licence) { l.IssuedAt = time.Date(1969, 1, 1, 0, 0, 0, 0, time.UTC) },
		"non-ascii partner code": func(l *Licence) { l.PartnerCode = "K7QM-4XJD-Ŕ" },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			l := sampleLicence()
			mutate(&l)
			if _, err := Issue(l, k); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Issue accepted it: %v", err)
			}
		})
	}
	l := sampleLicence()
	l.Tier, l.PartnerCode = TierNone, ""
	if _, err := Issue(l, k); err != nil {
		t.Fatalf("tier none without code: %v", err)
	}
}

func fillDistinct(p []string) {
	for i := range p {
		p[i] = "p" + strings.Repeat("x", i)
	}
}

func TestIssueRejectsBadKeys(t *testing.T) {
	k := testKey(t, 1)
	for name, key := range map[string]SigningKey{
		"empty":      {},
		"short":      {Private: k.Private[:10]},
		"wrong id":   {ID: "0000000000000000", Private: k.Private},
		"mismatched": {Private: append(append([]byte{}, testKey(t, 2).Private[:32]...), k.Private[32:]...)},
	} {
		if _, err := Issue(sampleLicence(), key); err == nil {
			t.Errorf("%s: Issue signed with a bad key", name)
		}
	}
}

func TestStatusAt(t *testing.T) {
	l := sampleLicence()
	for _, c := range []struct {
		at   time.Time
		want Status
	}{
		{l.IssuedAt.Add(-time.Hour), StatusValid},
		{l.NotAfter, StatusValid},
		{l.NotAfter.Add(time.Second), StatusGrace},
		{l.GraceEnds(), StatusGrace},
		{l.GraceEnds().Add(time.Second), StatusExpired},
	} {
		if got := l.StatusAt(c.at); got != c.want {
			t.Errorf("StatusAt(%v) = %s, want %s", c.at, got, c.want)
		}
	}
}

func TestParseTier(t *testing.T) {
	for _, s := range []string{"partner", "referral", "none"} {
		if tier, err := ParseTier(s); err != nil || string(tier) != s {
			t.Errorf("ParseTier(%q) = %q, %v", s, tier, err)
		}
	}
	if _, err := ParseTier("Partner"); err == nil {
		t.Error("ParseTier accepted Partner")
	}
}

func TestDecodePayloadIsStrict(t *testing.T) {
	l := sampleLicence()
	l.KeyID = "0123456789abcdef"
	p, err := Canonical(l)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := decodePayload(p); err != nil {
		t.Fatal(err)
	}
	if _, err := decodePayload(append(bytes.Clone(p), 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	for n := range len(p) {
		if _, err := decodePayload(p[:n]); err == nil {
			t.Errorf("payload cut to %d bytes accepted", n)
		}
	}
	// Unsorted products: swap the two product names in place (same length
	// prefix layout, so only the order check can catch it).
	u := l
	u.Products = []string{"odoo-connector", "asterisk-callcenter"}
	if _, err := decodePayload(encodePayload(u)); err == nil {
		t.Error("unsorted products accepted")
	}
}
