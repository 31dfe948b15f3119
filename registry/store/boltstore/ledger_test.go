package boltstore_test

import (
	"context"
	"fmt"
	"iter"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

// TestLedgerJournal checks the bbolt journal: ordered appends only, index
// filters, reads spanning several chunks, and persistence across reopen.
func TestLedgerJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var batch []ledger.Entry
	for i := 1; i <= 1300; i++ {
		batch = append(batch, ledger.Entry{Seq: uint64(i), Kind: ledger.KindCommission, At: t0.Add(time.Duration(i) * time.Minute),
			Payee: fmt.Sprintf("P%d", i%3), PaymentID: fmt.Sprintf("pay-%d", i/2), Currency: "EUR", Amount: int64(i)})
	}
	if err := st.AppendLedger(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendLedger(ctx, []ledger.Entry{{Seq: 1300, Kind: ledger.KindRun}}); err == nil {
		t.Fatal("an entry with a seq not above the last was appended")
	}
	if err := st.AppendLedger(ctx, []ledger.Entry{{Seq: 1301, Kind: ledger.KindRun, BatchID: "payout-2026-01"}, {Seq: 1301}}); err == nil {
		t.Fatal("a batch with a repeated seq was appended")
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	count := func(f ledger.Filter) (n int, sum int64) {
		var last uint64
		for e, err := range st.LedgerEntries(ctx, f) {
			if err != nil {
				t.Fatal(err)
			}
			if e.Seq <= last {
				t.Fatalf("entries out of order: %d after %d", e.Seq, last)
			}
			last = e.Seq
			n++
			sum += e.Amount
		}
		return n, sum
	}
	if n, sum := count(ledger.Filter{}); n != 1300 || sum != 1300*1301/2 {
		t.Fatalf("all entries: %d, sum %d", n, sum)
	}
	if n, _ := count(ledger.Filter{Payee: "P1"}); n != 434 {
		t.Fatalf("payee P1: %d", n)
	}
	if n, sum := count(ledger.Filter{PaymentID: "pay-10"}); n != 2 || sum != 20+21 {
		t.Fatalf("payment pay-10: %d %d", n, sum)
	}
	if n, _ := count(ledger.Filter{Payee: "P1", Before: t0.Add(100 * time.Minute)}); n != 33 {
		t.Fatalf("payee P1 before minute 100: %d", n)
	}
	if n, _ := count(ledger.Filter{AfterSeq: 1000}); n != 300 {
		t.Fatalf("after seq 1000: %d", n)
	}
	if n, _ := count(ledger.Filter{BatchID: "payout-2026-01"}); n != 0 {
		t.Fatalf("the refused batch left entries: %d", n)
	}
	// Stopping early ends the iteration without error.
	for range st.LedgerEntries(ctx, ledger.Filter{}) {
		break
	}
}

// TestLedgerOverBoltJournal runs the ledger over the bbolt journal and
// reopens it: the replayed books are the same and still balance.
func TestLedgerOverBoltJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	links := ledger.NewAttribution(90 * 24 * time.Hour)
	if _, err := links.Link(ledger.Link{CustomerID: "c1", PayeeCode: "R1", Source: ledger.LinkManual, LinkedAt: now}); err != nil {
		t.Fatal(err)
	}
	payees := ledger.NewMemPayees(ledger.Payee{Code: "R1", Tier: ledger.TierReferral, Status: ledger.PayeeApproved, PayPalEmail: "r1@example.org"})
	cfg := ledger.DefaultConfig()
	cfg.Rules = cfg.Rules[1:] // referrals only: no liveness source needed
	open := func() *ledger.Ledger {
		l, err := ledger.Open(ctx, journal{st}, ledger.Options{Config: cfg, Payees: payees, Links: links, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	for i := range 30 {
		paid := now.AddDate(0, -4, 0).Add(time.Duration(i) * time.Hour)
		if _, err := l.RecordPayment(ctx, ledger.Payment{ExternalID: fmt.Sprint("p", i), CustomerID: "c1", Amount: 10000, Currency: "EUR",
			PeriodStart: paid, PeriodEnd: paid.AddDate(0, 1, 0), Plan: ledger.PlanMonthly, PaidAt: paid}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.RecordRefund(ctx, ledger.Refund{ExternalID: "r1", PaymentID: "p3", Amount: 5000, At: now.AddDate(0, -3, 0)}); err != nil {
		t.Fatal(err)
	}
	b, err := l.Run(ctx, now.AddDate(0, -1, 0).Format("2006-01"))
	if err != nil || len(b.Lines) != 1 {
		t.Fatalf("run: %+v %v", b, err)
	}
	before := l.Balances()
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	l = open()
	if fmt.Sprint(l.Balances()) != fmt.Sprint(before) {
		t.Fatalf("after reopen %+v, before %+v", l.Balances(), before)
	}
	ds, err := l.Check(ctx)
	if err != nil || len(ds) != 0 {
		t.Fatalf("check: %v %v", ds, err)
	}
	again, err := l.Run(ctx, b.Month)
	if err != nil || !again.Existing || len(again.Lines) != 1 {
		t.Fatalf("run again after reopen: %+v %v", again, err)
	}
}

// journal adapts the store to ledger.Journal (the registry has its own).
type journal struct{ st *boltstore.Store }

func (j journal) Append(ctx context.Context, es []ledger.Entry) error {
	return j.st.AppendLedger(ctx, es)
}

func (j journal) Entries(ctx context.Context, f ledger.Filter) iter.Seq2[ledger.Entry, error] {
	return j.st.LedgerEntries(ctx, f)
}
