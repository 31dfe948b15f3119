package ledger

import (
	"context"
	"fmt"
	"iter"
	"sync"
	"time"
)

// Kind says what an Entry records. Only the four money kinds (commission,
// reversal, payout, payout_returned) move a balance; the others record a
// decision and its reason so every figure can be explained.
type Kind string

// Entry kinds.
const (
	// KindCommission: a payee earned Amount on a payment (Level 1 direct,
	// Level 2 second tier). Counts as earned.
	KindCommission Kind = "commission"
	// KindExcluded: a payment earned nothing for Payee (or for nobody when
	// Payee is empty); Reason says why. Amount is 0.
	KindExcluded Kind = "excluded"
	// KindRefund records that a refund or chargeback was seen (Payee empty,
	// Amount = refunded amount); it makes refunds idempotent.
	KindRefund Kind = "refund"
	// KindReversal takes back part of a commission after a refund. Counts as
	// reversed. PayableAt is the reversed commission's, so a refund inside
	// the hold reduces what is pending, not what is payable.
	KindReversal Kind = "reversal"
	// KindRun marks a payout run for Month (Payee empty).
	KindRun Kind = "run"
	// KindPayout: Amount was sent (PayPal) or is to be paid (manual) in
	// batch BatchID as item ItemID. Counts as paid.
	KindPayout Kind = "payout"
	// KindCarried: the run did not pay this balance (Amount); Reason says why.
	KindCarried Kind = "carried"
	// KindPayoutConfirmed: the payout item was delivered (Ref = provider
	// transaction id).
	KindPayoutConfirmed Kind = "payout_confirmed"
	// KindPayoutReturned: the payout item failed or was returned; Amount goes
	// back to the balance. Counts as negative paid.
	KindPayoutReturned Kind = "payout_returned"
)

// Reason is a stable code for why money did not move; Entry.Note has the
// human sentence.
type Reason string

// Reasons.
const (
	ReasonNoLink           Reason = "no_link"
	ReasonUnknownPayee     Reason = "unknown_payee"
	ReasonPayeeNotApproved Reason = "payee_not_approved"
	ReasonSelfAccount      Reason = "self_purchase_account"
	ReasonSelfEmailDomain  Reason = "self_purchase_email_domain"
	ReasonSelfBilling      Reason = "self_purchase_billing_identity"
	ReasonNoRule           Reason = "no_rule"
	ReasonDurationEnded    Reason = "duration_ended"
	ReasonNoHeartbeat      Reason = "no_heartbeat"
	ReasonZero             Reason = "rounds_to_zero"
	ReasonRefund           Reason = "refund"
	ReasonChargeback       Reason = "chargeback"
	ReasonBelowThreshold   Reason = "below_threshold"
	ReasonNotPositive      Reason = "balance_not_positive"
	ReasonNoThreshold      Reason = "no_threshold_configured"
	ReasonManualQuarterly  Reason = "manual_payout_next_quarter"
	ReasonTaxDetails       Reason = "tax_details_missing"
	ReasonPayoutFailed     Reason = "payout_failed"
)

// PaymentInfo is the snapshot of a payment kept on its first entry, so a
// statement line can show what was paid without another lookup.
type PaymentInfo struct {
	Amount      int64     `json:"amount"`
	Plan        Plan      `json:"plan"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	InstallIDs  []string  `json:"install_ids,omitempty"`
	// CustomerName is the billing name, shown to partners only.
	CustomerName string `json:"customer_name,omitempty"`
}

// Entry is one append-only ledger record. Amount is never negative: the
// Kind gives the sign (earned − reversed − paid + returned = balance).
type Entry struct {
	Seq  uint64 `json:"seq"`
	Kind Kind   `json:"kind"`
	// At is when the event happened: payment paid-at, refund time, run time.
	At time.Time `json:"at"`
	// Recorded is the ledger clock when the entry was appended.
	Recorded time.Time `json:"recorded"`
	Payee    string    `json:"payee,omitempty"`
	Currency string    `json:"currency"`
	Amount   int64     `json:"amount"`
	// PaymentID is the external id of the payment the entry derives from.
	PaymentID  string `json:"payment_id,omitempty"`
	CustomerID string `json:"customer_id,omitempty"`
	// Level is 1 for the linked payee, 2 for the parent's second-tier share.
	Level uint8 `json:"level,omitempty"`
	// From is, on a second-tier entry, the sub-affiliate whose earning it shares.
	From string `json:"from,omitempty"`
	// PayableAt: when a commission (and its reversals) stops being pending.
	PayableAt time.Time `json:"payable_at,omitzero"`
	// Ref is the refund external id (refund, reversal) or the payout
	// provider's transaction id (payout_confirmed).
	Ref string `json:"ref,omitempty"`
	// BatchID / ItemID / Month identify a payout run and its lines.
	BatchID string `json:"batch_id,omitempty"`
	ItemID  string `json:"item_id,omitempty"`
	Month   string `json:"month,omitempty"`
	// Method is paypal or manual on payout entries.
	Method string `json:"method,omitempty"`
	Reason Reason `json:"reason,omitempty"`
	Note   string `json:"note,omitempty"`
	// Payment is set on the level-1 entry of each payment (commission or
	// excluded): exactly one such entry exists per payment external id.
	Payment *PaymentInfo `json:"payment,omitempty"`
}

// signed returns the entry's effect on its payee's balance.
func (e Entry) signed() int64 {
	switch e.Kind {
	case KindCommission, KindPayoutReturned:
		return e.Amount
	case KindReversal, KindPayout:
		return -e.Amount
	}
	return 0
}

// Filter selects entries; zero fields match everything. Engines should
// index Payee and PaymentID.
type Filter struct {
	Payee     string
	PaymentID string
	BatchID   string
	AfterSeq  uint64    // only entries with Seq > AfterSeq
	Before    time.Time // only entries with At before this
}

func (f Filter) match(e *Entry) bool {
	return (f.Payee == "" || e.Payee == f.Payee) &&
		(f.PaymentID == "" || e.PaymentID == f.PaymentID) &&
		(f.BatchID == "" || e.BatchID == f.BatchID) &&
		e.Seq > f.AfterSeq &&
		(f.Before.IsZero() || e.At.Before(f.Before))
}

// Journal persists entries. Append stores a batch atomically (all or none)
// and must refuse entries whose Seq is not above every stored Seq, so two
// writers cannot interleave. Entries yields matches in Seq order; a storage
// error is yielded as the second value and ends the iteration.
type Journal interface {
	Append(ctx context.Context, entries []Entry) error
	Entries(ctx context.Context, f Filter) iter.Seq2[Entry, error]
}

// MemJournal is an in-memory Journal for tests, benchmarks and tools. It is
// safe for concurrent use; do not Append from inside an Entries loop (the
// iteration holds a read lock, as a database read transaction would).
type MemJournal struct {
	mu     sync.RWMutex
	chunks [][]Entry // fixed-size chunks: appending never copies old entries
	n      int
	// Per-key positions; most payments have one or two entries, so the
	// first position is kept apart to avoid a slice per payment. The
	// payment index is built on the first query by payment (refunds,
	// statements) and maintained from then on: bulk imports that never
	// ask do not pay for it.
	byPayee   map[string][]int32
	byPayment map[string]posList
	byBatch   map[string][]int32
}

func (j *MemJournal) indexPayment(e *Entry, i int32) {
	if pl, ok := j.byPayment[e.PaymentID]; ok {
		pl.more = append(pl.more, i)
		j.byPayment[e.PaymentID] = pl
	} else {
		j.byPayment[e.PaymentID] = posList{first: i}
	}
}

type posList struct {
	first int32
	more  []int32
}

const chunkBits = 14

// NewMemJournal returns an empty journal.
func NewMemJournal() *MemJournal {
	return &MemJournal{byPayee: map[string][]int32{}, byBatch: map[string][]int32{}}
}

func (j *MemJournal) at(i int) *Entry { return &j.chunks[i>>chunkBits][i&(1<<chunkBits-1)] }

// Append implements Journal.
func (j *MemJournal) Append(ctx context.Context, entries []Entry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	last := uint64(0)
	if j.n > 0 {
		last = j.at(j.n - 1).Seq
	}
	for _, e := range entries {
		if e.Seq <= last {
			return fmt.Errorf("append entry seq %d: not above the last stored seq %d (another writer appended first)", e.Seq, last)
		}
		last = e.Seq
	}
	if j.n+len(entries) > 1<<31-1 {
		return fmt.Errorf("append %d entries: the in-memory journal is full", len(entries))
	}
	// Entries are stored as given: the ledger never modifies an entry (or
	// its Payment snapshot) once appended.
	for _, e := range entries {
		i := int32(j.n)
		if j.n>>chunkBits == len(j.chunks) {
			j.chunks = append(j.chunks, make([]Entry, 1<<chunkBits))
		}
		*j.at(j.n) = e
		j.n++
		if e.Payee != "" {
			j.byPayee[e.Payee] = append(j.byPayee[e.Payee], i)
		}
		if e.PaymentID != "" && j.byPayment != nil {
			j.indexPayment(&e, i)
		}
		if e.BatchID != "" {
			j.byBatch[e.BatchID] = append(j.byBatch[e.BatchID], i)
		}
	}
	return nil
}

// Entries implements Journal.
func (j *MemJournal) Entries(ctx context.Context, f Filter) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if f.PaymentID != "" {
			j.mu.Lock()
			if j.byPayment == nil {
				j.byPayment = make(map[string]posList, j.n)
				for i := range j.n {
					if e := j.at(i); e.PaymentID != "" {
						j.indexPayment(e, int32(i))
					}
				}
			}
			j.mu.Unlock()
		}
		j.mu.RLock()
		defer j.mu.RUnlock()
		visit := func(k, i int) bool {
			if k&1023 == 0 && ctx.Err() != nil {
				yield(Entry{}, ctx.Err())
				return false
			}
			e := j.at(i)
			return !f.match(e) || yield(*e, nil)
		}
		var idx []int32
		switch {
		case f.PaymentID != "":
			pl, ok := j.byPayment[f.PaymentID]
			if !ok {
				return
			}
			if !visit(0, int(pl.first)) {
				return
			}
			idx = pl.more
		case f.Payee != "":
			idx = j.byPayee[f.Payee]
		case f.BatchID != "":
			idx = j.byBatch[f.BatchID]
		default:
			for i := range j.n {
				if !visit(i, i) {
					return
				}
			}
			return
		}
		for k, i := range idx {
			if !visit(k+1, int(i)) {
				return
			}
		}
	}
}

// Len returns how many entries are stored.
func (j *MemJournal) Len() int {
	j.mu.RLock()
	defer j.mu.RUnlock()
	return j.n
}
