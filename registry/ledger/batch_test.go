package ledger

import (
	"errors"
	"testing"
)

// A CSV import records payments and refunds of the same file in one
// append: a refund may name a payment of the batch, and one bad refund
// stores nothing at all.
func TestRecordBatchPaymentsAndRefundsAtomically(t *testing.T) {
	h := newHarness(t, DefaultConfig(), partner("PART"))
	h.link("c1", "PART")
	h.clk.set(day(2025, 1, 20))
	ps := []Payment{monthly("inv-1", "c1", 10000, "EUR", day(2025, 1, 5)), monthly("inv-2", "c1", 10000, "EUR", day(2025, 1, 6))}
	bad := []Refund{
		{ExternalID: "re-1", PaymentID: "inv-1", Amount: 5000, At: day(2025, 1, 10)},
		{ExternalID: "re-2", PaymentID: "inv-1", Amount: 6000, At: day(2025, 1, 11)}, // 110 of 100 refunded
	}
	if _, _, err := h.l.RecordBatch(h.ctx, ps, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("batch refunding more than paid: err %v, want ErrInvalid", err)
	}
	if h.j.Len() != 0 {
		t.Fatalf("a refused batch stored %d entries", h.j.Len())
	}
	if _, _, err := h.l.RecordBatch(h.ctx, ps[:1], []Refund{{ExternalID: "re-9", PaymentID: "inv-9", Amount: 1, At: day(2025, 1, 10)}}); !errors.Is(err, ErrUnknownPayment) {
		t.Fatalf("refund of a payment in neither the ledger nor the batch: err %v", err)
	}
	rs := []Refund{
		{ExternalID: "re-1", PaymentID: "inv-1", Amount: 5000, At: day(2025, 1, 10)},
		{ExternalID: "cb-1", PaymentID: "inv-1", Amount: 5000, At: day(2025, 1, 12), Kind: RefundKindChargeback},
		{ExternalID: "re-1", PaymentID: "inv-1", Amount: 5000, At: day(2025, 1, 10)}, // repeated line
	}
	pouts, routs, err := h.l.RecordBatch(h.ctx, ps, rs)
	if err != nil {
		t.Fatal(err)
	}
	if len(pouts) != 2 || len(routs) != 3 || !routs[2].Duplicate || len(routs[2].Entries) != 2 {
		t.Fatalf("outcomes: payments %+v refunds %+v", pouts, routs)
	}
	if r := routs[1].Entries; len(r) != 2 || r[1].Reason != ReasonChargeback || r[1].Amount != 1000 {
		t.Fatalf("chargeback entries: %+v, want a 10.00 reversal for the chargeback", r)
	}
	if b := h.balance("PART", "EUR"); b.Earned != 4000 || b.Reversed != 2000 || b.Balance != 2000 {
		t.Fatalf("balance: %+v, want 40.00 earned, 20.00 reversed", b)
	}
	// The same file again stores nothing.
	n := h.j.Len()
	pouts, routs, err = h.l.RecordBatch(h.ctx, ps, rs)
	if err != nil || !pouts[0].Duplicate || !routs[0].Duplicate || !routs[1].Duplicate || h.j.Len() != n {
		t.Fatalf("re-import: err %v, journal %d→%d, %+v %+v", err, n, h.j.Len(), pouts, routs)
	}
	h.check()
	h.reopen()
}
