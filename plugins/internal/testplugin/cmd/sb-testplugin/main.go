// Command sb-testplugin serves the test plugin (package testplugin) as a
// real go-plugin process for the host's tests and benchmarks.
//
//	sb-testplugin [-kind integration|support_channel] [-mode-file PATH] [-protocol N]
//
// -protocol makes it speak another plugin protocol version, the way an
// old or too new plugin build would.
//
// With SB_TESTPLUGIN_CPUPROFILE=FILE in its environment it writes a CPU
// profile of its whole life to FILE, for profiling the plugin side of a
// round trip (see the host benchmarks). The host passes its environment on,
// so set it on `go test -bench`.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/hashicorp/go-plugin"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/internal/testplugin"
)

func main() {
	kind := flag.String("kind", string(plugins.KindIntegration), "integration or support_channel")
	modeFile := flag.String("mode-file", "", "file holding the misbehaviour to show")
	protocol := flag.Int("protocol", plugins.ProtocolVersion, "plugin protocol version to speak")
	flag.Parse()

	p := testplugin.New(*modeFile)
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
