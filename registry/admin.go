package registry

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/mail"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Liveness says whether an install is active, stale or dead at now.
func Liveness(in store.Install, now time.Time, staleAfter, deadAfter time.Duration) adminapi.Liveness {
	if in.State == store.InstallDeactivated {
		return adminapi.LivenessDeactivated
	}
	switch since := now.Sub(in.LastActivity()); {
	case since <= staleAfter:
		return adminapi.LivenessActive
	case since <= deadAfter:
		return adminapi.LivenessStale
	default:
		return adminapi.LivenessDead
	}
}

func (s *Server) view(in store.Install) adminapi.InstallView {
	return adminapi.InstallView{Install: in, Liveness: Liveness(in, s.now(), s.cfg.StaleAfter.D(), s.cfg.DeadAfter.D())}
}

// checkPartnerFields validates what a person typed for a new partner.
func checkPartnerFields(name, email string, payout store.PayoutDetails, listing store.Listing) error {
	name = strings.TrimSpace(name)
	if name == "" {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "name is empty: give the company or person name")
	}
	if err := checkString("name", name); err != nil {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "e-mail %q is not a plain address like name@example.com", email)
	}
	for _, f := range []struct{ name, v string }{
		{"payout method", payout.Method}, {"paypal_email", payout.PayPalEmail}, {"bank_account", payout.BankAccount},
		{"currency", payout.Currency}, {"tax_id", payout.TaxID}, {"tax_country", payout.TaxCountry},
		{"website", listing.Website}, {"country", listing.Country},
	} {
		if err := checkString(f.name, f.v); err != nil {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
		}
	}
	switch payout.Method {
	case "", "paypal", "bank", "manual":
	default:
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "payout method %q: use paypal, bank or manual", payout.Method)
	}
	if len(listing.Description) > 2000 {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "description is longer than 2000 bytes")
	}
	return nil
}

// createPartner issues a fresh code and stores p under it.
func (s *Server) createPartner(ctx context.Context, p store.Partner) (store.Partner, error) {
	if p.ParentCode != "" {
		code, err := parseCode(p.ParentCode)
		if err != nil {
			return p, err
		}
		if _, err := s.store.GetPartner(ctx, code); store.IsNotFound(err) {
			return p, errorf(http.StatusUnprocessableEntity, api.CodeUnknownPartnerCode, "parent code %s is not known to this registry", code)
		} else if err != nil {
			return p, err
		}
		p.ParentCode = code
	}
	for range 5 {
		code, err := partnercode.New()
		if err != nil {
			return p, err
		}
		p.Code = code.String()
		out, err := s.store.CreatePartner(ctx, p)
		if errors.Is(err, store.ErrExists) {
			continue // 1 in 2^40: draw again
		}
		return out, err
	}
	return p, errors.New("could not draw an unused partner code in 5 tries")
}

func (s *Server) handleCreatePartner(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.CreatePartnerRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		if req.Tier != store.TierPartner && req.Tier != store.TierReferral {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "tier %q: use partner or referral", req.Tier)
		}
		if err := checkPartnerFields(req.Name, req.Email, req.Payout, req.Listing); err != nil {
			return err
		}
		if err := checkBillingAccount(req.BillingAccount); err != nil {
			return err
		}
		now := s.now()
		status := store.PartnerPending
		if req.Approve || req.Tier == store.TierReferral {
			status = store.PartnerApproved
		}
		p, err := s.createPartner(r.Context(), store.Partner{
			Name: strings.TrimSpace(req.Name), Email: req.Email, Tier: req.Tier, Status: status,
			ParentCode: req.ParentCode, Payout: req.Payout, Listing: req.Listing, CreatedAt: now, UpdatedAt: now,
			BillingAccount: strings.TrimSpace(req.BillingAccount),
		})
		if err != nil {
			return err
		}
		s.log.Info("partner created", "code", p.Code, "tier", p.Tier, "status", p.Status)
		writeJSON(w, http.StatusCreated, p)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// checkQuery refuses a list query with a parameter the route does not
// take or one given twice: a mistyped filter name would otherwise list
// everything, which looks like an answer (400 malformed_body).
func checkQuery(q url.Values, allowed ...string) error {
	for k, vs := range q {
		if !slices.Contains(allowed, k) {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "unknown query parameter %q: this list takes %s", k, strings.Join(allowed, ", "))
		}
		if len(vs) > 1 {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "query parameter %q is given %d times: give it once", k, len(vs))
		}
	}
	return nil
}

// filterCode parses a partner code used as a list filter: a malformed one
// is a bad filter (400), not an unknown partner.
func filterCode(v string) (string, error) {
	c, err := partnercode.Parse(v)
	if err != nil {
		return "", errorf(http.StatusBadRequest, api.CodeMalformed, "partner %q: %v", v, err)
	}
	return c.String(), nil
}

func (s *Server) handleListPartners(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if err := checkQuery(q, "tier", "status"); err != nil {
		s.fail(w, err)
		return
	}
	f := store.PartnerFilter{Tier: store.Tier(q.Get("tier")), Status: store.PartnerStatus(q.Get("status"))}
	// An unknown value would match no partner: an empty list that looks
	// like an answer to a typo.
	switch f.Tier {
	case "", store.TierPartner, store.TierReferral:
	default:
		s.fail(w, errorf(http.StatusBadRequest, api.CodeMalformed, "tier %q: use partner or referral", f.Tier))
		return
	}
	switch f.Status {
	case "", store.PartnerPending, store.PartnerApproved, store.PartnerSuspended:
	default:
		s.fail(w, errorf(http.StatusBadRequest, api.CodeMalformed, "status %q: use pending, approved or suspended", f.Status))
		return
	}
	ps, err := s.store.ListPartners(r.Context(), f)
	if err != nil {
		s.fail(w, err)
		return
	}
	if ps == nil {
		ps = []store.Partner{}
	}
	writeJSON(w, http.StatusOK, adminapi.PartnerList{Partners: ps})
}

// pathCode normalises the {code} of a partner path.
func (s *Server) pathCode(r *http.Request) (string, error) {
	c, err := partnercode.Parse(r.PathValue("code"))
	if err != nil {
		return "", errorf(http.StatusNotFound, api.CodeNotFound, "partner code %q: %v", r.PathValue("code"), err)
	}
	return c.String(), nil
}

func (s *Server) handleGetPartner(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		code, err := s.pathCode(r)
		if err != nil {
			return err
		}
		p, err := s.store.GetPartner(r.Context(), code)
		if store.IsNotFound(err) {
			return errorf(http.StatusNotFound, api.CodeNotFound, "no partner with code %s", code)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, p)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handlePartnerStatus(status store.PartnerStatus) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := func() error {
			code, err := s.pathCode(r)
			if err != nil {
				return err
			}
			body, err := s.readBody(w, r)
			if err != nil {
				return err
			}
			var req adminapi.StatusRequest
			if len(strings.TrimSpace(string(body))) > 0 {
				if err := decodeStrict(body, &req); err != nil {
					return err
				}
			}
			if err := checkString("reason", req.Reason); err != nil {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
			}
			p, err := s.store.SetPartnerStatus(r.Context(), code, status, req.Reason, s.now())
			if store.IsNotFound(err) {
				return errorf(http.StatusNotFound, api.CodeNotFound, "no partner with code %s", code)
			}
			if err != nil {
				return err
			}
			s.log.Info("partner status changed", "code", code, "status", status, "reason", req.Reason)
			writeJSON(w, http.StatusOK, p)
			return nil
		}()
		if err != nil {
			s.fail(w, err)
		}
	}
}

func (s *Server) handleListInstalls(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		q := r.URL.Query()
		if err := checkQuery(q, "status", "partner", "cloned", "after", "limit"); err != nil {
			return err
		}
		f := store.InstallFilter{AfterID: q.Get("after"), Limit: 500}
		if f.AfterID != "" && !validInstallID(f.AfterID) {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "after %q is not an install id: pass the next_after of the previous page", f.AfterID)
		}
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				return errorf(http.StatusBadRequest, api.CodeMalformed, "limit %q: use 1 to 10000", v)
			}
			f.Limit = n
		}
		if v := q.Get("partner"); v != "" {
			code, err := filterCode(v)
			if err != nil {
				return err
			}
			f.PartnerCode = code
		}
		switch v := q.Get("cloned"); v {
		case "", "false":
		case "true":
			f.Cloned = true
		default:
			return errorf(http.StatusBadRequest, api.CodeMalformed, "cloned %q: use true or false", v)
		}
		now := s.now()
		stale, dead := now.Add(-s.cfg.StaleAfter.D()), now.Add(-s.cfg.DeadAfter.D())
		if v := q.Get("status"); v != "" {
			l, ok := adminapi.ParseLiveness(v)
			if !ok {
				return errorf(http.StatusBadRequest, api.CodeMalformed, "status %q: use active, stale, dead or deactivated", v)
			}
			f.State = store.InstallRegistered
			switch l {
			case adminapi.LivenessActive:
				f.LastSeenAfter = stale.Add(-time.Nanosecond)
			case adminapi.LivenessStale:
				f.LastSeenAfter, f.LastSeenBefore = dead.Add(-time.Nanosecond), stale.Add(-time.Nanosecond)
			case adminapi.LivenessDead:
				f.LastSeenBefore = dead.Add(-time.Nanosecond)
			case adminapi.LivenessDeactivated:
				f.State = store.InstallDeactivated
			}
		}
		ins, err := s.store.ListInstalls(r.Context(), f)
		if err != nil {
			return err
		}
		out := adminapi.InstallList{Installs: make([]adminapi.InstallView, 0, len(ins))}
		for _, in := range ins {
			out.Installs = append(out.Installs, s.view(in))
		}
		if len(ins) == f.Limit {
			out.NextAfter = ins[len(ins)-1].ID
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// pathInstall loads the install of an admin path.
func (s *Server) pathInstall(r *http.Request) (store.Install, error) {
	id := r.PathValue("id")
	if !validInstallID(id) {
		return store.Install{}, errorf(http.StatusNotFound, api.CodeUnknownInstall, "no install %q", id)
	}
	in, err := s.store.GetInstall(r.Context(), id)
	if store.IsNotFound(err) {
		return in, errorf(http.StatusNotFound, api.CodeUnknownInstall, "no install %s", id)
	}
	return in, err
}

func (s *Server) handleGetInstall(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		in, err := s.pathInstall(r)
		if err != nil {
			return err
		}
		events, err := s.store.ListEvents(r.Context(), in.ID)
		if err != nil {
			return err
		}
		if events == nil {
			events = []store.Event{}
		}
		writeJSON(w, http.StatusOK, adminapi.InstallDetail{InstallView: s.view(in), Events: events})
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handleMoveInstall(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		in, err := s.pathInstall(r)
		if err != nil {
			return err
		}
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.MoveRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		req.By, req.Why = strings.TrimSpace(req.By), strings.TrimSpace(req.Why)
		if req.By == "" || req.Why == "" {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "a move needs who (by) and why: both are kept in the install's audit trail")
		}
		for _, f := range []struct{ n, v string }{{"by", req.By}, {"why", req.Why}} {
			if err := checkString(f.n, f.v); err != nil {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
			}
		}
		to := ""
		if strings.TrimSpace(req.PartnerCode) != "" {
			if to, err = parseCode(req.PartnerCode); err != nil {
				return err
			}
		}
		moved, err := s.store.MoveInstall(r.Context(), in.ID, store.Move{To: to, By: req.By, Why: req.Why, At: s.now()})
		if errors.Is(err, store.ErrPartnerNotFound) {
			return errorf(http.StatusUnprocessableEntity, api.CodeUnknownPartnerCode, "partner code %s is not known to this registry", to)
		}
		if err != nil {
			return refusal(err, in.ID)
		}
		s.log.Info("install moved", "install", in.ID, "from", in.PartnerCode, "to", to, "by", req.By, "why", req.Why)
		// The next heartbeat or licence fetch carries a licence with the new code.
		writeJSON(w, http.StatusOK, s.view(moved))
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// pageParams reads after (a seq) and limit for the report listings.
func pageParams(q url.Values, defLimit, maxLimit int) (uint64, int, error) {
	if err := checkQuery(q, "after", "limit"); err != nil {
		return 0, 0, err
	}
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, errorf(http.StatusBadRequest, api.CodeMalformed, "after %q is not a sequence number", v)
		}
		after = n
	}
	limit := defLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, errorf(http.StatusBadRequest, api.CodeMalformed, "limit %q: use 1 to %d", v, maxLimit)
		}
		limit = n
	}
	return after, limit, nil
}

func (s *Server) handleInstallSeqs(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		in, err := s.pathInstall(r)
		if err != nil {
			return err
		}
		after, limit, err := pageParams(r.URL.Query(), 100000, 1000000)
		if err != nil {
			return err
		}
		seqs, err := s.store.ListReportSeqs(r.Context(), in.ID, after, limit)
		if err != nil {
			return err
		}
		out := adminapi.SeqList{Seqs: seqs}
		if out.Seqs == nil {
			out.Seqs = []uint64{}
		}
		if len(seqs) == limit {
			out.NextAfter = seqs[len(seqs)-1]
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handleInstallReports(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		in, err := s.pathInstall(r)
		if err != nil {
			return err
		}
		after, limit, err := pageParams(r.URL.Query(), 100, 1000)
		if err != nil {
			return err
		}
		reps, err := s.store.ListReports(r.Context(), in.ID, after, limit)
		if err != nil {
			return err
		}
		out := adminapi.ReportList{Reports: reps}
		if out.Reports == nil {
			out.Reports = []store.Report{}
		}
		if len(reps) == limit {
			out.NextAfter = reps[len(reps)-1].Seq
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handleSignup(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		now := s.now()
		if ok, wait := s.signups.allow(clientIP(r), now); !ok {
			w.Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
			return errorf(http.StatusTooManyRequests, api.CodeRateLimited, "too many sign-ups from %s: retry in %s", clientIP(r), wait.Round(time.Second))
		}
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.SignupRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		if err := checkPartnerFields(req.Name, req.Email, req.Payout, store.Listing{}); err != nil {
			return err
		}
		p, err := s.createPartner(r.Context(), store.Partner{
			Name: strings.TrimSpace(req.Name), Email: req.Email, Tier: store.TierReferral, Status: store.PartnerApproved,
			ParentCode: req.ParentCode, Payout: req.Payout, SelfSignup: true, CreatedAt: now, UpdatedAt: now,
		})
		if err != nil {
			return err
		}
		s.log.Info("referral signed up", "code", p.Code, "remote", clientIP(r))
		writeJSON(w, http.StatusCreated, adminapi.SignupResponse{
			Code: p.Code, Tier: p.Tier, Status: p.Status,
			Link: strings.TrimSuffix(s.cfg.PublicURL, "/") + "/download?ref=" + url.QueryEscape(p.Code),
		})
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handleDirectory(w http.ResponseWriter, r *http.Request) {
	ps, err := s.store.ListPartners(r.Context(), store.PartnerFilter{Tier: store.TierPartner, Status: store.PartnerApproved})
	if err != nil {
		s.fail(w, err)
		return
	}
	out := adminapi.Directory{Partners: []adminapi.DirectoryEntry{}}
	for _, p := range ps {
		e := adminapi.DirectoryEntry{Code: p.Code, Name: p.Name, Website: p.Listing.Website, Country: p.Listing.Country, Description: p.Listing.Description}
		if p.Listing.ShowEmail {
			e.Email = p.Email
		}
		out.Partners = append(out.Partners, e)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, adminapi.Health{Status: "ok"})
}

func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.metrics.handler.ServeHTTP(w, r)
}
