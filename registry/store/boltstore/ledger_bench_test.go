package boltstore_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

// BenchmarkJournalAppend: the persisted path of the ledger journal. One op
// is one durable append (one bbolt transaction with its fsync) of 1,000
// commission entries with their payee and payment index keys, as a CSV
// import batch writes them, onto a journal that keeps growing.
func BenchmarkJournalAppend(b *testing.B) {
	const batch = 1000
	st, err := boltstore.Open(filepath.Join(b.TempDir(), "r.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	es := make([]ledger.Entry, batch)
	seq := uint64(0)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		for k := range es {
			seq++
			es[k] = ledger.Entry{Seq: seq, Kind: ledger.KindCommission, At: t0.Add(time.Duration(seq) * time.Second),
				Recorded: t0, Payee: fmt.Sprintf("P%05d", seq%10000), Currency: "EUR", Amount: 1000 + int64(seq%5000),
				PaymentID: "in_" + strconv.FormatUint(seq, 10), CustomerID: fmt.Sprintf("cus_%07d", seq%200000), Level: 1,
				PayableAt: t0.Add(30 * 24 * time.Hour), Note: "20.00% of 49.00 EUR",
				Payment: &ledger.PaymentInfo{Amount: 4900, Plan: ledger.PlanMonthly, PeriodStart: t0, PeriodEnd: t0.AddDate(0, 1, 0)}}
		}
		b.StartTimer()
		if err := st.AppendLedger(ctx, es); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "entries/s")
}

// BenchmarkPayoutRunBolt100kPayments: the ledger over the bbolt journal:
// 100,000 payments from 20,000 customers of 1,000 payees (30% partners,
// 10% with a parent) recorded in durable batches of 1,000, the monthly
// payout run, and a restart that replays the journal into a fresh ledger
// (reported apart as replay-s). The in-memory figure for 1,000,000
// payments is registry/ledger's BenchmarkCommission1MPayments.
func BenchmarkPayoutRunBolt100kPayments(b *testing.B) {
	const (
		nPayees    = 1_000
		nCustomers = 20_000
		nPayments  = 100_000
		batch      = 1_000
	)
	ctx := context.Background()
	cfg := ledger.DefaultConfig()
	payees := ledger.NewMemPayees()
	for i := range nPayees {
		code := fmt.Sprintf("P%04d", i)
		p := ledger.Payee{Code: code, Name: "Payee " + code, Tier: ledger.TierReferral, Status: ledger.PayeeApproved,
			Email: "ops@" + code + ".example", PayPalEmail: code + "@paypal.example", TaxDetailsOnFile: true}
		if i%10 < 3 {
			p.Tier = ledger.TierPartner
		}
		if i%10 == 5 {
			p.ParentCode = fmt.Sprintf("P%04d", i/2)
		}
		payees.Put(p)
	}
	links := ledger.NewAttribution(cfg.ClickWindow())
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	custIDs := make([]string, nCustomers)
	for i := range nCustomers {
		custIDs[i] = fmt.Sprintf("cus_%06d", i)
		if _, err := links.Link(ledger.Link{CustomerID: custIDs[i], PayeeCode: fmt.Sprintf("P%04d", i%nPayees), Source: ledger.LinkLicence, LinkedAt: start}); err != nil {
			b.Fatal(err)
		}
	}
	buf := make([]ledger.Payment, batch)
	gen := func(from int) []ledger.Payment {
		for k := range buf {
			i := from + k
			c := i % nCustomers
			at := start.AddDate(0, i/nCustomers, c%28).Add(time.Duration(c) * time.Second)
			buf[k] = ledger.Payment{ExternalID: "in_" + strconv.Itoa(i), CustomerID: custIDs[c], Amount: 1000 + int64(i%50000),
				Currency: "EUR", PeriodStart: at, PeriodEnd: at.AddDate(0, 1, 0), Plan: ledger.PlanMonthly, PaidAt: at,
				Payer: ledger.Payer{Email: "it@" + custIDs[c] + ".example"}}
		}
		return buf
	}
	runAt := time.Date(2025, 7, 1, 6, 0, 0, 0, time.UTC)
	opts := ledger.Options{Config: cfg, Payees: payees, Links: links, Liveness: alive{}, Now: func() time.Time { return runAt }}
	var lines int
	var replay time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st, err := boltstore.Open(filepath.Join(b.TempDir(), "r.db"), boltstore.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		l, err := ledger.Open(ctx, journal{st}, opts)
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
		bt, err := l.Run(ctx, "2025-05")
		if err != nil {
			b.Fatal(err)
		}
		lines = len(bt.Lines)
		b.StopTimer()
		t := time.Now()
		again, err := ledger.Open(ctx, journal{st}, opts)
		if err != nil {
			b.Fatal(err)
		}
		replay += time.Since(t)
		if fmt.Sprint(again.Balances()) != fmt.Sprint(l.Balances()) {
			b.Fatal("the replayed ledger differs from the one that wrote the journal")
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	if lines == 0 {
		b.Fatal("the payout run paid nobody")
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/100k-payments+run")
	b.ReportMetric(replay.Seconds()/float64(b.N), "replay-s")
	b.ReportMetric(float64(lines), "payout-lines")
}

// alive: every install sent heartbeats (liveness is not what is measured).
type alive struct{}

func (alive) HeartbeatIn(context.Context, string, []string, time.Time, time.Time) (bool, error) {
	return true, nil
}
