// Command sb-testplugin serves the test plugin (package testplugin) as a
// real go-plugin process for the host's tests and benchmarks.
//
//	sb-testplugin [-kind integration|support_channel] [-mode-file PATH] [-protocol N]
//	sb-testplugin -bare-grpc SOCKET
//
// -protocol makes it speak another plugin protocol version, the way an
// old or too new plugin build would.
//
// -bare-grpc serves the Integration contract with plain gRPC (no go-plugin,
// no TLS, the plugin transport settings) on the unix socket SOCKET until
// its stdin reaches EOF: the "bare gRPC in another process" reference of
// the host benchmarks.
//
// With SB_TESTPLUGIN_CPUPROFILE=FILE in its environment it writes a CPU
// profile of its whole life to FILE, for profiling the plugin side of a
// round trip (see the host benchmarks). The host passes its environment on,
// so set it on `go test -bench`.
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/pprof"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/internal/testplugin"
)

func main() {
	kind := flag.String("kind", string(plugins.KindIntegration), "integration or support_channel")
	modeFile := flag.String("mode-file", "", "file holding the misbehaviour to show")
	protocol := flag.Int("protocol", plugins.ProtocolVersion, "plugin protocol version to speak")
	bareSocket := flag.String("bare-grpc", "", "serve plain gRPC on this unix socket until stdin closes")
	flag.Parse()

	p := testplugin.New(*modeFile)
	if *bareSocket != "" {
		if err := serveBare(*bareSocket, p); err != nil {
			fmt.Fprintln(os.Stderr, "sb-testplugin:", err)
			os.Exit(1)
		}
		return
	}
	if mode, _ := p.Mode(); mode == testplugin.ModeCrashOnStart {
		fmt.Fprintln(os.Stderr, "sb-testplugin: crashing at start as asked")
		os.Exit(testplugin.CrashExitCode)
	}

	var impl any
	switch plugins.Kind(*kind) {
	case plugins.KindIntegration:
		impl = struct{ plugins.Integration }{p} // serve this contract only
	case plugins.KindSupportChannel:
		impl = struct{ plugins.SupportChannel }{p}
	default:
		fmt.Fprintf(os.Stderr, "sb-testplugin: unknown kind %q\n", *kind)
		os.Exit(2)
	}

	if path := os.Getenv("SB_TESTPLUGIN_CPUPROFILE"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "sb-testplugin:", err)
			os.Exit(1)
		}
		defer stop()
	}

	if *protocol == plugins.ProtocolVersion {
		if err := plugins.Serve("testplugin", impl); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	// Impersonate a build for another protocol version.
	logger := plugins.NewLogger("testplugin")
	cfg, err := plugins.ServeConfig(impl, logger)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg.VersionedPlugins = map[int]plugin.PluginSet{*protocol: cfg.VersionedPlugins[plugins.ProtocolVersion]}
	plugins.WatchParent(logger, os.Exit)
	plugin.Serve(cfg)
}

// serveBare serves p's Integration contract with plain gRPC on the unix
// socket path until stdin reaches EOF (the benchmark closes it, or dies).
func serveBare(path string, p *testplugin.Plugin) error {
	lis, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("bare gRPC: %w", err)
	}
	srv := grpc.NewServer(plugins.ServerOptions()...)
	plugins.RegisterIntegrationServer(srv, p)
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		srv.Stop()
	}()
	if err := srv.Serve(lis); err != nil {
		return fmt.Errorf("bare gRPC: %w", err)
	}
	return nil
}

// startCPUProfile profiles into path (one file per process: the pid is
// appended) until the returned stop is called, which happens when the host
// stops the plugin gracefully and Serve returns.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(fmt.Sprintf("%s.%d", path, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
