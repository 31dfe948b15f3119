package installer

import (
	"fmt"
	"io"
	"strings"
)

// WriteHost describes what the detector found, for people.
func WriteHost(w io.Writer, h *Host) {
	fmt.Fprintln(w, "Found:")
	if a := h.Asterisk; a != nil {
		v := a.Version
		if v == "" {
			v = "(version unknown)"
		}
		dist := distName(a.Distribution)
		if a.DistributionVersion != "" {
			dist += " " + a.DistributionVersion
		}
		if a.DistributionEvidence != "" {
			dist += " (" + a.DistributionEvidence + ")"
		}
		fmt.Fprintf(w, "  Asterisk %s on %s, configuration in %s\n", v, dist, a.ConfigDir)
		if a.Running != nil {
			fmt.Fprintf(w, "    running: %v\n", *a.Running)
		}
		http := "off"
		if a.HTTP.Enabled {
			http = fmt.Sprintf("on, %s port %d", orDash(a.HTTP.BindAddr), a.HTTP.BindPort)
			if a.HTTP.Prefix != "" {
				http += ", prefix /" + a.HTTP.Prefix
			}
		}
		ari := "off"
		if a.ARI.Enabled {
			ari = "on"
		}
		var users []string
		for _, u := range a.ARI.Users {
			users = append(users, u.Name)
		}
		fmt.Fprintf(w, "    HTTP server: %s; ARI: %s at %s; ARI users: %s\n", http, ari, a.ARI.URL, orDash(strings.Join(users, ", ")))
	} else {
		fmt.Fprintln(w, "  no Asterisk")
	}
	if o := h.Odoo; o != nil {
		fmt.Fprintf(w, "  Odoo at %s (config %s, unit %s)\n", o.URL, orDash(o.ConfigFile), orDash(o.Unit))
		fmt.Fprintf(w, "    database: %s; addons_path: %s\n", orDash(o.DBName), orDash(o.AddonsPath))
	} else {
		fmt.Fprintln(w, "  no Odoo")
	}
	if h.Systemd {
		fmt.Fprintln(w, "  systemd: running")
	}
	for _, n := range h.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	title := "Switchboard install"
	if r.DryRun {
		title += " (dry run: nothing is changed)"
	}
	fmt.Fprintf(w, "%s onto %s\n", title, r.Root)
	fmt.Fprintf(w, "Registry: %s\n", r.Registry)
	if r.Code.Source == SourceNone {
		fmt.Fprintln(w, "Partner code: none (the install is not linked to a partner)")
	} else {
		fmt.Fprintf(w, "Partner code: %s (%s)\n", r.Code.Code, r.Code.Describe())
	}
	WriteHost(w, r.Host)
	fmt.Fprintln(w, "Steps:")
	writeSteps(w, r.Steps, r.DryRun)
	a := r.Activation
	switch a.State {
	case "activated", "already-activated":
		verb := "activated"
		if a.State == "already-activated" {
			verb = "already activated"
		}
		fmt.Fprintf(w, "Install %s %s", a.InstallID, verb)
		if a.LicenceID != "" {
			fmt.Fprintf(w, "; licence %s", a.LicenceID)
		}
		if a.PartnerCode != "" {
			fmt.Fprintf(w, " carries partner code %s (%s", a.PartnerCode, a.Tier)
			if a.PartnerName != "" {
				fmt.Fprintf(w, ", %s", a.PartnerName)
			}
			fmt.Fprint(w, ")")
		} else if a.LicenceID != "" {
			fmt.Fprint(w, " (no partner)")
		}
		fmt.Fprintln(w)
	case "queued":
		fmt.Fprintf(w, "Activation queued in the agent's outbox (seq %d): the registry could not be reached; the agent sends it when it can.\n", a.OutboxSeq)
	}
	var notRun []Command
	for _, c := range r.Commands {
		if c.Ran {
			fmt.Fprintf(w, "Ran: %s\n", c.Command)
		} else {
			notRun = append(notRun, c)
		}
	}
	if len(notRun) > 0 {
		fmt.Fprintf(w, "Not run (%s):\n", notRun[0].Why)
		for _, c := range notRun {
			fmt.Fprintf(w, "  %s\n", c.Command)
		}
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w, "Notes:")
		for _, n := range r.Notes {
			fmt.Fprintf(w, "  - %s\n", strings.ReplaceAll(n, "\n", "\n    "))
		}
	}
}

func writeSteps(w io.Writer, steps []*Step, showChanges bool) {
	for _, s := range steps {
		fmt.Fprintf(w, "  %-12s %-16s %s", "["+s.Status+"]", s.Name, s.Summary)
		if s.Detail != "" {
			fmt.Fprintf(w, " (%s)", s.Detail)
		}
		fmt.Fprintln(w)
		if showChanges || s.Status == StatusDone {
			for _, c := range s.Changes {
				fmt.Fprintf(w, "  %29s %s\n", "", c)
			}
		}
	}
}
