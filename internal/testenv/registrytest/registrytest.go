// Package registrytest serves a registry in-process for tests that talk
// to its HTTP API without running the switchboard binary: a fresh data
// directory, its bbolt store and registry.Server behind httptest on
// loopback.
//
// It is imported only from _test.go files; production code must not use it.
package registrytest

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

// Server is a registry served for one test.
type Server struct {
	URL        string
	AdminToken string
	Data       string // its data directory, in tb.TempDir()
	Registry   *registry.Server
}

// Start prepares a data directory, opens its store and serves the
// registry with registry.DefaultConfig, changed by tweak when it is not
// nil. The test's cleanup closes the server and then the store; an error
// closing the store fails the test.
func Start(tb testing.TB, tweak func(*registry.Config)) *Server {
	tb.Helper()
	data := tb.TempDir()
	setup, err := registry.Prepare(data)
	if err != nil {
		tb.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(data, registry.StoreFile), boltstore.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := registry.DefaultConfig()
	cfg.DataDir = data
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := registry.New(cfg, st, setup.Keys, setup.AdminToken, nil)
	if err != nil {
		_ = st.Close()
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	tb.Cleanup(func() {
		hs.Close()
		if err := st.Close(); err != nil {
			tb.Error(err)
		}
	})
	return &Server{URL: hs.URL, AdminToken: setup.AdminToken, Data: data, Registry: srv}
}
