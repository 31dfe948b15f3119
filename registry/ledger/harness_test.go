package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeLive reports every customer alive except the (customer, period
// start) pairs marked dead.
type fakeLive struct {
	mu   sync.Mutex
	dead map[string]bool // customer or customer|YYYY-MM
}

func (f *fakeLive) HeartbeatIn(_ context.Context, customerID string, _ []string, from, _ time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return !f.dead[customerID] && !f.dead[customerID+"|"+from.Format("2006-01")], nil
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type harness struct {
	t      testing.TB
	ctx    context.Context
	cfg    Config
	j      *MemJournal
	l      *Ledger
	payees *MemPayees
	attr   *Attribution
	live   *fakeLive
	clk    *testClock
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 12, 0, 0, 0, time.UTC) }

func newHarness(t testing.TB, cfg Config, payees ...Payee) *harness {
	t.Helper()
	h := &harness{t: t, ctx: context.Background(), cfg: cfg, j: NewMemJournal(), payees: NewMemPayees(payees...),
		attr: NewAttribution(cfg.ClickWindow()), live: &fakeLive{dead: map[string]bool{}}, clk: &testClock{t: day(2025, 1, 1)}}
	h.open()
	return h
}

func (h *harness) open() {
	h.t.Helper()
	l, err := Open(h.ctx, h.j, Options{Config: h.cfg, Payees: h.payees, Links: h.attr, Liveness: h.live, Now: h.clk.now})
	if err != nil {
		h.t.Fatalf("open ledger: %v", err)
	}
	h.l = l
}

// reopen replays the journal into a fresh ledger and demands the same
// balances: the state is nothing but the journal.
func (h *harness) reopen() {
	h.t.Helper()
	before := h.l.Balances()
	h.open()
	if after := h.l.Balances(); !slices.Equal(before, after) {
		h.t.Fatalf("balances differ after replaying the journal:\nbefore %+v\nafter  %+v", before, after)
	}
	h.check()
}

func (h *harness) link(customer, payee string) {
	h.t.Helper()
	if _, err := h.attr.Link(Link{CustomerID: customer, PayeeCode: payee, Source: LinkLicence, LinkedAt: day(2024, 12, 1)}); err != nil {
		h.t.Fatal(err)
	}
}

func monthly(id, customer string, amount int64, cur string, paidAt time.Time) Payment {
	return Payment{ExternalID: id, CustomerID: customer, InstallIDs: []string{"inst-" + customer}, Amount: amount, Currency: cur,
		PeriodStart: paidAt, PeriodEnd: paidAt.AddDate(0, 1, 0), Plan: PlanMonthly, PaidAt: paidAt,
		Payer: Payer{AccountID: "acct-" + customer, Email: "billing@" + customer + ".example", Billing: BillingIdentity{Name: "Customer " + customer}}}
}

func (h *harness) pay(p Payment) Outcome {
	h.t.Helper()
	if h.clk.now().Before(p.PaidAt) {
		h.clk.set(p.PaidAt)
	}
	o, err := h.l.RecordPayment(h.ctx, p)
	if err != nil {
		h.t.Fatalf("record payment %s: %v", p.ExternalID, err)
	}
	return o
}

func (h *harness) refund(r Refund) Outcome {
	h.t.Helper()
	if h.clk.now().Before(r.At) {
		h.clk.set(r.At)
	}
	o, err := h.l.RecordRefund(h.ctx, r)
	if err != nil {
		h.t.Fatalf("record refund %s: %v", r.ExternalID, err)
	}
	return o
}

// run runs the payout of a month on the 2nd of the next month.
func (h *harness) run(month string) Batch {
	h.t.Helper()
	m, err := parseMonth(month)
	if err != nil {
		h.t.Fatal(err)
	}
	if at := m.AddDate(0, 1, 1); h.clk.now().Before(at) {
		h.clk.set(at)
	}
	b, err := h.l.Run(h.ctx, month)
	if err != nil {
		h.t.Fatalf("payout run %s: %v", month, err)
	}
	return b
}

func (h *harness) check() {
	h.t.Helper()
	ds, err := h.l.Check(h.ctx)
	if err != nil {
		h.t.Fatalf("check: %v", err)
	}
	if len(ds) > 0 {
		var b strings.Builder
		for _, d := range ds {
			fmt.Fprintln(&b, d)
		}
		h.t.Fatalf("books do not balance:\n%s", b.String())
	}
}

func (h *harness) balance(payee, cur string) Balance {
	return h.l.BalanceOf(payee, cur)
}

func lineOf(b Batch, payee, cur string) (PayoutLine, bool) {
	for _, ln := range b.Lines {
		if ln.Payee == payee && ln.Currency == cur {
			return ln, true
		}
	}
	return PayoutLine{}, false
}

func carriedOf(b Batch, payee, cur string) (CarriedBalance, bool) {
	for _, c := range b.Carried {
		if c.Payee == payee && c.Currency == cur {
			return c, true
		}
	}
	return CarriedBalance{}, false
}

func partner(code string) Payee {
	return Payee{Code: code, Name: "Partner " + code, Tier: TierPartner, Status: PayeeApproved, AccountID: "acct-" + code,
		Email: "ops@" + strings.ToLower(code) + ".example", PayPalEmail: strings.ToLower(code) + "@paypal.example",
		Billing: BillingIdentity{Name: code + " Integrations Ltd", VATID: "DE" + code}, Country: "DE"}
}

func referral(code string) Payee {
	p := partner(code)
	p.Tier = TierReferral
	p.Name = "Referral " + code
	p.Billing = BillingIdentity{Name: "Hobbyist " + code}
	return p
}
