package agent

import (
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
)

// logSwitch is the daemon's log output, switchable at a reload without
// recreating the loggers the daemon handed out.
//
// The daemon logs through an intercept logger whose own output is off: it
// only hands every message (with the name of the sub-logger it came from)
// to its sinks. logSwitch is one of those sinks, registered once; it writes
// through an hclog sink adapter built for the configured level and format,
// and a reload swaps that adapter atomically. The sender, the local API,
// the plugin supervisors and the plugin processes' own logs (which
// go-plugin re-logs through the supervisor's logger) all come through
// sub-loggers of the one intercept logger, so they all follow.
//
// The intercept logger calls its sinks one at a time under its own lock,
// so a message is written by the old adapter or the new one, never both,
// and lines keep their order across a switch.
type logSwitch struct {
	out io.Writer
	// mu is shared by every adapter writing to out, so an old and a new
	// adapter never interleave bytes even outside the intercept lock.
	mu  sync.Mutex
	cur atomic.Pointer[logAdapter]
}

type logAdapter struct {
	hclog.SinkAdapter
	cfg config.Log
}

// newDaemonLogger returns the daemon's root logger, named "agent", and the
// switch that sets its output.
func newDaemonLogger(out io.Writer, cfg config.Log) (hclog.InterceptLogger, *logSwitch) {
	sw := &logSwitch{out: out}
	sw.set(cfg)
	root := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name: "agent",
		// The root's level still matters: it gates messages early, answers
		// IsDebug() and friends, and go-plugin reads it to filter a
		// plugin's log lines.
		Level:  hclog.LevelFromString(cfg.Level),
		Output: io.Discard,
		// Everything is written by the sink; the root formats nothing.
		Exclude: func(hclog.Level, string, ...any) bool { return true },
	})
	root.RegisterSink(sw)
	return root, sw
}

// set makes cfg's level and format the ones every later line is written in.
func (s *logSwitch) set(cfg config.Log) {
	s.cur.Store(&logAdapter{cfg: cfg, SinkAdapter: hclog.NewSinkAdapter(&hclog.LoggerOptions{
		Level: hclog.LevelFromString(cfg.Level), Output: s.out, Mutex: &s.mu, JSONFormat: cfg.Format == "json",
	})})
}

// config returns the level and format in force.
func (s *logSwitch) config() config.Log { return s.cur.Load().cfg }

// Accept implements hclog.SinkAdapter.
func (s *logSwitch) Accept(name string, level hclog.Level, msg string, args ...any) {
	s.cur.Load().Accept(name, level, msg, args...)
}
