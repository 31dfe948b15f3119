// Command agentbench prints the agent's figures for `make bench` (see
// scripts/bench.sh): one key=value line per figure.
//
//	agentbench -switchboard ./switchboard idle  [-duration 10s]
//	agentbench -switchboard ./switchboard drain [-reports 100000] [-batch N]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/internal/agentbench"
)

func main() {
	bin := flag.String("switchboard", "", "the switchboard binary to run (required)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: agentbench -switchboard PATH idle [-duration 10s] [-settle 3s]\n       agentbench -switchboard PATH drain [-reports 100000] [-batch N]\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *bin == "" || flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var line string
	var err error
	switch flag.Arg(0) {
	case "idle":
		fs := flag.NewFlagSet("idle", flag.ExitOnError)
		d := fs.Duration("duration", 10*time.Second, "idle stretch to sample")
		settle := fs.Duration("settle", 3*time.Second, "wait after the plugins are healthy before sampling")
		_ = fs.Parse(flag.Args()[1:])
		var r agentbench.IdleResult
		r, err = agentbench.Idle(ctx, agentbench.IdleOptions{Switchboard: *bin, Duration: *d, Settle: *settle, Progress: os.Stderr})
		line = "agent idle with asterisk+odoo plugins: " + r.String()
	case "drain":
		fs := flag.NewFlagSet("drain", flag.ExitOnError)
		n := fs.Int("reports", 100_000, "backlog size")
		batch := fs.Int("batch", 0, "sender.batch_size (0: the agent's default)")
		_ = fs.Parse(flag.Args()[1:])
		var r agentbench.DrainResult
		r, err = agentbench.Drain(ctx, agentbench.DrainOptions{Switchboard: *bin, Reports: *n, BatchSize: *batch, Progress: os.Stderr})
		line = "agent outbox drain into a real registry: " + r.String()
	default:
		fmt.Fprintf(os.Stderr, "agentbench: unknown figure %q: use idle or drain\n", flag.Arg(0))
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agentbench:", err)
		os.Exit(1)
	}
	fmt.Println(line)
}
