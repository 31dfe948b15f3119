package asterisk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/CyCoreSystems/ari/v5"
)

// maxResponseBytes bounds one ARI response; the endpoint list of a large PBX
// (10 000 endpoints) is about 2 MiB.
const maxResponseBytes = 16 << 20

// ErrUnauthorised marks a 401 from Asterisk: the ARI user or password is
// wrong, or the user is not in ari.conf.
var ErrUnauthorised = errors.New("asterisk refused the ARI credentials")

// APIError is a non-2xx answer from ARI, with Asterisk's {"message": …}.
type APIError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *APIError) Error() string {
	msg := e.Message
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("ARI %s %s: %d %s", e.Method, e.Path, e.Status, msg)
}

// Unwrap lets errors.Is(err, ErrUnauthorised) see a 401.
func (e *APIError) Unwrap() error {
	if e.Status == http.StatusUnauthorized {
		return ErrUnauthorised
	}
	return nil
}

// rest calls ARI's REST API with a deadline on every call (the library's
// client has none).
type rest struct {
	base       string
	user, pass string
	hc         *http.Client
}

func newREST(s Settings) *rest {
	tr := &http.Transport{
		Proxy: nil, // ARI is on the PBX itself or the LAN: never through a proxy
		DialContext: (&net.Dialer{
			Timeout:   s.RequestTimeout,
			KeepAlive: 15 * time.Second,
		}).DialContext,
		TLSHandshakeTimeout:   s.RequestTimeout,
		ResponseHeaderTimeout: s.RequestTimeout,
		MaxIdleConns:          4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &rest{base: s.URL, user: s.User, pass: s.Password, hc: &http.Client{Transport: tr, Timeout: s.RequestTimeout}}
}

// close drops idle connections (a session is being torn down).
func (r *rest) close() { r.hc.CloseIdleConnections() }

// do sends one request and decodes a JSON answer into out (nil: ignore it).
func (r *rest) do(ctx context.Context, method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode ARI %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, rd)
	if err != nil {
		return fmt.Errorf("ARI %s %s: %w", method, path, err)
	}
	req.SetBasicAuth(r.user, r.pass)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.hc.Do(req)
	if err != nil {
		return fmt.Errorf("ARI %s %s: %w", method, path, plainNetError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("ARI %s %s: read answer: %w", method, path, plainNetError(err))
	}
	if len(data) > maxResponseBytes {
		return fmt.Errorf("ARI %s %s: answer larger than %d bytes", method, path, maxResponseBytes)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var m struct {
			Message string `json:"message"`
		}
		if json.Unmarshal(data, &m) == nil {
			apiErr.Message = oneLine(m.Message, 200)
		}
		return apiErr
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("ARI %s %s: answer is not the JSON ARI describes: %w", method, path, err)
	}
	return nil
}

func (r *rest) info(ctx context.Context) (*ari.AsteriskInfo, error) {
	var info ari.AsteriskInfo
	if err := r.do(ctx, http.MethodGet, "/asterisk/info", nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// asteriskPing is ARI's AsteriskPing model.
type asteriskPing struct {
	AsteriskID string       `json:"asterisk_id"`
	Ping       string       `json:"ping"`
	Timestamp  ari.DateTime `json:"timestamp"`
}

func (r *rest) ping(ctx context.Context) (asteriskPing, error) {
	var p asteriskPing
	err := r.do(ctx, http.MethodGet, "/asterisk/ping", nil, &p)
	return p, err
}

func (r *rest) endpoints(ctx context.Context) ([]ari.EndpointData, error) {
	var eps []ari.EndpointData
	err := r.do(ctx, http.MethodGet, "/endpoints", nil, &eps)
	return eps, err
}

func (r *rest) channels(ctx context.Context) ([]ari.ChannelData, error) {
	var chans []ari.ChannelData
	err := r.do(ctx, http.MethodGet, "/channels", nil, &chans)
	return chans, err
}

// setEventFilter asks Asterisk to send the application only the given event
// types (PUT /applications/{app}/eventFilter, Asterisk 13.26+/16.3+).
func (r *rest) setEventFilter(ctx context.Context, app string, types []string) error {
	allowed := make([]map[string]string, 0, len(types))
	for _, t := range types {
		allowed = append(allowed, map[string]string{"type": t})
	}
	return r.do(ctx, http.MethodPut, "/applications/"+url.PathEscape(app)+"/eventFilter",
		map[string]any{"allowed": allowed, "disallowed": []any{}}, nil)
}

// plainNetError shortens Go's `Get "http://…": dial tcp …` to its cause:
// the method and path are already in the message.
func plainNetError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// oneLine makes text from Asterisk safe for a one-line message.
func oneLine(s string, max int) string {
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }), " ")
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
