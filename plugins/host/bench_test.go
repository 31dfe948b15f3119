package host

import (
	"context"
	"net"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/internal/testplugin"
)

// The three benchmarks below time one Describe round trip of the same
// implementation (the test plugin without a mode file) three ways, so the
// cost of the plugin boundary can be read off one run:
//
//	BenchmarkIntegrationDescribe  real plugin process: go-plugin, gRPC, AutoMTLS over a unix socket, supervisor deadline
//	BenchmarkBareGRPCUnix         plain gRPC server in this process on a unix socket, no TLS
//	BenchmarkInProcessDescribe    a direct method call
//
// Each reports the median latency as p50-µs besides Go's mean ns/op.

func benchDescribe(b *testing.B, in plugins.Integration) {
	b.Helper()
	ctx := context.Background()
	if _, err := in.Describe(ctx); err != nil { // warm up the connection
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, err := in.Describe(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
}

func BenchmarkIntegrationDescribe(b *testing.B) {
	e := Entry{Name: "bench", Kind: plugins.KindIntegration, Path: testPluginPath, SHA256: testPluginSum,
		Args: []string{"-kind", string(plugins.KindIntegration)}}
	s, err := NewSupervisor(e, Options{HealthInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Stop(ctx)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for s.Status().State != StateHealthy {
		if time.Now().After(deadline) {
			b.Fatalf("plugin not healthy: %s", s.Status().Summary(time.Now()))
		}
		time.Sleep(10 * time.Millisecond)
	}
	in, err := s.Integration()
	if err != nil {
		b.Fatal(err)
	}
	benchDescribe(b, in)
}

func BenchmarkBareGRPCUnix(b *testing.B) {
	sock := filepath.Join(b.TempDir(), "bench.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	plugins.RegisterIntegrationServer(srv, testplugin.New(""))
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	conn, err := grpc.NewClient("unix://"+sock, append(plugins.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	benchDescribe(b, plugins.NewIntegrationClient(conn))
}

func BenchmarkInProcessDescribe(b *testing.B) {
	benchDescribe(b, testplugin.New(""))
}
