package agent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

func TestHostPluginsWithoutManifest(t *testing.T) {
	ps, err := NewHostPlugins(config.Plugins{Manifest: filepath.Join(t.TempDir(), "none.json")}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	// No plugins now; the set stays a host so a reload can add some later.
	if _, ok := ps.(*HostPlugins); !ok || len(ps.Health()) != 0 || len(ps.Status()) != 0 {
		t.Fatalf("want an empty *HostPlugins, got %T %+v", ps, ps.Health())
	}
}

func TestHostPluginsChecksumMismatchIsUnhealthyNotFatal(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "fake-plugin")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	m := host.NewManifest()
	e := host.Entry{Name: "asterisk", Kind: plugins.KindIntegration, Path: exe,
		SHA256: strings.Repeat("0", 64), Settings: map[string]string{"url": "x"}}
	if err := m.Put(e); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plugins.json")
	if err := m.Save(path); err != nil {
		t.Fatal(err)
	}
	ps, err := NewHostPlugins(config.Plugins{Manifest: path}, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		h := ps.Health()
		if len(h) == 1 && h[0].State == string(host.StateRefused) {
			if h[0].Healthy || h[0].Detail == "" {
				t.Fatalf("refused plugin health: %+v", h[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugin never refused: %+v", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	obs := ps.Observe(ctx)
	if len(obs.Plugins) != 1 || obs.Plugins[0].Healthy || len(obs.Products) != 0 {
		t.Fatalf("observation %+v", obs)
	}
}

// TestHostPluginsReconfigureManifest: a reload re-reads the manifest; an
// invalid one keeps the running set, a missing entry is stopped, a new one
// is supervised. (The real-process test in plugin_process_test.go checks
// PIDs: unchanged plugins keep running, changed ones restart.)
func TestHostPluginsReconfigureManifest(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "fake-plugin")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "plugins.json")
	save := func(names ...string) {
		t.Helper()
		m := host.NewManifest()
		for _, n := range names {
			if err := m.Put(host.Entry{Name: n, Kind: plugins.KindIntegration, Path: exe, SHA256: strings.Repeat("0", 64)}); err != nil {
				t.Fatal(err)
			}
		}
		if err := m.Save(path); err != nil {
			t.Fatal(err)
		}
	}
	names := func(ps PluginSet) string {
		var n []string
		for _, h := range ps.Status() {
			n = append(n, h.Name)
		}
		return strings.Join(n, ",")
	}
	save("alpha", "beta")
	cfg := config.Plugins{Manifest: path}
	ps, err := NewHostPlugins(cfg, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	if got := names(ps); got != "alpha,beta" {
		t.Fatalf("plugins %q", got)
	}
	ctx := context.Background()
	if err := os.WriteFile(path, []byte(`{"version": 1, "plugins": [{"name": "x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ps.Reconfigure(ctx, cfg); err == nil || !strings.Contains(err.Error(), "plugins.manifest") {
		t.Fatalf("broken manifest: %v", err)
	}
	if got := names(ps); got != "alpha,beta" {
		t.Fatalf("after a broken manifest: %q", got)
	}
	save("beta", "gamma")
	if err := ps.Reconfigure(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if got := names(ps); got != "beta,gamma" {
		t.Fatalf("after the new manifest: %q", got)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := ps.Reconfigure(ctx, cfg); err != nil || names(ps) != "" {
		t.Fatalf("manifest removed: %v %q", err, names(ps))
	}
}
