package host

import (
	"fmt"
	"time"

	"github.com/switchboard-dev/switchboard/plugins"
)

// State is where a supervised plugin is in its life.
type State string

// The states of a supervised plugin.
const (
	// StateStarting: the process is being started, configured and asked
	// for its health for the first time.
	StateStarting State = "starting"
	// StateHealthy: the process answers and says it is healthy.
	StateHealthy State = "healthy"
	// StateUnhealthy: the process answers but says it cannot do its job
	// (product unreachable, bad credentials ...), or its health answer broke
	// the contract. It is not restarted for that.
	StateUnhealthy State = "unhealthy"
	// StateRestarting: the process crashed, hung or failed to start; it is
	// started again at RetryAt.
	StateRestarting State = "restarting"
	// StateRefused: the host will not start the plugin until its manifest
	// entry changes (checksum mismatch, missing binary, wrong protocol,
	// wrong kind, settings rejected).
	StateRefused State = "refused"
	// StateStopped: the supervisor was stopped.
	StateStopped State = "stopped"
)

// Outage is a stretch of time during which a plugin that had been running
// was not (crash, hang), until it ran again.
type Outage struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"` // zero while it lasts
	Reason string    `json:"reason"`
}

// Duration is the outage's length so far.
func (o Outage) Duration(now time.Time) time.Duration {
	if o.End.IsZero() {
		return now.Sub(o.Start)
	}
	return o.End.Sub(o.Start)
}

// Status is a snapshot of a supervised plugin.
type Status struct {
	Name  string       `json:"name"`
	Kind  plugins.Kind `json:"kind"`
	State State        `json:"state"`
	// Reason says why the plugin is unhealthy, restarting or refused, and
	// what to do when a person must act.
	Reason string `json:"reason,omitempty"`
	// Since is when the plugin entered State.
	Since time.Time `json:"since"`
	// RetryAt is when a restarting plugin is started again.
	RetryAt time.Time `json:"retry_at,omitzero"`
	// Restarts counts starts after the first one (crashes, hangs, failed
	// starts, settings changes).
	Restarts int `json:"restarts"`
	// PID of the running plugin process, 0 when none runs.
	PID int `json:"pid,omitempty"`
	// Plugin is the plugin's last own health report.
	Plugin *plugins.Health `json:"plugin_health,omitempty"`
	// LastOutage is the most recent crash or hang and how long it lasted.
	LastOutage *Outage `json:"last_outage,omitempty"`
}

// Running reports whether calls can reach the plugin.
func (s Status) Running() bool {
	return s.State == StateHealthy || s.State == StateUnhealthy
}

// Summary is the one-line form for status output and logs:
// "healthy since 10:04:05", "unhealthy since 10:04:05: unauthorised: fix
// ari.conf", "restarting in 2s: crashed (exit status 2)", "refused: …".
func (s Status) Summary(now time.Time) string {
	switch s.State {
	case StateHealthy:
		return fmt.Sprintf("healthy since %s", s.Since.Format(time.RFC3339))
	case StateUnhealthy:
		return fmt.Sprintf("unhealthy since %s: %s", s.Since.Format(time.RFC3339), s.Reason)
	case StateRestarting:
		in := max(s.RetryAt.Sub(now), 0).Round(100 * time.Millisecond)
		return fmt.Sprintf("restarting in %s: %s", in, s.Reason)
	case StateRefused:
		return "refused: " + s.Reason
	case StateStarting:
		if s.Reason != "" {
			return "starting: " + s.Reason
		}
		return "starting"
	default:
		return string(s.State)
	}
}

func (s Status) clone() Status {
	if s.Plugin != nil {
		h := *s.Plugin
		s.Plugin = &h
	}
	if s.LastOutage != nil {
		o := *s.LastOutage
		s.LastOutage = &o
	}
	return s
}
