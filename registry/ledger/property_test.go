package ledger

import (
	"errors"
	"fmt"
	"math/rand"
	"testing"
	"time"
)

// TestPropertyRandomStreams drives the ledger with random streams of
// payments (some re-sent), partial and full refunds and chargebacks,
// payee suspensions and tax-detail changes, monthly payout runs (some
// repeated), payout results (some failed) and restarts from the journal.
// After every month the books must balance and nobody may have been paid
// more than they earned or twice for the same money.
func TestPropertyRandomStreams(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	seen := map[string]int{}
	for seed := 1; seed <= seeds; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) { randomStream(t, int64(seed), seen) })
	}
	// The streams must reach every path the property is about, or it
	// proves nothing.
	for _, k := range []string{string(KindPayout), string(KindReversal), string(KindPayoutReturned), string(KindPayoutConfirmed),
		string(ReasonNotPositive), string(ReasonBelowThreshold), string(ReasonManualQuarterly), string(ReasonTaxDetails),
		string(ReasonPayeeNotApproved), string(ReasonNoHeartbeat), string(ReasonNoLink), string(ReasonDurationEnded), "level2"} {
		if seen[k] == 0 {
			t.Errorf("no random stream produced %s", k)
		}
	}
	t.Logf("coverage of the streams: %v", seen)
}

func randomStream(t *testing.T, seed int64, seen map[string]int) {
	rng := rand.New(rand.NewSource(seed))
	cfg := DefaultConfig()
	cfg.Thresholds[TierPartner]["USD"] = 15000
	cfg.Thresholds[TierReferral]["USD"] = 5000
	cfg.TaxThresholds["EUR"] = 150000
	cfg.HoldDays = rng.Intn(45)
	var payees []Payee
	for i := range 12 {
		code := fmt.Sprintf("P%02d", i)
		p := partner(code)
		if rng.Intn(2) == 0 {
			p = referral(code)
		}
		if rng.Intn(4) == 0 {
			p.PayPalEmail = ""
		}
		p.TaxDetailsOnFile = rng.Intn(2) == 0
		if i > 0 && rng.Intn(3) == 0 {
			p.ParentCode = fmt.Sprintf("P%02d", rng.Intn(i))
		}
		payees = append(payees, p)
	}
	h := newHarness(t, cfg, payees...)
	type cust struct {
		id, cur string
	}
	var custs []cust
	for i := range 40 {
		c := cust{fmt.Sprintf("c%02d", i), []string{"EUR", "USD"}[rng.Intn(2)]}
		custs = append(custs, c)
		if rng.Intn(8) != 0 {
			h.link(c.id, payees[rng.Intn(len(payees))].Code)
		}
		if rng.Intn(5) == 0 {
			h.live.dead[fmt.Sprintf("%s|2025-%02d", c.id, 1+rng.Intn(12))] = true
		}
	}
	var payments []Payment
	refunded := map[string]int64{}
	var batches []Batch
	itemIDs := map[string]bool{}
	nRefund := 0
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for m := range 24 {
		month := start.AddDate(0, m, 0)
		for range rng.Intn(25) {
			at := month.Add(time.Duration(rng.Int63n(int64(27 * 24 * time.Hour))))
			if at.Before(h.clk.now()) {
				at = h.clk.now()
			}
			switch op := rng.Intn(10); {
			case op < 6 || len(payments) == 0:
				c := custs[rng.Intn(len(custs))]
				p := monthly(fmt.Sprintf("inv-%d-%d", seed, len(payments)), c.id, 1+rng.Int63n(300000), c.cur, at)
				if rng.Intn(10) == 0 {
					p.Plan, p.PeriodEnd = PlanAnnual, at.AddDate(1, 0, 0)
				}
				h.pay(p)
				payments = append(payments, p)
			case op < 7:
				p := payments[rng.Intn(len(payments))] // webhook re-sent
				if o := h.pay(p); !o.Duplicate {
					t.Fatalf("re-sent payment %s not recognised as duplicate", p.ExternalID)
				}
			case op < 9:
				p := payments[rng.Intn(len(payments))]
				left := p.Amount - refunded[p.ExternalID]
				if left == 0 {
					continue
				}
				amt := left
				if rng.Intn(2) == 0 {
					amt = 1 + rng.Int63n(left)
				}
				nRefund++
				kind := RefundKindRefund
				if rng.Intn(4) == 0 {
					kind = RefundKindChargeback
				}
				h.refund(Refund{ExternalID: fmt.Sprintf("re-%d", nRefund), PaymentID: p.ExternalID, Amount: amt, At: at, Kind: kind})
				refunded[p.ExternalID] += amt
			default:
				p := payees[rng.Intn(len(payees))]
				if rng.Intn(2) == 0 {
					p.Status = []PayeeStatus{PayeeApproved, PayeeSuspended}[rng.Intn(2)]
				} else {
					p.TaxDetailsOnFile = !p.TaxDetailsOnFile
				}
				h.payees.Put(p)
			}
		}
		name := month.Format("2006-01")
		b := h.run(name)
		if b.Existing {
			t.Fatalf("%s: first run reported as existing", name)
		}
		n := h.j.Len()
		if rng.Intn(4) == 0 {
			again := h.run(name)
			if !again.Existing || h.j.Len() != n || len(again.Lines) != len(b.Lines) {
				t.Fatalf("%s ran twice: existing=%v journal %d→%d", name, again.Existing, n, h.j.Len())
			}
		}
		seen := map[string]bool{}
		for _, ln := range b.Lines {
			k := ln.Payee + "/" + ln.Currency
			if seen[k] || itemIDs[ln.ItemID] {
				t.Fatalf("%s: %s paid twice in one run or item id %s reused", name, k, ln.ItemID)
			}
			seen[k], itemIDs[ln.ItemID] = true, true
			var p Payee
			for _, q := range payees {
				if q.Code == ln.Payee {
					p = q
				}
			}
			if th := cfg.Thresholds[p.Tier][ln.Currency]; ln.Amount < th {
				t.Fatalf("%s: paid %d to %s, below the %d threshold", name, ln.Amount, ln.Payee, th)
			}
		}
		batches = append(batches, b)
		// Settle some earlier batch: most items paid, a few failed.
		if len(batches) > 1 && rng.Intn(2) == 0 {
			old := batches[rng.Intn(len(batches)-1)]
			var res []PayoutResult
			for _, ln := range old.Lines {
				if rng.Intn(3) == 0 {
					continue
				}
				st := PayoutPaid
				if rng.Intn(6) == 0 {
					st = PayoutFailed
				}
				res = append(res, PayoutResult{ItemID: ln.ItemID, Status: st, Ref: "TX-" + ln.ItemID})
			}
			if _, err := h.l.MarkPaid(h.ctx, old.ID, res); err != nil && !isConflict(err) {
				t.Fatalf("mark paid %s: %v", old.ID, err)
			}
		}
		h.check()
		for _, bal := range h.l.Balances() {
			if bal.Paid > bal.Earned {
				t.Fatalf("%s: %s/%s paid %d but earned only %d", name, bal.Payee, bal.Currency, bal.Paid, bal.Earned)
			}
			if bal.Balance != bal.Earned-bal.Reversed-bal.Paid {
				t.Fatalf("%s: %+v does not add up", name, bal)
			}
		}
		if rng.Intn(5) == 0 {
			h.reopen()
		}
	}
	// Independent recomputation of every commission from the payments.
	byID := map[string]Payment{}
	for _, p := range payments {
		byID[p.ExternalID] = p
	}
	for e, err := range h.j.Entries(h.ctx, Filter{}) {
		if err != nil {
			t.Fatal(err)
		}
		seen[string(e.Kind)]++
		if e.Reason != "" {
			seen[string(e.Reason)]++
		}
		if e.Level == 2 && e.Kind == KindCommission {
			seen["level2"]++
		}
		if e.Kind != KindCommission || e.Level != 1 {
			continue
		}
		p := byID[e.PaymentID]
		var tier Tier
		for _, q := range payees {
			if q.Code == e.Payee {
				tier = q.Tier
			}
		}
		r, _ := cfg.rule(tier, p.Plan)
		if want := p.Amount * r.PercentBP / 10000; e.Amount != want {
			t.Fatalf("payment %s: commission %d, want %d", p.ExternalID, e.Amount, want)
		}
	}
}

func isConflict(err error) bool {
	// An item marked failed earlier cannot become paid: a legitimate refusal.
	return err != nil && errors.Is(err, ErrConflict)
}
