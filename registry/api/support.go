package api

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Paths of the install-facing support endpoints (signed like every install
// request). {ticket} is the ticket id.
const (
	// PathTickets: POST opens a ticket (idempotent by ticket id); GET lists
	// the install's tickets with their routing and delivery state.
	PathTickets = "/v1/installs/{id}/tickets"
	// PathTicketNotes: POST adds a note (for example "recovered") to one of
	// the install's tickets (idempotent by note id).
	PathTicketNotes = "/v1/installs/{id}/tickets/{ticket}/notes"
)

// TicketPath fills the install id and the ticket id into PathTicketNotes.
func TicketPath(pattern, installID, ticketID string) string {
	p := InstallPath(pattern, installID)
	return strings.Replace(p, "{ticket}", url.PathEscape(ticketID), 1)
}

// Ticket origins.
const (
	OriginCLI   = "cli"   // switchboard support open
	OriginAuto  = "auto"  // the agent opened it for a lasting plugin fault
	OriginOdoo  = "odoo"  // opened from the product (Odoo)
	OriginOther = "other" // anything else a local client says
)

// Limits on a ticket an install sends.
const (
	MaxSubjectLen     = 200
	MaxTicketBodyLen  = 32 << 10
	MaxDiagnosticsLen = 256 << 10
	MaxNoteLen        = 4 << 10
)

// TicketRequest is the body of POST /v1/installs/{id}/tickets. ID is made
// by the agent ("t" and 26 base32 characters, like install ids) when the
// ticket is opened, so a resend after a lost answer is recognised.
type TicketRequest struct {
	ID      string `json:"id"`
	Seq     uint64 `json:"seq,omitempty"` // the agent's outbox sequence number
	Subject string `json:"subject"`
	Body    string `json:"body,omitempty"`
	Origin  string `json:"origin,omitempty"`
	// Fault names the plugin whose lasting fault an automatic ticket is about.
	Fault       string          `json:"fault,omitempty"`
	OpenedAt    time.Time       `json:"opened_at"`
	Diagnostics json.RawMessage `json:"diagnostics,omitempty"` // a JSON object, already scrubbed by the agent
}

// TicketNoteRequest is the body of POST /v1/installs/{id}/tickets/{ticket}/notes.
type TicketNoteRequest struct {
	ID   string    `json:"id"` // made by the agent; repeats are ignored
	Text string    `json:"text"`
	At   time.Time `json:"at"`
}

// Ticket delivery states, as the registry reports them.
const (
	TicketQueued    = "queued"    // routed, waiting for its first delivery attempt
	TicketRetrying  = "retrying"  // an attempt failed; the next one is scheduled
	TicketDelivered = "delivered" // the channel accepted it (see the receipt)
	TicketHeld      = "held"      // routed to the vendor, which has no channel configured: staff see it in the registry
)

// TicketReceipt is the channel's proof of delivery.
type TicketReceipt struct {
	RemoteID string `json:"remote_id,omitempty"`
	URL      string `json:"url,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// TicketStatus is a ticket's routing and delivery state as an install may
// see it. Nothing about the partner's channel settings is in it.
type TicketStatus struct {
	ID          string         `json:"id"`
	State       string         `json:"state"`
	RoutedTo    string         `json:"routed_to"` // "partner CODE" or "vendor"
	RouteReason string         `json:"route_reason"`
	Channel     string         `json:"channel,omitempty"` // webhook, email, odoo, …
	Attempts    int            `json:"attempts"`
	LastError   string         `json:"last_error,omitempty"`
	NextAttempt time.Time      `json:"next_attempt,omitzero"`
	Receipt     *TicketReceipt `json:"receipt,omitempty"`
	DeliveredAt time.Time      `json:"delivered_at,omitzero"`
	ReceivedAt  time.Time      `json:"received_at"`
	UpdatedAt   time.Time      `json:"updated_at"`
	Notes       int            `json:"notes,omitempty"`
}

// TicketResponse answers POST /v1/installs/{id}/tickets once the ticket is
// durable. Duplicate is true when the ticket id was known already.
type TicketResponse struct {
	TicketStatus
	Duplicate bool `json:"duplicate,omitempty"`
}

// TicketList answers GET /v1/installs/{id}/tickets: the install's newest
// tickets, newest first.
type TicketList struct {
	Tickets []TicketStatus `json:"tickets"`
}

// CodeUnknownTicket is 404 for a ticket id the registry does not know (or
// that belongs to another install).
const CodeUnknownTicket = "unknown_ticket"
