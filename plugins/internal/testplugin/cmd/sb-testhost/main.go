// Command sb-testhost is a minimal plugin host for the orphan tests: it
// supervises one plugin, prints "ready PID" (the plugin's pid) once the
// plugin is healthy, and then waits to be killed. The test SIGKILLs it and
// checks that the plugin does not survive it.
//
//	sb-testhost -plugin PATH [-args "a b"] [-no-pdeathsig] [-no-lifeline]
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

func main() {
	path := flag.String("plugin", "", "plugin binary")
	args := flag.String("args", "", "plugin arguments, space separated")
	noPdeathsig := flag.Bool("no-pdeathsig", false, "do not set the parent-death signal")
	noLifeline := flag.Bool("no-lifeline", false, "do not pass a lifeline pipe")
	flag.Parse()

	sum, err := host.FileSHA256(*path)
	if err != nil {
		fail(err)
	}
	e := host.Entry{Name: "orphan", Kind: plugins.KindIntegration, Path: *path, SHA256: sum, Args: strings.Fields(*args)}
	sup, err := host.NewSupervisor(e, host.Options{
		Logger:           hclog.New(&hclog.LoggerOptions{Name: "sb-testhost", Output: os.Stderr, Level: hclog.Warn}),
		DisablePdeathsig: *noPdeathsig,
		DisableLifeline:  *noLifeline,
	})
	if err != nil {
		fail(err)
	}
	sup.Start()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := sup.Status()
		if st.State == host.StateHealthy {
			fmt.Printf("ready %d\n", st.PID)
			break
		}
		if time.Now().After(deadline) {
			fail(fmt.Errorf("plugin not healthy: %s", st.Summary(time.Now())))
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {} // until killed
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sb-testhost:", err)
	os.Exit(1)
}
