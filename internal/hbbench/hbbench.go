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
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
)

// Options of one run.
type Options struct {
	Registry string        // base URL
	Installs int           // simulated installs
	Duration time.Duration // how long to send
	Batch    int           // reports per request
	// Concurrency is how many installs send at a time, each with its own
	// connection and one request in flight; 0 means every install (up to
	// MaxConcurrency), as agents do.
	Concurrency int
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
	// ServerCPUSeconds is the user+system CPU time the registry process
	// spent during the sending phase (from its process_cpu_seconds_total
	// metric), and ServerCPUMicrosPerReport that divided by the reports
	// acknowledged: unlike reports/s it stays meaningful when other work
	// shares the machine. Zero when the target has no such metric (no-op).
	ServerCPUSeconds         float64 `json:"server_cpu_seconds,omitempty"`
	ServerCPUMicrosPerReport float64 `json:"server_cpu_us_per_report,omitempty"`
	// ClientCPUMicrosPerRequest is the CPU time this load generator spent
	// per acknowledged request while sending (signing, HTTP, reading the
	// answer): with the server's figure it shows where a shared machine's
	// CPU went.
	ClientCPUMicrosPerRequest float64 `json:"client_cpu_us_per_request,omitempty"`
}

type install struct {
	id    string
	key   ed25519.PrivateKey
	acked uint64 // every seq in 1..acked is acknowledged
	sent  uint64 // highest seq ever sent (acked or not)
}

// MaxConcurrency bounds the connections of one run (two file descriptors
// each on a loopback run, within the usual limit of 1024 per process).
const MaxConcurrency = 256

// Run performs one benchmark run.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Installs < 1 || o.Batch < 1 || o.Duration <= 0 {
		return Result{}, errors.New("installs, batch and duration must be positive")
	}
	if o.Concurrency < 1 || o.Concurrency > o.Installs {
		o.Concurrency = min(o.Installs, MaxConcurrency)
	}
	base := strings.TrimSuffix(o.Registry, "/")
	hc := NewHTTPClient(o.Concurrency)
	defer hc.CloseIdleConnections()
	res := Result{Mode: "registry", Installs: o.Installs, Batch: o.Batch, Concurrency: o.Concurrency, Verified: "skipped"}
	if o.Noop {
		res.Mode = "noop"
	}
	installs, err := setup(ctx, hc, base, o)
	if err != nil {
		return res, err
	}

	cpu0, cpuErr := serverCPU(ctx, hc, base)
	self0 := selfCPU()
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
			snd := NewSender(hc, base, !o.Noop)
			for n := 0; time.Now().Before(deadline) && ctx.Err() == nil; n++ {
				in := mine[n%len(mine)]
				t0 := time.Now()
				first := in.acked + 1
				in.sent = max(in.sent, first+uint64(o.Batch)-1)
				err := snd.Send(ctx, in.id, in.key, first, o.Batch)
				if err == nil {
					in.acked = first + uint64(o.Batch) - 1
				}
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
	if n := requests.Load(); n > 0 {
		res.ClientCPUMicrosPerRequest = float64((selfCPU() - self0).Microseconds()) / float64(n)
	}
	if cpu1, err := serverCPU(ctx, hc, base); err == nil && cpuErr == nil && reports.Load() > 0 {
		res.ServerCPUSeconds = cpu1 - cpu0
		res.ServerCPUMicrosPerReport = res.ServerCPUSeconds * 1e6 / float64(reports.Load())
	}
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

// NewHTTPClient is the client every run uses, against the registry and
// the no-op server alike: keep-alive connections for up to concurrency
// requests in flight, no compression.
func NewHTTPClient(concurrency int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        concurrency * 2,
			MaxIdleConnsPerHost: concurrency * 2,
			MaxConnsPerHost:     concurrency * 2,
			DisableCompression:  true,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		},
	}
}

// Sender posts signed report batches. It reuses its buffers between
// requests, so one Sender belongs to one goroutine. Every request is signed
// afresh (the timestamp and body differ each time).
type Sender struct {
	hc    *http.Client
	base  string
	check bool // check the answer names every report (false for a no-op target)
	body  []byte
	resp  bytes.Buffer
	br    api.ReportBatchResponse
}

// NewSender returns a Sender to the registry at base. check makes Send
// insist on one stored/duplicate result per report, in order.
func NewSender(hc *http.Client, base string, check bool) *Sender {
	return &Sender{hc: hc, base: strings.TrimSuffix(base, "/"), check: check}
}

// Send posts reports first..first+n-1 of an install and returns nil only
// on 200 with a matching answer (when checking).
func (s *Sender) Send(ctx context.Context, id string, key ed25519.PrivateKey, first uint64, n int) error {
	now := time.Now().UTC()
	s.body = AppendBatch(s.body[:0], id, first, n, now)
	path := api.InstallPath(api.PathReports, id)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(s.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	api.SignRequest(req, s.body, id, key, now)
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	s.resp.Reset()
	_, err = s.resp.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	raw := s.resp.Bytes()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("reports answered %d: %s", resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	s.br.Results = s.br.Results[:0]
	if err := json.Unmarshal(raw, &s.br); err != nil {
		return fmt.Errorf("reports answer is not JSON: %w", err)
	}
	if s.check {
		if len(s.br.Results) != n {
			return fmt.Errorf("reports answer has %d results for %d reports", len(s.br.Results), n)
		}
		for i, r := range s.br.Results {
			if r.Seq != first+uint64(i) || (r.Status != api.StatusStored && r.Status != api.StatusDuplicate) {
				return fmt.Errorf("result %d is seq %d %q, want seq %d stored", i, r.Seq, r.Status, first+uint64(i))
			}
		}
	}
	return nil
}

// AppendBatch appends the JSON body of a batch of n heartbeats of install
// id, seqs first..first+n-1, all at `at`, to dst. It writes what
// json.Marshal of the api.ReportBatch would (a test holds it to that), but
// without reflection, so the load generator leaves the shared CPU to the
// server it measures.
func AppendBatch(dst []byte, id string, first uint64, n int, at time.Time) []byte {
	at = at.UTC()
	if !plain(id) {
		return appendBatchJSON(dst, id, first, n, at)
	}
	dst = append(dst, `{"reports":[`...)
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"seq":`...)
		dst = strconv.AppendUint(dst, first+uint64(i), 10)
		dst = append(dst, `,"kind":"heartbeat","at":"`...)
		dst = at.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, `","facts":{"hostname":"bench-`...)
		dst = append(dst, id...) // plain: nothing to escape
		dst = append(dst, `","machine_id":"`...)
		dst = append(dst, id...)
		dst = append(dst, `","agent_version":"bench"},"seats":{"pbx_endpoints":42}}`...)
	}
	return append(dst, "]}"...)
}

// batchReports is the batch AppendBatch encodes.
func batchReports(id string, first uint64, n int, at time.Time) api.ReportBatch {
	reports := make([]api.Report, n)
	for i := range reports {
		reports[i] = api.Report{
			Seq:   first + uint64(i),
			Kind:  api.KindHeartbeat,
			At:    at,
			Facts: &api.Facts{Hostname: "bench-" + id, MachineID: id, AgentVersion: "bench"},
			Seats: map[string]int64{"pbx_endpoints": 42},
		}
	}
	return api.ReportBatch{Reports: reports}
}

// appendBatchJSON is AppendBatch through encoding/json, for ids that need escaping.
func appendBatchJSON(dst []byte, id string, first uint64, n int, at time.Time) []byte {
	raw, err := json.Marshal(batchReports(id, first, n, at))
	if err != nil {
		panic(fmt.Sprintf("encode report batch: %v", err)) // plain structs always encode
	}
	return append(dst, raw...)
}

// plain reports whether id is ASCII letters and digits only.
func plain(id string) bool {
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
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

// serverCPU reads process_cpu_seconds_total from the target's /metrics.
func serverCPU(ctx context.Context, hc *http.Client, base string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("metrics answered %d", resp.StatusCode)
	}
	return parseCPUMetric(raw)
}

// selfCPU is the CPU time (user+system) this process has used.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// parseCPUMetric finds process_cpu_seconds_total in a Prometheus text exposition.
func parseCPUMetric(raw []byte) (float64, error) {
	const name = "process_cpu_seconds_total "
	for line := range strings.Lines(string(raw)) {
		if v, ok := strings.CutPrefix(line, name); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("no process_cpu_seconds_total metric")
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
