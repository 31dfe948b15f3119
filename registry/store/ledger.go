package store

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/switchboard-dev/switchboard/registry/ledger"
)

// Money records. The ledger package decides every figure; a storage engine
// keeps its append-only journal, the customer ↔ payee links with staff
// moves, the referral clicks of web visitors, which installs belong to
// which billing customer, and answers whether an install reported in a
// period (commission needs the customer's install alive).

// ErrCustomerLinked: the customer is already linked to another payee; only
// a staff move changes it.
var ErrCustomerLinked = errors.New("customer is already linked to another payee")

// ErrInstallCustomer: the install already belongs to another customer.
var ErrInstallCustomer = errors.New("install belongs to another customer")

// EventCustomer is the audit event of an install being assigned to a
// billing customer.
const EventCustomer EventKind = "customer_set"

// LedgerStore is the storage of the money side of the registry.
type LedgerStore interface {
	// AppendLedger stores a batch of ledger entries atomically. It refuses
	// the whole batch when an entry's Seq is not above every stored Seq
	// (another writer appended first), so it implements ledger.Journal.
	AppendLedger(ctx context.Context, entries []ledger.Entry) error
	// LedgerEntries yields the entries matching f in Seq order. Engines
	// index Payee, PaymentID and BatchID.
	LedgerEntries(ctx context.Context, f ledger.Filter) iter.Seq2[ledger.Entry, error]

	// CustomerLink returns the payee a customer is linked to.
	CustomerLink(ctx context.Context, customerID string) (ledger.Link, bool, error)
	// LinkCustomer records l unless the customer is linked already: the same
	// payee returns the stored link, another payee the stored link and an
	// error wrapping ErrCustomerLinked. The first link wins.
	LinkCustomer(ctx context.Context, l ledger.Link) (ledger.Link, error)
	// MoveCustomer relinks a customer on staff request, recording the move;
	// m.From is filled in from the stored link.
	MoveCustomer(ctx context.Context, m ledger.Move) (ledger.Move, error)
	// CustomerMoves returns a customer's staff moves, oldest first.
	CustomerMoves(ctx context.Context, customerID string) ([]ledger.Move, error)

	// AddClick stores one visit through a payee's referral link.
	AddClick(ctx context.Context, c ledger.Click) error
	// Clicks returns a visitor's clicks, oldest first.
	Clicks(ctx context.Context, visitorID string) ([]ledger.Click, error)

	// SetInstallCustomer assigns an install to a billing customer.
	// Assigning the same customer again is a no-op; another customer:
	// ErrInstallCustomer. ErrNotFound for an unknown install.
	SetInstallCustomer(ctx context.Context, installID, customerID string, at time.Time) (Install, error)
	// CustomerInstalls returns the ids of a customer's installs.
	CustomerInstalls(ctx context.Context, customerID string) ([]string, error)
	// PutPaymentAliases records provider ids that stand for a payment (a
	// Stripe charge or payment intent → the invoice's payment external id),
	// so a later refund naming the charge finds its payment.
	PutPaymentAliases(ctx context.Context, aliases map[string]string) error
	// PaymentAlias returns the payment external id an alias stands for.
	PaymentAlias(ctx context.Context, alias string) (string, bool, error)

	// SetPartnerBillingAccount sets (or, with "", clears) the partner's own
	// account id in billing, used by the self-purchase rule, and returns the
	// updated partner. ErrNotFound for an unknown code.
	SetPartnerBillingAccount(ctx context.Context, code, account string, at time.Time) (Partner, error)

	// ReportedIn reports whether the install sent a report (heartbeat,
	// summary or activation report) dated in [from, to). A report's date is
	// the install's own clock, but never later than when the registry
	// received it, so a late delivery from the outbox counts for the time
	// it was made and a clock running ahead gains nothing.
	ReportedIn(ctx context.Context, installID string, from, to time.Time) (bool, error)
}
