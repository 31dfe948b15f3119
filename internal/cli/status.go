package cli

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/agent/localapi"
)

func newStatusCommand(app *App) *cobra.Command {
	var socket, cfgPath string
	cmd := &cobra.Command{
		Use:   "status [--socket PATH | --config FILE]",
		Short: "Show what the local agent knows: licence, partner, registry, outbox, plugins",
		Long: `Ask the agent running on this server for its status over its unix socket:
the licence state (valid, grace, expired or missing) with its partner code,
tier and end date; the partner link and the answer to the last
'switchboard partner set'; whether the registry was reachable and the last
error; how many reports wait in the outbox and the age of the oldest;
records the registry refused for good (dead letters); each plugin's health.
After a reload (SIGHUP) it also shows what the reload could not apply and
which settings wait for a restart (restart_required in --output json).

The socket is --socket, or the one named in --config, or the one in the
default configuration file. Exit 3 when the agent is not running.`,
		Example: `  switchboard status
  switchboard status --config /etc/switchboard/agent.toml --output json
  switchboard status --socket /var/lib/switchboard/agent.sock`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if socket != "" && cfgPath != "" {
				return usageErrorf("give --socket or --config, not both")
			}
			path, err := socketFrom(socket, cfgPath)
			if err != nil {
				return err
			}
			st, err := localapi.NewClient(path).Status(cmd.Context())
			if err != nil {
				if errors.Is(err, localapi.ErrNotRunning) {
					return unreachable(err)
				}
				return failed(err)
			}
			return app.render(st, func(w io.Writer) error { return writeStatus(w, st, time.Now()) })
		},
	}
	cmd.Flags().StringVar(&socket, "socket", "", "the agent's unix socket")
	cmd.Flags().StringVar(&cfgPath, "config", "", "the agent's configuration file (to find its socket)")
	return cmd
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return fmt.Sprintf("%s (%s ago)", t.Local().Format(time.DateTime), now.Sub(t).Round(time.Second))
}

func writeStatus(w io.Writer, st localapi.Status, now time.Time) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	p("agent:     %s, pid %d, up %s, state in %s", st.Agent.Version, st.Agent.PID, now.Sub(st.Agent.StartedAt).Round(time.Second), st.Agent.StateDir)
	if s := st.Agent.Socket; s != "" && s != filepath.Join(st.Agent.StateDir, "agent.sock") {
		p("           local API on %s", s)
	}
	if st.Agent.ReloadError != "" {
		p("           last reload: %s", st.Agent.ReloadError)
	}
	if len(st.Agent.RestartRequired) > 0 {
		p("           RESTART REQUIRED to apply: %s (the running values stay in force until then)", strings.Join(st.Agent.RestartRequired, ", "))
	}
	if st.Install.Activated {
		p("install:   %s (activated %s)", st.Install.InstallID, st.Install.ActivatedAt.Local().Format(time.DateOnly))
	} else {
		p("install:   not activated yet (the activation waits in the outbox)")
	}

	l := st.Licence
	lic := l.State
	if !l.Licensed {
		lic += ", UNLICENSED"
	}
	if l.State != "missing" {
		partner := "no partner"
		if l.PartnerCode != "" {
			partner = "partner " + l.PartnerCode + " (" + l.Tier + ")"
		}
		lic += fmt.Sprintf(" — %s, not after %s", partner, l.NotAfter.Local().Format(time.DateOnly))
	}
	p("licence:   %s", lic)
	if l.Error != "" {
		p("           %s", l.Error)
	}

	switch {
	case st.Partner.Linked:
		name := ""
		if st.Partner.Name != "" {
			name = " " + st.Partner.Name
		}
		p("partner:   linked to %s%s (%s)", st.Partner.Code, name, st.Partner.Tier)
	default:
		p("partner:   not linked (link with: switchboard partner set CODE)")
	}
	if st.Partner.Note != "" {
		p("           %s", st.Partner.Note)
	}
	if r := st.Partner.Request; r != nil && !(r.State == "linked" && st.Partner.Linked && r.Code == st.Partner.Code) {
		p("           link request %s: %s: %s", r.Code, r.State, r.Message)
	}

	reg := st.Registry
	reach := "unreachable"
	if reg.Reachable {
		reach = "reachable"
	}
	if reg.LastAttempt.IsZero() {
		reach = "not contacted yet"
	}
	p("registry:  %s, %s; last success %s", reg.URL, reach, ago(now, reg.LastSuccess))
	if reg.LastError != "" {
		p("           last error %s: %s", ago(now, reg.LastErrorAt), reg.LastError)
	}
	if reg.Waiting != "" {
		p("           %s", reg.Waiting)
	}
	if !reg.NextAttempt.IsZero() && reg.ConsecutiveFailures > 0 {
		p("           %d failed attempts; next try at %s", reg.ConsecutiveFailures, reg.NextAttempt.Local().Format(time.TimeOnly))
	}

	ob := st.Outbox
	oldest := "empty"
	if ob.Depth > 0 {
		oldest = fmt.Sprintf("oldest %s old", time.Duration(ob.OldestAgeSeconds*float64(time.Second)).Round(time.Second))
	}
	p("outbox:    %d waiting (max %d), %s; %d dead letter(s)", ob.Depth, ob.MaxRecords, oldest, ob.DeadLetters)
	if ob.Compactions > 0 || ob.Refused > 0 {
		p("           full: %d heartbeats compacted into summaries, %d refused", ob.Compacted, ob.Refused)
	}
	for _, d := range ob.RecentDead {
		p("           dead letter seq %d (%s): %s", d.Seq, d.Kind, d.Reason)
	}

	hb := st.Heartbeat
	p("heartbeat: every %s; last %s", time.Duration(hb.IntervalSeconds*float64(time.Second)), ago(now, hb.LastAt))
	if hb.LastError != "" {
		p("           last heartbeat not queued: %s", hb.LastError)
	}

	if len(st.Plugins) == 0 {
		p("plugins:   none")
	}
	for i, pl := range st.Plugins {
		label := "plugins:  "
		if i > 0 {
			label = "          "
		}
		health := "healthy"
		if !pl.Healthy {
			health = "UNHEALTHY"
		}
		line := fmt.Sprintf("%s %s: %s", label, pl.Name, health)
		if pl.State != "" {
			line += " (" + pl.State + ")"
		}
		if pl.Detail != "" {
			line += " — " + pl.Detail
		}
		if pl.PID > 0 {
			line += fmt.Sprintf(" [pid %d]", pl.PID)
		}
		p("%s", line)
		if o := pl.LastOutage; o != nil {
			end := "still out"
			if !o.End.IsZero() {
				end = "back after " + o.End.Sub(o.Start).Round(100*time.Millisecond).String()
			}
			p("           last outage %s, %s; %d restart(s): %s", o.Start.Local().Format(time.DateTime), end, pl.Restarts, o.Reason)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
