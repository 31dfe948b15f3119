package store

import (
	"context"
	"encoding/json"
	"time"
)

// Support tickets: what an install asked for, where the registry routed
// it, and every delivery attempt. The registry owns the routing rules and
// the retry schedule (registry/support*.go); a storage engine keeps the
// records, answers "which tickets are due" from an index, and applies a
// change to one ticket atomically (UpdateTicket).

// TicketTarget is who a ticket is routed to.
type TicketTarget string

// Ticket targets.
const (
	TargetPartner TicketTarget = "partner"
	TargetVendor  TicketTarget = "vendor"
)

// TicketState is where a ticket is in its delivery.
type TicketState string

// Ticket states (the api.Ticket* strings).
const (
	TicketQueued    TicketState = "queued"
	TicketRetrying  TicketState = "retrying"
	TicketDelivered TicketState = "delivered"
	TicketHeld      TicketState = "held"
)

// Due reports whether a ticket in state s waits for a delivery attempt.
func (s TicketState) Due() bool { return s == TicketQueued || s == TicketRetrying }

// Route is one routing decision about a ticket.
type Route struct {
	Target      TicketTarget `json:"target"`
	PartnerCode string       `json:"partner_code,omitempty"`
	Channel     string       `json:"channel,omitempty"` // channel type at decision time; "" when none
	Reason      string       `json:"reason"`
	// By is "registry" for automatic decisions (routing on arrival,
	// fallback after failures) or the staff member who re-routed.
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	Fallback bool      `json:"fallback,omitempty"`
}

// String is "partner CODE" or "vendor".
func (r Route) String() string {
	if r.Target == TargetPartner {
		return "partner " + r.PartnerCode
	}
	return string(r.Target)
}

// Receipt is a channel's proof of delivery.
type Receipt struct {
	RemoteID string `json:"remote_id,omitempty"`
	URL      string `json:"url,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Attempt is one delivery attempt.
type Attempt struct {
	N          int       `json:"n"` // 1-based over the ticket's life
	At         time.Time `json:"at"`
	Took       string    `json:"took,omitempty"`
	Route      string    `json:"route"` // Route.String() at the time
	Channel    string    `json:"channel"`
	DeliveryID string    `json:"delivery_id"`
	OK         bool      `json:"ok"`
	Error      string    `json:"error,omitempty"`
	Receipt    *Receipt  `json:"receipt,omitempty"`
}

// MaxAttemptsKept bounds the attempt history stored per ticket; the count
// goes on (Ticket.AttemptCount).
const MaxAttemptsKept = 50

// NoteState is where a note is in its delivery to the ticket's channel.
type NoteState string

// Note states. A note waits (pending) until its ticket is delivered, then
// goes to the same channel; "unsupported" means the channel cannot take
// notes and is not retried; "failed" means the channel refused it.
const (
	NotePending     NoteState = "pending"
	NoteDelivered   NoteState = "delivered"
	NoteFailed      NoteState = "failed"
	NoteUnsupported NoteState = "unsupported"
)

// Note is a remark added to a ticket after it was opened.
type Note struct {
	ID   string    `json:"id"`
	Text string    `json:"text"`
	At   time.Time `json:"at"`
	By   string    `json:"by"` // "install", or the staff member who wrote it
	// Staff marks a note a staff member added by hand (By is then the
	// author as given), so a staff member named "install" is not taken
	// for the install.
	Staff bool `json:"staff,omitempty"`

	// Delivery to the ticket's channel. Notes stored before delivery
	// existed have no state: they count as delivered (never re-sent).
	State       NoteState `json:"state,omitempty"`
	Attempts    int       `json:"attempts,omitempty"` // on the current route
	LastError   string    `json:"last_error,omitempty"`
	DeliveryID  string    `json:"delivery_id,omitempty"`
	Receipt     *Receipt  `json:"receipt,omitempty"`
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
}

// PendingNotes reports whether a note waits for delivery.
func (t *Ticket) PendingNotes() bool {
	for _, n := range t.Notes {
		if n.State == NotePending {
			return true
		}
	}
	return false
}

// Due reports whether the ticket waits for a delivery attempt: of itself
// (queued, retrying) or of a note (delivered, with a note pending).
func (t *Ticket) Due() bool {
	return t.State.Due() || (t.State == TicketDelivered && t.PendingNotes())
}

// AddNote appends n as pending; on a delivered ticket it becomes due at
// now so the note goes out at once.
func (t *Ticket) AddNote(n Note, now time.Time) {
	n.State = NotePending
	t.Notes = append(t.Notes, n)
	if t.State == TicketDelivered {
		t.NextAttemptAt = now
	}
}

// Ticket is one support request.
type Ticket struct {
	ID        string `json:"id"`
	InstallID string `json:"install_id"`
	Subject   string `json:"subject"`
	Body      string `json:"body,omitempty"`
	Origin    string `json:"origin,omitempty"`
	Fault     string `json:"fault,omitempty"`
	// Diagnostics is the JSON object the agent attached.
	Diagnostics json.RawMessage `json:"diagnostics,omitempty"`
	OpenedAt    time.Time       `json:"opened_at"`   // install clock
	ReceivedAt  time.Time       `json:"received_at"` // registry clock
	// Customer names the customer for the people who get the ticket
	// (hostname and customer id as the registry knows them).
	Customer string `json:"customer,omitempty"`
	// PartnerCode is the install's link when the ticket arrived.
	PartnerCode string `json:"partner_code,omitempty"`

	Route  Route   `json:"route"`  // the current decision
	Routes []Route `json:"routes"` // every decision, oldest first (Route is the last)
	// RouteStartedAt is when delivery to the current route began; the
	// give-up time for a partner's channel counts from it.
	RouteStartedAt time.Time `json:"route_started_at"`

	State         TicketState `json:"state"`
	NextAttemptAt time.Time   `json:"next_attempt_at,omitzero"`
	AttemptCount  int         `json:"attempt_count"`
	// RouteAttempts counts the attempts on the current route (backoff).
	RouteAttempts int       `json:"route_attempts"`
	Attempts      []Attempt `json:"attempts,omitempty"` // newest MaxAttemptsKept
	LastError     string    `json:"last_error,omitempty"`
	Receipt       *Receipt  `json:"receipt,omitempty"`
	DeliveredAt   time.Time `json:"delivered_at,omitzero"`
	Notes         []Note    `json:"notes,omitempty"`
	UpdatedAt     time.Time `json:"updated_at"`
}

// AddAttempt records an attempt, keeping the newest MaxAttemptsKept.
func (t *Ticket) AddAttempt(a Attempt) {
	t.AttemptCount++
	t.RouteAttempts++
	a.N = t.AttemptCount
	t.Attempts = append(t.Attempts, a)
	if n := len(t.Attempts); n > MaxAttemptsKept {
		t.Attempts = append([]Attempt(nil), t.Attempts[n-MaxAttemptsKept:]...)
	}
}

// SetRoute makes r the current route and schedules a delivery at r.At
// (or holds the ticket when the route has no channel).
func (t *Ticket) SetRoute(r Route) {
	t.Route = r
	t.Routes = append(t.Routes, r)
	t.RouteStartedAt = r.At
	t.RouteAttempts = 0
	t.Receipt, t.DeliveredAt = nil, time.Time{}
	// The new recipient gets the notes too, after the ticket itself.
	for i := range t.Notes {
		if n := &t.Notes[i]; n.State != "" {
			n.State, n.Attempts, n.LastError, n.Receipt, n.DeliveredAt = NotePending, 0, "", nil, time.Time{}
		}
	}
	if r.Channel == "" {
		t.State, t.NextAttemptAt = TicketHeld, time.Time{}
		return
	}
	t.State, t.NextAttemptAt = TicketQueued, r.At
}

// TicketFilter selects tickets; zero fields match everything.
type TicketFilter struct {
	InstallID   string
	PartnerCode string // current route's partner
	State       TicketState
	// AfterID pages by id (ascending order); Limit bounds the answer.
	AfterID string
	Limit   int
}

// Channel is a partner's support channel: a channel type (a
// SupportChannel plugin the registry knows) and its settings, which may
// hold credentials and never leave the registry.
type Channel struct {
	Type      string            `json:"type"`
	Settings  map[string]string `json:"settings,omitempty"`
	UpdatedAt time.Time         `json:"updated_at"`
	UpdatedBy string            `json:"updated_by,omitempty"`
}

// TicketStore keeps support tickets and partners' support channels.
type TicketStore interface {
	// CreateTicket stores a new ticket. When its id is already stored for
	// the same install the stored ticket is returned with created false;
	// for another install: ErrExists. The install must exist (ErrNotFound).
	CreateTicket(ctx context.Context, t Ticket) (stored Ticket, created bool, err error)
	// GetTicket returns a ticket by id, or ErrNotFound.
	GetTicket(ctx context.Context, id string) (Ticket, error)
	// ListTickets returns tickets matching f ordered by id.
	ListTickets(ctx context.Context, f TicketFilter) ([]Ticket, error)
	// UpdateTicket applies fn to the stored ticket in one transaction and
	// stores the result (fn's error aborts and is returned as is).
	UpdateTicket(ctx context.Context, id string, fn func(*Ticket) error) (Ticket, error)
	// DueTickets returns up to limit tickets that are Due and whose
	// next attempt is at or before `before`, earliest first.
	DueTickets(ctx context.Context, before time.Time, limit int) ([]Ticket, error)
	// NextDue returns the earliest next attempt of any due ticket (zero
	// when none is due).
	NextDue(ctx context.Context) (time.Time, error)

	// SetPartnerChannel sets (replaces) a partner's support channel; the
	// partner must exist (ErrNotFound).
	SetPartnerChannel(ctx context.Context, code string, ch Channel) error
	// GetPartnerChannel returns a partner's channel, or ErrNotFound.
	GetPartnerChannel(ctx context.Context, code string) (Channel, error)
	// DeletePartnerChannel removes a partner's channel; removing none is
	// ErrNotFound.
	DeletePartnerChannel(ctx context.Context, code string) error
}
