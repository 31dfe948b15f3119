package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/sender"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// fault is one Integration plugin being unhealthy, from since on.
type fault struct {
	since    time.Time
	detail   string
	ticketID string // the automatic ticket, once opened
}

// checkFaults opens one ticket for a plugin unhealthy longer than
// support.auto_ticket_after and notes its recovery on that ticket. A fault
// that outlives an agent restart keeps its ticket: an open automatic
// ticket for the same plugin in tickets.json is reused.
func (d *Daemon) checkFaults(ctx context.Context) {
	after := d.config().Support.AutoTicketAfter
	now := time.Now()
	for _, h := range d.plugins.Health() {
		d.sup.mu.Lock()
		f := d.sup.faults[h.Name]
		if !h.Healthy && f == nil {
			f = &fault{since: now, detail: h.State + ": " + h.Detail}
			for _, t := range d.sup.tickets {
				if t.Fault == h.Name && t.RecoveredAt.IsZero() {
					f.ticketID, f.since = t.ID, t.OpenedAt
				}
			}
			d.sup.faults[h.Name] = f
		}
		d.sup.mu.Unlock()
		switch {
		case !h.Healthy && f.ticketID == "" && after > 0 && now.Sub(f.since) >= after:
			subject := fmt.Sprintf("%s plugin unhealthy for %s", h.Name, now.Sub(f.since).Round(time.Second))
			body := fmt.Sprintf("The agent opened this ticket by itself: the %s plugin has been unhealthy since %s.\n\nState: %s\nDetail: %s\n\nThe agent adds a note to this ticket when the plugin recovers.",
				h.Name, f.since.UTC().Format(time.RFC3339), h.State, h.Detail)
			ans, err := d.openTicket(ctx, localapi.OpenTicketRequest{Subject: subject, Body: body, Origin: api.OriginAuto}, h.Name)
			if err != nil {
				d.log.Error("open an automatic ticket for a plugin fault", "plugin", h.Name, "error", err)
				continue
			}
			d.sup.mu.Lock()
			f.ticketID = ans.ID
			d.sup.mu.Unlock()
			d.log.Warn("opened a support ticket for a lasting plugin fault", "plugin", h.Name, "ticket", ans.ID, "since", f.since)
		case h.Healthy && f != nil:
			d.sup.mu.Lock()
			delete(d.sup.faults, h.Name)
			d.sup.mu.Unlock()
			if f.ticketID != "" {
				d.noteRecovery(f, h.Name, now)
			}
		}
	}
}

func (d *Daemon) noteRecovery(f *fault, plugin string, now time.Time) {
	text := fmt.Sprintf("Recovered: the %s plugin is healthy again at %s, after %s.", plugin, now.UTC().Format(time.RFC3339), now.Sub(f.since).Round(time.Second))
	rec := sender.SupportRecord{Note: &sender.SupportNote{TicketID: f.ticketID,
		Note: api.TicketNoteRequest{ID: "recovered-" + now.UTC().Format("20060102T150405"), Text: text, At: now.UTC()}}}
	if _, err := d.ob.Append(outbox.KindSupportTicket, rec); err != nil {
		d.log.Error("queue the recovery note", "ticket", f.ticketID, "error", err)
		return
	}
	d.updateTicket(f.ticketID, func(t *localapi.TicketInfo) { t.RecoveredAt = now.UTC() })
	d.log.Info("plugin recovered; noted on its ticket", "plugin", plugin, "ticket", f.ticketID)
}
