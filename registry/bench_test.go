package registry_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/hbbench"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

// benchInstalls is how many installs (and requests in flight) the ingest
// benchmarks simulate: 'switchboard bench heartbeats --concurrency 64'.
const benchInstalls = 64

// BenchmarkIngest drives the real reports handler — signature check,
// decode, durable group commit with fsync, answer — over loopback HTTP with
// the load generator's client, 64 requests in flight, each a freshly signed
// batch of 1 or 100 heartbeats. One op is one request. BenchmarkIngestNoop
// is the same client against the no-op handler: the ceiling. Profile with
//
//	go test -run '^$' -bench 'Ingest' -cpuprofile cpu.out ./registry
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var commits, writes, nanos atomic.Int64
			url, stop := startBenchRegistry(b, func(n int, took time.Duration) {
				commits.Add(1)
				writes.Add(int64(n))
				nanos.Add(int64(took))
			})
			runIngest(b, url, batch, true)
			stop()
			if c := commits.Load(); c > 0 {
				b.ReportMetric(float64(writes.Load())/float64(c), "writes/commit")
				b.ReportMetric(float64(nanos.Load())/float64(c)/1e6, "ms/commit")
			}
		})
	}
}

// BenchmarkIngestNoop is BenchmarkIngest's client against
// hbbench.NoopHandler, which reads the body and answers 200.
func BenchmarkIngestNoop(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: hbbench.NoopHandler(), ReadHeaderTimeout: 5 * time.Second}
			go func() { _ = hs.Serve(ln) }()
			defer hs.Close()
			runIngest(b, "http://"+ln.Addr().String(), batch, false)
		})
	}
}

// startBenchRegistry serves a fresh registry (bbolt store in a temp dir)
// on 127.0.0.1 with the production server settings (Server.Run).
func startBenchRegistry(b *testing.B, onCommit func(int, time.Duration)) (string, func()) {
	b.Helper()
	data := b.TempDir()
	setup, err := registry.Prepare(data)
	if err != nil {
		b.Fatal(err)
	}
	st, err := boltstore.Open(filepath.Join(data, registry.StoreFile), boltstore.Options{OnCommit: onCommit})
	if err != nil {
		b.Fatal(err)
	}
	cfg := registry.DefaultConfig()
	cfg.DataDir = data
	cfg.ActivationsPerSecond = -1
	srv, err := registry.New(cfg, st, setup.Keys, setup.AdminToken, nil)
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, ln) }()
	return "http://" + ln.Addr().String(), func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			b.Error(err)
		}
		if err := st.Close(); err != nil {
			b.Error(err)
		}
	}
}

// runIngest activates benchInstalls installs (unless noop) and sends b.N
// batches from benchInstalls goroutines, one install each.
func runIngest(b *testing.B, url string, batch int, activate bool) {
	hc := hbbench.NewHTTPClient(benchInstalls)
	defer hc.CloseIdleConnections()
	type install struct {
		id   string
		key  ed25519.PrivateKey
		next uint64
	}
	// RunParallel starts parallelism × GOMAXPROCS goroutines: one install each.
	parallelism := (benchInstalls + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0)
	installs := make([]*install, parallelism*runtime.GOMAXPROCS(0))
	for i := range installs {
		_, key, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		in := &install{id: fmt.Sprintf("noop%06d", i), key: key, next: 1}
		if activate {
			if in.id, err = hbbench.Activate(context.Background(), hc, url, key, ""); err != nil {
				b.Fatal(err)
			}
		}
		installs[i] = in
	}
	var next atomic.Int64
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		in := installs[next.Add(1)-1]
		snd := hbbench.NewSender(hc, url, activate)
		for pb.Next() {
			if err := snd.Send(context.Background(), in.id, in.key, in.next, batch); err != nil {
				b.Error(err)
				return
			}
			in.next += uint64(batch)
		}
	})
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "reports/s")
}

// BenchmarkDecodeReportBatch is the decode and check of one request body as
// the load generator sends it, 100 heartbeats: a third of the registry's
// CPU per report at --batch 100. One op is one body.
func BenchmarkDecodeReportBatch(b *testing.B) {
	body := hbbench.AppendBatch(nil, "ibenchbenchbenchbenchbenchbe", 1, 100, time.Now())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := registry.DecodeReportBatch(body, 1000); err != nil {
			b.Fatal(err)
		}
	}
}
