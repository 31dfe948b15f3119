package ledger

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"testing"
	"time"
)

// benchLive treats every 50th customer's installs as dark: cheap, and the
// heartbeat rule still excludes payments.
type benchLive struct{}

func (benchLive) HeartbeatIn(_ context.Context, customerID string, _ []string, _, _ time.Time) (bool, error) {
	return len(customerID) == 0 || customerID[len(customerID)-1] != '7' || customerID[len(customerID)-2] != '4', nil
}

// BenchmarkCommission1MPayments: commission on 1,000,000 payments from
// 200,000 customers of 10,000 payees (30% partners, 10% with a parent),
// recorded in import batches of 1,000, then the monthly payout run.
// Issue 8 target: under 10 s on the project machine.
func BenchmarkCommission1MPayments(b *testing.B) {
	const (
		nPayees    = 10_000
		nCustomers = 200_000
		nPayments  = 1_000_000
		batch      = 1_000
	)
	ctx := context.Background()
	cfg := DefaultConfig()
	payees := NewMemPayees()
	for i := range nPayees {
		code := fmt.Sprintf("P%05d", i)
		p := referral(code)
		if i%10 < 3 {
			p = partner(code)
		}
		if i%10 == 5 && i > 0 {
			p.ParentCode = fmt.Sprintf("P%05d", i/2)
		}
		payees.Put(p)
	}
	attr := NewAttribution(cfg.ClickWindow())
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	custIDs := make([]string, nCustomers)
	installs := make([][]string, nCustomers)
	payers := make([]Payer, nCustomers)
	for i := range nCustomers {
		custIDs[i] = fmt.Sprintf("cus_%07d", i)
		installs[i] = []string{"inst_" + custIDs[i]}
		payers[i] = Payer{AccountID: "acct_" + custIDs[i], Email: "it@" + custIDs[i] + ".example", Billing: BillingIdentity{Name: custIDs[i]}}
		if i%20 != 0 { // 5% of customers came alone
			if _, err := attr.Link(Link{CustomerID: custIDs[i], PayeeCode: fmt.Sprintf("P%05d", i%nPayees), Source: LinkLicence, LinkedAt: start}); err != nil {
				b.Fatal(err)
			}
		}
	}
	// Payments are generated batch by batch (untimed) so the benchmark's
	// own data does not sit in the heap the ledger's GC has to scan.
	buf := make([]Payment, batch)
	gen := func(from int) []Payment {
		for k := range buf {
			i := from + k
			c := i % nCustomers
			at := start.AddDate(0, i/nCustomers, c%28).Add(time.Duration(c) * time.Second)
			buf[k] = Payment{ExternalID: "in_" + strconv.Itoa(i), CustomerID: custIDs[c], InstallIDs: installs[c],
				Amount: 1000 + int64(i%50000), Currency: "EUR", PeriodStart: at, PeriodEnd: at.AddDate(0, 1, 0), Plan: PlanMonthly,
				PaidAt: at, Payer: payers[c]}
		}
		return buf
	}
	runAt := time.Date(2025, 7, 1, 6, 0, 0, 0, time.UTC)
	b.ResetTimer()
	var lines int
	for range b.N {
		l, err := Open(ctx, NewMemJournal(), Options{Config: cfg, Payees: payees, Links: attr, Liveness: benchLive{},
			Now: func() time.Time { return runAt }})
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < nPayments; i += batch {
			b.StopTimer()
			ps := gen(i)
			b.StartTimer()
			if _, err := l.RecordPayments(ctx, ps); err != nil {
				b.Fatal(err)
			}
		}
		bt, err := l.Run(ctx, "2025-06")
		if err != nil {
			b.Fatal(err)
		}
		lines = len(bt.Lines)
	}
	b.StopTimer()
	if lines == 0 {
		b.Fatal("the payout run paid nobody")
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/1M-payments+run")
	b.ReportMetric(float64(lines), "payout-lines")
}

// BenchmarkStatement10kCustomers: one partner's monthly statement (JSON
// model and CSV) with 10,000 customers paying monthly for a quarter and
// some refunds.
func BenchmarkStatement10kCustomers(b *testing.B) {
	const nCustomers = 10_000
	h := newHarness(b, DefaultConfig(), partner("BIGP"))
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var ps []Payment
	for c := range nCustomers {
		id := fmt.Sprintf("cus_%05d", c)
		h.link(id, "BIGP")
		for m := range 3 {
			ps = append(ps, monthly(fmt.Sprintf("in_%05d_%d", c, m), id, 5000+int64(c), "EUR", start.AddDate(0, m, c%28)))
		}
	}
	h.clk.set(start.AddDate(0, 4, 0))
	for i := 0; i < len(ps); i += 1000 {
		if _, err := h.l.RecordPayments(h.ctx, ps[i:min(i+1000, len(ps))]); err != nil {
			b.Fatal(err)
		}
	}
	for c := 0; c < nCustomers; c += 10 {
		h.refund(Refund{ExternalID: fmt.Sprintf("re_%d", c), PaymentID: fmt.Sprintf("in_%05d_2", c), Amount: 1000, At: start.AddDate(0, 2, 27)})
	}
	b.ResetTimer()
	var n int
	for range b.N {
		st, err := h.l.Statement(h.ctx, "BIGP", "2025-03")
		if err != nil {
			b.Fatal(err)
		}
		if err := st.WriteCSV(io.Discard); err != nil {
			b.Fatal(err)
		}
		n = len(st.Lines)
	}
	b.StopTimer()
	if n < nCustomers {
		b.Fatalf("statement has %d lines, want at least one per customer", n)
	}
	b.ReportMetric(float64(n), "lines")
}
