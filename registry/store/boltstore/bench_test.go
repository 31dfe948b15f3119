package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// benchBatch builds a batch of n heartbeat reports starting at seq first.
func benchBatch(tb testing.TB, host string, first uint64, n int) []store.IncomingReport {
	out := make([]store.IncomingReport, n)
	for i := range out {
		r := api.Report{Seq: first + uint64(i), Kind: api.KindHeartbeat, At: time.Unix(1700000000, 0).UTC(),
			Facts: &api.Facts{Hostname: host, MachineID: host, AgentVersion: "1.0"}, Seats: map[string]int64{"pbx_endpoints": 42}}
		raw, err := json.Marshal(r)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = store.IncomingReport{Report: r, Raw: raw}
	}
	return out
}

// BenchmarkAppendReports measures durable (fsync) report appends from
// parallel writers sharing group commits: one op is one request of -batch
// reports for one of 64 installs.
func BenchmarkAppendReports(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			var commits, writes, nanos atomic.Int64
			s, err := Open(filepath.Join(b.TempDir(), "r.db"), Options{OnCommit: func(n int, took time.Duration) {
				commits.Add(1)
				writes.Add(int64(n))
				nanos.Add(int64(took))
			}})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			const installs = 64
			ids := make([]string, installs)
			for i := range ids {
				ids[i] = fmt.Sprintf("i%026d", i)
				if _, err := s.ActivateInstall(ctx, store.Activation{ID: ids[i], PublicKey: []byte(ids[i] + "-key-32-bytes-long"), At: time.Now()}); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			seqs := make([]atomic.Uint64, installs)
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := int(next.Add(1)) % installs
					first := seqs[i].Add(uint64(batch)) - uint64(batch) + 1
					if _, err := s.AppendReports(ctx, ids[i], benchBatch(b, ids[i], first, batch), time.Now()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "reports/s")
			if c := commits.Load(); c > 0 {
				b.ReportMetric(float64(writes.Load())/float64(c), "writes/commit")
				b.ReportMetric(float64(nanos.Load())/float64(c)/1e6, "ms/commit")
			}
		})
	}
}
