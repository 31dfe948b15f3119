// Package hbbench is the heartbeat load generator: it activates simulated
// installs against a registry, sends signed report batches as fast as the
// registry acknowledges them, measures throughput and latency, and then
// checks through the staff API that every acknowledged report is stored
// exactly once. Pointed at a no-op server (NoopHandler) with the same
// client it measures the ceiling of the machine.
package hbbench

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
)

// Options of one run.
type Options struct {
	Registry    string        // base URL
	Installs    int           // simulated installs
	Duration    time.Duration // how long to send
	Batch       int           // reports per request
	Concurrency int           // requests in flight (at most Installs)
	// Noop: the target is a no-op server: no activation, no verification.
	Noop bool
	// AdminToken lets the run verify storage through the staff API.
	AdminToken string
}

// Result of one run.
type Result struct {
	Mode           string  `json:"mode"` // registry or noop
	Installs       int     `json:"installs"`
	Batch          int     `json:"batch"`
	Concurrency    int     `json:"concurrency"`
	Seconds        float64 `json:"seconds"`
	Requests       int64   `json:"requests"` // acknowledged
	Reports        int64   `json:"reports"`  // acknowledged
	Failed         int64   `json:"failed"`   // requests answered with an error (retried)
	ReportsPerSec  float64 `json:"reports_per_s"`
	RequestsPerSec float64 `json:"requests_per_s"`
	P50Ms          float64 `json:"p50_ms"`
	P99Ms          float64 `json:"p99_ms"`
	MaxMs          float64 `json:"max_ms"`
	// Verified is "exactly-once" when every acknowledged report was found
	// stored once, "skipped" for the no-op target.
	Verified   string `json:"verified"`
	FirstError string `json:"first_error,omitempty"`
}

type install struct {
	id    string
	key   ed25519.PrivateKey
	acked uint64 // every seq in 1..acked is acknowledged
	sent  uint64 // highest seq ever sent (acked or not)
}

// Run performs one benchmark run.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Installs < 1 || o.Batch < 1 || o.Duration <= 0 {
		return Result{}, errors.New("installs, batch and duration must be positive")
	}
	if o.Concurrency < 1 || o.Concurrency > o.Installs {
		o.Concurrency = min(o.Installs, 64)
	}
	base := strings.TrimSuffix(o.Registry, "/")
	hc := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        o.Concurrency * 2,
			MaxIdleConnsPerHost: o.Concurrency * 2,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
	defer hc.CloseIdleConnections()
	res := Result{Mode: "registry", Installs: o.Installs, Batch: o.Batch, Concurrency: o.Concurrency, Verified: "skipped"}
	if o.Noop {
		res.Mode = "noop"
	}
	installs, err := setup(ctx, hc, base, o)
	if err != nil {
		return res, err
	}

	var (
		requests, reports, failed atomic.Int64
		errOnce                   sync.Once
		firstErr                  string
		wg                        sync.WaitGroup
		lats                      = make([][]time.Duration, o.Concurrency)
	)
	start := time.Now()
	deadline := start.Add(o.Duration)
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []*install
			for i := w; i < len(installs); i += o.Concurrency {
				mine = append(mine, installs[i])
			}
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				in := mine[n%len(mine)]
				t0 := time.Now()
				err := send(ctx, hc, base, in, o)
				if err != nil {
					failed.Add(1)
					errOnce.Do(func() { firstErr = err.Error() })
					time.Sleep(10 * time.Millisecond)
					continue
				}
				lats[w] = append(lats[w], time.Since(t0))
				requests.Add(1)
				reports.Add(int64(o.Batch))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lats...)
	slices.Sort(all)
	res.Seconds = elapsed.Seconds()
	res.Requests, res.Reports, res.Failed = requests.Load(), reports.Load(), failed.Load()
	res.ReportsPerSec = float64(res.Reports) / elapsed.Seconds()
	res.RequestsPerSec = float64(res.Requests) / elapsed.Seconds()
	res.P50Ms, res.P99Ms = ms(percentile(all, 0.50)), ms(percentile(all, 0.99))
	if len(all) > 0 {
		res.MaxMs = ms(all[len(all)-1])
	}
	res.FirstError = firstErr
	if res.Requests == 0 {
		return res, fmt.Errorf("no request was acknowledged: %s", firstErr)
	}
	if o.Noop {
		return res, nil
	}
	if o.AdminToken == "" {
		res.Verified = "skipped (no admin token)"
		return res, nil
	}
	if err := verify(ctx, base, o.AdminToken, installs); err != nil {
		res.Verified = "FAILED"
		return res, err
	}
	res.Verified = "exactly-once"
	return res, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

// setup activates the installs (or makes local ones for a no-op target).
func setup(ctx context.Context, hc *http.Client, base string, o Options) ([]*install, error) {
	installs := make([]*install, o.Installs)
	errs := make(chan error, o.Installs)
	sem := make(chan struct{}, min(o.Concurrency, 16))
	var wg sync.WaitGroup
	for i := range installs {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		installs[i] = &install{key: key, id: fmt.Sprintf("noop%06d", i)}
		if o.Noop {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(in *install) {
			defer wg.Done()
			defer func() { <-sem }()
			id, err := Activate(ctx, hc, base, in.key, "")
			if err != nil {
				errs <- err
				return
			}
			in.id = id
		}(installs[i])
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("activate installs: %w", err)
	}
	return installs, nil
}

// Activate activates one install key and returns its install id. It waits
// out rate limiting.
func Activate(ctx context.Context, hc *http.Client, base string, key ed25519.PrivateKey, code string) (string, error) {
	body, err := json.Marshal(api.ActivationRequest{
		PublicKey:   key.Public().(ed25519.PublicKey),
		PartnerCode: code,
		Facts:       api.Facts{Hostname: "bench", OS: "linux", AgentVersion: "bench", Products: []api.Product{{Name: "asterisk", Version: "20.5.0"}}},
	})
	if err != nil {
		return "", err
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+api.PathActivations, bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		api.SignRequest(req, body, "", key, time.Now())
		resp, err := hc.Do(req)
		if err != nil {
			return "", &client.UnreachableError{URL: base, Err: err}
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests && attempt < 100 {
			wait, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
			time.Sleep(time.Duration(max(wait, 1)) * time.Second)
			continue
		}
		if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("activation answered %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
		}
		var ar api.ActivationResponse
		if err := json.Unmarshal(raw, &ar); err != nil || ar.InstallID == "" {
			return "", fmt.Errorf("activation answer is not an ActivationResponse: %s", raw)
		}
		return ar.InstallID, nil
	}
}

// send posts the next batch of an install; the batch is acknowledged only
// on 200 with one stored/duplicate result per report.
func send(ctx context.Context, hc *http.Client, base string, in *install, o Options) error {
	first := in.acked + 1
	reports := make([]api.Report, o.Batch)
	now := time.Now().UTC()
	for i := range reports {
		reports[i] = api.Report{
			Seq:   first + uint64(i),
			Kind:  api.KindHeartbeat,
			At:    now,
			Facts: &api.Facts{Hostname: "bench-" + in.id, MachineID: in.id, AgentVersion: "bench"},
			Seats: map[string]int64{"pbx_endpoints": 42},
		}
	}
	body, err := json.Marshal(api.ReportBatch{Reports: reports})
	if err != nil {
		return err
	}
	path := api.InstallPath(api.PathReports, in.id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	api.SignRequest(req, body, in.id, in.key, now)
	in.sent = max(in.sent, first+uint64(o.Batch)-1)
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	raw, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reports answered %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	var br api.ReportBatchResponse
	if err := json.Unmarshal(raw, &br); err != nil {
		return fmt.Errorf("reports answer is not JSON: %w", err)
	}
	if !o.Noop {
		if len(br.Results) != o.Batch {
			return fmt.Errorf("reports answer has %d results for %d reports", len(br.Results), o.Batch)
		}
		for i, r := range br.Results {
			if r.Seq != first+uint64(i) || (r.Status != api.StatusStored && r.Status != api.StatusDuplicate) {
				return fmt.Errorf("result %d is seq %d %q, want seq %d stored", i, r.Seq, r.Status, first+uint64(i))
			}
		}
	}
	in.acked = first + uint64(o.Batch) - 1
	return nil
}

// verify checks that the registry stores every acknowledged seq of every
// install exactly once: 1..acked all present, in strictly increasing order,
// and nothing beyond what was ever sent.
func verify(ctx context.Context, base, token string, installs []*install) error {
	c, err := client.New(base, token)
	if err != nil {
		return err
	}
	for _, in := range installs {
		seqs, err := c.ReportSeqs(ctx, in.id)
		if err != nil {
			return fmt.Errorf("verify install %s: %w", in.id, err)
		}
		if err := CheckSeqs(seqs, in.acked, in.sent); err != nil {
			return fmt.Errorf("install %s: %w", in.id, err)
		}
	}
	return nil
}

// CheckSeqs checks stored sequence numbers against what a sender knows:
// every seq in 1..acked stored once, nothing above sent.
func CheckSeqs(stored []uint64, acked, sent uint64) error {
	for i := 1; i < len(stored); i++ {
		if stored[i] <= stored[i-1] {
			return fmt.Errorf("seq %d is listed twice or out of order", stored[i])
		}
	}
	n, _ := slices.BinarySearch(stored, acked+1)
	if uint64(n) != acked || (acked > 0 && stored[n-1] != acked) {
		return fmt.Errorf("%d acknowledged reports but %d stored in 1..%d: reports were lost", acked, n, acked)
	}
	if len(stored) > 0 && stored[len(stored)-1] > sent {
		return fmt.Errorf("seq %d stored but never sent", stored[len(stored)-1])
	}
	return nil
}

// NoopHandler reads the body and answers 200 with an empty batch answer:
// the cheapest server the same client can talk to, for the ceiling.
func NoopHandler() http.Handler {
	answer := []byte(`{"results":[],"heartbeat_interval_seconds":3600}` + "\n")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(answer)))
		_, _ = w.Write(answer)
	})
}
