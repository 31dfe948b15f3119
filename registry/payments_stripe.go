package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/ledger"
)

// Stripe events, verified with stripe-go's webhook.ConstructEvent against
// the endpoint's signing secret (DATA/stripe.secret):
//
//   - invoice.paid records the invoice as a payment "stripe:<invoice id>"
//     and remembers its charges and payment intents, because a refund event
//     names the charge, not the invoice;
//   - charge.refunded records the newly refunded part of the charge
//     (amount_refunded is cumulative, so replays and out-of-order events
//     record nothing twice);
//   - charge.dispute.closed with status "lost" records a chargeback of the
//     disputed amount, "stripe:dispute:<dispute id>", which reverses the
//     commission like a refund. The dispute id makes it idempotent.
//
// Why a chargeback is recorded when the dispute is lost and not when it is
// created: a dispute the vendor wins gives the money back, and the ledger is
// append-only with no entry that would re-credit a reversed commission. A
// lost dispute is final. While the dispute is open the commission stays
// pending under the usual hold (disputes that outlast the hold are
// reversed after payout, which leaves a negative balance that is carried,
// as a late refund does). charge.dispute.created and the other dispute
// events are acknowledged with an explanation and record nothing.
//
// The customer is the Stripe customer id unless the invoice or its
// subscription carries metadata switchboard_customer_id; metadata
// switchboard_install_ids (comma-separated) names the installs, and
// switchboard_plan (monthly or annual) the plan, which is otherwise read
// from the billing period's length. Other event types are acknowledged
// and ignored.

// Stripe metadata keys billing may set on the subscription or invoice.
const (
	StripeMetaCustomer = "switchboard_customer_id"
	StripeMetaInstalls = "switchboard_install_ids"
	StripeMetaPlan     = "switchboard_plan"
)

// StripeResult answers a Stripe event.
type StripeResult struct {
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// Ignored explains why nothing was recorded (other event types, free invoices).
	Ignored string          `json:"ignored,omitempty"`
	Outcome *ledger.Outcome `json:"outcome,omitempty"`
}

// handleStripeWebhook is POST /v1/payments/stripe.
func (s *Server) handleStripeWebhook(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		if s.pay.stripeSecret == "" {
			return errorf(http.StatusServiceUnavailable, api.CodeUnavailable,
				"Stripe is not configured: put the endpoint's signing secret (whsec_…) in %s and restart the registry", s.pay.stripePath)
		}
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		ev, err := webhook.ConstructEventWithOptions(body, r.Header.Get("Stripe-Signature"), s.pay.stripeSecret, webhook.ConstructEventOptions{})
		switch {
		case errors.Is(err, webhook.ErrNotSigned), errors.Is(err, webhook.ErrInvalidHeader),
			errors.Is(err, webhook.ErrNoValidSignature), errors.Is(err, webhook.ErrTooOld):
			return errorf(http.StatusUnauthorized, api.CodeBadSignature, "Stripe signature: %v (check the secret in %s)", err, s.pay.stripePath)
		case err != nil:
			return errorf(http.StatusBadRequest, api.CodeMalformed, "Stripe event: %v", err)
		}
		res := StripeResult{EventID: ev.ID, Type: string(ev.Type)}
		if ev.Data == nil {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "Stripe event %s has no data object", ev.ID)
		}
		switch ev.Type {
		case "invoice.paid":
			out, ignored, err := s.pay.stripeInvoicePaid(r.Context(), ev)
			if err != nil {
				return err
			}
			res.Ignored, res.Outcome = ignored, out
		case "charge.refunded":
			out, ignored, err := s.pay.stripeChargeRefunded(r.Context(), ev)
			if err != nil {
				return err
			}
			res.Ignored, res.Outcome = ignored, out
		case "charge.dispute.closed":
			out, ignored, err := s.pay.stripeDisputeClosed(r.Context(), ev)
			if err != nil {
				return err
			}
			res.Ignored, res.Outcome = ignored, out
		case "charge.dispute.created", "charge.dispute.updated", "charge.dispute.funds_withdrawn", "charge.dispute.funds_reinstated":
			res.Ignored = "event type " + string(ev.Type) + ": a dispute reverses commission only when it is closed as lost (charge.dispute.closed)"
		default:
			res.Ignored = "event type " + string(ev.Type) + " is not used: send invoice.paid, charge.refunded and charge.dispute.closed"
		}
		status := http.StatusOK
		if res.Outcome != nil && !res.Outcome.Duplicate {
			status = http.StatusCreated
		}
		writeJSON(w, status, res)
		return nil
	}()
	if err != nil {
		s.fail(w, ledgerErr(err))
	}
}

func stripeTime(unix int64) time.Time { return time.Unix(unix, 0).UTC() }

// stripeInvoicePaid maps an invoice to a payment and records it.
func (ps *paymentsService) stripeInvoicePaid(ctx context.Context, ev stripe.Event) (*ledger.Outcome, string, error) {
	var inv stripe.Invoice
	if err := json.Unmarshal(ev.Data.Raw, &inv); err != nil {
		return nil, "", errorf(http.StatusBadRequest, api.CodeMalformed, "Stripe event %s: the invoice does not decode: %v", ev.ID, err)
	}
	if inv.ID == "" {
		return nil, "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "Stripe event %s: the invoice has no id", ev.ID)
	}
	if inv.AmountPaid <= 0 {
		return nil, "invoice " + inv.ID + " paid nothing (free or fully credited): no payment, no commission", nil
	}
	meta := map[string]string{}
	if inv.Parent != nil && inv.Parent.SubscriptionDetails != nil {
		for k, v := range inv.Parent.SubscriptionDetails.Metadata {
			meta[k] = v
		}
	}
	for k, v := range inv.Metadata { // the invoice's own metadata wins
		meta[k] = v
	}
	p := ledger.Payment{
		ExternalID: "stripe:" + inv.ID,
		CustomerID: strings.TrimSpace(meta[StripeMetaCustomer]),
		Amount:     inv.AmountPaid,
		Currency:   string(inv.Currency),
		PaidAt:     stripeTime(ev.Created),
		Payer:      ledger.Payer{Email: inv.CustomerEmail, Billing: ledger.BillingIdentity{Name: inv.CustomerName}},
	}
	if inv.Customer != nil {
		p.Payer.AccountID = inv.Customer.ID
		if p.CustomerID == "" {
			p.CustomerID = inv.Customer.ID
		}
	}
	for _, t := range inv.CustomerTaxIDs {
		if t != nil && t.Value != "" {
			p.Payer.Billing.VATID = t.Value
			break
		}
	}
	if inv.StatusTransitions != nil && inv.StatusTransitions.PaidAt > 0 {
		p.PaidAt = stripeTime(inv.StatusTransitions.PaidAt)
	}
	for id := range strings.SplitSeq(meta[StripeMetaInstalls], ",") {
		if id = strings.TrimSpace(id); id != "" {
			p.InstallIDs = append(p.InstallIDs, id)
		}
	}
	// The subscription line's period is the billing period; an invoice's
	// own period_start/end describe when items were added and are often
	// equal on a subscription's first invoice.
	var start, end int64
	if inv.Lines != nil {
		for _, ln := range inv.Lines.Data {
			if ln != nil && ln.Period != nil && ln.Period.End > ln.Period.Start && ln.Period.End-ln.Period.Start > end-start {
				start, end = ln.Period.Start, ln.Period.End
			}
		}
	}
	if end <= start && inv.PeriodEnd > inv.PeriodStart {
		start, end = inv.PeriodStart, inv.PeriodEnd
	}
	if end <= start {
		return nil, "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "Stripe invoice %s has no billing period (no line with a period): commission needs one", inv.ID)
	}
	p.PeriodStart, p.PeriodEnd = stripeTime(start), stripeTime(end)
	switch plan := strings.ToLower(strings.TrimSpace(meta[StripeMetaPlan])); plan {
	case "":
		p.Plan = ledger.PlanMonthly
		if p.PeriodEnd.Sub(p.PeriodStart) >= 300*24*time.Hour {
			p.Plan = ledger.PlanAnnual
		}
	case string(ledger.PlanMonthly), string(ledger.PlanAnnual):
		p.Plan = ledger.Plan(plan)
	default:
		return nil, "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "Stripe invoice %s: metadata %s=%q must be monthly or annual", inv.ID, StripeMetaPlan, plan)
	}
	// Remember the charges first: a refund arriving right after the
	// payment must find it.
	aliases := map[string]string{}
	if inv.Payments != nil {
		for _, ip := range inv.Payments.Data {
			if ip == nil || ip.Payment == nil {
				continue
			}
			if ip.Payment.Charge != nil && ip.Payment.Charge.ID != "" {
				aliases["stripe:"+ip.Payment.Charge.ID] = p.ExternalID
			}
			if ip.Payment.PaymentIntent != nil && ip.Payment.PaymentIntent.ID != "" {
				aliases["stripe:"+ip.Payment.PaymentIntent.ID] = p.ExternalID
			}
		}
	}
	out, err := ps.recordPayment(ctx, p)
	if err != nil {
		return nil, "", err
	}
	if err := ps.s.store.PutPaymentAliases(ctx, aliases); err != nil {
		return nil, "", fmt.Errorf("remember the charges of Stripe invoice %s: %w", inv.ID, err)
	}
	return &out, "", nil
}

// stripeChargeRefunded records the part of a charge's cumulative refunds
// the ledger has not seen yet.
func (ps *paymentsService) stripeChargeRefunded(ctx context.Context, ev stripe.Event) (*ledger.Outcome, string, error) {
	var ch stripe.Charge
	if err := json.Unmarshal(ev.Data.Raw, &ch); err != nil {
		return nil, "", errorf(http.StatusBadRequest, api.CodeMalformed, "Stripe event %s: the charge does not decode: %v", ev.ID, err)
	}
	if ch.ID == "" || ch.AmountRefunded <= 0 {
		return nil, "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "Stripe event %s: charge %q has no refunded amount", ev.ID, ch.ID)
	}
	paymentID, err := ps.stripePaymentOf(ctx, ch.ID, ch.PaymentIntent)
	if err != nil {
		return nil, "", err
	}
	// One refund computation at a time: two events of the same charge must
	// not both see the same "refunded so far".
	ps.stripeMu.Lock()
	defer ps.stripeMu.Unlock()
	sums, err := ps.refundedSoFar(ctx, paymentID)
	if err != nil {
		return nil, "", err
	}
	delta := ch.AmountRefunded - sums.refunds
	if delta <= 0 {
		return nil, fmt.Sprintf("charge %s: %d refunded in all, already recorded", ch.ID, ch.AmountRefunded), nil
	}
	if left := sums.paid - sums.refunds - sums.chargebacks; delta > left {
		if left <= 0 {
			return nil, fmt.Sprintf("charge %s: payment %s is already refunded or charged back in full", ch.ID, paymentID), nil
		}
		delta = left // a chargeback took the rest already
	}
	out, err := ps.recordRefund(ctx, ledger.Refund{
		ExternalID: "stripe:" + ch.ID + ":refunded:" + strconv.FormatInt(ch.AmountRefunded, 10),
		PaymentID:  paymentID, Amount: delta, Currency: string(ch.Currency), Kind: ledger.RefundKindRefund,
		At: stripeTime(ev.Created),
	})
	if err != nil {
		return nil, "", err
	}
	return &out, "", nil
}

// stripePaymentOf finds the ledger payment a charge (or its payment
// intent) paid, from the aliases invoice.paid stored.
func (ps *paymentsService) stripePaymentOf(ctx context.Context, chargeID string, pi *stripe.PaymentIntent) (string, error) {
	var keys []string
	if chargeID != "" {
		keys = append(keys, "stripe:"+chargeID)
	}
	if pi != nil && pi.ID != "" {
		keys = append(keys, "stripe:"+pi.ID)
	}
	for _, k := range keys {
		id, ok, err := ps.s.store.PaymentAlias(ctx, k)
		if err != nil {
			return "", err
		}
		if ok {
			return id, nil
		}
	}
	return "", fmt.Errorf("charge %s of Stripe: no invoice.paid seen for it yet: %w (Stripe retries the event)", chargeID, ledger.ErrUnknownPayment)
}

// refundSums is what the ledger holds for one payment: the amount paid and
// what refunds and chargebacks took back so far.
type refundSums struct{ paid, refunds, chargebacks int64 }

func (ps *paymentsService) refundedSoFar(ctx context.Context, paymentID string) (refundSums, error) {
	var s refundSums
	for e, err := range ps.s.store.LedgerEntries(ctx, ledger.Filter{PaymentID: paymentID}) {
		if err != nil {
			return s, err
		}
		switch {
		case e.Payment != nil && e.Level == 1:
			s.paid = e.Payment.Amount
		case e.Kind == ledger.KindRefund && e.Reason == ledger.ReasonChargeback:
			s.chargebacks += e.Amount
		case e.Kind == ledger.KindRefund:
			s.refunds += e.Amount
		}
	}
	return s, nil
}

// stripeDisputeClosed records a lost dispute as a chargeback of the
// disputed amount (see the package comment above for why only then).
func (ps *paymentsService) stripeDisputeClosed(ctx context.Context, ev stripe.Event) (*ledger.Outcome, string, error) {
	var dp stripe.Dispute
	if err := json.Unmarshal(ev.Data.Raw, &dp); err != nil {
		return nil, "", errorf(http.StatusBadRequest, api.CodeMalformed, "Stripe event %s: the dispute does not decode: %v", ev.ID, err)
	}
	if dp.ID == "" || dp.Charge == nil || dp.Charge.ID == "" {
		return nil, "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "Stripe event %s: the dispute has no id or no charge", ev.ID)
	}
	if dp.Status != stripe.DisputeStatusLost {
		return nil, fmt.Sprintf("dispute %s closed as %q: only a lost dispute reverses commission", dp.ID, dp.Status), nil
	}
	if dp.Amount <= 0 {
		return nil, "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "Stripe event %s: dispute %s has no disputed amount", ev.ID, dp.ID)
	}
	paymentID, err := ps.stripePaymentOf(ctx, dp.Charge.ID, dp.PaymentIntent)
	if err != nil {
		return nil, "", err
	}
	ps.stripeMu.Lock()
	defer ps.stripeMu.Unlock()
	r := ledger.Refund{
		ExternalID: "stripe:dispute:" + dp.ID, PaymentID: paymentID, Amount: dp.Amount,
		Currency: string(dp.Currency), Kind: ledger.RefundKindChargeback, At: stripeTime(ev.Created),
	}
	sums, err := ps.refundedSoFar(ctx, paymentID)
	if err != nil {
		return nil, "", err
	}
	// A replay must find the first recording (same amount) as a duplicate,
	// so the cap below applies to new disputes only.
	if _, amount, ok := ps.led.RefundOf(r.ExternalID); ok {
		r.Amount = amount
	} else {
		left := sums.paid - sums.refunds - sums.chargebacks
		if left <= 0 {
			return nil, fmt.Sprintf("dispute %s: payment %s is already refunded or charged back in full", dp.ID, paymentID), nil
		}
		r.Amount = min(r.Amount, left) // the part refunded before the dispute was already reversed
	}
	out, err := ps.recordRefund(ctx, r)
	if err != nil {
		return nil, "", err
	}
	return &out, "", nil
}
