package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testenv/registrytest"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// moneyRegistry starts an in-process registry and returns its URL, admin
// token and a client.
func moneyRegistry(t *testing.T) (string, string, *client.Client) {
	t.Helper()
	srv := registrytest.Start(t, nil)
	c, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	return srv.URL, srv.AdminToken, c
}

func TestPaymentsImportPayoutsStatementCLI(t *testing.T) {
	url, token, c := moneyRegistry(t)
	t.Setenv(envRegistryURL, url)
	t.Setenv(envAdminToken, token)
	ctx := context.Background()
	ref, err := c.CreatePartner(ctx, adminapi.CreatePartnerRequest{Name: "Ref One", Email: "one@ref.example", Tier: store.TierReferral,
		Payout: store.PayoutDetails{Method: "paypal", PayPalEmail: "pay@ref.example"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.LinkCustomer(ctx, "cust-1", adminapi.LinkCustomerRequest{PayeeCode: ref.Code}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	now := time.Now().UTC()
	m := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -3, 0)
	paid := m.Add(48 * time.Hour)
	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\np1,cust-1,lots,EUR,"+
		day(paid)+","+day(paid.AddDate(0, 1, 0))+",monthly,"+day(paid)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "registry", "payments", "import", bad)
	if code != ExitFailed || !strings.Contains(stderr, "line 2, column amount") {
		t.Fatalf("bad import: exit %d %s", code, stderr)
	}
	var rows strings.Builder
	rows.WriteString("external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at,billing_name\n")
	for i := range 12 {
		fmt.Fprintf(&rows, "p%d,cust-1,1000.00,EUR,%s,%s,monthly,%s,Client GmbH\n", i, day(paid), day(paid.AddDate(0, 1, 0)), day(paid))
	}
	good := filepath.Join(dir, "good.csv")
	if err := os.WriteFile(good, []byte(rows.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := run(t, "registry", "payments", "import", good)
	if code != 0 || !strings.Contains(stdout, "12 new") {
		t.Fatalf("import: exit %d %s %s", code, stdout, stderr)
	}
	month := m.AddDate(0, 1, 0).Format("2006-01")
	out := filepath.Join(dir, "payouts")
	for i := range 2 {
		code, stdout, stderr = run(t, "registry", "payouts", "run", "--month", month, "--out", out)
		if code != 0 || !strings.Contains(stdout, "1 PayPal") {
			t.Fatalf("run %d: exit %d %s %s", i+1, code, stdout, stderr)
		}
		if i == 1 && !strings.Contains(stdout, "already ran") {
			t.Fatalf("second run did not say it already ran: %s", stdout)
		}
	}
	batchID := ledger.BatchID(month)
	paypal, err := os.ReadFile(filepath.Join(out, batchID+"-EUR-1.csv"))
	if err != nil || !strings.HasPrefix(string(paypal), "pay@ref.example,1200.00,EUR,") {
		t.Fatalf("paypal file: %q %v", paypal, err)
	}
	if _, err := os.Stat(filepath.Join(out, batchID+"-manual.csv")); err != nil {
		t.Fatal(err)
	}
	var b ledger.Batch
	raw, err := os.ReadFile(filepath.Join(out, batchID+".json"))
	if err != nil || json.Unmarshal(raw, &b) != nil || len(b.Lines) != 1 {
		t.Fatalf("batch file: %s %v", raw, err)
	}
	results := filepath.Join(dir, "results.csv")
	if err := os.WriteFile(results, []byte("Transaction ID,Customer ID,Status\nTX9,"+b.Lines[0].ItemID+",PENDING\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, "registry", "payouts", "mark-paid", batchID, "--file", results); code != ExitFailed || !strings.Contains(stderr, "not final") {
		t.Fatalf("pending result: exit %d %s", code, stderr)
	}
	if err := os.WriteFile(results, []byte("Transaction ID,Customer ID,Status\nTX9,"+b.Lines[0].ItemID+",SUCCESS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, stdout, stderr := run(t, "registry", "payouts", "mark-paid", batchID, "--file", results); code != 0 || !strings.Contains(stdout, "paid") {
		t.Fatalf("mark-paid: exit %d %s %s", code, stdout, stderr)
	}
	if code, stdout, stderr := run(t, "registry", "ledger", "check"); code != 0 || !strings.Contains(stdout, "the books balance") {
		t.Fatalf("ledger check: exit %d %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = run(t, "registry", "statement", "--partner", ref.Code, "--month", paid.Format("2006-01"), "--output", "csv")
	if code != 0 || !strings.HasPrefix(stdout, "date,kind,payment_id,customer") || strings.Contains(stdout, "Client GmbH") || strings.Count(stdout, "commission") != 12 {
		t.Fatalf("csv statement: exit %d %s %s", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "registry", "statement", "--partner", ref.Code, "--month", paid.Format("2006-01"), "-o", "json")
	var st ledger.Statement
	if code != 0 || json.Unmarshal([]byte(stdout), &st) != nil || len(st.Lines) != 12 {
		t.Fatalf("json statement: exit %d %s", code, stdout)
	}
	if code, _, _ := run(t, "registry", "statement", "--partner", ref.Code, "--month", "2026-03", "--output", "xml"); code != ExitUsage {
		t.Fatalf("bad output: exit %d", code)
	}
	if code, _, _ := run(t, "registry", "payouts", "run"); code != ExitUsage {
		t.Fatalf("run without --month: exit %d", code)
	}
}
