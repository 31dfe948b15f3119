package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/installer"
)

type installFlags struct {
	opts           installer.Options
	code, fromLink string
	yes            bool
}

// installOutput is the JSON answer of install: the report, and the error
// when the install failed and was rolled back.
type installOutput struct {
	*installer.Report
	Error string `json:"error,omitempty"`
}

func newInstallCommand(app *App) *cobra.Command {
	var f installFlags
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install the agent on this server, linked to the partner who brought it",
		Long: `Install Switchboard on this PBX or Odoo server: detect Asterisk (plain, FreePBX,
Issabel, VitalPBX) and Odoo, take the partner code, generate the install key,
activate with the registry (the licence comes back with the code inside and
is verified against the vendor keys the registry publishes at /v1/keys), then
write the agent configuration, the plugin manifest with the SHA-256 of each
plugin, and a hardened systemd unit, and start the agent.

The partner code comes from the first of: --partner-code, --from-link (the
download page's link), $SWITCHBOARD_PARTNER_CODE, the installer's own file
name (switchboard-install-K7QM4XJDR, or $SWITCHBOARD_INSTALLER_NAME set by a
shell wrapper), and finally, on a terminal, a prompt that checks the code as
you type, shows its canonical form, allows three tries and takes an empty
answer as "no partner". The report says which source was used. A code the
registry does not know stops the install (exit 1) and changes nothing.

ARI: with --configure-ari the installer creates a dedicated ARI user with a
random password (FreePBX and Issabel: in ari_additional_custom.conf, never in
the files FreePBX generates; elsewhere in ari.conf), backs up every file it
edits (FILE.switchboard-bak-TIMESTAMP) and reloads Asterisk. Without it, it
prints the exact lines to add and where.

When the registry cannot be reached the install still completes: the
activation waits in the agent's outbox and is sent once the registry answers.
Running the installer again changes nothing and keeps the install id. Every
file is written atomically, and a failure at any step rolls back the steps
before it.

--root DIR installs into DIR as a self-contained sandbox (tests, demos): paths
written into files point inside DIR, and nothing is run on the host (the
commands are listed instead); start that agent with
'DIR/usr/local/bin/switchboard agent run --config DIR/etc/switchboard/agent.toml'.`,
		Example: `  switchboard install --registry https://registry.example.com --partner-code K7QM-4XJD-R --yes
  switchboard install --from-link 'https://registry.example.com/download?ref=K7QM4XJDR' --configure-ari
  switchboard install --registry https://registry.example.com --dry-run
  switchboard install --root /tmp/sandbox --registry http://127.0.0.1:8420 --partner-code K7QM4XJDR --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := f.opts
			if opts.RegistryURL == "" {
				opts.RegistryURL = registryFromLink(f.fromLink)
			}
			in := installer.CodeInputs{Flag: f.code, Link: f.fromLink, Env: os.Getenv(installer.EnvPartnerCode),
				Filenames: []string{os.Getenv(installer.EnvInstallerName), os.Args[0]}}
			choice, found, err := installer.ResolveCode(in)
			if err != nil {
				return failed(err)
			}
			tty, interactive := app.terminal(f.yes)
			prompt := func() error {
				c, err := installer.PromptCode(tty, app.Stderr, installer.PromptTries)
				if err != nil {
					return failed(err)
				}
				choice = c
				return nil
			}
			rejected := 0 // typed codes the registry did not know
			if !found {
				if interactive {
					if err := prompt(); err != nil {
						return err
					}
				} else {
					choice = installer.CodeChoice{Source: installer.SourceNone}
				}
			}
			for {
				opts.Code = choice
				inst, err := installer.Prepare(ctx, opts)
				if err != nil {
					return failed(err)
				}
				if opts.DryRun {
					return app.render(installOutput{Report: inst.Report}, func(w io.Writer) error {
						inst.Report.WriteText(w)
						return nil
					})
				}
				err = inst.Execute(ctx)
				var uc *installer.UnknownCodeError
				if errors.As(err, &uc) && interactive && choice.Source == installer.SourcePrompt && rejected < installer.PromptTries-1 {
					// Everything was rolled back: ask again.
					rejected++
					fmt.Fprintf(app.Stderr, "%v\n", uc)
					if err := prompt(); err != nil {
						return err
					}
					continue
				}
				if err != nil {
					out := installOutput{Report: inst.Report, Error: err.Error()}
					if app.JSON() {
						_ = writeJSON(app.Stdout, out)
						return reported(err)
					}
					inst.Report.WriteText(app.Stdout)
					return failed(err)
				}
				return app.render(installOutput{Report: inst.Report}, func(w io.Writer) error {
					inst.Report.WriteText(w)
					return nil
				})
			}
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.opts.RegistryURL, "registry", "", "vendor registry URL (default: from --from-link, or the one an earlier install uses)")
	fl.StringVar(&f.code, "partner-code", "", "partner code, e.g. K7QM-4XJD-R (case, spaces and dashes do not matter)")
	fl.StringVar(&f.fromLink, "from-link", "", "download or referral link holding the partner code (?ref=, /r/CODE, ?via=, ?fpr=)")
	fl.StringVar(&f.opts.Root, "root", "/", "install under this directory instead of / (a self-contained sandbox)")
	fl.BoolVar(&f.opts.DryRun, "dry-run", false, "print every change the install would make, and make none")
	fl.BoolVarP(&f.yes, "yes", "y", false, "never prompt (no partner code prompt); same as --non-interactive")
	fl.BoolVar(&f.yes, "non-interactive", false, "never prompt; same as --yes")
	fl.BoolVar(&f.opts.ConfigureARI, "configure-ari", false, "create the agent's ARI user in Asterisk's configuration (backed up) and reload Asterisk")
	fl.StringVar(&f.opts.ARIURL, "ari-url", "", "ARI base URL (default: from http.conf, e.g. http://127.0.0.1:8088/ari)")
	fl.StringVar(&f.opts.ARIUser, "ari-user", "", "ARI user for the agent (default: "+installer.DefaultARIUser+")")
	fl.StringVar(&f.opts.ARIPassword, "ari-password", "", "password of the ARI user (default: from ari.conf, or a new random one)")
	fl.StringVar(&f.opts.OdooURL, "odoo-url", "", "Odoo URL (default: from odoo.conf's http_port)")
	fl.StringVar(&f.opts.OdooDB, "odoo-db", "", "Odoo database (default: odoo.conf's db_name)")
	fl.StringVar(&f.opts.OdooUser, "odoo-user", "", "Odoo login the agent uses")
	fl.StringVar(&f.opts.OdooKey, "odoo-key", "", "Odoo API key of that login (Preferences → Account Security → New API Key)")
	fl.StringVar(&f.opts.VendorKeysFile, "vendor-keys", "", "pin the vendor public keys (vendor.pub) the licence must verify with, instead of the registry's /v1/keys")
	return cmd
}

// registryFromLink takes the registry from a download link such as
// https://registry.example.com/download?ref=CODE.
func registryFromLink(link string) string {
	u, err := url.Parse(strings.TrimSpace(link))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// terminal returns stdin when prompting is allowed: not --yes, and stdin
// is a terminal.
func (a *App) terminal(yes bool) (*os.File, bool) {
	if yes {
		return nil, false
	}
	f, ok := a.Stdin.(*os.File)
	if !ok || !installer.IsTerminal(f) {
		return nil, false
	}
	return f, true
}

func newUninstallCommand(app *App) *cobra.Command {
	var opts installer.UninstallOptions
	var yes bool
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Remove the agent from this server and deactivate the install",
		Long: `Stop and disable the agent, remove its systemd unit, configuration, plugins,
secrets and the ARI user the installer added (the edited file is backed up),
and tell the registry the install is gone: the deactivation is queued in the
agent's outbox and sent at once, signed with the install key. When the
registry cannot be reached it stays queued; run uninstall again later to send
it.

The install key, licence and install record stay in the state directory, so
installing again keeps the install id. --purge removes them too (but keeps
the key and outbox while a deactivation still waits to be sent).`,
		Example: `  switchboard uninstall
  switchboard uninstall --purge --yes
  switchboard uninstall --root /tmp/sandbox --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			u, err := installer.PrepareUninstall(ctx, opts)
			if err != nil {
				return failed(err)
			}
			if !opts.DryRun && opts.Purge {
				if tty, ok := app.terminal(yes); ok {
					fmt.Fprintf(app.Stderr, "--purge removes the install key and licence from %s: this server would become a new install. Continue? [y/N] ", u.Report.Root)
					line, _ := bufio.NewReader(tty).ReadString('\n')
					if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
						return failed(errors.New("uninstall cancelled: nothing was changed"))
					}
				}
			}
			if !opts.DryRun {
				if err := u.Execute(ctx); err != nil {
					if app.JSON() {
						_ = writeJSON(app.Stdout, struct {
							*installer.UninstallReport
							Error string `json:"error"`
						}{u.Report, err.Error()})
						return reported(err)
					}
					u.Report.WriteText(app.Stdout)
					return failed(err)
				}
			}
			return app.render(u.Report, func(w io.Writer) error {
				u.Report.WriteText(w)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Root, "root", "/", "uninstall from this directory instead of / (a sandbox made by install --root)")
	fl.BoolVar(&opts.Purge, "purge", false, "also remove the install key, licence, install record and outbox")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "print every change, make none")
	fl.DurationVar(&opts.FlushTimeout, "flush-timeout", 15*time.Second, "how long to try delivering the deactivation")
	fl.BoolVarP(&yes, "yes", "y", false, "do not ask before --purge")
	return cmd
}
