package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

// channelPool runs the SupportChannel plugins of the registry: one plugin
// process per channel owner (the vendor queue, or one partner), started on
// first use with that owner's settings and stopped when idle. A partner's
// credentials therefore only ever live in the registry and in that
// partner's own plugin process. Which binary serves a channel type comes
// from the configuration (built-ins: the switchboard binary itself), so a
// new channel type needs no code here.
type channelPool struct {
	cfg SupportConfig
	log hclog.Logger
	exe string

	mu     sync.Mutex
	sups   map[string]*pooled // owner key → plugin
	closed bool
}

type pooled struct {
	sup      *host.Supervisor
	lastUsed time.Time
	inUse    int
}

func newChannelPool(cfg SupportConfig, log hclog.Logger) *channelPool {
	return &channelPool{cfg: cfg, log: log, exe: cfg.Executable, sups: map[string]*pooled{}}
}

// entry builds the manifest entry that runs channel type typ for owner.
func (p *channelPool) entry(owner, typ string, settings map[string]string) (host.Entry, error) {
	name := "support-" + owner
	if ct, ok := p.cfg.ChannelTypes[typ]; ok {
		e := host.Entry{Name: name, Kind: plugins.KindSupportChannel, Path: ct.Path, SHA256: ct.SHA256,
			Args: append([]string(nil), ct.Args...), Settings: maps.Clone(settings)}
		return e, e.Validate()
	}
	if !p.cfg.knownType(typ) {
		return host.Entry{}, fmt.Errorf("channel type %q is not known to this registry: use one of %v", typ, p.cfg.channelTypes())
	}
	exe := p.exe
	if exe == "" {
		var err error
		if exe, err = os.Executable(); err != nil {
			return host.Entry{}, fmt.Errorf("find the switchboard binary for built-in channel %s: %w", typ, err)
		}
	}
	e, err := host.BuiltinEntry(builtinChannels[typ], plugins.KindSupportChannel, exe, settings)
	if err != nil {
		return e, err
	}
	e.Name = name
	return e, e.Validate()
}

// ownerKey makes a plugin name part from "vendor" or a partner code.
func ownerKey(owner string) string {
	return strings.ToLower(strings.ReplaceAll(owner, "-", ""))
}

// acquire returns owner's channel running with typ and settings, started
// or restarted as needed, waiting up to wait for it to come up. Call the
// returned release when done.
func (p *channelPool) acquire(ctx context.Context, owner, typ string, settings map[string]string, wait time.Duration) (plugins.SupportChannel, func(), error) {
	key := ownerKey(owner)
	e, err := p.entry(key, typ, settings)
	if err != nil {
		return nil, nil, channels.Permanent(err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, nil, errors.New("registry is shutting down")
	}
	pl, ok := p.sups[key]
	if ok {
		if _, err := pl.sup.UpdateEntry(e); err != nil {
			p.mu.Unlock()
			return nil, nil, err
		}
	} else {
		sup, err := host.NewSupervisor(e, host.Options{
			Logger: p.log.Named("channel"), CallTimeout: p.cfg.AttemptTimeout.D(),
			SocketDir: p.cfg.PluginSocketDir, HealthInterval: time.Minute,
		})
		if err != nil {
			p.mu.Unlock()
			return nil, nil, err
		}
		sup.Start()
		pl = &pooled{sup: sup}
		p.sups[key] = pl
	}
	pl.inUse++
	pl.lastUsed = time.Now()
	p.mu.Unlock()
	release := func() {
		p.mu.Lock()
		pl.inUse--
		pl.lastUsed = time.Now()
		p.mu.Unlock()
	}
	if err := waitRunning(ctx, pl.sup, wait); err != nil {
		release()
		return nil, nil, err
	}
	ch, err := pl.sup.SupportChannel()
	if err != nil {
		release()
		return nil, nil, err
	}
	return ch, release, nil
}

// waitRunning waits until the plugin runs, is refused, or wait passes.
func waitRunning(ctx context.Context, s *host.Supervisor, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		st := s.Status()
		switch {
		case st.Running():
			return nil
		case st.State == host.StateRefused:
			// Refused: bad settings or binary; retrying the same cannot help.
			return channels.Permanentf("channel plugin refused: %s", st.Reason)
		case time.Now().After(deadline):
			return fmt.Errorf("channel plugin is not running (%s)", st.Summary(time.Now()))
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// check starts typ with settings as a throw-away plugin to learn whether
// the channel accepts them, so staff hear about a bad setting when they
// set it rather than when a ticket fails.
func (p *channelPool) check(ctx context.Context, typ string, settings map[string]string) error {
	e, err := p.entry("check", typ, settings)
	if err != nil {
		return err
	}
	sup, err := host.NewSupervisor(e, host.Options{Logger: p.log.Named("check"), CallTimeout: 10 * time.Second, SocketDir: p.cfg.PluginSocketDir})
	if err != nil {
		return err
	}
	sup.Start()
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = sup.Stop(sctx)
	}()
	if err := waitRunning(ctx, sup, 20*time.Second); err != nil {
		return err
	}
	ch, err := sup.SupportChannel()
	if err != nil {
		return err
	}
	h, err := ch.Health(ctx)
	if err != nil {
		return fmt.Errorf("channel health: %w", err)
	}
	if !h.Healthy {
		return fmt.Errorf("channel reports itself unhealthy: %s %s", h.State, h.Detail)
	}
	return nil
}

// reap stops plugins idle for longer than PluginIdle.
func (p *channelPool) reap() {
	idle := p.cfg.PluginIdle.D()
	p.mu.Lock()
	var stop []*host.Supervisor
	for k, pl := range p.sups {
		if pl.inUse == 0 && time.Since(pl.lastUsed) > idle {
			stop = append(stop, pl.sup)
			delete(p.sups, k)
		}
	}
	p.mu.Unlock()
	for _, s := range stop {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.Stop(ctx); err != nil {
			p.log.Warn("stop idle channel plugin", "plugin", s.Name(), "error", err)
		}
		cancel()
	}
}

// close stops every plugin.
func (p *channelPool) close() {
	p.mu.Lock()
	p.closed = true
	sups := p.sups
	p.sups = map[string]*pooled{}
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pl := range sups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = pl.sup.Stop(ctx)
		}()
	}
	wg.Wait()
}
