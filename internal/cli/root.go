// Package cli is the cobra command tree of the switchboard binary. Each
// domain (codes, licences, registry, agent, plugins, installer) has its own
// file here that turns flags into calls on the library packages; no business
// logic lives in this package.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
)

// Exit codes of the switchboard binary. They are part of the CLI's contract
// with scripts and are listed in the root command's help.
const (
	ExitOK          = 0 // the command did what was asked
	ExitFailed      = 1 // the thing checked is invalid, or the operation failed
	ExitUsage       = 2 // the command line itself is wrong
	ExitUnreachable = 3 // a service (registry, agent, emulator) could not be reached
)

const exitCodesHelp = `Exit codes:
  0  ok
  1  the thing checked is invalid, or the operation failed
  2  usage error (unknown command, bad flag or argument)
  3  a service (registry, local agent) cannot be reached`

// ExitError carries the exit code a failed command should end the process
// with. Errors that are not ExitErrors end it with ExitFailed.
type ExitError struct {
	Code int
	Err  error
	// Reported is set when the command already gave its answer (for
	// example a JSON document on stdout), so nothing more is printed.
	Reported bool
}

func (e *ExitError) Error() string { return e.Err.Error() }
func (e *ExitError) Unwrap() error { return e.Err }

// failed marks err as "the thing checked is invalid or the operation failed".
func failed(err error) error { return &ExitError{Code: ExitFailed, Err: err} }

// reported marks err as failed and already explained on stdout.
func reported(err error) error { return &ExitError{Code: ExitFailed, Err: err, Reported: true} }

// usageErrorf marks a problem with the command line itself.
func usageErrorf(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// unreachable marks a failure to reach a service.
func unreachable(err error) error { return &ExitError{Code: ExitUnreachable, Err: err} }

// App holds what every command shares: the streams, the global flags and the
// logger built from them.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer

	Output    string // text or json
	LogLevel  string
	LogFormat string // text or json

	// Log is ready once the root's PersistentPreRunE has run.
	Log hclog.Logger

	// started is set when flag parsing and argument checks have passed, so an
	// error returned before it is a usage error.
	started bool
}

// JSON reports whether the user asked for machine-readable output.
func (a *App) JSON() bool { return a.Output == "json" }

// Execute runs the CLI with the given arguments and returns the process exit code.
func Execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	app := &App{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	root := NewRootCommand(app)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteC()
	if err == nil {
		return ExitOK
	}
	code := ExitFailed
	var ee *ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.Code
		if ee.Reported {
			return code
		}
	case !app.started:
		code = ExitUsage
	}
	// One line on stderr: cobra's suggestions come on several.
	msg := strings.Join(strings.Fields(err.Error()), " ")
	if code == ExitUsage && cmd != nil {
		msg += fmt.Sprintf(" (see '%s --help')", cmd.CommandPath())
	}
	fmt.Fprintf(stderr, "error: %s\n", msg)
	return code
}

// Main is the entry point of cmd/switchboard.
func Main() {
	os.Exit(Execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// NewRootCommand builds the whole command tree around app.
func NewRootCommand(app *App) *cobra.Command {
	// Let subcommands add their own PersistentPreRunE without hiding the root's.
	cobra.EnableTraverseRunHooks = true

	root := &cobra.Command{
		Use:   "switchboard",
		Short: "Link PBX and ERP installs to the partner who brought them",
		Long: `Switchboard links every Asterisk and Odoo install to the partner who brought it.
The installer embeds the partner code into a signed install licence, the agent
reports activation and heartbeats to the vendor's registry, and the registry
turns that into a partner programme: codes, licences, live installs,
commissions and payouts.

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if err := app.setup(); err != nil {
				return err
			}
			// Cobra checks required flags and flag groups only after this
			// hook; check them here so they count as usage errors.
			if err := cmd.ValidateRequiredFlags(); err != nil {
				return err
			}
			if err := cmd.ValidateFlagGroups(); err != nil {
				return err
			}
			app.started = true
			return nil
		},
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&app.Output, "output", "o", "text", "output format: text or json")
	pf.StringVar(&app.LogLevel, "log-level", "info", "log level: trace, debug, info, warn or error")
	pf.StringVar(&app.LogFormat, "log-format", "text", "log format: text or json")
	_ = root.RegisterFlagCompletionFunc("output", fixedCompletion("text", "json"))
	_ = root.RegisterFlagCompletionFunc("log-format", fixedCompletion("text", "json"))
	_ = root.RegisterFlagCompletionFunc("log-level", fixedCompletion("trace", "debug", "info", "warn", "error"))

	root.AddCommand(
		newVersionCommand(app),
		newDocsCommand(),
		newCodeCommand(app),
		newLicenceCommand(app),
		newRegistryCommand(app),
		newBenchCommand(app),
		newAgentCommand(app),
		newStatusCommand(app),
		newPartnerCommand(app),
		newPluginCommand(app),
		newDevCommand(app),
		newInstallCommand(app),
		newUninstallCommand(app),
		newSupportCommand(app),
	)
	return root
}

// setup checks the global flags and builds the logger.
func (a *App) setup() error {
	switch a.Output {
	case "text", "json":
	default:
		return usageErrorf("--output must be text or json, not %q", a.Output)
	}
	switch a.LogFormat {
	case "text", "json":
	default:
		return usageErrorf("--log-format must be text or json, not %q", a.LogFormat)
	}
	level := hclog.LevelFromString(a.LogLevel)
	if level == hclog.NoLevel {
		return usageErrorf("--log-level must be one of trace, debug, info, warn, error, not %q", a.LogLevel)
	}
	a.Log = hclog.New(&hclog.LoggerOptions{
		Name:       "switchboard",
		Level:      level,
		Output:     a.Stderr,
		JSONFormat: a.LogFormat == "json",
	})
	return nil
}

func fixedCompletion(values ...string) func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}
