// Package client is the Go client of the registry's staff API (partners,
// installs) and its public partner endpoints. The CLI and the heartbeat
// bench use it.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Client talks to one registry.
type Client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// New returns a client for the registry at baseURL (http or https) using
// the admin token (may be empty for the public endpoints).
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimSuffix(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("registry URL %q is not an http(s) URL like http://127.0.0.1:8420", baseURL)
	}
	return &Client{base: u, token: token, http: &http.Client{Timeout: 60 * time.Second}}, nil
}

// APIError is an error answer of the registry.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("registry answered %d %s: %s", e.Status, e.Code, e.Message)
}

// UnreachableError means the registry could not be reached at all.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("registry at %s is unreachable: %v (is it running? check SWITCHBOARD_REGISTRY_URL or --registry)", e.URL, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// IsUnreachable reports whether err means the registry could not be reached.
func IsUnreachable(err error) bool {
	var ue *UnreachableError
	return errors.As(err, &ue)
}

// do sends in as JSON (none when nil) and decodes the answer into out
// (ignored when nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body []byte
	contentType := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body, contentType = b, "application/json"
	}
	raw, err := c.doRaw(ctx, method, path, q, contentType, body)
	if err != nil {
		return err
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("registry answer to %s %s is not the expected JSON: %w", method, path, err)
		}
	}
	return nil
}

// doRaw sends body (none when nil) and returns the answer as it came: do
// builds on it, and it serves alone for a body or an answer that is not
// JSON (a CSV import, a CSV statement).
func (c *Client) doRaw(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) ([]byte, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &UnreachableError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return nil, &UnreachableError{URL: c.base.String(), Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
			return nil, &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return nil, &APIError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(raw))}
	}
	return raw, nil
}

func partnerPath(pattern, code string) string {
	return strings.Replace(pattern, "{code}", url.PathEscape(code), 1)
}

func installPath(pattern, id string) string {
	return strings.Replace(pattern, "{id}", url.PathEscape(id), 1)
}

// CreatePartner creates a partner or referral and returns it with its code.
func (c *Client) CreatePartner(ctx context.Context, req adminapi.CreatePartnerRequest) (store.Partner, error) {
	var p store.Partner
	err := c.do(ctx, http.MethodPost, adminapi.PathPartners, nil, req, &p)
	return p, err
}

// ApprovePartner approves a pending (or suspended) partner.
func (c *Client) ApprovePartner(ctx context.Context, code, reason string) (store.Partner, error) {
	var p store.Partner
	err := c.do(ctx, http.MethodPost, partnerPath(adminapi.PathPartnerApprove, code), nil, adminapi.StatusRequest{Reason: reason}, &p)
	return p, err
}

// SuspendPartner suspends a partner: nothing new links to its code.
func (c *Client) SuspendPartner(ctx context.Context, code, reason string) (store.Partner, error) {
	var p store.Partner
	err := c.do(ctx, http.MethodPost, partnerPath(adminapi.PathPartnerSuspend, code), nil, adminapi.StatusRequest{Reason: reason}, &p)
	return p, err
}

// GetPartner returns one partner.
func (c *Client) GetPartner(ctx context.Context, code string) (store.Partner, error) {
	var p store.Partner
	err := c.do(ctx, http.MethodGet, partnerPath(adminapi.PathPartner, code), nil, nil, &p)
	return p, err
}

// ListPartners lists partners, optionally by tier and status.
func (c *Client) ListPartners(ctx context.Context, tier store.Tier, status store.PartnerStatus) ([]store.Partner, error) {
	q := url.Values{}
	if tier != "" {
		q.Set("tier", string(tier))
	}
	if status != "" {
		q.Set("status", string(status))
	}
	var out adminapi.PartnerList
	err := c.do(ctx, http.MethodGet, adminapi.PathPartners, q, nil, &out)
	return out.Partners, err
}

// InstallQuery selects installs for ListInstalls.
type InstallQuery struct {
	Status  string // active, stale, dead, deactivated
	Partner string
	Cloned  bool
}

// ListInstalls returns every install matching q, following pages.
func (c *Client) ListInstalls(ctx context.Context, iq InstallQuery) ([]adminapi.InstallView, error) {
	var all []adminapi.InstallView
	after := ""
	for {
		q := url.Values{}
		for k, v := range map[string]string{"status": iq.Status, "partner": iq.Partner, "after": after} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if iq.Cloned {
			q.Set("cloned", "true")
		}
		var page adminapi.InstallList
		if err := c.do(ctx, http.MethodGet, adminapi.PathInstalls, q, nil, &page); err != nil {
			return all, err
		}
		all = append(all, page.Installs...)
		if page.NextAfter == "" {
			return all, nil
		}
		after = page.NextAfter
	}
}

// GetInstall returns one install with its audit trail.
func (c *Client) GetInstall(ctx context.Context, id string) (adminapi.InstallDetail, error) {
	var out adminapi.InstallDetail
	err := c.do(ctx, http.MethodGet, installPath(adminapi.PathInstall, id), nil, nil, &out)
	return out, err
}

// MoveInstall relinks an install (empty code unlinks), recording who and why.
func (c *Client) MoveInstall(ctx context.Context, id string, req adminapi.MoveRequest) (adminapi.InstallView, error) {
	var out adminapi.InstallView
	err := c.do(ctx, http.MethodPost, installPath(adminapi.PathInstallMove, id), nil, req, &out)
	return out, err
}

// ReportSeqs returns every sequence number stored for an install, ascending.
func (c *Client) ReportSeqs(ctx context.Context, id string) ([]uint64, error) {
	var all []uint64
	var after uint64
	for {
		q := url.Values{"after": {strconv.FormatUint(after, 10)}}
		var page adminapi.SeqList
		if err := c.do(ctx, http.MethodGet, installPath(adminapi.PathInstallSeqs, id), q, nil, &page); err != nil {
			return all, err
		}
		all = append(all, page.Seqs...)
		if page.NextAfter == 0 {
			return all, nil
		}
		after = page.NextAfter
	}
}

// Reports returns stored reports of an install after a sequence number.
func (c *Client) Reports(ctx context.Context, id string, after uint64, limit int) (adminapi.ReportList, error) {
	q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(limit)}}
	var out adminapi.ReportList
	err := c.do(ctx, http.MethodGet, installPath(adminapi.PathInstallReports, id), q, nil, &out)
	return out, err
}

// Signup signs up a referral through the public endpoint.
func (c *Client) Signup(ctx context.Context, req adminapi.SignupRequest) (adminapi.SignupResponse, error) {
	var out adminapi.SignupResponse
	err := c.do(ctx, http.MethodPost, adminapi.PathSignup, nil, req, &out)
	return out, err
}

// Directory returns the public partner directory.
func (c *Client) Directory(ctx context.Context) (adminapi.Directory, error) {
	var out adminapi.Directory
	err := c.do(ctx, http.MethodGet, adminapi.PathDirectory, nil, nil, &out)
	return out, err
}

// Keys returns the vendor's public licence keys.
func (c *Client) Keys(ctx context.Context) (api.KeysResponse, error) {
	var out api.KeysResponse
	err := c.do(ctx, http.MethodGet, api.PathKeys, nil, nil, &out)
	return out, err
}
