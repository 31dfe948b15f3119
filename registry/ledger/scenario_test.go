package ledger

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// Seed 002: partners earn for the whole subscription, referrals for one
// year after the customer's first payment.
func TestPartnerWholeSubscriptionReferralTwelveMonths(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"), referral("REFE"))
	h.link("cp", "PART")
	h.link("cr", "REFE")
	first := day(2025, 1, 15)
	var partnerEarned, referralEarned int64
	for i := range 24 {
		at := first.AddDate(0, i, 0)
		op := h.pay(monthly(fmt.Sprintf("inv-p-%d", i), "cp", 10000, "EUR", at))
		if op.Entries[0].Kind != KindCommission || op.Entries[0].Amount != 2000 {
			t.Fatalf("partner month %d: got %+v, want a 20.00 commission", i, op.Entries[0])
		}
		partnerEarned += op.Entries[0].Amount
		or := h.pay(monthly(fmt.Sprintf("inv-r-%d", i), "cr", 10000, "EUR", at))
		e := or.Entries[0]
		if i < 12 {
			if e.Kind != KindCommission || e.Amount != 1000 {
				t.Fatalf("referral month %d: got %+v, want a 10.00 commission", i, e)
			}
			referralEarned += e.Amount
		} else if e.Kind != KindExcluded || e.Reason != ReasonDurationEnded || e.Payee != "REFE" {
			t.Fatalf("referral month %d (after 12 months): got %+v, want excluded %s", i, e, ReasonDurationEnded)
		}
	}
	if b := h.balance("PART", "EUR"); b.Earned != partnerEarned || partnerEarned != 24*2000 {
		t.Errorf("partner earned %d, want %d", b.Earned, 24*2000)
	}
	if b := h.balance("REFE", "EUR"); b.Earned != referralEarned || referralEarned != 12*1000 {
		t.Errorf("referral earned %d, want %d", b.Earned, 12*1000)
	}
	h.check()
	h.reopen()
}

// Seed 002: partners stop earning when the client stops using the product.
func TestInstallGoneDark(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"), referral("REFE"))
	h.link("cp", "PART")
	h.link("cr", "REFE")
	h.live.dead["cp|2025-03"] = true
	h.live.dead["cr|2025-03"] = true
	for i, m := range []time.Month{time.February, time.March, time.April} {
		o := h.pay(monthly(fmt.Sprintf("p%d", i), "cp", 10000, "EUR", day(2025, m, 1)))
		e := o.Entries[0]
		if m == time.March {
			if e.Kind != KindExcluded || e.Reason != ReasonNoHeartbeat || !strings.Contains(e.Note, "2025-03-01") {
				t.Fatalf("March payment with a dark install: got %+v, want excluded %s with the period", e, ReasonNoHeartbeat)
			}
		} else if e.Kind != KindCommission {
			t.Fatalf("%s payment with a live install: got %+v, want a commission", m, e)
		}
		// Referrals are not bound to liveness: they earn on the payment.
		if r := h.pay(monthly(fmt.Sprintf("r%d", i), "cr", 10000, "EUR", day(2025, m, 1))); r.Entries[0].Kind != KindCommission {
			t.Fatalf("referral %s: got %+v, want a commission", m, r.Entries[0])
		}
	}
	if b := h.balance("PART", "EUR"); b.Earned != 4000 {
		t.Errorf("partner earned %d, want 4000 (two live months)", b.Earned)
	}
	h.check()
}

// Seed 004: no commission on one's own purchases.
func TestSelfPurchase(t *testing.T) {
	base := monthly("x", "cust", 10000, "EUR", day(2025, 2, 1))
	cases := []struct {
		name  string
		payer Payer
		want  Reason
	}{
		{"same account", Payer{AccountID: "acct-PART"}, ReasonSelfAccount},
		{"same e-mail domain", Payer{AccountID: "other", Email: "Boss@PART.example"}, ReasonSelfEmailDomain},
		{"same VAT id typed differently", Payer{Email: "a@b.example", Billing: BillingIdentity{Name: "Someone", VATID: "de part"}}, ReasonSelfBilling},
		{"same billing name", Payer{Billing: BillingIdentity{Name: "part  integrations LTD."}}, ReasonSelfBilling},
		{"public mail domain is not the payee", Payer{Email: "x@gmail.com"}, ""},
		{"a real customer", Payer{AccountID: "acct-c", Email: "it@customer.example", Billing: BillingIdentity{Name: "Customer GmbH", VATID: "ATU1"}}, ""},
	}
	p := partner("PART")
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pp := p
			if c.name == "public mail domain is not the payee" {
				pp.Email, pp.EmailDomain = "part@gmail.com", ""
			}
			h := newHarness(t, DefaultConfig(), pp)
			h.link("cust", "PART")
			pay := base
			pay.ExternalID = fmt.Sprintf("inv-%d", i)
			pay.Payer = c.payer
			e := h.pay(pay).Entries[0]
			if c.want == "" {
				if e.Kind != KindCommission {
					t.Fatalf("got %+v, want a commission", e)
				}
			} else if e.Kind != KindExcluded || e.Reason != c.want || e.Payee != "PART" {
				t.Fatalf("got %+v, want excluded %s for PART", e, c.want)
			}
			h.check()
		})
	}
}

// Refunds reverse commission (in proportion), by new entries; after a
// payout the balance goes negative and carries until new commission covers it.
func TestRefundAfterPayoutCarriesNegativeBalance(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"))
	h.link("c1", "PART")
	h.pay(monthly("inv-1", "c1", 150000, "EUR", day(2025, 1, 5))) // 300.00 commission
	b := h.run("2025-01")
	if _, ok := lineOf(b, "PART", "EUR"); ok {
		t.Fatalf("January run paid commission still on hold until Feb 4: %+v", b.Lines)
	}
	b = h.run("2025-02")
	ln, ok := lineOf(b, "PART", "EUR")
	if !ok || ln.Amount != 30000 {
		t.Fatalf("February run: got %+v, want a 300.00 payout", b.Lines)
	}
	h.check()
	h.refund(Refund{ExternalID: "re-1", PaymentID: "inv-1", Amount: 150000, At: day(2025, 3, 10), Kind: RefundKindChargeback})
	if bal := h.balance("PART", "EUR"); bal.Balance != -30000 || bal.Reversed != 30000 || bal.Paid != 30000 {
		t.Fatalf("after chargeback of a paid commission: %+v, want balance -300.00", bal)
	}
	h.check()
	b = h.run("2025-03")
	if c, ok := carriedOf(b, "PART", "EUR"); !ok || c.Reason != ReasonNotPositive || c.Amount != 30000 {
		t.Fatalf("March run: got carried %+v, want the negative balance carried", b.Carried)
	}
	h.pay(monthly("inv-2", "c1", 100000, "EUR", day(2025, 3, 20))) // +200.00 → -100.00
	h.pay(monthly("inv-3", "c1", 200000, "EUR", day(2025, 4, 2)))  // +400.00 → 300.00 (payable after May 2)
	b = h.run("2025-04")
	if c, ok := carriedOf(b, "PART", "EUR"); !ok || c.Reason != ReasonNotPositive || c.Amount != 10000 {
		t.Fatalf("April run: got %+v, want -100.00 carried (inv-3 is still on hold)", b.Carried)
	}
	b = h.run("2025-05")
	if ln, ok := lineOf(b, "PART", "EUR"); !ok || ln.Amount != 30000 {
		t.Fatalf("May run: got %+v, want 300.00 (the negative balance netted)", b.Lines)
	}
	if bal := h.balance("PART", "EUR"); bal.Balance != 0 {
		t.Fatalf("balance after May payout: %+v, want 0", bal)
	}
	h.check()
	h.reopen()
}

func TestPartialRefundsReverseInProportionNeverMore(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"))
	h.link("c1", "PART")
	h.pay(monthly("inv", "c1", 10001, "EUR", day(2025, 1, 5))) // 20% = 2000 (floor of 2000.2)
	var total int64
	for i, amt := range []int64{3333, 3333, 3335} {
		o := h.refund(Refund{ExternalID: fmt.Sprintf("re-%d", i), PaymentID: "inv", Amount: amt, At: day(2025, 1, 6+i)})
		for _, e := range o.Entries {
			if e.Kind == KindReversal {
				total += e.Amount
			}
		}
		if total > 2000 {
			t.Fatalf("after refund %d reversals total %d, more than the 2000 commission", i, total)
		}
	}
	if total != 2000 {
		t.Fatalf("full refund in three parts reversed %d, want exactly 2000", total)
	}
	_, err := h.l.RecordRefund(h.ctx, Refund{ExternalID: "re-x", PaymentID: "inv", Amount: 1, At: day(2025, 1, 10)})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("refund beyond the payment: err %v, want ErrInvalid", err)
	}
	_, err = h.l.RecordRefund(h.ctx, Refund{ExternalID: "re-y", PaymentID: "nope", Amount: 1, At: day(2025, 1, 10)})
	if !errors.Is(err, ErrUnknownPayment) {
		t.Fatalf("refund of an unknown payment: err %v, want ErrUnknownPayment", err)
	}
	// The same refund again stores nothing.
	n := h.j.Len()
	o := h.refund(Refund{ExternalID: "re-0", PaymentID: "inv", Amount: 3333, At: day(2025, 1, 6)})
	if !o.Duplicate || h.j.Len() != n || len(o.Entries) != 2 {
		t.Fatalf("repeated refund: duplicate=%v entries=%d journal %d→%d", o.Duplicate, len(o.Entries), n, h.j.Len())
	}
	if _, err := h.l.RecordRefund(h.ctx, Refund{ExternalID: "re-0", PaymentID: "inv", Amount: 1, At: day(2025, 1, 6)}); !errors.Is(err, ErrConflict) {
		t.Fatalf("refund id reused with another amount: err %v, want ErrConflict", err)
	}
	h.check()
}

// Seed 004: a parent earns 10% of what the affiliates it brought earn,
// as its own entries, reversed with them.
func TestSecondTier(t *testing.T) {
	child := referral("KIDS")
	child.ParentCode = "PAPA"
	h := newHarness(t, DefaultConfig(), partner("PAPA"), child)
	h.link("c1", "KIDS")
	o := h.pay(monthly("inv-1", "c1", 12345, "EUR", day(2025, 1, 5)))
	if len(o.Entries) != 2 {
		t.Fatalf("got %d entries, want the child's commission and the parent's share", len(o.Entries))
	}
	kid, parent := o.Entries[0], o.Entries[1]
	if kid.Payee != "KIDS" || kid.Amount != 1234 || parent.Payee != "PAPA" || parent.Level != 2 || parent.From != "KIDS" || parent.Amount != 123 {
		t.Fatalf("got child %+v parent %+v; want 12.34 for KIDS and 1.23 (10%%) for PAPA", kid, parent)
	}
	o = h.refund(Refund{ExternalID: "re-1", PaymentID: "inv-1", Amount: 12345, At: day(2025, 1, 20)})
	if got := h.balance("PAPA", "EUR"); got.Reversed != 123 || got.Balance != 0 {
		t.Fatalf("parent after full refund: %+v, want its share reversed", got)
	}
	h.pay(monthly("inv-2", "c1", 10000, "EUR", day(2025, 2, 5)))
	st, err := h.l.Statement(h.ctx, "PAPA", "2025-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Lines) != 1 || !strings.HasPrefix(st.Lines[0].Customer, "via KIDS: customer-") || st.Lines[0].PaymentID != "inv-2" ||
		st.Lines[0].PaymentAmount != 10000 {
		t.Fatalf("parent statement lines %+v; want one anonymised second-tier line traceable to inv-2", st.Lines)
	}
	// A suspended parent gets nothing, with the reason.
	pp := partner("PAPA")
	pp.Status = PayeeSuspended
	h.payees.Put(pp)
	o = h.pay(monthly("inv-3", "c1", 10000, "EUR", day(2025, 3, 5)))
	if o.Entries[1].Kind != KindExcluded || o.Entries[1].Reason != ReasonPayeeNotApproved {
		t.Fatalf("suspended parent: got %+v, want excluded", o.Entries[1])
	}
	h.check()
	h.reopen()
}

// Seeds 002/004: payouts only once the balance reaches the threshold; the
// rest carries over.
func TestThresholdCarryOver(t *testing.T) {
	h := newHarness(t, DefaultConfig(), referral("REFE"), partner("PART"))
	h.link("c1", "REFE")
	h.link("c2", "PART")
	h.pay(monthly("a", "c1", 60000, "EUR", day(2025, 1, 1))) // 60.00, payable Jan 31
	h.pay(monthly("b", "c2", 90000, "EUR", day(2025, 1, 1))) // 180.00, partner threshold 200
	b := h.run("2025-01")
	if c, ok := carriedOf(b, "REFE", "EUR"); !ok || c.Reason != ReasonBelowThreshold || c.Amount != 6000 || !strings.Contains(c.Note, "100.00 EUR") {
		t.Fatalf("January: referral carried %+v, want 60.00 below the 100.00 threshold", b.Carried)
	}
	if c, ok := carriedOf(b, "PART", "EUR"); !ok || c.Reason != ReasonBelowThreshold {
		t.Fatalf("January: partner carried %+v, want below the 200.00 threshold", b.Carried)
	}
	h.pay(monthly("c", "c1", 60000, "EUR", day(2025, 1, 20))) // payable Feb 19
	b = h.run("2025-02")
	if ln, ok := lineOf(b, "REFE", "EUR"); !ok || ln.Amount != 12000 {
		t.Fatalf("February: got %+v, want 120.00 paid (60 carried + 60)", b.Lines)
	}
	if bal := h.balance("REFE", "EUR"); bal.Balance != 0 {
		t.Fatalf("after payout: %+v", bal)
	}
	h.check()
	h.reopen()
}

// Seed 002: without PayPal, payouts are manual and once per 3 months.
func TestQuarterlyManualPayout(t *testing.T) {
	p := partner("MANU")
	p.PayPalEmail = ""
	h := newHarness(t, DefaultConfig(), p, partner("PAYP"))
	h.link("c1", "MANU")
	h.link("c2", "PAYP")
	h.pay(monthly("a", "c1", 200000, "EUR", day(2025, 1, 1)))
	h.pay(monthly("b", "c2", 200000, "EUR", day(2025, 1, 1)))
	b := h.run("2025-01")
	if c, ok := carriedOf(b, "MANU", "EUR"); !ok || c.Reason != ReasonManualQuarterly || !strings.Contains(c.Note, "2025-03") {
		t.Fatalf("January: got %+v, want carried to the 2025-03 manual run", b.Carried)
	}
	if ln, ok := lineOf(b, "PAYP", "EUR"); !ok || ln.Method != MethodPayPal {
		t.Fatalf("January: PayPal payee not paid: %+v", b.Lines)
	}
	h.run("2025-02")
	b = h.run("2025-03")
	ln, ok := lineOf(b, "MANU", "EUR")
	if !ok || ln.Method != MethodManual || ln.Amount != 40000 {
		t.Fatalf("March: got %+v, want a 400.00 manual line", b.Lines)
	}
	for _, f := range b.PayPalFiles() {
		for _, l := range f.Lines {
			if l.Payee == "MANU" {
				t.Fatal("manual payee in the PayPal file")
			}
		}
	}
	var buf bytes.Buffer
	if err := h.l.ManualReport(h.ctx, &buf, b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 2 || rows[1][2] != "MANU" || rows[1][9] != "400.00" || rows[1][10] != "EUR" {
		t.Fatalf("manual report rows %q (err %v)", rows, err)
	}
	if _, err := h.l.MarkPaid(h.ctx, b.ID, []PayoutResult{{ItemID: ln.ItemID, Status: PayoutPaid, Ref: "bank transfer 42"}}); err != nil {
		t.Fatal(err)
	}
	h.check()
	h.reopen()
}

// Seed 004: above the yearly tax-reporting threshold, no payout without
// tax details on file.
func TestTaxHold(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Thresholds[TierPartner]["USD"] = 10000
	p := partner("USPA")
	h := newHarness(t, cfg, p)
	h.link("c1", "USPA")
	h.pay(monthly("a", "c1", 250000, "USD", day(2025, 1, 1))) // 500.00
	b := h.run("2025-01")
	if ln, ok := lineOf(b, "USPA", "USD"); !ok || ln.Amount != 50000 {
		t.Fatalf("January: %+v, want 500.00 paid (under 600)", b.Lines)
	}
	h.pay(monthly("b", "c1", 100000, "USD", day(2025, 1, 15))) // 200.00 → 700 in the year
	b = h.run("2025-02")
	c, ok := carriedOf(b, "USPA", "USD")
	if !ok || c.Reason != ReasonTaxDetails || !strings.Contains(c.Note, "700.00 USD") || !strings.Contains(c.Note, "600.00 USD") {
		t.Fatalf("February: %+v, want 200.00 held for tax details", b.Carried)
	}
	if _, ok := lineOf(b, "USPA", "USD"); ok {
		t.Fatal("paid despite the tax hold")
	}
	p.TaxDetailsOnFile = true
	h.payees.Put(p)
	b = h.run("2025-03")
	if ln, ok := lineOf(b, "USPA", "USD"); !ok || ln.Amount != 20000 {
		t.Fatalf("March with tax details: %+v, want the held 200.00 paid", b.Lines)
	}
	h.check()
	h.reopen()
}

// Seed 004: last-click attribution with 90-day cookies; once linked, permanent.
func TestLastClickAttribution(t *testing.T) {
	h := newHarness(t, DefaultConfig(), referral("AAAA"), referral("BBBB"), referral("CCCC"))
	signup := day(2025, 6, 1)
	for _, c := range []Click{
		{VisitorID: "v1", PayeeCode: "AAAA", At: signup.AddDate(0, 0, -30)},
		{VisitorID: "v1", PayeeCode: "BBBB", At: signup.AddDate(0, 0, -3)},
		{VisitorID: "v1", PayeeCode: "CCCC", At: signup.Add(time.Hour)}, // after sign-up: ignored
		{VisitorID: "v2", PayeeCode: "AAAA", At: signup.AddDate(0, 0, -90)},
		{VisitorID: "v3", PayeeCode: "AAAA", At: signup.AddDate(0, 0, -91)},
	} {
		if err := h.attr.RecordClick(c); err != nil {
			t.Fatal(err)
		}
	}
	l, ok, err := h.attr.LinkFromClicks("cust1", "v1", signup)
	if err != nil || !ok || l.PayeeCode != "BBBB" || l.Source != LinkClick {
		t.Fatalf("v1: got %+v %v %v, want the latest click before sign-up (BBBB)", l, ok, err)
	}
	if l, ok, _ := h.attr.LinkFromClicks("cust2", "v2", signup); !ok || l.PayeeCode != "AAAA" {
		t.Fatalf("v2: click exactly 90 days before: got %+v %v, want AAAA", l, ok)
	}
	if l, ok, _ := h.attr.LinkFromClicks("cust3", "v3", signup); ok {
		t.Fatalf("v3: click 91 days before sign-up attributed %+v, want nothing", l)
	}
	if e := h.pay(monthly("p3", "cust3", 10000, "EUR", signup)).Entries[0]; e.Kind != KindExcluded || e.Reason != ReasonNoLink {
		t.Fatalf("payment of an unattributed customer: %+v, want excluded %s", e, ReasonNoLink)
	}
	if e := h.pay(monthly("p1", "cust1", 10000, "EUR", signup)).Entries[0]; e.Payee != "BBBB" || e.Kind != KindCommission {
		t.Fatalf("payment of cust1: %+v, want commission for BBBB", e)
	}
	// Once linked, stays linked: a later click or code does not move it.
	if _, err := h.attr.Link(Link{CustomerID: "cust1", PayeeCode: "CCCC", Source: LinkManual, LinkedAt: signup.AddDate(0, 1, 0)}); !errors.Is(err, ErrAlreadyLinked) {
		t.Fatalf("relink: err %v, want ErrAlreadyLinked", err)
	}
	if l, _, _ := h.attr.LinkFromClicks("cust1", "v1", signup.AddDate(0, 0, 1)); l.PayeeCode != "BBBB" {
		t.Fatalf("second attribution moved the link to %s", l.PayeeCode)
	}
	// Only staff move it, and the move is recorded.
	m, err := h.attr.Move("cust1", "CCCC", "staff:anna", "customer asked, ticket 77", signup.AddDate(0, 2, 0))
	if err != nil || m.From != "BBBB" || m.To != "CCCC" {
		t.Fatalf("move: %+v %v", m, err)
	}
	if mv := h.attr.Moves("cust1"); len(mv) != 1 || mv[0].By != "staff:anna" || mv[0].Reason == "" {
		t.Fatalf("moves %+v", mv)
	}
	if e := h.pay(monthly("p1b", "cust1", 10000, "EUR", signup.AddDate(0, 3, 0))).Entries[0]; e.Payee != "CCCC" {
		t.Fatalf("payment after the move went to %s, want CCCC", e.Payee)
	}
	if b := h.balance("BBBB", "EUR"); b.Earned != 1000 {
		t.Fatalf("commission before the move must stay with BBBB: %+v", b)
	}
	h.check()
}

// The same webhook twice stores the payment once; the same month run
// twice pays nobody twice.
func TestIdempotentPaymentAndRun(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"))
	h.link("c1", "PART")
	p := monthly("inv-1", "c1", 150000, "EUR", day(2025, 1, 5))
	first := h.pay(p)
	n := h.j.Len()
	again := h.pay(p)
	if !again.Duplicate || h.j.Len() != n || len(again.Entries) != 1 || again.Entries[0].Seq != first.Entries[0].Seq {
		t.Fatalf("repeated payment: duplicate=%v journal %d→%d entries %+v", again.Duplicate, n, h.j.Len(), again.Entries)
	}
	q := p
	q.Amount++
	if _, err := h.l.RecordPayment(h.ctx, q); !errors.Is(err, ErrConflict) {
		t.Fatalf("same id, other amount: err %v, want ErrConflict", err)
	}
	outs, err := h.l.RecordPayments(h.ctx, []Payment{monthly("inv-2", "c1", 100, "EUR", day(2025, 1, 6)), monthly("inv-2", "c1", 100, "EUR", day(2025, 1, 6))})
	if err != nil || outs[0].Duplicate || !outs[1].Duplicate || len(outs[1].Entries) != 1 {
		t.Fatalf("duplicate inside one batch: %+v %v", outs, err)
	}
	bad := monthly("inv-3", "c1", -5, "eur", day(2025, 1, 6))
	if _, err := h.l.RecordPayments(h.ctx, []Payment{monthly("inv-4", "c1", 100, "EUR", day(2025, 1, 6)), bad}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("batch with an invalid payment: err %v, want ErrInvalid", err)
	}
	if outs, _ := h.l.RecordPayments(h.ctx, nil); len(outs) != 0 {
		t.Fatal("empty batch")
	}
	if b := h.l.BalanceOf("PART", "EUR"); b.Earned != 30000+20 {
		t.Fatalf("invalid batch left a trace: %+v", b)
	}

	h.clk.set(day(2025, 2, 20))
	if _, err := h.l.Run(h.ctx, "2025-02"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("running a month that is not over: err %v, want ErrInvalid", err)
	}
	b1 := h.run("2025-02")
	n = h.j.Len()
	b2 := h.run("2025-02")
	if !b2.Existing || h.j.Len() != n || len(b2.Lines) != 1 || b2.Lines[0] != b1.Lines[0] {
		t.Fatalf("second run of 2025-02: existing=%v journal %d→%d lines %+v vs %+v", b2.Existing, n, h.j.Len(), b2.Lines, b1.Lines)
	}
	if _, err := h.l.Run(h.ctx, "2025-01"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("running an earlier month after 2025-02: err %v, want ErrInvalid", err)
	}
	if b := h.run("2025-03"); len(b.Lines) != 0 {
		t.Fatalf("March paid again: %+v", b.Lines)
	}
	// A failed PayPal item returns its money; the next run pays it again.
	item := b1.Lines[0].ItemID
	if _, err := h.l.MarkPaid(h.ctx, b1.ID, []PayoutResult{{ItemID: item, Status: PayoutFailed, Ref: "RECEIVER_UNREGISTERED"}}); err != nil {
		t.Fatal(err)
	}
	n = h.j.Len()
	if _, err := h.l.MarkPaid(h.ctx, b1.ID, []PayoutResult{{ItemID: item, Status: PayoutFailed}}); err != nil || h.j.Len() != n {
		t.Fatalf("marking the same result again: err %v, journal %d→%d", err, n, h.j.Len())
	}
	if _, err := h.l.MarkPaid(h.ctx, b1.ID, []PayoutResult{{ItemID: item, Status: PayoutPaid}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("failed → paid: err %v, want ErrConflict", err)
	}
	if _, err := h.l.MarkPaid(h.ctx, "payout-1999-01", nil); !errors.Is(err, ErrUnknownBatch) {
		t.Fatalf("unknown batch: err %v", err)
	}
	b4 := h.run("2025-04")
	if ln, ok := lineOf(b4, "PART", "EUR"); !ok || ln.Amount != b1.Lines[0].Amount {
		t.Fatalf("April after the failed item: %+v, want %d paid again", b4.Lines, b1.Lines[0].Amount)
	}
	if _, err := h.l.MarkPaid(h.ctx, b4.ID, []PayoutResult{{ItemID: b4.Lines[0].ItemID, Status: PayoutPaid, Ref: "TX1"}}); err != nil {
		t.Fatal(err)
	}
	if bal := h.balance("PART", "EUR"); bal.Paid != b1.Lines[0].Amount {
		t.Fatalf("paid in all %d, want %d once", bal.Paid, b1.Lines[0].Amount)
	}
	h.check()
	h.reopen()
}

func TestPayPalFileFormat(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"))
	h.link("c1", "PART")
	h.pay(monthly("inv-1", "c1", 122550, "EUR", day(2025, 1, 5)))
	b := h.run("2025-02")
	files := b.PayPalFiles()
	if len(files) != 1 || files[0].Name != "payout-2025-02-EUR-1.csv" {
		t.Fatalf("files %+v", files)
	}
	var buf bytes.Buffer
	if err := WritePayPalCSV(&buf, files[0], "Switchboard commission 2025-02"); err != nil {
		t.Fatal(err)
	}
	want := "part@paypal.example,245.10,EUR,202502-000001,Switchboard commission 2025-02,PAYPAL\n"
	if buf.String() != want {
		t.Fatalf("PayPal row\n got %q\nwant %q", buf.String(), want)
	}
	// Files hold one currency and at most 5000 rows.
	big := Batch{ID: "payout-2025-09"}
	for i := range PayPalMaxRows + 1 {
		big.Lines = append(big.Lines, PayoutLine{ItemID: fmt.Sprint(i), Payee: "P", Currency: "USD", Amount: 1, Method: MethodPayPal, Receiver: "a@b.c", Status: ItemSent})
	}
	big.Lines = append(big.Lines, PayoutLine{ItemID: "e", Currency: "EUR", Amount: 1, Method: MethodPayPal, Receiver: "a@b.c", Status: ItemSent})
	fs := big.PayPalFiles()
	if len(fs) != 3 || fs[0].Currency != "EUR" || len(fs[1].Lines) != PayPalMaxRows || len(fs[2].Lines) != 1 {
		t.Fatalf("split: %d files", len(fs))
	}
	bad := PayPalFile{Name: "x", Currency: "EUR", Lines: []PayoutLine{{ItemID: "1", Currency: "USD", Receiver: "a@b.c"}}}
	if err := WritePayPalCSV(&buf, bad, ""); err == nil {
		t.Fatal("mixed currency accepted")
	}
	bad.Lines[0].Currency, bad.Lines[0].Receiver = "EUR", ""
	if err := WritePayPalCSV(&buf, bad, ""); err == nil {
		t.Fatal("empty receiver accepted")
	}
	if _, err := ParsePayPalStatus("UNCLAIMED"); !errors.Is(err, ErrInvalid) {
		t.Fatal("UNCLAIMED is not final")
	}
	if s, _ := ParsePayPalStatus("success"); s != PayoutPaid {
		t.Fatal("SUCCESS")
	}
}

// DESIGN Visibility: partners see customer names, referrals do not; every
// line names its payment.
func TestStatements(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"), referral("REFE"))
	h.link("c1", "PART")
	h.link("c2", "REFE")
	h.pay(monthly("inv-jan", "c1", 10000, "EUR", day(2025, 1, 5)))
	h.pay(monthly("inv-1", "c1", 10000, "EUR", day(2025, 2, 5)))
	h.pay(monthly("inv-2", "c2", 10000, "EUR", day(2025, 2, 6)))
	h.refund(Refund{ExternalID: "re-1", PaymentID: "inv-1", Amount: 5000, At: day(2025, 2, 7)})
	ps, err := h.l.Statement(h.ctx, "PART", "2025-02")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps.Lines) != 2 || ps.Lines[0].Customer != "Customer c1" || ps.Lines[1].Kind != KindReversal || ps.Lines[1].Amount != -1000 ||
		ps.Lines[1].PaymentID != "inv-1" || ps.Lines[1].Customer != "Customer c1" {
		t.Fatalf("partner statement lines %+v", ps.Lines)
	}
	if len(ps.Totals) != 1 || ps.Totals[0].Opening != 2000 || ps.Totals[0].Closing != 3000 {
		t.Fatalf("partner totals %+v, want opening 20.00 and closing 30.00", ps.Totals)
	}
	rs, err := h.l.Statement(h.ctx, "REFE", "2025-02")
	if err != nil {
		t.Fatal(err)
	}
	anon := AnonymousCustomer("REFE", "c2")
	if len(rs.Lines) != 1 || rs.Lines[0].Customer != anon || rs.Lines[0].PaymentID != "inv-2" {
		t.Fatalf("referral statement %+v, want the pseudonym %s", rs.Lines, anon)
	}
	var buf bytes.Buffer
	if err := rs.WriteCSV(&buf); err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(rs)
	if strings.Contains(buf.String(), "Customer c2") || strings.Contains(string(js), "Customer c2") || strings.Contains(string(js), `"c2"`) {
		t.Fatal("referral statement leaks the customer's name or id")
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 4 || rows[1][1] != "opening_balance" || rows[2][2] != "inv-2" || rows[2][9] != "10.00" || rows[3][9] != "10.00" {
		t.Fatalf("referral CSV %q (err %v)", rows, err)
	}
	if _, err := h.l.Statement(h.ctx, "NOPE", "2025-02"); !errors.Is(err, ErrUnknownPayee) {
		t.Fatalf("statement of unknown payee: %v", err)
	}
	if _, err := h.l.Statement(h.ctx, "PART", "2025-2"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad month: %v", err)
	}
	h.check()
}

// Check must be able to fail: a payout written behind the ledger's back is
// caught as unbacked and as a balance the ledger does not hold.
func TestCheckCatchesTampering(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"))
	h.link("c1", "PART")
	h.pay(monthly("inv-1", "c1", 150000, "EUR", day(2025, 1, 5)))
	h.run("2025-02")
	h.check()
	forged := Entry{Seq: h.l.lastSeq + 1, Kind: KindPayout, At: day(2025, 3, 2), Payee: "PART", Currency: "EUR", Amount: 5000,
		BatchID: "payout-2025-02", ItemID: "202502-000099", Month: "2025-02", Method: MethodPayPal}
	if err := h.j.Append(h.ctx, []Entry{forged}); err != nil {
		t.Fatal(err)
	}
	ds, err := h.l.Check(h.ctx)
	if err != nil || len(ds) == 0 {
		t.Fatalf("forged payout not detected: %v %v", ds, err)
	}
	h.open()
	ds, _ = h.l.Check(h.ctx)
	found := false
	for _, d := range ds {
		if strings.Contains(d.Problem, "not backed") || strings.Contains(d.Problem, "second payout") {
			found = true
		}
	}
	if !found {
		t.Fatalf("after replay the forged payout is not reported as unbacked: %v", ds)
	}
	// A journal refuses a sequence number it already holds.
	if err := h.j.Append(h.ctx, []Entry{forged}); err == nil {
		t.Fatal("journal accepted a reused sequence number")
	}
}

func TestFlatRuleWithCapAndPlans(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Rules = []CommissionRule{
		{Tier: TierReferral, Plan: PlanMonthly, Flat: map[string]int64{"USD": 2000}},
		{Tier: TierReferral, Plan: PlanAnnual, Flat: map[string]int64{"USD": 20000}},
		{Tier: TierPartner, PercentBP: 2000, Cap: map[string]int64{"USD": 2000}},
	}
	h := newHarness(t, cfg, referral("MAES"), partner("PART"))
	h.link("c1", "MAES")
	h.link("c2", "PART")
	if e := h.pay(monthly("m", "c1", 9700, "USD", day(2025, 1, 1))).Entries[0]; e.Amount != 2000 {
		t.Fatalf("flat monthly: %+v", e)
	}
	annual := monthly("a", "c1", 97000, "USD", day(2025, 2, 1))
	annual.Plan, annual.PeriodEnd = PlanAnnual, annual.PeriodStart.AddDate(1, 0, 0)
	if e := h.pay(annual).Entries[0]; e.Amount != 20000 {
		t.Fatalf("flat annual: %+v", e)
	}
	if e := h.pay(monthly("e", "c1", 9700, "EUR", day(2025, 1, 1))).Entries[0]; e.Kind != KindExcluded || e.Reason != ReasonNoRule {
		t.Fatalf("flat rule without the currency: %+v", e)
	}
	if e := h.pay(monthly("p", "c2", 50000, "USD", day(2025, 1, 1))).Entries[0]; e.Amount != 2000 {
		t.Fatalf("capped percent: %+v, want the 20.00 cap", e)
	}
	if e := h.pay(monthly("q", "c2", 4, "USD", day(2025, 1, 1))).Entries[0]; e.Kind != KindExcluded || e.Reason != ReasonZero {
		t.Fatalf("tiny payment: %+v", e)
	}
	h.check()
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	c := DefaultConfig()
	c.Rules = append(c.Rules, CommissionRule{Tier: "vip", PercentBP: 20000})
	c.Thresholds[TierPartner]["eur"] = -1
	c.ManualEveryMonths = 5
	err := c.Validate()
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("err %v", err)
	}
	for _, want := range []string{"tier must be partner or referral", "percent_bp 20000", `currency "eur"`, "manual_every_months 5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// The ledger serialises writers: concurrent webhooks, refunds, reads and
// checks stay race-free and balanced.
func TestConcurrentUse(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"), referral("REFE"))
	for i := range 8 {
		h.link(fmt.Sprintf("c%d", i), []string{"PART", "REFE"}[i%2])
	}
	h.clk.set(day(2025, 6, 1))
	done := make(chan error, 4)
	for w := range 4 {
		go func() {
			for i := range 50 {
				id := fmt.Sprintf("w%d-%d", w, i)
				p := monthly(id, fmt.Sprintf("c%d", i%8), 10000+int64(i), "EUR", day(2025, 1, 1+i%28))
				if _, err := h.l.RecordPayment(h.ctx, p); err != nil {
					done <- err
					return
				}
				if i%5 == 0 {
					if _, err := h.l.RecordRefund(h.ctx, Refund{ExternalID: "r" + id, PaymentID: id, Amount: 5000, At: day(2025, 2, 1)}); err != nil {
						done <- err
						return
					}
				}
				_ = h.l.Balances()
				if _, err := h.l.Check(h.ctx); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	h.run("2025-02")
	h.check()
	h.reopen()
}
