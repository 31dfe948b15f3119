package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// ImportPayments sends a CSV file of payments; all are recorded or none.
func (c *Client) ImportPayments(ctx context.Context, csv []byte) (adminapi.ImportResult, error) {
	var res adminapi.ImportResult
	raw, err := c.doRaw(ctx, http.MethodPost, adminapi.PathPaymentImport, nil, "text/csv", csv)
	if err != nil {
		return res, err
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("registry answer to the import is not the expected JSON: %w", err)
	}
	return res, nil
}

// RunPayouts runs (or returns the existing) payout batch of a month.
func (c *Client) RunPayouts(ctx context.Context, month string) (adminapi.RunResult, error) {
	var res adminapi.RunResult
	err := c.do(ctx, http.MethodPost, adminapi.PathPayoutRuns, nil, adminapi.RunRequest{Month: month}, &res)
	return res, err
}

// PayoutBatch returns a batch with its files.
func (c *Client) PayoutBatch(ctx context.Context, batchID string) (adminapi.RunResult, error) {
	var res adminapi.RunResult
	err := c.do(ctx, http.MethodGet, strings.Replace(adminapi.PathPayoutBatch, "{batch}", url.PathEscape(batchID), 1), nil, nil, &res)
	return res, err
}

// MarkPaid records the results of payout items.
func (c *Client) MarkPaid(ctx context.Context, batchID string, results []ledger.PayoutResult) (adminapi.RunResult, error) {
	var res adminapi.RunResult
	err := c.do(ctx, http.MethodPost, strings.Replace(adminapi.PathPayoutResults, "{batch}", url.PathEscape(batchID), 1), nil,
		adminapi.ResultsRequest{Results: results}, &res)
	return res, err
}

// CheckLedger asks the registry to prove its books balance.
func (c *Client) CheckLedger(ctx context.Context) (adminapi.CheckResult, error) {
	var res adminapi.CheckResult
	err := c.do(ctx, http.MethodGet, adminapi.PathLedgerCheck, nil, nil, &res)
	return res, err
}

// Statement returns a payee's statement for a month.
func (c *Client) Statement(ctx context.Context, code, month string) (ledger.Statement, error) {
	var st ledger.Statement
	err := c.do(ctx, http.MethodGet, partnerPath(adminapi.PathStatement, code), url.Values{"month": {month}}, nil, &st)
	return st, err
}

// StatementCSV returns a payee's statement for a month as CSV.
func (c *Client) StatementCSV(ctx context.Context, code, month string) ([]byte, error) {
	return c.doRaw(ctx, http.MethodGet, partnerPath(adminapi.PathStatement, code), url.Values{"month": {month}, "format": {"csv"}}, "", nil)
}

func customerPath(pattern, id string) string {
	return strings.Replace(pattern, "{customer}", url.PathEscape(id), 1)
}

// CustomerSignup reports a web sign-up with the visitor id from the referral cookie.
func (c *Client) CustomerSignup(ctx context.Context, ev adminapi.SignupEvent) (adminapi.SignupResult, error) {
	var res adminapi.SignupResult
	err := c.do(ctx, http.MethodPost, adminapi.PathSignups, nil, ev, &res)
	return res, err
}

// Customer returns what the registry knows of a billing customer.
func (c *Client) Customer(ctx context.Context, id string) (adminapi.CustomerView, error) {
	var v adminapi.CustomerView
	err := c.do(ctx, http.MethodGet, customerPath(adminapi.PathCustomer, id), nil, nil, &v)
	return v, err
}

// LinkCustomer links a customer to a payee by hand and/or assigns installs.
func (c *Client) LinkCustomer(ctx context.Context, id string, req adminapi.LinkCustomerRequest) (adminapi.CustomerView, error) {
	var v adminapi.CustomerView
	err := c.do(ctx, http.MethodPost, customerPath(adminapi.PathCustomerLink, id), nil, req, &v)
	return v, err
}

// MoveCustomer moves a customer to another payee (staff, recorded).
func (c *Client) MoveCustomer(ctx context.Context, id string, req adminapi.MoveCustomerRequest) (adminapi.CustomerView, error) {
	var v adminapi.CustomerView
	err := c.do(ctx, http.MethodPost, customerPath(adminapi.PathCustomerMove, id), nil, req, &v)
	return v, err
}

// UpdatePartner changes the fields req names (PATCH /v1/admin/partners/{code}).
func (c *Client) UpdatePartner(ctx context.Context, code string, req adminapi.UpdatePartnerRequest) (store.Partner, error) {
	var p store.Partner
	err := c.do(ctx, http.MethodPatch, partnerPath(adminapi.PathPartner, code), nil, req, &p)
	return p, err
}
