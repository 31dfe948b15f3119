package agent

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// HostPlugins is the PluginSet of the plugin host: one host.Supervisor
// (checksum-checked start, AutoMTLS, restarts with backoff, per-call
// deadlines) per Integration plugin in the manifest. Settings are the
// manifest entry's, overridden key by key by the config's [plugins.NAME].
type HostPlugins struct {
	log hclog.Logger
	// reload serialises Reconfigure calls (SIGHUPs in quick succession).
	reload sync.Mutex
	// dir is plugins.dir in force (guarded by reload).
	dir string

	mu   sync.Mutex
	sups []*host.Supervisor // sorted by name
	// refused lists entries the host would not even supervise.
	refused []api.PluginHealth
	// link is the partner link the products should show; linkedPID holds,
	// per plugin, the process that last wrote it. A plugin started or
	// restarted since (another PID) is told again on the next Observe.
	link      *partnerLink
	linkedPID map[string]int
}

type partnerLink struct{ code, tier string }

// NewHostPlugins starts the Integration plugins of the manifest at
// cfg.Manifest. A missing manifest means no plugins until a reload finds
// one. A plugin that cannot start is reported unhealthy; it never stops the
// agent.
func NewHostPlugins(cfg config.Plugins, log hclog.Logger) (PluginSet, error) {
	h := &HostPlugins{log: log, dir: cfg.Dir}
	m, err := loadManifest(cfg.Manifest, log)
	if err != nil {
		return nil, fmt.Errorf("plugins.manifest: %w", err)
	}
	h.apply(context.Background(), m, cfg.Settings)
	return h, nil
}

// loadManifest reads the manifest; a missing file is an empty manifest.
func loadManifest(path string, log hclog.Logger) (*host.Manifest, error) {
	m, err := host.LoadManifest(path)
	if errors.Is(err, fs.ErrNotExist) {
		log.Info("no plugin manifest; running without plugins", "manifest", path)
		return host.NewManifest(), nil
	}
	return m, err
}

// Reconfigure implements PluginSet. A new plugins.dir is taken at once:
// the host starts every plugin from the absolute path its manifest entry
// names, so the directory itself moves no running plugin (an entry whose
// path changed restarts, like any changed entry). Third-party binaries the
// manifest still names outside the new directory are logged, since
// `switchboard plugin list` and the installer look in the new one.
func (h *HostPlugins) Reconfigure(ctx context.Context, cfg config.Plugins) error {
	m, err := loadManifest(cfg.Manifest, h.log)
	if err != nil {
		h.log.Error("plugin manifest not reloaded; the running plugins are kept", "error", err)
		return fmt.Errorf("plugins.manifest: %w", err)
	}
	h.reload.Lock()
	if cfg.Dir != h.dir {
		var outside []string
		for _, e := range m.Plugins {
			if !e.Builtin() && !strings.HasPrefix(e.Path, cfg.Dir+string(filepath.Separator)) {
				outside = append(outside, e.Name+"="+e.Path)
			}
		}
		h.log.Info("plugins.dir applied", "dir", cfg.Dir, "was", h.dir)
		if len(outside) > 0 {
			h.log.Warn("the manifest starts third-party plugins from outside plugins.dir; they keep running from the path it names (re-run the installer to move them)",
				"dir", cfg.Dir, "plugins", outside)
		}
		h.dir = cfg.Dir
	}
	h.reload.Unlock()
	h.apply(ctx, m, cfg.Settings)
	return nil
}

// apply makes the running supervisors match the Integration entries of m
// with settings merged in. Removed plugins are stopped (within ctx), new
// ones started, changed ones restarted; unchanged ones are not touched.
func (h *HostPlugins) apply(ctx context.Context, m *host.Manifest, settings map[string]map[string]string) {
	h.reload.Lock()
	defer h.reload.Unlock()
	want := map[string]host.Entry{}
	for _, e := range m.Plugins {
		if e.Kind != plugins.KindIntegration {
			continue // support channels are hosted by the registry
		}
		e.Settings = merged(e.Settings, settings[e.Name])
		want[e.Name] = e
	}

	h.mu.Lock()
	var keep, gone []*host.Supervisor
	for _, s := range h.sups {
		if _, ok := want[s.Name()]; ok {
			keep = append(keep, s)
		} else {
			gone = append(gone, s)
		}
	}
	h.sups = keep // removed plugins vanish from status at once
	h.mu.Unlock()

	for _, s := range gone {
		h.log.Info("plugin no longer in the manifest; stopping it", "plugin", s.Name())
		if err := s.Stop(ctx); err != nil {
			h.log.Warn("plugin did not stop in time; it is killed in the background", "plugin", s.Name(), "error", err)
		}
	}
	running := map[string]*host.Supervisor{}
	for _, s := range keep {
		running[s.Name()] = s
	}
	var refused []api.PluginHealth
	var added []*host.Supervisor
	for _, name := range slices.Sorted(maps.Keys(want)) {
		e := want[name]
		if s, ok := running[name]; ok {
			changed, err := s.UpdateEntry(e)
			switch {
			case err != nil:
				h.log.Error("plugin entry not applied", "plugin", name, "error", err)
			case changed:
				h.log.Info("plugin entry or settings changed; restarting it", "plugin", name)
			}
			continue
		}
		// The supervisor names its logger after the plugin itself.
		sup, err := host.NewSupervisor(e, host.Options{Logger: h.log})
		if err != nil {
			h.log.Error("plugin refused", "plugin", e.Name, "error", err)
			refused = append(refused, api.PluginHealth{Name: e.Name, State: string(host.StateRefused), Detail: err.Error()})
			continue
		}
		sup.Start()
		added = append(added, sup)
		h.log.Info("plugin started", "plugin", e.Name, "path", e.Path)
	}
	h.mu.Lock()
	h.sups = append(h.sups, added...)
	slices.SortFunc(h.sups, func(a, b *host.Supervisor) int { return strings.Compare(a.Name(), b.Name()) })
	h.refused = refused
	h.mu.Unlock()
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
	h.mu.Lock()
	out := append([]api.PluginHealth(nil), h.refused...)
	h.mu.Unlock()
	for _, s := range h.supervisors() {
		out = append(out, health(s.Status()))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Status implements PluginSet.
func (h *HostPlugins) Status() []localapi.PluginStatus {
	h.mu.Lock()
	out := make([]localapi.PluginStatus, 0, len(h.refused)+len(h.sups))
	for _, r := range h.refused {
		out = append(out, localapi.PluginStatus{PluginHealth: r})
	}
	h.mu.Unlock()
	for _, s := range h.supervisors() {
		st := s.Status()
		ps := localapi.PluginStatus{PluginHealth: health(st), PID: st.PID, Since: st.Since, Restarts: st.Restarts}
		if o := st.LastOutage; o != nil {
			ps.LastOutage = &localapi.PluginOutage{Start: o.Start, End: o.End, Reason: o.Reason}
		}
		out = append(out, ps)
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
	h.catchUpPartnerLink(ctx, sups)
	h.mu.Lock()
	obs := Observation{Seats: map[string]int64{}, Plugins: append([]api.PluginHealth(nil), h.refused...)}
	h.mu.Unlock()
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

// ApplyPartnerLink implements PluginSet. The link is remembered: a plugin
// that could not take it now (not running, product unreachable), or that
// is restarted or added later, is told again with the next Observe.
func (h *HostPlugins) ApplyPartnerLink(ctx context.Context, code, tier string) error {
	h.mu.Lock()
	h.link, h.linkedPID = &partnerLink{code: code, tier: tier}, map[string]int{}
	h.mu.Unlock()
	return h.applyLink(ctx, h.supervisors())
}

// catchUpPartnerLink tells the plugins whose process has not written the
// current partner link yet. Failures wait for the next heartbeat.
func (h *HostPlugins) catchUpPartnerLink(ctx context.Context, sups []*host.Supervisor) {
	h.mu.Lock()
	var due []*host.Supervisor
	if h.link != nil {
		for _, s := range sups {
			if st := s.Status(); st.Running() && h.linkedPID[s.Name()] != st.PID {
				due = append(due, s)
			}
		}
	}
	h.mu.Unlock()
	if len(due) == 0 {
		return
	}
	if err := h.applyLink(ctx, due); err != nil {
		h.log.Warn("plugins could not show the partner link in the product yet; retrying with the next heartbeat", "error", err)
	}
}

// applyLink writes the current partner link through each of sups and
// records which process took it.
func (h *HostPlugins) applyLink(ctx context.Context, sups []*host.Supervisor) error {
	h.mu.Lock()
	link := h.link
	h.mu.Unlock()
	if link == nil {
		return nil
	}
	var errs []error
	for _, s := range sups {
		pid := s.Status().PID
		in, err := s.Integration()
		if err == nil {
			var res plugins.LinkResult
			res, err = in.ApplyPartnerLink(ctx, link.code, link.tier)
			if err == nil {
				h.log.Debug("partner link applied", "plugin", s.Name(), "applied", res.Applied, "detail", res.Detail)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.Name(), err))
			continue
		}
		h.mu.Lock()
		if h.link == link {
			h.linkedPID[s.Name()] = pid
		}
		h.mu.Unlock()
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
