package ledger

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Payout methods.
const (
	MethodPayPal = "paypal"
	MethodManual = "manual"
)

// PayoutLine is one payee's payout in one currency within a batch.
type PayoutLine struct {
	// ItemID is unique across runs, at most 30 characters without spaces:
	// PayPal's "Customer ID" column and sender_item_id.
	ItemID   string `json:"item_id"`
	Payee    string `json:"payee"`
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
	Method   string `json:"method"`
	// Receiver is the PayPal e-mail (paypal method).
	Receiver string `json:"receiver,omitempty"`
	Status   string `json:"status"` // sent, paid, failed
	Ref      string `json:"ref,omitempty"`
}

// CarriedBalance is a balance a run did not pay, with the reason.
type CarriedBalance struct {
	Payee    string `json:"payee"`
	Currency string `json:"currency"`
	Amount   int64  `json:"amount"`
	Reason   Reason `json:"reason"`
	Note     string `json:"note"`
}

// Batch is the result of the payout run of one month.
type Batch struct {
	ID    string `json:"id"`
	Month string `json:"month"`
	// Cutoff: commission payable before this instant (the first of the
	// next month, UTC) was considered.
	Cutoff    time.Time `json:"cutoff"`
	CreatedAt time.Time `json:"created_at"`
	// Existing: the month had already run; nothing new was paid.
	Existing bool             `json:"existing"`
	Lines    []PayoutLine     `json:"lines"`
	Carried  []CarriedBalance `json:"carried"`
}

// BatchID returns the id of the payout batch of a month.
func BatchID(month string) string { return "payout-" + month }

// Run pays, for month YYYY-MM, every payee and currency whose balance
// payable by the end of that month reaches the tier's threshold. Smaller or
// negative balances carry over; payees without PayPal are paid only in runs
// of quarter-end months; a payee whose payouts this year would exceed the
// tax threshold without tax details on file is held. Every decision is an
// entry with its reason.
//
// Run is idempotent: a month that already ran returns its batch (Existing)
// and pays nothing. Months run forward only and only once they are over.
func (l *Ledger) Run(ctx context.Context, month string) (Batch, error) {
	start, err := parseMonth(month)
	if err != nil {
		return Batch{}, err
	}
	cutoff := start.AddDate(0, 1, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.runs[month]; ok {
		b, err := l.batch(ctx, month)
		b.Existing = true
		return b, err
	}
	now := l.now().UTC()
	if now.Before(cutoff) {
		return Batch{}, fmt.Errorf("%w: month %s is not over: run it on or after %s", ErrInvalid, month, cutoff.Format(time.DateOnly))
	}
	if l.lastRun != "" && month < l.lastRun {
		return Batch{}, fmt.Errorf("%w: payout runs go forward and %s already ran; %s can no longer run (its balances were carried into later runs)",
			ErrInvalid, l.lastRun, month)
	}
	batchID := BatchID(month)
	entries := []Entry{{Kind: KindRun, At: now, BatchID: batchID, Month: month,
		Note: "payout run for " + month + ": commission payable before " + cutoff.Format(time.DateOnly)}}
	keys := make([]acctKey, 0, len(l.accounts))
	for k := range l.accounts {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b acctKey) int {
		if c := strings.Compare(a.payee, b.payee); c != 0 {
			return c
		}
		return strings.Compare(a.currency, b.currency)
	})
	monthNum := int(start.Month())
	year := start.Year()
	itemSeq := 0
	stamp := strings.ReplaceAll(month, "-", "")
	for _, k := range keys {
		a := l.accounts[k]
		payable := a.payableBefore(cutoff)
		if payable == 0 {
			continue
		}
		carry := func(r Reason, format string, args ...any) {
			entries = append(entries, Entry{Kind: KindCarried, At: now, Payee: k.payee, Currency: k.currency, Amount: abs(payable),
				BatchID: batchID, Month: month, Reason: r, Note: fmt.Sprintf(format, args...)})
		}
		amt := FormatAmount(payable, k.currency) + " " + k.currency
		if payable < 0 {
			carry(ReasonNotPositive, "balance of %s is negative (refunds after payout) and carries until new commission covers it", amt)
			continue
		}
		payee, err := l.payees.Payee(ctx, k.payee)
		if errors.Is(err, ErrUnknownPayee) {
			carry(ReasonUnknownPayee, "%s held: %s is not a known payee", amt, k.payee)
			continue
		}
		if err != nil {
			return Batch{}, fmt.Errorf("payout run %s: look up payee %s: %w", month, k.payee, err)
		}
		if payee.Status != PayeeApproved {
			carry(ReasonPayeeNotApproved, "%s held: payee is %s", amt, payee.Status)
			continue
		}
		threshold, ok := l.cfg.Thresholds[payee.Tier][k.currency]
		if !ok {
			carry(ReasonNoThreshold, "%s held: no payout threshold for %ss in %s; add one to the ledger config", amt, payee.Tier, k.currency)
			continue
		}
		if payable < threshold {
			carry(ReasonBelowThreshold, "%s carried: below the %s threshold of %s %s", amt, payee.Tier, FormatAmount(threshold, k.currency), k.currency)
			continue
		}
		method := MethodPayPal
		if payee.PayPalEmail == "" {
			method = MethodManual
			if monthNum%l.cfg.ManualEveryMonths != 0 {
				next := start.AddDate(0, l.cfg.ManualEveryMonths-monthNum%l.cfg.ManualEveryMonths, 0)
				carry(ReasonManualQuarterly, "%s carried: payees without PayPal are paid manually, next in the %s run", amt, next.Format("2006-01"))
				continue
			}
		}
		if tt, ok := l.cfg.TaxThresholds[k.currency]; ok && !payee.TaxDetailsOnFile {
			if paid := a.paidByYear[year]; paid+payable > tt {
				carry(ReasonTaxDetails, "%s held: payouts in %d would reach %s %s, above the tax-reporting threshold of %s %s; send tax details (tax id) to be paid",
					amt, year, FormatAmount(paid+payable, k.currency), k.currency, FormatAmount(tt, k.currency), k.currency)
				continue
			}
		}
		itemSeq++
		entries = append(entries, Entry{Kind: KindPayout, At: now, Payee: k.payee, Currency: k.currency, Amount: payable,
			BatchID: batchID, ItemID: fmt.Sprintf("%s-%06d", stamp, itemSeq), Month: month, Method: method,
			Ref: payee.PayPalEmail, Note: fmt.Sprintf("payout of %s for commission payable before %s", amt, cutoff.Format(time.DateOnly))})
	}
	if _, err := l.commit(ctx, entries); err != nil {
		return Batch{}, fmt.Errorf("payout run %s: %w", month, err)
	}
	return l.batch(ctx, month)
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// batch rebuilds a month's batch from the journal (caller holds l.mu).
func (l *Ledger) batch(ctx context.Context, month string) (Batch, error) {
	rs := l.runs[month]
	if rs == nil {
		return Batch{}, fmt.Errorf("payout batch for %s: %w", month, ErrUnknownBatch)
	}
	b := Batch{ID: rs.batchID, Month: month, Cutoff: rs.cutoff, CreatedAt: rs.at, Lines: []PayoutLine{}, Carried: []CarriedBalance{}}
	for e, err := range l.j.Entries(ctx, Filter{BatchID: rs.batchID}) {
		if err != nil {
			return Batch{}, fmt.Errorf("read payout batch %s: %w", rs.batchID, err)
		}
		switch e.Kind {
		case KindPayout:
			line := PayoutLine{ItemID: e.ItemID, Payee: e.Payee, Currency: e.Currency, Amount: e.Amount, Method: e.Method, Receiver: e.Ref}
			if it := l.items[e.ItemID]; it != nil {
				line.Status, line.Ref = it.status, it.ref
			}
			b.Lines = append(b.Lines, line)
		case KindCarried:
			b.Carried = append(b.Carried, CarriedBalance{Payee: e.Payee, Currency: e.Currency, Amount: e.Amount, Reason: e.Reason, Note: e.Note})
		}
	}
	return b, nil
}

// Batch returns the batch a month's run produced, with each line's status.
func (l *Ledger) Batch(ctx context.Context, month string) (Batch, error) {
	if _, err := parseMonth(month); err != nil {
		return Batch{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.batch(ctx, month)
}

// PayoutStatus is the final result of one payout item.
type PayoutStatus string

// Payout results.
const (
	PayoutPaid   PayoutStatus = "paid"
	PayoutFailed PayoutStatus = "failed"
)

// ParsePayPalStatus maps a PayPal payout item transaction_status to a
// final result. Statuses that are not final yet (UNCLAIMED, PENDING,
// ONHOLD, NEW) are an error: mark the item when PayPal settles it.
func ParsePayPalStatus(s string) (PayoutStatus, error) {
	switch strings.ToUpper(strings.TrimSpace(s)) {
	case "SUCCESS":
		return PayoutPaid, nil
	case "FAILED", "RETURNED", "BLOCKED", "REFUNDED", "REVERSED", "DENIED":
		return PayoutFailed, nil
	case "UNCLAIMED", "PENDING", "ONHOLD", "NEW":
		return "", fmt.Errorf("%w: PayPal status %s is not final yet; mark the item once it is SUCCESS or returned", ErrInvalid, s)
	}
	return "", fmt.Errorf("%w: unknown PayPal payout status %q", ErrInvalid, s)
}

// PayoutResult is what happened to one payout item.
type PayoutResult struct {
	ItemID string       `json:"item_id"`
	Status PayoutStatus `json:"status"`
	// Ref is the provider's transaction id or the manual payment reference.
	Ref  string `json:"ref,omitempty"`
	Note string `json:"note,omitempty"`
}

// MarkPaid records the results of a batch. A paid item is confirmed; a
// failed item returns its amount to the balance (paid later by a future
// run). Marking an item again with the same result does nothing; an item
// confirmed paid may later be marked failed (PayPal returned it); an item
// that failed cannot become paid, because its money is back in the balance.
func (l *Ledger) MarkPaid(ctx context.Context, batchID string, results []PayoutResult) (Batch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	month, ok := l.batches[batchID]
	if !ok {
		return Batch{}, fmt.Errorf("mark paid %s: %w; list batches with the run output", batchID, ErrUnknownBatch)
	}
	now := l.now().UTC()
	next := map[string]string{}
	var entries []Entry
	for i, r := range results {
		it := l.items[r.ItemID]
		if it == nil || it.batchID != batchID {
			return Batch{}, fmt.Errorf("%w: result %d: item %q is not in batch %s", ErrInvalid, i+1, r.ItemID, batchID)
		}
		if len(r.Ref) > maxIDLen || len(r.Note) > 1000 {
			return Batch{}, fmt.Errorf("%w: result %d: ref or note too long", ErrInvalid, i+1)
		}
		cur, seen := next[r.ItemID]
		if !seen {
			cur = it.status
		}
		var want string
		switch r.Status {
		case PayoutPaid:
			want = ItemPaid
		case PayoutFailed:
			want = ItemFailed
		default:
			return Batch{}, fmt.Errorf("%w: result %d: status %q must be paid or failed", ErrInvalid, i+1, r.Status)
		}
		if cur == want {
			continue
		}
		if cur == ItemFailed {
			return Batch{}, fmt.Errorf("mark paid %s: item %s: %w: it was marked failed and its amount returned to the balance; a later run pays it",
				batchID, r.ItemID, ErrConflict)
		}
		next[r.ItemID] = want
		e := Entry{At: now, Payee: it.payee, Currency: it.currency, BatchID: batchID, ItemID: r.ItemID, Month: it.month, Ref: r.Ref, Note: r.Note}
		if want == ItemPaid {
			e.Kind = KindPayoutConfirmed
		} else {
			e.Kind, e.Amount, e.Reason = KindPayoutReturned, it.amount, ReasonPayoutFailed
			if e.Note == "" {
				e.Note = "payout failed or was returned; the amount is back in the balance"
			}
		}
		entries = append(entries, e)
	}
	if _, err := l.commit(ctx, entries); err != nil {
		return Batch{}, fmt.Errorf("mark paid %s: %w", batchID, err)
	}
	return l.batch(ctx, month)
}

// PayPalMaxRows is the most payouts one PayPal Payouts Web file may hold.
const PayPalMaxRows = 5000

// PayPalFile is one upload file for PayPal Payouts Web: one currency, at
// most PayPalMaxRows lines.
type PayPalFile struct {
	Name     string       `json:"name"`
	Currency string       `json:"currency"`
	Lines    []PayoutLine `json:"lines"`
}

// PayPalFiles splits the batch's PayPal lines still to be sent by currency
// and into files of at most PayPalMaxRows rows, as Payouts Web requires.
func (b Batch) PayPalFiles() []PayPalFile {
	byCur := map[string][]PayoutLine{}
	var curs []string
	for _, ln := range b.Lines {
		if ln.Method != MethodPayPal || ln.Status != ItemSent {
			continue
		}
		if _, ok := byCur[ln.Currency]; !ok {
			curs = append(curs, ln.Currency)
		}
		byCur[ln.Currency] = append(byCur[ln.Currency], ln)
	}
	slices.Sort(curs)
	var out []PayPalFile
	for _, c := range curs {
		lines := byCur[c]
		for part := 1; len(lines) > 0; part++ {
			n := min(len(lines), PayPalMaxRows)
			out = append(out, PayPalFile{Name: fmt.Sprintf("%s-%s-%d.csv", b.ID, c, part), Currency: c, Lines: lines[:n:n]})
			lines = lines[n:]
		}
	}
	return out
}

// WritePayPalCSV writes a PayPal Payouts Web payment file: no header row;
// per line the recipient e-mail, the amount with a dot decimal separator,
// the currency, the Customer ID (our item id, ≤ 30 characters, no spaces),
// the note to the recipient (≤ 400 characters) and the wallet PAYPAL.
func WritePayPalCSV(w io.Writer, f PayPalFile, note string) error {
	if len(f.Lines) > PayPalMaxRows {
		return fmt.Errorf("paypal file %s: %d rows, PayPal accepts at most %d per file", f.Name, len(f.Lines), PayPalMaxRows)
	}
	if len([]rune(note)) > 400 {
		return fmt.Errorf("paypal file %s: note is longer than PayPal's 400 characters", f.Name)
	}
	cw := csv.NewWriter(w)
	for _, ln := range f.Lines {
		if ln.Currency != f.Currency {
			return fmt.Errorf("paypal file %s: item %s is in %s; a PayPal file holds one currency (%s)", f.Name, ln.ItemID, ln.Currency, f.Currency)
		}
		if ln.Receiver == "" || strings.ContainsAny(ln.Receiver, " ,\"\r\n") || !strings.Contains(ln.Receiver, "@") {
			return fmt.Errorf("paypal file %s: item %s: payee %s has no usable PayPal e-mail (%q); fix it in the payee's payout details", f.Name, ln.ItemID, ln.Payee, ln.Receiver)
		}
		if len(ln.ItemID) > 30 || strings.ContainsAny(ln.ItemID, " \t") {
			return fmt.Errorf("paypal file %s: item id %q is not a PayPal Customer ID (≤ 30 characters, no spaces)", f.Name, ln.ItemID)
		}
		if err := cw.Write([]string{ln.Receiver, FormatAmount(ln.Amount, ln.Currency), ln.Currency, ln.ItemID, csvSafe(note), "PAYPAL"}); err != nil {
			return fmt.Errorf("write paypal file %s: %w", f.Name, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write paypal file %s: %w", f.Name, err)
	}
	return nil
}

// ManualReport writes the lines of the batch to be paid by hand (payees
// without PayPal) as CSV with the payee's billing and contact details, for
// the back office.
func (l *Ledger) ManualReport(ctx context.Context, w io.Writer, b Batch) error {
	cw := csv.NewWriter(w)
	header := []string{"batch_id", "item_id", "payee", "name", "email", "country", "billing_name", "vat_id", "tax_details_on_file", "amount", "currency", "status"}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("write manual payment report: %w", err)
	}
	for _, ln := range b.Lines {
		if ln.Method != MethodManual {
			continue
		}
		p, err := l.payees.Payee(ctx, ln.Payee)
		if err != nil && !errors.Is(err, ErrUnknownPayee) {
			return fmt.Errorf("manual payment report: look up payee %s: %w", ln.Payee, err)
		}
		row := []string{b.ID, ln.ItemID, ln.Payee, p.Name, p.Email, p.Country, p.Billing.Name, p.Billing.VATID,
			strconv.FormatBool(p.TaxDetailsOnFile), FormatAmount(ln.Amount, ln.Currency), ln.Currency, ln.Status}
		for i := range row {
			row[i] = csvSafe(row[i])
		}
		if err := cw.Write(row); err != nil {
			return fmt.Errorf("write manual payment report: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write manual payment report: %w", err)
	}
	return nil
}

// csvSafe neutralises spreadsheet formula injection: a cell a spreadsheet
// would evaluate (=, +, -, @ first) gets a leading apostrophe. Amounts
// are formatted by us and never pass through here when negative.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
