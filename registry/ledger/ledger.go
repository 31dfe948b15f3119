// Package ledger is the money core of the registry: it turns customer
// payments into commission for the partner or referral who brought the
// customer, reverses it on refunds, holds it, pays it out in monthly runs
// and proves the books balance.
//
// The package is storage-independent. Everything it decides is written as
// append-only Entry values to a Journal (the registry's bbolt or PostgreSQL
// store implements it; MemJournal is the in-memory one). Who a customer is
// linked to, who a payee is and whether an install was alive come from
// small interfaces (Linker, PayeeDirectory, Liveness), so the package never
// imports the registry store.
//
// Money is integer minor units of one currency; amounts of different
// currencies are never added. Each balance is kept per payee and currency:
//
//	balance = earned − reversed − paid (paid net of returned payouts)
//
// and Check recomputes it from the journal alone.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// PayeeDirectory looks payees up by code. Payee returns an error wrapping
// ErrUnknownPayee when the code does not exist.
type PayeeDirectory interface {
	Payee(ctx context.Context, code string) (Payee, error)
}

// Liveness says whether any install of a customer sent a heartbeat in
// [from, to). An error is a storage failure, never "dead": the payment is
// then not recorded and can be retried.
type Liveness interface {
	HeartbeatIn(ctx context.Context, customerID string, installIDs []string, from, to time.Time) (bool, error)
}

// MemPayees is an in-memory PayeeDirectory, safe for concurrent use.
type MemPayees struct {
	mu sync.RWMutex
	m  map[string]Payee
}

// NewMemPayees returns a directory holding ps.
func NewMemPayees(ps ...Payee) *MemPayees {
	d := &MemPayees{m: map[string]Payee{}}
	for _, p := range ps {
		d.m[p.Code] = p
	}
	return d
}

// Put adds or replaces a payee.
func (d *MemPayees) Put(p Payee) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.m[p.Code] = p
}

// Payee implements PayeeDirectory.
func (d *MemPayees) Payee(_ context.Context, code string) (Payee, error) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	p, ok := d.m[code]
	if !ok {
		return Payee{}, fmt.Errorf("payee %s: %w", code, ErrUnknownPayee)
	}
	return p, nil
}

// Options wires a Ledger to its surroundings.
type Options struct {
	Config   Config
	Payees   PayeeDirectory
	Links    Linker
	Liveness Liveness // required when a rule has RequireHeartbeat
	// Now is the ledger clock (Entry.Recorded, run times); time.Now if nil.
	Now func() time.Time
}

// Ledger records payments, refunds and payout runs in a Journal and keeps
// the derived balances in memory. All methods are safe for concurrent use;
// writes are serialised.
type Ledger struct {
	mu     sync.Mutex
	j      Journal
	cfg    Config
	public map[string]bool
	payees PayeeDirectory
	links  Linker
	live   Liveness
	now    func() time.Time

	lastSeq   uint64
	payments  map[string]*payState
	slab      []payState
	desc      map[descKey]string
	names     map[string][2]string // payee code → billing name, normalised
	refunds   map[string]refundState
	firstPaid map[string]time.Time
	accounts  map[acctKey]*account
	runs      map[string]*runState // by month
	batches   map[string]string    // batch id → month
	items     map[string]*itemState
	lastRun   string
	cutoff    time.Time // cutoff of the latest run: PayableAt before it is matured
}

type payState struct {
	customer string
	currency string
	amount   int64
	paidAt   time.Time
	refunded int64
	// At most two commissions per payment: the linked payee's and the
	// parent's second-tier share; a fixed array saves an allocation each.
	comms  [2]commState
	ncomms uint8
}

type commState struct {
	payee     string
	level     uint8
	amount    int64
	reversed  int64
	payableAt time.Time
	from      string
}

type refundState struct {
	paymentID string
	amount    int64
}

type acctKey struct{ payee, currency string }

type pend struct {
	at     time.Time
	amount int64 // signed
}

type account struct {
	earned, reversed, paid, returned int64
	matured                          int64 // earned − reversed with PayableAt before Ledger.cutoff
	pending                          []pend
	paidByYear                       map[int]int64
}

func (a *account) balance() int64 { return a.earned - a.reversed - (a.paid - a.returned) }

// payableBefore is the balance that may be paid for a run with this
// cutoff: matured money minus what was already paid (net of returns).
func (a *account) payableBefore(cutoff time.Time) int64 {
	v := a.matured - (a.paid - a.returned)
	for _, p := range a.pending {
		if p.at.Before(cutoff) {
			v += p.amount
		}
	}
	return v
}

type runState struct {
	batchID string
	cutoff  time.Time
	at      time.Time
}

// Payout item states.
const (
	ItemSent   = "sent"
	ItemPaid   = "paid"
	ItemFailed = "failed"
)

type itemState struct {
	batchID  string
	payee    string
	currency string
	amount   int64
	month    string
	status   string
	ref      string
}

// Open replays the journal into a Ledger. It fails on an invalid config or
// missing dependencies, with what to set.
func Open(ctx context.Context, j Journal, o Options) (*Ledger, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, err
	}
	if j == nil || o.Payees == nil || o.Links == nil {
		return nil, fmt.Errorf("%w: open ledger: a journal, a payee directory and a linker are required", ErrInvalid)
	}
	if o.Liveness == nil && slices.ContainsFunc(o.Config.Rules, func(r CommissionRule) bool { return r.RequireHeartbeat }) {
		return nil, fmt.Errorf("%w: open ledger: a rule requires heartbeats but no Liveness source is set", ErrInvalid)
	}
	l := &Ledger{
		j: j, cfg: o.Config, payees: o.Payees, links: o.Links, live: o.Liveness, now: o.Now,
		public:    map[string]bool{},
		payments:  map[string]*payState{},
		refunds:   map[string]refundState{},
		firstPaid: map[string]time.Time{},
		accounts:  map[acctKey]*account{},
		runs:      map[string]*runState{},
		batches:   map[string]string{},
		items:     map[string]*itemState{},
		desc:      map[descKey]string{},
		names:     map[string][2]string{},
	}
	if l.now == nil {
		l.now = time.Now
	}
	for _, d := range o.Config.PublicEmailDomains {
		l.public[strings.ToLower(d)] = true
	}
	for e, err := range j.Entries(ctx, Filter{}) {
		if err != nil {
			return nil, fmt.Errorf("open ledger: read journal: %w", err)
		}
		if e.Seq <= l.lastSeq {
			return nil, fmt.Errorf("open ledger: journal entry seq %d is not above %d: the journal is out of order", e.Seq, l.lastSeq)
		}
		l.apply(e)
	}
	return l, nil
}

// Config returns the ledger's configuration.
func (l *Ledger) Config() Config { return l.cfg }

// newPayState hands out payment states from slabs: one allocation per
// thousand payments instead of one each.
func (l *Ledger) newPayState() *payState {
	if len(l.slab) == 0 {
		l.slab = make([]payState, 1024)
	}
	ps := &l.slab[0]
	l.slab = l.slab[1:]
	return ps
}

func (l *Ledger) acct(payee, currency string) *account {
	k := acctKey{payee, currency}
	a := l.accounts[k]
	if a == nil {
		a = &account{}
		l.accounts[k] = a
	}
	return a
}

func (l *Ledger) addPayable(a *account, at time.Time, amount int64) {
	if at.Before(l.cutoff) {
		a.matured += amount
	} else {
		a.pending = append(a.pending, pend{at, amount})
	}
}

// apply folds one stored entry into the in-memory state. It is the only
// place state changes, at Open (replay) and after every successful Append.
func (l *Ledger) apply(e Entry) {
	l.lastSeq = e.Seq
	switch e.Kind {
	case KindCommission, KindExcluded:
		ps := l.payments[e.PaymentID]
		if e.Payment != nil && ps == nil {
			ps = l.newPayState()
			*ps = payState{customer: e.CustomerID, currency: e.Currency, amount: e.Payment.Amount, paidAt: e.At}
			l.payments[e.PaymentID] = ps
			if f, ok := l.firstPaid[e.CustomerID]; !ok || e.At.Before(f) {
				l.firstPaid[e.CustomerID] = e.At
			}
		}
		if e.Kind == KindCommission {
			if ps != nil && int(ps.ncomms) < len(ps.comms) {
				ps.comms[ps.ncomms] = commState{payee: e.Payee, level: e.Level, amount: e.Amount, payableAt: e.PayableAt, from: e.From}
				ps.ncomms++
			}
			a := l.acct(e.Payee, e.Currency)
			a.earned += e.Amount
			l.addPayable(a, e.PayableAt, e.Amount)
		}
	case KindRefund:
		l.refunds[e.Ref] = refundState{paymentID: e.PaymentID, amount: e.Amount}
		if ps := l.payments[e.PaymentID]; ps != nil {
			ps.refunded += e.Amount
		}
	case KindReversal:
		if ps := l.payments[e.PaymentID]; ps != nil {
			for i := range ps.ncomms {
				if c := &ps.comms[i]; c.payee == e.Payee && c.level == e.Level {
					c.reversed += e.Amount
					break
				}
			}
		}
		a := l.acct(e.Payee, e.Currency)
		a.reversed += e.Amount
		l.addPayable(a, e.PayableAt, -e.Amount)
	case KindRun:
		m, err := parseMonth(e.Month)
		if err != nil {
			return // Check reports the malformed entry
		}
		cutoff := m.AddDate(0, 1, 0)
		l.runs[e.Month] = &runState{batchID: e.BatchID, cutoff: cutoff, at: e.At}
		l.batches[e.BatchID] = e.Month
		if e.Month > l.lastRun {
			l.lastRun = e.Month
		}
		if cutoff.After(l.cutoff) {
			l.cutoff = cutoff
			for _, a := range l.accounts {
				keep := a.pending[:0]
				for _, p := range a.pending {
					if p.at.Before(cutoff) {
						a.matured += p.amount
					} else {
						keep = append(keep, p)
					}
				}
				clear(a.pending[len(keep):])
				a.pending = keep
			}
		}
	case KindPayout:
		a := l.acct(e.Payee, e.Currency)
		a.paid += e.Amount
		if a.paidByYear == nil {
			a.paidByYear = map[int]int64{}
		}
		a.paidByYear[monthYear(e.Month)] += e.Amount
		l.items[e.ItemID] = &itemState{batchID: e.BatchID, payee: e.Payee, currency: e.Currency, amount: e.Amount, month: e.Month, status: ItemSent}
	case KindPayoutConfirmed:
		if it := l.items[e.ItemID]; it != nil {
			it.status, it.ref = ItemPaid, e.Ref
		}
	case KindPayoutReturned:
		a := l.acct(e.Payee, e.Currency)
		a.returned += e.Amount
		if it := l.items[e.ItemID]; it != nil {
			it.status = ItemFailed
			if a.paidByYear != nil {
				a.paidByYear[monthYear(it.month)] -= e.Amount
			}
		}
	}
}

// commit appends entries with fresh sequence numbers and applies them.
// Nothing changes in memory when the journal refuses the batch.
func (l *Ledger) commit(ctx context.Context, entries []Entry) ([]Entry, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	now := l.now().UTC()
	for i := range entries {
		entries[i].Seq = l.lastSeq + uint64(i) + 1
		entries[i].Recorded = now
	}
	if err := l.j.Append(ctx, entries); err != nil {
		return nil, fmt.Errorf("append %d ledger entries: %w", len(entries), err)
	}
	for _, e := range entries {
		l.apply(e)
	}
	return entries, nil
}

// Outcome is what recording one payment or refund did.
type Outcome struct {
	ID string `json:"id"`
	// Duplicate: the external id was already recorded with the same
	// content; nothing new was stored and Entries are the original ones.
	Duplicate bool    `json:"duplicate"`
	Entries   []Entry `json:"entries"`
}

// RecordPayment records one payment and its commission. See RecordPayments.
func (l *Ledger) RecordPayment(ctx context.Context, p Payment) (Outcome, error) {
	out, err := l.RecordPayments(ctx, []Payment{p})
	if err != nil {
		return Outcome{}, err
	}
	return out[0], nil
}

// RecordPayments records a batch of payments (a CSV import, a webhook) in
// one journal append: all are stored or none. A payment whose external id
// is already recorded with the same customer, amount and currency is a
// duplicate and stores nothing; with other content it is ErrConflict.
// Invalid payments fail the whole batch with every problem listed.
func (l *Ledger) RecordPayments(ctx context.Context, ps []Payment) ([]Outcome, error) {
	outs, _, err := l.RecordBatch(ctx, ps, nil)
	return outs, err
}

// RecordBatch records payments and then refunds (or chargebacks) in one
// journal append: all are stored or none. A refund may name a payment of
// the same batch. Payments follow RecordPayments' rules and refunds
// RecordRefund's; the outcomes are in the order given.
func (l *Ledger) RecordBatch(ctx context.Context, ps []Payment, rs []Refund) ([]Outcome, []Outcome, error) {
	norm := make([]Payment, len(ps))
	var errs []error
	for i, p := range ps {
		n, err := p.normalize()
		if err != nil {
			if len(errs) < 20 {
				errs = append(errs, fmt.Errorf("payment %d: %w", i+1, err))
			}
			continue
		}
		norm[i] = n
	}
	rnorm := make([]Refund, len(rs))
	for i, r := range rs {
		n, err := r.normalize()
		if err != nil {
			if len(errs) < 20 {
				errs = append(errs, fmt.Errorf("refund %d: %w", i+1, err))
			}
			continue
		}
		rnorm[i] = n
	}
	if len(errs) > 0 {
		what := "payments"
		if len(rs) > 0 {
			what = "payments and refunds"
		}
		return nil, nil, fmt.Errorf("record %s: nothing recorded: %w", what, errors.Join(errs...))
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	outs := make([]Outcome, len(norm))
	entries := make([]Entry, 0, len(norm)+len(norm)/4+2*len(rnorm))
	var err error
	type pos struct{ idx, from, to int }
	var fresh []pos
	inBatch := make(map[string]int, len(norm))
	first := make(map[string]time.Time, len(norm))
	for i, p := range norm {
		outs[i].ID = p.ExternalID
		if ps := l.payments[p.ExternalID]; ps != nil {
			if ps.customer != p.CustomerID || ps.amount != p.Amount || ps.currency != p.Currency {
				return nil, nil, fmt.Errorf("record payment %s: %w: stored for customer %s, %s %s; got customer %s, %s %s",
					p.ExternalID, ErrConflict, ps.customer, FormatAmount(ps.amount, ps.currency), ps.currency,
					p.CustomerID, FormatAmount(p.Amount, p.Currency), p.Currency)
			}
			stored, err := l.paymentEntries(ctx, p.ExternalID)
			if err != nil {
				return nil, nil, err
			}
			outs[i].Duplicate, outs[i].Entries = true, stored
			continue
		}
		if j, ok := inBatch[p.ExternalID]; ok {
			q := norm[j]
			if q.CustomerID != p.CustomerID || q.Amount != p.Amount || q.Currency != p.Currency {
				return nil, nil, fmt.Errorf("record payments: %w: payment %s appears twice in the batch with different content", ErrConflict, p.ExternalID)
			}
			outs[i].Duplicate = true
			fresh = append(fresh, pos{i, -1, j})
			continue
		}
		inBatch[p.ExternalID] = i
		f, ok := first[p.CustomerID]
		if !ok {
			f, ok = l.firstPaid[p.CustomerID]
		}
		if !ok || p.PaidAt.Before(f) {
			f = p.PaidAt
		}
		first[p.CustomerID] = f
		from := len(entries)
		entries, err = l.evaluate(ctx, entries, p, f)
		if err != nil {
			return nil, nil, fmt.Errorf("record payment %s: %w", p.ExternalID, err)
		}
		fresh = append(fresh, pos{i, from, len(entries)})
	}
	routs := make([]Outcome, len(rnorm))
	var rfresh []pos
	if len(rnorm) > 0 {
		// Refunds are computed against working copies of the payments'
		// state (stored or new in this batch), so nothing in memory
		// changes unless the journal takes the whole batch.
		work := map[string]*payState{}
		for _, p := range fresh {
			if p.from >= 0 {
				work[norm[p.idx].ExternalID] = stateOf(entries[p.from:p.to])
			}
		}
		rInBatch := map[string]int{}
		for i, r := range rnorm {
			routs[i].ID = r.ExternalID
			if old, ok := l.refunds[r.ExternalID]; ok {
				if old.paymentID != r.PaymentID || old.amount != r.Amount {
					return nil, nil, fmt.Errorf("record refund %s: %w: stored as %d of payment %s", r.ExternalID, ErrConflict, old.amount, old.paymentID)
				}
				stored, err := l.refundEntries(ctx, r)
				if err != nil {
					return nil, nil, err
				}
				routs[i].Duplicate, routs[i].Entries = true, stored
				continue
			}
			if j, ok := rInBatch[r.ExternalID]; ok {
				if q := rnorm[j]; q.PaymentID != r.PaymentID || q.Amount != r.Amount {
					return nil, nil, fmt.Errorf("record refunds: %w: refund %s appears twice in the batch with different content", ErrConflict, r.ExternalID)
				}
				routs[i].Duplicate = true
				rfresh = append(rfresh, pos{i, -1, j})
				continue
			}
			rInBatch[r.ExternalID] = i
			ps := work[r.PaymentID]
			if ps == nil {
				if orig := l.payments[r.PaymentID]; orig != nil {
					cp := *orig
					ps = &cp
					work[r.PaymentID] = ps
				}
			}
			from := len(entries)
			entries, err = reverse(entries, r, ps)
			if err != nil {
				return nil, nil, err
			}
			rfresh = append(rfresh, pos{i, from, len(entries)})
		}
	}
	stored, err := l.commit(ctx, entries)
	if err != nil {
		return nil, nil, fmt.Errorf("record payments: %w", err)
	}
	for _, p := range fresh {
		if p.from >= 0 {
			outs[p.idx].Entries = stored[p.from:p.to:p.to]
		}
	}
	for _, p := range fresh {
		if p.from < 0 {
			outs[p.idx].Entries = outs[p.to].Entries
		}
	}
	for _, p := range rfresh {
		if p.from >= 0 {
			routs[p.idx].Entries = stored[p.from:p.to:p.to]
		}
	}
	for _, p := range rfresh {
		if p.from < 0 {
			routs[p.idx].Entries = routs[p.to].Entries
		}
	}
	return outs, routs, nil
}

// stateOf is the payment state apply would build from a new payment's
// entries (level-1 entry with its snapshot, then any commissions).
func stateOf(entries []Entry) *payState {
	ps := &payState{}
	for _, e := range entries {
		if e.Payment != nil {
			ps.customer, ps.currency, ps.amount, ps.paidAt = e.CustomerID, e.Currency, e.Payment.Amount, e.At
		}
		if e.Kind == KindCommission && int(ps.ncomms) < len(ps.comms) {
			ps.comms[ps.ncomms] = commState{payee: e.Payee, level: e.Level, amount: e.Amount, payableAt: e.PayableAt, from: e.From}
			ps.ncomms++
		}
	}
	return ps
}

func (l *Ledger) paymentEntries(ctx context.Context, paymentID string) ([]Entry, error) {
	var out []Entry
	for e, err := range l.j.Entries(ctx, Filter{PaymentID: paymentID}) {
		if err != nil {
			return nil, fmt.Errorf("read entries of payment %s: %w", paymentID, err)
		}
		if e.Kind == KindCommission || e.Kind == KindExcluded {
			out = append(out, e)
		}
	}
	return out, nil
}

// evaluate decides the commission on one new payment and appends its
// entries to dst: the level-1 entry (commission or excluded, with the
// reason) and the second-tier entry.
func (l *Ledger) evaluate(ctx context.Context, dst []Entry, p Payment, firstPaid time.Time) ([]Entry, error) {
	e := Entry{
		Kind: KindExcluded, At: p.PaidAt, Currency: p.Currency, PaymentID: p.ExternalID,
		CustomerID: p.CustomerID, Level: 1,
		Payment: &PaymentInfo{Amount: p.Amount, Plan: p.Plan, PeriodStart: p.PeriodStart, PeriodEnd: p.PeriodEnd,
			InstallIDs: p.InstallIDs, CustomerName: p.Payer.Billing.Name},
	}
	link, ok, err := l.links.LinkOf(ctx, p.CustomerID)
	if err != nil {
		return nil, fmt.Errorf("look up link of customer %s: %w", p.CustomerID, err)
	}
	if !ok {
		return excluded(dst, e, ReasonNoLink, "customer is not linked to a partner or referral")
	}
	e.Payee = link.PayeeCode
	payee, err := l.payees.Payee(ctx, link.PayeeCode)
	if errors.Is(err, ErrUnknownPayee) {
		return excluded(dst, e, ReasonUnknownPayee, "customer is linked to %s, which is not a known payee", link.PayeeCode)
	}
	if err != nil {
		return nil, fmt.Errorf("look up payee %s: %w", link.PayeeCode, err)
	}
	if payee.Status != PayeeApproved {
		return excluded(dst, e, ReasonPayeeNotApproved, "payee is %s: no commission while not approved", payee.Status)
	}
	if r, why := l.selfPurchase(p.Payer, payee); r != "" {
		return excluded(dst, e, r, "own purchase: %s", why)
	}
	rule, ok := l.cfg.rule(payee.Tier, p.Plan)
	if !ok {
		return excluded(dst, e, ReasonNoRule, "no commission rule for tier %s and plan %s", payee.Tier, p.Plan)
	}
	if rule.DurationMonths > 0 {
		end := firstPaid.AddDate(0, rule.DurationMonths, 0)
		if !p.PaidAt.Before(end) {
			return excluded(dst, e, ReasonDurationEnded, "%ss earn for %d months after the customer's first payment (%s); this payment is after %s",
				payee.Tier, rule.DurationMonths, firstPaid.Format(time.DateOnly), end.Format(time.DateOnly))
		}
	}
	if rule.RequireHeartbeat {
		alive, err := l.live.HeartbeatIn(ctx, p.CustomerID, p.InstallIDs, p.PeriodStart, p.PeriodEnd)
		if err != nil {
			return nil, fmt.Errorf("check heartbeats of customer %s: %w", p.CustomerID, err)
		}
		if !alive {
			return excluded(dst, e, ReasonNoHeartbeat, "no heartbeat from the customer's installs between %s and %s",
				p.PeriodStart.Format(time.DateOnly), p.PeriodEnd.Format(time.DateOnly))
		}
	}
	var amount int64
	if rule.PercentBP > 0 {
		amount = percentOf(p.Amount, rule.PercentBP)
	} else {
		flat, ok := rule.Flat[p.Currency]
		if !ok {
			return excluded(dst, e, ReasonNoRule, "the %s rule has no flat amount in %s", payee.Tier, p.Currency)
		}
		amount = min(flat, p.Amount)
	}
	if c, ok := rule.Cap[p.Currency]; ok && amount > c {
		amount = c
	}
	if amount == 0 {
		return excluded(dst, e, ReasonZero, "%s of %s %s rounds to zero", rule.describe(p.Currency), FormatAmount(p.Amount, p.Currency), p.Currency)
	}
	e.Kind, e.Amount = KindCommission, amount
	e.PayableAt = p.PaidAt.Add(l.cfg.Hold())
	note := make([]byte, 0, 64)
	note = append(note, l.describe(rule, p.Currency)...)
	note = append(note, " of "...)
	note = appendAmount(note, p.Amount, p.Currency)
	note = append(note, ' ')
	note = append(note, p.Currency...)
	e.Note = string(note)
	dst = append(dst, e)
	if l.cfg.SecondTierBP == 0 || payee.ParentCode == "" {
		return dst, nil
	}
	second := Entry{
		Kind: KindExcluded, At: p.PaidAt, Payee: payee.ParentCode, Currency: p.Currency, PaymentID: p.ExternalID,
		CustomerID: p.CustomerID, Level: 2, From: payee.Code,
	}
	parent, err := l.payees.Payee(ctx, payee.ParentCode)
	switch {
	case errors.Is(err, ErrUnknownPayee):
		second.Reason, second.Note = ReasonUnknownPayee, "parent "+payee.ParentCode+" of "+payee.Code+" is not a known payee"
	case err != nil:
		return nil, fmt.Errorf("look up parent payee %s: %w", payee.ParentCode, err)
	case parent.Status != PayeeApproved:
		second.Reason, second.Note = ReasonPayeeNotApproved, "parent is "+string(parent.Status)+": no second-tier share while not approved"
	default:
		if r, why := l.selfPurchase(p.Payer, parent); r != "" {
			second.Reason, second.Note = r, "own purchase: "+why
			break
		}
		share := percentOf(amount, l.cfg.SecondTierBP)
		if share == 0 {
			second.Reason, second.Note = ReasonZero, "second-tier share rounds to zero"
			break
		}
		second.Kind, second.Amount, second.PayableAt = KindCommission, share, e.PayableAt
		second.Note = fmt.Sprintf("second tier: %d.%02d%% of %s %s earned by %s", l.cfg.SecondTierBP/100, l.cfg.SecondTierBP%100,
			FormatAmount(amount, p.Currency), p.Currency, payee.Code)
	}
	return append(dst, second), nil
}

// excluded appends e as an excluded entry with its reason.
func excluded(dst []Entry, e Entry, r Reason, format string, a ...any) ([]Entry, error) {
	e.Reason, e.Note = r, fmt.Sprintf(format, a...)
	return append(dst, e), nil
}

type descKey struct {
	tier     Tier
	plan     Plan
	currency string
}

// describe caches rule descriptions: they are the same for every payment
// of a tier, plan and currency.
func (l *Ledger) describe(r CommissionRule, currency string) string {
	k := descKey{r.Tier, r.Plan, currency}
	d, ok := l.desc[k]
	if !ok {
		d = r.describe(currency)
		l.desc[k] = d
	}
	return d
}

// sameBilling is sameBilling with the payee's normalised name cached: it
// is compared with every payment of every customer the payee brought.
func (l *Ledger) sameBilling(payer BillingIdentity, payee Payee) bool {
	if payer.VATID != "" && payee.Billing.VATID != "" {
		if v := normVAT(payer.VATID); v != "" && v == normVAT(payee.Billing.VATID) {
			return true
		}
	}
	if payer.Name == "" || payee.Billing.Name == "" {
		return false
	}
	c, ok := l.names[payee.Code]
	if !ok || c[0] != payee.Billing.Name {
		c = [2]string{payee.Billing.Name, normName(payee.Billing.Name)}
		l.names[payee.Code] = c
	}
	n := normName(payer.Name)
	return n != "" && n == c[1]
}

// selfPurchase reports whether the payer is the payee: same account, same
// (non-public) e-mail domain, or same billing identity.
func (l *Ledger) selfPurchase(payer Payer, payee Payee) (Reason, string) {
	if payer.AccountID != "" && payer.AccountID == payee.AccountID {
		return ReasonSelfAccount, "the payer account is the payee's account"
	}
	if d := emailDomain(payer.Email); d != "" && d == payee.domain() && !l.public[d] {
		return ReasonSelfEmailDomain, "the payer's e-mail domain " + d + " is the payee's"
	}
	if l.sameBilling(payer.Billing, payee) {
		return ReasonSelfBilling, "the payer's billing identity is the payee's"
	}
	return "", ""
}

// RecordRefund records a refund or chargeback and reverses the payment's
// commissions (both tiers) in proportion: after refunds totalling R of a
// payment P, a commission C has been reversed by floor(C×R/P) in all, so
// reversals never exceed C and a full refund reverses exactly C. Refunds
// are idempotent by external id. A refund of an unknown payment fails with
// ErrUnknownPayment (retry after the payment arrives).
func (l *Ledger) RecordRefund(ctx context.Context, r Refund) (Outcome, error) {
	_, outs, err := l.RecordBatch(ctx, nil, []Refund{r})
	if err != nil {
		if _, perr := r.normalize(); perr != nil {
			return Outcome{}, perr // the single refund's own message, without "refund 1:"
		}
		return Outcome{}, err
	}
	return outs[0], nil
}

// refundEntries reads the entries a recorded refund stored.
func (l *Ledger) refundEntries(ctx context.Context, r Refund) ([]Entry, error) {
	var stored []Entry
	for e, err := range l.j.Entries(ctx, Filter{PaymentID: r.PaymentID}) {
		if err != nil {
			return nil, fmt.Errorf("read entries of payment %s: %w", r.PaymentID, err)
		}
		if (e.Kind == KindRefund || e.Kind == KindReversal) && e.Ref == r.ExternalID {
			stored = append(stored, e)
		}
	}
	return stored, nil
}

// reverse appends the entries of refund r of the payment whose state is ps
// (nil: unknown payment) and updates ps as apply will.
func reverse(dst []Entry, r Refund, ps *payState) ([]Entry, error) {
	if ps == nil {
		return nil, fmt.Errorf("record refund %s: payment %s: %w; record the payment first", r.ExternalID, r.PaymentID, ErrUnknownPayment)
	}
	if r.Currency != "" && r.Currency != ps.currency {
		return nil, fmt.Errorf("%w: refund %s is in %s but payment %s was in %s", ErrInvalid, r.ExternalID, r.Currency, r.PaymentID, ps.currency)
	}
	if ps.refunded+r.Amount > ps.amount {
		return nil, fmt.Errorf("%w: refund %s of %s %s would bring refunds of payment %s to %s, more than the %s paid",
			ErrInvalid, r.ExternalID, FormatAmount(r.Amount, ps.currency), ps.currency, r.PaymentID,
			FormatAmount(ps.refunded+r.Amount, ps.currency), FormatAmount(ps.amount, ps.currency))
	}
	reason := ReasonRefund
	if r.Kind == RefundKindChargeback {
		reason = ReasonChargeback
	}
	cum := ps.refunded + r.Amount
	ps.refunded = cum
	dst = append(dst, Entry{
		Kind: KindRefund, At: r.At, Currency: ps.currency, Amount: r.Amount, PaymentID: r.PaymentID,
		CustomerID: ps.customer, Ref: r.ExternalID, Reason: reason,
		Note: fmt.Sprintf("%s of %s %s; %s of %s refunded in all", r.Kind, FormatAmount(r.Amount, ps.currency), ps.currency,
			FormatAmount(cum, ps.currency), FormatAmount(ps.amount, ps.currency)),
	})
	for i := range ps.ncomms {
		c := &ps.comms[i]
		delta := mulDiv(c.amount, cum, ps.amount) - c.reversed
		if delta <= 0 {
			continue
		}
		c.reversed += delta
		dst = append(dst, Entry{
			Kind: KindReversal, At: r.At, Payee: c.payee, Currency: ps.currency, Amount: delta,
			PaymentID: r.PaymentID, CustomerID: ps.customer, Level: c.level, From: c.from,
			PayableAt: c.payableAt, Ref: r.ExternalID, Reason: reason,
			Note: fmt.Sprintf("%s of %s of %s %s paid reverses %s of the %s commission", r.Kind,
				FormatAmount(r.Amount, ps.currency), FormatAmount(ps.amount, ps.currency), ps.currency,
				FormatAmount(delta, ps.currency), FormatAmount(c.amount, ps.currency)),
		})
	}
	return dst, nil
}

// RefundOf reports the payment and amount a refund or chargeback was
// recorded with, so a caller that adjusts amounts (capping a chargeback at
// what is left of a payment) can replay the first recording exactly.
func (l *Ledger) RefundOf(externalID string) (paymentID string, amount int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.refunds[externalID]
	return r.paymentID, r.amount, ok
}

// Balance is one payee's money in one currency.
type Balance struct {
	Payee    string `json:"payee"`
	Currency string `json:"currency"`
	Earned   int64  `json:"earned"`
	Reversed int64  `json:"reversed"`
	// Paid is net of returned payouts.
	Paid     int64 `json:"paid"`
	Returned int64 `json:"returned"`
	// Balance = Earned − Reversed − Paid; negative after a refund of paid
	// commission, and carried.
	Balance int64 `json:"balance"`
	// Payable is the part of Balance past its hold at the time asked;
	// Pending the part still on hold.
	Payable int64 `json:"payable"`
	Pending int64 `json:"pending"`
}

func (l *Ledger) balanceOf(k acctKey, a *account, at time.Time) Balance {
	b := Balance{Payee: k.payee, Currency: k.currency, Earned: a.earned, Reversed: a.reversed,
		Paid: a.paid - a.returned, Returned: a.returned, Balance: a.balance()}
	b.Payable = a.matured - b.Paid
	for _, p := range a.pending {
		if !p.at.After(at) {
			b.Payable += p.amount
		}
	}
	b.Pending = b.Balance - b.Payable
	return b
}

// Balances returns every payee's balances, by payee then currency, with
// Payable as of now.
func (l *Ledger) Balances() []Balance {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	out := make([]Balance, 0, len(l.accounts))
	for k, a := range l.accounts {
		out = append(out, l.balanceOf(k, a, now))
	}
	slices.SortFunc(out, func(a, b Balance) int {
		return cmpStrings(a.Payee+"\x00"+a.Currency, b.Payee+"\x00"+b.Currency)
	})
	return out
}

// BalanceOf returns one payee's balance in one currency (zero when none).
func (l *Ledger) BalanceOf(payee, currency string) Balance {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := acctKey{payee, currency}
	a := l.accounts[k]
	if a == nil {
		return Balance{Payee: payee, Currency: currency}
	}
	return l.balanceOf(k, a, l.now())
}

func cmpStrings(a, b string) int { return strings.Compare(a, b) }

// parseMonth reads "YYYY-MM" into the first instant of the month, UTC.
func parseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Format("2006-01") != s {
		return time.Time{}, fmt.Errorf("%w: month %q must be YYYY-MM, e.g. 2026-03", ErrInvalid, s)
	}
	return t, nil
}

func monthYear(month string) int {
	t, err := parseMonth(month)
	if err != nil {
		return 0
	}
	return t.Year()
}
