package adminapi

import (
	"time"

	"github.com/switchboard-dev/switchboard/registry/store"
)

// Paths of the staff support API. {ticket} is a ticket id.
const (
	PathTickets        = "/v1/admin/tickets"
	PathTicket         = "/v1/admin/tickets/{ticket}"
	PathTicketRoute    = "/v1/admin/tickets/{ticket}/route"
	PathTicketNotes    = "/v1/admin/tickets/{ticket}/notes"
	PathPartnerChannel = "/v1/admin/partners/{code}/channel"
	PathSupportStatus  = "/v1/admin/support"
)

// TicketList answers GET /v1/admin/tickets (oldest first; NextAfter pages).
type TicketList struct {
	Tickets   []store.Ticket `json:"tickets"`
	NextAfter string         `json:"next_after,omitempty"`
}

// RouteRequest is the body of POST /v1/admin/tickets/{ticket}/route.
type RouteRequest struct {
	// To is a partner code or "vendor".
	To  string `json:"to"`
	By  string `json:"by"`
	Why string `json:"why"`
}

// NoteRequest is the body of POST /v1/admin/tickets/{ticket}/notes: a
// note a staff member adds to a ticket by hand.
type NoteRequest struct {
	Author string `json:"author"` // who writes it; recipients see "AUTHOR (vendor staff)"
	Text   string `json:"text"`
}

// NoteResponse answers POST /v1/admin/tickets/{ticket}/notes once the
// note is durable: the stored note (by = the author, staff = true, state
// = its delivery state), the ticket's state, and Delivery, which says in
// words when the note goes out.
type NoteResponse struct {
	TicketID    string            `json:"ticket_id"`
	TicketState store.TicketState `json:"ticket_state"`
	RoutedTo    string            `json:"routed_to"`
	Note        store.Note        `json:"note"`
	Delivery    string            `json:"delivery"`
}

// ChannelRequest is the body of PUT /v1/admin/partners/{code}/channel.
type ChannelRequest struct {
	Type     string            `json:"type"`
	Settings map[string]string `json:"settings"`
	By       string            `json:"by,omitempty"`
	// SkipCheck stores the settings without starting the channel to test
	// them (for a channel whose endpoint is not up yet).
	SkipCheck bool `json:"skip_check,omitempty"`
}

// ChannelView is a partner's channel as staff see it: setting names, and
// values only for settings that are not secret.
type ChannelView struct {
	PartnerCode string            `json:"partner_code"`
	Type        string            `json:"type"`
	Settings    map[string]string `json:"settings"`
	UpdatedAt   time.Time         `json:"updated_at"`
	UpdatedBy   string            `json:"updated_by,omitempty"`
}

// SupportStatus answers GET /v1/admin/support: the channel types the
// registry can run, the vendor queue, and tickets by state.
type SupportStatus struct {
	ChannelTypes []string       `json:"channel_types"`
	VendorType   string         `json:"vendor_channel,omitempty"`
	ByState      map[string]int `json:"by_state"`
	NextDue      time.Time      `json:"next_due,omitzero"`
}
