package agentbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	ariemu "github.com/switchboard-dev/switchboard/internal/emulator/ari"
	odooemu "github.com/switchboard-dev/switchboard/internal/emulator/odoo"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/host"
)

// IdleOptions configure Idle.
type IdleOptions struct {
	// Switchboard is the switchboard binary (agent, registry and the
	// built-in plugins).
	Switchboard string
	// Duration is the idle stretch sampled (default 10s).
	Duration time.Duration
	// Settle is the wait between "all healthy" and the first sample, so
	// start-up work (activation, first heartbeat, first GC) is not counted
	// (default 3s).
	Settle time.Duration
	// Progress receives notes on what is happening (nil: none).
	Progress io.Writer
}

// ProcFigure is one process's share of the idle figures.
type ProcFigure struct {
	Name string
	PID  int
	// Mem is the process's memory at the end of the stretch.
	Mem Mem
	// CPU is the CPU time used during the stretch.
	CPU time.Duration
}

// IdleResult is what Idle measured.
type IdleResult struct {
	Duration time.Duration
	Procs    []ProcFigure
	// Total sums the processes' memory at the end. Total.PSS is the memory
	// the agent and its plugins use together; Total.RSS counts the pages
	// of the binary they share once per process. MaxPSS is the highest
	// PSS sum sampled (once a second).
	Total  Mem
	MaxPSS int64
	CPU    time.Duration
}

// CPUPercent is the CPU used over the stretch as a percentage of one core.
func (r IdleResult) CPUPercent() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return 100 * r.CPU.Seconds() / r.Duration.Seconds()
}

// String is the key=value line bench.sh prints.
func (r IdleResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "pss_total_mb=%.1f pss_max_mb=%.1f rss_sum_mb=%.1f anon_total_mb=%.1f cpu_pct=%.2f over=%s",
		mb(r.Total.PSS), mb(r.MaxPSS), mb(r.Total.RSS), mb(r.Total.Anon), r.CPUPercent(), r.Duration.Round(time.Millisecond))
	for _, p := range r.Procs {
		fmt.Fprintf(&b, " %s_pss_mb=%.1f %s_rss_mb=%.1f %s_cpu_ms=%d", p.Name, mb(p.Mem.PSS), p.Name, mb(p.Mem.RSS), p.Name, p.CPU.Milliseconds())
	}
	return b.String()
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// Idle starts a registry, the Asterisk and Odoo emulators and an agent
// with both built-in plugins, waits until the install is activated and
// both plugins are healthy, then samples the agent and its plugin
// processes over opts.Duration of idleness.
func Idle(ctx context.Context, opts IdleOptions) (IdleResult, error) {
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Settle <= 0 {
		opts.Settle = 3 * time.Second
	}
	logf := logTo(opts.Progress)
	dir, err := os.MkdirTemp("", "agentbench-idle-")
	if err != nil {
		return IdleResult{}, err
	}
	defer os.RemoveAll(dir)

	ari := ariemu.New(ariemu.Options{})
	if err := ari.Listen("127.0.0.1:0"); err != nil {
		return IdleResult{}, fmt.Errorf("start the ARI emulator: %w", err)
	}
	defer ari.Close()
	odoo, err := odooemu.New(odooemu.Options{})
	if err != nil {
		return IdleResult{}, err
	}
	if err := odoo.Listen("127.0.0.1:0"); err != nil {
		return IdleResult{}, fmt.Errorf("start the Odoo emulator: %w", err)
	}
	defer odoo.Close()

	// The registry runs from its own copy of the binary: sharing the
	// agent's page cache would lower the agent's PSS, and a customer's
	// server runs no registry.
	regBin := filepath.Join(dir, "switchboard-registry")
	if err := copyFile(opts.Switchboard, regBin); err != nil {
		return IdleResult{}, err
	}
	reg, err := startRegistry(ctx, regBin, dir)
	if err != nil {
		return IdleResult{}, err
	}
	defer reg.stop(10 * time.Second)

	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		return IdleResult{}, err
	}
	m := host.NewManifest()
	for _, x := range []struct {
		name     string
		settings map[string]string
	}{
		{"asterisk", map[string]string{"ari_url": ari.URL(), "ari_user": ariemu.DefaultUser, "ari_password": ariemu.DefaultPassword}},
		{"odoo", map[string]string{"url": odoo.URL(), "db": odooemu.DefaultDatabase, "user": odooemu.DefaultLogin, "api_key": odooemu.DefaultAPIKey}},
	} {
		e, err := host.BuiltinEntry(x.name, plugins.KindIntegration, opts.Switchboard, x.settings)
		if err != nil {
			return IdleResult{}, err
		}
		if err := m.Put(e); err != nil {
			return IdleResult{}, err
		}
	}
	if err := m.Save(filepath.Join(state, host.ManifestFileName)); err != nil {
		return IdleResult{}, err
	}
	cfg, err := writeAgentConfig(dir, reg.URL, reg.PubKey, "")
	if err != nil {
		return IdleResult{}, err
	}
	a, err := startAgent(ctx, opts.Switchboard, dir, cfg)
	if err != nil {
		return IdleResult{}, err
	}
	defer a.stop(15 * time.Second)

	procs := []ProcFigure{{Name: "agent", PID: a.cmd.Process.Pid}}
	err = waitFor(ctx, 60*time.Second, "activation and healthy plugins", func() (bool, error) {
		st, err := a.status(ctx)
		if err != nil {
			return false, err
		}
		healthy := map[string]int{}
		for _, p := range st.Plugins {
			if p.Healthy && p.PID > 0 {
				healthy[p.Name] = p.PID
			}
		}
		if !st.Install.Activated || healthy["asterisk"] == 0 || healthy["odoo"] == 0 {
			return false, fmt.Errorf("activated %v, plugins %+v", st.Install.Activated, st.Plugins)
		}
		procs = append(procs[:1], ProcFigure{Name: "asterisk", PID: healthy["asterisk"]}, ProcFigure{Name: "odoo", PID: healthy["odoo"]})
		return true, nil
	})
	if err != nil {
		return IdleResult{}, fmt.Errorf("%w\nagent log:\n%s", err, a.tail())
	}
	logf("agent pid %d, asterisk pid %d, odoo pid %d healthy; settling %s, then sampling %s", procs[0].PID, procs[1].PID, procs[2].PID, opts.Settle, opts.Duration)
	select {
	case <-time.After(opts.Settle):
	case <-ctx.Done():
		return IdleResult{}, ctx.Err()
	}

	cpu0 := make([]time.Duration, len(procs))
	for i, p := range procs {
		if cpu0[i], err = ReadCPU(p.PID); err != nil {
			return IdleResult{}, err
		}
	}
	res := IdleResult{}
	t0 := time.Now()
	for {
		var total Mem
		for i := range procs {
			m, err := ReadMem(procs[i].PID)
			if err != nil {
				return IdleResult{}, fmt.Errorf("%s died while idle? %w", procs[i].Name, err)
			}
			procs[i].Mem = m
			total.RSS += m.RSS
			total.PSS += m.PSS
			total.Anon += m.Anon
		}
		res.Total = total
		res.MaxPSS = max(res.MaxPSS, total.PSS)
		if time.Since(t0) >= opts.Duration {
			break
		}
		select {
		case <-time.After(min(time.Second, opts.Duration-time.Since(t0))):
		case <-ctx.Done():
			return IdleResult{}, ctx.Err()
		}
	}
	for i, p := range procs {
		c, err := ReadCPU(p.PID)
		if err != nil {
			return IdleResult{}, err
		}
		procs[i].CPU = c - cpu0[i]
		res.CPU += procs[i].CPU
	}
	res.Duration = time.Since(t0)
	res.Procs = procs
	// The plugins must still be the same processes: a restart during the
	// stretch would hide its cost.
	st, err := a.status(ctx)
	if err != nil {
		return IdleResult{}, err
	}
	for _, p := range st.Plugins {
		for _, want := range procs[1:] {
			if p.Name == want.Name && p.PID != want.PID {
				return IdleResult{}, fmt.Errorf("plugin %s restarted while idle (pid %d -> %d): %s", p.Name, want.PID, p.PID, p.Detail)
			}
		}
	}
	return res, nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return nil
}
