package registry

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Support: installs open tickets (POST /v1/installs/{id}/tickets), the
// registry routes each one — to the install's partner when that partner is
// a partner (not a referral), approved and has a support channel,
// otherwise to the vendor queue — stores the decision with its reason
// before answering, and a delivery worker (support_delivery.go) hands it to
// the channel plugin (support_channels.go), durably and with retries.

// ticketIDLen: "t" and 26 lowercase base32 characters, made by the agent.
const ticketIDLen = 27

func validTicketID(id string) bool {
	if len(id) != ticketIDLen || id[0] != 't' {
		return false
	}
	for i := 1; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

// checkText checks multi-line text a person typed: UTF-8, no control
// characters but tab and newlines, at most max bytes.
func checkText(name, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%s is %d bytes; at most %d", name, len(v), max)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s is not valid UTF-8", name)
	}
	for _, r := range v {
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f {
			return fmt.Errorf("%s contains control characters", name)
		}
	}
	return nil
}

// DecodeTicket parses and checks the body of POST /v1/installs/{id}/tickets.
func DecodeTicket(body []byte) (api.TicketRequest, error) {
	var req api.TicketRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return req, decodeErrorf("body is not a JSON ticket: %v", err)
	}
	if !validTicketID(req.ID) {
		return req, decodeErrorf("ticket id %q must be \"t\" and 26 base32 characters (the agent makes it)", req.ID)
	}
	req.Subject = strings.TrimSpace(req.Subject)
	if req.Subject == "" {
		return req, decodeErrorf("subject is empty: say in a few words what is wrong")
	}
	if len(req.Subject) > api.MaxSubjectLen {
		return req, decodeErrorf("subject is %d bytes; at most %d", len(req.Subject), api.MaxSubjectLen)
	}
	if err := checkString("subject", req.Subject); err != nil {
		return req, &DecodeError{Msg: err.Error()}
	}
	if err := checkText("body", req.Body, api.MaxTicketBodyLen); err != nil {
		return req, &DecodeError{Msg: err.Error()}
	}
	switch req.Origin {
	case "", api.OriginCLI, api.OriginAuto, api.OriginOdoo, api.OriginOther:
	default:
		return req, decodeErrorf("origin %q: use cli, auto, odoo or other", req.Origin)
	}
	if err := checkString("fault", req.Fault); err != nil {
		return req, &DecodeError{Msg: err.Error()}
	}
	if req.OpenedAt.IsZero() || req.OpenedAt.Year() < 2000 || req.OpenedAt.Year() > 9999 {
		return req, decodeErrorf("opened_at is missing or out of range")
	}
	if n := len(req.Diagnostics); n > 0 {
		if n > api.MaxDiagnosticsLen {
			return req, decodeErrorf("diagnostics are %d bytes; at most %d", n, api.MaxDiagnosticsLen)
		}
		var obj map[string]any
		if err := json.Unmarshal(req.Diagnostics, &obj); err != nil {
			return req, decodeErrorf("diagnostics must be a JSON object: %v", err)
		}
	}
	return req, nil
}

// customerName is how the people receiving a ticket recognise the customer.
func customerName(in store.Install) string {
	name := in.Facts.Hostname
	if name == "" {
		name = "install " + in.ID
	}
	if in.CustomerID != "" {
		name += " (customer " + in.CustomerID + ")"
	}
	return name
}

// routeFor decides where a ticket of in goes, with the reason.
func (s *Server) routeFor(ctx context.Context, in store.Install, at time.Time) (store.Route, error) {
	vendor := func(reason string) store.Route {
		return store.Route{Target: store.TargetVendor, Channel: s.support.cfg.Vendor.Type, Reason: reason, By: "registry", At: at}
	}
	if in.PartnerCode == "" {
		return vendor("install is not linked to a partner"), nil
	}
	p, err := s.store.GetPartner(ctx, in.PartnerCode)
	if store.IsNotFound(err) {
		return vendor(fmt.Sprintf("linked code %s is not a known partner", in.PartnerCode)), nil
	}
	if err != nil {
		return store.Route{}, err
	}
	if p.Tier != store.TierPartner {
		return vendor(fmt.Sprintf("linked to %s, a %s: referrals do not give support", p.Code, p.Tier)), nil
	}
	if p.Status != store.PartnerApproved {
		return vendor(fmt.Sprintf("linked partner %s is %s", p.Code, p.Status)), nil
	}
	ch, err := s.store.GetPartnerChannel(ctx, p.Code)
	if store.IsNotFound(err) {
		return vendor(fmt.Sprintf("linked partner %s has no support channel set", p.Code)), nil
	}
	if err != nil {
		return store.Route{}, err
	}
	if !s.support.cfg.knownType(ch.Type) {
		return vendor(fmt.Sprintf("linked partner %s uses channel type %s, which this registry cannot run", p.Code, ch.Type)), nil
	}
	return store.Route{Target: store.TargetPartner, PartnerCode: p.Code, Channel: ch.Type,
		Reason: fmt.Sprintf("linked partner %s (approved) takes first-line support by %s", p.Code, ch.Type), By: "registry", At: at}, nil
}

// ticketStatus is what an install may see of a ticket.
func ticketStatus(t store.Ticket) api.TicketStatus {
	st := api.TicketStatus{ID: t.ID, State: string(t.State), RoutedTo: t.Route.String(), RouteReason: t.Route.Reason,
		Channel: t.Route.Channel, Attempts: t.AttemptCount, LastError: t.LastError, NextAttempt: t.NextAttemptAt,
		DeliveredAt: t.DeliveredAt, ReceivedAt: t.ReceivedAt, UpdatedAt: t.UpdatedAt, Notes: len(t.Notes)}
	if r := t.Receipt; r != nil {
		st.Receipt = &api.TicketReceipt{RemoteID: r.RemoteID, URL: r.URL, Detail: r.Detail}
	}
	return st
}

func (s *Server) handleOpenTicket(w http.ResponseWriter, r *http.Request) {
	if err := s.openTicket(w, r); err != nil {
		s.fail(w, err)
	}
}

func (s *Server) openTicket(w http.ResponseWriter, r *http.Request) error {
	id, body, err := s.signedInstall(w, r)
	if err != nil {
		return err
	}
	req, err := DecodeTicket(body)
	if err != nil {
		return errorf(http.StatusBadRequest, api.CodeMalformed, "%v", err)
	}
	ctx := r.Context()
	if old, err := s.store.GetTicket(ctx, req.ID); err == nil {
		if old.InstallID != id {
			return errorf(http.StatusConflict, api.CodeConflict, "ticket id %s is taken: open the ticket again (the agent makes a new id)", req.ID)
		}
		writeJSON(w, http.StatusOK, api.TicketResponse{TicketStatus: ticketStatus(old), Duplicate: true})
		return nil
	} else if !store.IsNotFound(err) {
		return err
	}
	in, err := s.store.GetInstall(ctx, id)
	if err != nil {
		return refusal(err, id)
	}
	if in.State == store.InstallDeactivated {
		return refusal(store.ErrDeactivated, id)
	}
	now := s.now()
	route, err := s.routeFor(ctx, in, now)
	if err != nil {
		return err
	}
	t := store.Ticket{ID: req.ID, InstallID: id, Subject: req.Subject, Body: req.Body, Origin: req.Origin,
		Fault: req.Fault, Diagnostics: req.Diagnostics, OpenedAt: req.OpenedAt.UTC(), ReceivedAt: now,
		Customer: customerName(in), PartnerCode: in.PartnerCode, UpdatedAt: now}
	t.SetRoute(route)
	stored, created, err := s.store.CreateTicket(ctx, t)
	switch {
	case errors.Is(err, store.ErrExists):
		return errorf(http.StatusConflict, api.CodeConflict, "ticket id %s is taken: open the ticket again (the agent makes a new id)", req.ID)
	case err != nil:
		return refusal(err, id)
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		s.support.metricOpened(stored)
		s.log.Info("ticket opened", "ticket", stored.ID, "install", id, "routed_to", stored.Route.String(), "reason", stored.Route.Reason, "state", stored.State)
		s.support.wake()
	}
	writeJSON(w, status, api.TicketResponse{TicketStatus: ticketStatus(stored), Duplicate: !created})
	return nil
}

func (s *Server) handleInstallTickets(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		id, _, err := s.signedInstall(w, r)
		if err != nil {
			return err
		}
		ts, err := s.store.ListTickets(r.Context(), store.TicketFilter{InstallID: id})
		if err != nil {
			return err
		}
		slices.SortFunc(ts, func(a, b store.Ticket) int { return b.ReceivedAt.Compare(a.ReceivedAt) })
		out := api.TicketList{Tickets: []api.TicketStatus{}}
		for i, t := range ts {
			if i == 100 {
				break
			}
			out.Tickets = append(out.Tickets, ticketStatus(t))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// maxNotes bounds the notes on one ticket.
const maxNotes = 50

func (s *Server) handleTicketNote(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		id, body, err := s.signedInstall(w, r)
		if err != nil {
			return err
		}
		tid := r.PathValue("ticket")
		var req api.TicketNoteRequest
		if err := json.Unmarshal(body, &req); err != nil {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "body is not a JSON note: %v", err)
		}
		if req.ID == "" || len(req.ID) > 64 || checkString("note id", req.ID) != nil {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "note id must be 1-64 printable characters")
		}
		if strings.TrimSpace(req.Text) == "" {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "note text is empty")
		}
		if err := checkText("note text", req.Text, api.MaxNoteLen); err != nil {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "%v", err)
		}
		t, err := s.store.UpdateTicket(r.Context(), tid, func(t *store.Ticket) error {
			if t.InstallID != id {
				return store.NotFoundf("ticket %s", tid)
			}
			if slices.ContainsFunc(t.Notes, func(n store.Note) bool { return n.ID == req.ID }) {
				return nil
			}
			if len(t.Notes) >= maxNotes {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "ticket %s has %d notes already; open a new ticket", tid, maxNotes)
			}
			at := req.At.UTC()
			if at.IsZero() {
				at = s.now()
			}
			t.AddNote(store.Note{ID: req.ID, Text: req.Text, At: at, By: "install"}, s.now())
			t.UpdatedAt = s.now()
			return nil
		})
		if store.IsNotFound(err) {
			return errorf(http.StatusNotFound, api.CodeUnknownTicket, "ticket %s is not known for install %s", tid, id)
		}
		if err != nil {
			return err
		}
		s.log.Info("ticket note added", "ticket", tid, "install", id, "note", req.ID)
		s.support.wake()
		writeJSON(w, http.StatusOK, ticketStatus(t))
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// --- staff ---------------------------------------------------------------

func (s *Server) handleAdminTickets(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		q := r.URL.Query()
		if err := checkQuery(q, "state", "partner", "install", "after"); err != nil {
			return err
		}
		f := store.TicketFilter{InstallID: q.Get("install"), State: store.TicketState(q.Get("state")), AfterID: q.Get("after"), Limit: 200}
		switch f.State {
		case "", store.TicketQueued, store.TicketRetrying, store.TicketDelivered, store.TicketHeld:
		default:
			return errorf(http.StatusBadRequest, api.CodeMalformed, "state %q: use queued, retrying, delivered or held", f.State)
		}
		// A malformed id would match nothing: an empty list that looks
		// like an answer to a typo.
		if f.InstallID != "" && !validInstallID(f.InstallID) {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "install %q is not an install id (i and 26 base32 characters)", f.InstallID)
		}
		if f.AfterID != "" && !validTicketID(f.AfterID) {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "after %q is not a ticket id: pass the next_after of the previous page", f.AfterID)
		}
		if p := q.Get("partner"); p != "" {
			code, err := filterCode(p)
			if err != nil {
				return err
			}
			f.PartnerCode = code
		}
		ts, err := s.store.ListTickets(r.Context(), f)
		if err != nil {
			return err
		}
		out := adminapi.TicketList{Tickets: ts}
		if len(ts) == f.Limit {
			out.NextAfter = ts[len(ts)-1].ID
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) pathTicket(r *http.Request) (store.Ticket, error) {
	id := r.PathValue("ticket")
	if !validTicketID(id) {
		return store.Ticket{}, errorf(http.StatusNotFound, api.CodeUnknownTicket, "%q is not a ticket id (t and 26 base32 characters)", id)
	}
	t, err := s.store.GetTicket(r.Context(), id)
	if store.IsNotFound(err) {
		return t, errorf(http.StatusNotFound, api.CodeUnknownTicket, "ticket %s is not known to this registry", id)
	}
	return t, err
}

// pathTicketBody is pathTicket for a request with a body, which it reads.
func (s *Server) pathTicketBody(w http.ResponseWriter, r *http.Request) (store.Ticket, []byte, error) {
	t, err := s.pathTicket(r)
	if err != nil {
		return t, nil, err
	}
	body, err := s.readBody(w, r)
	return t, body, err
}

func (s *Server) handleAdminTicket(w http.ResponseWriter, r *http.Request) {
	t, err := s.pathTicket(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func (s *Server) handleAdminRouteTicket(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		t, body, err := s.pathTicketBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.RouteRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		req.By, req.Why = strings.TrimSpace(req.By), strings.TrimSpace(req.Why)
		if req.By == "" || req.Why == "" {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "by and why are required: re-routing is recorded with who did it and why")
		}
		for _, f := range []struct{ n, v string }{{"by", req.By}, {"why", req.Why}} {
			if err := checkString(f.n, f.v); err != nil {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
			}
		}
		now := s.now()
		route := store.Route{Target: store.TargetVendor, Channel: s.support.cfg.Vendor.Type, Reason: "re-routed by staff: " + req.Why, By: req.By, At: now}
		if !strings.EqualFold(strings.TrimSpace(req.To), "vendor") {
			code, err := parseCode(req.To)
			if err != nil {
				return err
			}
			p, err := s.store.GetPartner(r.Context(), code)
			if store.IsNotFound(err) {
				return errorf(http.StatusUnprocessableEntity, api.CodeUnknownPartnerCode, "partner code %s is not known to this registry", code)
			}
			if err != nil {
				return err
			}
			if p.Tier != store.TierPartner {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%s is a %s: referrals never receive support tickets", code, p.Tier)
			}
			if p.Status != store.PartnerApproved {
				return errorf(http.StatusUnprocessableEntity, api.CodeNotApproved, "partner %s is %s: approve it first, or route to vendor", code, p.Status)
			}
			ch, err := s.store.GetPartnerChannel(r.Context(), code)
			if store.IsNotFound(err) {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "partner %s has no support channel: set one with 'switchboard registry partner channel set %s --type …' first", code, code)
			}
			if err != nil {
				return err
			}
			route = store.Route{Target: store.TargetPartner, PartnerCode: code, Channel: ch.Type, Reason: "re-routed by staff: " + req.Why, By: req.By, At: now}
		}
		t, err = s.store.UpdateTicket(r.Context(), t.ID, func(t *store.Ticket) error {
			t.SetRoute(route)
			t.LastError = ""
			t.UpdatedAt = now
			return nil
		})
		if err != nil {
			return err
		}
		s.log.Info("ticket re-routed", "ticket", t.ID, "to", route.String(), "by", req.By, "why", req.Why)
		s.support.wake()
		writeJSON(w, http.StatusOK, t)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// maxNoteAuthorLen bounds the author of a staff note: a name or a login
// ("alice", "alice@support-host"), not a sentence.
const maxNoteAuthorLen = 128

// staffNotePrefix starts the id of every note staff add by hand; the rest
// is random, so ids never collide with the agent's note ids in practice.
const staffNotePrefix = "staff-"

func newStaffNoteID() (string, error) {
	var b [10]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generate note id: %w", err)
	}
	return staffNotePrefix + idEncoding.EncodeToString(b[:]), nil
}

// checkStaffNote checks a staff note with the bounds of install-side notes
// (api.MaxNoteLen, the same characters) and returns author and text
// without surrounding blank space. Every problem is a 422 that names it.
func checkStaffNote(req adminapi.NoteRequest) (author, text string, err error) {
	author, text = strings.TrimSpace(req.Author), strings.TrimSpace(req.Text)
	switch {
	case author == "":
		return "", "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "author is empty: say who writes the note (recipients see it as AUTHOR (vendor staff))")
	case len(author) > maxNoteAuthorLen:
		return "", "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "author is %d bytes; at most %d: give a name or login, not a sentence", len(author), maxNoteAuthorLen)
	case text == "":
		return "", "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "note text is empty: write what the people handling the ticket should know")
	}
	if err := checkString("author", author); err != nil {
		return "", "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
	}
	if err := checkText("note text", text, api.MaxNoteLen); err != nil {
		return "", "", errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v: shorten it (a note holds at most %d bytes)", err, api.MaxNoteLen)
	}
	return author, text, nil
}

// staffNoteDelivery says when a note just added to t goes out.
func staffNoteDelivery(t store.Ticket) string {
	switch t.State {
	case store.TicketDelivered:
		return fmt.Sprintf("the ticket was delivered to %s by %s: the note goes out through the same channel now", t.Route.String(), t.Route.Channel)
	case store.TicketHeld:
		return "the ticket is held in the registry (routed to " + t.Route.String() + ", which has no channel): the note is stored with it " +
			"and goes out after the ticket if it is re-routed ('switchboard registry support route')"
	default:
		return fmt.Sprintf("the ticket is %s (not delivered to %s yet): the note goes out right after it", t.State, t.Route.String())
	}
}

// handleAdminTicketNote stores a note a staff member writes on a ticket
// and queues it for delivery exactly like the install's notes: pending
// until the ticket is delivered, then through the channel that took the
// ticket (support_delivery.go deliverNotes), and again to a new recipient
// after a re-route. A held ticket keeps the note (201, state pending, the
// answer says it is held). There is no idempotency key: a repeated request
// adds a second note.
func (s *Server) handleAdminTicketNote(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		t, body, err := s.pathTicketBody(w, r)
		if err != nil {
			return err
		}
		// encoding/json would turn invalid bytes into U+FFFD: the note
		// would reach the partner other than it was written.
		if !utf8.Valid(body) {
			return errorf(http.StatusBadRequest, api.CodeMalformed, "body is not valid UTF-8: send the note as UTF-8 text")
		}
		var req adminapi.NoteRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		author, text, err := checkStaffNote(req)
		if err != nil {
			return err
		}
		noteID, err := newStaffNoteID()
		if err != nil {
			return err
		}
		now := s.now()
		t, err = s.store.UpdateTicket(r.Context(), t.ID, func(t *store.Ticket) error {
			if len(t.Notes) >= maxNotes {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "ticket %s has %d notes already, the most one ticket keeps: add what you have to say to the partner's own system", t.ID, maxNotes)
			}
			t.AddNote(store.Note{ID: noteID, Text: text, At: now, By: author, Staff: true}, now)
			t.UpdatedAt = now
			return nil
		})
		if store.IsNotFound(err) {
			return errorf(http.StatusNotFound, api.CodeUnknownTicket, "ticket %s is not known to this registry", r.PathValue("ticket"))
		}
		if err != nil {
			return err
		}
		i := slices.IndexFunc(t.Notes, func(n store.Note) bool { return n.ID == noteID })
		if i < 0 {
			return fmt.Errorf("note %s on ticket %s: stored but not in the stored ticket", noteID, t.ID)
		}
		s.log.Info("staff note added", "ticket", t.ID, "note", noteID, "author", author, "ticket_state", t.State)
		s.support.wake()
		writeJSON(w, http.StatusCreated, adminapi.NoteResponse{TicketID: t.ID, TicketState: t.State, RoutedTo: t.Route.String(),
			Note: t.Notes[i], Delivery: staffNoteDelivery(t)})
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

// secretKeyRE matches setting names whose values staff views never show.
var secretKeyRE = regexp.MustCompile(`(?i)pass|secret|token|key|auth|credential|private|cookie`)

func channelView(code string, ch store.Channel) adminapi.ChannelView {
	v := adminapi.ChannelView{PartnerCode: code, Type: ch.Type, Settings: map[string]string{}, UpdatedAt: ch.UpdatedAt, UpdatedBy: ch.UpdatedBy}
	for k, val := range ch.Settings {
		if secretKeyRE.MatchString(k) {
			val = "(set, hidden)"
		}
		v.Settings[k] = val
	}
	return v
}

func (s *Server) channelPartner(r *http.Request) (store.Partner, error) {
	code, err := s.pathCode(r)
	if err != nil {
		return store.Partner{}, err
	}
	p, err := s.store.GetPartner(r.Context(), code)
	if store.IsNotFound(err) {
		return p, errorf(http.StatusNotFound, api.CodeNotFound, "partner %s is not known to this registry", code)
	}
	return p, err
}

func (s *Server) handlePutChannel(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		p, err := s.channelPartner(r)
		if err != nil {
			return err
		}
		if p.Tier != store.TierPartner {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%s is a %s: referrals never receive support tickets, so they have no support channel", p.Code, p.Tier)
		}
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		var req adminapi.ChannelRequest
		if err := decodeStrict(body, &req); err != nil {
			return err
		}
		if !s.support.cfg.knownType(req.Type) {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "channel type %q: use one of %v", req.Type, s.support.cfg.channelTypes())
		}
		// The same bounds as a plugin manifest entry.
		if _, err := s.support.pool.entry("check", req.Type, req.Settings); err != nil {
			return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "%v", err)
		}
		if !req.SkipCheck {
			ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
			err := s.support.pool.check(ctx, req.Type, req.Settings)
			cancel()
			if err != nil {
				return errorf(http.StatusUnprocessableEntity, api.CodeInvalid, "the %s channel does not accept these settings: %v", req.Type, err)
			}
		}
		ch := store.Channel{Type: req.Type, Settings: req.Settings, UpdatedAt: s.now(), UpdatedBy: req.By}
		if err := s.store.SetPartnerChannel(r.Context(), p.Code, ch); err != nil {
			return err
		}
		s.log.Info("partner support channel set", "partner", p.Code, "type", req.Type, "by", req.By)
		writeJSON(w, http.StatusOK, channelView(p.Code, ch))
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handleGetChannel(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		p, err := s.channelPartner(r)
		if err != nil {
			return err
		}
		ch, err := s.store.GetPartnerChannel(r.Context(), p.Code)
		if store.IsNotFound(err) {
			return errorf(http.StatusNotFound, api.CodeNotFound, "partner %s has no support channel: its customers' tickets go to the vendor queue", p.Code)
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, channelView(p.Code, ch))
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handleDeleteChannel(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		p, err := s.channelPartner(r)
		if err != nil {
			return err
		}
		if err := s.store.DeletePartnerChannel(r.Context(), p.Code); store.IsNotFound(err) {
			return errorf(http.StatusNotFound, api.CodeNotFound, "partner %s has no support channel", p.Code)
		} else if err != nil {
			return err
		}
		s.log.Info("partner support channel removed", "partner", p.Code)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}

func (s *Server) handleSupportStatus(w http.ResponseWriter, r *http.Request) {
	err := func() error {
		out := adminapi.SupportStatus{ChannelTypes: s.support.cfg.channelTypes(), VendorType: s.support.cfg.Vendor.Type, ByState: map[string]int{}}
		after := ""
		for {
			ts, err := s.store.ListTickets(r.Context(), store.TicketFilter{AfterID: after, Limit: 1000})
			if err != nil {
				return err
			}
			for _, t := range ts {
				out.ByState[string(t.State)]++
			}
			if len(ts) < 1000 {
				break
			}
			after = ts[len(ts)-1].ID
		}
		next, err := s.store.NextDue(r.Context())
		if err != nil {
			return err
		}
		out.NextDue = next
		writeJSON(w, http.StatusOK, out)
		return nil
	}()
	if err != nil {
		s.fail(w, err)
	}
}
