// Package builtin is the registry of plugins built into the switchboard
// binary. The host runs them as `switchboard plugin serve NAME`, a separate
// process like any third-party plugin, so a crashing adapter never takes
// the agent down with it.
package builtin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/asterisk"
	"github.com/switchboard-dev/switchboard/plugins/channels/email"
	"github.com/switchboard-dev/switchboard/plugins/channels/odoochannel"
	"github.com/switchboard-dev/switchboard/plugins/channels/webhook"
	"github.com/switchboard-dev/switchboard/plugins/odoo"
)

// Plugin is one built-in plugin.
type Plugin struct {
	Name    string
	Kind    plugins.Kind
	Summary string
	// New builds the implementation (a plugins.Integration or
	// plugins.SupportChannel); it runs in the plugin process only.
	New func() any
}

// all lists the built-in plugins. The Asterisk and Odoo adapters and the
// support channels add their entry here when they land.
var all = []Plugin{
	{Name: "asterisk", Kind: plugins.KindIntegration, Summary: "Asterisk PBX over ARI: version, endpoints, live channels",
		New: func() any { return asterisk.New(plugins.NewLogger("asterisk")) }},
	{Name: odoo.Name, Kind: plugins.KindIntegration, Summary: "Odoo over XML-RPC or JSON-2: version, edition, vendor modules, active users",
		New: func() any { return odoo.New(plugins.NewLogger(odoo.Name)) }},
	{Name: webhook.Name, Kind: plugins.KindSupportChannel, Summary: "support channel: signed JSON POST to a partner's endpoint",
		New: func() any { return webhook.New(plugins.NewLogger(webhook.Name)) }},
	{Name: email.Name, Kind: plugins.KindSupportChannel, Summary: "support channel: e-mail over SMTP (STARTTLS, AUTH) with the diagnostics attached",
		New: func() any { return email.New(plugins.NewLogger(email.Name)) }},
	{Name: odoochannel.BuiltinName, Kind: plugins.KindSupportChannel, Summary: "support channel: helpdesk ticket (or project task) in a partner's Odoo",
		New: func() any { return odoochannel.New(plugins.NewLogger(odoochannel.BuiltinName)) }},
}

// All returns the built-in plugins sorted by name.
func All() []Plugin {
	out := slices.Clone(all)
	slices.SortFunc(out, func(a, b Plugin) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Names returns the names of the built-in plugins, sorted.
func Names() []string {
	var names []string
	for _, p := range All() {
		names = append(names, p.Name)
	}
	return names
}

// Lookup returns the built-in plugin named name.
func Lookup(name string) (Plugin, bool) {
	for _, p := range all {
		if p.Name == name {
			return p, true
		}
	}
	return Plugin{}, false
}

// UnknownError is returned for a name that is not built in.
type UnknownError struct {
	Name  string
	Known []string
}

func (e *UnknownError) Error() string {
	if len(e.Known) == 0 {
		return fmt.Sprintf("unknown built-in plugin %q: this build of switchboard has no built-in plugins yet", e.Name)
	}
	return fmt.Sprintf("unknown built-in plugin %q; built-in plugins: %s", e.Name, strings.Join(e.Known, ", "))
}

// Serve runs the built-in plugin name as a plugin process until the host
// stops it.
func Serve(name string) error {
	p, ok := Lookup(name)
	if !ok {
		return &UnknownError{Name: name, Known: Names()}
	}
	return plugins.Serve(p.Name, p.New())
}
