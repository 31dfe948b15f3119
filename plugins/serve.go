package plugins

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
)

// Environment variables a host sets for its plugins.
const (
	// LifelineFDEnv names the file descriptor of the read end of a pipe whose
	// write end only the host holds. When the host dies, however it dies, the
	// kernel closes the write end and the plugin reads EOF and exits.
	LifelineFDEnv = "SWITCHBOARD_PLUGIN_LIFELINE_FD"
	// LogLevelEnv sets the plugin's log level (trace ... error); default info.
	LogLevelEnv = "SWITCHBOARD_PLUGIN_LOG_LEVEL"
)

// parentPollInterval is how often a plugin checks that its parent is
// still the process that started it.
const parentPollInterval = 500 * time.Millisecond

// NewLogger is the logger a plugin should use: JSON on stderr, which
// go-plugin parses on the host side and re-logs under the host's logger with
// the plugin's name.
func NewLogger(name string) hclog.Logger {
	level := hclog.LevelFromString(os.Getenv(LogLevelEnv))
	if level == hclog.NoLevel {
		level = hclog.Info
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      level,
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// ServeConfig returns the go-plugin configuration Serve uses for impl, which
// must implement Integration, SupportChannel or both. A plugin with special needs
// may adjust it and call plugin.Serve itself (then it should call
// WatchParent too).
func ServeConfig(impl any, logger hclog.Logger) (*plugin.ServeConfig, error) {
	// A type implementing both contracts serves both; the host dispenses
	// the kind its manifest names.
	set := plugin.PluginSet{}
	if v, ok := impl.(Integration); ok {
		set[string(KindIntegration)] = &IntegrationPlugin{Impl: v}
	}
	if v, ok := impl.(SupportChannel); ok {
		set[string(KindSupportChannel)] = &SupportChannelPlugin{Impl: v}
	}
	if len(set) == 0 {
		return nil, fmt.Errorf("cannot serve %T: it implements neither plugins.Integration nor plugins.SupportChannel", impl)
	}
	return &plugin.ServeConfig{
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: set},
		GRPCServer:       NewGRPCServer,
		Logger:           logger,
	}, nil
}

// Serve runs impl as a plugin named name until the host stops it. It is
// the whole main of a plugin binary:
//
//	func main() {
//		if err := plugins.Serve("asterisk", asterisk.New()); err != nil {
//			fmt.Fprintln(os.Stderr, err)
//			os.Exit(1)
//		}
//	}
//
// It returns an error only when impl cannot be served; go-plugin ends the
// process itself when run by hand (not by a host).
func Serve(name string, impl any) error {
	logger := NewLogger(name)
	cfg, err := ServeConfig(impl, logger)
	if err != nil {
		return fmt.Errorf("serve plugin %q: %w", name, err)
	}
	if os.Getenv(Handshake.MagicCookieKey) == Handshake.MagicCookieValue {
		WatchParent(logger, os.Exit)
	}
	plugin.Serve(cfg)
	return nil
}

// WatchParent ends the plugin (through exit) as soon as the host that
// started it is gone, so that no plugin outlives its host even when the
// host was killed with SIGKILL and could not clean up. It watches two
// things: the lifeline pipe (LifelineFDEnv) when the host passed one, and
// the parent process id, which changes when the plugin is re-parented.
func WatchParent(logger hclog.Logger, exit func(code int)) {
	if v := os.Getenv(LifelineFDEnv); v != "" {
		fd, err := strconv.Atoi(v)
		if err != nil || fd < 3 {
			logger.Warn("ignoring invalid lifeline descriptor", "env", LifelineFDEnv, "value", v)
		} else {
			// Children of the plugin must not inherit the read end.
			syscall.CloseOnExec(fd)
			f := os.NewFile(uintptr(fd), "switchboard-lifeline")
			go func() {
				// The host never writes: any return means the write end is
				// closed, i.e. the host is gone.
				_, err := io.Copy(io.Discard, f)
				hostGone(logger, exit, "host process is gone (lifeline closed); exiting", "error", err)
			}()
		}
	}
	ppid := os.Getppid()
	if ppid <= 1 {
		return // already orphaned or started by init: nothing to compare with
	}
	go func() {
		t := time.NewTicker(parentPollInterval)
		defer t.Stop()
		for range t.C {
			if now := os.Getppid(); now != ppid {
				hostGone(logger, exit, "host process is gone (re-parented); exiting", "old_parent", ppid, "new_parent", now)
				return
			}
		}
	}()
}

// hostGone logs why the plugin ends and ends it. stderr is a pipe to the
// dead host, so SIGPIPE is ignored first: the log write then fails quietly
// instead of killing the plugin with SIGPIPE before it exits.
func hostGone(logger hclog.Logger, exit func(int), msg string, args ...any) {
	signal.Ignore(syscall.SIGPIPE)
	logger.Info(msg, args...)
	exit(0)
}
