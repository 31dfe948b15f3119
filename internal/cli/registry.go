package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/store"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

// Environment variables the staff commands read (flags override them).
const (
	envRegistryURL = "SWITCHBOARD_REGISTRY_URL"
	envAdminToken  = "SWITCHBOARD_ADMIN_TOKEN"
)

func newRegistryCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Run the vendor registry and manage its partners and installs",
		Long: `The registry is the vendor's central service. Installs activate against it
and send signed heartbeats; it issues partner codes and install licences and
tracks which installs are alive and which partner brought them.

'registry serve' runs it. The other commands talk to a running registry
through its staff API: they read the URL from SWITCHBOARD_REGISTRY_URL and
the admin token from SWITCHBOARD_ADMIN_TOKEN (or --registry / --token /
--data, which reads DIR/admin.token).`,
		Example: `  switchboard registry serve --data /var/lib/switchboard-registry
  export SWITCHBOARD_REGISTRY_URL=http://127.0.0.1:8420
  export SWITCHBOARD_ADMIN_TOKEN=$(cat /var/lib/switchboard-registry/admin.token)
  switchboard registry partner add --name "Acme PBX" --email ops@acme.example --tier partner
  switchboard registry installs list --status stale`,
	}
	staff := &staffFlags{}
	cmd.AddCommand(
		newRegistryServeCommand(app),
		newRegistryKeysCommand(app),
		newRegistryPartnerCommand(app, staff),
		newRegistryInstallsCommand(app, staff),
		newRegistrySupportCommand(app, staff),
		newRegistryPaymentsCommand(app, staff),
		newRegistryPayoutsCommand(app, staff),
		newRegistryLedgerCommand(app, staff),
		newRegistryStatementCommand(app, staff),
	)
	return cmd
}

func newRegistryServeCommand(app *App) *cobra.Command {
	var dataDir, listen, configPath, publicURL, packagesDir string
	cfg := registry.DefaultConfig()
	var hb, stale, dead, validity, grace, shutdown, checkpoint time.Duration
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the registry service",
		Long: `Run the registry: HTTP/JSON API under /v1 (see registry/openapi.yaml),
Prometheus metrics at /metrics, liveness at /healthz, and the download page
partners link to at /download?ref=CODE (or /r/CODE) with the installer
script and the packages of --packages DIR.

On first start the data directory gets the store (registry.db), an admin
token (admin.token, mode 0600) and a vendor licence-signing key
(keys/<id>/vendor.key, 0600). Later starts reuse them. The address actually
bound is written to DATA/registry.addr (use --listen 127.0.0.1:0 for a free
port) and printed on stdout.

Every acknowledged write is on disk (fsync) before the answer; concurrent
heartbeats share one commit. SIGTERM or Ctrl-C stops accepting, finishes
in-flight requests and their commits, and exits. SIGHUP reloads the signing
keys after 'registry keys rotate'.

A TOML --config file may set: data, listen, public_url, packages, heartbeat_interval,
stale_after, dead_after, licence_validity, licence_grace, max_body_bytes,
max_batch_reports, signups_per_hour, signup_burst, activations_per_second,
activation_burst, read_header_timeout, read_timeout, write_timeout,
idle_timeout, shutdown_timeout, checkpoint_interval. Flags given on the
command line win.

Its [support] table sets ticket delivery (defaults in brackets):
  retry_min [10s], retry_max [10m]   backoff between failed delivery attempts
  give_up_after [1h]                 a partner's channel failing this long → vendor queue
  attempt_timeout [45s]              bound on one delivery attempt
  plugin_idle [10m]                  stop a channel plugin unused this long
  poll_interval [5s]                 how often the worker looks for due tickets
  workers [4]                        tickets delivered at the same time (1-64)
  plugin_socket_dir [system temp]    where channel plugins get their sockets
  executable [this binary]           the switchboard binary serving built-in channels
  [support.vendor] type, [support.vendor.settings] KEY = "VALUE"
                                     the vendor queue's channel (webhook, email, odoo, …);
                                     without one, vendor tickets are held for staff
  [support.channel_types.NAME] path, sha256, args
                                     a further channel plugin binary (absolute path, its SHA-256)

Its [payments] table sets payments in:
  ledger_config [DATA/ledger.json when present]   commission policy (JSON ledger.Config)
  webhook_secret_file [DATA/payments.secret]       HMAC key of the payment webhook
  stripe_secret_file [DATA/stripe.secret]          Stripe endpoint signing secret (whsec_…)
  webhook_tolerance [5m]                           replay window of a signed webhook (30s-1h)`,
		Example: `  switchboard registry serve --data ./registry-data
  switchboard registry serve --data /tmp/r --listen 127.0.0.1:0 --stale-after 2h --dead-after 48h
  switchboard registry serve --config /etc/switchboard/registry.toml
  printf '[support]\ngive_up_after = "30m"\n[support.vendor]\ntype = "webhook"\n[support.vendor.settings]\nurl = "https://helpdesk.example/hook"\nsecret = "at-least-16-characters"\n' > registry.toml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if configPath != "" {
				loaded, err := registry.LoadConfigFile(configPath)
				if err != nil {
					return failed(err)
				}
				cfg = loaded
			}
			f := cmd.Flags()
			if f.Changed("data") || cfg.DataDir == "" {
				cfg.DataDir = dataDir
			}
			if f.Changed("listen") {
				cfg.Listen = listen
			}
			if f.Changed("public-url") {
				cfg.PublicURL = publicURL
			}
			if f.Changed("packages") {
				cfg.PackagesDir = packagesDir
			}
			for name, dst := range map[string]struct {
				d *registry.Duration
				v time.Duration
			}{
				"heartbeat-interval": {&cfg.HeartbeatInterval, hb}, "stale-after": {&cfg.StaleAfter, stale},
				"dead-after": {&cfg.DeadAfter, dead}, "licence-validity": {&cfg.LicenceValidity, validity},
				"licence-grace": {&cfg.LicenceGrace, grace}, "shutdown-timeout": {&cfg.ShutdownTimeout, shutdown},
				"checkpoint-interval": {&cfg.CheckpointInterval, checkpoint},
			} {
				if f.Changed(name) {
					*dst.d = registry.Duration(dst.v)
				}
			}
			if cfg.DataDir == "" {
				return usageErrorf("--data DIR is required (or 'data' in the --config file)")
			}
			return runRegistry(app, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data", "", "data directory (store, admin token, signing keys)")
	f.StringVar(&listen, "listen", cfg.Listen, "address to listen on; port 0 picks a free port")
	f.StringVar(&configPath, "config", "", "TOML config file")
	f.StringVar(&publicURL, "public-url", "", "URL installs reach the registry at (default: http://<listen address>)")
	f.StringVar(&packagesDir, "packages", "", "directory of .deb/.rpm packages (from 'make package') that the download page links and /install.sh installs")
	f.DurationVar(&hb, "heartbeat-interval", cfg.HeartbeatInterval.D(), "heartbeat interval installs are told to use")
	f.DurationVar(&stale, "stale-after", cfg.StaleAfter.D(), "an install with no heartbeat for this long is stale")
	f.DurationVar(&dead, "dead-after", cfg.DeadAfter.D(), "an install with no heartbeat for this long is dead")
	f.DurationVar(&validity, "licence-validity", cfg.LicenceValidity.D(), "validity of issued licences")
	f.DurationVar(&grace, "licence-grace", cfg.LicenceGrace.D(), "grace period of issued licences")
	f.DurationVar(&shutdown, "shutdown-timeout", cfg.ShutdownTimeout.D(), "how long SIGTERM waits for in-flight requests")
	f.DurationVar(&checkpoint, "checkpoint-interval", cfg.CheckpointInterval.D(), "longest time acknowledged reports wait in the report log before a checkpoint writes them into registry.db (10ms-10m)")
	f.Int64Var(&cfg.MaxBodyBytes, "max-body-bytes", cfg.MaxBodyBytes, "largest request body accepted")
	f.IntVar(&cfg.MaxBatchReports, "max-batch", cfg.MaxBatchReports, "most reports in one batch")
	f.Float64Var(&cfg.SignupsPerHour, "signups-per-hour", cfg.SignupsPerHour, "public referral sign-ups per client IP per hour (negative: no limit)")
	f.IntVar(&cfg.SignupBurst, "signup-burst", cfg.SignupBurst, "sign-ups a client IP may make at once")
	f.Float64Var(&cfg.ActivationsPerSecond, "activations-per-second", cfg.ActivationsPerSecond, "activations per client IP per second (negative: no limit)")
	f.IntVar(&cfg.ActivationBurst, "activation-burst", cfg.ActivationBurst, "activations a client IP may make at once")
	return cmd
}

// registryGCPercent is the registry's GOGC unless the environment sets
// one. Its live heap is small next to what every request allocates and
// drops (a body, its decoded reports, the answer), so at Go's default of
// 100 the collector runs often for little: at 400 it runs about a quarter
// as often, for a peak heap of five times a small live one.
const registryGCPercent = 400

// runRegistry runs the service until SIGTERM/SIGINT.
func runRegistry(app *App, cfg registry.Config) error {
	log := app.Log.Named("registry")
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(registryGCPercent)
	}
	setup, err := registry.Prepare(cfg.DataDir)
	if err != nil {
		return failed(err)
	}
	if setup.TokenCreated {
		log.Info("created admin token", "path", setup.AdminTokenPath)
	}
	if setup.KeyCreated {
		log.Info("created vendor signing key", "key_id", setup.Keys.Current.ID, "dir", filepath.Join(cfg.DataDir, registry.KeysDir))
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return failed(fmt.Errorf("listen on %s: %w", cfg.Listen, err))
	}
	defer ln.Close()
	if cfg.PublicURL == "" {
		cfg.PublicURL = "http://" + ln.Addr().String()
	}
	var srv *registry.Server
	st, err := boltstore.Open(filepath.Join(cfg.DataDir, registry.StoreFile), boltstore.Options{
		CheckpointInterval: cfg.CheckpointInterval.D(),
		OnCommit: func(n int, took time.Duration) {
			if srv != nil {
				srv.ObserveCommit(n, took)
			}
		},
		OnCheckpoint: func(n int, took time.Duration) {
			if srv != nil {
				srv.ObserveCheckpoint(n, took)
			}
		},
	})
	if err != nil {
		return failed(err)
	}
	srv, err = registry.New(cfg, st, setup.Keys, setup.AdminToken, log)
	if err != nil {
		_ = st.Close()
		return failed(err)
	}
	if err := registry.WriteAddrFile(cfg.DataDir, ln.Addr()); err != nil {
		_ = st.Close()
		return failed(fmt.Errorf("write %s: %w", registry.AddrFile, err))
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			ks, err := registry.LoadKeys(cfg.DataDir)
			if err != nil {
				log.Error("reload signing keys", "error", err)
				continue
			}
			srv.SetKeys(ks)
			log.Info("reloaded signing keys", "current", ks.Current.ID)
		}
	}()
	url := "http://" + ln.Addr().String()
	info := map[string]string{"url": url, "addr": ln.Addr().String(), "admin_token_file": setup.AdminTokenPath, "key_id": setup.Keys.Current.ID}
	if err := app.render(info, func(w io.Writer) error {
		_, err := fmt.Fprintf(w, "registry listening on %s (admin token: %s)\n", url, setup.AdminTokenPath)
		return err
	}); err != nil {
		return err
	}
	log.Info("serving", "addr", ln.Addr().String(), "store", st.Path())
	runErr := srv.Run(ctx, ln)
	if err := st.Close(); err != nil {
		return failed(err)
	}
	if runErr != nil {
		return failed(runErr)
	}
	log.Info("stopped")
	return nil
}

func newRegistryKeysCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage the vendor's licence-signing keys",
	}
	var dataDir string
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Add a new signing key and make it current",
		Long: `Create a new vendor licence-signing key in DATA/keys and make it the one new
licences are signed with. Earlier keys stay: licences they signed keep
verifying, and GET /v1/keys (and DATA/keys/keyring.pub) publish every key so
agents can refresh their keyring. Installs get a licence signed with the new
key on their next heartbeat. A running registry picks the key up on SIGHUP
or restart.

DATA must be an existing registry data directory (it holds registry.db or
keys/current); a path that is not one is refused, so a typo never starts a
second keyring. Only 'switchboard registry serve' creates a new registry.`,
		Example: `  switchboard registry keys rotate --data /var/lib/switchboard-registry
  kill -HUP $(pidof switchboard)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dataDir == "" {
				return usageErrorf("--data DIR is required")
			}
			// RotateKey refuses a directory that is not an existing
			// registry's: a typo must not start a second keyring.
			k, err := registry.RotateKey(dataDir)
			if err != nil {
				return failed(err)
			}
			ks, err := registry.LoadKeys(dataDir)
			if err != nil {
				return failed(err)
			}
			ids := make([]string, 0, len(ks.Public))
			for _, pk := range ks.Public {
				ids = append(ids, pk.ID)
			}
			out := map[string]any{"current": k.ID, "keys": ids}
			return app.render(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "new current signing key %s (%d keys kept); send SIGHUP to a running registry or restart it\n", k.ID, len(ids))
				return err
			})
		},
	}
	rotate.Flags().StringVar(&dataDir, "data", "", "registry data directory")
	cmd.AddCommand(rotate)
	return cmd
}

// staffFlags locate a running registry and its admin token.
type staffFlags struct {
	url, token, data string
}

func (s *staffFlags) add(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&s.url, "registry", "", "registry URL (default $"+envRegistryURL+")")
	f.StringVar(&s.token, "token", "", "admin token (default $"+envAdminToken+")")
	f.StringVar(&s.data, "data", "", "read the admin token from DIR/admin.token (and the URL from DIR/registry.addr)")
}

func (s *staffFlags) client() (*client.Client, error) {
	url, token := s.url, s.token
	if url == "" {
		url = os.Getenv(envRegistryURL)
	}
	if token == "" {
		token = os.Getenv(envAdminToken)
	}
	var addrErr error
	if s.data != "" {
		// A mistyped --data is refused by name rather than read as "no
		// token here", and nothing is ever created in it.
		if err := registry.CheckDataDir(s.data); err != nil {
			return nil, failed(err)
		}
		if token == "" {
			path := filepath.Join(s.data, registry.AdminTokenFile)
			b, err := os.ReadFile(path)
			if err != nil {
				return nil, failed(fmt.Errorf("read admin token %s: %w (pass --token or set %s instead)", path, err, envAdminToken))
			}
			token = strings.TrimSpace(string(b))
		}
		if url == "" {
			addr, err := registry.ReadAddrFile(s.data)
			if err == nil {
				url = "http://" + addr
			}
			addrErr = err
		}
	}
	if url == "" {
		if addrErr != nil {
			return nil, usageErrorf("no registry URL: %s has no usable %s (%v; is the registry running?): pass --registry URL or set %s",
				s.data, registry.AddrFile, addrErr, envRegistryURL)
		}
		return nil, usageErrorf("no registry URL: set %s or pass --registry URL", envRegistryURL)
	}
	if token == "" {
		return nil, usageErrorf("no admin token: set %s, or pass --token or --data DIR", envAdminToken)
	}
	c, err := client.New(url, token)
	if err != nil {
		return nil, usageErrorf("%v", err)
	}
	return c, nil
}

// staffErr maps client errors to exit codes.
func staffErr(err error) error {
	if client.IsUnreachable(err) {
		return unreachable(err)
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return err
	}
	return failed(err)
}

func newRegistryPartnerCommand(app *App, staff *staffFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "partner",
		Aliases: []string{"partners"},
		Short:   "Add, approve, suspend and list partners and referrals",
		Long: `Partners (integrators) install and support their customers and need approval;
referrals only bring customers and are approved at once. Each gets a partner
code people type into the installer.`,
	}
	staff.add(cmd)
	var req adminapi.CreatePartnerRequest
	var tier string
	add := &cobra.Command{
		Use:   "add",
		Short: "Create a partner or referral and print its code",
		Example: `  switchboard registry partner add --name "Acme PBX" --email ops@acme.example --tier partner --paypal pay@acme.example
  switchboard registry partner add --name "Jo Bloggs" --email jo@example.org --tier referral --parent K7QM-4XJD-R`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Tier = store.Tier(tier)
			if req.Tier != store.TierPartner && req.Tier != store.TierReferral {
				return usageErrorf("--tier must be partner or referral, not %q", tier)
			}
			if req.Payout.PayPalEmail != "" && req.Payout.Method == "" {
				req.Payout.Method = "paypal"
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			p, err := c.CreatePartner(cmd.Context(), req)
			if err != nil {
				return staffErr(err)
			}
			return app.render(p, func(w io.Writer) error { return printPartner(w, p) })
		},
	}
	af := add.Flags()
	af.StringVar(&req.Name, "name", "", "company or person name (required)")
	af.StringVar(&req.Email, "email", "", "contact e-mail (required)")
	af.StringVar(&tier, "tier", "partner", "partner or referral")
	af.StringVar(&req.ParentCode, "parent", "", "code of the partner who brought this one (second tier)")
	af.StringVar(&req.Payout.PayPalEmail, "paypal", "", "PayPal e-mail for payouts")
	af.StringVar(&req.Payout.Method, "payout-method", "", "paypal, bank or manual")
	af.StringVar(&req.Payout.BankAccount, "bank-account", "", "IBAN or bank details for manual payouts")
	af.StringVar(&req.Payout.Currency, "currency", "EUR", "payout currency")
	af.StringVar(&req.Payout.TaxID, "tax-id", "", "tax id (needed above the yearly tax threshold)")
	af.StringVar(&req.Listing.Website, "website", "", "website shown in the directory")
	af.StringVar(&req.Listing.Country, "country", "", "country shown in the directory")
	af.StringVar(&req.Listing.Description, "description", "", "description shown in the directory")
	af.BoolVar(&req.Listing.ShowEmail, "show-email", false, "publish the e-mail in the directory")
	af.BoolVar(&req.Approve, "approve", false, "approve a partner at once")
	af.StringVar(&req.BillingAccount, "billing-account", "", "the partner's own account id in billing (e.g. Stripe cus_…): its own purchases earn no commission")

	var billingAccount string
	update := &cobra.Command{
		Use:   "update CODE",
		Short: "Change a partner's details (today: its billing account)",
		Long: `Change what staff keep about a partner. --billing-account is the partner's
own customer account in the vendor's billing (a Stripe customer id, an
account number): payments from that account are the partner's own
purchases and earn no commission, recorded with reason
self_purchase_account. An empty value clears it. Payments already recorded
keep their commission; the rule applies to payments recorded from now on.`,
		Example: `  switchboard registry partner update K7QM-4XJD-R --billing-account cus_Q1w2E3r4
  switchboard registry partner update K7QM-4XJD-R --billing-account ""`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ureq adminapi.UpdatePartnerRequest
			if cmd.Flags().Changed("billing-account") {
				ureq.BillingAccount = &billingAccount
			}
			if ureq.BillingAccount == nil {
				return usageErrorf("nothing to change: give --billing-account ID (or --billing-account \"\" to clear it)")
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			p, err := c.UpdatePartner(cmd.Context(), args[0], ureq)
			if err != nil {
				return staffErr(err)
			}
			return app.render(p, func(w io.Writer) error { return printPartner(w, p) })
		},
	}
	update.Flags().StringVar(&billingAccount, "billing-account", "", "the partner's own account id in billing; \"\" clears it")

	statusCmd := func(use, short string, call func(*client.Client, *cobra.Command, string, string) (store.Partner, error)) *cobra.Command {
		var reason string
		c := &cobra.Command{
			Use:     use + " CODE",
			Short:   short,
			Example: "  switchboard registry partner " + use + " K7QM-4XJD-R --reason \"checked\"",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := staff.client()
				if err != nil {
					return err
				}
				p, err := call(c, cmd, args[0], reason)
				if err != nil {
					return staffErr(err)
				}
				return app.render(p, func(w io.Writer) error { return printPartner(w, p) })
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "why (kept with the partner)")
		return c
	}
	approve := statusCmd("approve", "Approve a partner: installs can link to its code, the directory lists it",
		func(c *client.Client, cmd *cobra.Command, code, reason string) (store.Partner, error) {
			return c.ApprovePartner(cmd.Context(), code, reason)
		})
	suspend := statusCmd("suspend", "Suspend a partner: new installs activate unlinked, the directory hides it",
		func(c *client.Client, cmd *cobra.Command, code, reason string) (store.Partner, error) {
			return c.SuspendPartner(cmd.Context(), code, reason)
		})

	var listTier, listStatus string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List partners and referrals",
		Example: "  switchboard registry partner list --tier partner --status pending",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			ps, err := c.ListPartners(cmd.Context(), store.Tier(listTier), store.PartnerStatus(listStatus))
			if err != nil {
				return staffErr(err)
			}
			if ps == nil {
				ps = []store.Partner{}
			}
			return app.render(ps, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CODE\tTIER\tSTATUS\tNAME\tEMAIL")
				for _, p := range ps {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", p.Code, p.Tier, p.Status, p.Name, p.Email)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&listTier, "tier", "", "only partner or referral")
	list.Flags().StringVar(&listStatus, "status", "", "only pending, approved or suspended")

	show := &cobra.Command{
		Use:     "show CODE",
		Short:   "Show one partner",
		Example: "  switchboard registry partner show K7QM-4XJD-R --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			p, err := c.GetPartner(cmd.Context(), args[0])
			if err != nil {
				return staffErr(err)
			}
			return app.render(p, func(w io.Writer) error { return printPartner(w, p) })
		},
	}
	cmd.AddCommand(add, update, approve, suspend, list, show, newPartnerChannelCommand(app, staff))
	return cmd
}

func printPartner(w io.Writer, p store.Partner) error {
	_, err := fmt.Fprintf(w, "code:    %s\nname:    %s\nemail:   %s\ntier:    %s\nstatus:  %s\n", p.Code, p.Name, p.Email, p.Tier, p.Status)
	if err == nil && p.ParentCode != "" {
		_, err = fmt.Fprintf(w, "parent:  %s\n", p.ParentCode)
	}
	if err == nil && p.BillingAccount != "" {
		_, err = fmt.Fprintf(w, "billing: %s\n", p.BillingAccount)
	}
	if err == nil && p.StatusReason != "" {
		_, err = fmt.Fprintf(w, "reason:  %s\n", p.StatusReason)
	}
	return err
}

func newRegistryInstallsCommand(app *App, staff *staffFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "installs",
		Aliases: []string{"install"},
		Short:   "List and inspect installs, move an install to another partner",
		Long: `Every activated install with its liveness: active (heartbeat within
--stale-after of the registry), stale, dead (nothing for --dead-after) or
deactivated (uninstalled). Installs whose key reports from two machines are
flagged cloned.`,
	}
	staff.add(cmd)
	var q client.InstallQuery
	list := &cobra.Command{
		Use:     "list",
		Short:   "List installs",
		Example: "  switchboard registry installs list --status stale --partner K7QM-4XJD-R",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if q.Status != "" {
				if _, ok := adminapi.ParseLiveness(q.Status); !ok {
					return usageErrorf("--status must be active, stale, dead or deactivated, not %q", q.Status)
				}
			}
			c, err := staff.client()
			if err != nil {
				return err
			}
			ins, err := c.ListInstalls(cmd.Context(), q)
			if err != nil {
				return staffErr(err)
			}
			if ins == nil {
				ins = []adminapi.InstallView{}
			}
			return app.render(ins, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tLIVENESS\tPARTNER\tHOST\tLAST SEEN\tREPORTS\tFLAGS")
				for _, in := range ins {
					seen := "never"
					if !in.LastSeen.IsZero() {
						seen = in.LastSeen.Format(time.RFC3339)
					}
					flags := ""
					if in.Cloned {
						flags = "CLONED"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", in.ID, in.Liveness, dash(in.PartnerCode), dash(in.Facts.Hostname), seen, in.ReportCount, flags)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&q.Status, "status", "", "only active, stale, dead or deactivated")
	list.Flags().StringVar(&q.Partner, "partner", "", "only installs linked to this code")
	list.Flags().BoolVar(&q.Cloned, "cloned", false, "only installs flagged as cloned")

	show := &cobra.Command{
		Use:     "show ID",
		Short:   "Show one install with its audit trail",
		Example: "  switchboard registry installs show iabc… --output json",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := staff.client()
			if err != nil {
				return err
			}
			d, err := c.GetInstall(cmd.Context(), args[0])
			if err != nil {
				return staffErr(err)
			}
			return app.render(d, func(w io.Writer) error { return printInstall(w, d) })
		},
	}
	var move adminapi.MoveRequest
	moveCmd := &cobra.Command{
		Use:   "move ID CODE",
		Short: "Move an install to another partner (staff only, recorded with who and why)",
		Long: `A link is permanent for installs and partners; only staff move it, and the
move is kept in the install's audit trail with who did it and why. Give ""
as CODE to unlink. The install receives a licence with the new code on its
next heartbeat.`,
		Example: `  switchboard registry installs move iabc… K7QM-4XJD-R --why "customer changed integrator, ticket 4711"`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(move.Why) == "" {
				return usageErrorf("--why is required: it is kept in the install's audit trail")
			}
			if move.By == "" {
				move.By = whoAmI()
			}
			move.PartnerCode = args[1]
			c, err := staff.client()
			if err != nil {
				return err
			}
			v, err := c.MoveInstall(cmd.Context(), args[0], move)
			if err != nil {
				return staffErr(err)
			}
			return app.render(v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "install %s now linked to %s (by %s: %s)\n", v.ID, dash(v.PartnerCode), move.By, move.Why)
				return err
			})
		},
	}
	moveCmd.Flags().StringVar(&move.Why, "why", "", "reason for the move (required)")
	moveCmd.Flags().StringVar(&move.By, "by", "", "who moves it (default: user@host)")
	cmd.AddCommand(list, show, moveCmd)
	return cmd
}

func printInstall(w io.Writer, d adminapi.InstallDetail) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "id:\t%s\nliveness:\t%s\npartner:\t%s %s\nhost:\t%s (%s)\nactivated:\t%s\nlast seen:\t%s\nreports:\t%d (max seq %d)\nseats:\t%v\nlicence:\t%s until %s\n",
		d.ID, d.Liveness, dash(d.PartnerCode), d.PartnerTier, dash(d.Facts.Hostname), d.Facts.MachineID,
		d.ActivatedAt.Format(time.RFC3339), d.LastSeen.Format(time.RFC3339), d.ReportCount, d.MaxSeq, d.Seats,
		dash(d.Licence.ID), d.Licence.NotAfter.Format(time.RFC3339))
	if d.Cloned {
		fmt.Fprintf(tw, "CLONED:\t%s (since %s, %d conflicting reports)\n", d.CloneReason, d.ClonedAt.Format(time.RFC3339), d.ConflictCount)
	}
	for _, e := range d.Events {
		fmt.Fprintf(tw, "event:\t%s %s %s→%s %s %s\n", e.At.Format(time.RFC3339), e.Kind, dash(e.From), dash(e.To), e.By, e.Why)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func whoAmI() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	if h, err := os.Hostname(); err == nil {
		name += "@" + h
	}
	return name
}
