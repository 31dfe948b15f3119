package agent

import (
	"context"
	"runtime"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/internal/buildinfo"
	"github.com/switchboard-dev/switchboard/internal/hostfacts"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// Observation is what the plugins said about the products on this server.
type Observation struct {
	Products []api.Product
	// Seats sums the seat counts by name ("pbx_endpoints", "odoo_users").
	Seats map[string]int64
	// Plugins is each plugin's health, including plugins that did not
	// answer within the deadline (reported unhealthy).
	Plugins []api.PluginHealth
}

// PluginSet is the daemon's view of the plugin host. The plugin host's
// supervisor implements it; NoPlugins is the set without plugins.
//
// Every method must return within its context's deadline whatever a plugin
// does: a hung plugin must never delay a heartbeat.
type PluginSet interface {
	// Observe asks every Integration plugin for its product's facts, seats
	// and health. A plugin that does not answer in time is reported
	// unhealthy, never waited for.
	Observe(ctx context.Context) Observation
	// Health returns each plugin's last known health without calling the
	// plugins (for heartbeats and faults, which must not wait).
	Health() []api.PluginHealth
	// Status is Health with the process details the local status API
	// shows: PID, restarts, last outage.
	Status() []localapi.PluginStatus
	// Reconfigure applies a reloaded [plugins] configuration: it re-reads
	// the manifest, starts plugins that are new, stops plugins that are
	// gone, restarts only plugins whose entry or [plugins.NAME] settings
	// changed and leaves the others running. An unreadable manifest changes
	// nothing and is returned as the error.
	Reconfigure(ctx context.Context, cfg config.Plugins) error
	// ApplyPartnerLink asks the Integration plugins to write the partner
	// code into their product once the registry confirmed the link.
	ApplyPartnerLink(ctx context.Context, code, tier string) error
	// Close stops every plugin process.
	Close() error
}

// NewPluginSet builds the plugin set from the [plugins] configuration.
type NewPluginSet func(cfg config.Plugins, log hclog.Logger) (PluginSet, error)

// NoPlugins is a plugin set with no plugins: the agent still reports host
// facts, licence state and heartbeats.
type NoPlugins struct{}

// Observe implements PluginSet.
func (NoPlugins) Observe(context.Context) Observation { return Observation{} }

// Health implements PluginSet.
func (NoPlugins) Health() []api.PluginHealth { return nil }

// Status implements PluginSet.
func (NoPlugins) Status() []localapi.PluginStatus { return nil }

// Reconfigure implements PluginSet.
func (NoPlugins) Reconfigure(context.Context, config.Plugins) error { return nil }

// ApplyPartnerLink implements PluginSet.
func (NoPlugins) ApplyPartnerLink(context.Context, string, string) error { return nil }

// Close implements PluginSet.
func (NoPlugins) Close() error { return nil }

// FactSource gives the host facts sent with every activation and heartbeat.
type FactSource interface {
	HostFacts() api.Facts
}

// SystemFacts reads the host's facts from the running system, or from
// the system under Root when it is set (tests, containers).
type SystemFacts struct {
	// Root is the system's root directory; "" is the running system,
	// whose hostname comes from the kernel.
	Root string
}

// HostFacts implements FactSource. The machine id is informative only:
// identity is the install key, since servers get cloned. Every fact is
// cleaned to what the registry accepts: a hand-edited os-release must not
// get the install's activation or heartbeats refused.
func (s SystemFacts) HostFacts() api.Facts {
	root, hostname := s.Root, ""
	if root == "" {
		root, hostname = "/", hostfacts.LiveHostname()
	} else {
		hostname = hostfacts.Hostname(root)
	}
	f := api.Facts{
		OS:           runtime.GOOS + "/" + runtime.GOARCH,
		AgentVersion: hostfacts.Clean(buildinfo.Get().Version),
		Hostname:     hostname,
		MachineID:    hostfacts.MachineID(root),
	}
	if name := hostfacts.OSRelease(root); name != "" {
		f.OS = name
	}
	return f
}
