// Package e2e holds the end-to-end test of the whole Switchboard path with
// real processes, the same path `make demo` (scripts/demo.sh) shows: the
// registry, the ARI and Odoo emulators, an approved partner, the download
// link, the installer into a sandbox root, the agent with the Asterisk and
// Odoo adapters as plugin processes, and a registry restart survived.
//
// The package has no code of its own: run it with
//
//	go test ./internal/e2e/
//
// It builds the switchboard binary once, needs Linux (/proc, process groups)
// and is skipped under -short.
package e2e
