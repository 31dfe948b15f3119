package registry

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/ledger"
)

// The CSV import is for the back office: a header row naming the columns
// (any order), then one payment, refund or chargeback per line. The whole
// file is recorded or nothing is (payments first, then refunds in file
// order, in one ledger append, so a refund may name a payment of the same
// file); every problem is reported with its line and column.
//
// Columns:
//
//	type          optional  payment (default), refund or chargeback
//	external_id   required  billing's id of the payment or refund (idempotency key)
//	customer_id   one of    billing customer id                       (payments)
//	install_ids   these     install ids separated by ';'              (payments)
//	payment_id    refunds   external id of the refunded payment      (refunds, chargebacks)
//	amount_minor  one of    integer minor units (cents), e.g. 4900
//	amount        these     decimal with a dot, e.g. 49.00
//	currency      payments  ISO 4217, e.g. EUR; optional on refunds (must match the payment)
//	period_start  payments  billing period start, YYYY-MM-DD or RFC 3339
//	period_end    payments  billing period end (exclusive)
//	plan          payments  monthly or annual
//	paid_at       payments  when the money arrived, YYYY-MM-DD or RFC 3339
//	refunded_at   refunds   when the money went back (refund) or was taken (chargeback)
//	payer_account optional  billing account of the payer (self-purchase rule)
//	payer_email   optional
//	billing_name  optional  invoice name (partners see it on statements)
//	vat_id        optional
//
// Without a type column every line is a payment, and the payment columns
// are required in the header. A refund reverses the commission of its
// payment in proportion to the amount; a chargeback does the same and is
// reported as a chargeback (reason "chargeback") on statements.

// CSV row types.
const (
	csvTypePayment    = "payment"
	csvTypeRefund     = "refund"
	csvTypeChargeback = "chargeback"
)

// csvColumns are the known columns and whether a file of payments only
// (no type column) must have each.
var csvColumns = map[string]bool{
	"type": false, "external_id": true, "customer_id": false, "install_ids": false, "payment_id": false,
	"amount_minor": false, "amount": false, "currency": true, "period_start": true, "period_end": true,
	"plan": true, "paid_at": true, "refunded_at": false,
	"payer_account": false, "payer_email": false, "billing_name": false, "vat_id": false,
}

const csvKnownColumns = "type, external_id, customer_id, install_ids, payment_id, amount_minor or amount, currency, period_start, period_end, plan, paid_at, refunded_at, payer_account, payer_email, billing_name, vat_id"

// maxImportRows bounds one import; split bigger files.
const maxImportRows = 100000

// csvPayment is a parsed payment line with its line number for later errors.
type csvPayment struct {
	ledger.Payment
	line int
}

// csvRefund is a parsed refund or chargeback line.
type csvRefund struct {
	ledger.Refund
	line int
}

// csvImport is a parsed import file.
type csvImport struct {
	payments []csvPayment
	refunds  []csvRefund
}

// parsePaymentsCSV parses an import file. The error is a 422 listing up to
// 50 problems as "line N, column NAME: what", or a 400 when the file is not
// readable CSV (a stray quote).
func parsePaymentsCSV(body []byte) (csvImport, error) {
	var out csvImport
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // spreadsheet BOM
	r := csv.NewReader(bytes.NewReader(body))
	r.ReuseRecord = false
	header, err := r.Read()
	if err == io.EOF {
		return out, importErr([]string{"the file is empty: the first line must name the columns, e.g. external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at"}, false)
	}
	if err != nil {
		return out, importErr([]string{csvReadProblem(err)}, isSyntaxErr(err))
	}
	col := map[string]int{}
	var problems []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if _, ok := csvColumns[name]; !ok {
			problems = append(problems, fmt.Sprintf("line 1, column %d: unknown column %q (known: %s)", i+1, h, csvKnownColumns))
			continue
		}
		if _, dup := col[name]; dup {
			problems = append(problems, fmt.Sprintf("line 1, column %d: column %q appears twice", i+1, name))
			continue
		}
		col[name] = i
	}
	_, typed := col["type"]
	for name, required := range csvColumns {
		if _, ok := col[name]; required && !ok && (!typed || name == "external_id") {
			problems = append(problems, fmt.Sprintf("line 1: required column %q is missing", name))
		}
	}
	_, minor := col["amount_minor"]
	_, decimal := col["amount"]
	if minor == decimal {
		problems = append(problems, "line 1: give exactly one of the columns amount_minor (integer cents) or amount (decimal like 49.00)")
	}
	_, hasCust := col["customer_id"]
	_, hasInst := col["install_ids"]
	if !typed && !hasCust && !hasInst {
		problems = append(problems, "line 1: give a customer_id or an install_ids column (or both)")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return out, importErr(problems, false)
	}
	syntax := false
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			problems = append(problems, csvReadProblem(err))
			if len(problems) >= 50 {
				break
			}
			if !isSyntaxErr(err) {
				continue
			}
			syntax = true
			break // a quoting error leaves the reader unsure where lines start
		}
		line, _ := r.FieldPos(0) // only valid after a successful Read
		if len(out.payments)+len(out.refunds) >= maxImportRows {
			problems = append(problems, fmt.Sprintf("line %d: more than %d rows in one file: split it", line, maxImportRows))
			break
		}
		typ := csvTypePayment
		if i, ok := col["type"]; ok && strings.TrimSpace(rec[i]) != "" {
			typ = strings.ToLower(strings.TrimSpace(rec[i]))
		}
		var lineProblems []string
		switch typ {
		case csvTypePayment:
			var p ledger.Payment
			p, lineProblems = parseCSVPayment(rec, col, line)
			out.payments = append(out.payments, csvPayment{Payment: p, line: line})
		case csvTypeRefund, csvTypeChargeback:
			var rf ledger.Refund
			rf, lineProblems = parseCSVRefund(rec, col, line, typ)
			out.refunds = append(out.refunds, csvRefund{Refund: rf, line: line})
		default:
			lineProblems = []string{fmt.Sprintf("line %d, column type: %q must be payment, refund or chargeback", line, rec[col["type"]])}
		}
		problems = append(problems, lineProblems...)
		if len(problems) >= 50 {
			problems = append(problems[:50], "… more problems not listed")
			break
		}
	}
	if len(problems) > 0 {
		return out, importErr(problems, syntax)
	}
	if len(out.payments)+len(out.refunds) == 0 {
		return out, importErr([]string{"the file has a header but no rows"}, false)
	}
	return out, nil
}

// csvLine reads the named columns of one record and collects problems.
type csvLine struct {
	rec      []string
	col      map[string]int
	line     int
	problems []string
}

func (c *csvLine) bad(name, format string, a ...any) {
	c.problems = append(c.problems, fmt.Sprintf("line %d, column %s: %s", c.line, name, fmt.Sprintf(format, a...)))
}

func (c *csvLine) get(name string) string {
	if i, ok := c.col[name]; ok {
		return strings.TrimSpace(c.rec[i])
	}
	return ""
}

// amount reads amount_minor or amount (which needs the currency).
func (c *csvLine) amount(cur string) int64 {
	if _, ok := c.col["amount_minor"]; ok {
		v := c.get("amount_minor")
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			c.bad("amount_minor", "%q is not a whole number of minor units (e.g. 4900 for 49.00)", v)
		case n <= 0:
			c.bad("amount_minor", "%d must be positive", n)
		}
		return n
	}
	if cur == "" {
		return 0 // the currency problem is reported already
	}
	v := c.get("amount")
	n, err := ledger.ParseAmount(v, cur)
	switch {
	case err != nil:
		c.bad("amount", "%v", err)
	case n <= 0:
		c.bad("amount", "%q must be positive", v)
	}
	return n
}

func (c *csvLine) time(name string) time.Time {
	t, err := parseCSVTime(c.get(name))
	if err != nil {
		c.bad(name, "%v", err)
	}
	return t
}

func parseCSVPayment(rec []string, col map[string]int, line int) (ledger.Payment, []string) {
	c := &csvLine{rec: rec, col: col, line: line}
	p := ledger.Payment{
		ExternalID: c.get("external_id"), CustomerID: c.get("customer_id"),
		Plan: ledger.Plan(strings.ToLower(c.get("plan"))),
		Payer: ledger.Payer{AccountID: c.get("payer_account"), Email: c.get("payer_email"),
			Billing: ledger.BillingIdentity{Name: c.get("billing_name"), VATID: c.get("vat_id")}},
	}
	if p.ExternalID == "" {
		c.bad("external_id", "empty: every payment needs billing's id")
	}
	if ids := c.get("install_ids"); ids != "" {
		for id := range strings.SplitSeq(ids, ";") {
			if id = strings.TrimSpace(id); id != "" {
				p.InstallIDs = append(p.InstallIDs, id)
			}
		}
	}
	if p.CustomerID == "" && len(p.InstallIDs) == 0 {
		c.bad("customer_id", "empty and no install_ids either: name the customer or its installs")
	}
	if c.get("payment_id") != "" || c.get("refunded_at") != "" {
		c.bad("type", "a payment line has payment_id or refunded_at set: write type refund or chargeback for a refund line")
	}
	cur, err := ledger.ParseCurrency(c.get("currency"))
	if err != nil {
		c.bad("currency", "%v", err)
	}
	p.Currency = cur
	p.Amount = c.amount(cur)
	if p.Plan != ledger.PlanMonthly && p.Plan != ledger.PlanAnnual {
		c.bad("plan", "%q must be monthly or annual", c.get("plan"))
	}
	p.PeriodStart, p.PeriodEnd, p.PaidAt = c.time("period_start"), c.time("period_end"), c.time("paid_at")
	if !p.PeriodStart.IsZero() && !p.PeriodEnd.IsZero() && !p.PeriodEnd.After(p.PeriodStart) {
		c.bad("period_end", "%s is not after period_start %s", c.get("period_end"), c.get("period_start"))
	}
	return p, c.problems
}

// parseCSVRefund reads a refund or chargeback line. Payment-only columns
// must be empty, so a payment mislabelled as a refund is not half-read.
func parseCSVRefund(rec []string, col map[string]int, line int, typ string) (ledger.Refund, []string) {
	c := &csvLine{rec: rec, col: col, line: line}
	kind := ledger.RefundKindRefund
	if typ == csvTypeChargeback {
		kind = ledger.RefundKindChargeback
	}
	r := ledger.Refund{ExternalID: c.get("external_id"), PaymentID: c.get("payment_id"), Kind: kind}
	if r.ExternalID == "" {
		c.bad("external_id", "empty: every %s needs billing's id", typ)
	}
	if r.PaymentID == "" {
		c.bad("payment_id", "empty: name the external_id of the payment this %s is for", typ)
	}
	for _, name := range []string{"customer_id", "install_ids", "period_start", "period_end", "plan", "paid_at"} {
		if c.get(name) != "" {
			c.bad(name, "must be empty on a %s line (it belongs to the payment named by payment_id)", typ)
		}
	}
	if v := c.get("currency"); v != "" {
		cur, err := ledger.ParseCurrency(v)
		if err != nil {
			c.bad("currency", "%v", err)
		}
		r.Currency = cur
	} else if _, ok := col["amount"]; ok {
		c.bad("currency", "empty: a decimal amount needs the currency (or use amount_minor)")
	}
	r.Amount = c.amount(r.Currency)
	r.At = c.time("refunded_at")
	return r, c.problems
}

func parseCSVTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, errors.New("empty: give a date YYYY-MM-DD or a time like 2026-03-01T10:00:00Z")
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return t, fmt.Errorf("%q is not a date YYYY-MM-DD or a time like 2026-03-01T10:00:00Z", v)
	}
	return t.UTC(), nil
}

func csvReadProblem(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, csv.ErrFieldCount) {
			return fmt.Sprintf("line %d: wrong number of fields: every line needs one value per header column", pe.Line)
		}
		return fmt.Sprintf("line %d, column %d: %v", pe.Line, pe.Column, pe.Err)
	}
	return "read CSV: " + err.Error()
}

// isSyntaxErr reports a CSV error that is not about field counts: the file
// is not readable CSV (a stray or unclosed quote).
func isSyntaxErr(err error) bool {
	var pe *csv.ParseError
	return !errors.As(err, &pe) || !errors.Is(pe.Err, csv.ErrFieldCount)
}

// importErr refuses a file: 400 malformed_body when it is not readable
// CSV, else 422 invalid (the content is wrong).
func importErr(problems []string, malformed bool) error {
	status, code := http.StatusUnprocessableEntity, api.CodeInvalid
	if malformed {
		status, code = http.StatusBadRequest, api.CodeMalformed
	}
	return errorf(status, code, "nothing imported: %d problem(s): %s", len(problems), strings.Join(problems, "; "))
}
