package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// ErrNotRunning means nothing answers on the socket: the agent is not
// running, or the socket path is not the one it uses.
var ErrNotRunning = errors.New("the switchboard agent is not running")

// Client talks to the agent over its socket.
type Client struct {
	Socket string
	hc     *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Client{Socket: path, hc: &http.Client{Transport: tr, Timeout: 15 * time.Second}}
}

// Status fetches the agent's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	err := c.do(ctx, http.MethodGet, PathStatus, nil, &s)
	return s, err
}

// Metrics fetches the metrics text.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var s string
	err := c.do(ctx, http.MethodGet, PathMetrics, nil, &s)
	return s, err
}

// Link asks the agent to queue a link to code.
func (c *Client) Link(ctx context.Context, code string) (LinkAnswer, error) {
	var a LinkAnswer
	err := c.do(ctx, http.MethodPost, PathLink, LinkRequest{PartnerCode: code}, &a)
	return a, err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://agent"+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			return fmt.Errorf("%w (nothing answers on %s: start it with `systemctl start switchboard-agent`, or pass --socket/--config)", ErrNotRunning, c.Socket)
		}
		return fmt.Errorf("ask the agent on %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read the agent's answer: %w", err)
	}
	if resp.StatusCode >= 300 {
		var eb api.ErrorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error.Message != "" {
			return &Error{HTTPStatus: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
		}
		return &Error{HTTPStatus: resp.StatusCode, Message: fmt.Sprintf("agent answered HTTP %d", resp.StatusCode)}
	}
	if s, ok := out.(*string); ok {
		*s = string(data)
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the agent's answer is not valid JSON (agent of another version?): %w", err)
	}
	return nil
}
