package cli

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/ledger"
)

// The money commands under 'switchboard registry': payments import,
// payouts run / mark-paid, ledger check and statement. They talk to a
// running registry through its staff API, like 'registry partner'.

func newRegistryPaymentsCommand(app *App, staff *staffFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "payments",
		Short: "Import customer payments into the commission ledger",
		Long: `Payments reach the registry from billing: the signed webhook
(POST /v1/payments/webhook), Stripe events (POST /v1/payments/stripe) or a
CSV import for the back office. Each payment earns commission for the
partner or referral the customer is linked to, by the rules of the ledger.`,
	}
	staff.add(cmd)
	imp := &cobra.Command{
		Use:   "import FILE",
		Short: "Import payments, refunds and chargebacks from a CSV file (all or nothing)",
		Long: `Import payments, refunds and chargebacks from a CSV file. The first line
names the columns, in any order:

  type          optional  payment (default), refund or chargeback
  external_id   required  billing's id of the line (importing it again is a no-op)
  customer_id   payments  billing customer id; and/or
  install_ids   payments  install ids separated by ';'
  payment_id    refunds   external_id of the payment refunded or charged back
  amount_minor  one of    integer minor units (cents), e.g. 4900
  amount                  decimal with a dot, e.g. 49.00
  currency      payments  ISO 4217 code, e.g. EUR (optional on refunds; must match)
  period_start  payments  billing period start, YYYY-MM-DD or RFC 3339
  period_end    payments  billing period end (exclusive)
  plan          payments  monthly or annual
  paid_at       payments  when the money arrived
  refunded_at   refunds   when the money went back, or the card network took it
  payer_account, payer_email, billing_name, vat_id   optional (self-purchase rule, statements)

Without a type column every line is a payment and the payment columns are
required. A refund or chargeback reverses the payment's commission in
proportion to its amount (a chargeback is shown as one on statements); it
may name a payment of the same file. Leave the other kind's columns empty.

The whole file is recorded or nothing is: every problem is listed with its
line and column. Refunds also come by webhook and Stripe (charge.refunded;
charge.dispute.closed as lost for chargebacks).`,
		Example: `  switchboard registry payments import march.csv --data /var/lib/switchboard-registry
  printf 'external_id,customer_id,amount,currency,period_start,period_end,plan,paid_at\ninv-1,cust-7,49.00,EUR,2026-03-01,2026-04-01,monthly,2026-03-01\n' > p.csv
  printf 'type,external_id,payment_id,amount,currency,refunded_at\nrefund,re-1,inv-1,24.50,EUR,2026-03-10\nchargeback,cb-1,inv-1,24.50,EUR,2026-03-20\n' > r.csv`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := os.ReadFile(args[0])
			if err != nil {
				return failed(fmt.Errorf("read %s: %w", args[0], err))
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			res, err := c.ImportPayments(cmd.Context(), body)
			if err != nil {
				return staffErr(err)
			}
			return app.render(res, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "imported %s: %d payment(s), %d refund(s) or chargeback(s), %d new, %d already recorded\n",
					args[0], len(res.Outcomes), len(res.RefundOutcomes), res.Recorded, res.Duplicates)
				return err
			})
		},
	}
	cmd.AddCommand(imp)
	return cmd
}

func newRegistryPayoutsCommand(app *App, staff *staffFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "payouts",
		Short: "Run monthly payouts and record their results",
		Long: `A payout run for month M pays every partner and referral the commission that
became payable by the end of M (after its hold), per currency, once it
reaches the tier's threshold; smaller balances carry over. Payees without
PayPal are paid manually in quarter-end runs; a payee over the yearly tax
threshold without tax details is held. Every decision is in the ledger with
its reason.`,
	}
	staff.add(cmd)
	var month, out string
	run := &cobra.Command{
		Use:   "run --month YYYY-MM",
		Short: "Run the payouts of a month and write the PayPal and manual-payment files",
		Long: `Run the payouts of a finished month. The registry records the batch
(payout-YYYY-MM); this command writes into --out:

  payout-YYYY-MM-<CUR>-<n>.csv  PayPal Payouts Web upload files (one currency, ≤ 5000 rows)
  payout-YYYY-MM-manual.csv     the payees to pay by hand, with their details
  payout-YYYY-MM.json           the whole batch, carried balances with reasons

and prints a summary. Running the same month again pays nobody twice: it
returns the recorded batch and rewrites the files with the items still to
send. Record the outcome with 'payouts mark-paid'.`,
		Example: `  switchboard registry payouts run --month 2026-03 --out ./payouts --data /var/lib/switchboard-registry`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if month == "" {
				return usageErrorf("--month YYYY-MM is required")
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			res, err := c.RunPayouts(cmd.Context(), month)
			if err != nil {
				return staffErr(err)
			}
			files, err := writeRunFiles(out, res)
			if err != nil {
				return failed(err)
			}
			return app.render(map[string]any{"batch": res.Batch, "files": files}, func(w io.Writer) error {
				return printBatch(w, res.Batch, files)
			})
		},
	}
	run.Flags().StringVar(&month, "month", "", "month to pay, YYYY-MM (must be over)")
	run.Flags().StringVar(&out, "out", ".", "directory to write the payout files into")

	var file, item, status, ref, note string
	mark := &cobra.Command{
		Use:   "mark-paid BATCH",
		Short: "Record which payout items were paid or failed",
		Long: `Record the results of a batch, from PayPal's results file (--file) or one item
at a time (--item ID --status paid|failed). A failed or returned item puts
its amount back into the payee's balance; a later run pays it.

The results file is CSV with a header row; the item column is "Customer ID"
(or sender_item_id / item_id), the status column "Status" (or
transaction_status: SUCCESS, FAILED, RETURNED, …; or paid/failed) and the
optional reference column "Transaction ID" (or payout_item_id / ref).
Statuses not final yet (PENDING, UNCLAIMED) are refused: mark them later.`,
		Example: `  switchboard registry payouts mark-paid payout-2026-03 --file paypal-results.csv
  switchboard registry payouts mark-paid payout-2026-03 --item 202603-000002 --status paid --ref "bank transfer 4711"`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var results []ledger.PayoutResult
			switch {
			case file != "" && item != "":
				return usageErrorf("give --file or --item, not both")
			case file != "":
				raw, err := os.ReadFile(file)
				if err != nil {
					return failed(fmt.Errorf("read %s: %w", file, err))
				}
				results, err = parsePayoutResults(raw)
				if err != nil {
					return failed(fmt.Errorf("%s: %w", file, err))
				}
			case item != "":
				st, err := parseResultStatus(status)
				if err != nil {
					return usageErrorf("--status: %v", err)
				}
				results = []ledger.PayoutResult{{ItemID: item, Status: st, Ref: ref, Note: note}}
			default:
				return usageErrorf("give --file RESULTS.csv or --item ID --status paid|failed")
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			res, err := c.MarkPaid(cmd.Context(), args[0], results)
			if err != nil {
				return staffErr(err)
			}
			return app.render(res.Batch, func(w io.Writer) error {
				fmt.Fprintf(w, "recorded %d result(s) for %s\n", len(results), res.Batch.ID)
				return printBatch(w, res.Batch, nil)
			})
		},
	}
	mf := mark.Flags()
	mf.StringVar(&file, "file", "", "PayPal results CSV")
	mf.StringVar(&item, "item", "", "one payout item id")
	mf.StringVar(&status, "status", "", "result of --item: paid or failed")
	mf.StringVar(&ref, "ref", "", "transaction id or payment reference of --item")
	mf.StringVar(&note, "note", "", "note on --item")
	cmd.AddCommand(run, mark)
	return cmd
}

// writeRunFiles writes the batch's files atomically into dir.
func writeRunFiles(dir string, res adminapi.RunResult) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create output directory %s: %w", dir, err)
	}
	batchJSON, err := json.MarshalIndent(res.Batch, "", "  ")
	if err != nil {
		return nil, err
	}
	files := append([]adminapi.FileText{}, res.PayPalFiles...)
	files = append(files, res.ManualReport, adminapi.FileText{Name: res.Batch.ID + ".json", Content: string(batchJSON) + "\n"})
	var written []string
	for _, f := range files {
		// Names come from the registry: keep them inside dir.
		if f.Name == "" || f.Name != filepath.Base(f.Name) || strings.HasPrefix(f.Name, ".") {
			return written, fmt.Errorf("registry sent a file name %q that is not a plain file name", f.Name)
		}
		path := filepath.Join(dir, f.Name)
		// 0600: payout files name payees and amounts.
		if err := atomicfile.WriteFile(path, []byte(f.Content), 0o600); err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

func printBatch(w io.Writer, b ledger.Batch, files []string) error {
	state := "new run"
	if b.Existing {
		state = "already ran; nothing paid again"
	}
	var paypal, manual int
	for _, ln := range b.Lines {
		if ln.Method == ledger.MethodPayPal {
			paypal++
		} else {
			manual++
		}
	}
	fmt.Fprintf(w, "batch %s for %s (%s): %d PayPal, %d manual, %d carried\n", b.ID, b.Month, state, paypal, manual, len(b.Carried))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(b.Lines) > 0 {
		fmt.Fprintln(tw, "ITEM\tPAYEE\tAMOUNT\tMETHOD\tSTATUS")
		for _, ln := range b.Lines {
			fmt.Fprintf(tw, "%s\t%s\t%s %s\t%s\t%s\n", ln.ItemID, ln.Payee, ledger.FormatAmount(ln.Amount, ln.Currency), ln.Currency, ln.Method, ln.Status)
		}
	}
	if len(b.Carried) > 0 {
		fmt.Fprintln(tw, "CARRIED\tPAYEE\tAMOUNT\tREASON\t")
		for _, c := range b.Carried {
			fmt.Fprintf(tw, "-\t%s\t%s %s\t%s\t%s\n", c.Payee, ledger.FormatAmount(c.Amount, c.Currency), c.Currency, c.Reason, c.Note)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintf(w, "wrote %s\n", f)
	}
	return nil
}

func parseResultStatus(s string) (ledger.PayoutStatus, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "paid":
		return ledger.PayoutPaid, nil
	case "failed":
		return ledger.PayoutFailed, nil
	}
	return ledger.ParsePayPalStatus(s)
}

// parsePayoutResults reads a PayPal results file (or our own paid/failed
// form). Errors name the line and column.
func parsePayoutResults(raw []byte) ([]ledger.PayoutResult, error) {
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf"))))
	r.FieldsPerRecord = -1
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("read the header row: %w", err)
	}
	find := func(names ...string) int {
		for i, h := range header {
			h = strings.ToLower(strings.TrimSpace(h))
			for _, n := range names {
				if h == n {
					return i
				}
			}
		}
		return -1
	}
	itemCol := find("customer id", "sender_item_id", "sender item id", "item_id", "item id")
	statusCol := find("status", "transaction_status", "transaction status")
	refCol := find("transaction id", "payout_item_id", "payout item id", "ref", "reference")
	if itemCol < 0 || statusCol < 0 {
		return nil, errors.New(`line 1: need an item column ("Customer ID", sender_item_id or item_id) and a status column ("Status" or transaction_status)`)
	}
	var out []ledger.PayoutResult
	var problems []string
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		line, _ := r.FieldPos(0)
		if len(rec) <= max(itemCol, statusCol) {
			problems = append(problems, fmt.Sprintf("line %d: %d fields, fewer than the header's columns", line, len(rec)))
			continue
		}
		st, err := parseResultStatus(rec[statusCol])
		if err != nil {
			problems = append(problems, fmt.Sprintf("line %d, column %s: %v", line, header[statusCol], err))
			continue
		}
		res := ledger.PayoutResult{ItemID: strings.TrimSpace(rec[itemCol]), Status: st}
		if res.ItemID == "" {
			problems = append(problems, fmt.Sprintf("line %d, column %s: empty item id", line, header[itemCol]))
			continue
		}
		if refCol >= 0 && refCol < len(rec) {
			res.Ref = strings.TrimSpace(rec[refCol])
		}
		out = append(out, res)
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("nothing recorded: %s", strings.Join(problems, "; "))
	}
	if len(out) == 0 {
		return nil, errors.New("no result lines after the header")
	}
	return out, nil
}

func newRegistryLedgerCommand(app *App, staff *staffFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ledger",
		Short: "Inspect the commission ledger",
	}
	staff.add(cmd)
	check := &cobra.Command{
		Use:   "check",
		Short: "Prove the books balance (exit 1 with the discrepancies)",
		Long: `Recompute every balance from the append-only journal: for each payee and
currency, earned − reversed − paid = balance, and every payout line is backed
by entries (no payout above what was payable, none twice in a run, no
reversal above its commission, no refund above its payment). Prints the
balances; exits 1 listing every discrepancy when the books do not balance.`,
		Example: `  switchboard registry ledger check --data /var/lib/switchboard-registry`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			res, err := c.CheckLedger(cmd.Context())
			if err != nil {
				return staffErr(err)
			}
			if err := app.render(res, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PAYEE\tCURRENCY\tEARNED\tREVERSED\tPAID\tBALANCE\tPAYABLE\tPENDING")
				for _, b := range res.Balances {
					f := func(v int64) string { return ledger.FormatAmount(v, b.Currency) }
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", b.Payee, b.Currency, f(b.Earned), f(b.Reversed), f(b.Paid), f(b.Balance), f(b.Payable), f(b.Pending))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
				if res.Balanced {
					_, err := fmt.Fprintf(w, "the books balance (%d balances)\n", len(res.Balances))
					return err
				}
				for _, d := range res.Discrepancies {
					fmt.Fprintf(w, "DISCREPANCY %s\n", d)
				}
				return nil
			}); err != nil {
				return err
			}
			if !res.Balanced {
				return failed(fmt.Errorf("the books do not balance: %d discrepancies", len(res.Discrepancies)))
			}
			return nil
		},
	}
	cmd.AddCommand(check)
	return cmd
}

func newRegistryStatementCommand(app *App, staff *staffFlags) *cobra.Command {
	var partner, month, output string
	cmd := &cobra.Command{
		Use:   "statement --partner CODE --month YYYY-MM",
		Short: "Show a partner's or referral's statement for a month",
		Long: `A statement lists every ledger line of the payee dated in the month — each
commission with the payment it comes from, exclusions with their reason,
reversals, payouts and carried balances — with opening and closing balances
per currency (closing = opening + earned − reversed − paid + returned).
Partners see their customers' names; referrals see stable pseudonyms.

--output text (default), json or csv (the file to hand to the payee).`,
		Example: `  switchboard registry statement --partner K7QM-4XJD-R --month 2026-03
  switchboard registry statement --partner K7QM-4XJD-R --month 2026-03 --output csv > statement.csv`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if partner == "" || month == "" {
				return usageErrorf("--partner CODE and --month YYYY-MM are required")
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			switch output {
			case "csv":
				raw, err := c.StatementCSV(ctx, partner, month)
				if err != nil {
					return staffErr(err)
				}
				_, err = app.Stdout.Write(raw)
				return err
			case "json":
				st, err := c.Statement(ctx, partner, month)
				if err != nil {
					return staffErr(err)
				}
				return writeJSON(app.Stdout, st)
			case "text":
				st, err := c.Statement(ctx, partner, month)
				if err != nil {
					return staffErr(err)
				}
				return printStatement(app.Stdout, st)
			}
			return usageErrorf("--output must be text, json or csv, not %q", output)
		},
	}
	staff.add(cmd)
	f := cmd.Flags()
	f.StringVar(&partner, "partner", "", "partner or referral code")
	f.StringVar(&month, "month", "", "month, YYYY-MM")
	// Shadows the global --output: a statement also has a CSV form.
	f.StringVarP(&output, "output", "o", "text", "text, json or csv")
	return cmd
}

func printStatement(w io.Writer, st ledger.Statement) error {
	fmt.Fprintf(w, "statement of %s (%s) for %s\n", st.Payee, st.Tier, st.Month)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DATE\tKIND\tPAYMENT\tCUSTOMER\tAMOUNT\tREASON/NOTE")
	for _, ln := range st.Lines {
		ref := ln.PaymentID
		if ref == "" {
			ref = ln.ItemID
		}
		why := ln.Note
		if ln.Reason != "" {
			why = string(ln.Reason) + ": " + ln.Note
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s %s\t%s\n", ln.Date.Format("2006-01-02"), ln.Kind, dash(ref), dash(ln.Customer),
			ledger.FormatAmount(ln.Amount, ln.Currency), ln.Currency, why)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range st.Totals {
		f := func(v int64) string { return ledger.FormatAmount(v, t.Currency) }
		fmt.Fprintf(w, "%s: opening %s + earned %s − reversed %s − paid %s + returned %s = closing %s\n",
			t.Currency, f(t.Opening), f(t.Earned), f(t.Reversed), f(t.Paid), f(t.Returned), f(t.Closing))
	}
	return nil
}
