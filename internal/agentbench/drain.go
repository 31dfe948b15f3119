package agentbench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// DrainOptions configure Drain.
type DrainOptions struct {
	// Switchboard is the switchboard binary (agent and registry).
	Switchboard string
	// Reports is the backlog size (default 100,000).
	Reports int
	// BatchSize is the agent's sender.batch_size (0: the agent's default).
	BatchSize int
	// Progress receives notes on what is happening (nil: none).
	Progress io.Writer
}

// DrainResult is what Drain measured.
type DrainResult struct {
	Reports int
	Batch   int
	// Elapsed runs from the agent's start to an empty outbox: it includes
	// the agent's start-up, so the rate is a floor.
	Elapsed time.Duration
	// Stored is how many of the install's reports the registry holds
	// afterwards (activation and heartbeats), read from its staff API.
	Stored int
}

// Rate is reports per second.
func (r DrainResult) Rate() float64 { return float64(r.Reports) / r.Elapsed.Seconds() }

// String is the key=value line bench.sh prints.
func (r DrainResult) String() string {
	batch := "default"
	if r.Batch > 0 {
		batch = fmt.Sprint(r.Batch)
	}
	return fmt.Sprintf("reports_per_s=%.0f backlog=%d elapsed=%s batch=%s stored=%d", r.Rate(), r.Reports, r.Elapsed.Round(time.Millisecond), batch, r.Stored)
}

// Drain activates an agent against a real registry on loopback, stops it,
// puts opts.Reports heartbeats into its outbox (as a registry outage
// would), starts it again and times how long the outbox takes to drain.
// Every report must then be stored at the registry.
func Drain(ctx context.Context, opts DrainOptions) (DrainResult, error) {
	if opts.Reports <= 0 {
		opts.Reports = 100_000
	}
	logf := logTo(opts.Progress)
	dir, err := os.MkdirTemp("", "agentbench-drain-")
	if err != nil {
		return DrainResult{}, err
	}
	defer os.RemoveAll(dir)
	reg, err := startRegistry(ctx, opts.Switchboard, dir)
	if err != nil {
		return DrainResult{}, err
	}
	defer reg.stop(10 * time.Second)

	extra := fmt.Sprintf("[heartbeat]\ninterval = \"1h\"\n[outbox]\nmax_records = %d\n", opts.Reports+1000)
	if opts.BatchSize > 0 {
		extra += fmt.Sprintf("[sender]\nbatch_size = %d\n", opts.BatchSize)
	}
	cfg, err := writeAgentConfig(dir, reg.URL, reg.PubKey, extra)
	if err != nil {
		return DrainResult{}, err
	}
	a, err := startAgent(ctx, opts.Switchboard, dir, cfg)
	if err != nil {
		return DrainResult{}, err
	}
	var installID string
	err = waitFor(ctx, 30*time.Second, "activation", func() (bool, error) {
		st, err := a.status(ctx)
		installID = st.Install.InstallID
		return err == nil && st.Install.Activated && st.Outbox.Depth == 0, err
	})
	a.stop(15 * time.Second)
	if err != nil {
		return DrainResult{}, fmt.Errorf("%w\nagent log:\n%s", err, a.tail())
	}
	if code := a.cmd.ProcessState.Sys().(syscall.WaitStatus).ExitStatus(); code != 0 {
		return DrainResult{}, fmt.Errorf("agent exited %d on SIGTERM: %s", code, a.tail())
	}

	logf("install %s activated; queueing %d heartbeats", installID, opts.Reports)
	if err := fillOutbox(filepath.Join(dir, "state", state.OutboxFile), opts.Reports); err != nil {
		return DrainResult{}, err
	}
	t0 := time.Now()
	a, err = startAgent(ctx, opts.Switchboard, dir, cfg)
	if err != nil {
		return DrainResult{}, err
	}
	defer a.stop(15 * time.Second)
	err = waitFor(ctx, 10*time.Minute, "the outbox to drain", func() (bool, error) {
		st, err := a.status(ctx)
		return err == nil && st.Outbox.Depth == 0, err
	})
	if err != nil {
		return DrainResult{}, fmt.Errorf("%w\nagent log:\n%s", err, a.tail())
	}
	res := DrainResult{Reports: opts.Reports, Batch: opts.BatchSize, Elapsed: time.Since(t0)}
	if res.Stored, err = storedReports(ctx, reg, installID); err != nil {
		return DrainResult{}, err
	}
	// Activation, the first run's heartbeat, the backlog and the second
	// run's first heartbeat.
	if res.Stored < opts.Reports+2 {
		return res, fmt.Errorf("the registry stored %d reports of install %s, want at least %d", res.Stored, installID, opts.Reports+2)
	}
	return res, nil
}

// fillOutbox appends n heartbeats like the ones the agent writes. Appends
// run from many goroutines, so the outbox groups them into few
// transactions as it does for a busy agent.
func fillOutbox(path string, n int) error {
	ob, err := outbox.Open(path, outbox.Options{MaxRecords: n + 1000})
	if err != nil {
		return err
	}
	rep := api.Report{Kind: api.KindHeartbeat, LicenceState: "valid",
		Facts: &api.Facts{OS: "Debian GNU/Linux 12 (bookworm)", Hostname: "pbx-01", AgentVersion: "bench",
			Products: []api.Product{{Name: "asterisk", Version: "20.15.0", Distribution: "FreePBX 17"}, {Name: "odoo", Version: "17.0"}}},
		Seats:   map[string]int64{"pbx_endpoints": 40, "odoo_users": 12},
		Plugins: []api.PluginHealth{{Name: "asterisk", Healthy: true, State: "healthy"}, {Name: "odoo", Healthy: true, State: "healthy"}}}
	const workers = 64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	per := (n + workers - 1) / workers
	for w := 0; w < workers; w++ {
		count := min(per, n-w*per)
		if count <= 0 {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rep
			for range count {
				r.At = time.Now().UTC()
				if _, err := ob.Append(outbox.KindHeartbeat, r); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		ob.Close()
		return fmt.Errorf("fill the outbox: %w", err)
	}
	if st := ob.Stats(); st.Depth < n {
		ob.Close()
		return fmt.Errorf("outbox holds %d records after %d appends", st.Depth, n)
	}
	return ob.Close()
}

// storedReports counts the install's reports at the registry, page by page.
func storedReports(ctx context.Context, reg *registryProc, installID string) (int, error) {
	n := 0
	var after uint64
	for {
		url := fmt.Sprintf("%s/v1/admin/installs/%s/seqs?limit=1000000&after=%d", reg.URL, installID, after)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, err
		}
		req.Header.Set("Authorization", "Bearer "+reg.Token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, fmt.Errorf("ask the registry for stored reports: %w", err)
		}
		var out struct {
			Seqs      []uint64 `json:"seqs"`
			NextAfter uint64   `json:"next_after"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("registry stored reports: HTTP %d", resp.StatusCode)
		}
		if err != nil {
			return 0, fmt.Errorf("registry stored reports: %w", err)
		}
		n += len(out.Seqs)
		if out.NextAfter == 0 {
			return n, nil
		}
		after = out.NextAfter
	}
}
