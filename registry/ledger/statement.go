package ledger

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// StatementLine is one entry of a payee's statement. Every line names the
// payment it comes from (or the payout batch and item).
type StatementLine struct {
	Seq  uint64    `json:"seq"`
	Date time.Time `json:"date"`
	Kind Kind      `json:"kind"`
	// PaymentID is the payment's external id.
	PaymentID string `json:"payment_id,omitempty"`
	// Customer is the billing name for partners and a stable pseudonym
	// ("customer-3f9a0c51d2") for referrals and second-tier lines.
	Customer      string    `json:"customer,omitempty"`
	Plan          Plan      `json:"plan,omitempty"`
	PeriodStart   time.Time `json:"period_start,omitzero"`
	PeriodEnd     time.Time `json:"period_end,omitzero"`
	PaymentAmount int64     `json:"payment_amount,omitempty"`
	Currency      string    `json:"currency"`
	// Amount is the effect on the balance: positive earned or returned,
	// negative reversed or paid, 0 for excluded and carried lines.
	Amount    int64     `json:"amount"`
	Level     uint8     `json:"level,omitempty"`
	From      string    `json:"from,omitempty"`
	PayableAt time.Time `json:"payable_at,omitzero"`
	Ref       string    `json:"ref,omitempty"`
	BatchID   string    `json:"batch_id,omitempty"`
	ItemID    string    `json:"item_id,omitempty"`
	Reason    Reason    `json:"reason,omitempty"`
	Note      string    `json:"note,omitempty"`
}

// StatementTotal sums a statement in one currency:
// Closing = Opening + Earned − Reversed − Paid + Returned.
type StatementTotal struct {
	Currency string `json:"currency"`
	Opening  int64  `json:"opening"`
	Earned   int64  `json:"earned"`
	Reversed int64  `json:"reversed"`
	Paid     int64  `json:"paid"`
	Returned int64  `json:"returned"`
	Closing  int64  `json:"closing"`
}

// Statement is one payee's account for one month. Amounts are integer
// minor units of the line's currency.
type Statement struct {
	Payee  string           `json:"payee"`
	Tier   Tier             `json:"tier"`
	Month  string           `json:"month"`
	From   time.Time        `json:"from"`
	To     time.Time        `json:"to"`
	Totals []StatementTotal `json:"totals"`
	Lines  []StatementLine  `json:"lines"`
}

// AnonymousCustomer is the pseudonym a payee sees instead of a customer's
// name when it may not see names (referrals). It is stable per payee, so
// the payee can follow one customer's payments, and differs between payees.
func AnonymousCustomer(payee, customerID string) string {
	h := sha256.Sum256([]byte("switchboard-customer\x00" + payee + "\x00" + customerID))
	return "customer-" + hex.EncodeToString(h[:5])
}

// Statement builds the statement of a payee for month YYYY-MM from the
// journal: lines dated in the month, and per currency the opening balance,
// the movements and the closing balance. Partners see customer names,
// referrals see pseudonyms (DESIGN: Visibility).
func (l *Ledger) Statement(ctx context.Context, payeeCode, month string) (Statement, error) {
	start, err := parseMonth(month)
	if err != nil {
		return Statement{}, err
	}
	end := start.AddDate(0, 1, 0)
	payee, err := l.payees.Payee(ctx, payeeCode)
	if err != nil {
		return Statement{}, fmt.Errorf("statement of %s for %s: %w", payeeCode, month, err)
	}
	st := Statement{Payee: payee.Code, Tier: payee.Tier, Month: month, From: start, To: end, Lines: []StatementLine{}, Totals: []StatementTotal{}}
	totals := map[string]*StatementTotal{}
	tot := func(cur string) *StatementTotal {
		t := totals[cur]
		if t == nil {
			t = &StatementTotal{Currency: cur}
			totals[cur] = t
		}
		return t
	}
	names := map[string]string{}
	infos := map[string]*PaymentInfo{}
	for e, err := range l.j.Entries(ctx, Filter{Payee: payee.Code, Before: end}) {
		if err != nil {
			return Statement{}, fmt.Errorf("statement of %s for %s: read journal: %w", payeeCode, month, err)
		}
		if e.Payment != nil {
			infos[e.PaymentID] = e.Payment
			if e.Payment.CustomerName != "" {
				names[e.CustomerID] = e.Payment.CustomerName
			}
		}
		t := tot(e.Currency)
		if e.At.Before(start) {
			t.Opening += e.signed()
			continue
		}
		switch e.Kind {
		case KindCommission:
			t.Earned += e.Amount
		case KindReversal:
			t.Reversed += e.Amount
		case KindPayout:
			t.Paid += e.Amount
		case KindPayoutReturned:
			t.Returned += e.Amount
		}
		ln := StatementLine{Seq: e.Seq, Date: e.At, Kind: e.Kind, PaymentID: e.PaymentID, Currency: e.Currency,
			Amount: e.signed(), Level: e.Level, From: e.From, PayableAt: e.PayableAt, Ref: e.Ref, BatchID: e.BatchID,
			ItemID: e.ItemID, Reason: e.Reason, Note: e.Note}
		if e.Kind == KindPayout && e.Method == MethodPayPal {
			ln.Ref = "" // the payee's own PayPal address adds nothing to their statement
		}
		if e.CustomerID != "" {
			ln.Customer = l.customerLabel(payee, e, names)
		}
		st.Lines = append(st.Lines, ln)
	}
	// Level-2 and reversal lines do not carry the payment snapshot; take it
	// from the payment's first entry when this payee has it, else read it.
	for i := range st.Lines {
		ln := &st.Lines[i]
		if ln.PaymentID == "" {
			continue
		}
		info := infos[ln.PaymentID]
		if info == nil {
			for e, err := range l.j.Entries(ctx, Filter{PaymentID: ln.PaymentID}) {
				if err != nil {
					return Statement{}, fmt.Errorf("statement of %s: read payment %s: %w", payeeCode, ln.PaymentID, err)
				}
				if e.Payment != nil {
					info = e.Payment
					infos[ln.PaymentID] = info
					break
				}
			}
		}
		if info != nil {
			ln.Plan, ln.PeriodStart, ln.PeriodEnd, ln.PaymentAmount = info.Plan, info.PeriodStart, info.PeriodEnd, info.Amount
		}
	}
	slices.SortStableFunc(st.Lines, func(a, b StatementLine) int {
		if c := a.Date.Compare(b.Date); c != 0 {
			return c
		}
		return cmpUint(a.Seq, b.Seq)
	})
	for _, t := range totals {
		t.Closing = t.Opening + t.Earned - t.Reversed - t.Paid + t.Returned
		st.Totals = append(st.Totals, *t)
	}
	slices.SortFunc(st.Totals, func(a, b StatementTotal) int { return cmpStrings(a.Currency, b.Currency) })
	return st, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// customerLabel applies the visibility rule: partners see their own
// customers' names; referrals, and parents on second-tier lines, see a
// pseudonym.
func (l *Ledger) customerLabel(payee Payee, e Entry, names map[string]string) string {
	if payee.Tier == TierPartner && e.Level != 2 {
		if n := names[e.CustomerID]; n != "" {
			return n
		}
		return e.CustomerID
	}
	if e.Level == 2 {
		return "via " + e.From + ": " + AnonymousCustomer(payee.Code, e.CustomerID)
	}
	return AnonymousCustomer(payee.Code, e.CustomerID)
}

// WriteCSV writes the statement as CSV: an opening_balance row per
// currency, one row per line, a closing_balance row per currency. Amounts
// are decimals with a dot in the row's currency.
func (s Statement) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	rows := [][]string{{"date", "kind", "payment_id", "customer", "plan", "period_start", "period_end", "payment_amount",
		"currency", "amount", "payable_at", "level", "from", "ref", "batch_id", "item_id", "reason", "note"}}
	day := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.DateOnly)
	}
	for _, t := range s.Totals {
		rows = append(rows, []string{day(s.From), "opening_balance", "", "", "", "", "", "", t.Currency, FormatAmount(t.Opening, t.Currency),
			"", "", "", "", "", "", "", ""})
	}
	for _, ln := range s.Lines {
		pa := ""
		if ln.PaymentAmount != 0 {
			pa = FormatAmount(ln.PaymentAmount, ln.Currency)
		}
		lvl := ""
		if ln.Level != 0 {
			lvl = strconv.Itoa(int(ln.Level))
		}
		rows = append(rows, []string{day(ln.Date), string(ln.Kind), csvSafe(ln.PaymentID), csvSafe(ln.Customer), string(ln.Plan),
			day(ln.PeriodStart), day(ln.PeriodEnd), pa, ln.Currency, FormatAmount(ln.Amount, ln.Currency), day(ln.PayableAt),
			lvl, csvSafe(ln.From), csvSafe(ln.Ref), ln.BatchID, ln.ItemID, string(ln.Reason), csvSafe(ln.Note)})
	}
	for _, t := range s.Totals {
		rows = append(rows, []string{day(s.To.Add(-time.Nanosecond)), "closing_balance", "", "", "", "", "", "", t.Currency,
			FormatAmount(t.Closing, t.Currency), "", "", "", "", "", "", "", ""})
	}
	if err := cw.WriteAll(rows); err != nil {
		return fmt.Errorf("write statement %s %s: %w", s.Payee, s.Month, err)
	}
	return nil
}
