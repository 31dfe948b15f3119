package plugins

import (
	"context"
	"time"
)

// Integration is implemented by plugins that watch a product (Asterisk,
// Odoo) on the customer's server. The host calls it through the gRPC glue;
// adapters implement it directly. Every method must honour ctx: the host
// gives each call a deadline and stops waiting when it passes.
type Integration interface {
	// Configure validates and stores settings. It is called once after every
	// start, before any other method. It must not fail because the product
	// is unreachable; report that through Health.
	Configure(ctx context.Context, settings map[string]string) error
	// Describe reports what the product is and its seat counts.
	Describe(ctx context.Context) (Facts, error)
	// Health reports whether the plugin can reach and read the product.
	Health(ctx context.Context) (Health, error)
	// ApplyPartnerLink writes the partner code (and its tier, "partner" or
	// "referral") into the product.
	ApplyPartnerLink(ctx context.Context, code, tier string) (LinkResult, error)
}

// SupportChannel is implemented by plugins that deliver support tickets.
type SupportChannel interface {
	// Configure validates and stores settings; see Integration.Configure.
	Configure(ctx context.Context, settings map[string]string) error
	// Deliver hands one ticket over. The same DeliveryID may arrive more
	// than once (retries); a channel should then not create a second copy
	// where the remote side lets it tell.
	Deliver(ctx context.Context, t Ticket) (Receipt, error)
	// Health reports whether the channel can deliver right now.
	Health(ctx context.Context) (Health, error)
}

// NoteDeliverer is implemented by support channels that can add a note to
// a ticket they delivered before (a reply e-mail, a message on the remote
// record). It is optional: the gRPC server answers Unimplemented for a
// channel without it, and the host reports ErrNotesUnsupported.
type NoteDeliverer interface {
	// DeliverNote hands one note over. The same DeliveryID may arrive
	// more than once (retries), as with Deliver.
	DeliverNote(ctx context.Context, n Note) (Receipt, error)
}

// Seat names used by the built-in adapters. A seat map may hold others.
const (
	SeatPBXEndpoints = "pbx_endpoints"
	SeatOdooUsers    = "odoo_users"
)

// Facts describe the product an Integration plugin watches.
type Facts struct {
	Product      string            `json:"product"`
	Version      string            `json:"version"`
	Distribution string            `json:"distribution,omitempty"`
	Build        string            `json:"build,omitempty"`
	Details      map[string]string `json:"details,omitempty"`
	Seats        map[string]int64  `json:"seats,omitempty"`
}

// Health is a plugin's own report on its health.
type Health struct {
	Healthy bool      `json:"healthy"`
	State   string    `json:"state"`
	Detail  string    `json:"detail,omitempty"`
	Since   time.Time `json:"since,omitzero"`
}

// LinkResult says whether ApplyPartnerLink changed the product.
type LinkResult struct {
	Applied bool   `json:"applied"`
	Detail  string `json:"detail,omitempty"`
}

// Ticket is one support request as the registry routed it.
type Ticket struct {
	ID          string    `json:"id"`
	DeliveryID  string    `json:"delivery_id"`
	Subject     string    `json:"subject"`
	Body        string    `json:"body"`
	InstallID   string    `json:"install_id"`
	Customer    string    `json:"customer,omitempty"`
	PartnerCode string    `json:"partner_code,omitempty"`
	RoutedTo    string    `json:"routed_to"`
	Reason      string    `json:"reason,omitempty"`
	Diagnostics []byte    `json:"diagnostics,omitempty"` // a JSON document
	CreatedAt   time.Time `json:"created_at"`
}

// Receipt is a channel's proof that it delivered a ticket.
type Receipt struct {
	RemoteID string `json:"remote_id,omitempty"`
	URL      string `json:"url,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Note is a remark added to a delivered ticket, for the people who got it.
type Note struct {
	TicketID      string `json:"ticket_id"`
	TicketSubject string `json:"ticket_subject"`
	// TicketReceipt is the channel's receipt for the ticket: the remote
	// record (or message) the note belongs to.
	TicketReceipt Receipt   `json:"ticket_receipt"`
	NoteID        string    `json:"note_id"`
	DeliveryID    string    `json:"delivery_id"`
	Text          string    `json:"text"`
	Author        string    `json:"author,omitempty"` // "install" or a staff member
	CreatedAt     time.Time `json:"created_at"`
}
