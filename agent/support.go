package agent

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/sender"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/internal/buildinfo"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// Support tickets on the customer's server: `switchboard support open`
// reaches OpenTicket over the local API; the ticket, with diagnostics that
// went through the scrubber, is committed to the outbox at once and the
// sender hands it to the registry, which routes and delivers it. The agent
// keeps a small list of its tickets (tickets.json in the state directory)
// with the registry's last report on each.

// ticketsFile keeps this server's tickets across restarts.
const ticketsFile = "tickets.json"

// maxTicketsKept bounds tickets.json; the oldest go first.
const maxTicketsKept = 200

// logRingSize is how many warning/error lines the diagnostics carry.
const logRingSize = 50

// supportState is the daemon's support bookkeeping.
type supportState struct {
	ring *logRing

	mu       sync.Mutex
	tickets  []localapi.TicketInfo // oldest first
	faults   map[string]*fault     // plugin name → open fault (auto tickets)
	lastPoll time.Time
}

func newSupportState(ring *logRing) *supportState {
	return &supportState{ring: ring, faults: map[string]*fault{}}
}

var ticketIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

func newTicketID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("make a ticket id: %w", err)
	}
	return "t" + ticketIDEncoding.EncodeToString(b[:]), nil
}

// loadTickets reads tickets.json; a damaged file is set aside, not fatal.
func (d *Daemon) loadTickets() {
	data, err := os.ReadFile(d.dir.File(ticketsFile))
	if err != nil {
		return
	}
	var ts []localapi.TicketInfo
	if err := json.Unmarshal(data, &ts); err != nil {
		path := d.dir.File(ticketsFile)
		aside, aerr := setAside(path, time.Now())
		if aerr != nil {
			d.log.Error("ticket list is damaged and could not be set aside; it is rewritten with the next ticket", "path", path, "error", err, "set_aside_error", aerr)
			return
		}
		d.log.Warn("ticket list is damaged; kept aside for inspection, the tickets themselves are safe in the outbox and the registry", "path", path, "kept_as", aside, "error", err)
		return
	}
	d.sup.mu.Lock()
	d.sup.tickets = ts
	d.sup.mu.Unlock()
}

func (d *Daemon) saveTicketsLocked() {
	if n := len(d.sup.tickets); n > maxTicketsKept {
		d.sup.tickets = slices.Clone(d.sup.tickets[n-maxTicketsKept:])
	}
	data, err := json.MarshalIndent(d.sup.tickets, "", "  ")
	if err == nil {
		err = state.WriteFileAtomic(d.dir.File(ticketsFile), data, 0o600)
	}
	if err != nil {
		d.log.Warn("store the ticket list", "error", err)
	}
}

func (d *Daemon) updateTicket(id string, fn func(*localapi.TicketInfo)) {
	d.sup.mu.Lock()
	defer d.sup.mu.Unlock()
	for i := range d.sup.tickets {
		if d.sup.tickets[i].ID == id {
			fn(&d.sup.tickets[i])
			d.saveTicketsLocked()
			return
		}
	}
}

// scrubber collects the secrets known to this agent.
func (d *Daemon) scrubber() *scrubber {
	cfg := d.config()
	sets := []map[string]map[string]string{cfg.Plugins.Settings}
	if m, err := host.LoadManifest(cfg.Plugins.Manifest); err == nil {
		ms := map[string]map[string]string{}
		for _, e := range m.Plugins {
			ms[e.Name] = e.Settings
		}
		sets = append(sets, ms)
	}
	return newScrubber(d.key, cfg.Registry.URL, sets...)
}

// Diagnostics is what a ticket carries about this server by default.
type Diagnostics struct {
	CollectedAt  time.Time          `json:"collected_at"`
	InstallID    string             `json:"install_id,omitempty"`
	AgentVersion string             `json:"agent_version"`
	Host         api.Facts          `json:"host"`
	Licence      diagLicence        `json:"licence"`
	Partner      diagPartner        `json:"partner"`
	Registry     diagRegistry       `json:"registry"`
	Outbox       diagOutbox         `json:"outbox"`
	Products     []api.Product      `json:"products,omitempty"`
	Seats        map[string]int64   `json:"seats,omitempty"`
	Plugins      []api.PluginHealth `json:"plugins"`
	RecentLog    []LogLine          `json:"recent_log"`
}

type diagLicence struct {
	State     string    `json:"state"`
	Licensed  bool      `json:"licensed"`
	LicenceID string    `json:"licence_id,omitempty"`
	NotAfter  time.Time `json:"not_after,omitzero"`
	GraceEnds time.Time `json:"grace_ends,omitzero"`
	Problem   string    `json:"problem,omitempty"`
}

type diagPartner struct {
	Linked bool   `json:"linked"`
	Code   string `json:"code,omitempty"`
	Tier   string `json:"tier,omitempty"`
}

type diagRegistry struct {
	Reachable           bool      `json:"reachable"`
	LastSuccess         time.Time `json:"last_success,omitzero"`
	LastError           string    `json:"last_error,omitempty"`
	ConsecutiveFailures int       `json:"consecutive_failures"`
}

type diagOutbox struct {
	Depth            int     `json:"depth"`
	OldestAgeSeconds float64 `json:"oldest_age_seconds"`
	DeadLetters      int     `json:"dead_letters"`
}

// diagnostics gathers and scrubs the facts attached to a ticket.
func (d *Daemon) diagnostics(ctx context.Context, sc *scrubber) (json.RawMessage, error) {
	st := d.Status(ctx)
	octx, cancel := context.WithTimeout(ctx, 5*time.Second)
	obs := d.plugins.Observe(octx)
	cancel()
	diag := Diagnostics{
		CollectedAt: time.Now().UTC(), InstallID: st.Install.InstallID, AgentVersion: buildinfo.Get().Version,
		Host: d.hostFacts(&obs),
		Licence: diagLicence{State: st.Licence.State, Licensed: st.Licence.Licensed, LicenceID: st.Licence.LicenceID,
			NotAfter: st.Licence.NotAfter, GraceEnds: st.Licence.GraceEnds, Problem: st.Licence.Error},
		Partner:  diagPartner{Linked: st.Partner.Linked, Code: st.Partner.Code, Tier: st.Partner.Tier},
		Registry: diagRegistry{Reachable: st.Registry.Reachable, LastSuccess: st.Registry.LastSuccess, LastError: st.Registry.LastError, ConsecutiveFailures: st.Registry.ConsecutiveFailures},
		Outbox:   diagOutbox{Depth: st.Outbox.Depth, OldestAgeSeconds: st.Outbox.OldestAgeSeconds, DeadLetters: st.Outbox.DeadLetters},
		Products: obs.Products, Seats: obs.Seats, Plugins: obs.Plugins, RecentLog: d.sup.ring.Lines(),
	}
	if diag.Plugins == nil {
		diag.Plugins = []api.PluginHealth{}
	}
	if diag.RecentLog == nil {
		diag.RecentLog = []LogLine{}
	}
	raw, err := sc.object(diag)
	if err != nil {
		return nil, err
	}
	if len(raw) > api.MaxDiagnosticsLen {
		// Keep the ticket deliverable: drop the log lines first.
		diag.RecentLog = diag.RecentLog[len(diag.RecentLog)/2:]
		if raw, err = sc.object(diag); err != nil || len(raw) > api.MaxDiagnosticsLen {
			return nil, fmt.Errorf("diagnostics are larger than %d bytes: open the ticket with --no-diagnostics", api.MaxDiagnosticsLen)
		}
	}
	return raw, nil
}

func invalidTicket(format string, args ...any) error {
	return &localapi.Error{HTTPStatus: http.StatusUnprocessableEntity, Code: api.CodeInvalid, Message: fmt.Sprintf(format, args...)}
}

// checkTicketText says what is wrong with a subject or body a person typed.
func checkTicketText(req *localapi.OpenTicketRequest) error {
	req.Subject = strings.TrimSpace(req.Subject)
	switch {
	case req.Subject == "":
		return invalidTicket("the subject is empty: say in a few words what is wrong (--subject)")
	case len(req.Subject) > api.MaxSubjectLen:
		return invalidTicket("the subject is %d bytes; keep it under %d and put details in the body", len(req.Subject), api.MaxSubjectLen)
	case len(req.Body) > api.MaxTicketBodyLen:
		return invalidTicket("the body is %d bytes; the limit is %d: attach less, the diagnostics are added for you", len(req.Body), api.MaxTicketBodyLen)
	case !utf8.ValidString(req.Subject) || !utf8.ValidString(req.Body):
		return invalidTicket("subject and body must be UTF-8 text")
	}
	for _, r := range req.Subject {
		if r < 0x20 || r == 0x7f {
			return invalidTicket("the subject must be one line without control characters")
		}
	}
	for _, r := range req.Body {
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f {
			return invalidTicket("the body contains control characters (binary data?): send text only")
		}
	}
	switch req.Origin {
	case "", api.OriginCLI, api.OriginOdoo, api.OriginOther:
	default:
		return invalidTicket("origin %q: use cli, odoo or other", req.Origin)
	}
	return nil
}

// OpenTicket implements localapi.TicketAgent.
func (d *Daemon) OpenTicket(ctx context.Context, req localapi.OpenTicketRequest) (localapi.OpenTicketAnswer, error) {
	if err := checkTicketText(&req); err != nil {
		return localapi.OpenTicketAnswer{}, err
	}
	if req.Origin == "" {
		req.Origin = api.OriginCLI
	}
	return d.openTicket(ctx, req, "")
}

func (d *Daemon) openTicket(ctx context.Context, req localapi.OpenTicketRequest, fault string) (localapi.OpenTicketAnswer, error) {
	id, err := newTicketID()
	if err != nil {
		return localapi.OpenTicketAnswer{}, err
	}
	sc := d.scrubber()
	t := api.TicketRequest{ID: id, Subject: sc.text(req.Subject), Body: sc.text(req.Body), Origin: req.Origin, Fault: fault, OpenedAt: time.Now().UTC()}
	if !req.NoDiagnostics {
		if t.Diagnostics, err = d.diagnostics(ctx, sc); err != nil {
			return localapi.OpenTicketAnswer{}, err
		}
	}
	if req.DryRun {
		return localapi.OpenTicketAnswer{ID: id, DryRun: true, Ticket: t,
			Message: "dry run: this is exactly what would be sent; nothing was queued"}, nil
	}
	seq, err := d.ob.Append(outbox.KindSupportTicket, sender.SupportRecord{Ticket: &t})
	if err != nil {
		return localapi.OpenTicketAnswer{}, fmt.Errorf("queue the ticket: %w", err)
	}
	d.sup.mu.Lock()
	d.sup.tickets = append(d.sup.tickets, localapi.TicketInfo{ID: id, Seq: seq, Subject: t.Subject, Origin: t.Origin, Fault: fault,
		OpenedAt: t.OpenedAt, Local: "waiting"})
	d.saveTicketsLocked()
	d.sup.mu.Unlock()
	d.log.Info("support ticket queued", "ticket", id, "seq", seq, "origin", t.Origin, "diagnostics", !req.NoDiagnostics)
	return localapi.OpenTicketAnswer{ID: id, Seq: seq, Ticket: t,
		Message: "ticket " + id + " is queued and goes to the registry as soon as it is reachable; follow it with `switchboard support list`"}, nil
}

// Tickets implements localapi.TicketAgent.
func (d *Daemon) Tickets(ctx context.Context, refresh bool) (localapi.TicketList, error) {
	out := localapi.TicketList{}
	if refresh {
		if err := d.pollTickets(ctx); err != nil {
			out.RefreshError = err.Error() + "; showing what the registry last reported"
		} else {
			out.Refreshed = true
		}
	}
	d.sup.mu.Lock()
	out.Tickets = slices.Clone(d.sup.tickets)
	d.sup.mu.Unlock()
	slices.Reverse(out.Tickets)
	if out.Tickets == nil {
		out.Tickets = []localapi.TicketInfo{}
	}
	return out, nil
}

// pollTickets asks the registry for the state of this install's tickets.
func (d *Daemon) pollTickets(ctx context.Context) error {
	id := d.installID()
	if id == "" {
		return errors.New("install not activated yet")
	}
	cfg := d.config()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	path := api.InstallPath(api.PathTickets, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.Registry.URL+path, nil)
	if err != nil {
		return err
	}
	api.SignRequest(req, nil, id, d.key, time.Now())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("registry unreachable: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return fmt.Errorf("read the registry's answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry answered HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	var list api.TicketList
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("registry's ticket list is not valid JSON: %w", err)
	}
	now := time.Now().UTC()
	d.sup.mu.Lock()
	defer d.sup.mu.Unlock()
	d.sup.lastPoll = now
	for _, st := range list.Tickets {
		for i := range d.sup.tickets {
			if t := &d.sup.tickets[i]; t.ID == st.ID {
				s := st
				t.Registry, t.ReportedAt, t.Local = &s, now, "sent"
			}
		}
	}
	d.saveTicketsLocked()
	return nil
}

// TicketAnswered implements sender.TicketHooks.
func (h hooks) TicketAnswered(rec sender.SupportRecord, st api.TicketStatus) {
	d := h.d
	id := st.ID
	if rec.Ticket != nil {
		id = rec.Ticket.ID
	} else if rec.Note != nil {
		id = rec.Note.TicketID
	}
	d.updateTicket(id, func(t *localapi.TicketInfo) {
		s := st
		t.Local, t.Registry, t.ReportedAt, t.Error = "sent", &s, time.Now().UTC(), ""
	})
	if rec.Ticket != nil {
		d.log.Info("registry accepted the support ticket", "ticket", id, "routed_to", st.RoutedTo, "state", st.State)
	}
}

// TicketRefused implements sender.TicketHooks.
func (h hooks) TicketRefused(rec outbox.Record, e *sender.APIError) {
	var sr sender.SupportRecord
	if json.Unmarshal(rec.Body, &sr) != nil || sr.Ticket == nil {
		return
	}
	h.d.updateTicket(sr.Ticket.ID, func(t *localapi.TicketInfo) {
		t.Local, t.Error = "refused", e.Error()
	})
}

// supportLoop polls the registry for tickets not delivered yet and opens
// and closes automatic tickets for lasting plugin faults, until ctx ends.
func (d *Daemon) supportLoop(ctx context.Context) {
	t := time.NewTicker(supportTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		d.checkFaults(ctx)
		d.sup.mu.Lock()
		open := slices.ContainsFunc(d.sup.tickets, func(t localapi.TicketInfo) bool {
			return t.Local == "sent" && (t.Registry == nil || t.Registry.State != api.TicketDelivered)
		})
		due := time.Since(d.sup.lastPoll) >= ticketPollInterval
		d.sup.mu.Unlock()
		if open && due {
			if err := d.pollTickets(ctx); err != nil && ctx.Err() == nil {
				d.log.Debug("poll ticket states", "error", err)
				d.sup.mu.Lock()
				d.sup.lastPoll = time.Now()
				d.sup.mu.Unlock()
			}
		}
	}
}

// How often the support loop runs and polls ticket states.
var (
	supportTick        = 5 * time.Second
	ticketPollInterval = time.Minute
)
