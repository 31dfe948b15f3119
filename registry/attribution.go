package registry

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Attribution of customers to payees. A customer is linked by the partner
// code of their install's licence (payments.go, LinkOf), by staff (manual
// link), or — for web sign-ups — by the latest referral click within the
// click window (default 90 days) before the sign-up. A click is a visit
// through /r/CODE or a download link with ?ref=/?via=: the download page
// records it and sets the first-party cookie ReferralCookie holding a
// random visitor id. The billing site reads that cookie at sign-up and
// reports the sign-up (webhook type "signup" or POST /v1/admin/signups).
// Once linked a customer stays linked; only a staff move changes it, and
// every move is recorded with who and why.

// ReferralCookie is the first-party cookie carrying the visitor id.
const ReferralCookie = "sb_visitor"

// visitorIDLen is the length of a visitor id: 20 random bytes in
// unpadded lower-case base32.
const visitorIDLen = 32

var visitorEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newVisitorID() (string, error) {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return visitorEncoding.EncodeToString(b[:]), nil
}

// validVisitorID accepts only ids this registry could have issued, so a
// forged cookie cannot inject arbitrary keys.
func validVisitorID(v string) bool {
	if len(v) != visitorIDLen {
		return false
	}
	_, err := visitorEncoding.DecodeString(v)
	return err == nil
}

// trackClick records a visit through an approved payee's link and sets the
// referral cookie for the click window. It never fails the page it is
// called from: a storage problem is logged and the visit goes unrecorded.
// It must be called before the response header is written.
func (s *Server) trackClick(w http.ResponseWriter, r *http.Request, p store.Partner) {
	if p.Status != store.PartnerApproved {
		return
	}
	visitor := ""
	if c, err := r.Cookie(ReferralCookie); err == nil && validVisitorID(c.Value) {
		visitor = c.Value
	}
	if visitor == "" {
		v, err := newVisitorID()
		if err != nil {
			s.log.Error("referral click: draw a visitor id", "error", err)
			return
		}
		visitor = v
	}
	now := s.now().UTC()
	if err := s.store.AddClick(r.Context(), ledger.Click{VisitorID: visitor, PayeeCode: p.Code, At: now}); err != nil {
		s.log.Error("referral click: record", "code", p.Code, "error", err)
		return
	}
	window := s.pay.window
	http.SetCookie(w, &http.Cookie{
		Name: ReferralCookie, Value: visitor, Path: "/",
		MaxAge: int(window / time.Second), Expires: now.Add(window),
		HttpOnly: true, SameSite: http.SameSiteLaxMode,
		Secure: r.TLS != nil || strings.HasPrefix(s.cfg.PublicURL, "https://"),
	})
	if s.log.IsDebug() {
		s.log.Debug("referral click", "code", p.Code, "visitor", visitor)
	}
}

// signup attributes a new customer to the latest click of the visitor
// within the window before the sign-up. An existing link stays.
func (ps *paymentsService) signup(ctx context.Context, ev adminapi.SignupEvent) (adminapi.SignupResult, error) {
	res := adminapi.SignupResult{CustomerID: ev.CustomerID}
	if err := checkRef("customer_id", ev.CustomerID); err != nil {
		return res, err
	}
	now := ps.s.now().UTC()
	at := ev.At.UTC()
	if ev.At.IsZero() {
		at = now
	}
	if at.After(now.Add(5 * time.Minute)) {
		return res, errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "sign-up time %s is in the future (registry clock %s)", at.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	st := ps.s.store
	if l, ok, err := st.CustomerLink(ctx, ev.CustomerID); err != nil {
		return res, err
	} else if ok {
		res.Linked, res.Link = true, &l
		res.Note = "the customer was already linked; a link, once made, stays"
		return res, nil
	}
	if ev.VisitorID == "" {
		res.Note = "no visitor id (no referral cookie): the customer stays unlinked"
		return res, nil
	}
	if !validVisitorID(ev.VisitorID) {
		return res, errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "visitor_id %q is not a value of the %s cookie this registry sets", ev.VisitorID, ReferralCookie)
	}
	clicks, err := st.Clicks(ctx, ev.VisitorID)
	if err != nil {
		return res, err
	}
	c, ok := ledger.LastClick(clicks, at, ps.window)
	if !ok {
		res.Note = fmt.Sprintf("no referral click in the %d days before the sign-up (%d click(s) on record): the customer stays unlinked",
			int(ps.window/(24*time.Hour)), len(clicks))
		return res, nil
	}
	l, err := st.LinkCustomer(ctx, ledger.Link{CustomerID: ev.CustomerID, PayeeCode: c.PayeeCode, Source: ledger.LinkClick, LinkedAt: at, ClickedAt: c.At})
	if err != nil && !errors.Is(err, store.ErrCustomerLinked) {
		return res, err
	}
	res.Linked, res.Link = true, &l
	ps.s.log.Info("sign-up attributed", "customer", ev.CustomerID, "payee", l.PayeeCode, "clicked_at", c.At)
	return res, nil
}

// handleCustomerSignup is POST /v1/admin/signups.
func (s *Server) handleCustomerSignup(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var ev adminapi.SignupEvent
		if err := decodeStrict(body, &ev); err != nil {
			return err
		}
		res, err := s.pay.signup(r.Context(), ev)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, res)
		return nil
	}()
	if err != nil {
		s.fail(w, ledgerErr(err))
	}
}

// handleLinkCustomer is POST /v1/admin/customers/{customer}/link: staff link
// an unlinked customer to a payee by hand, and may assign installs to it.
func (s *Server) handleLinkCustomer(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		var req adminapi.LinkCustomerRequest
		customer, err := s.customerRequest(w, r, &req)
		if err != nil {
			return err
		}
		ctx := r.Context()
		for _, id := range req.InstallIDs {
			if err := checkRef("install id", id); err != nil {
				return err
			}
			if _, err := s.store.SetInstallCustomer(ctx, id, customer, s.now()); err != nil {
				return err
			}
		}
		if req.PayeeCode != "" {
			p, err := s.knownPartner(ctx, req.PayeeCode)
			if err != nil {
				return err
			}
			if p.Status != store.PartnerApproved {
				return errorf(http.StatusUnprocessableEntity, api.CodeNotApproved, "partner %s is %s: approve it first", p.Code, p.Status)
			}
			l, err := s.store.LinkCustomer(ctx, ledger.Link{CustomerID: customer, PayeeCode: p.Code, Source: ledger.LinkManual, LinkedAt: s.now().UTC()})
			if err != nil {
				return err
			}
			s.log.Info("customer linked by staff", "customer", customer, "payee", l.PayeeCode)
		} else if len(req.InstallIDs) == 0 {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "give payee_code, install_ids or both")
		}
		return s.writeCustomer(ctx, w, customer)
	}()
	if err != nil {
		s.fail(w, ledgerErr(err))
	}
}

// handleMoveCustomer is POST /v1/admin/customers/{customer}/move.
func (s *Server) handleMoveCustomer(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		var req adminapi.MoveCustomerRequest
		customer, err := s.customerRequest(w, r, &req)
		if err != nil {
			return err
		}
		req.By, req.Why = strings.TrimSpace(req.By), strings.TrimSpace(req.Why)
		if req.By == "" || req.Why == "" {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "a move needs by (who moves it) and why (the reason): both are recorded")
		}
		if err := checkRef("by", req.By); err != nil {
			return err
		}
		if err := checkRef("why", req.Why); err != nil {
			return err
		}
		ctx := r.Context()
		p, err := s.knownPartner(ctx, req.To)
		if err != nil {
			return err
		}
		m, err := s.store.MoveCustomer(ctx, ledger.Move{CustomerID: customer, To: p.Code, By: req.By, Reason: req.Why, At: s.now().UTC()})
		if err != nil {
			return err
		}
		s.log.Info("customer moved", "customer", customer, "from", m.From, "to", m.To, "by", m.By, "why", m.Reason)
		return s.writeCustomer(ctx, w, customer)
	}()
	if err != nil {
		s.fail(w, ledgerErr(err))
	}
}

// customerRequest reads the customer id from the path of a staff customer
// route and decodes its body strictly into v.
func (s *Server) customerRequest(w http.ResponseWriter, r *http.Request, v any) (string, error) {
	customer := r.PathValue("customer")
	if err := checkRef("customer id", customer); err != nil {
		return "", err
	}
	body, err := s.readBody(w, r)
	if err != nil {
		return "", err
	}
	return customer, decodeStrict(body, v)
}

// handleGetCustomer is GET /v1/admin/customers/{customer}.
func (s *Server) handleGetCustomer(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		customer := r.PathValue("customer")
		if err := checkRef("customer id", customer); err != nil {
			return err
		}
		return s.writeCustomer(r.Context(), w, customer)
	}()
	if err != nil {
		s.fail(w, ledgerErr(err))
	}
}

// knownPartner is the partner a staff request names by its code, typed
// as people type it; 404 when the registry does not know it.
func (s *Server) knownPartner(ctx context.Context, typed string) (store.Partner, error) {
	code, err := parseCode(typed)
	if err != nil {
		return store.Partner{}, err
	}
	p, err := s.store.GetPartner(ctx, code)
	if store.IsNotFound(err) {
		return p, errorf(http.StatusNotFound, api.CodeNotFound, "partner code %s is not known to this registry", code)
	}
	return p, err
}

// writeCustomer answers with what the registry knows of customer.
func (s *Server) writeCustomer(ctx context.Context, w http.ResponseWriter, customer string) error {
	view, err := s.customerView(ctx, customer)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, view)
	return nil
}

func (s *Server) customerView(ctx context.Context, customer string) (adminapi.CustomerView, error) {
	v := adminapi.CustomerView{CustomerID: customer, Moves: []ledger.Move{}, InstallIDs: []string{}}
	l, ok, err := s.store.CustomerLink(ctx, customer)
	if err != nil {
		return v, err
	}
	if ok {
		v.Linked, v.Link = true, &l
	}
	moves, err := s.store.CustomerMoves(ctx, customer)
	if err != nil {
		return v, err
	}
	v.Moves = append(v.Moves, moves...)
	ids, err := s.store.CustomerInstalls(ctx, customer)
	if err != nil {
		return v, err
	}
	v.InstallIDs = append(v.InstallIDs, ids...)
	return v, nil
}
