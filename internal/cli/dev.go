package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/internal/emulator/ari"
	"github.com/switchboard-dev/switchboard/internal/emulator/odoo"
)

func newDevCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Developer tools: run the Asterisk and Odoo emulators locally",
		Long: `Tools for developing and demonstrating switchboard on a machine without a
PBX or an ERP. 'dev emulate' runs a protocol-faithful emulator of Asterisk's
REST Interface (ARI) or of Odoo's external API on loopback, the same servers
the test suite and 'make demo' use.`,
	}
	cmd.AddCommand(newDevEmulateCommand(app))
	return cmd
}

// emulateFlags are the flags of 'dev emulate'.
type emulateFlags struct {
	listen        string
	allowRemote   bool
	user          string
	password      string
	db            string
	apiKey        string
	version       string
	edition       string
	disableXMLRPC bool
	endpoints     []string
}

// emulatorInfo is what 'dev emulate' prints once the emulator listens.
type emulatorInfo struct {
	Product      string   `json:"product"`
	URL          string   `json:"url"`
	WebsocketURL string   `json:"websocket_url,omitempty"`
	ControlURL   string   `json:"control_url,omitempty"`
	XMLRPCURLs   []string `json:"xmlrpc_urls,omitempty"`
	JSON2URL     string   `json:"json2_url,omitempty"`
	Database     string   `json:"database,omitempty"`
	User         string   `json:"user"`
	Password     string   `json:"password"`
	APIKey       string   `json:"api_key,omitempty"`
	Version      string   `json:"version"`
	Edition      string   `json:"edition,omitempty"`
	Endpoints    []string `json:"endpoints,omitempty"`
}

func newDevEmulateCommand(app *App) *cobra.Command {
	var f emulateFlags
	cmd := &cobra.Command{
		Use:       "emulate asterisk|odoo",
		Short:     "Run an Asterisk (ARI) or Odoo (XML-RPC, JSON-2) emulator until interrupted",
		ValidArgs: []string{"asterisk", "odoo"},
		Long: `Run an emulator on loopback until SIGINT or SIGTERM, printing its URLs and
credentials first.

asterisk  ARI over HTTP under /ari (Basic auth or ?api_key=user:password) and
          the events websocket /ari/events?app=NAME. Defaults: 127.0.0.1:8088,
          user asterisk, password asterisk, Asterisk 20.15.0. Test controls
          live under /_emulator/ without authentication, for example:
            curl -X POST localhost:8088/_emulator/endpoints \
                 -d '{"technology":"PJSIP","resource":"100","state":"online"}'
            curl -X POST localhost:8088/_emulator/channels -d '{"endpoint":"PJSIP/100"}'
            curl -X POST localhost:8088/_emulator/events -d '{"type":"ChannelTransfer"}'
            curl -X POST localhost:8088/_emulator/websockets/drop
            curl -X POST 'localhost:8088/_emulator/stall?for=30s'
            curl -X POST 'localhost:8088/_emulator/restart?down=2s'
            curl localhost:8088/_emulator/state

odoo      XML-RPC at /xmlrpc/2/common, /xmlrpc/2/object, /xmlrpc/2/db (and the
          legacy /xmlrpc/... aliases); on version 19 also JSON-2 at
          /json/2/<model>/<method> with 'Authorization: bearer <api key>'.
          Defaults: 127.0.0.1:8069, database demo, login admin, password and
          API key admin, Odoo 17 Community.

The emulators keep everything in memory; nothing is written to disk. They
refuse to listen beyond loopback unless --allow-remote is given, because the
control endpoints and the default credentials are not meant for a network.`,
		Example: `  switchboard dev emulate asterisk
  switchboard dev emulate asterisk --listen 127.0.0.1:8088 --endpoint PJSIP/100 --endpoint PJSIP/101=offline
  switchboard dev emulate asterisk --user ari --password s3cret --version 22.5.0
  switchboard dev emulate odoo --listen 127.0.0.1:8069 --version 18 --edition enterprise
  switchboard dev emulate odoo --version 19 --api-key 0123abcd --disable-xmlrpc
  switchboard dev emulate odoo --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			switch args[0] {
			case "asterisk":
				return runAsteriskEmulator(ctx, app, cmd, f)
			case "odoo":
				return runOdooEmulator(ctx, app, cmd, f)
			}
			return usageErrorf("unknown emulator %q: use asterisk or odoo", args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "address to listen on (default 127.0.0.1:8088 for asterisk, 127.0.0.1:8069 for odoo; port 0 picks a free one)")
	fl.BoolVar(&f.allowRemote, "allow-remote", false, "allow a listen address beyond loopback (the emulators have unauthenticated controls)")
	fl.StringVar(&f.user, "user", "", "ARI user (default asterisk) or Odoo administrator login (default admin)")
	fl.StringVar(&f.password, "password", "", "ARI password (default asterisk) or Odoo administrator password (default admin)")
	fl.StringVar(&f.db, "db", "", "odoo: database name (default demo)")
	fl.StringVar(&f.apiKey, "api-key", "", "odoo: the administrator's API key (default admin)")
	fl.StringVar(&f.version, "version", "", "Asterisk version like 20.15.0 (default), 18.20.0, 22.5.0; or Odoo major version 16, 17 (default), 18, 19")
	fl.StringVar(&f.edition, "edition", "", "odoo: community (default) or enterprise")
	fl.BoolVar(&f.disableXMLRPC, "disable-xmlrpc", false, "odoo 19: answer /xmlrpc with 404, as without the rpc module")
	fl.StringArrayVar(&f.endpoints, "endpoint", nil, "asterisk: an endpoint to create, TECH/RESOURCE[=online|offline|unknown] (repeatable)")
	_ = cmd.RegisterFlagCompletionFunc("edition", fixedCompletion(odoo.Community, odoo.Enterprise))
	return cmd
}

// checkListen refuses addresses beyond loopback unless allowed.
func checkListen(addr string, allowRemote bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErrorf("--listen %q is not HOST:PORT (e.g. 127.0.0.1:8088): %v", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return usageErrorf("--listen %q: port %q is not a number from 0 to 65535", addr, port)
	}
	if allowRemote {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return usageErrorf("--listen %q is not a loopback address: use 127.0.0.1 or [::1], or add --allow-remote if you really want the emulator reachable from the network", addr)
}

// onlyFor rejects flags that belong to the other emulator.
func onlyFor(cmd *cobra.Command, product string, names ...string) error {
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return usageErrorf("--%s applies to the other emulator, not to %s", n, product)
		}
	}
	return nil
}

func runAsteriskEmulator(ctx context.Context, app *App, cmd *cobra.Command, f emulateFlags) error {
	if err := onlyFor(cmd, "asterisk", "db", "api-key", "edition", "disable-xmlrpc"); err != nil {
		return err
	}
	if f.listen == "" {
		f.listen = "127.0.0.1:8088"
	}
	if err := checkListen(f.listen, f.allowRemote); err != nil {
		return err
	}
	if f.version != "" {
		var major, minor, patch int
		if n, _ := fmt.Sscanf(f.version, "%d.%d.%d", &major, &minor, &patch); n != 3 || major < 13 {
			return usageErrorf("--version %q is not an Asterisk version like 20.15.0", f.version)
		}
	}
	type ep struct{ tech, res, state string }
	var eps []ep
	for _, spec := range f.endpoints {
		name, state, hasState := strings.Cut(spec, "=")
		if !hasState {
			state = "online"
		}
		tech, res, ok := strings.Cut(name, "/")
		if !ok || tech == "" || res == "" {
			return usageErrorf("--endpoint %q is not TECH/RESOURCE[=STATE] (e.g. PJSIP/100=online)", spec)
		}
		switch state {
		case "online", "offline", "unknown":
		default:
			return usageErrorf("--endpoint %q: state must be online, offline or unknown", spec)
		}
		eps = append(eps, ep{tech, res, state})
	}
	srv := ari.New(ari.Options{User: f.user, Password: f.password, Version: f.version, Logger: app.Log.Named("ari-emulator")})
	for _, e := range eps {
		if err := srv.AddEndpoint(e.tech, e.res, e.state); err != nil {
			return usageErrorf("--endpoint %s/%s: %v", e.tech, e.res, err)
		}
	}
	if err := srv.Listen(f.listen); err != nil {
		return failed(err)
	}
	defer func() { _ = srv.Close() }()
	info := emulatorInfo{Product: "asterisk", URL: srv.URL(), WebsocketURL: srv.WebsocketURL(),
		ControlURL: "http://" + srv.Addr() + ari.ControlPrefix, User: orDefault(f.user, ari.DefaultUser),
		Password: orDefault(f.password, ari.DefaultPassword), Version: orDefault(f.version, ari.DefaultVersion)}
	for _, e := range eps {
		info.Endpoints = append(info.Endpoints, e.tech+"/"+e.res)
	}
	return serveUntilDone(ctx, app, info)
}

func runOdooEmulator(ctx context.Context, app *App, cmd *cobra.Command, f emulateFlags) error {
	if err := onlyFor(cmd, "odoo", "endpoint"); err != nil {
		return err
	}
	if f.listen == "" {
		f.listen = "127.0.0.1:8069"
	}
	if err := checkListen(f.listen, f.allowRemote); err != nil {
		return err
	}
	version := 0
	if f.version != "" {
		v, err := strconv.Atoi(strings.TrimSuffix(f.version, ".0"))
		if err != nil || v < 16 || v > 19 {
			return usageErrorf("--version %q: the Odoo emulator speaks 16, 17, 18 or 19", f.version)
		}
		version = v
	}
	switch f.edition {
	case "", odoo.Community, odoo.Enterprise:
	default:
		return usageErrorf("--edition %q: use community or enterprise", f.edition)
	}
	if f.disableXMLRPC && version != 19 {
		return usageErrorf("--disable-xmlrpc needs --version 19 (only Odoo 19 can run without XML-RPC)")
	}
	srv, err := odoo.New(odoo.Options{Version: version, Edition: f.edition, Database: f.db, AdminLogin: f.user,
		AdminPassword: f.password, AdminAPIKey: f.apiKey, DisableXMLRPC: f.disableXMLRPC, Logger: app.Log.Named("odoo-emulator")})
	if err != nil {
		return usageErrorf("%v", err)
	}
	if err := srv.Listen(f.listen); err != nil {
		return failed(err)
	}
	defer func() { _ = srv.Close() }()
	o := srv.Options()
	info := emulatorInfo{Product: "odoo", URL: srv.URL(), Database: o.Database, User: o.AdminLogin, Password: o.AdminPassword,
		APIKey: o.AdminAPIKey, Version: strconv.Itoa(o.Version) + ".0", Edition: o.Edition}
	if !o.DisableXMLRPC {
		info.XMLRPCURLs = []string{srv.URL() + "/xmlrpc/2/common", srv.URL() + "/xmlrpc/2/object"}
	}
	if o.Version >= 19 {
		info.JSON2URL = srv.URL() + "/json/2/<model>/<method>"
	}
	return serveUntilDone(ctx, app, info)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// serveUntilDone announces the emulator and waits for a signal.
func serveUntilDone(ctx context.Context, app *App, info emulatorInfo) error {
	args := []any{"url", info.URL, "user", info.User, "password", info.Password, "version", info.Version}
	if info.WebsocketURL != "" {
		args = append(args, "websocket_url", info.WebsocketURL, "control_url", info.ControlURL)
	}
	if info.Database != "" {
		args = append(args, "database", info.Database, "api_key", info.APIKey, "edition", info.Edition)
	}
	app.Log.Info(info.Product+" emulator running; stop with Ctrl-C", args...)
	err := app.render(info, func(w io.Writer) error {
		lines := []string{fmt.Sprintf("%s emulator listening", info.Product), "url:           " + info.URL}
		if info.WebsocketURL != "" {
			lines = append(lines, "websocket url: "+info.WebsocketURL, "controls:      "+info.ControlURL)
		}
		for _, u := range info.XMLRPCURLs {
			lines = append(lines, "xml-rpc:       "+u)
		}
		if info.JSON2URL != "" {
			lines = append(lines, "json-2:        "+info.JSON2URL)
		}
		if info.Database != "" {
			lines = append(lines, "database:      "+info.Database)
		}
		lines = append(lines, "user:          "+info.User, "password:      "+info.Password)
		if info.APIKey != "" {
			lines = append(lines, "api key:       "+info.APIKey)
		}
		lines = append(lines, "version:       "+info.Version)
		if info.Edition != "" {
			lines = append(lines, "edition:       "+info.Edition)
		}
		_, err := fmt.Fprintln(w, strings.Join(lines, "\n"))
		return err
	})
	if err != nil {
		return failed(err)
	}
	<-ctx.Done()
	app.Log.Info(info.Product + " emulator stopping")
	return nil
}
