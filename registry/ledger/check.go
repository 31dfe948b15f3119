package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Discrepancy is one way the books fail to balance.
type Discrepancy struct {
	Seq       uint64 `json:"seq,omitempty"`
	Payee     string `json:"payee,omitempty"`
	Currency  string `json:"currency,omitempty"`
	PaymentID string `json:"payment_id,omitempty"`
	ItemID    string `json:"item_id,omitempty"`
	Problem   string `json:"problem"`
}

func (d Discrepancy) String() string {
	var b strings.Builder
	if d.Seq != 0 {
		fmt.Fprintf(&b, "entry %d: ", d.Seq)
	}
	for _, kv := range [][2]string{{"payee", d.Payee}, {"currency", d.Currency}, {"payment", d.PaymentID}, {"item", d.ItemID}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "%s %s: ", kv[0], kv[1])
		}
	}
	b.WriteString(d.Problem)
	return b.String()
}

// Check proves the books balance. It re-reads the whole journal with its
// own arithmetic (independent of the running state) and reports:
//   - per payee and currency, earned − reversed − paid that differs from
//     the balance the ledger holds;
//   - payout lines not backed by entries: a payout larger than the balance
//     payable at its run's cutoff, a second payout of the same payee and
//     currency in one run, a payout without its run;
//   - reversals above their commission, refunds above their payment, a
//     payment recorded more than once, mixed currencies, malformed entries.
//
// An empty list means the books balance.
func (l *Ledger) Check(ctx context.Context) ([]Discrepancy, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ds []Discrepancy
	add := func(e Entry, format string, a ...any) {
		ds = append(ds, Discrepancy{Seq: e.Seq, Payee: e.Payee, Currency: e.Currency, PaymentID: e.PaymentID, ItemID: e.ItemID,
			Problem: fmt.Sprintf(format, a...)})
	}
	type money struct{ earned, reversed, paid, returned int64 }
	type timed struct {
		at     time.Time
		amount int64
	}
	type commKey struct {
		payment, payee string
		level          uint8
	}
	type pay struct {
		currency         string
		amount, refunded int64
		records          int
	}
	type item struct {
		amount             int64
		returned, confirmd bool
	}
	accts := map[acctKey]*money{}
	flows := map[acctKey][]timed{}
	comms := map[commKey][2]int64{} // amount, reversed
	pays := map[string]*pay{}
	runs := map[string]bool{}
	perRun := map[string]bool{}
	items := map[string]*item{}
	acct := func(e Entry) *money {
		k := acctKey{e.Payee, e.Currency}
		m := accts[k]
		if m == nil {
			m = &money{}
			accts[k] = m
		}
		return m
	}
	var last uint64
	for e, err := range l.j.Entries(ctx, Filter{}) {
		if err != nil {
			return nil, fmt.Errorf("ledger check: read journal: %w", err)
		}
		if e.Seq <= last {
			add(e, "sequence %d is not above the previous %d", e.Seq, last)
		}
		last = e.Seq
		if e.Amount < 0 || e.Amount > MaxAmount {
			add(e, "amount %d out of range", e.Amount)
		}
		if e.Kind != KindRun {
			if c, err := ParseCurrency(e.Currency); err != nil || c != e.Currency {
				add(e, "currency %q is not an upper-case ISO 4217 code", e.Currency)
			}
		}
		if e.signed() != 0 && e.Payee == "" {
			add(e, "%s entry has no payee", e.Kind)
		}
		switch e.Kind {
		case KindCommission, KindExcluded:
			if e.Payment != nil {
				p := pays[e.PaymentID]
				if p == nil {
					p = &pay{currency: e.Currency, amount: e.Payment.Amount}
					pays[e.PaymentID] = p
				}
				p.records++
				if p.records > 1 {
					add(e, "payment recorded %d times", p.records)
				}
			}
			p := pays[e.PaymentID]
			if p == nil {
				add(e, "%s entry for a payment that was never recorded", e.Kind)
			} else if p.currency != e.Currency {
				add(e, "%s entry in %s for a payment in %s", e.Kind, e.Currency, p.currency)
			}
			if e.Kind == KindCommission {
				k := commKey{e.PaymentID, e.Payee, e.Level}
				if _, dup := comms[k]; dup {
					add(e, "second commission for the same payee and level on one payment")
				}
				comms[k] = [2]int64{e.Amount, 0}
				acct(e).earned += e.Amount
				flows[acctKey{e.Payee, e.Currency}] = append(flows[acctKey{e.Payee, e.Currency}], timed{e.PayableAt, e.Amount})
			} else if e.Amount != 0 {
				add(e, "excluded entry carries an amount")
			}
		case KindRefund:
			p := pays[e.PaymentID]
			if p == nil {
				add(e, "refund of a payment that was never recorded")
				break
			}
			if p.currency != e.Currency {
				add(e, "refund in %s of a payment in %s", e.Currency, p.currency)
			}
			p.refunded += e.Amount
			if p.refunded > p.amount {
				add(e, "refunds total %d, more than the payment's %d", p.refunded, p.amount)
			}
		case KindReversal:
			k := commKey{e.PaymentID, e.Payee, e.Level}
			c, ok := comms[k]
			if !ok {
				add(e, "reversal of a commission that does not exist")
			}
			c[1] += e.Amount
			comms[k] = c
			if c[1] > c[0] {
				add(e, "reversals total %d, more than the %d commission", c[1], c[0])
			}
			acct(e).reversed += e.Amount
			flows[acctKey{e.Payee, e.Currency}] = append(flows[acctKey{e.Payee, e.Currency}], timed{e.PayableAt, -e.Amount})
		case KindRun:
			if _, err := parseMonth(e.Month); err != nil || e.BatchID != BatchID(e.Month) {
				add(e, "malformed run marker (month %q, batch %q)", e.Month, e.BatchID)
			}
			if runs[e.BatchID] {
				add(e, "batch %s ran twice", e.BatchID)
			}
			runs[e.BatchID] = true
		case KindPayout:
			if !runs[e.BatchID] {
				add(e, "payout in batch %s without its run marker", e.BatchID)
			}
			if e.Amount <= 0 {
				add(e, "payout of %d: payouts must be positive", e.Amount)
			}
			pk := e.BatchID + "\x00" + e.Payee + "\x00" + e.Currency
			if perRun[pk] {
				add(e, "second payout to the same payee and currency in batch %s", e.BatchID)
			}
			perRun[pk] = true
			if items[e.ItemID] != nil {
				add(e, "payout item id reused")
			}
			items[e.ItemID] = &item{amount: e.Amount}
			m, err := parseMonth(e.Month)
			if err != nil {
				add(e, "payout with malformed month %q", e.Month)
				break
			}
			cutoff := m.AddDate(0, 1, 0)
			k := acctKey{e.Payee, e.Currency}
			var payable int64
			for _, f := range flows[k] {
				if f.at.Before(cutoff) {
					payable += f.amount
				}
			}
			a := acct(e)
			payable -= a.paid - a.returned
			if e.Amount > payable {
				add(e, "payout of %d is not backed: only %d was payable before %s", e.Amount, payable, cutoff.Format(time.DateOnly))
			}
			a.paid += e.Amount
		case KindPayoutConfirmed:
			it := items[e.ItemID]
			if it == nil {
				add(e, "confirmation of an unknown payout item")
			} else if it.returned {
				add(e, "confirmation of a payout item already returned")
			} else {
				it.confirmd = true
			}
		case KindPayoutReturned:
			it := items[e.ItemID]
			switch {
			case it == nil:
				add(e, "return of an unknown payout item")
			case it.returned:
				add(e, "payout item returned twice")
			case it.amount != e.Amount:
				add(e, "return of %d for a payout of %d", e.Amount, it.amount)
			default:
				it.returned = true
			}
			acct(e).returned += e.Amount
		case KindCarried:
		default:
			add(e, "unknown entry kind %q", e.Kind)
		}
	}
	if last != l.lastSeq {
		ds = append(ds, Discrepancy{Problem: fmt.Sprintf("the journal ends at entry %d but the ledger has applied up to %d", last, l.lastSeq)})
	}
	keys := map[acctKey]bool{}
	for k := range accts {
		keys[k] = true
	}
	for k := range l.accounts {
		keys[k] = true
	}
	sorted := make([]acctKey, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	slices.SortFunc(sorted, func(a, b acctKey) int {
		return strings.Compare(a.payee+"\x00"+a.currency, b.payee+"\x00"+b.currency)
	})
	for _, k := range sorted {
		m := accts[k]
		if m == nil {
			m = &money{}
		}
		held := l.accounts[k]
		if held == nil {
			held = &account{}
		}
		want := m.earned - m.reversed - (m.paid - m.returned)
		d := Discrepancy{Payee: k.payee, Currency: k.currency}
		switch {
		case held.earned != m.earned || held.reversed != m.reversed || held.paid != m.paid || held.returned != m.returned:
			d.Problem = fmt.Sprintf("journal says earned %d, reversed %d, paid %d, returned %d; the ledger holds %d, %d, %d, %d",
				m.earned, m.reversed, m.paid, m.returned, held.earned, held.reversed, held.paid, held.returned)
		case held.balance() != want:
			d.Problem = fmt.Sprintf("earned − reversed − paid = %d but the balance is %d", want, held.balance())
		default:
			split := held.matured
			for _, p := range held.pending {
				split += p.amount
			}
			if split != m.earned-m.reversed {
				d.Problem = fmt.Sprintf("payable and pending parts add up to %d, not earned − reversed = %d", split, m.earned-m.reversed)
			}
		}
		if d.Problem != "" {
			ds = append(ds, d)
		}
	}
	return ds, nil
}
