package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/internal/hbbench"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/client"
)

func newBenchCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load generators that measure the registry",
		Long: `Load generators for the figures in BENCHMARKS.md. 'bench heartbeats' drives a
registry (or the no-op server, for the machine's ceiling) with signed
heartbeat batches; 'bench noop-server' is that no-op server.`,
	}
	cmd.AddCommand(newBenchHeartbeatsCommand(app), newBenchNoopCommand(app))
	return cmd
}

func newBenchHeartbeatsCommand(app *App) *cobra.Command {
	var o hbbench.Options
	var dataDir string
	var ceiling float64
	cmd := &cobra.Command{
		Use:   "heartbeats",
		Short: "Send signed heartbeats from N simulated installs and verify they are stored once",
		Long: `Activate N simulated installs against the registry, then send signed report
batches for --duration (--batch reports per request; each install on its
own connection with one request in flight, as agents are; --concurrency
installs at a time) and print reports/s, requests/s and p50/p99 latency,
with the CPU the client and the registry spent. Afterwards every acknowledged report is
checked through the staff API to be stored exactly once (needs the admin
token: --token, $SWITCHBOARD_ADMIN_TOKEN or --data DIR); a failed check exits 1.

--noop drives a 'bench noop-server' with the same client to measure the
ceiling; --ceiling R prints the ratio of this run to a ceiling of R reports/s.

The text output is one line of key=value pairs, so scripts can pick figures.`,
		Example: `  switchboard bench heartbeats --registry http://127.0.0.1:8420 --data ./registry-data --installs 200 --duration 10s
  switchboard bench heartbeats --registry http://127.0.0.1:9000 --noop --duration 10s --batch 100`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.Registry == "" {
				o.Registry = os.Getenv(envRegistryURL)
			}
			if dataDir != "" {
				if err := registry.CheckDataDir(dataDir); err != nil {
					return failed(err)
				}
			}
			if dataDir != "" && o.Registry == "" {
				if addr, err := registry.ReadAddrFile(dataDir); err == nil {
					o.Registry = "http://" + addr
				}
			}
			if o.Registry == "" {
				return usageErrorf("--registry URL is required")
			}
			if o.Installs < 1 || o.Batch < 1 || o.Duration <= 0 {
				return usageErrorf("--installs, --batch and --duration must be positive")
			}
			if o.AdminToken == "" {
				o.AdminToken = os.Getenv(envAdminToken)
			}
			if o.AdminToken == "" && dataDir != "" {
				b, err := os.ReadFile(filepath.Join(dataDir, registry.AdminTokenFile))
				if err != nil {
					return failed(fmt.Errorf("read admin token: %w", err))
				}
				o.AdminToken = strings.TrimSpace(string(b))
			}
			if !o.Noop && o.AdminToken == "" {
				return usageErrorf("verifying needs the admin token: pass --token, --data DIR or set %s", envAdminToken)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := hbbench.Run(ctx, o)
			ratio := 0.0
			if ceiling > 0 {
				ratio = res.ReportsPerSec / ceiling
			}
			out := struct {
				hbbench.Result
				CeilingRatio float64 `json:"ceiling_ratio,omitempty"`
			}{res, ratio}
			if rerr := app.render(out, func(w io.Writer) error {
				line := fmt.Sprintf("heartbeats mode=%s batch=%d installs=%d concurrency=%d reports_per_s=%.0f requests_per_s=%.0f p50_ms=%.2f p99_ms=%.2f acked_reports=%d failed_requests=%d verified=%s",
					res.Mode, res.Batch, res.Installs, res.Concurrency, res.ReportsPerSec, res.RequestsPerSec, res.P50Ms, res.P99Ms, res.Reports, res.Failed, strings.ReplaceAll(res.Verified, " ", "_"))
				line += fmt.Sprintf(" client_cpu_us_per_request=%.0f", res.ClientCPUMicrosPerRequest)
				if res.ServerCPUMicrosPerReport > 0 {
					line += fmt.Sprintf(" server_cpu_us_per_report=%.1f", res.ServerCPUMicrosPerReport)
				}
				if ceiling > 0 {
					line += fmt.Sprintf(" ceiling_ratio=%.3f", ratio)
				}
				_, err := fmt.Fprintln(w, line)
				return err
			}); rerr != nil {
				return rerr
			}
			if err != nil {
				if client.IsUnreachable(err) {
					return unreachable(err)
				}
				return failed(err)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Registry, "registry", "", "registry URL (default $"+envRegistryURL+")")
	f.IntVar(&o.Installs, "installs", 200, "simulated installs")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "how long to send")
	f.IntVar(&o.Batch, "batch", 1, "reports per request")
	f.IntVar(&o.Concurrency, "concurrency", 0, fmt.Sprintf("installs sending at a time, one request in flight each (0: every install, up to %d)", hbbench.MaxConcurrency))
	f.BoolVar(&o.Noop, "noop", false, "the target is 'bench noop-server': no activation, no verification")
	f.StringVar(&o.AdminToken, "token", "", "admin token for verification (default $"+envAdminToken+")")
	f.StringVar(&dataDir, "data", "", "registry data directory: admin token and address from it")
	f.Float64Var(&ceiling, "ceiling", 0, "no-op ceiling in reports/s, to print the ratio")
	return cmd
}

func newBenchNoopCommand(app *App) *cobra.Command {
	var listen, addrFile string
	cmd := &cobra.Command{
		Use:   "noop-server",
		Short: "Serve 200 to every request after reading its body (the ceiling for bench heartbeats)",
		Long: `A plain net/http server that reads each request body and answers 200 with a
fixed small JSON body. 'bench heartbeats --noop' against it measures what the
machine manages with no signature check and no storage. Runs until SIGTERM.`,
		Example: `  switchboard bench noop-server --listen 127.0.0.1:0 --addr-file /tmp/noop.addr`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return failed(fmt.Errorf("listen on %s: %w", listen, err))
			}
			if addrFile != "" {
				if err := os.WriteFile(addrFile, []byte(ln.Addr().String()+"\n"), 0o644); err != nil {
					return failed(fmt.Errorf("write %s: %w", addrFile, err))
				}
			}
			if err := app.render(map[string]string{"addr": ln.Addr().String()}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "noop server listening on http://%s\n", ln.Addr())
				return err
			}); err != nil {
				return err
			}
			srv := &http.Server{Handler: hbbench.NoopHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
				return failed(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on")
	cmd.Flags().StringVar(&addrFile, "addr-file", "", "write the bound address to this file")
	return cmd
}
