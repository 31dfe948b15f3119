// Package api is the wire format between an install (installer, agent) and
// the vendor registry: the JSON bodies of /v1 and the scheme that signs each
// request with the install's Ed25519 key. Both sides import it so the format
// has one definition; registry/openapi.yaml documents the same shapes.
package api

import (
	"net/url"
	"strings"
	"time"
)

// Paths of the install-facing endpoints. {id} is the install id.
const (
	PathActivations = "/v1/activations"
	PathReports     = "/v1/installs/{id}/reports"
	PathLink        = "/v1/installs/{id}/link"
	PathDeactivate  = "/v1/installs/{id}/deactivate"
	PathLicence     = "/v1/installs/{id}/licence"
)

// InstallPath fills the (path-escaped) install id into one of the Path constants.
func InstallPath(pattern, installID string) string {
	return strings.Replace(pattern, "{id}", url.PathEscape(installID), 1)
}

// Product is one product the install runs next to.
type Product struct {
	Name         string `json:"name"` // asterisk, freepbx, odoo, …
	Version      string `json:"version,omitempty"`
	Distribution string `json:"distribution,omitempty"` // plain, freepbx, issabel, vitalpbx, …
	Edition      string `json:"edition,omitempty"`      // community, enterprise
}

// Facts describe the host an install runs on. Host facts are informative:
// identity is the install key, never the machine id (servers get cloned).
type Facts struct {
	Hostname     string    `json:"hostname,omitempty"`
	MachineID    string    `json:"machine_id,omitempty"`
	OS           string    `json:"os,omitempty"`
	AgentVersion string    `json:"agent_version,omitempty"`
	Products     []Product `json:"products,omitempty"`
}

// PartnerRef names the partner an install is linked to.
type PartnerRef struct {
	Code string `json:"code"`
	Tier string `json:"tier"`           // partner or referral
	Name string `json:"name,omitempty"` // only for tier partner
}

// ActivationRequest is the first thing an install sends. The request is
// signed with the private half of PublicKey, proving possession.
type ActivationRequest struct {
	PublicKey   []byte `json:"public_key"` // Ed25519, 32 bytes (base64 in JSON)
	PartnerCode string `json:"partner_code,omitempty"`
	Facts       Facts  `json:"facts"`
}

// ActivationResponse carries the install id and its first licence.
// Activating the same public key again returns the same install.
type ActivationResponse struct {
	InstallID                string      `json:"install_id"`
	Licence                  string      `json:"licence"` // armoured, see licensing
	HeartbeatIntervalSeconds int         `json:"heartbeat_interval_seconds"`
	Partner                  *PartnerRef `json:"partner,omitempty"`
	// LinkNote explains why a partner code was given but the install is
	// not linked (for example: the partner is suspended).
	LinkNote string `json:"link_note,omitempty"`
}

// ReportKind says what a report is.
type ReportKind string

// Report kinds.
const (
	KindHeartbeat        ReportKind = "heartbeat"
	KindHeartbeatSummary ReportKind = "heartbeat_summary" // several heartbeats compacted by a full outbox
)

// PluginHealth is one plugin's health as the agent saw it.
type PluginHealth struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	State   string `json:"state,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

// Report is one subscription heartbeat. (InstallID, Seq) is its idempotency
// key: the registry stores a given pair once and answers repeats the same.
// Seq is per install and increases, but need not be contiguous.
type Report struct {
	Seq          uint64           `json:"seq"`
	Kind         ReportKind       `json:"kind"`
	At           time.Time        `json:"at"`
	Facts        *Facts           `json:"facts,omitempty"`
	Seats        map[string]int64 `json:"seats,omitempty"` // pbx_endpoints, odoo_users, …
	Plugins      []PluginHealth   `json:"plugins,omitempty"`
	LicenceState string           `json:"licence_state,omitempty"` // valid, grace, expired, missing
	Summary      *Summary         `json:"summary,omitempty"`       // set when Kind is heartbeat_summary
}

// Summary describes the heartbeats a heartbeat_summary stands for. The
// report's own fields carry the latest of them.
type Summary struct {
	Count    int       `json:"count"`
	FirstSeq uint64    `json:"first_seq"`
	LastSeq  uint64    `json:"last_seq"`
	FirstAt  time.Time `json:"first_at"`
	LastAt   time.Time `json:"last_at"`
}

// ReportBatch is the body of POST /v1/installs/{id}/reports.
type ReportBatch struct {
	Reports []Report `json:"reports"`
}

// Report result statuses.
const (
	StatusStored    = "stored"
	StatusDuplicate = "duplicate" // stored before; nothing changed
)

// ReportResult answers one report of a batch.
type ReportResult struct {
	Seq    uint64 `json:"seq"`
	Status string `json:"status"`
}

// ReportBatchResponse answers a batch once every report in it is durable.
type ReportBatchResponse struct {
	Results                  []ReportResult `json:"results"`
	HeartbeatIntervalSeconds int            `json:"heartbeat_interval_seconds"`
	// Licence is set when the registry re-issued the install's licence.
	Licence string `json:"licence,omitempty"`
}

// LinkRequest asks to link a still-unlinked install to a partner code.
type LinkRequest struct {
	Seq         uint64 `json:"seq"`
	PartnerCode string `json:"partner_code"`
}

// LinkResponse carries the re-issued licence with the code inside.
type LinkResponse struct {
	Licence string     `json:"licence"`
	Partner PartnerRef `json:"partner"`
}

// DeactivateRequest tells the registry the install was removed.
type DeactivateRequest struct {
	Seq    uint64 `json:"seq"`
	Reason string `json:"reason,omitempty"`
}

// LicenceResponse is the body of GET /v1/installs/{id}/licence.
type LicenceResponse struct {
	Licence string `json:"licence"`
}

// ErrorBody is every error answer: {"error":{"code":…,"message":…}}.
type ErrorBody struct {
	Error Error `json:"error"`
}

// Error is a machine-readable code and a sentence for people.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error codes shared by both sides.
const (
	CodeMalformed          = "malformed_body"       // 400
	CodeBadSignature       = "bad_signature"        // 401
	CodeUnauthorized       = "unauthorized"         // 401 (admin token)
	CodeNotFound           = "not_found"            // 404
	CodeUnknownInstall     = "unknown_install"      // 404
	CodeConflict           = "conflict"             // 409
	CodeAlreadyLinked      = "already_linked"       // 409
	CodeDeactivated        = "install_deactivated"  // 410
	CodeTooLarge           = "body_too_large"       // 413
	CodeUnknownPartnerCode = "unknown_partner_code" // 422
	CodeInvalid            = "invalid"              // 422
	CodeRateLimited        = "rate_limited"         // 429
	CodeInternal           = "internal"             // 500
	CodeUnavailable        = "unavailable"          // 503
)

// PathKeys is the public list of vendor licence-signing keys (GET).
const PathKeys = "/v1/keys"

// VendorKey is one public licence-signing key of the vendor.
type VendorKey struct {
	ID        string `json:"id"`
	PublicKey []byte `json:"public_key"` // Ed25519, 32 bytes (base64 in JSON)
	// PEM is the key in the format licensing.LoadPublicKeys reads.
	PEM string `json:"pem"`
	// Current marks the key new licences are signed with.
	Current bool `json:"current"`
}

// KeysResponse is the body of GET /v1/keys: every key a licence the
// registry issued may be signed with, so agents can build their keyring.
type KeysResponse struct {
	Keys []VendorKey `json:"keys"`
}

// DeactivateResponse answers POST /v1/installs/{id}/deactivate.
type DeactivateResponse struct {
	InstallID     string    `json:"install_id"`
	State         string    `json:"state"` // deactivated
	DeactivatedAt time.Time `json:"deactivated_at"`
}

// CodeNotApproved is 422: the partner code exists but the partner is
// pending approval or suspended, so nothing can be linked to it.
const CodeNotApproved = "partner_not_approved"
