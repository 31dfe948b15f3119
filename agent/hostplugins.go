package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// HostPlugins is the PluginSet of the plugin host: one host.Supervisor
// (checksum-checked start, AutoMTLS, restarts with backoff, per-call
// deadlines) per Integration plugin in the manifest. Settings are the
// manifest entry's, overridden key by key by the config's [plugins.NAME].
type HostPlugins struct {
	log  hclog.Logger
	mu   sync.Mutex
	sups []*host.Supervisor
	base map[string]map[string]string // manifest settings per plugin
	// refused lists entries the host would not even supervise.
	refused []api.PluginHealth
}

// NewHostPlugins starts the Integration plugins of the manifest at
// cfg.Manifest. A missing manifest means no plugins. A plugin that cannot
// start is reported unhealthy; it never stops the agent.
func NewHostPlugins(cfg config.Plugins, log hclog.Logger) (PluginSet, error) {
	m, err := host.LoadManifest(cfg.Manifest)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("no plugin manifest; running without plugins", "manifest", cfg.Manifest)
		return NoPlugins{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("plugins.manifest: %w", err)
	}
	h := &HostPlugins{log: log, base: map[string]map[string]string{}}
	for _, e := range m.Plugins {
		if e.Kind != plugins.KindIntegration {
			continue // support channels are hosted by the registry
		}
		h.base[e.Name] = maps.Clone(e.Settings)
		e.Settings = merged(e.Settings, cfg.Settings[e.Name])
		sup, err := host.NewSupervisor(e, host.Options{Logger: log.Named(e.Name)})
		if err != nil {
			log.Error("plugin refused", "plugin", e.Name, "error", err)
			h.refused = append(h.refused, api.PluginHealth{Name: e.Name, State: string(host.StateRefused), Detail: err.Error()})
			continue
		}
		sup.Start()
		h.sups = append(h.sups, sup)
	}
	return h, nil
}

func merged(base, over map[string]string) map[string]string {
	out := maps.Clone(base)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, over)
	return out
}

func (h *HostPlugins) supervisors() []*host.Supervisor {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*host.Supervisor(nil), h.sups...)
}

func health(st host.Status) api.PluginHealth {
	ph := api.PluginHealth{Name: st.Name, Healthy: st.State == host.StateHealthy, State: string(st.State), Detail: st.Reason}
	if st.Plugin != nil && st.Plugin.Detail != "" && ph.Detail == "" {
		ph.Detail = st.Plugin.Detail
	}
	if o := st.LastOutage; o != nil && ph.Detail == "" && !o.Start.IsZero() {
		ph.Detail = fmt.Sprintf("last outage %s (%s)", o.Start.Format(time.RFC3339), o.Duration(time.Now()).Round(time.Second))
	}
	return ph
}

// Health implements PluginSet.
func (h *HostPlugins) Health() []api.PluginHealth {
	out := append([]api.PluginHealth(nil), h.refused...)
	for _, s := range h.supervisors() {
		out = append(out, health(s.Status()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Observe implements PluginSet: every plugin is asked at once, each call
// bounded by ctx and the supervisor's own per-call deadline.
func (h *HostPlugins) Observe(ctx context.Context) Observation {
	sups := h.supervisors()
	type answer struct {
		facts plugins.Facts
		err   error
	}
	answers := make([]answer, len(sups))
	var wg sync.WaitGroup
	for i, s := range sups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in, err := s.Integration()
			if err == nil {
				answers[i].facts, err = in.Describe(ctx)
			}
			answers[i].err = err
		}()
	}
	wg.Wait()
	obs := Observation{Seats: map[string]int64{}, Plugins: append([]api.PluginHealth(nil), h.refused...)}
	for i, s := range sups {
		ph := health(s.Status())
		if a := answers[i]; a.err != nil {
			ph.Healthy = false
			if ph.Detail == "" {
				ph.Detail = "describe: " + a.err.Error()
			}
		} else {
			obs.Products = append(obs.Products, api.Product{Name: a.facts.Product, Version: a.facts.Version, Distribution: a.facts.Distribution})
			for k, v := range a.facts.Seats {
				obs.Seats[k] += v
			}
		}
		obs.Plugins = append(obs.Plugins, ph)
	}
	return obs
}

// Reconfigure implements PluginSet: only plugins whose merged settings
// changed are restarted (host.Supervisor.Update compares them).
func (h *HostPlugins) Reconfigure(_ context.Context, settings map[string]map[string]string) error {
	for _, s := range h.supervisors() {
		if s.Update(merged(h.base[s.Name()], settings[s.Name()])) {
			h.log.Info("plugin settings changed; restarting it", "plugin", s.Name())
		}
	}
	return nil
}

// ApplyPartnerLink implements PluginSet.
func (h *HostPlugins) ApplyPartnerLink(ctx context.Context, code, tier string) error {
	var errs []error
	for _, s := range h.supervisors() {
		in, err := s.Integration()
		if err == nil {
			_, err = in.ApplyPartnerLink(ctx, code, tier)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// Close implements PluginSet.
func (h *HostPlugins) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, s := range h.supervisors() {
		if err := s.Stop(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop plugin %s: %w", s.Name(), err))
		}
	}
	return errors.Join(errs...)
}
