package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/internal/buildinfo"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/builtin"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

// healthUnknown is what `plugin list` says about health when no agent
// answers on its socket: the list itself still works offline.
const healthUnknown = "unknown (agent not running)"

// agentAskTimeout bounds the status request to the agent, so a wedged
// agent never hangs `plugin list`.
const agentAskTimeout = 3 * time.Second

func newPluginCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugin",
		Short: "List the installed plugins and serve the built-in ones",
		Long: `Plugins connect switchboard to the products on this server (Integration
plugins: Asterisk, Odoo) and deliver support tickets (SupportChannel plugins).
Each plugin runs as its own process, started by the agent (or the registry)
over hashicorp/go-plugin with mutual TLS, and only when the SHA-256 of its
binary matches the plugin manifest written by the installer.

Built-in plugins ship inside this binary and run as 'switchboard plugin serve
NAME'; third-party plugins are separate binaries in the plugin directory.`,
	}
	cmd.AddCommand(newPluginListCommand(app), newPluginServeCommand(app), newPluginDescribeCommand(app))
	return cmd
}

type pluginListRow struct {
	host.Discovered
	// Health is the one-line health the running agent reports, or why it
	// is not known.
	Health string `json:"health"`
	// Agent is the running agent's view of the plugin (process, restarts,
	// last outage), when the agent runs it.
	Agent *localapi.PluginStatus `json:"agent,omitempty"`
}

type pluginListOutput struct {
	Manifest string `json:"manifest"`
	Dir      string `json:"dir"`
	Socket   string `json:"socket"`
	// AgentRunning says whether an agent answered on Socket; AgentError
	// says why not.
	AgentRunning bool            `json:"agent_running"`
	AgentError   string          `json:"agent_error,omitempty"`
	Note         string          `json:"note,omitempty"`
	Plugins      []pluginListRow `json:"plugins"`
}

func newPluginListCommand(app *App) *cobra.Command {
	dir := host.DefaultPluginDir
	manifest := filepath.Join(host.DefaultStateDir, host.ManifestFileName)
	var socket, cfgPath string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show installed plugins, their kind, version, checksum state and health",
		Long: `List every plugin the manifest names (built-ins included) and every
executable in the plugin directory, with the state of its checksum:

  ok               the binary is the one the manifest names; it will be started
  mismatch         the binary changed since it was installed; it will be refused
  not in manifest  a binary nobody installed through the installer; never started
  missing          the manifest names a binary that is not there

Health comes from the agent running on this server, asked over its unix
socket: "healthy (pid N)", "unhealthy: why", "restarting in 2s: crashed",
"refused: why". When no agent answers the list still works and health is
"` + healthUnknown + `".

The manifest, plugin directory and socket are taken from --config (default
` + config.DefaultPath + ` when it exists); --manifest, --dir and --socket
override them.`,
		Example: `  switchboard plugin list
  switchboard plugin list --config /etc/switchboard/agent.toml
  switchboard plugin list --dir /opt/switchboard/plugins --manifest /var/lib/switchboard/plugins.json --socket /var/lib/switchboard/agent.sock
  switchboard plugin list --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if socket != "" && cfgPath != "" {
				return usageErrorf("give --socket or --config, not both")
			}
			var note string
			path := cfgPath
			if path == "" {
				if _, err := os.Stat(config.DefaultPath); err == nil {
					path = config.DefaultPath
				}
			}
			if path != "" {
				cfg, err := config.Load(path)
				switch {
				case err != nil && cfgPath != "":
					return failed(err)
				case err != nil:
					// The default file is broken: still list what is on disk.
					note = fmt.Sprintf("%v (using the default paths)", err)
				default:
					if !cmd.Flags().Changed("manifest") {
						manifest = cfg.Plugins.Manifest
					}
					if !cmd.Flags().Changed("dir") {
						dir = cfg.Plugins.Dir
					}
					if socket == "" {
						socket = cfg.Socket
					}
				}
			}
			if socket == "" {
				socket = filepath.Join(config.DefaultStateDir, "agent.sock")
			}
			out := pluginListOutput{Manifest: manifest, Dir: dir, Socket: socket, Note: note, Plugins: []pluginListRow{}}
			m, err := host.LoadManifest(manifest)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				out.Note = strings.TrimSpace(out.Note + "\n" + fmt.Sprintf("no plugin manifest at %s: nothing is installed yet (run the installer)", manifest))
				m = nil
			case err != nil:
				return failed(err)
			}
			found, err := host.Discover(dir, m)
			if err != nil {
				return failed(err)
			}

			ctx, cancel := context.WithTimeout(cmd.Context(), agentAskTimeout)
			st, err := localapi.NewClient(socket).Status(ctx)
			cancel()
			running := map[string]localapi.PluginStatus{}
			if err == nil {
				out.AgentRunning = true
				for _, p := range st.Plugins {
					running[p.Name] = p
				}
			} else {
				out.AgentError = err.Error()
				app.Log.Debug("agent not asked for plugin health", "socket", socket, "error", err)
			}
			for _, d := range found {
				if d.Builtin && d.Version == "" {
					d.Version = buildinfo.Get().Version
				}
				row := pluginListRow{Discovered: d}
				row.Health, row.Agent = pluginHealth(d, out.AgentRunning, err, running)
				out.Plugins = append(out.Plugins, row)
			}
			return app.render(out, func(w io.Writer) error { return writePluginList(w, out) })
		},
	}
	cmd.Flags().StringVar(&dir, "dir", dir, "plugin directory holding third-party plugin binaries (default: plugins.dir of --config)")
	cmd.Flags().StringVar(&manifest, "manifest", manifest, "plugin manifest written by the installer (default: plugins.manifest of --config)")
	cmd.Flags().StringVar(&socket, "socket", "", "the agent's unix socket, asked for each plugin's health")
	cmd.Flags().StringVar(&cfgPath, "config", "", "the agent's configuration file (for its manifest, plugin directory and socket)")
	return cmd
}

// pluginHealth is the health column of one discovered plugin: what the
// running agent says about it, or why there is nothing to say.
func pluginHealth(d host.Discovered, agentUp bool, agentErr error, running map[string]localapi.PluginStatus) (string, *localapi.PluginStatus) {
	if !agentUp {
		if errors.Is(agentErr, localapi.ErrNotRunning) {
			return healthUnknown, nil
		}
		return "unknown (agent did not answer: " + agentErr.Error() + ")", nil
	}
	p, ok := running[d.Name]
	switch {
	case ok:
		return healthLine(p), &p
	case d.State == host.ChecksumNotInManifest:
		return "not started (not in the manifest)", nil
	case d.Kind == plugins.KindSupportChannel:
		return "not run by the agent (support channels run in the registry)", nil
	}
	return "not loaded by the agent (reload it: systemctl reload switchboard-agent, or kill -HUP its pid)", nil
}

// healthLine is the one-line form of a plugin's status in the agent.
func healthLine(p localapi.PluginStatus) string {
	var line string
	switch {
	case p.Healthy && p.PID > 0:
		line = fmt.Sprintf("healthy (pid %d)", p.PID)
	case p.Healthy:
		line = "healthy"
	default:
		line = p.State
		if line == "" {
			line = "unhealthy"
		}
		if p.Detail != "" {
			line += ": " + p.Detail
		}
	}
	if p.Restarts > 0 {
		line += fmt.Sprintf("; %d restart(s)", p.Restarts)
	}
	if o := p.LastOutage; o != nil && p.Healthy {
		end := "ongoing"
		if !o.End.IsZero() {
			end = o.End.Sub(o.Start).Round(100 * time.Millisecond).String()
		}
		line += fmt.Sprintf("; last outage %s (%s): %s", o.Start.Local().Format(time.DateTime), end, o.Reason)
	}
	return line
}

func writePluginList(w io.Writer, out pluginListOutput) error {
	if out.Note != "" {
		fmt.Fprintln(w, out.Note)
	}
	if len(out.Plugins) == 0 {
		_, err := fmt.Fprintf(w, "no plugins found (manifest %s, directory %s)\n", out.Manifest, out.Dir)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tVERSION\tCHECKSUM\tHEALTH\tPATH")
	for _, p := range out.Plugins {
		kind, version, path := string(p.Kind), p.Version, p.Path
		if kind == "" {
			kind = "-"
		}
		if version == "" {
			version = "-"
		}
		if p.Builtin {
			path += " (built in)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", p.Name, kind, version, p.State, p.Health, path)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range out.Plugins {
		if p.State == host.ChecksumOK {
			continue
		}
		if _, err := fmt.Fprintf(w, "%s: %s: %s\n", p.Name, p.State, p.Detail); err != nil {
			return err
		}
	}
	return nil
}

func newPluginServeCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "serve NAME",
		Short: "Serve a built-in plugin (started by the agent, not by hand)",
		Long: `Run the built-in plugin NAME as a go-plugin process. The agent or the
registry starts this itself from the plugin manifest; run by hand it only
prints a notice, since a plugin talks to its host over a handshake on stdout.`,
		Example: `  # the manifest entry of a built-in plugin runs:
  switchboard plugin serve asterisk`,
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			app.Log.Debug("serving built-in plugin", "name", name, "protocol", plugins.ProtocolVersion)
			err := builtin.Serve(name)
			var unknown *builtin.UnknownError
			if errors.As(err, &unknown) {
				return usageErrorf("%s", unknown.Error())
			}
			if err != nil {
				return failed(err)
			}
			return nil
		},
	}
}
