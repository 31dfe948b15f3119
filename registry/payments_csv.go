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
// (any order), then one payment per line. The whole file is recorded or
// nothing is; every problem is reported with its line and column.
//
// Columns:
//
//	external_id   required  billing's id of the payment (idempotency key)
//	customer_id   one of    billing customer id
//	install_ids   these     install ids separated by ';'
//	amount_minor  one of    integer minor units (cents), e.g. 4900
//	amount        these     decimal with a dot, e.g. 49.00
//	currency      required  ISO 4217, e.g. EUR
//	period_start  required  billing period start, YYYY-MM-DD or RFC 3339
//	period_end    required  billing period end (exclusive)
//	plan          required  monthly or annual
//	paid_at       required  when the money arrived, YYYY-MM-DD or RFC 3339
//	payer_account optional  billing account of the payer (self-purchase rule)
//	payer_email   optional
//	billing_name  optional  invoice name (partners see it on statements)
//	vat_id        optional
//
// Refunds are not imported: they come by webhook (type refund) or Stripe.

// csvColumns are the known columns and whether each is required.
var csvColumns = map[string]bool{
	"external_id": true, "customer_id": false, "install_ids": false, "amount_minor": false, "amount": false,
	"currency": true, "period_start": true, "period_end": true, "plan": true, "paid_at": true,
	"payer_account": false, "payer_email": false, "billing_name": false, "vat_id": false,
}

// maxImportRows bounds one import; split bigger files.
const maxImportRows = 100000

// csvPayment is a parsed line with its line number for later errors.
type csvPayment struct {
	ledger.Payment
	line int
}

// parsePaymentCSV parses an import file. The error is a 400 listing up to
// 50 problems as "line N, column NAME: what".
func parsePaymentCSV(body []byte) ([]csvPayment, error) {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // spreadsheet BOM
	r := csv.NewReader(bytes.NewReader(body))
	r.ReuseRecord = false
	header, err := r.Read()
	if err == io.EOF {
		return nil, importErr([]string{"the file is empty: the first line must name the columns, e.g. external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at"})
	}
	if err != nil {
		return nil, importErr([]string{csvReadProblem(err)})
	}
	col := map[string]int{}
	var problems []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(h))
		if _, ok := csvColumns[name]; !ok {
			problems = append(problems, fmt.Sprintf("line 1, column %d: unknown column %q (known: external_id, customer_id, install_ids, amount_minor or amount, currency, period_start, period_end, plan, paid_at, payer_account, payer_email, billing_name, vat_id)", i+1, h))
			continue
		}
		if _, dup := col[name]; dup {
			problems = append(problems, fmt.Sprintf("line 1, column %d: column %q appears twice", i+1, name))
			continue
		}
		col[name] = i
	}
	for name, required := range csvColumns {
		if _, ok := col[name]; required && !ok {
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
	if !hasCust && !hasInst {
		problems = append(problems, "line 1: give a customer_id or an install_ids column (or both)")
	}
	if len(problems) > 0 {
		slices.Sort(problems)
		return nil, importErr(problems)
	}
	var out []csvPayment
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		line, _ := r.FieldPos(0)
		if err != nil {
			problems = append(problems, csvReadProblem(err))
			if len(problems) >= 50 {
				break
			}
			var pe *csv.ParseError
			if errors.As(err, &pe) && errors.Is(pe.Err, csv.ErrFieldCount) {
				continue
			}
			break // a quoting error leaves the reader unsure where lines start
		}
		if len(out) >= maxImportRows {
			problems = append(problems, fmt.Sprintf("line %d: more than %d payments in one file: split it", line, maxImportRows))
			break
		}
		p, lineProblems := parseCSVLine(rec, col, line)
		problems = append(problems, lineProblems...)
		if len(problems) >= 50 {
			problems = append(problems[:50], "… more problems not listed")
			break
		}
		out = append(out, csvPayment{Payment: p, line: line})
	}
	if len(problems) > 0 {
		return nil, importErr(problems)
	}
	if len(out) == 0 {
		return nil, importErr([]string{"the file has a header but no payments"})
	}
	return out, nil
}

func parseCSVLine(rec []string, col map[string]int, line int) (ledger.Payment, []string) {
	var problems []string
	bad := func(name, format string, a ...any) {
		problems = append(problems, fmt.Sprintf("line %d, column %s: %s", line, name, fmt.Sprintf(format, a...)))
	}
	get := func(name string) string {
		if i, ok := col[name]; ok {
			return strings.TrimSpace(rec[i])
		}
		return ""
	}
	p := ledger.Payment{
		ExternalID: get("external_id"), CustomerID: get("customer_id"),
		Plan: ledger.Plan(strings.ToLower(get("plan"))),
		Payer: ledger.Payer{AccountID: get("payer_account"), Email: get("payer_email"),
			Billing: ledger.BillingIdentity{Name: get("billing_name"), VATID: get("vat_id")}},
	}
	if p.ExternalID == "" {
		bad("external_id", "empty: every payment needs billing's id")
	}
	if ids := get("install_ids"); ids != "" {
		for id := range strings.SplitSeq(ids, ";") {
			if id = strings.TrimSpace(id); id != "" {
				p.InstallIDs = append(p.InstallIDs, id)
			}
		}
	}
	if p.CustomerID == "" && len(p.InstallIDs) == 0 {
		bad("customer_id", "empty and no install_ids either: name the customer or its installs")
	}
	cur, err := ledger.ParseCurrency(get("currency"))
	if err != nil {
		bad("currency", "%v", err)
	}
	p.Currency = cur
	if _, ok := col["amount_minor"]; ok {
		v := get("amount_minor")
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil:
			bad("amount_minor", "%q is not a whole number of minor units (e.g. 4900 for 49.00)", v)
		case n <= 0:
			bad("amount_minor", "%d must be positive", n)
		}
		p.Amount = n
	} else if cur != "" {
		v := get("amount")
		n, err := ledger.ParseAmount(v, cur)
		switch {
		case err != nil:
			bad("amount", "%v", err)
		case n <= 0:
			bad("amount", "%q must be positive", v)
		}
		p.Amount = n
	}
	if p.Plan != ledger.PlanMonthly && p.Plan != ledger.PlanAnnual {
		bad("plan", "%q must be monthly or annual", get("plan"))
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"period_start", &p.PeriodStart}, {"period_end", &p.PeriodEnd}, {"paid_at", &p.PaidAt}} {
		t, err := parseCSVTime(get(f.name))
		if err != nil {
			bad(f.name, "%v", err)
		}
		*f.dst = t
	}
	if !p.PeriodStart.IsZero() && !p.PeriodEnd.IsZero() && !p.PeriodEnd.After(p.PeriodStart) {
		bad("period_end", "%s is not after period_start %s", get("period_end"), get("period_start"))
	}
	return p, problems
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

func importErr(problems []string) error {
	return errorf(http.StatusBadRequest, api.CodeInvalid, "nothing imported: %d problem(s): %s", len(problems), strings.Join(problems, "; "))
}
