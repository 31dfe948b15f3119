package registry

import (
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Bounds on what one report or activation may carry. They keep a hostile
// or broken agent from filling the store through one field.
const (
	maxReportBytes = 64 << 10
	maxStringLen   = 256
	maxListLen     = 64
	maxSeatKinds   = 32
	maxSeats       = 1 << 31
)

// DecodeError is a body that is not a valid batch or activation. It says
// where and what.
type DecodeError struct{ Msg string }

func (e *DecodeError) Error() string { return e.Msg }

func decodeErrorf(format string, args ...any) error {
	return &DecodeError{Msg: fmt.Sprintf(format, args...)}
}

// DecodeReportBatch parses and checks the body of POST
// /v1/installs/{id}/reports: 1 to maxReports reports, each with a seq > 0,
// a known kind and a time. Each report is re-encoded canonically for
// storage: the install's signature covers the whole batch, not a single
// report, so keeping the report's original bytes would prove nothing,
// while one decode instead of two halves the ingest cost. Unknown fields
// are ignored.
//
// Batches as agents send them take a hand-written fast path
// (decode_fast.go); anything outside it goes through encoding/json with
// the same result.
func DecodeReportBatch(body []byte, maxReports int) ([]store.IncomingReport, error) {
	reports, ok := parseBatchFast(body, maxReports)
	if !ok {
		var batch api.ReportBatch
		if err := json.Unmarshal(body, &batch); err != nil {
			return nil, decodeErrorf("body is not a JSON report batch {\"reports\":[…]}: %v", err)
		}
		reports = batch.Reports
	}
	return checkReports(reports, maxReports)
}

// decodeReportBatchSlow is DecodeReportBatch through encoding/json only,
// the reference the fast path is fuzzed against.
func decodeReportBatchSlow(body []byte, maxReports int) ([]store.IncomingReport, error) {
	var batch api.ReportBatch
	if err := json.Unmarshal(body, &batch); err != nil {
		return nil, decodeErrorf("body is not a JSON report batch {\"reports\":[…]}: %v", err)
	}
	return checkReports(batch.Reports, maxReports)
}

// checkReports checks decoded reports and encodes each canonically. The
// encodings share one buffer: one allocation per batch, not per report.
func checkReports(reports []api.Report, maxReports int) ([]store.IncomingReport, error) {
	switch n := len(reports); {
	case n == 0:
		return nil, decodeErrorf("batch has no reports: send at least one")
	case n > maxReports:
		return nil, decodeErrorf("batch has %d reports; the limit is %d: split it", n, maxReports)
	}
	out := make([]store.IncomingReport, len(reports))
	buf := make([]byte, 0, 256*len(reports))
	for i := range reports {
		r := &reports[i]
		if err := checkReport(*r); err != nil {
			return nil, decodeErrorf("report %d (seq %d): %v", i+1, r.Seq, err)
		}
		r.At = r.At.UTC()
		start := len(buf)
		var ok bool
		if buf, ok = appendReportJSON(buf, r); !ok {
			raw, err := json.Marshal(r)
			if err != nil {
				return nil, decodeErrorf("report %d (seq %d): %v", i+1, r.Seq, err)
			}
			buf = append(buf[:start], raw...)
		}
		// A full three-index slice: a later append never writes into it.
		raw := buf[start:len(buf):len(buf)]
		if len(raw) > maxReportBytes {
			return nil, decodeErrorf("report %d is %d bytes; the limit is %d", i+1, len(raw), maxReportBytes)
		}
		out[i] = store.IncomingReport{Report: *r, Raw: raw}
	}
	return out, nil
}

func checkReport(r api.Report) error {
	if r.Seq == 0 {
		return fmt.Errorf("seq is missing or 0: sequence numbers start at 1")
	}
	switch r.Kind {
	case api.KindHeartbeat:
		if r.Summary != nil {
			return fmt.Errorf("a heartbeat carries no summary: use kind %q", api.KindHeartbeatSummary)
		}
	case api.KindHeartbeatSummary:
		if r.Summary == nil {
			return fmt.Errorf("kind %s needs a summary", r.Kind)
		}
		s := r.Summary
		if s.Count < 1 || s.FirstSeq == 0 || s.FirstSeq > s.LastSeq || s.LastSeq > r.Seq || s.LastAt.Before(s.FirstAt) {
			return fmt.Errorf("summary is inconsistent: count ≥ 1, 0 < first_seq ≤ last_seq ≤ seq and first_at ≤ last_at are required")
		}
	default:
		return fmt.Errorf("unknown kind %q: use %q or %q", r.Kind, api.KindHeartbeat, api.KindHeartbeatSummary)
	}
	if r.At.IsZero() || r.At.Year() < 2000 || r.At.Year() > 9999 {
		return fmt.Errorf("at %q is missing or out of range", r.At.Format(time.RFC3339))
	}
	if r.Facts != nil {
		if err := checkFacts(*r.Facts); err != nil {
			return err
		}
	}
	if len(r.Seats) > maxSeatKinds {
		return fmt.Errorf("%d seat kinds; at most %d", len(r.Seats), maxSeatKinds)
	}
	for k, v := range r.Seats {
		if err := checkString("seat kind", k); err != nil {
			return err
		}
		if v < 0 || v > maxSeats {
			return fmt.Errorf("seats %s = %d out of range", k, v)
		}
	}
	if len(r.Plugins) > maxListLen {
		return fmt.Errorf("%d plugins; at most %d", len(r.Plugins), maxListLen)
	}
	for _, p := range r.Plugins {
		for _, f := range []struct{ name, v string }{{"plugin name", p.Name}, {"plugin state", p.State}} {
			if err := checkString(f.name, f.v); err != nil {
				return err
			}
		}
		if !utf8.ValidString(p.Detail) || len(p.Detail) > 4096 {
			return fmt.Errorf("plugin %s detail is not UTF-8 or longer than 4096 bytes", p.Name)
		}
	}
	return checkString("licence_state", r.LicenceState)
}

func checkFacts(f api.Facts) error {
	for _, s := range []struct{ name, v string }{
		{"hostname", f.Hostname}, {"machine_id", f.MachineID}, {"os", f.OS}, {"agent_version", f.AgentVersion},
	} {
		if err := checkString(s.name, s.v); err != nil {
			return err
		}
	}
	if len(f.Products) > maxListLen {
		return fmt.Errorf("%d products; at most %d", len(f.Products), maxListLen)
	}
	for _, p := range f.Products {
		if p.Name == "" {
			return fmt.Errorf("a product has no name")
		}
		for _, s := range []struct{ name, v string }{
			{"product name", p.Name}, {"product version", p.Version}, {"distribution", p.Distribution}, {"edition", p.Edition},
		} {
			if err := checkString(s.name, s.v); err != nil {
				return err
			}
		}
	}
	return nil
}

func checkString(name, v string) error {
	if len(v) > maxStringLen {
		return fmt.Errorf("%s is %d bytes; at most %d", name, len(v), maxStringLen)
	}
	plain := true // printable ASCII, the common case: one pass
	for i := 0; i < len(v) && plain; i++ {
		plain = v[i] >= 0x20 && v[i] < 0x7f
	}
	if plain {
		return nil
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%s contains control characters", name)
		}
	}
	return nil
}

// DecodeActivation parses and checks the body of POST /v1/activations. The
// partner code is returned as typed; the caller normalises it.
func DecodeActivation(body []byte) (api.ActivationRequest, error) {
	var req api.ActivationRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return req, decodeErrorf("body is not a JSON activation request: %v", err)
	}
	if len(req.PublicKey) != ed25519.PublicKeySize {
		return req, decodeErrorf("public_key is %d bytes; an Ed25519 public key (base64) has %d", len(req.PublicKey), ed25519.PublicKeySize)
	}
	if err := checkString("partner_code", req.PartnerCode); err != nil {
		return req, &DecodeError{Msg: err.Error()}
	}
	if err := checkFacts(req.Facts); err != nil {
		return req, &DecodeError{Msg: err.Error()}
	}
	return req, nil
}
