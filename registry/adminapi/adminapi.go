// Package adminapi is the wire format of the registry's staff API (bearer
// token) and of its public partner endpoints (referral sign-up, directory).
// The server, the Go client and the CLI share it; registry/openapi.yaml
// documents the same shapes. Install-facing bodies are in registry/api.
package adminapi

import (
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Paths of the staff API (Authorization: Bearer <admin token>).
const (
	PathPartners       = "/v1/admin/partners"
	PathPartner        = "/v1/admin/partners/{code}"
	PathPartnerApprove = "/v1/admin/partners/{code}/approve"
	PathPartnerSuspend = "/v1/admin/partners/{code}/suspend"
	PathInstalls       = "/v1/admin/installs"
	PathInstall        = "/v1/admin/installs/{id}"
	PathInstallMove    = "/v1/admin/installs/{id}/move"
	PathInstallSeqs    = "/v1/admin/installs/{id}/seqs"
	PathInstallReports = "/v1/admin/installs/{id}/reports"
)

// Public paths (no authentication).
const (
	PathSignup    = "/v1/referrals"
	PathDirectory = "/v1/directory"
	PathHealth    = "/healthz"
	PathMetrics   = "/metrics"
)

// CreatePartnerRequest is the body of POST /v1/admin/partners.
type CreatePartnerRequest struct {
	Name       string              `json:"name"`
	Email      string              `json:"email"`
	Tier       store.Tier          `json:"tier"`                  // partner or referral
	ParentCode string              `json:"parent_code,omitempty"` // second tier
	Payout     store.PayoutDetails `json:"payout"`
	Listing    store.Listing       `json:"listing"`
	// Approve approves the partner at once (referrals are always approved).
	Approve bool `json:"approve,omitempty"`
	// BillingAccount is the partner's own account id in the vendor's
	// billing (self-purchase rule); optional.
	BillingAccount string `json:"billing_account,omitempty"`
}

// UpdatePartnerRequest is the body of PATCH /v1/admin/partners/{code}.
// Only the fields present change; BillingAccount "" clears it.
type UpdatePartnerRequest struct {
	BillingAccount *string `json:"billing_account,omitempty"`
}

// SignupRequest is the body of the public POST /v1/referrals.
type SignupRequest struct {
	Name       string              `json:"name"`
	Email      string              `json:"email"`
	ParentCode string              `json:"parent_code,omitempty"`
	Payout     store.PayoutDetails `json:"payout"`
}

// SignupResponse answers a referral sign-up with the code to share.
type SignupResponse struct {
	Code   string              `json:"code"`
	Tier   store.Tier          `json:"tier"`
	Status store.PartnerStatus `json:"status"`
	// Link is the download link that carries the code.
	Link string `json:"link"`
}

// StatusRequest is the body of approve and suspend.
type StatusRequest struct {
	Reason string `json:"reason,omitempty"`
}

// PartnerList answers GET /v1/admin/partners.
type PartnerList struct {
	Partners []store.Partner `json:"partners"`
}

// Liveness of an install, from the time since its last heartbeat.
type Liveness string

// Liveness values. Deactivated installs were uninstalled.
const (
	LivenessActive      Liveness = "active"
	LivenessStale       Liveness = "stale"
	LivenessDead        Liveness = "dead"
	LivenessDeactivated Liveness = "deactivated"
)

// ParseLiveness checks a --status value.
func ParseLiveness(s string) (Liveness, bool) {
	switch l := Liveness(s); l {
	case LivenessActive, LivenessStale, LivenessDead, LivenessDeactivated:
		return l, true
	}
	return "", false
}

// InstallView is an install as staff see it.
type InstallView struct {
	store.Install
	Liveness Liveness `json:"liveness"`
}

// InstallList answers GET /v1/admin/installs. NextAfter, when set, is the
// "after" query value of the next page.
type InstallList struct {
	Installs  []InstallView `json:"installs"`
	NextAfter string        `json:"next_after,omitempty"`
}

// InstallDetail answers GET /v1/admin/installs/{id}.
type InstallDetail struct {
	InstallView
	Events []store.Event `json:"events"`
}

// MoveRequest is the body of POST /v1/admin/installs/{id}/move.
type MoveRequest struct {
	PartnerCode string `json:"partner_code"` // empty unlinks
	By          string `json:"by"`
	Why         string `json:"why"`
}

// SeqList answers GET /v1/admin/installs/{id}/seqs: the sequence numbers
// stored for an install, ascending. NextAfter > 0 means more follow.
type SeqList struct {
	Seqs      []uint64 `json:"seqs"`
	NextAfter uint64   `json:"next_after,omitempty"`
}

// ReportList answers GET /v1/admin/installs/{id}/reports.
type ReportList struct {
	Reports   []store.Report `json:"reports"`
	NextAfter uint64         `json:"next_after,omitempty"`
}

// DirectoryEntry is one approved partner in the public directory.
type DirectoryEntry struct {
	Code        string `json:"code"`
	Name        string `json:"name"`
	Website     string `json:"website,omitempty"`
	Country     string `json:"country,omitempty"`
	Description string `json:"description,omitempty"`
	Email       string `json:"email,omitempty"` // only when the partner opted in
}

// Directory answers GET /v1/directory.
type Directory struct {
	Partners []DirectoryEntry `json:"partners"`
}

// Health answers GET /healthz.
type Health struct {
	Status string `json:"status"`
}
