package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/asterisk"
	"github.com/switchboard-dev/switchboard/plugins/builtin"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

// pluginExecutable is the binary that serves built-in plugins (this one);
// tests point it at a built switchboard binary.
var pluginExecutable = os.Executable

// describeOutput is what `plugin describe` prints: the facts, seats and
// health the agent would put into its next heartbeat.
type describeOutput struct {
	Plugin  string `json:"plugin"`
	Healthy bool   `json:"healthy"`
	// State and Reason are the host's view (healthy, unhealthy, refused …),
	// as the agent reports them.
	State  host.State `json:"state"`
	Reason string     `json:"reason,omitempty"`
	// Health is the plugin's own report.
	Health *plugins.Health `json:"health,omitempty"`
	// Facts (with seats) as Describe returned them; absent when it failed.
	Facts         *plugins.Facts `json:"facts,omitempty"`
	DescribeError string         `json:"describe_error,omitempty"`
}

type describeFlags struct {
	timeout                                   time.Duration
	ariURL, ariUser, ariPassword, ariPassFile string
	ariApp                                    string
	odooURL, odooDB, odooUser, odooKey        string
}

func newPluginDescribeCommand(app *App) *cobra.Command {
	var f describeFlags
	cmd := &cobra.Command{
		Use:   "describe asterisk|odoo",
		Short: "Run an integration plugin once and print what the agent would report",
		Long: `Start the built-in Integration plugin NAME as a real plugin process (exactly as
the agent does: 'switchboard plugin serve NAME' under the plugin host), hand it
the connection settings from the flags, wait until it has connected (or given
up), and print what the agent would put into its next heartbeat: the product
facts, the seats and the plugin's health.

This is the first thing to run when an install reports no seats or an
unhealthy plugin: the health line says what is wrong and what to fix (for
example "unauthorised: ... fix ari.conf").

Asterisk is reached over ARI (--ari-* flags); the application name defaults
to switchboard-<hostname>-describe so that it never takes the running agent's
events websocket over. Odoo is reached over XML-RPC or JSON-2 (--odoo-* flags).

Exit status 0 when the plugin is healthy and described the product, 1 when
not (the reason is printed), 2 for a usage error.`,
		Example: `  switchboard plugin describe asterisk --ari-user switchboard --ari-password s3cret
  switchboard plugin describe asterisk --ari-url https://pbx.example:8089/ari \
      --ari-user switchboard --ari-password-file /etc/switchboard/ari.secret --output json
  switchboard plugin describe odoo --odoo-url http://127.0.0.1:8069 --odoo-db prod \
      --odoo-user admin --odoo-key 0123abcd`,
		Args: cobra.ExactArgs(1),
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"asterisk", "odoo"}, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			settings, err := describeSettings(cmd, name, f)
			if err != nil {
				return err
			}
			p, ok := builtin.Lookup(name)
			if !ok {
				return usageErrorf("%s", (&builtin.UnknownError{Name: name, Known: builtin.Names()}).Error())
			}
			if p.Kind != plugins.KindIntegration {
				return usageErrorf("plugin %q is a %s plugin; describe runs integration plugins (asterisk, odoo)", name, p.Kind)
			}
			if f.timeout <= 0 {
				return usageErrorf("--timeout must be positive, e.g. 15s")
			}
			out, err := runDescribe(cmd.Context(), app, name, settings, f.timeout)
			if err != nil {
				return failed(err)
			}
			if err := app.render(out, func(w io.Writer) error { return writeDescribe(w, out) }); err != nil {
				return failed(err)
			}
			if out.Healthy {
				return nil
			}
			why := fmt.Errorf("plugin %s is not healthy: %s", name, describeReason(out))
			if app.JSON() {
				return reported(why)
			}
			return failed(why)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&f.timeout, "timeout", 15*time.Second, "how long to wait for the plugin to connect")
	fl.StringVar(&f.ariURL, "ari-url", "http://127.0.0.1:8088/ari", "ARI base URL of the Asterisk")
	fl.StringVar(&f.ariUser, "ari-user", "", "ARI user (an ari.conf section with type = user)")
	fl.StringVar(&f.ariPassword, "ari-password", "", "password of the ARI user")
	fl.StringVar(&f.ariPassFile, "ari-password-file", "", "file holding the password of the ARI user")
	fl.StringVar(&f.ariApp, "ari-app", "", "ARI application name (default switchboard-<hostname>-describe)")
	fl.StringVar(&f.odooURL, "odoo-url", "http://127.0.0.1:8069", "base URL of the Odoo server")
	fl.StringVar(&f.odooDB, "odoo-db", "", "Odoo database")
	fl.StringVar(&f.odooUser, "odoo-user", "", "Odoo login")
	fl.StringVar(&f.odooKey, "odoo-key", "", "Odoo API key (or password)")
	return cmd
}

// describeSettings turns the flags for NAME into plugin settings and
// refuses flags meant for the other product.
func describeSettings(cmd *cobra.Command, name string, f describeFlags) (map[string]string, error) {
	ariFlags := []string{"ari-url", "ari-user", "ari-password", "ari-password-file", "ari-app"}
	odooFlags := []string{"odoo-url", "odoo-db", "odoo-user", "odoo-key"}
	changed := func(list []string) []string {
		var out []string
		for _, n := range list {
			if cmd.Flags().Changed(n) {
				out = append(out, "--"+n)
			}
		}
		return out
	}
	set := func(m map[string]string, k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	s := map[string]string{}
	switch name {
	case "asterisk":
		if c := changed(odooFlags); len(c) > 0 {
			return nil, usageErrorf("%s belong to odoo, not asterisk", strings.Join(c, ", "))
		}
		app := f.ariApp
		if app == "" {
			app = asterisk.DefaultApp()
			app = app[:min(len(app), 70)] + "-describe"
		}
		set(s, asterisk.SettingURL, f.ariURL)
		set(s, asterisk.SettingUser, f.ariUser)
		set(s, asterisk.SettingPassword, f.ariPassword)
		set(s, asterisk.SettingPasswordFile, f.ariPassFile)
		set(s, asterisk.SettingApp, app)
	case "odoo":
		if c := changed(ariFlags); len(c) > 0 {
			return nil, usageErrorf("%s belong to asterisk, not odoo", strings.Join(c, ", "))
		}
		// Setting names of the odoo adapter (plugins/odoo).
		set(s, "url", f.odooURL)
		set(s, "db", f.odooDB)
		set(s, "user", f.odooUser)
		set(s, "api_key", f.odooKey)
	default:
		return nil, usageErrorf("describe runs asterisk or odoo, not %q", name)
	}
	return s, nil
}

// runDescribe runs the plugin under a supervisor, waits until its health
// has settled, asks it to Describe once and stops it.
func runDescribe(ctx context.Context, app *App, name string, settings map[string]string, timeout time.Duration) (describeOutput, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	exe, err := pluginExecutable()
	if err != nil {
		return describeOutput{}, fmt.Errorf("find the switchboard binary to run the plugin: %w", err)
	}
	entry, err := host.BuiltinEntry(name, plugins.KindIntegration, exe, settings)
	if err != nil {
		return describeOutput{}, err
	}
	sup, err := host.NewSupervisor(entry, host.Options{
		Logger:         describeLogger(app),
		HealthInterval: 100 * time.Millisecond,
		// One attempt is the point: a plugin that crashes is reported, not
		// restarted for minutes.
		BackoffInitial: timeout, BackoffMax: timeout,
	})
	if err != nil {
		return describeOutput{}, err
	}
	sup.Start()
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := sup.Stop(stopCtx); err != nil {
			app.Log.Warn("plugin did not stop in time", "plugin", name, "error", err)
		}
	}()

	st := waitSettled(ctx, sup, timeout)
	out := describeOutput{Plugin: name, State: st.State, Reason: st.Reason, Health: st.Plugin}
	if st.Running() {
		in, err := sup.Integration()
		if err != nil {
			return describeOutput{}, err
		}
		facts, err := in.Describe(ctx)
		if err != nil {
			out.DescribeError = plugins.SanitizeMessage(err.Error())
		} else {
			out.Facts = &facts
		}
		// Describe may have waited; report the health as it is now.
		st = sup.Status()
		out.State, out.Reason, out.Health = st.State, st.Reason, st.Plugin
	}
	out.Healthy = out.State == host.StateHealthy && out.Facts != nil
	return out, nil
}

// waitSettled waits until the plugin is healthy, refused or failed, or says
// it is unhealthy for a reason other than still connecting.
func waitSettled(ctx context.Context, sup *host.Supervisor, timeout time.Duration) host.Status {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st := sup.Status()
		switch st.State {
		case host.StateHealthy, host.StateRefused, host.StateRestarting, host.StateStopped:
			return st
		case host.StateUnhealthy:
			if st.Plugin != nil && !slices.Contains([]string{"connecting", "starting"}, st.Plugin.State) {
				return st
			}
		}
		select {
		case <-ctx.Done():
			return sup.Status()
		case <-deadline.C:
			return sup.Status()
		case <-tick.C:
		}
	}
}

// describeLogger keeps the plugin's own logs quiet: everything they would
// say is in the report. --log-level warn, debug or trace shows them.
func describeLogger(app *App) hclog.Logger {
	level := hclog.Error
	switch l := hclog.LevelFromString(app.LogLevel); l {
	case hclog.Warn, hclog.Debug, hclog.Trace:
		level = l
	}
	return hclog.New(&hclog.LoggerOptions{Name: "switchboard", Level: level, Output: app.Stderr, JSONFormat: app.LogFormat == "json"})
}

// describeReason is the one-line reason a plugin is not healthy: the
// host's (which carries the plugin's own health), else Describe's error.
func describeReason(out describeOutput) string {
	switch {
	case out.Reason != "":
		return out.Reason
	case out.DescribeError != "":
		return out.DescribeError
	}
	return string(out.State)
}

func writeDescribe(w io.Writer, out describeOutput) error {
	if out.Healthy {
		fmt.Fprintf(w, "%s: healthy\n", out.Plugin)
	} else {
		fmt.Fprintf(w, "%s: NOT healthy (%s)\n", out.Plugin, out.State)
	}
	if h := out.Health; h != nil {
		line := h.State
		if h.Detail != "" {
			line += ": " + h.Detail
		}
		fmt.Fprintf(w, "health:       %s\n", line)
	} else if out.Reason != "" {
		fmt.Fprintf(w, "reason:       %s\n", out.Reason)
	}
	if out.DescribeError != "" {
		fmt.Fprintf(w, "describe:     %s\n", out.DescribeError)
	}
	f := out.Facts
	if f == nil {
		return nil
	}
	fmt.Fprintf(w, "product:      %s %s\n", f.Product, f.Version)
	if f.Distribution != "" {
		fmt.Fprintf(w, "distribution: %s\n", f.Distribution)
	}
	if f.Build != "" {
		fmt.Fprintf(w, "build:        %s\n", f.Build)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "seats:")
	for _, k := range sortedKeys(f.Seats) {
		fmt.Fprintf(tw, "  %s\t%d\n", k, f.Seats[k])
	}
	if len(f.Seats) == 0 {
		fmt.Fprintln(tw, "  (none)")
	}
	if len(f.Details) > 0 {
		fmt.Fprintln(tw, "details:")
		for _, k := range sortedKeys(f.Details) {
			fmt.Fprintf(tw, "  %s\t%s\n", k, f.Details[k])
		}
	}
	return tw.Flush()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
