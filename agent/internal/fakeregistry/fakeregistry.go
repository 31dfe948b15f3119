// Package fakeregistry is an in-process registry that follows the wire
// contract of registry/api (signed requests, activation idempotent per
// public key, report batches idempotent per (install, seq), link with 409,
// JSON error bodies, Retry-After) and issues real signed licences. The
// agent's tests use it where they need to look inside the receiver (exact
// order of arrival, failure injection); tests with the real registry
// binary cover the rest.
package fakeregistry

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// Arrival is one report the registry stored, in arrival order.
type Arrival struct {
	InstallID string
	Report    api.Report
}

// Registry is the fake. Use it as an http.Handler.
type Registry struct {
	Key      licensing.SigningKey
	Interval time.Duration // heartbeat interval handed out
	// Partners maps known canonical codes to their tier.
	Partners map[string]string
	// LicenceFor, when set, changes the licences issued (not-after, grace).
	LicenceFor func(l *licensing.Licence)

	mu       sync.Mutex
	down     int // >0: answer 503 with Retry-After
	fail     map[string]int
	installs map[string]*install
	byKey    map[string]string
	arrivals []Arrival
	seen     map[string]map[uint64]int
	nextID   int
	reissue  bool
	requests int
}

type install struct {
	id          string
	pub         ed25519.PublicKey
	partner     *api.PartnerRef
	deactivated bool
}

// New returns a fake registry signing licences with key.
func New(key licensing.SigningKey) *Registry {
	return &Registry{
		Key: key, Interval: time.Hour, Partners: map[string]string{},
		fail: map[string]int{}, installs: map[string]*install{}, byKey: map[string]string{},
		seen: map[string]map[uint64]int{},
	}
}

// SetDown makes every request answer 503 (with Retry-After: 0) while down.
func (r *Registry) SetDown(down bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if down {
		r.down = 1
	} else {
		r.down = 0
	}
}

// FailNext makes the next n requests to paths containing part answer with
// status (after reading the body, before storing anything).
func (r *Registry) FailNext(part string, n, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail[fmt.Sprintf("%s|%d", part, status)] = n
}

// ReissueOnNextBatch makes the next report batch answer carry a fresh licence.
func (r *Registry) ReissueOnNextBatch() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reissue = true
}

// Arrivals returns the reports stored, in arrival order.
func (r *Registry) Arrivals() []Arrival {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Arrival(nil), r.arrivals...)
}

// Received returns how many times each seq of an install was received
// (stored or answered as duplicate).
func (r *Registry) Received(installID string) map[uint64]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[uint64]int{}
	for k, v := range r.seen[installID] {
		out[k] = v
	}
	return out
}

// Installs returns the ids of the activated installs.
func (r *Registry) Installs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id := range r.installs {
		ids = append(ids, id)
	}
	return ids
}

// Deactivated reports whether the install was deactivated.
func (r *Registry) Deactivated(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	in := r.installs[id]
	return in != nil && in.deactivated
}

// Requests counts the requests served.
func (r *Registry) Requests() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.requests
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(api.ErrorBody{Error: api.Error{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// ServeHTTP implements the install-facing part of registry/api.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(io.LimitReader(req.Body, 32<<20))
	if err != nil {
		writeErr(w, 400, api.CodeMalformed, "read body: "+err.Error())
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	if r.down > 0 {
		w.Header().Set("Retry-After", "0")
		writeErr(w, 503, api.CodeUnavailable, "registry is down (test)")
		return
	}
	for k, n := range r.fail {
		part, st, _ := strings.Cut(k, "|")
		if n > 0 && strings.Contains(req.URL.Path, part) {
			r.fail[k] = n - 1
			var status int
			fmt.Sscan(st, &status)
			writeErr(w, status, "injected", "injected failure")
			return
		}
	}
	if req.Method != http.MethodPost && !(req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/licence")) {
		writeErr(w, 405, api.CodeMalformed, "method not allowed")
		return
	}
	sig, err := api.ParseSignature(req.Header.Get(api.SignatureHeader))
	if err != nil {
		writeErr(w, 401, api.CodeBadSignature, err.Error())
		return
	}
	if req.URL.Path == api.PathActivations {
		r.activate(w, req, sig, body)
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/v1/installs/")
	id, action, ok2 := strings.Cut(rest, "/")
	if !ok || !ok2 {
		writeErr(w, 404, api.CodeNotFound, "no such path")
		return
	}
	in := r.installs[id]
	if in == nil || sig.InstallID != id {
		writeErr(w, 404, api.CodeUnknownInstall, "unknown install "+id)
		return
	}
	if err := sig.Verify(req.Method, req.URL.Path, body, in.pub, time.Now()); err != nil {
		writeErr(w, 401, api.CodeBadSignature, err.Error())
		return
	}
	if in.deactivated {
		writeErr(w, 410, api.CodeDeactivated, "install deactivated")
		return
	}
	switch action {
	case "reports":
		r.reports(w, in, body)
	case "link":
		r.link(w, in, body)
	case "deactivate":
		in.deactivated = true
		writeJSON(w, 200, api.DeactivateResponse{InstallID: id, State: "deactivated", DeactivatedAt: time.Now().UTC()})
	case "licence":
		writeJSON(w, 200, api.LicenceResponse{Licence: r.licence(in)})
	default:
		writeErr(w, 404, api.CodeNotFound, "no such path")
	}
}

func (r *Registry) activate(w http.ResponseWriter, req *http.Request, sig api.Signature, body []byte) {
	var ar api.ActivationRequest
	if err := json.Unmarshal(body, &ar); err != nil || len(ar.PublicKey) != ed25519.PublicKeySize {
		writeErr(w, 400, api.CodeMalformed, "bad activation body")
		return
	}
	if !sig.PublicKey.Equal(ed25519.PublicKey(ar.PublicKey)) {
		writeErr(w, 401, api.CodeBadSignature, "signature key differs from the body's public key")
		return
	}
	if err := sig.Verify(req.Method, req.URL.Path, body, sig.PublicKey, time.Now()); err != nil {
		writeErr(w, 401, api.CodeBadSignature, err.Error())
		return
	}
	var partner *api.PartnerRef
	if ar.PartnerCode != "" {
		tier, ok := r.Partners[ar.PartnerCode]
		if !ok {
			writeErr(w, 422, api.CodeUnknownPartnerCode, "unknown partner code "+ar.PartnerCode)
			return
		}
		partner = &api.PartnerRef{Code: ar.PartnerCode, Tier: tier}
	}
	k := base64.StdEncoding.EncodeToString(ar.PublicKey)
	in := r.installs[r.byKey[k]]
	if in == nil {
		r.nextID++
		in = &install{id: fmt.Sprintf("inst-%04d", r.nextID), pub: ar.PublicKey, partner: partner}
		r.installs[in.id] = in
		r.byKey[k] = in.id
	}
	writeJSON(w, 201, api.ActivationResponse{InstallID: in.id, Licence: r.licence(in),
		HeartbeatIntervalSeconds: int(r.Interval / time.Second), Partner: in.partner})
}

func (r *Registry) licence(in *install) string {
	l := licensing.Licence{InstallID: in.id, Tier: licensing.TierNone, Products: []string{"switchboard"},
		NotAfter: time.Now().Add(365 * 24 * time.Hour), Grace: 30 * 24 * time.Hour}
	if in.partner != nil {
		l.PartnerCode, l.Tier = in.partner.Code, licensing.Tier(in.partner.Tier)
	}
	if r.LicenceFor != nil {
		r.LicenceFor(&l)
	}
	out, err := licensing.Issue(l, r.Key)
	if err != nil {
		panic(err)
	}
	return string(out)
}

func (r *Registry) reports(w http.ResponseWriter, in *install, body []byte) {
	var b api.ReportBatch
	if err := json.Unmarshal(body, &b); err != nil || len(b.Reports) == 0 {
		writeErr(w, 400, api.CodeMalformed, "bad report batch")
		return
	}
	resp := api.ReportBatchResponse{HeartbeatIntervalSeconds: int(r.Interval / time.Second)}
	seen := r.seen[in.id]
	if seen == nil {
		seen = map[uint64]int{}
		r.seen[in.id] = seen
	}
	for _, rep := range b.Reports {
		st := api.StatusStored
		if seen[rep.Seq] > 0 {
			st = api.StatusDuplicate
		} else {
			r.arrivals = append(r.arrivals, Arrival{InstallID: in.id, Report: rep})
		}
		seen[rep.Seq]++
		resp.Results = append(resp.Results, api.ReportResult{Seq: rep.Seq, Status: st})
	}
	if r.reissue {
		r.reissue = false
		resp.Licence = r.licence(in)
	}
	writeJSON(w, 200, resp)
}

func (r *Registry) link(w http.ResponseWriter, in *install, body []byte) {
	var lr api.LinkRequest
	if err := json.Unmarshal(body, &lr); err != nil {
		writeErr(w, 400, api.CodeMalformed, "bad link body")
		return
	}
	tier, ok := r.Partners[lr.PartnerCode]
	if !ok {
		writeErr(w, 422, api.CodeUnknownPartnerCode, "unknown partner code "+lr.PartnerCode)
		return
	}
	if in.partner != nil && in.partner.Code != lr.PartnerCode {
		writeErr(w, 409, api.CodeAlreadyLinked, "install is already linked to another partner")
		return
	}
	in.partner = &api.PartnerRef{Code: lr.PartnerCode, Tier: tier}
	writeJSON(w, 200, api.LinkResponse{Licence: r.licence(in), Partner: *in.partner})
}
