package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"
)

func TestFormatAndParseAmount(t *testing.T) {
	for _, c := range []struct {
		minor int64
		cur   string
		text  string
	}{
		{1234, "EUR", "12.34"}, {5, "EUR", "0.05"}, {-5, "EUR", "-0.05"}, {0, "USD", "0.00"},
		{500, "JPY", "500"}, {1234, "KWD", "1.234"}, {100000000, "EUR", "1000000.00"},
	} {
		if got := FormatAmount(c.minor, c.cur); got != c.text {
			t.Errorf("FormatAmount(%d, %s) = %q, want %q", c.minor, c.cur, got, c.text)
		}
		if c.minor < 0 {
			continue
		}
		if got, err := ParseAmount(c.text, c.cur); err != nil || got != c.minor {
			t.Errorf("ParseAmount(%q, %s) = %d, %v; want %d", c.text, c.cur, got, err, c.minor)
		}
	}
	for _, bad := range []string{"", "1.", ".5", "1.234", "-1", "1e3", "1,50", "12.3.4", " ", "99999999999999999999"} {
		if _, err := ParseAmount(bad, "EUR"); err == nil {
			t.Errorf("ParseAmount(%q) accepted", bad)
		}
	}
	if v, err := ParseAmount("12.3", "EUR"); err != nil || v != 1230 {
		t.Errorf("ParseAmount(12.3) = %d, %v", v, err)
	}
}

func TestMulDivDoesNotOverflow(t *testing.T) {
	if got := mulDiv(MaxAmount, MaxAmount-1, MaxAmount); got != MaxAmount-1 {
		t.Fatalf("mulDiv(max, max-1, max) = %d", got)
	}
	if got := mulDiv(2000, 3333, 10001); got != 666 {
		t.Fatalf("mulDiv = %d, want 666 (floor)", got)
	}
	if got := mulDiv(math.MaxInt64/2, 0, 7); got != 0 {
		t.Fatal("zero factor")
	}
}

func TestParseCurrency(t *testing.T) {
	if c, err := ParseCurrency(" eur "); err != nil || c != "EUR" {
		t.Fatalf("%q %v", c, err)
	}
	for _, bad := range []string{"", "EU", "EURO", "E1R", "€"} {
		if _, err := ParseCurrency(bad); err == nil {
			t.Errorf("ParseCurrency(%q) accepted", bad)
		}
	}
}

func TestOpenNeedsDependencies(t *testing.T) {
	ctx := context.Background()
	_, err := Open(ctx, NewMemJournal(), Options{Config: DefaultConfig(), Payees: NewMemPayees(), Links: NewAttribution(0)})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("no liveness with a heartbeat rule: %v", err)
	}
	_, err = Open(ctx, NewMemJournal(), Options{Config: Config{}, Payees: NewMemPayees(), Links: NewAttribution(0)})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("zero config: %v", err)
	}
}

// A store persists entries as JSON: the round trip must replay into the
// same balances, and the books must still balance.
func TestEntriesSurviveJSON(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"), referral("REFE"))
	h.link("c1", "PART")
	h.link("c2", "REFE")
	h.pay(monthly("a", "c1", 150000, "EUR", day(2025, 1, 5)))
	h.pay(monthly("b", "c2", 150000, "EUR", day(2025, 1, 6)))
	h.refund(Refund{ExternalID: "r", PaymentID: "a", Amount: 100, At: day(2025, 1, 7)})
	b := h.run("2025-02")
	if _, err := h.l.MarkPaid(h.ctx, b.ID, []PayoutResult{{ItemID: b.Lines[0].ItemID, Status: PayoutFailed}}); err != nil {
		t.Fatal(err)
	}
	copyJ := NewMemJournal()
	for e, err := range h.j.Entries(h.ctx, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back Entry
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		if err := copyJ.Append(h.ctx, []Entry{back}); err != nil {
			t.Fatal(err)
		}
	}
	l2, err := Open(h.ctx, copyJ, Options{Config: h.cfg, Payees: h.payees, Links: h.attr, Liveness: h.live, Now: h.clk.now})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := h.l.Balances(), l2.Balances(); !slices.Equal(a, b) {
		t.Fatalf("balances after JSON round trip\n%+v\n%+v", a, b)
	}
	if ds, err := l2.Check(h.ctx); err != nil || len(ds) != 0 {
		t.Fatalf("check after JSON round trip: %v %v", ds, err)
	}
}

func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"12.34", "0.05", "1", "1.2", "99999999999.99", "1.234", "-1", "1e3"} {
		f.Add(s, "EUR")
	}
	f.Add("500", "JPY")
	f.Add("1.234", "KWD")
	f.Fuzz(func(t *testing.T, s, cur string) {
		c, err := ParseCurrency(cur)
		if err != nil {
			return
		}
		v, err := ParseAmount(s, c)
		if err != nil {
			return
		}
		if v < 0 || v > MaxAmount {
			t.Fatalf("ParseAmount(%q) = %d out of range", s, v)
		}
		back, err := ParseAmount(FormatAmount(v, c), c)
		if err != nil || back != v {
			t.Fatalf("round trip of %q: %d → %q → %d, %v", s, v, FormatAmount(v, c), back, err)
		}
	})
}
