package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/agent"
	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/plugins"
)

func newAgentCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent daemon on this server, and check its configuration",
		Long: `The agent is the daemon on the customer's PBX or Odoo server. It activates the
install with the vendor registry, sends a heartbeat on the interval the
registry asks for, keeps every report in a durable outbox until the registry
acknowledged it, verifies the licence, hosts the plugins that watch Asterisk
and Odoo, and answers 'switchboard status' on a local unix socket.

It reads one TOML file (default ` + config.DefaultPath + `); every key has a
default except registry.url. See 'switchboard agent config example'.`,
		Example: `  switchboard agent config example > /etc/switchboard/agent.toml
  switchboard agent config check /etc/switchboard/agent.toml
  switchboard agent run --config /etc/switchboard/agent.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAgentRunCommand(app), newAgentConfigCommand(app))
	return cmd
}

func newAgentRunCommand(app *App) *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "run [--config FILE]",
		Short: "Run the agent daemon in the foreground (systemd starts it this way)",
		Long: `Run the agent until SIGTERM or SIGINT. On stop it takes no new work, tries to
deliver what waits in the outbox for outbox.flush_deadline, and exits 0; what
is left is sent after the next start.

SIGHUP reloads the configuration file and the plugin manifest. An invalid
file is refused (the error names the key and line) and the running
configuration stays. A valid one is applied without a restart:
  - log.level and log.format switch for every later line, plugins' included
    (a plugin only writes lines at the level it was started with or above);
  - socket: the new socket is opened first, then the old one is closed and
    removed; if the new one cannot be opened the old one stays;
  - outbox.max_records: the new bound holds from the next report; a bound
    below the current depth compacts heartbeats, it never drops a record;
  - registry, sender, licence, heartbeat, support: at once;
  - plugins: only plugins whose manifest entry or [plugins.NAME] settings
    changed restart, the others keep running.
state_dir alone waits for a restart (the install key, licence and outbox live
there): the agent keeps its running directory and 'switchboard status' lists
state_dir under "restart required". What a reload could not apply shows in
'switchboard status' as the reload error.

The daemon logs to stderr with the level and format of the [log] section.
A bad configuration file stops the start with exit 1.

The agent and its plugins each run Go with one P (GOMAXPROCS=1): they wait on
I/O, and the customer's PBX or ERP needs the cores. Set GOMAXPROCS in the
environment (systemctl edit switchboard-agent) to change it.`,
		Example: `  switchboard agent run --config /etc/switchboard/agent.toml
  kill -HUP $(pidof switchboard)   # reload the configuration`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if os.Getenv("GOMAXPROCS") == "" {
				runtime.GOMAXPROCS(plugins.Procs)
			}
			err := agent.Run(cmd.Context(), agent.Options{ConfigPath: path, LogOutput: app.Stderr, NewPlugins: agent.NewHostPlugins})
			if err != nil {
				return failed(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", config.DefaultPath, "agent configuration file (TOML)")
	return cmd
}

func newAgentConfigCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Print an example agent configuration, or check a file",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print the commented example configuration with every key and its default",
		Long: `Print the commented example agent configuration. Every key in it is
documented with its default; only registry.url is required.`,
		Example: `  switchboard agent config example > /etc/switchboard/agent.toml`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := io.WriteString(app.Stdout, config.Example)
			return err
		},
	}, newAgentConfigCheckCommand(app))
	return cmd
}

type configCheck struct {
	File  string `json:"file"`
	Valid bool   `json:"valid"`
	Error string `json:"error,omitempty"`
	Key   string `json:"key,omitempty"`
	Line  int    `json:"line,omitempty"`
	// Problems are findings outside the file's syntax, such as a vendor
	// key file that cannot be read.
	Problems []string       `json:"problems,omitempty"`
	Config   *config.Config `json:"config,omitempty"`
}

func newAgentConfigCheckCommand(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Check an agent configuration file: syntax, keys, values and vendor key files",
		Long: `Check FILE as the agent would at start: TOML syntax, unknown keys, every
value's range, and that the vendor public key files it names can be read.
Problems name the key and its line. Exit 0 when the file is good, 1 when not.
With --output json the effective configuration (defaults filled in) is shown.`,
		Example: `  switchboard agent config check /etc/switchboard/agent.toml
  switchboard agent config check agent.toml --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res := configCheck{File: args[0]}
			cfg, err := config.Load(args[0])
			var ce *config.Error
			switch {
			case errors.As(err, &ce):
				res.Error, res.Key, res.Line = err.Error(), ce.Key, ce.Line
			case err != nil:
				res.Error = err.Error()
			default:
				res.Config = cfg
				for _, p := range cfg.Licence.PublicKeys {
					if _, err := licensing.LoadPublicKeys(p); err != nil {
						res.Problems = append(res.Problems, "licence.public_keys: "+err.Error())
					}
				}
				res.Valid = len(res.Problems) == 0
			}
			if err := app.render(res, func(w io.Writer) error {
				if res.Error != "" {
					return nil
				}
				for _, p := range res.Problems {
					fmt.Fprintf(w, "problem: %s\n", p)
				}
				if res.Valid {
					fmt.Fprintf(w, "%s: ok (registry %s, state in %s)\n", res.File, cfg.Registry.URL, cfg.StateDir)
				}
				return nil
			}); err != nil {
				return err
			}
			switch {
			case res.Error != "":
				return failed(errors.New(res.Error))
			case !res.Valid:
				return failed(fmt.Errorf("%s: %d problem(s), see above", res.File, len(res.Problems)))
			}
			return nil
		},
	}
}

// socketFrom picks the agent's socket: --socket, else the socket named in
// --config, else the one in the default config file when it exists, else
// the default socket path.
func socketFrom(socket, cfgPath string) (string, error) {
	if socket != "" {
		return socket, nil
	}
	if cfgPath == "" {
		if _, err := os.Stat(config.DefaultPath); err != nil {
			return config.DefaultStateDir + "/agent.sock", nil
		}
		cfgPath = config.DefaultPath
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return "", failed(err)
	}
	return cfg.Socket, nil
}
