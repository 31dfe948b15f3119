package registry

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// statusWriter remembers the status and error message for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	errMsg string
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func statusLabel(code int) string { return strconv.Itoa(code) }

// httpError is an answer other than success, with its api code.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func errorf(status int, code, format string, args ...any) *httpError {
	return &httpError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// writeError writes {"error":{"code":…,"message":…}}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.errMsg = msg
	}
	body, _ := json.Marshal(api.ErrorBody{Error: api.Error{Code: code, Message: msg}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// fail answers err: an *httpError as it is, store refusals with their
// status, anything else as 500 without leaking internals.
func (s *Server) fail(w http.ResponseWriter, err error) {
	var he *httpError
	switch {
	case errors.As(err, &he):
		writeError(w, he.status, he.code, he.msg)
	case errors.Is(err, store.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "the registry is shutting down: retry shortly")
	default:
		s.log.Error("internal error", "error", err)
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "internal error: the registry logged the details; retry later")
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, api.CodeInternal, "encode answer: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// readBody reads the whole body, at most MaxBodyBytes.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	limit := s.cfg.MaxBodyBytes
	if r.ContentLength > limit {
		return nil, errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "body is %d bytes; the limit is %d: send smaller batches", r.ContentLength, limit)
	}
	if r.ContentLength >= 0 {
		// The length is known and within the limit, and the body ends
		// there: one allocation of the right size.
		body := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, errorf(http.StatusBadRequest, api.CodeMalformed, "read body: %v", err)
		}
		return body, nil
	}
	var buf bytes.Buffer
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, errorf(http.StatusRequestEntityTooLarge, api.CodeTooLarge, "body is larger than the limit of %d bytes: send smaller batches", limit)
	case err != nil:
		return nil, errorf(http.StatusBadRequest, api.CodeMalformed, "read body: %v", err)
	}
	return buf.Bytes(), nil
}

// decodeStrict decodes one JSON object, refusing unknown fields and
// trailing data: staff and sign-up bodies are small and typed by hand, so a
// misspelt field must not be silently ignored.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, api.CodeMalformed, "body is not the expected JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, api.CodeMalformed, "body has data after the JSON object")
	}
	return nil
}

func (s *Server) authorised(r *http.Request) bool {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.token)) == 1
}

// clientIP is the address of the peer (the registry is meant to be reached
// directly or through a proxy that keeps per-client connections; proxy
// headers are not trusted).
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
