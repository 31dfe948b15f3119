package registry

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// BuiltinChannelTypes are the SupportChannel plugins built into the
// switchboard binary (`switchboard plugin serve NAME`).
var BuiltinChannelTypes = []string{"email", "odoo", "webhook"}

// builtinChannels names the built-in plugin serving each channel type.
var builtinChannels = map[string]string{"email": "email", "odoo": "odoo-helpdesk", "webhook": "webhook"}

// SupportConfig is the [support] table of the registry configuration.
//
//	[support]
//	give_up_after = "1h"        # a partner's channel failing this long → vendor queue
//	retry_min = "10s"
//	retry_max = "10m"
//
//	[support.vendor]            # the vendor queue: a channel like a partner's
//	type = "email"
//	[support.vendor.settings]
//	host = "smtp.example.com:587"
//	…
//
//	[support.channel_types.filedrop]   # a fourth channel: a plugin binary
//	path = "/usr/lib/switchboard/switchboard-plugin-filedrop"
//	sha256 = "…"
type SupportConfig struct {
	// Vendor is the vendor queue's channel. With no type, tickets routed to
	// the vendor are held in the registry (state "held") for staff.
	Vendor VendorChannel `toml:"vendor"`
	// ChannelTypes adds channel plugins besides the built-in ones.
	ChannelTypes map[string]ChannelType `toml:"channel_types"`

	// RetryMin and RetryMax bound the backoff between failed attempts.
	RetryMin Duration `toml:"retry_min"`
	RetryMax Duration `toml:"retry_max"`
	// GiveUpAfter: a partner's channel that keeps failing for this long
	// (or fails permanently) sends the ticket to the vendor queue.
	GiveUpAfter Duration `toml:"give_up_after"`
	// AttemptTimeout bounds one delivery attempt.
	AttemptTimeout Duration `toml:"attempt_timeout"`
	// PluginIdle stops a channel plugin process unused for this long.
	PluginIdle Duration `toml:"plugin_idle"`
	// PollInterval is how often the delivery worker looks for due tickets
	// besides being woken by new ones.
	PollInterval Duration `toml:"poll_interval"`
	// Workers is how many tickets are delivered at the same time.
	Workers int `toml:"workers"`
	// PluginSocketDir is where channel plugins get their sockets (default
	// the system temporary directory).
	PluginSocketDir string `toml:"plugin_socket_dir"`
	// Executable is the switchboard binary that serves the built-in
	// channels; default: the running binary.
	Executable string `toml:"executable"`
}

// VendorChannel is the vendor queue's channel.
type VendorChannel struct {
	Type     string            `toml:"type"`
	Settings map[string]string `toml:"settings"`
}

// ChannelType is a SupportChannel plugin binary the registry may start.
type ChannelType struct {
	Path   string   `toml:"path"`
	SHA256 string   `toml:"sha256"`
	Args   []string `toml:"args"`
}

var channelTypeRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

func (c SupportConfig) withDefaults() SupportConfig {
	def := func(d *Duration, v time.Duration) {
		if *d == 0 {
			*d = Duration(v)
		}
	}
	def(&c.RetryMin, 10*time.Second)
	def(&c.RetryMax, 10*time.Minute)
	def(&c.GiveUpAfter, time.Hour)
	def(&c.AttemptTimeout, 45*time.Second)
	def(&c.PluginIdle, 10*time.Minute)
	def(&c.PollInterval, 5*time.Second)
	if c.Workers == 0 {
		c.Workers = 4
	}
	return c
}

// channelTypes lists every channel type name this configuration knows.
func (c SupportConfig) channelTypes() []string {
	out := slices.Clone(BuiltinChannelTypes)
	for name := range c.ChannelTypes {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func (c SupportConfig) knownType(t string) bool { return slices.Contains(c.channelTypes(), t) }

func (c SupportConfig) validate() []error {
	var errs []error
	if c.RetryMin < Duration(10*time.Millisecond) || c.RetryMax < c.RetryMin {
		errs = append(errs, fmt.Errorf("support.retry_min %s / retry_max %s: need 10ms ≤ retry_min ≤ retry_max", c.RetryMin.D(), c.RetryMax.D()))
	}
	if c.GiveUpAfter < 0 || c.AttemptTimeout < Duration(time.Second) || c.PollInterval < Duration(10*time.Millisecond) {
		errs = append(errs, errors.New("support: give_up_after must be ≥ 0, attempt_timeout ≥ 1s and poll_interval ≥ 10ms"))
	}
	if c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("support.workers = %d: use 1 to 64", c.Workers))
	}
	for name, ct := range c.ChannelTypes {
		switch {
		case !channelTypeRE.MatchString(name):
			errs = append(errs, fmt.Errorf("support.channel_types.%s: a type name is 1-32 lower-case letters, digits, - or _", name))
		case slices.Contains(BuiltinChannelTypes, name):
			errs = append(errs, fmt.Errorf("support.channel_types.%s: %s is built in; pick another name", name, name))
		case !filepath.IsAbs(ct.Path):
			errs = append(errs, fmt.Errorf("support.channel_types.%s.path %q must be an absolute path to the plugin binary", name, ct.Path))
		case len(ct.SHA256) != 64:
			errs = append(errs, fmt.Errorf("support.channel_types.%s.sha256 must be the binary's SHA-256 (run `sha256sum %s`)", name, ct.Path))
		}
	}
	if t := c.Vendor.Type; t != "" && !c.knownType(t) {
		errs = append(errs, fmt.Errorf("support.vendor.type %q is not a channel type: use one of %v", t, c.channelTypes()))
	}
	if c.Vendor.Type == "" && len(c.Vendor.Settings) > 0 {
		errs = append(errs, errors.New("support.vendor.settings given without support.vendor.type"))
	}
	return errs
}
