package odooclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"

	"github.com/kolo/xmlrpc"
)

// MaxResponseBytes bounds every answer read from Odoo.
const MaxResponseBytes = 32 << 20

// readBody reads a response body up to MaxResponseBytes.
func readBody(op string, resp *http.Response) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	if err != nil {
		return nil, &Error{Kind: KindUnreachable, Op: op, Status: resp.StatusCode, Err: err,
			Message: "the connection broke while reading Odoo's answer: " + clean(err.Error())}
	}
	if len(body) > MaxResponseBytes {
		return nil, &Error{Kind: KindProtocol, Op: op, Status: resp.StatusCode,
			Message: fmt.Sprintf("Odoo's answer is larger than %d MiB; ask for fewer records", MaxResponseBytes>>20)}
	}
	return body, nil
}

// transportError turns a failed HTTP round trip into an *Error.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	msg := clean(err.Error())
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		msg = fmt.Sprintf("no answer from %s within the timeout", c.base)
	case errors.Is(err, context.Canceled):
		msg = "call cancelled"
	}
	return &Error{Kind: KindUnreachable, Op: op, Err: err, Message: msg}
}

// post sends one request and returns status and body.
func (c *Client) post(ctx context.Context, op string, req *http.Request) (int, []byte, error) {
	req = req.WithContext(ctx)
	req.Header.Set("User-Agent", c.cfg.UserAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.transportError(ctx, op, err)
	}
	defer resp.Body.Close()
	body, err := readBody(op, resp)
	if err != nil {
		return 0, nil, err
	}
	return resp.StatusCode, body, nil
}

// xmlrpcCall calls method on /xmlrpc/2/<service> and returns the decoded
// result. Request encoding and response decoding are kolo/xmlrpc's; the
// HTTP exchange is ours, so that it honours ctx and tells a disabled
// XML-RPC (404) from a broken network.
func (c *Client) xmlrpcCall(ctx context.Context, service, method, op string, params []any) (any, error) {
	endpoint := c.base.JoinPath("xmlrpc", "2", service).String()
	req, err := xmlrpc.NewRequest(endpoint, method, params)
	if err != nil {
		return nil, &Error{Kind: KindProtocol, Op: op, Err: err, Message: "cannot encode the call: " + clean(err.Error())}
	}
	status, body, err := c.post(ctx, op, req)
	if err != nil {
		return nil, err
	}
	switch {
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		return nil, &Error{Kind: KindNoAPI, Op: op, Status: status,
			Message: fmt.Sprintf("XML-RPC is not served at %s (HTTP %d): Odoo 19 without its rpc module, Odoo 20+, or not an Odoo URL", endpoint, status)}
	case status < 200 || status > 299:
		return nil, httpStatusError(op, status, body)
	}
	return DecodeXMLRPCResponse(op, body)
}

// httpStatusError describes an HTTP error that is not Odoo's own answer
// (a proxy in front of a stopped Odoo, usually).
func httpStatusError(op string, status int, body []byte) *Error {
	kind := KindUnreachable
	if status < 500 && status != http.StatusTooManyRequests {
		kind = KindProtocol
	}
	return &Error{Kind: kind, Op: op, Status: status, Remote: clean(firstLineOf(body)),
		Message: fmt.Sprintf("HTTP %d %s instead of an Odoo answer", status, http.StatusText(status))}
}

func firstLineOf(b []byte) string {
	if len(b) > 512 {
		b = b[:512]
	}
	line, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return line
}

// DecodeXMLRPCResponse decodes an XML-RPC methodResponse: the result, or
// the fault it carries as an *Error. It never panics on hostile input.
func DecodeXMLRPCResponse(op string, body []byte) (result any, err error) {
	defer func() {
		if r := recover(); r != nil {
			result, err = nil, &Error{Kind: KindProtocol, Op: op, Message: "the XML-RPC answer does not decode (" + clean(fmt.Sprint(r)) + ")"}
		}
	}()
	resp := xmlrpc.Response(body)
	if ferr := resp.Err(); ferr != nil {
		var fe xmlrpc.FaultError
		if errors.As(ferr, &fe) {
			return nil, DecodeFault(op, fe.Code, fe.String)
		}
		// The legacy endpoints send a string faultCode, which kolo cannot
		// put in its int field: decode the fault struct loosely.
		var raw any
		if uerr := resp.Unmarshal(&raw); uerr == nil {
			if m, ok := raw.(map[string]any); ok {
				str, _ := m["faultString"].(string)
				switch code := m["faultCode"].(type) {
				case string:
					return nil, DecodeLegacyFault(op, code, str)
				case int64:
					return nil, DecodeFault(op, int(code), str)
				}
			}
		}
		return nil, &Error{Kind: KindProtocol, Op: op, Err: ferr, Message: "the XML-RPC fault does not decode: " + clean(ferr.Error())}
	}
	if !bytes.Contains(body, []byte("methodResponse")) {
		return nil, &Error{Kind: KindProtocol, Op: op, Remote: clean(firstLineOf(body)),
			Message: "the answer is not XML-RPC: is the url that of an Odoo server?"}
	}
	var out any
	if err := resp.Unmarshal(&out); err != nil {
		return nil, &Error{Kind: KindProtocol, Op: op, Err: err, Message: "the XML-RPC answer does not decode: " + clean(err.Error())}
	}
	return out, nil
}

// json2Call posts to /json/2/<model>/<method> with the API key as bearer
// token and the database in X-Odoo-Database.
func (c *Client) json2Call(ctx context.Context, model, method, op string, body map[string]any) (any, error) {
	payload, err := json.Marshal(body)
	if err != nil {
		return nil, &Error{Kind: KindProtocol, Op: op, Err: err, Message: "cannot encode the call: " + clean(err.Error())}
	}
	endpoint := c.base.JoinPath("json", "2", model, method).String()
	req, err := http.NewRequest(http.MethodPost, endpoint, bytes.NewReader(payload))
	if err != nil {
		return nil, &Error{Kind: KindProtocol, Op: op, Err: err, Message: "cannot build the request: " + clean(err.Error())}
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	req.Header.Set("Authorization", "bearer "+c.cfg.Secret)
	if c.cfg.Database != "" {
		req.Header.Set("X-Odoo-Database", c.cfg.Database)
	}
	status, respBody, err := c.post(ctx, op, req)
	if err != nil {
		return nil, err
	}
	return DecodeJSON2Response(op, status, respBody)
}

// json2ErrorBody is the error document of the JSON-2 API.
type json2ErrorBody struct {
	Name      string `json:"name"`
	Message   string `json:"message"`
	Arguments []any  `json:"arguments"`
	Debug     string `json:"debug"`
}

// DecodeJSON2Response decodes what a JSON-2 endpoint answered: the result
// for a 2xx status, else the error document mapped onto the same kinds as
// XML-RPC faults. It never panics on hostile input.
func DecodeJSON2Response(op string, status int, body []byte) (any, error) {
	if status >= 200 && status <= 299 {
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var out any
		if err := dec.Decode(&out); err != nil {
			return nil, &Error{Kind: KindProtocol, Op: op, Status: status, Err: err,
				Message: "the JSON-2 answer is not JSON: " + clean(err.Error())}
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, &Error{Kind: KindProtocol, Op: op, Status: status,
				Message: "the JSON-2 answer has data after its JSON value"}
		}
		return normalizeJSON(out), nil
	}
	var eb json2ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil || (eb.Name == "" && eb.Message == "") {
		// Not Odoo's error document: a proxy, or no JSON-2 at all.
		if status == http.StatusNotFound || status == http.StatusMethodNotAllowed {
			return nil, &Error{Kind: KindNoAPI, Op: op, Status: status, Remote: clean(firstLineOf(body)),
				Message: fmt.Sprintf("JSON-2 is not served here (HTTP %d): it needs Odoo 19 or later", status)}
		}
		if status == http.StatusUnauthorized {
			return nil, &Error{Kind: KindCredentials, Op: op, Status: status, Message: "wrong API key"}
		}
		return nil, httpStatusError(op, status, body)
	}
	e := &Error{Op: op, Status: status, Remote: clean(firstParagraph(eb.Message))}
	name := eb.Name
	switch {
	case status == http.StatusUnauthorized || strings.HasSuffix(name, ".Unauthorized") || strings.HasSuffix(name, ".AccessDenied"):
		e.Kind = KindCredentials
		e.Message = "wrong API key (JSON-2 accepts API keys only, not passwords)"
		if e.Remote != "" && !strings.EqualFold(e.Remote, "Invalid apikey") && !strings.EqualFold(e.Remote, "Access Denied") {
			e.Message += " (Odoo says: " + e.Remote + ")"
		}
	case strings.HasSuffix(name, ".AccessError"):
		accessError(e, eb.Message)
	case strings.HasSuffix(name, ".MissingError"), strings.HasSuffix(name, ".UserError"),
		strings.HasSuffix(name, ".ValidationError"), strings.HasSuffix(name, ".RedirectWarning"),
		strings.HasSuffix(name, ".UnprocessableEntity"), strings.HasSuffix(name, ".BadRequest"):
		userError(e, eb.Message)
	case status == http.StatusNotFound:
		notFound(e, eb.Message)
	default:
		serverError(e, eb.Name+": "+eb.Message)
	}
	return nil, e
}

func notFound(e *Error, msg string) {
	switch m1, m2, m3 := json2ModelRE.FindStringSubmatch(msg), json2MethodRE.FindStringSubmatch(msg), dbMissingJSON2RE.FindStringSubmatch(msg); {
	case m1 != nil:
		e.Kind, e.Model = KindMissingModel, clean(m1[1])
		e.Message = fmt.Sprintf("model %s does not exist in this database: the Odoo module that provides it is not installed", e.Model)
	case m2 != nil:
		e.Kind = KindMissingModel
		e.Message = fmt.Sprintf("method %s does not exist: the Odoo module that provides it is not installed, or this Odoo version lacks it", clean(m2[1]))
	case m3 != nil:
		e.Kind = KindUnknownDatabase
		e.Message = fmt.Sprintf("database %q does not exist on this Odoo server: check the db setting", clean(m3[1]))
	default:
		e.Kind = KindNoAPI
		e.Message = "JSON-2 answered 404 Not Found: " + orDefault(e.Remote, "no detail")
	}
}

// normalizeJSON turns json.Number into int64 (whole numbers that fit) or
// float64, so both APIs yield the same value types.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return x.String()
		}
		return f
	case []any:
		for i := range x {
			x[i] = normalizeJSON(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = normalizeJSON(x[k])
		}
		return x
	}
	return v
}
