package ledger

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
)

// Errors callers test with errors.Is. The HTTP layer maps ErrInvalid to 422,
// ErrConflict to 409 and ErrUnknownPayment to 409 (retry once the payment
// has arrived).
var (
	// ErrInvalid wraps every validation failure of an input.
	ErrInvalid = errors.New("invalid input")
	// ErrConflict: the same external id was already recorded with other
	// content (a different amount, currency or customer).
	ErrConflict = errors.New("conflicts with what is already recorded")
	// ErrUnknownPayment: a refund names a payment the ledger has not seen.
	ErrUnknownPayment = errors.New("unknown payment")
	// ErrUnknownPayee: the payee directory has no such code.
	ErrUnknownPayee = errors.New("unknown payee")
	// ErrUnknownBatch: MarkPaid names a batch no run produced.
	ErrUnknownBatch = errors.New("unknown payout batch")
	// ErrAlreadyLinked: the customer is linked to another payee; only an
	// admin move changes that.
	ErrAlreadyLinked = errors.New("customer is already linked to another payee")
)

// Tier of a payee; the values are the registry's partner tiers.
type Tier string

// Tiers.
const (
	TierPartner  Tier = "partner"
	TierReferral Tier = "referral"
)

// PayeeStatus mirrors the registry's partner status. Only approved payees
// earn and get paid.
type PayeeStatus string

// Payee statuses.
const (
	PayeeApproved  PayeeStatus = "approved"
	PayeePending   PayeeStatus = "pending"
	PayeeSuspended PayeeStatus = "suspended"
)

// Plan is the billing plan a payment pays for.
type Plan string

// Plans.
const (
	PlanMonthly Plan = "monthly"
	PlanAnnual  Plan = "annual"
)

// BillingIdentity is who an invoice is addressed to. Two identities are the
// same when their VAT ids match, or their names match after folding case,
// spaces and punctuation (see Ledger.sameBilling).
type BillingIdentity struct {
	Name  string `json:"name,omitempty"`
	VATID string `json:"vat_id,omitempty"`
}

// Payer says who paid: used to refuse commission on a payee's own purchase.
type Payer struct {
	AccountID string          `json:"account_id,omitempty"`
	Email     string          `json:"email,omitempty"`
	Billing   BillingIdentity `json:"billing"`
}

// Payment is one actual customer payment reported by billing (webhook, CSV
// import or Stripe invoice.paid). Amount is in integer minor units of
// Currency; ExternalID makes it idempotent.
type Payment struct {
	ExternalID  string    `json:"external_id"`
	CustomerID  string    `json:"customer_id"`
	InstallIDs  []string  `json:"install_ids,omitempty"`
	Amount      int64     `json:"amount"`
	Currency    string    `json:"currency"`
	PeriodStart time.Time `json:"period_start"`
	PeriodEnd   time.Time `json:"period_end"`
	Plan        Plan      `json:"plan"`
	PaidAt      time.Time `json:"paid_at"`
	Payer       Payer     `json:"payer"`
}

// RefundKind tells a refund from a chargeback; both reverse commission.
type RefundKind string

// Refund kinds.
const (
	RefundKindRefund     RefundKind = "refund"
	RefundKindChargeback RefundKind = "chargeback"
)

// Refund is money returned to the customer (or taken back by the card
// network) for a payment. Partial refunds reverse commission in proportion.
type Refund struct {
	ExternalID string     `json:"external_id"`
	PaymentID  string     `json:"payment_id"` // ExternalID of the payment
	Amount     int64      `json:"amount"`
	Currency   string     `json:"currency,omitempty"` // optional; must match the payment when given
	Kind       RefundKind `json:"kind,omitempty"`     // refund (default) or chargeback
	At         time.Time  `json:"at"`
}

// Payee is a partner or referral as the ledger needs it: who they are (for
// the self-purchase rule), who brought them (second tier) and how they are
// paid.
type Payee struct {
	Code        string          `json:"code"`
	Name        string          `json:"name,omitempty"`
	Tier        Tier            `json:"tier"`
	ParentCode  string          `json:"parent_code,omitempty"`
	Status      PayeeStatus     `json:"status"`
	AccountID   string          `json:"account_id,omitempty"`
	Email       string          `json:"email,omitempty"`
	EmailDomain string          `json:"email_domain,omitempty"` // defaults to Email's domain
	Billing     BillingIdentity `json:"billing"`
	// PayPalEmail empty means the payee is paid manually, once a quarter.
	PayPalEmail string `json:"paypal_email,omitempty"`
	// TaxDetailsOnFile: a tax id (SSN/EIN/VAT) is on file, so payouts above
	// the yearly tax-reporting threshold may go out.
	TaxDetailsOnFile bool   `json:"tax_details_on_file,omitempty"`
	Country          string `json:"country,omitempty"`
}

// domain returns the payee's e-mail domain for the self-purchase rule.
func (p Payee) domain() string {
	if p.EmailDomain != "" {
		return strings.ToLower(strings.TrimPrefix(strings.TrimSpace(p.EmailDomain), "@"))
	}
	return emailDomain(p.Email)
}

func emailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(strings.TrimSpace(email[at+1:]))
}

// normName folds a billing name so "ACME  GmbH." and "acme gmbh" match.
func normName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			if space && b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
			b.WriteRune(unicode.ToLower(r))
		case unicode.IsSpace(r):
			space = true
		}
	}
	return b.String()
}

// normVAT strips what people type around a VAT id ("DE 123.456-789").
func normVAT(s string) string {
	var b strings.Builder
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			b.WriteRune(unicode.ToUpper(r))
		}
	}
	return b.String()
}

const maxIDLen = 200

func checkID(what, id string) error {
	if id == "" {
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalid, what, maxIDLen)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == unicode.ReplacementChar {
			return fmt.Errorf("%w: %s %q contains control or invalid characters", ErrInvalid, what, id)
		}
	}
	return nil
}

// normalize validates p and returns it with the currency upper-cased and
// times in UTC. The error says which field is wrong and how to fix it.
func (p Payment) normalize() (Payment, error) {
	if err := checkID("payment external_id", p.ExternalID); err != nil {
		return p, err
	}
	if err := checkID("customer_id", p.CustomerID); err != nil {
		return p, fmt.Errorf("payment %s: %w", p.ExternalID, err)
	}
	for _, id := range p.InstallIDs {
		if err := checkID("install id", id); err != nil {
			return p, fmt.Errorf("payment %s: %w", p.ExternalID, err)
		}
	}
	cur, err := ParseCurrency(p.Currency)
	if err != nil {
		return p, fmt.Errorf("%w: payment %s: %v", ErrInvalid, p.ExternalID, err)
	}
	p.Currency = cur
	if p.Amount <= 0 || p.Amount > MaxAmount {
		return p, fmt.Errorf("%w: payment %s: amount %d must be a positive number of minor units (cents) up to %d", ErrInvalid, p.ExternalID, p.Amount, MaxAmount)
	}
	if p.Plan != PlanMonthly && p.Plan != PlanAnnual {
		return p, fmt.Errorf("%w: payment %s: plan %q must be monthly or annual", ErrInvalid, p.ExternalID, p.Plan)
	}
	if p.PaidAt.IsZero() {
		return p, fmt.Errorf("%w: payment %s: paid_at is missing", ErrInvalid, p.ExternalID)
	}
	if p.PeriodStart.IsZero() || p.PeriodEnd.IsZero() || !p.PeriodEnd.After(p.PeriodStart) {
		return p, fmt.Errorf("%w: payment %s: billing period %s..%s must have a start before its end", ErrInvalid, p.ExternalID,
			p.PeriodStart.Format(time.RFC3339), p.PeriodEnd.Format(time.RFC3339))
	}
	p.PaidAt = p.PaidAt.UTC()
	p.PeriodStart = p.PeriodStart.UTC()
	p.PeriodEnd = p.PeriodEnd.UTC()
	return p, nil
}

func (r Refund) normalize() (Refund, error) {
	if err := checkID("refund external_id", r.ExternalID); err != nil {
		return r, err
	}
	if err := checkID("payment_id", r.PaymentID); err != nil {
		return r, fmt.Errorf("refund %s: %w", r.ExternalID, err)
	}
	if r.Amount <= 0 || r.Amount > MaxAmount {
		return r, fmt.Errorf("%w: refund %s: amount %d must be a positive number of minor units", ErrInvalid, r.ExternalID, r.Amount)
	}
	if r.Currency != "" {
		cur, err := ParseCurrency(r.Currency)
		if err != nil {
			return r, fmt.Errorf("%w: refund %s: %v", ErrInvalid, r.ExternalID, err)
		}
		r.Currency = cur
	}
	switch r.Kind {
	case "":
		r.Kind = RefundKindRefund
	case RefundKindRefund, RefundKindChargeback:
	default:
		return r, fmt.Errorf("%w: refund %s: kind %q must be refund or chargeback", ErrInvalid, r.ExternalID, r.Kind)
	}
	if r.At.IsZero() {
		return r, fmt.Errorf("%w: refund %s: at (time of the refund) is missing", ErrInvalid, r.ExternalID)
	}
	r.At = r.At.UTC()
	return r, nil
}
