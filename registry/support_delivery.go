package registry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// supportService delivers routed tickets. Everything it knows is in the
// store: a ticket is due when its state is queued or retrying and its next
// attempt time has come, so a registry that restarts mid-retry simply finds
// the same tickets due again. An attempt cut short by a crash is repeated
// with the same delivery id, which receivers use to drop the duplicate.
type supportService struct {
	s    *Server
	cfg  SupportConfig
	log  hclog.Logger
	pool *channelPool
	poke chan struct{}

	mu       sync.Mutex
	inflight map[string]bool

	opened    *prometheus.CounterVec
	attempts  *prometheus.CounterVec
	fallbacks prometheus.Counter
}

func newSupportService(s *Server) *supportService {
	cfg := s.cfg.Support
	ss := &supportService{s: s, cfg: cfg, log: s.log.Named("support"), poke: make(chan struct{}, 1),
		inflight: map[string]bool{},
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_registry_tickets_opened_total",
			Help: "Support tickets received, by first route target."}, []string{"target"}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchboard_registry_ticket_attempts_total",
			Help: "Ticket delivery attempts, by channel type and result."}, []string{"channel", "result"}),
		fallbacks: prometheus.NewCounter(prometheus.CounterOpts{Name: "switchboard_registry_ticket_fallbacks_total",
			Help: "Tickets sent to the vendor queue after their partner's channel failed."}),
	}
	ss.pool = newChannelPool(cfg, ss.log)
	s.metrics.reg.MustRegister(ss.opened, ss.attempts, ss.fallbacks)
	return ss
}

func (ss *supportService) metricOpened(t store.Ticket) {
	ss.opened.WithLabelValues(string(t.Route.Target)).Inc()
}

// wake makes the worker look for due tickets now.
func (ss *supportService) wake() {
	select {
	case ss.poke <- struct{}{}:
	default:
	}
}

// run delivers due tickets until ctx ends, then waits for attempts in
// flight and stops the channel plugins.
func (ss *supportService) run(ctx context.Context) {
	if ss.cfg.Vendor.Type == "" {
		ss.log.Warn("no vendor support channel configured ([support.vendor] in the registry config): tickets for the vendor are held in the registry; see 'switchboard registry support list --state held'")
	}
	sem := make(chan struct{}, ss.cfg.Workers)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		ss.pool.close()
	}()
	lastReap := time.Now()
	for {
		if ctx.Err() != nil {
			return
		}
		due, err := ss.s.store.DueTickets(ctx, ss.s.now(), ss.cfg.Workers*4)
		if err != nil && ctx.Err() == nil {
			ss.log.Error("look for due tickets", "error", err)
		}
		for _, t := range due {
			ss.mu.Lock()
			busy := ss.inflight[t.ID]
			if !busy {
				ss.inflight[t.ID] = true
			}
			ss.mu.Unlock()
			if busy {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				ss.mu.Lock()
				delete(ss.inflight, t.ID)
				ss.mu.Unlock()
				return
			}
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				defer func() {
					ss.mu.Lock()
					delete(ss.inflight, id)
					ss.mu.Unlock()
					<-sem
					ss.wake()
				}()
				ss.attempt(ctx, id)
			}(t.ID)
		}
		if time.Since(lastReap) > time.Minute {
			ss.pool.reap()
			lastReap = time.Now()
		}
		wait := ss.cfg.PollInterval.D()
		if next, err := ss.s.store.NextDue(ctx); err == nil && !next.IsZero() {
			if d := next.Sub(ss.s.now()); d < wait {
				wait = max(d, 10*time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-ss.poke:
		case <-t.C:
		}
		t.Stop()
	}
}

// backoff is the wait after the n-th failed attempt (0-based) on a route:
// exponential between RetryMin and RetryMax, the upper half jittered.
func (ss *supportService) backoff(n int) time.Duration {
	d, hi := ss.cfg.RetryMin.D(), ss.cfg.RetryMax.D()
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(d-half)+1))
}

// channelFor resolves the channel of the ticket's current route. A nil
// channel with a nil error means the route has no channel (held).
func (ss *supportService) channelFor(ctx context.Context, r store.Route) (owner string, ch *store.Channel, fallback string, err error) {
	if r.Target == store.TargetVendor {
		if ss.cfg.Vendor.Type == "" {
			return "vendor", nil, "", nil
		}
		return "vendor", &store.Channel{Type: ss.cfg.Vendor.Type, Settings: ss.cfg.Vendor.Settings}, "", nil
	}
	p, err := ss.s.store.GetPartner(ctx, r.PartnerCode)
	if store.IsNotFound(err) {
		return "", nil, fmt.Sprintf("partner %s no longer exists", r.PartnerCode), nil
	}
	if err != nil {
		return "", nil, "", err
	}
	if p.Status != store.PartnerApproved {
		return "", nil, fmt.Sprintf("partner %s is %s since the ticket was routed", p.Code, p.Status), nil
	}
	c, err := ss.s.store.GetPartnerChannel(ctx, p.Code)
	if store.IsNotFound(err) {
		return "", nil, fmt.Sprintf("partner %s removed its support channel", p.Code), nil
	}
	if err != nil {
		return "", nil, "", err
	}
	return p.Code, &c, "", nil
}

// attempt makes one delivery attempt of ticket id and records its outcome.
func (ss *supportService) attempt(ctx context.Context, id string) {
	t, err := ss.s.store.GetTicket(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			ss.log.Error("read due ticket", "ticket", id, "error", err)
		}
		return
	}
	if !t.Due() || t.NextAttemptAt.After(ss.s.now()) {
		return
	}
	routeNo := len(t.Routes)
	if t.State == store.TicketDelivered {
		ss.deliverNotes(ctx, t)
		return
	}
	owner, ch, fallback, err := ss.channelFor(ctx, t.Route)
	if err != nil {
		ss.log.Error("resolve ticket channel", "ticket", id, "error", err)
		return
	}
	now := ss.s.now()
	switch {
	case fallback != "":
		ss.record(ctx, id, routeNo, func(t *store.Ticket) {
			ss.fallBack(t, fallback, now)
		})
		return
	case ch == nil:
		ss.record(ctx, id, routeNo, func(t *store.Ticket) {
			t.State, t.NextAttemptAt, t.Route.Channel = store.TicketHeld, time.Time{}, ""
		})
		return
	}
	deliveryID := t.ID + "." + strconv.Itoa(routeNo)
	pt := plugins.Ticket{ID: t.ID, DeliveryID: deliveryID, Subject: t.Subject, Body: t.Body, InstallID: t.InstallID,
		Customer: t.Customer, PartnerCode: t.PartnerCode, RoutedTo: t.Route.String(), Reason: t.Route.Reason,
		Diagnostics: t.Diagnostics, CreatedAt: t.OpenedAt}
	start := time.Now()
	var receipt plugins.Receipt
	sc, release, err := ss.pool.acquire(ctx, owner, ch.Type, ch.Settings, 30*time.Second)
	if err == nil {
		actx, cancel := context.WithTimeout(ctx, ss.cfg.AttemptTimeout.D())
		receipt, err = sc.Deliver(actx, pt)
		cancel()
		release()
	}
	if ctx.Err() != nil {
		// Shutting down: the attempt is repeated after the restart with
		// the same delivery id.
		return
	}
	took := time.Since(start).Round(time.Millisecond)
	now = ss.s.now()
	a := store.Attempt{At: now, Took: took.String(), Route: t.Route.String(), Channel: ch.Type, DeliveryID: deliveryID, OK: err == nil}
	if err == nil {
		ss.attempts.WithLabelValues(ch.Type, "ok").Inc()
		r := &store.Receipt{RemoteID: receipt.RemoteID, URL: receipt.URL, Detail: receipt.Detail}
		a.Receipt = r
		ss.record(ctx, id, routeNo, func(t *store.Ticket) {
			t.AddAttempt(a)
			t.State, t.Receipt, t.DeliveredAt, t.NextAttemptAt, t.LastError = store.TicketDelivered, r, now, time.Time{}, ""
			if t.PendingNotes() {
				t.NextAttemptAt = now // the notes follow the ticket
			}
		})
		ss.log.Info("ticket delivered", "ticket", id, "route", t.Route.String(), "channel", ch.Type, "remote_id", r.RemoteID, "took", took)
		return
	}
	ss.attempts.WithLabelValues(ch.Type, "failed").Inc()
	msg := plugins.SanitizeMessage(err.Error())
	a.Error = msg
	permanent, retryAfter := channels.Classify(err)
	ss.record(ctx, id, routeNo, func(t *store.Ticket) {
		t.AddAttempt(a)
		t.LastError = msg
		giveUp := now.Sub(t.RouteStartedAt) >= ss.cfg.GiveUpAfter.D()
		if t.Route.Target == store.TargetPartner && (permanent || giveUp) {
			why := fmt.Sprintf("partner %s's %s channel failed for %s (%d attempts; last: %s)", t.Route.PartnerCode, ch.Type,
				now.Sub(t.RouteStartedAt).Round(time.Second), t.RouteAttempts, msg)
			if permanent {
				why = fmt.Sprintf("partner %s's %s channel refused the ticket: %s", t.Route.PartnerCode, ch.Type, msg)
			}
			ss.fallBack(t, why, now)
			return
		}
		wait := max(ss.backoff(t.RouteAttempts-1), retryAfter)
		if permanent {
			// The vendor queue itself refuses: never drop, retry slowly
			// and show it; staff fix the vendor channel settings.
			wait = ss.cfg.RetryMax.D()
		}
		t.State, t.NextAttemptAt = store.TicketRetrying, now.Add(wait)
	})
	ss.log.Warn("ticket delivery failed", "ticket", id, "route", t.Route.String(), "channel", ch.Type, "permanent", permanent, "error", msg)
}

// noteAuthor is who the recipients see as a note's author: "install" for
// the customer's server, "NAME (vendor staff)" for a note staff wrote, so
// a partner reading it in its helpdesk knows who speaks.
func noteAuthor(n store.Note) string {
	if n.Staff {
		return n.By + " (vendor staff)"
	}
	return n.By
}

// noteDeliveryID is a note's idempotency key on the ticket's route routeNo.
func noteDeliveryID(ticketID string, routeNo int, noteID string) string {
	return ticketID + "." + strconv.Itoa(routeNo) + ".note." + noteID
}

// deliverNotes sends the pending notes of delivered ticket t, oldest
// first, to the channel that took the ticket. A channel that cannot take
// notes marks them unsupported; a refusal marks the note failed; anything
// else is retried with the ticket's backoff. Notes never make a ticket
// fall back: the ticket itself was delivered.
func (ss *supportService) deliverNotes(ctx context.Context, t store.Ticket) {
	routeNo := len(t.Routes)
	owner, ch, fallback, err := ss.channelFor(ctx, t.Route)
	if err != nil {
		ss.log.Error("resolve ticket channel", "ticket", t.ID, "error", err)
		return
	}
	if fallback != "" || ch == nil {
		// The channel that took the ticket is gone: staff see the notes
		// pending and may re-route the ticket, which re-sends them.
		why := "the ticket's channel is no longer available"
		if fallback != "" {
			why = fallback
		}
		ss.recordNotes(ctx, t.ID, routeNo, func(t *store.Ticket) {
			for i := range t.Notes {
				if n := &t.Notes[i]; n.State == store.NotePending {
					n.State, n.LastError = store.NoteFailed, why
				}
			}
		})
		return
	}
	receipt := plugins.Receipt{}
	if t.Receipt != nil {
		receipt = plugins.Receipt{RemoteID: t.Receipt.RemoteID, URL: t.Receipt.URL, Detail: t.Receipt.Detail}
	}
	sc, release, err := ss.pool.acquire(ctx, owner, ch.Type, ch.Settings, 30*time.Second)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		msg := plugins.SanitizeMessage(err.Error())
		ss.recordNotes(ctx, t.ID, routeNo, func(t *store.Ticket) { ss.noteRetry(t, -1, msg) })
		return
	}
	defer release()
	nd, ok := sc.(plugins.NoteDeliverer)
	for i, n := range t.Notes {
		if n.State != store.NotePending {
			continue
		}
		if !ok {
			err = fmt.Errorf("channel %s cannot deliver notes: %w", ch.Type, plugins.ErrNotesUnsupported)
		} else {
			pn := plugins.Note{TicketID: t.ID, TicketSubject: t.Subject, TicketReceipt: receipt, NoteID: n.ID,
				DeliveryID: noteDeliveryID(t.ID, routeNo, n.ID), Text: n.Text, Author: noteAuthor(n), CreatedAt: n.At}
			actx, cancel := context.WithTimeout(ctx, ss.cfg.AttemptTimeout.D())
			var r plugins.Receipt
			r, err = nd.DeliverNote(actx, pn)
			cancel()
			if ctx.Err() != nil {
				return // repeated after the restart with the same delivery id
			}
			if err == nil {
				ss.attempts.WithLabelValues(ch.Type, "note_ok").Inc()
				now := ss.s.now()
				sr := &store.Receipt{RemoteID: r.RemoteID, URL: r.URL, Detail: r.Detail}
				ss.recordNotes(ctx, t.ID, routeNo, func(t *store.Ticket) {
					if i < len(t.Notes) && t.Notes[i].ID == n.ID {
						nn := &t.Notes[i]
						nn.Attempts++
						nn.State, nn.Receipt, nn.DeliveredAt, nn.LastError, nn.DeliveryID = store.NoteDelivered, sr, now, "", pn.DeliveryID
					}
				})
				ss.log.Info("ticket note delivered", "ticket", t.ID, "note", n.ID, "channel", ch.Type, "remote_id", r.RemoteID)
				continue
			}
		}
		ss.attempts.WithLabelValues(ch.Type, "note_failed").Inc()
		msg := plugins.SanitizeMessage(err.Error())
		unsupported := errors.Is(err, plugins.ErrNotesUnsupported)
		if unsupported {
			msg = fmt.Sprintf("channel %s cannot deliver notes (its plugin does not serve DeliverNote): not retried; the note is kept here", ch.Type)
		}
		permanent, _ := channels.Classify(err)
		ss.recordNotes(ctx, t.ID, routeNo, func(t *store.Ticket) {
			if i >= len(t.Notes) || t.Notes[i].ID != n.ID {
				return
			}
			nn := &t.Notes[i]
			switch {
			case unsupported:
				nn.Attempts++
				nn.State, nn.LastError = store.NoteUnsupported, msg
			case permanent:
				nn.Attempts++
				nn.State, nn.LastError = store.NoteFailed, msg
			default:
				ss.noteRetry(t, i, msg)
			}
		})
		ss.log.Warn("ticket note not delivered", "ticket", t.ID, "note", n.ID, "channel", ch.Type, "unsupported", unsupported, "permanent", permanent, "error", msg)
		if !unsupported && !permanent {
			return // keep the notes in order: the next attempt starts here
		}
	}
}

// noteRetry records a failed note attempt (note i, or none when i < 0)
// and schedules the ticket's next attempt with backoff.
func (ss *supportService) noteRetry(t *store.Ticket, i int, msg string) {
	n := 0
	if i >= 0 {
		nn := &t.Notes[i]
		nn.Attempts++
		nn.LastError = msg
		n = nn.Attempts
	}
	t.NextAttemptAt = ss.s.now().Add(ss.backoff(max(n-1, 0)))
}

// recordNotes applies fn to the stored ticket unless staff re-routed it
// meanwhile (the notes then go to the new route), and keeps the ticket due
// exactly while notes are pending.
func (ss *supportService) recordNotes(ctx context.Context, id string, routeNo int, fn func(*store.Ticket)) {
	_, err := ss.s.store.UpdateTicket(context.WithoutCancel(ctx), id, func(t *store.Ticket) error {
		if len(t.Routes) != routeNo || t.State != store.TicketDelivered {
			return nil
		}
		fn(t)
		if !t.PendingNotes() {
			t.NextAttemptAt = time.Time{}
		}
		t.UpdatedAt = ss.s.now()
		return nil
	})
	if err != nil {
		ss.log.Error("record note delivery", "ticket", id, "error", err)
	}
}

// fallBack routes t to the vendor queue after its partner's channel failed.
func (ss *supportService) fallBack(t *store.Ticket, why string, now time.Time) {
	ss.fallbacks.Inc()
	t.SetRoute(store.Route{Target: store.TargetVendor, Channel: ss.cfg.Vendor.Type, Reason: why, By: "registry", At: now, Fallback: true})
	ss.log.Warn("ticket falls back to the vendor queue", "ticket", t.ID, "why", why)
}

// record applies fn to the stored ticket, unless staff re-routed it while
// the attempt ran (then only the attempt itself is kept).
func (ss *supportService) record(ctx context.Context, id string, routeNo int, fn func(*store.Ticket)) {
	_, err := ss.s.store.UpdateTicket(context.WithoutCancel(ctx), id, func(t *store.Ticket) error {
		if len(t.Routes) != routeNo {
			probe := *t
			probe.Attempts = nil
			fn(&probe)
			if n := len(probe.Attempts); n > 0 {
				t.AddAttempt(probe.Attempts[n-1])
			}
		} else {
			fn(t)
		}
		t.UpdatedAt = ss.s.now()
		return nil
	})
	if err != nil {
		ss.log.Error("record ticket delivery", "ticket", id, "error", err)
	}
}
