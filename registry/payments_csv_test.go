package registry

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/registry/ledger"
)

// FuzzParsePaymentsCSV feeds hostile import files to the parser: it must
// never panic, must refuse with a 400 or 422 that says what is wrong, and
// whatever it accepts must be what the ledger accepts field by field.
func FuzzParsePaymentsCSV(f *testing.F) {
	for _, seed := range []string{
		"external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\ninv-1,c1,49.00,EUR,2026-03-01,2026-04-01,monthly,2026-03-02\n",
		"external_id,install_ids,amount_minor,currency,period_start,period_end,plan,paid_at,payer_email\ninv-1,i1;i2,4900,eur,2026-03-01T00:00:00Z,2027-03-01T00:00:00Z,annual,2026-03-02T10:00:00+01:00,a@b.example\n",
		"type,external_id,customer_id,payment_id,amount,currency,period_start,period_end,plan,paid_at,refunded_at\npayment,p1,c1,,10,JPY,2026-01-01,2026-02-01,monthly,2026-01-01,\nrefund,r1,,p1,5,JPY,,,,,2026-01-05\nchargeback,cb1,,p1,5,,,,,,2026-01-06\n",
		"\xef\xbb\xbfexternal_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\n\"x\"y,1,2,3,4,5,6,7\n",
		"external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\nx,y\n",
		"",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rows, err := parsePaymentsCSV(body)
		if err != nil {
			var he *httpError
			if !errors.As(err, &he) || (he.status != 400 && he.status != 422) || !strings.HasPrefix(he.msg, "nothing imported: ") {
				t.Fatalf("refusal is not a 400/422 'nothing imported' answer: %#v", err)
			}
			return
		}
		if len(rows.payments)+len(rows.refunds) == 0 || len(rows.payments)+len(rows.refunds) > maxImportRows {
			t.Fatalf("accepted a file with %d payments and %d refunds", len(rows.payments), len(rows.refunds))
		}
		for _, p := range rows.payments {
			if p.ExternalID == "" || (p.CustomerID == "" && len(p.InstallIDs) == 0) || p.Amount <= 0 ||
				(p.Plan != ledger.PlanMonthly && p.Plan != ledger.PlanAnnual) || !p.PeriodEnd.After(p.PeriodStart) || p.PaidAt.IsZero() {
				t.Fatalf("line %d accepted with a missing or wrong field: %+v", p.line, p.Payment)
			}
			if _, err := ledger.ParseCurrency(p.Currency); err != nil {
				t.Fatalf("line %d accepted with currency %q: %v", p.line, p.Currency, err)
			}
		}
		for _, r := range rows.refunds {
			if r.ExternalID == "" || r.PaymentID == "" || r.Amount <= 0 || r.At.IsZero() ||
				(r.Kind != ledger.RefundKindRefund && r.Kind != ledger.RefundKindChargeback) {
				t.Fatalf("line %d accepted with a missing or wrong field: %+v", r.line, r.Refund)
			}
		}
	})
}
