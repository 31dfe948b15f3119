package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/internal/buildinfo"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/builtin"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

// healthUnknown is what `plugin list` says about health until it can ask a
// running agent (the agent's local API is not wired to this command yet).
const healthUnknown = "unknown (agent not running)"

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
	Health string `json:"health"`
}

type pluginListOutput struct {
	Manifest string          `json:"manifest"`
	Dir      string          `json:"dir"`
	Note     string          `json:"note,omitempty"`
	Plugins  []pluginListRow `json:"plugins"`
}

func newPluginListCommand(app *App) *cobra.Command {
	dir := host.DefaultPluginDir
	manifest := filepath.Join(host.DefaultStateDir, host.ManifestFileName)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "Show installed plugins, their kind, version and checksum state",
		Long: `List every plugin the manifest names (built-ins included) and every
executable in the plugin directory, with the state of its checksum:

  ok               the binary is the one the manifest names; it will be started
  mismatch         the binary changed since it was installed; it will be refused
  not in manifest  a binary nobody installed through the installer; never started
  missing          the manifest names a binary that is not there

Health comes from the running agent; until this command can ask it, health
is shown as "` + healthUnknown + `".`,
		Example: `  switchboard plugin list
  switchboard plugin list --dir /opt/switchboard/plugins --manifest /var/lib/switchboard/plugins.json
  switchboard plugin list --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			out := pluginListOutput{Manifest: manifest, Dir: dir, Plugins: []pluginListRow{}}
			m, err := host.LoadManifest(manifest)
			switch {
			case errors.Is(err, fs.ErrNotExist):
				out.Note = fmt.Sprintf("no plugin manifest at %s: nothing is installed yet (run the installer)", manifest)
				m = nil
			case err != nil:
				return failed(err)
			}
			found, err := host.Discover(dir, m)
			if err != nil {
				return failed(err)
			}
			for _, d := range found {
				if d.Builtin && d.Version == "" {
					d.Version = buildinfo.Get().Version
				}
				out.Plugins = append(out.Plugins, pluginListRow{Discovered: d, Health: healthUnknown})
			}
			return app.render(out, func(w io.Writer) error { return writePluginList(w, out) })
		},
	}
	cmd.Flags().StringVar(&dir, "dir", dir, "plugin directory holding third-party plugin binaries")
	cmd.Flags().StringVar(&manifest, "manifest", manifest, "plugin manifest written by the installer")
	return cmd
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
