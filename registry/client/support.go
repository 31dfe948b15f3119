package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/store"
)

func ticketPath(pattern, id string) string {
	return strings.Replace(pattern, "{ticket}", url.PathEscape(id), 1)
}

// TicketQuery selects tickets for ListTickets.
type TicketQuery struct {
	State   string // queued, retrying, delivered, held
	Partner string // current route's partner code
	Install string
}

// ListTickets returns every ticket matching q, following pages.
func (c *Client) ListTickets(ctx context.Context, tq TicketQuery) ([]store.Ticket, error) {
	all := []store.Ticket{}
	after := ""
	for {
		q := url.Values{}
		for k, v := range map[string]string{"state": tq.State, "partner": tq.Partner, "install": tq.Install, "after": after} {
			if v != "" {
				q.Set(k, v)
			}
		}
		var page adminapi.TicketList
		if err := c.do(ctx, http.MethodGet, adminapi.PathTickets, q, nil, &page); err != nil {
			return all, err
		}
		all = append(all, page.Tickets...)
		if page.NextAfter == "" {
			return all, nil
		}
		after = page.NextAfter
	}
}

// GetTicket returns one ticket with its routes and attempts.
func (c *Client) GetTicket(ctx context.Context, id string) (store.Ticket, error) {
	var t store.Ticket
	err := c.do(ctx, http.MethodGet, ticketPath(adminapi.PathTicket, id), nil, nil, &t)
	return t, err
}

// RouteTicket re-routes a ticket to a partner code or "vendor".
func (c *Client) RouteTicket(ctx context.Context, id string, req adminapi.RouteRequest) (store.Ticket, error) {
	var t store.Ticket
	err := c.do(ctx, http.MethodPost, ticketPath(adminapi.PathTicketRoute, id), nil, req, &t)
	return t, err
}

// AddTicketNote adds a staff note to a ticket; the registry delivers it
// through the ticket's channel (see NoteResponse.Delivery for when). The
// request is not idempotent: do not resend it blindly after an error.
func (c *Client) AddTicketNote(ctx context.Context, id string, req adminapi.NoteRequest) (adminapi.NoteResponse, error) {
	var out adminapi.NoteResponse
	err := c.do(ctx, http.MethodPost, ticketPath(adminapi.PathTicketNotes, id), nil, req, &out)
	return out, err
}

// SetPartnerChannel sets a partner's support channel.
func (c *Client) SetPartnerChannel(ctx context.Context, code string, req adminapi.ChannelRequest) (adminapi.ChannelView, error) {
	var v adminapi.ChannelView
	err := c.do(ctx, http.MethodPut, partnerPath(adminapi.PathPartnerChannel, code), nil, req, &v)
	return v, err
}

// GetPartnerChannel returns a partner's support channel (secrets hidden).
func (c *Client) GetPartnerChannel(ctx context.Context, code string) (adminapi.ChannelView, error) {
	var v adminapi.ChannelView
	err := c.do(ctx, http.MethodGet, partnerPath(adminapi.PathPartnerChannel, code), nil, nil, &v)
	return v, err
}

// DeletePartnerChannel removes a partner's support channel.
func (c *Client) DeletePartnerChannel(ctx context.Context, code string) error {
	return c.do(ctx, http.MethodDelete, partnerPath(adminapi.PathPartnerChannel, code), nil, nil, nil)
}

// SupportStatus returns the registry's support overview.
func (c *Client) SupportStatus(ctx context.Context) (adminapi.SupportStatus, error) {
	var s adminapi.SupportStatus
	err := c.do(ctx, http.MethodGet, adminapi.PathSupportStatus, nil, nil, &s)
	return s, err
}
