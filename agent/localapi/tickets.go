package localapi

import (
	"context"
	"net/http"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// PathTickets: POST opens a support ticket (or previews it with dry_run),
// GET lists this server's tickets (?refresh=1 asks the registry first).
const PathTickets = "/v1/tickets"

// OpenTicketRequest is the body of POST /v1/tickets.
type OpenTicketRequest struct {
	Subject string `json:"subject"`
	Body    string `json:"body,omitempty"`
	// NoDiagnostics leaves the diagnostics out.
	NoDiagnostics bool `json:"no_diagnostics,omitempty"`
	// DryRun builds the ticket exactly as it would be sent and returns it
	// without queueing anything.
	DryRun bool   `json:"dry_run,omitempty"`
	Origin string `json:"origin,omitempty"`
}

// OpenTicketAnswer says the ticket was queued (or, for a dry run, shows it).
type OpenTicketAnswer struct {
	ID      string            `json:"id"`
	Seq     uint64            `json:"seq,omitempty"`
	DryRun  bool              `json:"dry_run,omitempty"`
	Ticket  api.TicketRequest `json:"ticket"`
	Message string            `json:"message"`
}

// TicketInfo is one ticket opened on this server as the agent knows it:
// its local state until the registry answered, then the registry's view.
type TicketInfo struct {
	ID       string    `json:"id"`
	Seq      uint64    `json:"seq"`
	Subject  string    `json:"subject"`
	Origin   string    `json:"origin,omitempty"`
	Fault    string    `json:"fault,omitempty"`
	OpenedAt time.Time `json:"opened_at"`
	// Local is waiting (in the outbox), sent (the registry has it) or
	// refused (the registry refused it for good; see Error).
	Local string `json:"local_state"`
	Error string `json:"error,omitempty"`
	// Registry is the registry's last report on the ticket, if any.
	Registry   *api.TicketStatus `json:"registry,omitempty"`
	ReportedAt time.Time         `json:"reported_at,omitzero"`
	// RecoveredAt is set on an automatic ticket once its fault went away.
	RecoveredAt time.Time `json:"recovered_at,omitzero"`
}

// TicketList answers GET /v1/tickets, newest first.
type TicketList struct {
	Tickets []TicketInfo `json:"tickets"`
	// Refreshed says whether the registry was asked just now; RefreshError
	// why it could not be.
	Refreshed    bool   `json:"refreshed"`
	RefreshError string `json:"refresh_error,omitempty"`
}

// TicketAgent is implemented by an Agent that handles support tickets.
type TicketAgent interface {
	OpenTicket(ctx context.Context, req OpenTicketRequest) (OpenTicketAnswer, error)
	Tickets(ctx context.Context, refresh bool) (TicketList, error)
}

// registerTickets adds the ticket routes when a implements TicketAgent.
func registerTickets(mux *http.ServeMux, a Agent) {
	ta, ok := a.(TicketAgent)
	if !ok {
		return
	}
	mux.HandleFunc("POST "+PathTickets, func(w http.ResponseWriter, r *http.Request) {
		var req OpenTicketRequest
		if err := decodeBody(w, r, maxTicketBody, &req, `{"subject":"…","body":"…"}`); err != nil {
			writeErr(w, err)
			return
		}
		ans, err := ta.OpenTicket(r.Context(), req)
		if err != nil {
			writeErr(w, err)
			return
		}
		status := http.StatusAccepted
		if req.DryRun {
			status = http.StatusOK
		}
		writeJSON(w, status, ans)
	})
	mux.HandleFunc("GET "+PathTickets, func(w http.ResponseWriter, r *http.Request) {
		list, err := ta.Tickets(r.Context(), r.URL.Query().Get("refresh") == "1")
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusOK, list)
	})
}

// OpenTicket asks the agent to queue (or preview) a support ticket.
func (c *Client) OpenTicket(ctx context.Context, req OpenTicketRequest) (OpenTicketAnswer, error) {
	var a OpenTicketAnswer
	err := c.do(ctx, http.MethodPost, PathTickets, req, &a)
	return a, err
}

// Tickets lists this server's tickets; refresh asks the registry first.
func (c *Client) Tickets(ctx context.Context, refresh bool) (TicketList, error) {
	var l TicketList
	path := PathTickets
	if refresh {
		path += "?refresh=1"
	}
	err := c.do(ctx, http.MethodGet, path, nil, &l)
	return l, err
}
