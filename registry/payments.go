package registry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Payments in: the registry's own signed webhook, the Stripe webhook
// (payments_stripe.go) and the CSV import (payments_csv.go) all end in the
// ledger (registry/ledger), which decides commission and keeps the
// append-only journal in the store. This file wires the ledger to the
// store: the journal, the payee directory (partners), the customer links
// and install liveness from the heartbeats the store holds.

// paymentsService owns the ledger of one registry.
type paymentsService struct {
	s            *Server
	led          *ledger.Ledger
	secret       []byte // payment webhook HMAC key
	stripeSecret string // empty: Stripe endpoint not configured
	stripePath   string
	window       time.Duration // referral click window
	stripeMu     sync.Mutex    // serialises Stripe refund computations
}

func newPaymentsService(s *Server) (*paymentsService, error) {
	cfg := s.cfg
	lc, _, err := loadLedgerConfig(cfg)
	if err != nil {
		return nil, err
	}
	secretPath := cfg.Payments.WebhookSecretFile
	if secretPath == "" {
		secretPath = filepath.Join(cfg.DataDir, PaymentSecretFile)
	}
	secret, err := loadSecret(secretPath, "payment webhook secret", true)
	if err != nil {
		return nil, err
	}
	stripePath := cfg.Payments.StripeSecretFile
	explicit := stripePath != ""
	if !explicit {
		stripePath = filepath.Join(cfg.DataDir, StripeSecretFile)
	}
	stripeSecret, err := loadSecret(stripePath, "Stripe webhook secret", false)
	if err != nil {
		return nil, err
	}
	if explicit && stripeSecret == "" {
		return nil, fmt.Errorf("payments.stripe_secret_file %s does not exist: put the endpoint's signing secret (whsec_…) from the Stripe dashboard in it", stripePath)
	}
	ps := &paymentsService{s: s, secret: []byte(secret), stripeSecret: stripeSecret, stripePath: stripePath, window: lc.ClickWindow()}
	led, err := ledger.Open(context.Background(), journal{s.store}, ledger.Options{
		Config:   lc,
		Payees:   payeeDirectory{s.store},
		Links:    ps,
		Liveness: liveness{s.store},
		Now:      cfg.Now,
	})
	if err != nil {
		return nil, fmt.Errorf("open the payments ledger: %w", err)
	}
	ps.led = led
	return ps, nil
}

// journal is the store's ledger journal as a ledger.Journal.
type journal struct{ st store.LedgerStore }

func (j journal) Append(ctx context.Context, entries []ledger.Entry) error {
	return j.st.AppendLedger(ctx, entries)
}

func (j journal) Entries(ctx context.Context, f ledger.Filter) iter.Seq2[ledger.Entry, error] {
	return j.st.LedgerEntries(ctx, f)
}

// payeeDirectory reads payees from the partners in the store.
type payeeDirectory struct{ st store.Store }

func (d payeeDirectory) Payee(ctx context.Context, code string) (ledger.Payee, error) {
	p, err := d.st.GetPartner(ctx, code)
	if store.IsNotFound(err) {
		return ledger.Payee{}, fmt.Errorf("payee %s: %w", code, ledger.ErrUnknownPayee)
	}
	if err != nil {
		return ledger.Payee{}, err
	}
	return payeeOf(p), nil
}

// payeeOf maps a partner to what the ledger needs. For the self-purchase
// rule the partner's billing account is its account, its name its billing
// identity and its tax id doubles as VAT id; a PayPal address means PayPal payouts, anything
// else is paid manually.
func payeeOf(p store.Partner) ledger.Payee {
	country := p.Payout.TaxCountry
	if country == "" {
		country = p.Listing.Country
	}
	paypal := ""
	if p.Payout.Method == "" || p.Payout.Method == "paypal" {
		paypal = p.Payout.PayPalEmail
	}
	return ledger.Payee{
		Code: p.Code, Name: p.Name, Tier: ledger.Tier(p.Tier), ParentCode: p.ParentCode,
		Status: ledger.PayeeStatus(p.Status), Email: p.Email, AccountID: p.BillingAccount,
		Billing:     ledger.BillingIdentity{Name: p.Name, VATID: p.Payout.TaxID},
		PayPalEmail: paypal, TaxDetailsOnFile: strings.TrimSpace(p.Payout.TaxID) != "", Country: country,
	}
}

// liveness answers from the heartbeats stored for the customer's installs.
type liveness struct{ st store.Store }

func (lv liveness) HeartbeatIn(ctx context.Context, customerID string, installIDs []string, from, to time.Time) (bool, error) {
	ids, err := lv.st.CustomerInstalls(ctx, customerID)
	if err != nil {
		return false, err
	}
	seen := map[string]bool{}
	for _, id := range append(ids, installIDs...) {
		if seen[id] {
			continue
		}
		seen[id] = true
		ok, err := lv.st.ReportedIn(ctx, id, from, to)
		if store.IsNotFound(err) {
			continue // an install the registry never saw proves nothing
		}
		if err != nil {
			return false, fmt.Errorf("heartbeats of install %s: %w", id, err)
		}
		if ok {
			return true, nil
		}
	}
	return false, nil
}

// LinkOf implements ledger.Linker: the stored link, or else the partner
// of the customer's earliest linked install, stored so it stays.
func (ps *paymentsService) LinkOf(ctx context.Context, customerID string) (ledger.Link, bool, error) {
	st := ps.s.store
	l, ok, err := st.CustomerLink(ctx, customerID)
	if err != nil || ok {
		return l, ok, err
	}
	ids, err := st.CustomerInstalls(ctx, customerID)
	if err != nil {
		return l, false, err
	}
	var best store.Install
	for _, id := range ids {
		in, err := st.GetInstall(ctx, id)
		if err != nil {
			return l, false, fmt.Errorf("install %s of customer %s: %w", id, customerID, err)
		}
		if in.Linked() && (best.ID == "" || in.LinkedAt.Before(best.LinkedAt)) {
			best = in
		}
	}
	if best.ID == "" {
		return l, false, nil
	}
	src := ledger.LinkLicence
	if best.LinkSource != "activation" {
		src = ledger.LinkManual // typed later on the server, or linked by staff
	}
	l, err = st.LinkCustomer(ctx, ledger.Link{CustomerID: customerID, PayeeCode: best.PartnerCode, Source: src, LinkedAt: best.LinkedAt})
	if errors.Is(err, store.ErrCustomerLinked) {
		return l, true, nil // linked meanwhile by another path: the first link stays
	}
	if err != nil {
		return l, false, err
	}
	ps.s.log.Info("customer linked from install", "customer", customerID, "payee", l.PayeeCode, "install", best.ID, "source", src)
	return l, true, nil
}

// ledgerErr maps ledger and store refusals to HTTP answers.
func ledgerErr(err error) error {
	var he *httpError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &he):
		return err
	case errors.Is(err, ledger.ErrInvalid):
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
	case errors.Is(err, ledger.ErrConflict), errors.Is(err, ledger.ErrUnknownPayment), errors.Is(err, ledger.ErrAlreadyLinked),
		errors.Is(err, store.ErrCustomerLinked), errors.Is(err, store.ErrInstallCustomer):
		return errorf(http.StatusConflict, api.CodeConflict, "%v", err)
	case errors.Is(err, ledger.ErrUnknownPayee), errors.Is(err, ledger.ErrUnknownBatch), errors.Is(err, store.ErrNotFound):
		return errorf(http.StatusNotFound, api.CodeNotFound, "%v", err)
	}
	return err
}

// checkRef validates an id that came from outside (customer, visitor,
// install): the same rule the ledger applies to its ids.
func checkRef(what, id string) error {
	if id == "" {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%s is empty", what)
	}
	if len(id) > 200 {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%s is longer than 200 bytes", what)
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%s %q contains control or invalid characters", what, id)
		}
	}
	return nil
}

// preparePayment resolves who paid: a payment may name the customer, its
// installs, or both. Named installs are assigned to the customer (this is
// how the registry learns which installs a billing customer owns); a
// payment naming only installs is for the customer they belong to, or,
// for an install not yet assigned, for the customer "install:<id>".
func (ps *paymentsService) preparePayment(ctx context.Context, p *ledger.Payment) error {
	if p.CustomerID == "" && len(p.InstallIDs) == 0 {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "payment %s names neither customer_id nor install_ids: give at least one", p.ExternalID)
	}
	if len(p.InstallIDs) > 100 {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "payment %s names %d installs; at most 100", p.ExternalID, len(p.InstallIDs))
	}
	st := ps.s.store
	installs := make([]store.Install, 0, len(p.InstallIDs))
	for _, id := range p.InstallIDs {
		if err := checkRef("install id", id); err != nil {
			return err
		}
		in, err := st.GetInstall(ctx, id)
		if store.IsNotFound(err) {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "payment %s: install %s is not known to this registry; check the id (switchboard registry installs list)", p.ExternalID, id)
		}
		if err != nil {
			return err
		}
		if p.CustomerID == "" && in.CustomerID != "" {
			p.CustomerID = in.CustomerID
		}
		installs = append(installs, in)
	}
	if p.CustomerID == "" {
		p.CustomerID = "install:" + p.InstallIDs[0]
	}
	if err := checkRef("customer_id", p.CustomerID); err != nil {
		return err
	}
	for _, in := range installs {
		if in.CustomerID == p.CustomerID {
			continue
		}
		if in.CustomerID != "" {
			return errorf(http.StatusConflict, api.CodeConflict, "payment %s: install %s belongs to customer %s, not %s", p.ExternalID, in.ID, in.CustomerID, p.CustomerID)
		}
		if _, err := st.SetInstallCustomer(ctx, in.ID, p.CustomerID, ps.s.now()); err != nil {
			return ledgerErr(err)
		}
	}
	return nil
}

// record records one payment (after preparePayment).
func (ps *paymentsService) recordPayment(ctx context.Context, p ledger.Payment) (ledger.Outcome, error) {
	if err := ps.preparePayment(ctx, &p); err != nil {
		return ledger.Outcome{}, err
	}
	out, err := ps.led.RecordPayment(ctx, p)
	if err != nil {
		return out, ledgerErr(err)
	}
	if !out.Duplicate {
		ps.s.log.Info("payment recorded", "id", out.ID, "customer", p.CustomerID, "amount", p.Amount, "currency", p.Currency, "entries", len(out.Entries))
	}
	return out, nil
}

func (ps *paymentsService) recordRefund(ctx context.Context, r ledger.Refund) (ledger.Outcome, error) {
	out, err := ps.led.RecordRefund(ctx, r)
	if err != nil {
		return out, ledgerErr(err)
	}
	if !out.Duplicate {
		ps.s.log.Info("refund recorded", "id", out.ID, "payment", r.PaymentID, "amount", r.Amount, "entries", len(out.Entries))
	}
	return out, nil
}

// SignPayment returns the Switchboard-Payment-Signature header value for
// body at t: what billing sends with each webhook call.
func SignPayment(secret string, body []byte, t time.Time) string {
	return "t=" + strconv.FormatInt(t.Unix(), 10) + ",v1=" + hex.EncodeToString(paymentMAC([]byte(secret), t.Unix(), body))
}

func paymentMAC(secret []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// verifyPaymentSignature checks the webhook signature header against body.
// Several v1 values may be sent while a secret is being rotated.
func (ps *paymentsService) verifyPaymentSignature(header string, body []byte) error {
	bad := func(format string, a ...any) error {
		return errorf(http.StatusUnauthorized, api.CodeBadSignature, format, a...)
	}
	if header == "" {
		return bad("missing %s header: sign the body with HMAC-SHA256 over \"<unix time>.<body>\" using the secret in DATA/%s", adminapi.PaymentSignatureHeader, PaymentSecretFile)
	}
	var ts int64 = -1
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return bad("%s header is malformed: want t=<unix>,v1=<hex>", adminapi.PaymentSignatureHeader)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad("%s header: t=%q is not a unix time", adminapi.PaymentSignatureHeader, v)
			}
			ts = n
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if ts < 0 || len(sigs) == 0 {
		return bad("%s header needs t=<unix> and at least one v1=<hex HMAC>", adminapi.PaymentSignatureHeader)
	}
	now := ps.s.now()
	tol := ps.s.cfg.Payments.WebhookTolerance.D()
	if d := now.Sub(time.Unix(ts, 0)); d > tol || d < -tol {
		return bad("signature timestamp %s is more than %s from the registry clock %s: sign with the current time (replays are refused)",
			time.Unix(ts, 0).UTC().Format(time.RFC3339), tol, now.UTC().Format(time.RFC3339))
	}
	want := paymentMAC(ps.secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(want, s) {
			return nil
		}
	}
	return bad("signature does not match the body: sign the exact bytes sent with the secret in DATA/%s", PaymentSecretFile)
}

// handlePaymentWebhook is POST /v1/payments/webhook.
func (s *Server) handlePaymentWebhook(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		if err := s.pay.verifyPaymentSignature(r.Header.Get(adminapi.PaymentSignatureHeader), body); err != nil {
			return err
		}
		var ev adminapi.WebhookEvent
		if err := decodeStrict(body, &ev); err != nil {
			return err
		}
		ctx := r.Context()
		n := 0
		for _, set := range []bool{ev.Payment != nil, ev.Refund != nil, ev.Signup != nil} {
			if set {
				n++
			}
		}
		if n != 1 {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "an event carries exactly one of payment, refund or signup; this one has %d", n)
		}
		switch {
		case ev.Type == adminapi.EventPayment && ev.Payment != nil:
			out, err := s.pay.recordPayment(ctx, *ev.Payment)
			if err != nil {
				return err
			}
			writeJSON(w, outcomeStatus(out), out)
		case ev.Type == adminapi.EventRefund && ev.Refund != nil:
			out, err := s.pay.recordRefund(ctx, *ev.Refund)
			if err != nil {
				return err
			}
			writeJSON(w, outcomeStatus(out), out)
		case ev.Type == adminapi.EventSignup && ev.Signup != nil:
			res, err := s.pay.signup(ctx, *ev.Signup)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, res)
		default:
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "event type %q with this body: use type payment with \"payment\", refund with \"refund\" or signup with \"signup\"", ev.Type)
		}
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// outcomeStatus is 201 for something newly recorded, 200 for a repeat.
func outcomeStatus(o ledger.Outcome) int {
	if o.Duplicate {
		return http.StatusOK
	}
	return http.StatusCreated
}

// handlePaymentImport is POST /v1/admin/payments/import (text/csv body).
func (s *Server) handlePaymentImport(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		body, err := readLimited(w, r, maxImportBytes)
		if err != nil {
			return err
		}
		rows, err := parsePaymentsCSV(body)
		if err != nil {
			return err
		}
		ctx := r.Context()
		for i := range rows.payments {
			if err := s.pay.preparePayment(ctx, &rows.payments[i].Payment); err != nil {
				var he *httpError
				if errors.As(err, &he) {
					he.msg = fmt.Sprintf("nothing imported: line %d: %s", rows.payments[i].line, he.msg)
				}
				return err
			}
		}
		pays := make([]ledger.Payment, len(rows.payments))
		for i, p := range rows.payments {
			pays[i] = p.Payment
		}
		refs := make([]ledger.Refund, len(rows.refunds))
		for i, rf := range rows.refunds {
			refs[i] = rf.Refund
		}
		pouts, routs, err := s.pay.led.RecordBatch(ctx, pays, refs)
		if err != nil {
			return ledgerErr(fmt.Errorf("%w (payment N is the N-th payment line of the file, refund N the N-th refund or chargeback line)", err))
		}
		res := adminapi.ImportResult{Rows: len(pouts) + len(routs), Outcomes: pouts, RefundOutcomes: routs}
		for _, o := range append(pouts[:len(pouts):len(pouts)], routs...) {
			if o.Duplicate {
				res.Duplicates++
			} else {
				res.Recorded++
			}
		}
		s.log.Info("payments imported", "rows", res.Rows, "payments", len(pouts), "refunds", len(routs), "recorded", res.Recorded, "duplicates", res.Duplicates)
		writeJSON(w, http.StatusOK, res)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// handlePayoutRun is POST /v1/admin/payouts/runs.
func (s *Server) handlePayoutRun(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.RunRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		b, err := s.pay.led.Run(r.Context(), req.Month)
		if err != nil {
			return ledgerErr(err)
		}
		if b.Existing {
			return s.writeRun(w, r, http.StatusOK, b)
		}
		s.log.Info("payout run", "month", b.Month, "batch", b.ID, "lines", len(b.Lines), "carried", len(b.Carried))
		return s.writeRun(w, r, http.StatusCreated, b)
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// writeRun answers with batch b, its PayPal files and its manual report.
func (s *Server) writeRun(w http.ResponseWriter, r *http.Request, status int, b ledger.Batch) error {
	res, err := s.pay.runResult(r.Context(), b)
	if err != nil {
		return err
	}
	writeJSON(w, status, res)
	return nil
}

// runResult adds the PayPal files and the manual report to a batch.
func (ps *paymentsService) runResult(ctx context.Context, b ledger.Batch) (adminapi.RunResult, error) {
	res := adminapi.RunResult{Batch: b, PayPalFiles: []adminapi.FileText{}}
	note := "Switchboard commission " + b.Month
	for _, f := range b.PayPalFiles() {
		var sb strings.Builder
		if err := ledger.WritePayPalCSV(&sb, f, note); err != nil {
			return res, errorf(http.StatusConflict, api.CodeConflict, "%v", err)
		}
		res.PayPalFiles = append(res.PayPalFiles, adminapi.FileText{Name: f.Name, Content: sb.String()})
	}
	var sb strings.Builder
	if err := ps.led.ManualReport(ctx, &sb, b); err != nil {
		return res, err
	}
	res.ManualReport = adminapi.FileText{Name: b.ID + "-manual.csv", Content: sb.String()}
	return res, nil
}

// batchMonth reads the month out of a batch id (ledger.BatchID).
func batchMonth(id string) (string, error) {
	m, ok := strings.CutPrefix(id, "payout-")
	if !ok || ledger.BatchID(m) != id {
		return "", errorf(http.StatusNotFound, api.CodeNotFound, "payout batch %q: batch ids look like payout-2026-03", id)
	}
	return m, nil
}

// handlePayoutBatch is GET /v1/admin/payouts/{batch}.
func (s *Server) handlePayoutBatch(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		month, err := batchMonth(r.PathValue("batch"))
		if err != nil {
			return err
		}
		b, err := s.pay.led.Batch(r.Context(), month)
		if err != nil {
			return ledgerErr(err)
		}
		return s.writeRun(w, r, http.StatusOK, b)
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// handlePayoutResults is POST /v1/admin/payouts/{batch}/results.
func (s *Server) handlePayoutResults(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.ResultsRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		if len(req.Results) == 0 {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "no results: send at least one {item_id, status}")
		}
		b, err := s.pay.led.MarkPaid(r.Context(), r.PathValue("batch"), req.Results)
		if err != nil {
			return ledgerErr(err)
		}
		s.log.Info("payout results recorded", "batch", b.ID, "results", len(req.Results))
		return s.writeRun(w, r, http.StatusOK, b)
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// handleLedgerCheck is GET /v1/admin/ledger/check.
func (s *Server) handleLedgerCheck(w http.ResponseWriter, r *http.Request) {
	ds, err := s.pay.led.Check(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	if ds == nil {
		ds = []ledger.Discrepancy{}
	}
	writeJSON(w, http.StatusOK, adminapi.CheckResult{Balanced: len(ds) == 0, Discrepancies: ds, Balances: s.pay.led.Balances()})
}

// handleLedgerBalances is GET /v1/admin/ledger/balances.
func (s *Server) handleLedgerBalances(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.pay.led.Balances())
}

// handleStatement is GET /v1/admin/partners/{code}/statement?month=YYYY-MM
// [&format=csv]. Partners see customer names, referrals pseudonyms.
func (s *Server) handleStatement(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		code, err := parseCode(r.PathValue("code"))
		if err != nil {
			return err
		}
		q := r.URL.Query()
		if err := checkQuery(q, "month", "format"); err != nil {
			return err
		}
		st, err := s.pay.led.Statement(r.Context(), code, q.Get("month"))
		if err != nil {
			return ledgerErr(err)
		}
		switch q.Get("format") {
		case "", "json":
			writeJSON(w, http.StatusOK, st)
		case "csv":
			var sb strings.Builder
			if err := st.WriteCSV(&sb); err != nil {
				return err
			}
			w.Header().Set("Content-Type", "text/csv; charset=utf-8")
			w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "statement-"+st.Payee+"-"+st.Month+".csv"))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte(sb.String()))
		default:
			return errorf(http.StatusBadRequest, api.CodeMalformed, "format %q: use json or csv", q.Get("format"))
		}
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// maxImportBytes bounds a CSV import body (about 100,000 payments).
const maxImportBytes = 64 << 20

// readLimited reads a body of at most limit bytes.
func readLimited(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "body is larger than %d bytes: split the file", limit)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, api.CodeMalformed, "read body: %v", err)
	}
	return body, nil
}
