package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// newSupportCommand is `switchboard support` on the customer's server.
func newSupportCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "support",
		Short: "Open support requests from this server and follow them",
		Long: `Support requests go from this server to the partner who installed it (when
that partner gives support), otherwise to the vendor. The local agent keeps
each request in its outbox until the registry has it, so a request opened
while the network is down is sent once it is back. The registry decides
where it goes and delivers it; 'support list' shows what it last reported.

Diagnostics are attached by default: install id, licence state, product
facts and plugin health, agent version, outbox depth and the agent's last
warnings and errors. Passwords, API keys, plugin settings and key material
are removed before anything leaves the server; --dry-run shows exactly what
would be sent.`,
		Example: `  switchboard support open --subject "Calls drop after 30 s" --body "Since Monday, on all trunks."
  switchboard support open --subject "Odoo sync stopped" --body-file notes.txt --dry-run
  switchboard support list`,
	}
	cmd.AddCommand(newSupportOpenCommand(app), newSupportListCommand(app))
	return cmd
}

func newSupportOpenCommand(app *App) *cobra.Command {
	var socket, cfgPath, subject, body, bodyFile, origin string
	var noDiag, dryRun bool
	cmd := &cobra.Command{
		Use:   "open --subject TEXT [--body TEXT | --body-file FILE] [--origin cli|odoo|other]",
		Short: "Open a support request (queued at once; sent when the registry is reachable)",
		Long: `Hand a support request to the local agent, which stores it in its outbox at
once and prints the ticket id. --body-file - reads the body from standard
input. --no-diagnostics leaves the diagnostics out; --dry-run prints the
ticket exactly as it would be sent and queues nothing.

--origin says where the request comes from, so the people who handle it
know: cli (the default, a person at this server), odoo (opened from the
product, e.g. by an Odoo module that calls this command) or other (any other
local tool). Tickets of origin auto are opened by the agent itself for a
lasting plugin fault and cannot be opened from here.

Exit 1 for an invalid subject or body, 3 when the agent is not running.`,
		Example: `  switchboard support open --subject "Calls drop after 30 s"
  dmesg | tail -50 | switchboard support open --subject "Kernel warnings" --body-file -
  switchboard support open --subject test --dry-run --output json
  switchboard support open --origin odoo --subject "Invoice sync stuck" --body-file /tmp/odoo-report.txt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if socket != "" && cfgPath != "" {
				return usageErrorf("give --socket or --config, not both")
			}
			if body != "" && bodyFile != "" {
				return usageErrorf("give --body or --body-file, not both")
			}
			if strings.TrimSpace(subject) == "" {
				return usageErrorf("--subject is required: say in a few words what is wrong")
			}
			switch origin = strings.ToLower(strings.TrimSpace(origin)); origin {
			case api.OriginCLI, api.OriginOdoo, api.OriginOther:
			case api.OriginAuto, "agent":
				return usageErrorf("--origin %s: tickets of the agent itself (origin auto) are opened by the agent for a lasting plugin fault; use cli, odoo or other", origin)
			default:
				return usageErrorf("--origin %q: use cli, odoo or other", origin)
			}
			if bodyFile != "" {
				var data []byte
				var err error
				if bodyFile == "-" {
					data, err = io.ReadAll(io.LimitReader(cmd.InOrStdin(), 1<<20))
				} else {
					data, err = os.ReadFile(bodyFile)
				}
				if err != nil {
					return failed(fmt.Errorf("read the body: %w", err))
				}
				body = string(data)
			}
			path, err := socketFrom(socket, cfgPath)
			if err != nil {
				return err
			}
			ans, err := localapi.NewClient(path).OpenTicket(cmd.Context(), localapi.OpenTicketRequest{
				Subject: subject, Body: body, Origin: origin, NoDiagnostics: noDiag, DryRun: dryRun})
			if err != nil {
				return clientErr(err)
			}
			return app.render(ans, func(w io.Writer) error {
				if ans.DryRun {
					fmt.Fprintln(w, ans.Message+":")
					fmt.Fprintf(w, "subject: %s\n", ans.Ticket.Subject)
					if ans.Ticket.Body != "" {
						fmt.Fprintf(w, "body:\n%s\n", ans.Ticket.Body)
					}
					if len(ans.Ticket.Diagnostics) > 0 {
						fmt.Fprintf(w, "diagnostics:\n%s\n", indentJSON(ans.Ticket.Diagnostics))
					} else {
						fmt.Fprintln(w, "diagnostics: none")
					}
					return nil
				}
				_, err := fmt.Fprintf(w, "%s\n%s\n", ans.ID, ans.Message)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&subject, "subject", "", "what is wrong, in one line (required)")
	f.StringVar(&body, "body", "", "details")
	f.StringVar(&bodyFile, "body-file", "", "read the details from FILE (- for standard input)")
	f.BoolVar(&noDiag, "no-diagnostics", false, "do not attach diagnostics")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be sent; queue nothing")
	f.StringVar(&origin, "origin", api.OriginCLI, "where the request comes from: cli, odoo or other")
	f.StringVar(&socket, "socket", "", "the agent's unix socket")
	f.StringVar(&cfgPath, "config", "", "the agent's configuration file (to find its socket)")
	return cmd
}

func newSupportListCommand(app *App) *cobra.Command {
	var socket, cfgPath string
	var cached bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show this server's support requests: where each went and its delivery state",
		Long: `List the support requests opened on this server, newest first, with where the
registry routed each one (partner CODE or vendor) and why, and its delivery
state (queued, retrying, delivered, held) with the receipt. The agent asks
the registry first; when it cannot, the list shows what the registry last
reported. LOCAL is waiting (still in the outbox), sent or refused.`,
		Example: `  switchboard support list
  switchboard support list --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if socket != "" && cfgPath != "" {
				return usageErrorf("give --socket or --config, not both")
			}
			path, err := socketFrom(socket, cfgPath)
			if err != nil {
				return err
			}
			list, err := localapi.NewClient(path).Tickets(cmd.Context(), !cached)
			if err != nil {
				return clientErr(err)
			}
			return app.render(list, func(w io.Writer) error { return writeTicketList(w, list) })
		},
	}
	cmd.Flags().BoolVar(&cached, "cached", false, "do not ask the registry; show what it last reported")
	cmd.Flags().StringVar(&socket, "socket", "", "the agent's unix socket")
	cmd.Flags().StringVar(&cfgPath, "config", "", "the agent's configuration file (to find its socket)")
	return cmd
}

func writeTicketList(w io.Writer, list localapi.TicketList) error {
	if list.RefreshError != "" {
		fmt.Fprintf(w, "note: %s\n", list.RefreshError)
	}
	if len(list.Tickets) == 0 {
		_, err := fmt.Fprintln(w, "no support requests opened on this server")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TICKET\tOPENED\tLOCAL\tSTATE\tROUTED TO\tSUBJECT")
	for _, t := range list.Tickets {
		state, to := "-", "-"
		if r := t.Registry; r != nil {
			state, to = r.State, r.RoutedTo
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.OpenedAt.Local().Format(time.DateTime), t.Local, state, to, t.Subject)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range list.Tickets {
		var lines []string
		if t.Error != "" {
			lines = append(lines, "refused: "+t.Error)
		}
		if r := t.Registry; r != nil {
			lines = append(lines, "why: "+r.RouteReason)
			if r.Receipt != nil {
				lines = append(lines, fmt.Sprintf("receipt: %s %s", dash(r.Receipt.RemoteID), r.Receipt.URL))
			}
			if r.LastError != "" && r.State != "delivered" {
				lines = append(lines, fmt.Sprintf("last error (attempt %d): %s", r.Attempts, r.LastError))
			}
		}
		if !t.RecoveredAt.IsZero() {
			lines = append(lines, "fault recovered at "+t.RecoveredAt.Local().Format(time.DateTime))
		}
		if len(lines) > 0 {
			fmt.Fprintf(w, "%s:\n  %s\n", t.ID, strings.Join(lines, "\n  "))
		}
	}
	return nil
}

// --- staff: registry support / registry partner channel ------------------

func newRegistrySupportCommand(app *App, staff *staffFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "support",
		Short: "See every support ticket, re-route tickets and add notes",
		Long: `Every ticket an install opens is routed by the registry: to the install's
partner when it is an approved partner with a support channel, otherwise to
the vendor queue (the [support.vendor] channel of the registry config, or
held in the registry when there is none). Failed deliveries are retried; a
partner channel failing too long falls back to the vendor queue.`,
		Example: `  switchboard registry support list --state retrying
  switchboard registry support show t5x…
  switchboard registry support route t5x… --to K7QM-4XJD-R --why "customer moved to Acme"
  switchboard registry support note t5x… --author alice --text "Carrier confirmed the outage"`,
	}
	staff.add(cmd)
	var q client.TicketQuery
	list := &cobra.Command{
		Use:   "list",
		Short: "List tickets with their route and delivery state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			ts, err := c.ListTickets(cmd.Context(), q)
			if err != nil {
				return staffErr(err)
			}
			return app.render(adminapi.TicketList{Tickets: ts}, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TICKET\tRECEIVED\tSTATE\tROUTED TO\tCHANNEL\tATTEMPTS\tCUSTOMER\tSUBJECT")
				for _, t := range ts {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", t.ID, t.ReceivedAt.Local().Format(time.DateTime), t.State,
						t.Route.String(), dash(t.Route.Channel), t.AttemptCount, t.Customer, t.Subject)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&q.State, "state", "", "queued, retrying, delivered or held")
	list.Flags().StringVar(&q.Partner, "partner", "", "tickets routed to this partner code")
	list.Flags().StringVar(&q.Install, "install", "", "tickets of this install")

	show := &cobra.Command{
		Use:   "show TICKET",
		Short: "Show a ticket: routes with reasons, delivery attempts, receipt, notes",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			t, err := c.GetTicket(cmd.Context(), args[0])
			if err != nil {
				return staffErr(err)
			}
			return app.render(t, func(w io.Writer) error { return printTicket(w, t) })
		},
	}
	var route adminapi.RouteRequest
	routeCmd := &cobra.Command{
		Use:   "route TICKET --to CODE|vendor --why TEXT",
		Short: "Re-route a ticket (recorded with who and why) and deliver it again",
		Example: `  switchboard registry support route t5x… --to vendor --why "partner asked us to take it"
  switchboard registry support route t5x… --to K7QM-4XJD-R --why "customer is Acme's" --by alice`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if route.To == "" || strings.TrimSpace(route.Why) == "" {
				return usageErrorf("--to CODE|vendor and --why are required")
			}
			if route.By == "" {
				route.By = whoAmI()
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			t, err := c.RouteTicket(cmd.Context(), args[0], route)
			if err != nil {
				return staffErr(err)
			}
			return app.render(t, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "ticket %s routed to %s (%s); delivery state %s\n", t.ID, t.Route.String(), t.Route.Reason, t.State)
				return err
			})
		},
	}
	routeCmd.Flags().StringVar(&route.To, "to", "", "partner code, or vendor")
	routeCmd.Flags().StringVar(&route.Why, "why", "", "reason, recorded on the ticket")
	routeCmd.Flags().StringVar(&route.By, "by", "", "who re-routes (default: the current user)")

	status := &cobra.Command{
		Use:   "status",
		Short: "Channel types, the vendor queue's channel and tickets by state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			st, err := c.SupportStatus(cmd.Context())
			if err != nil {
				return staffErr(err)
			}
			return app.render(st, func(w io.Writer) error {
				fmt.Fprintf(w, "channel types: %s\nvendor queue:  %s\n", strings.Join(st.ChannelTypes, ", "), dash(st.VendorType))
				states := make([]string, 0, len(st.ByState))
				for s := range st.ByState {
					states = append(states, s)
				}
				sort.Strings(states)
				for _, s := range states {
					fmt.Fprintf(w, "%-10s %d\n", s, st.ByState[s])
				}
				return nil
			})
		},
	}
	cmd.AddCommand(list, show, routeCmd, newRegistrySupportNoteCommand(app, staff), status)
	return cmd
}

// newRegistrySupportNoteCommand is `registry support note`: staff add a
// note to a ticket by hand.
func newRegistrySupportNoteCommand(app *App, staff *staffFlags) *cobra.Command {
	var author, text, file string
	cmd := &cobra.Command{
		Use:   "note TICKET (--text TEXT | --file FILE) [--author NAME]",
		Short: "Add a note to a ticket; it goes to whoever has the ticket, through its channel",
		Long: `Add a note to a ticket by hand, for the people handling it: what the vendor
learned, what the customer said on the phone, what to try next. The registry
stores the note with the ticket, marked as written by staff with its author,
and delivers it like the notes the customer's server adds:

  delivered ticket          at once, through the channel that took the ticket
                            (webhook event ticket.note, an e-mail reply in the
                            ticket's thread, a note on the partner's Odoo record)
  queued or retrying        right after the ticket itself is delivered
  held (no vendor channel)  kept with the ticket; it goes out after the ticket
                            if you re-route it with 'registry support route'

Recipients see the author as "NAME (vendor staff)". 'registry support show'
lists every note with its author and delivery state (pending, delivered,
failed, or unsupported when the channel cannot take notes).

The text is at most 4096 bytes of UTF-8 without control characters (tabs and
line breaks are fine); --file - reads it from standard input. --author
defaults to the current user (user@host). Running the command twice adds
two notes.

Exit 2 when --text/--file is missing or both are given, 1 when the registry
refuses the note (unknown ticket, empty or too long text, bad author) or the
file cannot be read, 3 when the registry is unreachable.`,
		Example: `  switchboard registry support note t5x… --author alice --text "Carrier confirmed the outage; fixed since 10:40."
  switchboard registry support note t5x… --file call-notes.txt
  journalctl -u asterisk --since -10m | switchboard registry support note t5x… --author alice --file -
  switchboard registry support note t5x… --text "Please call the customer back" --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			textSet, fileSet := cmd.Flags().Changed("text"), cmd.Flags().Changed("file")
			switch {
			case textSet && fileSet:
				return usageErrorf("give --text or --file, not both")
			case !textSet && !fileSet:
				return usageErrorf("--text TEXT or --file FILE (- for standard input) is required: the note says something")
			}
			if fileSet {
				data, err := readNoteFile(cmd.InOrStdin(), file)
				if err != nil {
					return err
				}
				text = data
			}
			if strings.TrimSpace(text) == "" {
				return failed(fmt.Errorf("the note text is empty: write what the people handling the ticket should know"))
			}
			if author == "" {
				author = whoAmI()
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			ans, err := c.AddTicketNote(cmd.Context(), args[0], adminapi.NoteRequest{Author: author, Text: text})
			if err != nil {
				return staffErr(err)
			}
			return app.render(ans, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "note %s added to ticket %s by %s (staff)\ndelivery: %s: %s\n",
					ans.Note.ID, ans.TicketID, ans.Note.By, ans.Note.State, ans.Delivery)
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&text, "text", "", "the note (at most 4096 bytes)")
	f.StringVar(&file, "file", "", "read the note from FILE (- for standard input)")
	f.StringVar(&author, "author", "", "who writes the note (default: the current user)")
	return cmd
}

// readNoteFile reads a note's text from path ("-": r), refusing more than
// a note may hold rather than cutting it.
func readNoteFile(r io.Reader, path string) (string, error) {
	name := path
	if path == "-" {
		name = "standard input"
	} else {
		fh, err := os.Open(path)
		if err != nil {
			return "", failed(fmt.Errorf("read the note: %w", err))
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, api.MaxNoteLen+1))
	if err != nil {
		return "", failed(fmt.Errorf("read the note from %s: %w", name, err))
	}
	if len(data) > api.MaxNoteLen {
		return "", failed(fmt.Errorf("the note in %s is longer than %d bytes, the most a note holds: shorten it", name, api.MaxNoteLen))
	}
	return string(data), nil
}

func printTicket(w io.Writer, t store.Ticket) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("ticket:    %s (%s)", t.ID, t.State)
	p("subject:   %s", t.Subject)
	p("install:   %s, customer %s, partner %s", t.InstallID, t.Customer, dash(t.PartnerCode))
	p("opened:    %s, received %s", t.OpenedAt.Local().Format(time.DateTime), t.ReceivedAt.Local().Format(time.DateTime))
	if t.Body != "" {
		p("body:\n%s", indent(t.Body))
	}
	p("routes:")
	for _, r := range t.Routes {
		fb := ""
		if r.Fallback {
			fb = " (fallback)"
		}
		p("  %s  %s via %s%s by %s: %s", r.At.Local().Format(time.DateTime), r.String(), dash(r.Channel), fb, r.By, r.Reason)
	}
	p("attempts:  %d", t.AttemptCount)
	for _, a := range t.Attempts {
		res := "ok"
		if !a.OK {
			res = "failed: " + a.Error
		}
		p("  #%d %s  %s via %s (%s): %s", a.N, a.At.Local().Format(time.DateTime), a.Route, a.Channel, a.Took, res)
	}
	if !t.NextAttemptAt.IsZero() {
		p("next attempt: %s", t.NextAttemptAt.Local().Format(time.DateTime))
	}
	if r := t.Receipt; r != nil {
		p("receipt:   %s %s %s", dash(r.RemoteID), r.URL, r.Detail)
	}
	for _, n := range t.Notes {
		by := n.By
		if n.Staff {
			by += " (staff)"
		}
		p("note %s %s by %s: %s", n.ID, n.At.Local().Format(time.DateTime), by, n.Text)
		p("  delivery: %s", noteDelivery(n))
	}
	if len(t.Diagnostics) > 0 {
		p("diagnostics:\n%s", indentJSON(t.Diagnostics))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// noteDelivery says where a note is in its delivery to the ticket's channel.
func noteDelivery(n store.Note) string {
	var b strings.Builder
	state := string(n.State)
	if state == "" {
		state = "not tracked (added before note delivery existed)"
	}
	b.WriteString(state)
	if n.Attempts > 0 {
		fmt.Fprintf(&b, ", %d attempt(s)", n.Attempts)
	}
	if !n.DeliveredAt.IsZero() {
		fmt.Fprintf(&b, ", at %s", n.DeliveredAt.Local().Format(time.DateTime))
	}
	if r := n.Receipt; r != nil && (r.RemoteID != "" || r.URL != "") {
		fmt.Fprintf(&b, ", receipt %s %s", dash(r.RemoteID), r.URL)
	}
	if n.LastError != "" {
		fmt.Fprintf(&b, ", last error: %s", n.LastError)
	}
	return strings.TrimSpace(b.String())
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

func newPartnerChannelCommand(app *App, staff *staffFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "channel",
		Short: "Set, show or remove a partner's support channel",
		Long: `A partner receives its customers' support tickets through a channel run by
the registry: webhook (signed JSON POST), email (SMTP) or odoo (a helpdesk
ticket or task in the partner's own Odoo), or any channel plugin named in
the registry's [support.channel_types]. The settings (URLs, passwords, API
keys) stay in the registry; they never reach customers' servers. Setting a
channel starts it once to check the settings (--skip-check does not).

webhook settings: url, secret (≥16 characters), timeout
email settings:   host (host:port), username, password, from, to, starttls (default true), auth (plain|login), ca_file
odoo settings:    url, database, login, api_key, api (xmlrpc|json2|auto), project (for tasks), team (for helpdesk)`,
		Example: `  switchboard registry partner channel set K7QM-4XJD-R --type webhook --setting url=https://acme.example/hooks/switchboard --setting secret=$(openssl rand -hex 32)
  switchboard registry partner channel show K7QM-4XJD-R
  switchboard registry partner channel remove K7QM-4XJD-R`,
	}
	var req adminapi.ChannelRequest
	var settings []string
	set := &cobra.Command{
		Use:   "set CODE --type TYPE --setting KEY=VALUE…",
		Short: "Set (replace) a partner's support channel",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if req.Type == "" {
				return usageErrorf("--type is required (webhook, email, odoo, …)")
			}
			req.Settings = map[string]string{}
			for _, kv := range settings {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErrorf("--setting %q must be KEY=VALUE", kv)
				}
				if _, dup := req.Settings[k]; dup {
					return usageErrorf("--setting %s given twice", k)
				}
				req.Settings[k] = v
			}
			if req.By == "" {
				req.By = whoAmI()
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			v, err := c.SetPartnerChannel(cmd.Context(), args[0], req)
			if err != nil {
				return staffErr(err)
			}
			return app.render(v, func(w io.Writer) error { return printChannel(w, v) })
		},
	}
	set.Flags().StringVar(&req.Type, "type", "", "channel type: webhook, email, odoo, or one from the registry config")
	set.Flags().StringArrayVar(&settings, "setting", nil, "KEY=VALUE, repeatable")
	set.Flags().BoolVar(&req.SkipCheck, "skip-check", false, "store without starting the channel to check the settings")
	show := &cobra.Command{
		Use:   "show CODE",
		Short: "Show a partner's support channel (secret values hidden)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			v, err := c.GetPartnerChannel(cmd.Context(), args[0])
			if err != nil {
				return staffErr(err)
			}
			return app.render(v, func(w io.Writer) error { return printChannel(w, v) })
		},
	}
	remove := &cobra.Command{
		Use:   "remove CODE",
		Short: "Remove a partner's support channel (its customers' tickets go to the vendor queue)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			if err := c.DeletePartnerChannel(cmd.Context(), args[0]); err != nil {
				return staffErr(err)
			}
			return app.render(map[string]string{"removed": args[0]}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "support channel of %s removed\n", args[0])
				return err
			})
		},
	}
	cmd.AddCommand(set, show, remove)
	return cmd
}

func printChannel(w io.Writer, v adminapi.ChannelView) error {
	fmt.Fprintf(w, "partner %s: %s channel (set %s by %s)\n", v.PartnerCode, v.Type, v.UpdatedAt.Local().Format(time.DateTime), dash(v.UpdatedBy))
	keys := make([]string, 0, len(v.Settings))
	for k := range v.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %s = %s\n", k, v.Settings[k])
	}
	return nil
}

// indentJSON pretty-prints a JSON document for people (as is when invalid).
func indentJSON(raw []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "  ", "  "); err != nil {
		return "  " + string(raw)
	}
	return "  " + b.String()
}
