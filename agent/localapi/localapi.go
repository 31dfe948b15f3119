// Package localapi is the agent's local API: JSON over a unix socket (mode
// 0660) for the switchboard CLI on the same server. It serves the status
// (`switchboard status`), Prometheus-style metrics, and takes a partner
// link request (`switchboard partner set`). Nothing here is reachable from
// the network.
package localapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/sender"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// Paths served on the socket.
const (
	PathStatus  = "/v1/status"
	PathLink    = "/v1/link"
	PathMetrics = "/metrics"
)

// Status is everything `switchboard status` shows.
type Status struct {
	Agent     AgentInfo      `json:"agent"`
	Install   InstallInfo    `json:"install"`
	Licence   LicenceInfo    `json:"licence"`
	Partner   PartnerInfo    `json:"partner"`
	Registry  sender.Status  `json:"registry"`
	Outbox    OutboxInfo     `json:"outbox"`
	Heartbeat HeartbeatInfo  `json:"heartbeat"`
	Plugins   []PluginStatus `json:"plugins"`
}

// PluginStatus is one plugin's health as heartbeats report it, plus what
// only the local operator needs: the process, its restarts and its last
// outage (a crash or hang, until it ran again).
type PluginStatus struct {
	api.PluginHealth
	// PID of the running plugin process, 0 when none runs.
	PID int `json:"pid,omitempty"`
	// Since is when the plugin entered State.
	Since time.Time `json:"since,omitzero"`
	// Restarts counts starts after the first one.
	Restarts int `json:"restarts"`
	// LastOutage is the most recent crash or hang; End is zero while it lasts.
	LastOutage *PluginOutage `json:"last_outage,omitempty"`
}

// PluginOutage is a stretch of time a plugin that had been running was not.
type PluginOutage struct {
	Start  time.Time `json:"start"`
	End    time.Time `json:"end,omitzero"`
	Reason string    `json:"reason"`
}

// AgentInfo describes the daemon process. Every setting shown is the one
// in force, which after a reload may differ from the file (see
// RestartRequired).
type AgentInfo struct {
	Version    string    `json:"version"`
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"started_at"`
	ConfigFile string    `json:"config_file"`
	StateDir   string    `json:"state_dir"`
	// Socket is the unix socket the local API listens on.
	Socket     string    `json:"socket"`
	LastReload time.Time `json:"last_reload,omitzero"`
	// ReloadError says what the last reload refused or could not apply.
	ReloadError string `json:"reload_error,omitempty"`
	// RestartRequired lists the configuration keys whose value in the file
	// differs from the one in force and that only a restart applies
	// (state_dir). Empty after a restart.
	RestartRequired []string `json:"restart_required,omitempty"`
}

// InstallInfo says whether and when the install activated.
type InstallInfo struct {
	Activated   bool      `json:"activated"`
	InstallID   string    `json:"install_id,omitempty"`
	ActivatedAt time.Time `json:"activated_at,omitzero"`
}

// LicenceInfo is the verified licence.
type LicenceInfo struct {
	// State is valid, grace, expired or missing.
	State string `json:"state"`
	// Licensed is false past the grace period or without a licence that
	// verifies: the product is unlicensed (what that means is the plugins'
	// business; the agent states it).
	Licensed    bool      `json:"licensed"`
	LicenceID   string    `json:"licence_id,omitempty"`
	PartnerCode string    `json:"partner_code,omitempty"`
	Tier        string    `json:"tier,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	GraceEnds   time.Time `json:"grace_ends,omitzero"`
	Error       string    `json:"error,omitempty"`
}

// PartnerInfo is the partner link and the last `partner set` request.
type PartnerInfo struct {
	Linked bool   `json:"linked"`
	Code   string `json:"code,omitempty"`
	Tier   string `json:"tier,omitempty"`
	Name   string `json:"name,omitempty"`
	Note   string `json:"note,omitempty"`
	// Request is the last link request made on this server, if any.
	Request *LinkRequestInfo `json:"request,omitempty"`
}

// LinkRequestInfo follows one `partner set` request.
type LinkRequestInfo struct {
	Code        string    `json:"code"`
	Seq         uint64    `json:"seq"`
	State       string    `json:"state"` // pending, linked, refused
	Message     string    `json:"message,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	AnsweredAt  time.Time `json:"answered_at,omitzero"`
}

// OutboxInfo is the outbox's figures plus the newest dead letters.
type OutboxInfo struct {
	outbox.Stats
	OldestAgeSeconds float64       `json:"oldest_age_seconds"`
	RecentDead       []DeadSummary `json:"recent_dead_letters,omitempty"`
}

// DeadSummary is one dead letter in short.
type DeadSummary struct {
	Seq    uint64      `json:"seq"`
	Kind   outbox.Kind `json:"kind"`
	Status int         `json:"http_status,omitempty"`
	Reason string      `json:"reason"`
	DiedAt time.Time   `json:"died_at"`
}

// HeartbeatInfo is the heartbeat schedule.
type HeartbeatInfo struct {
	IntervalSeconds float64   `json:"interval_seconds"`
	LastAt          time.Time `json:"last_at,omitzero"`
	LastSeq         uint64    `json:"last_seq,omitempty"`
	NextAt          time.Time `json:"next_at,omitzero"`
	LastError       string    `json:"last_error,omitempty"`
}

// LinkRequest is the body of POST /v1/link.
type LinkRequest struct {
	PartnerCode string `json:"partner_code"`
}

// LinkAnswer says the link request was queued.
type LinkAnswer struct {
	Seq     uint64 `json:"seq"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Agent is what the server needs from the daemon.
type Agent interface {
	Status(ctx context.Context) Status
	// RequestLink validates code and queues a link record.
	RequestLink(ctx context.Context, code string) (LinkAnswer, error)
}

// Error is an API error with its HTTP status and code.
type Error struct {
	HTTPStatus int
	Code       string
	Message    string
}

func (e *Error) Error() string { return e.Message }

// Serve listens on the unix socket at path (mode 0660) and serves a until
// ctx is done. It refuses to take over a socket another agent is serving.
func Serve(ctx context.Context, path string, a Agent, log hclog.Logger) (stop func(context.Context) error, err error) {
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		_ = c.Close()
		return nil, fmt.Errorf("another agent is already serving %s: stop it first (systemctl stop switchboard-agent)", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	// Create it without group/other write so no one connects before chmod.
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("chmod socket %s: %w", path, err)
	}
	srv := &http.Server{
		Handler:           Handler(a),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("local API stopped", "error", err)
		}
	}()
	return func(ctx context.Context) error {
		err := srv.Shutdown(ctx)
		_ = os.Remove(path)
		return err
	}, nil
}

// Handler serves the local API for a.
func Handler(a Agent) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, a.Status(r.Context()))
	})
	mux.HandleFunc("GET "+PathMetrics, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = io.WriteString(w, Metrics(a.Status(r.Context()), time.Now()))
	})
	mux.HandleFunc("POST "+PathLink, func(w http.ResponseWriter, r *http.Request) {
		var req LinkRequest
		if err := decodeBody(w, r, maxLinkBody, &req, `{"partner_code":"…"}`); err != nil {
			writeErr(w, err)
			return
		}
		ans, err := a.RequestLink(r.Context(), req.PartnerCode)
		if err != nil {
			writeErr(w, err)
			return
		}
		writeJSON(w, http.StatusAccepted, ans)
	})
	registerTickets(mux, a)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case PathStatus, PathMetrics, PathLink, PathTickets:
			writeErr(w, &Error{HTTPStatus: 405, Code: api.CodeMalformed, Message: "method " + r.Method + " not allowed on " + r.URL.Path})
			return
		}
		writeErr(w, &Error{HTTPStatus: 404, Code: api.CodeNotFound, Message: "no such path: " + r.Method + " " + r.URL.Path})
	})
	return mux
}

// Body limits of the POST routes.
const (
	maxLinkBody   = 4096
	maxTicketBody = api.MaxTicketBodyLen + 8192
)

// decodeBody reads one JSON object of at most limit bytes into v, refusing
// unknown fields and trailing data. shape is what a good body looks like,
// for the error message. The errors are *Error: 413 for a body too large,
// 415 for a body that is not JSON by its Content-Type, 400 otherwise.
func decodeBody(w http.ResponseWriter, r *http.Request, limit int64, v any, shape string) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return &Error{HTTPStatus: http.StatusUnsupportedMediaType, Code: api.CodeMalformed,
				Message: "Content-Type " + ct + " is not application/json: send the body as JSON " + shape}
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return &Error{HTTPStatus: http.StatusRequestEntityTooLarge, Code: api.CodeTooLarge,
			Message: fmt.Sprintf("body is larger than %d bytes: send %s", limit, shape)}
	case err != nil:
		return &Error{HTTPStatus: http.StatusBadRequest, Code: api.CodeMalformed, Message: "read body: " + err.Error()}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &Error{HTTPStatus: http.StatusBadRequest, Code: api.CodeMalformed, Message: "body must be " + shape + ": " + err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{HTTPStatus: http.StatusBadRequest, Code: api.CodeMalformed, Message: "body must be one JSON object " + shape + ", with nothing after it"}
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeErr(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{HTTPStatus: 500, Code: api.CodeInternal, Message: err.Error()}
	}
	writeJSON(w, e.HTTPStatus, api.ErrorBody{Error: api.Error{Code: e.Code, Message: e.Message}})
}

// Metrics renders s in the Prometheus text format.
func Metrics(s Status, now time.Time) string {
	var b strings.Builder
	g := func(name, help, typ string, v float64, labels ...string) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
		fmt.Fprintf(&b, "%s%s %g\n", name, labelSet(labels), v)
	}
	bool01 := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	age := 0.0
	if !s.Outbox.OldestAt.IsZero() {
		age = now.Sub(s.Outbox.OldestAt).Seconds()
	}
	g("switchboard_agent_outbox_depth", "Records waiting in the outbox.", "gauge", float64(s.Outbox.Depth))
	g("switchboard_agent_outbox_oldest_age_seconds", "Age of the oldest waiting record.", "gauge", age)
	g("switchboard_agent_outbox_dead_letters", "Records the registry refused for good.", "gauge", float64(s.Outbox.DeadLetters))
	g("switchboard_agent_outbox_max_records", "Bound of the outbox.", "gauge", float64(s.Outbox.MaxRecords))
	g("switchboard_agent_outbox_compactions_total", "Compactions of heartbeats into summaries since start.", "counter", float64(s.Outbox.Compactions))
	g("switchboard_agent_outbox_refused_total", "Heartbeats refused by a full outbox since start.", "counter", float64(s.Outbox.Refused))
	g("switchboard_agent_reports_delivered_total", "Records acknowledged by the registry since start.", "counter", float64(s.Registry.Delivered))
	g("switchboard_agent_registry_reachable", "Whether the last attempt reached the registry.", "gauge", bool01(s.Registry.Reachable))
	g("switchboard_agent_registry_consecutive_failures", "Failed attempts since the last success.", "gauge", float64(s.Registry.ConsecutiveFailures))
	g("switchboard_agent_licensed", "Whether the product is licensed (valid or grace).", "gauge", bool01(s.Licence.Licensed))
	fmt.Fprintf(&b, "# HELP switchboard_agent_licence_state Licence state (1 for the current one).\n# TYPE switchboard_agent_licence_state gauge\n")
	for _, st := range []string{"valid", "grace", "expired", "missing"} {
		fmt.Fprintf(&b, "switchboard_agent_licence_state%s %g\n", labelSet([]string{"state", st}), bool01(s.Licence.State == st))
	}
	if len(s.Plugins) > 0 {
		fmt.Fprintf(&b, "# HELP switchboard_agent_plugin_healthy Whether a plugin reports healthy.\n# TYPE switchboard_agent_plugin_healthy gauge\n")
		ps := append([]PluginStatus(nil), s.Plugins...)
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
		for _, p := range ps {
			fmt.Fprintf(&b, "switchboard_agent_plugin_healthy%s %g\n", labelSet([]string{"plugin", p.Name}), bool01(p.Healthy))
		}
	}
	return b.String()
}

func labelSet(kv []string) string {
	if len(kv) == 0 {
		return ""
	}
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		v := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(kv[i+1])
		parts = append(parts, kv[i]+`="`+v+`"`)
	}
	return "{" + strings.Join(parts, ",") + "}"
}
