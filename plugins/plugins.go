// Package plugins holds the contracts between Switchboard and its plugins:
// the Go interfaces Integration and SupportChannel, the plain structs they
// exchange, the gRPC glue that carries them over hashicorp/go-plugin, the
// versioned handshake, and Serve for plugin binaries.
//
// The host side (manifest, checksums, supervision) lives in plugins/host.
// The wire contract is the .proto files in plugins/proto; their generated
// code is committed beside them (regenerate with `make generate`).
package plugins

import (
	"fmt"
	"regexp"
	"strconv"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
)

// Kind is what a plugin does for Switchboard.
type Kind string

// The plugin kinds. The value doubles as the go-plugin dispense name.
const (
	// KindIntegration watches a product on the customer's server.
	KindIntegration Kind = "integration"
	// KindSupportChannel delivers support tickets.
	KindSupportChannel Kind = "support_channel"
)

// Valid reports whether k is one of the known kinds.
func (k Kind) Valid() bool { return k == KindIntegration || k == KindSupportChannel }

// ProtocolVersion is the plugin protocol this build of Switchboard speaks.
// Bump it on any incompatible change to the .proto contracts; the host then
// refuses plugins built for another version with a message saying what to
// install (see ProtocolError).
const ProtocolVersion = 1

// FirstReleaseForProtocol is the first Switchboard release that speaks
// ProtocolVersion, quoted in the refusal message.
const FirstReleaseForProtocol = "0.1.0"

// Handshake is the go-plugin handshake shared by host and plugins. The
// magic cookie only stops a person from running a plugin binary by hand; it
// is not a security measure (the checksum in the manifest is). The protocol
// version is negotiated through VersionedPlugins, so ProtocolVersion is
// left at zero here.
var Handshake = plugin.HandshakeConfig{
	MagicCookieKey:   "SWITCHBOARD_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "8c1f6f0e2d4b4a3e9b57d2a0c6e1f3b4-switchboard",
}

// PluginSet is the host's view of every plugin kind, for dispensing.
func PluginSet() plugin.PluginSet {
	return plugin.PluginSet{
		string(KindIntegration):    &IntegrationPlugin{},
		string(KindSupportChannel): &SupportChannelPlugin{},
	}
}

// VersionedPlugins is what the host offers during version negotiation:
// only ProtocolVersion.
func VersionedPlugins() map[int]plugin.PluginSet {
	return map[int]plugin.PluginSet{ProtocolVersion: PluginSet()}
}

// Procs is the GOMAXPROCS of the agent daemon and of every plugin process
// (a GOMAXPROCS in the environment wins). Both wait on I/O nearly all the
// time, next to a customer's PBX or ERP that needs the cores. With a second
// P every goroutine hand-off in a plugin call (gRPC reader, caller, writer)
// also wakes another OS thread to look for work, which on a virtual machine
// costs more than the call itself: BenchmarkIntegrationDescribe measured a
// round trip p50 of 255 µs with the host at two Ps and 180 µs at one.
const Procs = 1

// MaxMessageBytes bounds every message a host accepts from a plugin.
// go-plugin's default is 2 GiB, which would let a broken plugin exhaust the
// host's memory with one answer.
const MaxMessageBytes = 4 << 20

// DialOptions are the gRPC options a host adds to go-plugin's own.
func DialOptions() []grpc.DialOption {
	return []grpc.DialOption{
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
	}
}

// ProtocolError is the refusal of a plugin that speaks another plugin
// protocol than this build of Switchboard.
type ProtocolError struct {
	Plugin string // plugin name from the manifest
	Speaks int    // protocol the plugin offered, -1 if it could not be read
	Needs  int    // ProtocolVersion
}

func (e *ProtocolError) Error() string {
	install := fmt.Sprintf("install switchboard-plugin-%s built for protocol %d (the release for switchboard ≥ %s)",
		e.Plugin, e.Needs, FirstReleaseForProtocol)
	switch {
	case e.Speaks < 0:
		return fmt.Sprintf("plugin %q speaks an unreadable plugin protocol but this switchboard needs protocol %d: %s",
			e.Plugin, e.Needs, install)
	case e.Speaks > e.Needs:
		return fmt.Sprintf("plugin %q speaks plugin protocol %d but this switchboard needs protocol %d: "+
			"the plugin was built for a newer switchboard; upgrade switchboard, or %s",
			e.Plugin, e.Speaks, e.Needs, install)
	default:
		return fmt.Sprintf("plugin %q speaks plugin protocol %d but this switchboard needs protocol %d: %s",
			e.Plugin, e.Speaks, e.Needs, install)
	}
}

// go-plugin reports a failed negotiation only as text:
// "incompatible API version with plugin. Plugin version: 0, Client versions: [1]".
var incompatibleRE = regexp.MustCompile(`incompatible API version with plugin\. Plugin version: (-?\d+)|Error parsing protocol version`)

// AsProtocolError turns go-plugin's version-negotiation failure into a
// ProtocolError naming the plugin. Other errors come back unchanged.
func AsProtocolError(pluginName string, err error) error {
	if err == nil {
		return nil
	}
	m := incompatibleRE.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	speaks := -1
	if m[1] != "" {
		if v, convErr := strconv.Atoi(m[1]); convErr == nil {
			speaks = v
		}
	}
	return &ProtocolError{Plugin: pluginName, Speaks: speaks, Needs: ProtocolVersion}
}
