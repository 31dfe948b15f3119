// Command switchboard is the one binary of Switchboard: installer, agent
// daemon, registry service, plugin host and built-in plugins.
package main

import "github.com/switchboard-dev/switchboard/internal/cli"

func main() { cli.Main() }
