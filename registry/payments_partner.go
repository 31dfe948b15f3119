package registry

import (
	"net/http"
	"strings"

	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// A partner's billing account is its own customer account in the vendor's
// billing (a Stripe customer id, an account number): payments from it are
// the partner's own purchases and earn no commission (ledger reason
// self_purchase_account). Staff set it when creating the partner or later
// with PATCH /v1/admin/partners/{code}.

// maxBillingAccountLen matches the ledger's limit on ids.
const maxBillingAccountLen = 200

// checkBillingAccount validates a billing account id as typed by staff.
func checkBillingAccount(v string) error {
	v = strings.TrimSpace(v)
	if len(v) > maxBillingAccountLen {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "billing_account is %d bytes; at most %d", len(v), maxBillingAccountLen)
	}
	if err := checkString("billing_account", v); err != nil {
		return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
	}
	return nil
}

// handleUpdatePartner is PATCH /v1/admin/partners/{code}: it changes the
// fields the body names (today: billing_account).
func (s *Server) handleUpdatePartner(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		code, err := parseCode(r.PathValue("code"))
		if err != nil {
			return err
		}
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.UpdatePartnerRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		if req.BillingAccount == nil {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "nothing to change: send billing_account (\"\" clears it)")
		}
		if err := checkBillingAccount(*req.BillingAccount); err != nil {
			return err
		}
		account := strings.TrimSpace(*req.BillingAccount)
		p, err := s.store.SetPartnerBillingAccount(r.Context(), code, account, s.now())
		if store.IsNotFound(err) {
			return errorf(http.StatusNotFound, api.CodeNotFound, "partner code %s is not known to this registry", code)
		}
		if err != nil {
			return err
		}
		s.log.Info("partner updated", "code", p.Code, "billing_account_set", account != "")
		writeJSON(w, http.StatusOK, p)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}
