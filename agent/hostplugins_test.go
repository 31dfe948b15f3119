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
	if _, ok := ps.(NoPlugins); !ok {
		t.Fatalf("want NoPlugins, got %T", ps)
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
