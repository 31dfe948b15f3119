package registry

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/internal/sigbatch"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Install ids are "i" and 26 lowercase base32 characters (128 random bits).
const installIDLen = 27

var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newInstallID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate install id: %w", err)
	}
	return "i" + idEncoding.EncodeToString(b[:]), nil
}

// validInstallID checks the shape of an id before it reaches the store.
func validInstallID(id string) bool {
	if len(id) != installIDLen || id[0] != 'i' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// parseCode normalises a partner code typed by a person; a malformed code
// is 422 with partnercode's explanation.
func parseCode(typed string) (string, error) {
	c, err := partnercode.Parse(typed)
	if err != nil {
		return "", errorf(http.StatusUnprocessableEntity, api.CodeUnknownPartnerCode, "partner code %q: %v", typed, err)
	}
	return c.String(), nil
}

// signedInstall checks the signature of a request from an existing
// install and returns the body and the verified install id.
func (s *Server) signedInstall(w http.ResponseWriter, r *http.Request) (string, []byte, error) {
	id := r.PathValue("id")
	if !validInstallID(id) {
		return "", nil, errorf(http.StatusNotFound, api.CodeUnknownInstall, "install %q is not known to this registry: activate first", id)
	}
	sig, err := api.ParseSignature(r.Header.Get(api.SignatureHeader))
	if err != nil {
		return "", nil, errorf(http.StatusUnauthorized, api.CodeBadSignature, "%v", err)
	}
	if sig.InstallID != id {
		return "", nil, errorf(http.StatusUnauthorized, api.CodeBadSignature, "request for install %s is signed as %q: sign with the install's own id and key", id, sig.InstallID)
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return "", nil, err
	}
	pub, err := s.installKey(r.Context(), id)
	if err != nil {
		if store.IsNotFound(err) {
			return "", nil, errorf(http.StatusNotFound, api.CodeUnknownInstall, "install %s is not known to this registry: activate again", id)
		}
		return "", nil, err
	}
	if err := checkSignature(r, sig, body, pub, s.now()); err != nil {
		return "", nil, err
	}
	return id, body, nil
}

// signatures checks the registry's request signatures, in batches when
// requests arrive together (see sigbatch). Its workers take half the
// CPUs at most: the other half serves HTTP and the store's committer, so
// a crowd of requests waiting for their check never starves the commits
// that answer them.
var signatures = sync.OnceValue(func() *sigbatch.Verifier {
	return sigbatch.New(max(1, runtime.GOMAXPROCS(0)/2), signatureLinger)
})

// signatureLinger is how long a signature may wait for others to be
// checked with (sigbatch.New), on a request that waits for a durable
// commit anyway. At 5,000 requests/s over 64 connections, 2 ms makes
// batches of about 15 where 1 ms made about 6, for 10 µs less CPU per
// request.
const signatureLinger = 2 * time.Millisecond

// checkSignature checks sig over r and its body against pub: a 401 that
// says why when it does not hold.
func checkSignature(r *http.Request, sig api.Signature, body []byte, pub ed25519.PublicKey, now time.Time) error {
	var ended error
	err := sig.VerifyWith(r.Method, r.URL.Path, body, pub, now, func(pub ed25519.PublicKey, msg, sg []byte) (bool, error) {
		ok, err := signatures().Verify(r.Context(), pub, msg, sg)
		ended = err
		return ok, err
	})
	if ended != nil {
		return fmt.Errorf("request ended while its signature waited to be checked: %w", ended)
	}
	if err != nil {
		return errorf(http.StatusUnauthorized, api.CodeBadSignature, "%v", err)
	}
	return nil
}

// cpuSlots admits as many batch decodes at a time as there are CPUs. Under
// load the rest wait parked instead of queueing as runnable goroutines, so
// the store's single committer — which gives up its CPU at every fsync —
// gets one back at once rather than behind every request in flight, and
// the group commit keeps its pace. Bodies are read before a slot is taken,
// so a slow client never holds one.
var cpuSlots = make(chan struct{}, runtime.GOMAXPROCS(0))

// acquireCPU waits for a slot (or the request's end) and returns its release.
func acquireCPU(ctx context.Context) (func(), error) {
	select {
	case cpuSlots <- struct{}{}:
		return func() { <-cpuSlots }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("request ended while waiting for a CPU: %w", ctx.Err())
	}
}

// refusal maps store refusals about an install to answers.
func refusal(err error, id string) error {
	switch {
	case store.IsNotFound(err):
		return errorf(http.StatusNotFound, api.CodeUnknownInstall, "install %s is not known to this registry", id)
	case errors.Is(err, store.ErrDeactivated):
		return errorf(http.StatusGone, api.CodeDeactivated, "install %s was deactivated (uninstalled): reinstall (activate again with the same key) to report", id)
	}
	return err
}

func (s *Server) handleActivate(w http.ResponseWriter, r *http.Request) {
	if err := s.activate(w, r); err != nil {
		s.fail(w, err)
	}
}

func (s *Server) activate(w http.ResponseWriter, r *http.Request) error {
	now := s.now()
	if ok, wait := s.activations.allow(clientIP(r), now); !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		return errorf(http.StatusTooManyRequests, api.CodeRateLimited, "too many activations from %s: retry in %s", clientIP(r), wait.Round(time.Second))
	}
	sig, err := api.ParseSignature(r.Header.Get(api.SignatureHeader))
	if err != nil {
		return errorf(http.StatusUnauthorized, api.CodeBadSignature, "%v", err)
	}
	if sig.PublicKey == nil {
		return errorf(http.StatusUnauthorized, api.CodeBadSignature, "an activation is signed with key=<public key>, not install=")
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return err
	}
	if err := checkSignature(r, sig, body, sig.PublicKey, now); err != nil {
		return err
	}
	req, err := DecodeActivation(body)
	if err != nil {
		return errorf(http.StatusBadRequest, api.CodeMalformed, "%v", err)
	}
	if !ed25519.PublicKey(req.PublicKey).Equal(sig.PublicKey) {
		return errorf(http.StatusUnauthorized, api.CodeBadSignature, "public_key in the body is not the key that signed the request")
	}
	code := ""
	if strings.TrimSpace(req.PartnerCode) != "" {
		if code, err = parseCode(req.PartnerCode); err != nil {
			return err
		}
	}
	id, err := newInstallID()
	if err != nil {
		return err
	}
	res, err := s.store.ActivateInstall(r.Context(), store.Activation{ID: id, PublicKey: req.PublicKey, PartnerCode: code, Facts: req.Facts, At: now})
	if errors.Is(err, store.ErrPartnerNotFound) {
		return errorf(http.StatusUnprocessableEntity, api.CodeUnknownPartnerCode, "partner code %s is not known to this registry: check it with the partner who gave it, or install without a code and add it later", code)
	}
	if err != nil {
		return err
	}
	in, lic, err := s.ensureLicence(r.Context(), res.Install, true)
	if err != nil {
		return err
	}
	status := http.StatusCreated
	result := "created"
	if !res.Created {
		status, result = http.StatusOK, "repeated"
	}
	s.metrics.activations.WithLabelValues(result).Inc()
	resp := api.ActivationResponse{
		InstallID:                in.ID,
		Licence:                  lic,
		HeartbeatIntervalSeconds: int(s.cfg.HeartbeatInterval.D() / time.Second),
		LinkNote:                 res.LinkNote,
	}
	resp.Partner, err = s.partnerRef(r.Context(), in)
	if err != nil {
		return err
	}
	if res.Created {
		s.log.Info("install activated", "install", in.ID, "partner", in.PartnerCode, "hostname", in.Facts.Hostname, "note", res.LinkNote)
	}
	writeJSON(w, status, resp)
	return nil
}

// partnerRef names the partner an install is linked to (nil if none).
func (s *Server) partnerRef(ctx context.Context, in store.Install) (*api.PartnerRef, error) {
	if !in.Linked() {
		return nil, nil
	}
	ref := &api.PartnerRef{Code: in.PartnerCode, Tier: string(in.PartnerTier)}
	if in.PartnerTier == store.TierPartner {
		p, err := s.store.GetPartner(ctx, in.PartnerCode)
		if err != nil {
			return nil, err
		}
		ref.Name = p.Name
	}
	return ref, nil
}

// ensureLicence returns the install's current licence, issuing a new one
// when there is none, it names another partner, it was signed with a key
// that is no longer current, or less than half of its validity remains.
// always returns the licence even when it was not re-issued.
func (s *Server) ensureLicence(ctx context.Context, in store.Install, always bool) (store.Install, string, error) {
	now := s.now()
	keys := s.currentKeys()
	l := in.Licence
	fresh := l.Armoured != "" &&
		l.PartnerCode == in.PartnerCode &&
		l.KeyID == keys.Current.ID &&
		l.NotAfter.Sub(now) > s.cfg.LicenceValidity.D()/2
	if fresh {
		if always {
			return in, l.Armoured, nil
		}
		return in, "", nil
	}
	tier := licensing.TierNone
	switch in.PartnerTier {
	case store.TierPartner:
		tier = licensing.TierPartner
	case store.TierReferral:
		tier = licensing.TierReferral
	}
	products := licenceProducts(in.Facts.Products)
	lic := licensing.Licence{
		InstallID:   in.ID,
		CustomerID:  in.CustomerID,
		PartnerCode: in.PartnerCode,
		Tier:        tier,
		Products:    products,
		IssuedAt:    now,
		NotAfter:    now.Add(s.cfg.LicenceValidity.D()),
		Grace:       s.cfg.LicenceGrace.D(),
	}
	armoured, err := licensing.Issue(lic, keys.Current)
	if err != nil {
		return in, "", fmt.Errorf("issue licence for install %s: %w", in.ID, err)
	}
	signed, err := licensing.Decode(armoured)
	if err != nil {
		return in, "", fmt.Errorf("read back licence for install %s: %w", in.ID, err)
	}
	in, err = s.store.SetLicence(ctx, in.ID, store.LicenceRecord{
		ID:          signed.Licence.ID,
		KeyID:       signed.Licence.KeyID,
		IssuedAt:    signed.Licence.IssuedAt,
		NotAfter:    signed.Licence.NotAfter,
		Armoured:    string(armoured),
		PartnerCode: in.PartnerCode,
	})
	if err != nil {
		return in, "", err
	}
	s.metrics.licences.Inc()
	return in, string(armoured), nil
}

func (s *Server) handleReports(w http.ResponseWriter, r *http.Request) {
	if err := s.reports(w, r); err != nil {
		s.fail(w, err)
	}
}

func (s *Server) reports(w http.ResponseWriter, r *http.Request) error {
	id, body, err := s.signedInstall(w, r)
	if err != nil {
		return err
	}
	release, err := acquireCPU(r.Context())
	if err != nil {
		return err
	}
	batch, err := DecodeReportBatch(body, s.cfg.MaxBatchReports)
	release()
	if err != nil {
		return errorf(http.StatusBadRequest, api.CodeMalformed, "%v", err)
	}
	res, err := s.store.AppendReports(r.Context(), id, batch, s.now())
	if err != nil {
		return refusal(err, id)
	}
	stored := 0
	for _, rr := range res.Results {
		if rr.Status == api.StatusStored {
			stored++
		}
	}
	s.metrics.stored.Add(float64(stored))
	s.metrics.duplicate.Add(float64(len(res.Results) - stored))
	_, lic, err := s.ensureLicence(r.Context(), res.Install, false)
	if err != nil {
		// The reports are stored; a failed re-issue is retried next time.
		s.log.Error("re-issue licence", "install", id, "error", err)
	}
	body = appendReportBatchResponse(body[:0], res.Results, int(s.cfg.HeartbeatInterval.D()/time.Second), lic)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
	return nil
}

// appendReportBatchResponse appends what writeJSON writes for an
// api.ReportBatchResponse (a test holds it to that) without reflection:
// a batch of 100 answers 100 results on every request.
func appendReportBatchResponse(dst []byte, results []api.ReportResult, interval int, licence string) []byte {
	dst = append(dst, `{"results":[`...)
	for i, rr := range results {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"seq":`...)
		dst = strconv.AppendUint(dst, rr.Seq, 10)
		dst = append(dst, `,"status":`...)
		dst, _ = appendASCIIString(dst, rr.Status) // stored or duplicate
		dst = append(dst, '}')
	}
	dst = append(dst, `],"heartbeat_interval_seconds":`...)
	dst = strconv.AppendInt(dst, int64(interval), 10)
	if licence != "" {
		lic, _ := json.Marshal(licence) // a string always encodes
		dst = append(dst, `,"licence":`...)
		dst = append(dst, lic...)
	}
	return append(dst, "}\n"...)
}

func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	if err := s.link(w, r); err != nil {
		s.fail(w, err)
	}
}

func (s *Server) link(w http.ResponseWriter, r *http.Request) error {
	id, body, err := s.signedInstall(w, r)
	if err != nil {
		return err
	}
	var req api.LinkRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	code, err := parseCode(req.PartnerCode)
	if err != nil {
		return err
	}
	in, err := s.store.LinkInstall(r.Context(), id, code, s.now())
	switch {
	case errors.Is(err, store.ErrPartnerNotFound):
		return errorf(http.StatusUnprocessableEntity, api.CodeUnknownPartnerCode, "partner code %s is not known to this registry: check it with the partner who gave it", code)
	case errors.Is(err, store.ErrPartnerNotApproved):
		return errorf(http.StatusUnprocessableEntity, api.CodeNotApproved, "%v: ask the partner, or vendor support", err)
	case errors.Is(err, store.ErrAlreadyLinked):
		return errorf(http.StatusConflict, api.CodeAlreadyLinked, "install %s is already linked to another partner; a link is permanent: ask vendor support to move it", id)
	case err != nil:
		return refusal(err, id)
	}
	in, lic, err := s.ensureLicence(r.Context(), in, true)
	if err != nil {
		return err
	}
	ref, err := s.partnerRef(r.Context(), in)
	if err != nil {
		return err
	}
	s.log.Info("install linked", "install", id, "partner", code)
	writeJSON(w, http.StatusOK, api.LinkResponse{Licence: lic, Partner: *ref})
	return nil
}

func (s *Server) handleDeactivate(w http.ResponseWriter, r *http.Request) {
	if err := s.deactivate(w, r); err != nil {
		s.fail(w, err)
	}
}

func (s *Server) deactivate(w http.ResponseWriter, r *http.Request) error {
	id, body, err := s.signedInstall(w, r)
	if err != nil {
		return err
	}
	var req api.DeactivateRequest
	if err := decodeStrict(body, &req); err != nil {
		return err
	}
	if err := checkString("reason", req.Reason); err != nil {
		return errorf(http.StatusBadRequest, api.CodeMalformed, "%v", err)
	}
	in, err := s.store.DeactivateInstall(r.Context(), id, req.Reason, s.now())
	if err != nil {
		return refusal(err, id)
	}
	s.log.Info("install deactivated", "install", id, "reason", req.Reason)
	writeJSON(w, http.StatusOK, api.DeactivateResponse{InstallID: id, State: string(in.State), DeactivatedAt: in.DeactivatedAt})
	return nil
}

func (s *Server) handleLicence(w http.ResponseWriter, r *http.Request) {
	if err := s.licence(w, r); err != nil {
		s.fail(w, err)
	}
}

func (s *Server) licence(w http.ResponseWriter, r *http.Request) error {
	id, _, err := s.signedInstall(w, r)
	if err != nil {
		return err
	}
	in, err := s.store.GetInstall(r.Context(), id)
	if err != nil {
		return refusal(err, id)
	}
	if in.State == store.InstallDeactivated {
		return refusal(store.ErrDeactivated, id)
	}
	_, lic, err := s.ensureLicence(r.Context(), in, true)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, api.LicenceResponse{Licence: lic})
	return nil
}

func (s *Server) handleKeys(w http.ResponseWriter, r *http.Request) {
	ks := s.currentKeys()
	var out api.KeysResponse
	for _, pk := range ks.ordered() {
		pemBytes, err := licensing.MarshalPublicKey(pk)
		if err != nil {
			s.fail(w, err)
			return
		}
		out.Keys = append(out.Keys, api.VendorKey{ID: pk.ID, PublicKey: pk.Key, PEM: string(pemBytes), Current: pk.ID == ks.Current.ID})
	}
	writeJSON(w, http.StatusOK, out)
}

// licenceProducts keeps the product names a licence can carry (printable
// ASCII without spaces, bounded); facts are informative and must never make
// issuing fail.
func licenceProducts(ps []api.Product) []string {
	var out []string
	for _, p := range ps {
		name := strings.ToLower(p.Name)
		ok := name != "" && len(name) <= licensing.MaxFieldLen
		for i := 0; ok && i < len(name); i++ {
			ok = name[i] > 0x20 && name[i] < 0x7f
		}
		if ok && len(out) < licensing.MaxProducts {
			out = append(out, name)
		}
	}
	return out
}
