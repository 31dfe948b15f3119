// Package store defines what the registry keeps — partners, installs, their
// heartbeat reports and the audit trail of links — and the Store interface
// every storage engine implements. The HTTP handlers only talk to Store, so
// the embedded bbolt engine (store/boltstore) can be replaced by a
// PostgreSQL one without touching them.
//
// Each Store method is one atomic domain operation (activate, link, append a
// batch of reports, …) rather than a generic get/put: the rules that must
// hold under concurrency — a link is permanent, a (install, seq) pair is
// stored once, a cloned install is flagged — are checked inside the
// engine's transaction. A SQL engine implements the same methods with one
// transaction each (SELECT … FOR UPDATE on the install row).
//
// Money (payments, commission ledger, payouts) comes later as its own
// interface next to Store, keyed by the same partner codes, install ids and
// customer ids (Install.CustomerID); the rules shared by every engine live
// in rules.go so a second engine applies them identically.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// SchemaVersion is the layout version this binary writes. A store recorded
// with a higher version was written by a newer binary and is refused.
//
//	1  the first layout
//	2  the bbolt engine keeps a report log beside its file; a binary that
//	   knows only version 1 would open the file without replaying it
const SchemaVersion = 2

// Errors every engine returns (wrapped with context; test with errors.Is).
var (
	ErrNotFound        = errors.New("not found")
	ErrExists          = errors.New("already exists")
	ErrDeactivated     = errors.New("install is deactivated")
	ErrAlreadyLinked   = errors.New("install is already linked to another partner")
	ErrPartnerNotFound = errors.New("unknown partner code")
	// ErrPartnerNotApproved: the partner exists but is pending or suspended.
	ErrPartnerNotApproved = errors.New("partner is not approved")
	ErrNewerSchema        = errors.New("store was written by a newer switchboard")
	ErrClosed             = errors.New("store is closed")
)

// Tier of a partner.
type Tier string

// Tiers. Partners are integrators who install and support; referrals only
// bring customers.
const (
	TierPartner  Tier = "partner"
	TierReferral Tier = "referral"
)

// PartnerStatus is where a partner is in the approval flow.
type PartnerStatus string

// Partner statuses. Only approved partners link installs and appear in the
// directory.
const (
	PartnerPending   PartnerStatus = "pending"
	PartnerApproved  PartnerStatus = "approved"
	PartnerSuspended PartnerStatus = "suspended"
)

// PayoutDetails say how a partner is paid (used by payouts, issue 8).
type PayoutDetails struct {
	Method      string `json:"method,omitempty"` // paypal, bank, manual
	PayPalEmail string `json:"paypal_email,omitempty"`
	BankAccount string `json:"bank_account,omitempty"` // IBAN or free text for manual payouts
	Currency    string `json:"currency,omitempty"`     // ISO 4217, e.g. EUR
	TaxID       string `json:"tax_id,omitempty"`       // needed above the yearly tax threshold
	TaxCountry  string `json:"tax_country,omitempty"`
}

// Listing is what the public directory shows of an approved partner.
type Listing struct {
	Website     string `json:"website,omitempty"`
	Country     string `json:"country,omitempty"`
	Description string `json:"description,omitempty"`
	// ShowEmail publishes the partner's e-mail in the directory.
	ShowEmail bool `json:"show_email,omitempty"`
}

// Partner is a partner or a referral, identified by its code.
type Partner struct {
	Code       string        `json:"code"`
	Name       string        `json:"name"`
	Email      string        `json:"email"`
	Tier       Tier          `json:"tier"`
	Status     PartnerStatus `json:"status"`
	ParentCode string        `json:"parent_code,omitempty"` // second tier: who brought this partner
	Payout     PayoutDetails `json:"payout"`
	Listing    Listing       `json:"listing"`
	SelfSignup bool          `json:"self_signup,omitempty"`
	// BillingAccount is the partner's own customer account id in the
	// vendor's billing (e.g. a Stripe customer id): a payment from that
	// account is the partner's own purchase and earns no commission.
	BillingAccount string    `json:"billing_account,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	// StatusReason says why the status last changed (suspensions).
	StatusReason string `json:"status_reason,omitempty"`
}

// PartnerFilter selects partners; zero fields match everything.
type PartnerFilter struct {
	Tier   Tier
	Status PartnerStatus
}

// Host is one machine an install reported from.
type Host struct {
	MachineID string    `json:"machine_id,omitempty"`
	Hostname  string    `json:"hostname,omitempty"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
}

// Same reports whether h names the same machine as the facts.
func (h Host) Same(f api.Facts) bool {
	return h.MachineID == f.MachineID && h.Hostname == f.Hostname
}

// MaxHosts bounds the host history kept per install.
const MaxHosts = 8

// LicenceRecord is the licence most recently issued to an install.
type LicenceRecord struct {
	ID       string    `json:"id"`
	KeyID    string    `json:"key_id"`
	IssuedAt time.Time `json:"issued_at"`
	NotAfter time.Time `json:"not_after"`
	Armoured string    `json:"armoured"`
	// PartnerCode is the code the licence embeds, so a link change is seen
	// to need a new licence.
	PartnerCode string `json:"partner_code,omitempty"`
}

// InstallState is an install's registration state. Liveness (active, stale,
// dead) is derived from LastSeen by the registry, not stored.
type InstallState string

// Install states.
const (
	InstallRegistered  InstallState = "registered"
	InstallDeactivated InstallState = "deactivated"
)

// Install is one activated agent, identified by its Ed25519 key pair.
type Install struct {
	ID         string       `json:"id"`
	PublicKey  []byte       `json:"public_key"`
	State      InstallState `json:"state"`
	CustomerID string       `json:"customer_id,omitempty"` // billing customer (payments, issue 8)

	PartnerCode string    `json:"partner_code,omitempty"`
	PartnerTier Tier      `json:"partner_tier,omitempty"`
	LinkedAt    time.Time `json:"linked_at,omitzero"`
	LinkSource  string    `json:"link_source,omitempty"` // activation, install, admin

	ActivatedAt      time.Time `json:"activated_at"`
	DeactivatedAt    time.Time `json:"deactivated_at,omitzero"`
	DeactivateReason string    `json:"deactivate_reason,omitempty"`

	// FirstSeen and LastSeen are registry clock times of the first and the
	// latest report received (not the install's own clock).
	FirstSeen    time.Time          `json:"first_seen,omitzero"`
	LastSeen     time.Time          `json:"last_seen,omitzero"`
	LastReportAt time.Time          `json:"last_report_at,omitzero"` // install clock of the newest report
	MaxSeq       uint64             `json:"max_seq"`
	ReportCount  int64              `json:"report_count"`
	Facts        api.Facts          `json:"facts"`
	Seats        map[string]int64   `json:"seats,omitempty"`
	Plugins      []api.PluginHealth `json:"plugins,omitempty"`
	LicenceState string             `json:"licence_state,omitempty"`
	Hosts        []Host             `json:"hosts,omitempty"`

	// Cloned is set when two machines report under this install's key;
	// both keep being recorded, staff decide what to do.
	Cloned      bool      `json:"cloned,omitempty"`
	CloneReason string    `json:"clone_reason,omitempty"`
	ClonedAt    time.Time `json:"cloned_at,omitzero"`
	// ConflictCount counts reports that reused a sequence number with other content.
	ConflictCount int64 `json:"conflict_count,omitempty"`

	Licence LicenceRecord `json:"licence"`
}

// Linked reports whether the install is linked to a partner.
func (in Install) Linked() bool { return in.PartnerCode != "" }

// InstallFilter selects installs; zero fields match everything. The seen
// bounds let an engine push the liveness windows down into its index.
type InstallFilter struct {
	PartnerCode string
	State       InstallState
	// LastSeenAfter / LastSeenBefore bound max(LastSeen, ActivatedAt).
	LastSeenAfter  time.Time
	LastSeenBefore time.Time
	Cloned         bool // only cloned installs
	AfterID        string
	Limit          int
}

// Activation is what an install sends on activation, decided by the caller.
type Activation struct {
	ID          string // new install id, used when the key is new
	PublicKey   []byte
	PartnerCode string // canonical, or empty
	Facts       api.Facts
	At          time.Time
}

// ActivationResult is the install after ActivateInstall.
type ActivationResult struct {
	Install Install
	Created bool // false: the key was known, the existing install is returned
	// LinkNote explains why a partner code was given but not linked.
	LinkNote string
}

// IncomingReport is one report of a batch: decoded for the install's
// latest facts, and its canonical JSON encoding, which is stored.
type IncomingReport struct {
	Report api.Report
	Raw    json.RawMessage
}

// AppendResult answers AppendReports.
type AppendResult struct {
	Results []api.ReportResult
	Install Install
}

// Report is one stored report.
type Report struct {
	InstallID  string          `json:"install_id"`
	Seq        uint64          `json:"seq"`
	ReceivedAt time.Time       `json:"received_at"`
	Body       json.RawMessage `json:"body"` // the report's JSON
}

// EventKind names an entry of an install's audit trail.
type EventKind string

// Event kinds.
const (
	EventActivated   EventKind = "activated"
	EventLinked      EventKind = "linked"
	EventMoved       EventKind = "moved" // admin relink, with who and why
	EventDeactivated EventKind = "deactivated"
	// EventReactivated: a deactivated install activated again with its key
	// (a reinstall that kept the install key).
	EventReactivated EventKind = "reactivated"
	EventCloned      EventKind = "clone_flagged"
)

// Event is one append-only audit entry about an install.
type Event struct {
	InstallID string    `json:"install_id"`
	Kind      EventKind `json:"kind"`
	At        time.Time `json:"at"`
	From      string    `json:"from,omitempty"` // previous partner code
	To        string    `json:"to,omitempty"`   // new partner code
	By        string    `json:"by,omitempty"`   // who: "install", "activation" or the staff member
	Why       string    `json:"why,omitempty"`
}

// Move is an admin relink of an install.
type Move struct {
	To  string // partner code, or empty to unlink
	By  string
	Why string
	At  time.Time
}

// Store is the registry's storage. Every method is one atomic, durable
// operation: when it returns nil the change is on disk (fsync). Methods are
// safe for concurrent use.
type Store interface {
	// CreatePartner stores a new partner; ErrExists if the code is taken.
	CreatePartner(ctx context.Context, p Partner) (Partner, error)
	// GetPartner returns a partner by canonical code, or ErrNotFound.
	GetPartner(ctx context.Context, code string) (Partner, error)
	// ListPartners returns partners matching f, ordered by code.
	ListPartners(ctx context.Context, f PartnerFilter) ([]Partner, error)
	// SetPartnerStatus changes a partner's status, recording why.
	SetPartnerStatus(ctx context.Context, code string, status PartnerStatus, reason string, at time.Time) (Partner, error)

	// ActivateInstall records a new install, or returns the existing one when
	// the public key is already known (Created false); a deactivated install
	// activated again with its key is reactivated, keeping its id and link. A partner code must
	// name an existing partner (ErrPartnerNotFound); one that is not
	// approved leaves the install unlinked with a LinkNote.
	ActivateInstall(ctx context.Context, a Activation) (ActivationResult, error)
	// GetInstall returns an install by id, or ErrNotFound.
	GetInstall(ctx context.Context, id string) (Install, error)
	// ListInstalls returns installs matching f, ordered by id.
	ListInstalls(ctx context.Context, f InstallFilter) ([]Install, error)
	// LinkInstall links an unlinked install to an approved partner. Linking
	// again to the same partner is a no-op; to another: ErrAlreadyLinked.
	LinkInstall(ctx context.Context, id, code string, at time.Time) (Install, error)
	// MoveInstall relinks (or unlinks) an install on staff request and
	// records who and why.
	MoveInstall(ctx context.Context, id string, m Move) (Install, error)
	// DeactivateInstall marks an install removed. Repeating it is a no-op.
	DeactivateInstall(ctx context.Context, id, reason string, at time.Time) (Install, error)
	// SetLicence records the licence most recently issued to an install.
	SetLicence(ctx context.Context, id string, l LicenceRecord) (Install, error)

	// AppendReports stores a batch of reports of one install, each (install,
	// seq) once, updates the install's latest facts and liveness, and flags
	// clones. ErrNotFound, ErrDeactivated.
	AppendReports(ctx context.Context, id string, reports []IncomingReport, at time.Time) (AppendResult, error)
	// ListReports returns stored reports with Seq > afterSeq, in seq order.
	ListReports(ctx context.Context, id string, afterSeq uint64, limit int) ([]Report, error)
	// ListReportSeqs returns the stored sequence numbers > afterSeq, in order.
	ListReportSeqs(ctx context.Context, id string, afterSeq uint64, limit int) ([]uint64, error)
	// ListEvents returns an install's audit trail, oldest first.
	ListEvents(ctx context.Context, id string) ([]Event, error)

	// TicketStore: support tickets and partners' support channels (tickets.go).
	TicketStore
	// LedgerStore: payments journal, customer links, clicks (ledger.go).
	LedgerStore

	// Close finishes pending commits and releases the store.
	Close() error
}

// IsNotFound reports whether err means the thing looked for does not exist.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// NotFoundf wraps ErrNotFound with what was looked for.
func NotFoundf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrNotFound)
}
