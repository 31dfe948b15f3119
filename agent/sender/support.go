package sender

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// SupportRecord is the body of an outbox record of kind support_ticket:
// either a new ticket or a note on one the install opened before.
type SupportRecord struct {
	Ticket *api.TicketRequest `json:"ticket,omitempty"`
	Note   *SupportNote       `json:"note,omitempty"`
}

// SupportNote is a note for the ticket TicketID.
type SupportNote struct {
	TicketID string                `json:"ticket_id"`
	Note     api.TicketNoteRequest `json:"note"`
}

// TicketHooks is implemented by Hooks that follow support tickets. It is
// optional so that Hooks written before support existed keep working.
type TicketHooks interface {
	// TicketAnswered stores the registry's answer to a ticket or a note.
	TicketAnswered(rec SupportRecord, st api.TicketStatus)
	// TicketRefused is told the registry refused a support record for good.
	TicketRefused(rec outbox.Record, err *APIError)
}

func (s *Sender) deliverSupport(ctx context.Context, installID string, head outbox.Record) error {
	var rec SupportRecord
	if err := json.Unmarshal(head.Body, &rec); err != nil {
		return fmt.Errorf("%w: outbox support record %d is damaged: %v", errUnsupported, head.Seq, err)
	}
	var st api.TicketStatus
	switch {
	case rec.Ticket != nil:
		req := *rec.Ticket
		req.Seq = head.Seq
		body, err := json.Marshal(req)
		if err != nil {
			return fmt.Errorf("encode ticket: %w", err)
		}
		var resp api.TicketResponse
		if err := s.post(ctx, api.InstallPath(api.PathTickets, installID), installID, body, &resp); err != nil {
			return err
		}
		st = resp.TicketStatus
	case rec.Note != nil:
		body, err := json.Marshal(rec.Note.Note)
		if err != nil {
			return fmt.Errorf("encode ticket note: %w", err)
		}
		if err := s.post(ctx, api.TicketPath(api.PathTicketNotes, installID, rec.Note.TicketID), installID, body, &st); err != nil {
			return err
		}
	default:
		return fmt.Errorf("%w: outbox support record %d holds neither a ticket nor a note", errUnsupported, head.Seq)
	}
	if th, ok := s.opts.Hooks.(TicketHooks); ok {
		th.TicketAnswered(rec, st)
	}
	return nil
}
