package installer

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// UnknownCodeError is the registry refusing the partner code (422
// unknown_partner_code): the install stops and nothing is changed.
type UnknownCodeError struct {
	Code    string
	Message string
}

func (e *UnknownCodeError) Error() string {
	return fmt.Sprintf("the registry does not know partner code %s: %s", e.Code, e.Message)
}

// RegistryError is any other refusal by the registry.
type RegistryError struct {
	Status  int
	Code    string
	Message string
}

func (e *RegistryError) Error() string {
	return fmt.Sprintf("registry answered %d %s: %s", e.Status, e.Code, e.Message)
}

// unavailableError means the registry could not be reached or is down for
// now (network error, 5xx, 429): the activation waits in the outbox.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

func isUnavailable(err error) bool {
	var u *unavailableError
	return errors.As(err, &u)
}

// registryClient is the installer's side of registry/api.
type registryClient struct {
	base string
	http *http.Client
	now  func() time.Time
}

// normaliseRegistryURL checks a registry base URL.
func normaliseRegistryURL(raw string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil:
		return "", fmt.Errorf("registry URL %q: %v", raw, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("registry URL %q must start with https:// (or http:// for a registry on loopback)", raw)
	case u.Host == "":
		return "", fmt.Errorf("registry URL %q has no host", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("registry URL %q must not carry a query or fragment: give the base URL, e.g. https://registry.example.com", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

const maxRegistryAnswer = 4 << 20

func (c *registryClient) do(ctx context.Context, method, path string, body []byte, installID string, key ed25519.PrivateKey, out any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != nil {
		api.SignRequest(req, body, installID, key, c.now())
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, &unavailableError{fmt.Errorf("registry at %s is unreachable: %w", c.base, err)}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRegistryAnswer))
	if err != nil {
		return resp.StatusCode, &unavailableError{fmt.Errorf("read the registry's answer: %w", err)}
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		_ = json.Unmarshal(raw, &eb)
		if eb.Error.Code == "" {
			eb.Error.Code = fmt.Sprintf("http_%d", resp.StatusCode)
			eb.Error.Message = strings.TrimSpace(string(raw))
			if len(eb.Error.Message) > 200 {
				eb.Error.Message = eb.Error.Message[:200] + "…"
			}
		}
		re := &RegistryError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		if resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout {
			return resp.StatusCode, &unavailableError{re}
		}
		return resp.StatusCode, re
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return resp.StatusCode, fmt.Errorf("the registry's answer to %s %s is not the expected JSON: %w", method, path, err)
		}
	}
	return resp.StatusCode, nil
}

// activate posts the activation; created is true for a new install (201).
func (c *registryClient) activate(ctx context.Context, key ed25519.PrivateKey, req api.ActivationRequest) (api.ActivationResponse, bool, error) {
	var resp api.ActivationResponse
	body, err := json.Marshal(req)
	if err != nil {
		return resp, false, fmt.Errorf("encode activation: %w", err)
	}
	status, err := c.do(ctx, http.MethodPost, api.PathActivations, body, "", key, &resp)
	if err != nil {
		var re *RegistryError
		if errors.As(err, &re) && re.Code == api.CodeUnknownPartnerCode {
			return resp, false, &UnknownCodeError{Code: req.PartnerCode, Message: re.Message}
		}
		return resp, false, err
	}
	if resp.InstallID == "" || resp.Licence == "" {
		return resp, false, errors.New("the registry answered the activation without an install id or licence")
	}
	return resp, status == http.StatusCreated, nil
}

// keys fetches the vendor's public licence keys.
func (c *registryClient) keys(ctx context.Context) ([]licensing.PublicKey, string, error) {
	var kr api.KeysResponse
	if _, err := c.do(ctx, http.MethodGet, api.PathKeys, nil, "", nil, &kr); err != nil {
		return nil, "", fmt.Errorf("fetch the vendor keys: %w", err)
	}
	var keys []licensing.PublicKey
	var pemText strings.Builder
	for _, k := range kr.Keys {
		if len(k.PublicKey) != ed25519.PublicKeySize {
			return nil, "", fmt.Errorf("vendor key %q from %s is not an Ed25519 public key", k.ID, api.PathKeys)
		}
		pub := ed25519.PublicKey(k.PublicKey)
		if id := licensing.KeyID(pub); id != k.ID {
			return nil, "", fmt.Errorf("vendor key %q from %s has the id %s: the answer is damaged", k.ID, api.PathKeys, id)
		}
		keys = append(keys, licensing.PublicKey{ID: k.ID, Key: pub})
		pemText.WriteString(strings.TrimSpace(k.PEM) + "\n")
	}
	if len(keys) == 0 {
		return nil, "", fmt.Errorf("the registry lists no vendor keys at %s", api.PathKeys)
	}
	return keys, pemText.String(), nil
}

// deactivate tells the registry the install was removed (used to undo an
// activation this run created).
func (c *registryClient) deactivate(ctx context.Context, key ed25519.PrivateKey, installID, reason string) error {
	body, err := json.Marshal(api.DeactivateRequest{Reason: reason})
	if err != nil {
		return err
	}
	_, err = c.do(ctx, http.MethodPost, api.InstallPath(api.PathDeactivate, installID), body, installID, key, nil)
	return err
}
