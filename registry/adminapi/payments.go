package adminapi

import (
	"time"

	"github.com/switchboard-dev/switchboard/registry/ledger"
)

// Paths of the money side. The two webhook paths are public and
// authenticated by their signatures; the others need the admin token.
const (
	PathPaymentWebhook = "/v1/payments/webhook"
	PathStripeWebhook  = "/v1/payments/stripe"

	PathPaymentImport  = "/v1/admin/payments/import"
	PathSignups        = "/v1/admin/signups"
	PathCustomer       = "/v1/admin/customers/{customer}"
	PathCustomerLink   = "/v1/admin/customers/{customer}/link"
	PathCustomerMove   = "/v1/admin/customers/{customer}/move"
	PathPayoutRuns     = "/v1/admin/payouts/runs"
	PathPayoutBatch    = "/v1/admin/payouts/{batch}"
	PathPayoutResults  = "/v1/admin/payouts/{batch}/results"
	PathLedgerCheck    = "/v1/admin/ledger/check"
	PathLedgerBalances = "/v1/admin/ledger/balances"
	PathStatement      = "/v1/admin/partners/{code}/statement"
)

// PaymentSignatureHeader carries the signature of our own payment webhook:
// "t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>".
const PaymentSignatureHeader = "Switchboard-Payment-Signature"

// Webhook event types.
const (
	EventPayment = "payment"
	EventRefund  = "refund"
	EventSignup  = "signup"
)

// WebhookEvent is the body of POST /v1/payments/webhook: exactly one of
// Payment, Refund or Signup, as Type says.
type WebhookEvent struct {
	Type    string          `json:"type"`
	Payment *ledger.Payment `json:"payment,omitempty"`
	Refund  *ledger.Refund  `json:"refund,omitempty"`
	Signup  *SignupEvent    `json:"signup,omitempty"`
}

// SignupEvent records a web sign-up: the billing site read the visitor id
// from the registry's referral cookie and names the new customer.
type SignupEvent struct {
	CustomerID string    `json:"customer_id"`
	VisitorID  string    `json:"visitor_id"`
	At         time.Time `json:"at,omitzero"` // default: now
}

// SignupResult says whether a sign-up was attributed, and to whom.
type SignupResult struct {
	CustomerID string       `json:"customer_id"`
	Linked     bool         `json:"linked"`
	Link       *ledger.Link `json:"link,omitempty"`
	// Note explains an unattributed sign-up (no click, clicks too old).
	Note string `json:"note,omitempty"`
}

// ImportResult answers a CSV import. Rows counts payment and refund lines;
// Outcomes are the payment lines' and RefundOutcomes the refund and
// chargeback lines', each in file order.
type ImportResult struct {
	Rows           int              `json:"rows"`
	Recorded       int              `json:"recorded"`
	Duplicates     int              `json:"duplicates"`
	Outcomes       []ledger.Outcome `json:"outcomes"`
	RefundOutcomes []ledger.Outcome `json:"refund_outcomes"`
}

// LinkCustomerRequest is the body of POST /v1/admin/customers/{customer}/link.
type LinkCustomerRequest struct {
	PayeeCode string `json:"payee_code"`
	// InstallIDs are assigned to the customer (liveness for commission).
	InstallIDs []string `json:"install_ids,omitempty"`
}

// MoveCustomerRequest is the body of POST /v1/admin/customers/{customer}/move.
type MoveCustomerRequest struct {
	To  string `json:"to"`
	By  string `json:"by"`
	Why string `json:"why"`
}

// CustomerView is what the registry knows of a billing customer.
type CustomerView struct {
	CustomerID string        `json:"customer_id"`
	Linked     bool          `json:"linked"`
	Link       *ledger.Link  `json:"link,omitempty"`
	Moves      []ledger.Move `json:"moves"`
	InstallIDs []string      `json:"install_ids"`
}

// RunRequest is the body of POST /v1/admin/payouts/runs.
type RunRequest struct {
	Month string `json:"month"` // YYYY-MM
}

// RunResult is a payout batch with the files the back office needs:
// PayPal Payouts Web files (one currency each) and the manual-payment
// report (CSV text).
type RunResult struct {
	Batch        ledger.Batch `json:"batch"`
	PayPalFiles  []FileText   `json:"paypal_files"`
	ManualReport FileText     `json:"manual_report"`
}

// FileText is a generated file: its suggested name and content.
type FileText struct {
	Name    string `json:"name"`
	Content string `json:"content"`
}

// ResultsRequest is the body of POST /v1/admin/payouts/{batch}/results.
type ResultsRequest struct {
	Results []ledger.PayoutResult `json:"results"`
}

// CheckResult answers GET /v1/admin/ledger/check.
type CheckResult struct {
	Balanced      bool                 `json:"balanced"`
	Discrepancies []ledger.Discrepancy `json:"discrepancies"`
	Balances      []ledger.Balance     `json:"balances"`
}
