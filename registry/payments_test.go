package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stripe/stripe-go/v85"
	"github.com/stripe/stripe-go/v85/webhook"

	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

const stripeSecret = "whsec_test_0123456789abcdef"

// payEnv is an env with the payment webhook secret and a Stripe secret.
func newPayEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t, func(c *registry.Config) {
		if err := os.WriteFile(filepath.Join(c.DataDir, registry.StripeSecretFile), []byte(stripeSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	})
	raw, err := os.ReadFile(filepath.Join(e.data, registry.PaymentSecretFile))
	if err != nil {
		t.Fatal(err)
	}
	return e, strings.TrimSpace(string(raw))
}

// post sends body with headers and returns status and answer.
func (e *env) post(path string, body []byte, headers map[string]string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (e *env) webhook(secret string, ev adminapi.WebhookEvent) (int, []byte) {
	body := mustJSON(e.t, ev)
	return e.post(adminapi.PathPaymentWebhook, body, map[string]string{adminapi.PaymentSignatureHeader: registry.SignPayment(secret, body, e.clock.Now())})
}

// mustBalance runs the ledger check and fails on any discrepancy.
func (e *env) mustBalance() adminapi.CheckResult {
	e.t.Helper()
	res, err := e.admin.CheckLedger(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	if !res.Balanced || len(res.Discrepancies) > 0 {
		e.t.Fatalf("ledger does not balance: %+v", res.Discrepancies)
	}
	return res
}

func balanceOf(res adminapi.CheckResult, payee, cur string) ledger.Balance {
	for _, b := range res.Balances {
		if b.Payee == payee && b.Currency == cur {
			return b
		}
	}
	return ledger.Balance{}
}

func payment(id, customer string, installs []string, amount int64, paid time.Time) ledger.Payment {
	return ledger.Payment{ExternalID: id, CustomerID: customer, InstallIDs: installs, Amount: amount, Currency: "EUR",
		PeriodStart: paid.Add(-24 * time.Hour), PeriodEnd: paid.Add(29 * 24 * time.Hour), Plan: ledger.PlanMonthly, PaidAt: paid,
		Payer: ledger.Payer{Email: "boss@client.example", Billing: ledger.BillingIdentity{Name: "Client GmbH"}}}
}

func TestPaymentWebhookSignatures(t *testing.T) {
	e, secret := newPayEnv(t)
	p := e.partner(store.TierPartner, true)
	in := e.newInstall(p.Code)
	now := e.clock.Now()
	if status, _, raw := in.send(report(1, "pbx1", now)); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, raw)
	}
	ev := adminapi.WebhookEvent{Type: adminapi.EventPayment, Payment: ptr(payment("inv-1", "cust-1", []string{in.id}, 10000, now))}
	body := mustJSON(t, ev)

	// Unsigned, tampered, stale, wrong secret: 401 and nothing recorded.
	if status, raw := e.post(adminapi.PathPaymentWebhook, body, nil); status != 401 || errCode(t, raw) != api.CodeBadSignature {
		t.Fatalf("unsigned: %d %s", status, raw)
	}
	sig := registry.SignPayment(secret, body, now)
	tampered := bytes.Replace(body, []byte(`"amount":10000`), []byte(`"amount":90000`), 1)
	if bytes.Equal(tampered, body) {
		t.Fatal("tampering did not change the body")
	}
	if status, raw := e.post(adminapi.PathPaymentWebhook, tampered, map[string]string{adminapi.PaymentSignatureHeader: sig}); status != 401 {
		t.Fatalf("tampered: %d %s", status, raw)
	}
	stale := registry.SignPayment(secret, body, now.Add(-10*time.Minute))
	if status, raw := e.post(adminapi.PathPaymentWebhook, body, map[string]string{adminapi.PaymentSignatureHeader: stale}); status != 401 || !strings.Contains(string(raw), "registry clock") {
		t.Fatalf("stale: %d %s", status, raw)
	}
	if status, raw := e.webhook("not-the-secret-at-all", ev); status != 401 {
		t.Fatalf("wrong secret: %d %s", status, raw)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 0 {
		t.Fatalf("refused webhooks recorded money: %+v", b)
	}

	// Signed: recorded once, 20% for the partner, the install now belongs to cust-1.
	status, raw := e.webhook(secret, ev)
	var out ledger.Outcome
	if status != 201 || json.Unmarshal(raw, &out) != nil || out.Duplicate || len(out.Entries) != 1 || out.Entries[0].Kind != ledger.KindCommission || out.Entries[0].Amount != 2000 {
		t.Fatalf("signed payment: %d %s", status, raw)
	}
	status, raw = e.webhook(secret, ev)
	if status != 200 || json.Unmarshal(raw, &out) != nil || !out.Duplicate {
		t.Fatalf("repeated payment: %d %s", status, raw)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 2000 {
		t.Fatalf("balance after duplicate: %+v", b)
	}
	cv, err := e.admin.Customer(context.Background(), "cust-1")
	if err != nil || !cv.Linked || cv.Link.PayeeCode != p.Code || cv.Link.Source != ledger.LinkLicence || len(cv.InstallIDs) != 1 {
		t.Fatalf("customer view %+v %v", cv, err)
	}
	// Same id, other amount: 409; a wrong value: 422; a body that is not
	// the event JSON: 400.
	other := ev
	other.Payment = ptr(payment("inv-1", "cust-1", nil, 5000, now))
	if status, raw := e.webhook(secret, other); status != 409 {
		t.Fatalf("conflicting payment: %d %s", status, raw)
	}
	bad := ev
	bad.Payment = ptr(payment("inv-2", "cust-1", nil, -5, now))
	if status, raw := e.webhook(secret, bad); status != 422 || errCode(t, raw) != api.CodeInvalid {
		t.Fatalf("negative amount: %d %s", status, raw)
	}
	notJSON := []byte(`{"type":"payment","payment":{"amount":"lots"}}`)
	if status, raw := e.post(adminapi.PathPaymentWebhook, notJSON, map[string]string{adminapi.PaymentSignatureHeader: registry.SignPayment(secret, notJSON, e.clock.Now())}); status != 400 || errCode(t, raw) != api.CodeMalformed {
		t.Fatalf("malformed event: %d %s", status, raw)
	}
	twoBodies := ev
	twoBodies.Refund = &ledger.Refund{ExternalID: "rf-9", PaymentID: "inv-1", Amount: 1, At: now}
	if status, raw := e.webhook(secret, twoBodies); status != 422 || errCode(t, raw) != api.CodeInvalid {
		t.Fatalf("event with a payment and a refund: %d %s", status, raw)
	}
	// Refund of half: half the commission reversed.
	status, raw = e.webhook(secret, adminapi.WebhookEvent{Type: adminapi.EventRefund, Refund: &ledger.Refund{ExternalID: "rf-1", PaymentID: "inv-1", Amount: 5000, At: now}})
	if status != 201 {
		t.Fatalf("refund: %d %s", status, raw)
	}
	if status, raw := e.webhook(secret, adminapi.WebhookEvent{Type: adminapi.EventRefund, Refund: &ledger.Refund{ExternalID: "rf-2", PaymentID: "nope", Amount: 5, At: now}}); status != 409 {
		t.Fatalf("refund of unknown payment: %d %s", status, raw)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 2000 || b.Reversed != 1000 || b.Balance != 1000 {
		t.Fatalf("balance after refund: %+v", b)
	}
}

func TestInstallGoneDarkEarnsNothing(t *testing.T) {
	e, secret := newPayEnv(t)
	p := e.partner(store.TierPartner, true)
	in := e.newInstall(p.Code)
	now := e.clock.Now()
	// The install reported long before this billing period and never since.
	if status, _, raw := in.send(report(1, "pbx1", now)); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, raw)
	}
	e.clock.Add(60 * 24 * time.Hour)
	later := e.clock.Now()
	status, raw := e.webhook(secret, adminapi.WebhookEvent{Type: adminapi.EventPayment, Payment: ptr(payment("inv-dark", "cust-dark", []string{in.id}, 10000, later))})
	var out ledger.Outcome
	if status != 201 || json.Unmarshal(raw, &out) != nil || len(out.Entries) != 1 || out.Entries[0].Reason != ledger.ReasonNoHeartbeat {
		t.Fatalf("payment for a dark install: %d %s", status, raw)
	}
	// A late heartbeat dated in the period (delivered from the outbox) counts.
	if status, _, raw := in.send(report(2, "pbx1", later.Add(-time.Hour))); status != 200 {
		t.Fatalf("late heartbeat: %d %s", status, raw)
	}
	status, raw = e.webhook(secret, adminapi.WebhookEvent{Type: adminapi.EventPayment, Payment: ptr(payment("inv-alive", "cust-dark", nil, 10000, later))})
	if status != 201 || json.Unmarshal(raw, &out) != nil || out.Entries[0].Kind != ledger.KindCommission {
		t.Fatalf("payment after the heartbeat: %d %s", status, raw)
	}
	e.mustBalance()
}

func TestCSVImport(t *testing.T) {
	e, _ := newPayEnv(t)
	p := e.partner(store.TierPartner, true)
	in := e.newInstall(p.Code)
	now := e.clock.Now()
	if status, _, raw := in.send(report(1, "pbx1", now)); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, raw)
	}
	ctx := context.Background()
	day := now.Format(time.DateOnly)
	end := now.Add(30 * 24 * time.Hour).Format(time.DateOnly)
	start := now.Add(-24 * time.Hour).Format(time.DateOnly)
	for _, c := range []struct{ name, csv, want string }{
		{"empty", "", "empty"},
		{"unknown column", "external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at,colour\n", `unknown column "colour"`},
		{"missing column", "external_id,customer_id,amount,currency,period_start,period_end,plan\n", `required column "paid_at"`},
		{"two amounts", "external_id,customer_id,amount,amount_minor,currency,period_start,period_end,plan,paid_at\n", "exactly one of the columns amount_minor"},
		{"bad lines", "external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\n" +
			"ok-1,cust-9,49.00,EUR," + start + "," + end + ",monthly," + day + "\n" +
			"bad-1,cust-9,49.001,EUR," + start + "," + end + ",weekly," + day + "\n" +
			"bad-2,cust-9,12.00,EURO,2026-13-01," + end + ",monthly," + day + "\n",
			"line 3, column plan"},
		{"field count", "external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\nx,y\n", "line 2: wrong number of fields"},
	} {
		_, err := e.admin.ImportPayments(ctx, []byte(c.csv))
		var ae *client.APIError
		if !asAPIError(err, &ae) || ae.Status != 422 || ae.Code != api.CodeInvalid || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%s: want 422 invalid mentioning %q, got %v", c.name, c.want, err)
		}
	}
	// A file that is not readable CSV is malformed: 400.
	_, err := e.admin.ImportPayments(ctx, []byte("external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\n\"x\"y,1,2,3,4,5,6,7\n"))
	var ae *client.APIError
	if !asAPIError(err, &ae) || ae.Status != 400 || ae.Code != api.CodeMalformed {
		t.Errorf("stray quote: want 400 malformed_body, got %v", err)
	}
	// The bad-lines file names every problem with line and column.
	_, err = e.admin.ImportPayments(ctx, []byte("external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\n"+
		"bad-1,cust-9,49.001,EUR,"+start+","+end+",weekly,"+day+"\nbad-2,cust-9,12.00,EURO,2026-13-01,"+end+",monthly,"+day+"\n"))
	for _, want := range []string{"line 2, column amount", "line 2, column plan", "line 3, column currency", "line 3, column period_start"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
	// All or nothing: the good line of a bad file was not recorded.
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 0 {
		t.Fatalf("a refused import recorded money: %+v", b)
	}
	good := "External_ID,customer_id,install_ids,amount_minor,currency,period_start,period_end,plan,paid_at,billing_name\n" +
		"inv-a,cust-9," + in.id + ",4900,eur," + start + "," + end + ",monthly," + day + ",Client GmbH\n" +
		"inv-b,cust-9,,10000,EUR," + start + "," + end + ",annual," + now.Format(time.RFC3339) + ",Client GmbH\n"
	res, err := e.admin.ImportPayments(ctx, []byte(good))
	if err != nil || res.Rows != 2 || res.Recorded != 2 || res.Duplicates != 0 {
		t.Fatalf("import: %+v %v", res, err)
	}
	res, err = e.admin.ImportPayments(ctx, []byte(good))
	if err != nil || res.Recorded != 0 || res.Duplicates != 2 {
		t.Fatalf("import again: %+v %v", res, err)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 980+2000 {
		t.Fatalf("balance after import: %+v", b)
	}

	// Refunds and chargebacks by import: a type column, payment_id and
	// refunded_at; a refund may name a payment of the same file.
	typed := "type,external_id,customer_id,payment_id,amount_minor,currency,period_start,period_end,plan,paid_at,refunded_at\n"
	for _, c := range []struct{ name, csv, want string }{
		{"bad type", typed + "gift,g-1,cust-9,,100,EUR,,,,,\n", `line 2, column type: "gift"`},
		{"refund without payment", typed + "refund,re-x,,,100,EUR,,,,," + day + "\n", "line 2, column payment_id"},
		{"refund with payment fields", typed + "refund,re-x,cust-9,inv-a,100,EUR,,,monthly,," + day + "\n", "line 2, column customer_id"},
		{"payment with refund fields", typed + "payment,inv-z,cust-9,inv-a,100,EUR," + start + "," + end + ",monthly," + day + "," + day + "\n", "line 2, column type"},
		{"refund beyond payment", typed + "refund,re-x,,inv-a,5000,EUR,,,,," + day + "\n", "more than the 49.00 paid"},
	} {
		_, err := e.admin.ImportPayments(ctx, []byte(c.csv))
		if !asAPIError(err, &ae) || ae.Status != 422 || !strings.Contains(ae.Message, c.want) {
			t.Errorf("%s: want 422 mentioning %q, got %v", c.name, c.want, err)
		}
	}
	mixed := typed +
		"payment,inv-c,cust-9,,2000,EUR," + start + "," + end + ",monthly," + day + ",\n" +
		"refund,re-c,,inv-c,1000,,,,,," + day + "\n" +
		"chargeback,cb-a,,inv-a,4900,EUR,,,,," + day + "\n"
	res, err = e.admin.ImportPayments(ctx, []byte(mixed))
	if err != nil || res.Rows != 3 || res.Recorded != 3 || len(res.RefundOutcomes) != 2 {
		t.Fatalf("mixed import: %+v %v", res, err)
	}
	if cb := res.RefundOutcomes[1].Entries; len(cb) != 2 || cb[1].Reason != ledger.ReasonChargeback || cb[1].Amount != 980 {
		t.Fatalf("chargeback entries: %+v", cb)
	}
	res, err = e.admin.ImportPayments(ctx, []byte(mixed))
	if err != nil || res.Recorded != 0 || res.Duplicates != 3 {
		t.Fatalf("mixed import again: %+v %v", res, err)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 980+2000+400 || b.Reversed != 980+200 {
		t.Fatalf("balance after refunds: %+v", b)
	}
}

func asAPIError(err error, ae **client.APIError) bool {
	if err == nil {
		return false
	}
	e, ok := err.(*client.APIError)
	*ae = e
	return ok
}

func ptr[T any](v T) *T { return &v }

// stripeEvent builds and signs a Stripe event around obj.
func stripeEvent(t *testing.T, id, typ string, obj any, secret string) ([]byte, string) {
	t.Helper()
	raw := mustJSON(t, obj)
	body := mustJSON(t, map[string]any{"id": id, "object": "event", "api_version": stripe.APIVersion, "created": time.Now().Unix(),
		"type": typ, "data": map[string]any{"object": json.RawMessage(raw)}})
	sp := webhook.GenerateTestSignedPayload(&webhook.UnsignedPayload{Payload: body, Secret: secret})
	return body, sp.Header
}

func TestStripeEvents(t *testing.T) {
	e, _ := newPayEnv(t)
	p := e.partner(store.TierPartner, true)
	in := e.newInstall(p.Code)
	if status, _, raw := in.send(report(1, "pbx1", e.clock.Now())); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, raw)
	}
	start := time.Now().Add(-24 * time.Hour).Unix()
	invoice := map[string]any{
		"id": "in_1", "object": "invoice", "amount_paid": 5000, "currency": "eur", "customer": "cus_1",
		"customer_email": "boss@client.example", "customer_name": "Client GmbH",
		"metadata":           map[string]string{"switchboard_install_ids": in.id},
		"status_transitions": map[string]any{"paid_at": time.Now().Unix()},
		"lines": map[string]any{"object": "list", "data": []any{map[string]any{"id": "il_1", "object": "line_item",
			"period": map[string]any{"start": start, "end": start + 30*86400}}}},
		"payments": map[string]any{"object": "list", "data": []any{map[string]any{"id": "inpay_1", "object": "invoice_payment",
			"payment": map[string]any{"type": "payment_intent", "payment_intent": "pi_1"}}}},
	}
	body, header := stripeEvent(t, "evt_1", "invoice.paid", invoice, stripeSecret)
	// Bad signatures first.
	if status, raw := e.post(adminapi.PathStripeWebhook, body, nil); status != 401 {
		t.Fatalf("unsigned Stripe event: %d %s", status, raw)
	}
	_, wrong := stripeEvent(t, "evt_1", "invoice.paid", invoice, "whsec_wrong_secret_000000")
	if status, raw := e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": wrong}); status != 401 {
		t.Fatalf("wrongly signed Stripe event: %d %s", status, raw)
	}
	tampered := bytes.Replace(body, []byte(`"amount_paid":5000`), []byte(`"amount_paid":9000`), 1)
	if status, raw := e.post(adminapi.PathStripeWebhook, tampered, map[string]string{"Stripe-Signature": header}); status != 401 {
		t.Fatalf("tampered Stripe event: %d %s", status, raw)
	}
	var res registry.StripeResult
	status, raw := e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header})
	if status != 201 || json.Unmarshal(raw, &res) != nil || res.Outcome == nil || res.Outcome.ID != "stripe:in_1" || res.Outcome.Entries[0].Amount != 1000 {
		t.Fatalf("invoice.paid: %d %s", status, raw)
	}
	status, raw = e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header})
	if status != 200 || json.Unmarshal(raw, &res) != nil || !res.Outcome.Duplicate {
		t.Fatalf("invoice.paid again: %d %s", status, raw)
	}
	// Stripe's customer id becomes the customer; the install is theirs now.
	if cv, err := e.admin.Customer(context.Background(), "cus_1"); err != nil || !cv.Linked || len(cv.InstallIDs) != 1 {
		t.Fatalf("customer cus_1: %+v %v", cv, err)
	}
	charge := func(refunded int64) map[string]any {
		return map[string]any{"id": "ch_1", "object": "charge", "amount": 5000, "amount_refunded": refunded, "currency": "eur", "payment_intent": "pi_1", "refunded": refunded == 5000}
	}
	body, header = stripeEvent(t, "evt_2", "charge.refunded", charge(2500), stripeSecret)
	status, raw = e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header})
	if status != 201 || json.Unmarshal(raw, &res) != nil || len(res.Outcome.Entries) != 2 || res.Outcome.Entries[1].Amount != 500 {
		t.Fatalf("charge.refunded half: %d %s", status, raw)
	}
	status, raw = e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header})
	if status != 200 || json.Unmarshal(raw, &res) != nil || res.Ignored == "" {
		t.Fatalf("charge.refunded replayed: %d %s", status, raw)
	}
	body, header = stripeEvent(t, "evt_3", "charge.refunded", charge(5000), stripeSecret)
	if status, raw := e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header}); status != 201 {
		t.Fatalf("charge.refunded in full: %d %s", status, raw)
	}
	unknown := charge(100)
	unknown["id"], unknown["payment_intent"] = "ch_other", "pi_other"
	body, header = stripeEvent(t, "evt_4", "charge.refunded", unknown, stripeSecret)
	if status, raw := e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header}); status != 409 {
		t.Fatalf("refund of an unknown charge: %d %s", status, raw)
	}
	body, header = stripeEvent(t, "evt_5", "customer.created", map[string]any{"id": "cus_2", "object": "customer"}, stripeSecret)
	if status, raw := e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header}); status != 200 || !strings.Contains(string(raw), "ignored") {
		t.Fatalf("other event: %d %s", status, raw)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 1000 || b.Reversed != 1000 || b.Balance != 0 {
		t.Fatalf("balance after full refund: %+v", b)
	}
}

// A lost dispute is a chargeback: it reverses commission like a refund,
// once per dispute id, capped at what earlier refunds left; disputes that
// are only opened or are won record nothing.
func TestStripeDisputeChargeback(t *testing.T) {
	e, _ := newPayEnv(t)
	p := e.partner(store.TierPartner, true)
	in := e.newInstall(p.Code)
	if status, _, raw := in.send(report(1, "pbx1", e.clock.Now())); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, raw)
	}
	send := func(id, typ string, obj any) (int, registry.StripeResult, []byte) {
		t.Helper()
		body, header := stripeEvent(t, id, typ, obj, stripeSecret)
		status, raw := e.post(adminapi.PathStripeWebhook, body, map[string]string{"Stripe-Signature": header})
		var res registry.StripeResult
		if status < 300 {
			if err := json.Unmarshal(raw, &res); err != nil {
				t.Fatalf("%s: %v in %s", typ, err, raw)
			}
		}
		return status, res, raw
	}
	dispute := func(id, status string, amount int64) map[string]any {
		return map[string]any{"id": id, "object": "dispute", "amount": amount, "currency": "eur", "charge": "ch_2",
			"payment_intent": "pi_2", "status": status, "reason": "fraudulent"}
	}
	// Before the invoice: the lost dispute cannot be placed yet (409, Stripe retries).
	if status, _, raw := send("evt_d0", "charge.dispute.closed", dispute("dp_1", "lost", 5000)); status != 409 {
		t.Fatalf("dispute of an unknown charge: %d %s", status, raw)
	}
	start := time.Now().Add(-24 * time.Hour).Unix()
	invoice := map[string]any{
		"id": "in_2", "object": "invoice", "amount_paid": 5000, "currency": "eur", "customer": "cus_2",
		"metadata":           map[string]string{"switchboard_install_ids": in.id},
		"status_transitions": map[string]any{"paid_at": time.Now().Unix()},
		"lines": map[string]any{"object": "list", "data": []any{map[string]any{"id": "il_2", "object": "line_item",
			"period": map[string]any{"start": start, "end": start + 30*86400}}}},
		"payments": map[string]any{"object": "list", "data": []any{map[string]any{"id": "inpay_2", "object": "invoice_payment",
			"payment": map[string]any{"type": "payment_intent", "payment_intent": "pi_2"}}}},
	}
	if status, _, raw := send("evt_i2", "invoice.paid", invoice); status != 201 {
		t.Fatalf("invoice.paid: %d %s", status, raw)
	}
	for _, c := range []struct {
		id, typ string
		obj     map[string]any
	}{
		{"evt_d1", "charge.dispute.created", dispute("dp_1", "needs_response", 5000)},
		{"evt_d2", "charge.dispute.funds_withdrawn", dispute("dp_1", "under_review", 5000)},
		{"evt_d3", "charge.dispute.closed", dispute("dp_0", "won", 5000)},
	} {
		if status, res, raw := send(c.id, c.typ, c.obj); status != 200 || res.Ignored == "" || res.Outcome != nil {
			t.Fatalf("%s (%s): %d %s, want 200 ignored", c.typ, c.obj["status"], status, raw)
		}
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 1000 || b.Reversed != 0 {
		t.Fatalf("balance while disputes are open or won: %+v", b)
	}
	// A partial refund first, then the dispute is lost for the full charge:
	// only the 40.00 not refunded yet is charged back.
	charge := map[string]any{"id": "ch_2", "object": "charge", "amount": 5000, "amount_refunded": 1000, "currency": "eur", "payment_intent": "pi_2"}
	if status, _, raw := send("evt_r1", "charge.refunded", charge); status != 201 {
		t.Fatalf("charge.refunded: %d %s", status, raw)
	}
	status, res, raw := send("evt_d4", "charge.dispute.closed", dispute("dp_1", "lost", 5000))
	if status != 201 || res.Outcome == nil || res.Outcome.ID != "stripe:dispute:dp_1" || len(res.Outcome.Entries) != 2 {
		t.Fatalf("lost dispute: %d %s", status, raw)
	}
	if cb, rev := res.Outcome.Entries[0], res.Outcome.Entries[1]; cb.Kind != ledger.KindRefund || cb.Reason != ledger.ReasonChargeback || cb.Amount != 4000 ||
		rev.Kind != ledger.KindReversal || rev.Reason != ledger.ReasonChargeback || rev.Amount != 800 || rev.Payee != p.Code {
		t.Fatalf("chargeback entries: %+v", res.Outcome.Entries)
	}
	// Stripe redelivers: nothing twice.
	status, res, raw = send("evt_d4", "charge.dispute.closed", dispute("dp_1", "lost", 5000))
	if status != 200 || res.Outcome == nil || !res.Outcome.Duplicate {
		t.Fatalf("lost dispute again: %d %s", status, raw)
	}
	// A second lost dispute of the same charge finds nothing left.
	if status, res, raw := send("evt_d5", "charge.dispute.closed", dispute("dp_2", "lost", 100)); status != 200 || res.Ignored == "" {
		t.Fatalf("dispute of a fully reversed charge: %d %s", status, raw)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 1000 || b.Reversed != 1000 || b.Balance != 0 {
		t.Fatalf("balance after the chargeback: %+v", b)
	}
	// A dispute without a charge is refused with what is missing.
	if status, _, raw := send("evt_d6", "charge.dispute.closed", map[string]any{"id": "dp_3", "object": "dispute", "status": "lost", "amount": 5}); status != 422 {
		t.Fatalf("dispute without a charge: %d %s", status, raw)
	}
}

// Seed rule "no commission on a partner's own purchases — same account":
// the partner's billing account, set at creation or later, excludes
// payments from that account with the reason stored; other accounts earn.
func TestSelfPurchaseSameBillingAccount(t *testing.T) {
	e, secret := newPayEnv(t)
	ctx := context.Background()
	// A personal e-mail domain and another billing name, so only the
	// account can tell it is the partner paying.
	p, err := e.admin.CreatePartner(ctx, adminapi.CreatePartnerRequest{Name: "Acme Integrations", Email: "ops@acme.example",
		Tier: store.TierPartner, Approve: true, BillingAccount: " cus_acme "})
	if err != nil || p.BillingAccount != "cus_acme" {
		t.Fatalf("create with billing account: %+v %v", p, err)
	}
	in := e.newInstall(p.Code)
	now := e.clock.Now()
	if status, _, raw := in.send(report(1, "pbx1", now)); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, raw)
	}
	pay := func(id, account string) ledger.Entry {
		t.Helper()
		pm := payment(id, "cust-own", []string{in.id}, 10000, now)
		pm.Payer = ledger.Payer{AccountID: account, Email: "someone@gmail.com", Billing: ledger.BillingIdentity{Name: "J. Smith"}}
		status, raw := e.webhook(secret, adminapi.WebhookEvent{Type: adminapi.EventPayment, Payment: &pm})
		var out ledger.Outcome
		if status != 201 || json.Unmarshal(raw, &out) != nil || len(out.Entries) == 0 {
			t.Fatalf("payment %s: %d %s", id, status, raw)
		}
		return out.Entries[0]
	}
	if en := pay("inv-own-1", "cus_acme"); en.Kind != ledger.KindExcluded || en.Reason != ledger.ReasonSelfAccount || en.Payee != p.Code {
		t.Fatalf("payment from the partner's own account: %+v, want excluded self_purchase_account", en)
	}
	if en := pay("inv-own-2", "cus_client"); en.Kind != ledger.KindCommission || en.Amount != 2000 {
		t.Fatalf("payment from another account: %+v, want 20.00 commission", en)
	}
	// Staff change the account: the old one earns from now on, the new one does not.
	p, err = e.admin.UpdatePartner(ctx, p.Code, adminapi.UpdatePartnerRequest{BillingAccount: ptr("cus_client")})
	if err != nil || p.BillingAccount != "cus_client" {
		t.Fatalf("update billing account: %+v %v", p, err)
	}
	if en := pay("inv-own-3", "cus_client"); en.Reason != ledger.ReasonSelfAccount {
		t.Fatalf("payment from the new own account: %+v", en)
	}
	if en := pay("inv-own-4", "cus_acme"); en.Kind != ledger.KindCommission {
		t.Fatalf("payment from the former own account: %+v", en)
	}
	if got, err := e.admin.GetPartner(ctx, p.Code); err != nil || got.BillingAccount != "cus_client" {
		t.Fatalf("stored partner: %+v %v", got, err)
	}
	// Clearing it, and hostile input.
	if p, err = e.admin.UpdatePartner(ctx, p.Code, adminapi.UpdatePartnerRequest{BillingAccount: ptr("")}); err != nil || p.BillingAccount != "" {
		t.Fatalf("clear billing account: %+v %v", p, err)
	}
	var ae *client.APIError
	for name, req := range map[string]adminapi.UpdatePartnerRequest{
		"nothing":  {},
		"control":  {BillingAccount: ptr("cus\x00x")},
		"too long": {BillingAccount: ptr(strings.Repeat("a", 201))},
	} {
		if _, err := e.admin.UpdatePartner(ctx, p.Code, req); !asAPIError(err, &ae) || ae.Status != 422 {
			t.Errorf("update %s: want 422, got %v", name, err)
		}
	}
	if _, err := e.admin.UpdatePartner(ctx, "K7QM-4XJD-R", adminapi.UpdatePartnerRequest{BillingAccount: ptr("x")}); !asAPIError(err, &ae) || ae.Status != 404 {
		t.Errorf("update of an unknown partner: want 404, got %v", err)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Earned != 4000 {
		t.Fatalf("balance: %+v, want two commissions of 20.00", b)
	}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func visit(t *testing.T, b *http.Client, url string) string {
	t.Helper()
	resp, err := b.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	for _, c := range resp.Cookies() {
		if c.Name == registry.ReferralCookie {
			if c.MaxAge != 90*24*3600 || !c.HttpOnly {
				t.Fatalf("cookie %+v", c)
			}
			return c.Value
		}
	}
	return ""
}

func TestLastClickAttribution(t *testing.T) {
	e, secret := newPayEnv(t)
	ctx := context.Background()
	r1 := e.partner(store.TierReferral, true)
	r2, err := e.admin.CreatePartner(ctx, adminapi.CreatePartnerRequest{Name: "Second referral", Email: "r2@elsewhere.example", Tier: store.TierReferral})
	if err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	v1 := visit(t, b, e.url+"/r/"+r1.Code)
	if v1 == "" {
		t.Fatal("no referral cookie set by /r/CODE")
	}
	e.clock.Add(10 * 24 * time.Hour)
	if v := visit(t, b, e.url+"/download?ref="+r2.Code); v != v1 {
		t.Fatalf("second click got visitor %q, want the same %q", v, v1)
	}
	if v := visit(t, b, e.url+"/download"); v != "" {
		t.Fatal("a plain download visit set the referral cookie")
	}
	e.clock.Add(80 * 24 * time.Hour) // 80 days after the latest click, 90 after the first
	res, err := e.admin.CustomerSignup(ctx, adminapi.SignupEvent{CustomerID: "web-1", VisitorID: v1})
	if err != nil || !res.Linked || res.Link.PayeeCode != r2.Code || res.Link.Source != ledger.LinkClick {
		t.Fatalf("sign-up within 90 days: %+v %v", res, err)
	}
	// Once linked, stays linked: a later click elsewhere changes nothing.
	visit(t, b, e.url+"/r/"+r1.Code)
	if res, err := e.admin.CustomerSignup(ctx, adminapi.SignupEvent{CustomerID: "web-1", VisitorID: v1}); err != nil || res.Link.PayeeCode != r2.Code {
		t.Fatalf("second sign-up: %+v %v", res, err)
	}
	// Another visitor clicks, then signs up after 91 days: not attributed.
	b2 := browser(t)
	v2 := visit(t, b2, e.url+"/r/"+r1.Code)
	e.clock.Add(91 * 24 * time.Hour)
	body := mustJSON(t, adminapi.WebhookEvent{Type: adminapi.EventSignup, Signup: &adminapi.SignupEvent{CustomerID: "web-2", VisitorID: v2}})
	status, raw := e.post(adminapi.PathPaymentWebhook, body, map[string]string{adminapi.PaymentSignatureHeader: registry.SignPayment(secret, body, e.clock.Now())})
	if status != 200 || !strings.Contains(string(raw), `"linked":false`) || !strings.Contains(string(raw), "90 days") {
		t.Fatalf("sign-up after 90 days: %d %s", status, raw)
	}
	if _, err := e.admin.CustomerSignup(ctx, adminapi.SignupEvent{CustomerID: "web-3", VisitorID: "forged"}); err == nil {
		t.Fatal("a forged visitor id was accepted")
	}
	// The attributed customer pays: the referral earns 10%, pseudonymised on the statement.
	now := e.clock.Now()
	if status, raw := e.webhook(secret, adminapi.WebhookEvent{Type: adminapi.EventPayment, Payment: ptr(payment("web-inv-1", "web-1", nil, 10000, now))}); status != 201 {
		t.Fatalf("payment: %d %s", status, raw)
	}
	st, err := e.admin.Statement(ctx, r2.Code, now.Format("2006-01"))
	if err != nil || len(st.Lines) != 1 || st.Lines[0].Amount != 1000 || strings.Contains(st.Lines[0].Customer, "Client") || !strings.HasPrefix(st.Lines[0].Customer, "customer-") {
		t.Fatalf("referral statement: %+v %v", st, err)
	}
	// Staff move: recorded with who and why.
	cv, err := e.admin.MoveCustomer(ctx, "web-1", adminapi.MoveCustomerRequest{To: r1.Code, By: "staff@vendor", Why: "ticket 42"})
	if err != nil || cv.Link.PayeeCode != r1.Code || len(cv.Moves) != 1 || cv.Moves[0].From != r2.Code || cv.Moves[0].Reason != "ticket 42" {
		t.Fatalf("move: %+v %v", cv, err)
	}
	if _, err := e.admin.MoveCustomer(ctx, "web-1", adminapi.MoveCustomerRequest{To: r2.Code}); err == nil {
		t.Fatal("a move without by/why was accepted")
	}
	e.mustBalance()
}

func TestPayoutRunTwiceAndMarkPaid(t *testing.T) {
	e, secret := newPayEnv(t)
	ctx := context.Background()
	p, err := e.admin.CreatePartner(ctx, adminapi.CreatePartnerRequest{Name: "Payee Ltd", Email: "ops@payee.example", Tier: store.TierPartner, Approve: true,
		Payout: store.PayoutDetails{Method: "paypal", PayPalEmail: "pay@payee.example"}})
	if err != nil {
		t.Fatal(err)
	}
	in := e.newInstall(p.Code)
	now := e.clock.Now()
	m := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -3, 0)
	paid := m.Add(24 * time.Hour)
	// Heartbeat dated in the period, received now.
	if status, _, raw := in.send(report(1, "pbx1", paid.Add(24*time.Hour))); status != 200 {
		t.Fatalf("heartbeat: %d %s", status, raw)
	}
	if status, raw := e.webhook(secret, adminapi.WebhookEvent{Type: adminapi.EventPayment, Payment: ptr(payment("big-1", "cust-big", []string{in.id}, 150000, paid))}); status != 201 {
		t.Fatalf("payment: %d %s", status, raw)
	}
	month := m.AddDate(0, 1, 0).Format("2006-01")
	res, err := e.admin.RunPayouts(ctx, month)
	if err != nil || res.Batch.Existing || len(res.Batch.Lines) != 1 || res.Batch.Lines[0].Amount != 30000 || len(res.PayPalFiles) != 1 ||
		!strings.HasPrefix(res.PayPalFiles[0].Content, "pay@payee.example,300.00,EUR,") {
		t.Fatalf("run: %+v %v", res, err)
	}
	again, err := e.admin.RunPayouts(ctx, month)
	if err != nil || !again.Batch.Existing || len(again.Batch.Lines) != 1 || again.Batch.Lines[0].ItemID != res.Batch.Lines[0].ItemID {
		t.Fatalf("second run: %+v %v", again, err)
	}
	if b := balanceOf(e.mustBalance(), p.Code, "EUR"); b.Paid != 30000 || b.Balance != 0 {
		t.Fatalf("paid twice? %+v", b)
	}
	if _, err := e.admin.RunPayouts(ctx, "2999-01"); err == nil {
		t.Fatal("a month not over ran")
	}
	marked, err := e.admin.MarkPaid(ctx, res.Batch.ID, []ledger.PayoutResult{{ItemID: res.Batch.Lines[0].ItemID, Status: ledger.PayoutPaid, Ref: "TX1"}})
	if err != nil || marked.Batch.Lines[0].Status != ledger.ItemPaid || len(marked.PayPalFiles) != 0 {
		t.Fatalf("mark paid: %+v %v", marked, err)
	}
	if _, err := e.admin.MarkPaid(ctx, "payout-1999-01", []ledger.PayoutResult{{ItemID: "x", Status: ledger.PayoutPaid}}); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown batch: %v", err)
	}
	st, err := e.admin.Statement(ctx, p.Code, paid.Format("2006-01"))
	if err != nil || len(st.Lines) != 1 || st.Lines[0].Customer != "Client GmbH" {
		t.Fatalf("partner statement: %+v %v", st, err)
	}
	csv, err := e.admin.StatementCSV(ctx, p.Code, paid.Format("2006-01"))
	if err != nil || !strings.Contains(string(csv), "big-1") || !strings.Contains(string(csv), "closing_balance") {
		t.Fatalf("csv statement: %s %v", csv, err)
	}
	e.mustBalance()
}

// TestLedgerSurvivesRestart records money, restarts the registry on the
// same data directory and finds the same books.
func TestLedgerSurvivesRestart(t *testing.T) {
	data := t.TempDir()
	setup, err := registry.Prepare(data)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Now().UTC().Truncate(time.Second)}
	start := func() (*client.Client, string, func()) {
		st, err := boltstore.Open(filepath.Join(data, registry.StoreFile), boltstore.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cfg := registry.DefaultConfig()
		cfg.DataDir, cfg.Now = data, clk.Now
		srv, err := registry.New(cfg, st, setup.Keys, setup.AdminToken, nil)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		c, err := client.New(hs.URL, setup.AdminToken)
		if err != nil {
			t.Fatal(err)
		}
		return c, hs.URL, func() {
			hs.Close()
			if err := st.Close(); err != nil {
				t.Error(err)
			}
		}
	}
	c, url, stop := start()
	ref, err := c.CreatePartner(context.Background(), adminapi.CreatePartnerRequest{Name: "Ref", Email: "r@ref.example", Tier: store.TierReferral})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LinkCustomer(context.Background(), "cust-r", adminapi.LinkCustomerRequest{PayeeCode: ref.Code}); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(filepath.Join(data, registry.PaymentSecretFile))
	secret := strings.TrimSpace(string(raw))
	send := func(url string) int {
		body := mustJSON(t, adminapi.WebhookEvent{Type: adminapi.EventPayment, Payment: ptr(payment("p-1", "cust-r", nil, 20000, clk.Now()))})
		req, _ := http.NewRequest("POST", url+adminapi.PathPaymentWebhook, bytes.NewReader(body))
		req.Header.Set(adminapi.PaymentSignatureHeader, registry.SignPayment(secret, body, clk.Now()))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if status := send(url); status != 201 {
		t.Fatalf("payment: %d", status)
	}
	before, err := c.CheckLedger(context.Background())
	if err != nil || !before.Balanced {
		t.Fatalf("check: %+v %v", before, err)
	}
	stop()
	c, url, stop = start()
	defer stop()
	after, err := c.CheckLedger(context.Background())
	if err != nil || !after.Balanced || fmt.Sprint(after.Balances) != fmt.Sprint(before.Balances) || len(after.Balances) != 1 || after.Balances[0].Earned != 2000 {
		t.Fatalf("after restart: %+v (before %+v) %v", after, before, err)
	}
	if status := send(url); status != 200 {
		t.Fatalf("the same payment after a restart: %d, want 200 (duplicate)", status)
	}
	if cv, err := c.Customer(context.Background(), "cust-r"); err != nil || cv.Link == nil || cv.Link.Source != ledger.LinkManual {
		t.Fatalf("link after restart: %+v %v", cv, err)
	}
}
