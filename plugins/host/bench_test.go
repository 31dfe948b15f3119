package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/internal/testplugin"
	pluginpb "github.com/switchboard-dev/switchboard/plugins/proto"
)

// The benchmarks below time one Describe round trip of the same
// implementation (the test plugin without a mode file), peeling one layer
// off at a time, so the cost of each can be read off one run:
//
//	BenchmarkIntegrationDescribe     supervisor path: Supervisor.Integration() → go-plugin process, AutoMTLS, deadline, answer validation
//	BenchmarkGoPluginMTLSDescribe    plain go-plugin with AutoMTLS: Dispense, then the raw generated client (no supervisor, no validation)
//	BenchmarkGoPluginDescribe        the same without TLS
//	BenchmarkBareGRPCUnix            plain gRPC, server in another process (sb-testplugin -bare-grpc), no go-plugin, no TLS
//	BenchmarkBareGRPCUnixInProcess   plain gRPC, server in this process
//	BenchmarkInProcessDescribe       a direct method call
//
// Every plugin process gets the environment the supervisor gives its
// plugins (pluginEnv: GOMAXPROCS=1 ...), this process runs with the agent
// daemon's GOMAXPROCS (plugins.Procs) while timing, and every connection
// has the same gRPC transport options, so the figures differ only by the
// layers named.
// Each reports the median latency as p50-µs besides Go's mean ns/op, and
// the CPU time a call costs: host-cpu-µs (this process, user+system) and,
// for a server in another process, plugin-cpu-µs (that process). On a
// shared, busy machine latency mostly measures the wait for a core; CPU
// time per call is what each layer really costs and varies far less.

// benchCall times call; serverPID is the process serving it (0: this one).
func benchCall(b *testing.B, serverPID int, call func(context.Context) error) {
	b.Helper()
	// The agent daemon, the host these calls are made from, runs with
	// plugins.Procs Ps; go test gives this process one per core.
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(plugins.Procs))
	ctx := context.Background()
	if err := call(ctx); err != nil { // warm up the connection
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	host0, plugin0 := selfCPU(b), procCPU(b, serverPID)
	for range b.N {
		t0 := time.Now()
		if err := call(ctx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	host1, plugin1 := selfCPU(b), procCPU(b, serverPID)
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64((host1-host0).Nanoseconds())/1e3/float64(b.N), "host-cpu-µs")
	if serverPID != 0 {
		b.ReportMetric(float64((plugin1-plugin0).Nanoseconds())/1e3/float64(b.N), "plugin-cpu-µs")
	}
}

// selfCPU is the CPU time (user+system) this process has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (user+system) process pid has used, from
// /proc/PID/stat (clock ticks of 10 ms: a benchmark run of a second or more
// keeps the error to about 1%); 0 for pid 0.
func procCPU(b *testing.B, pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		b.Fatalf("plugin CPU time: %v", err)
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		b.Fatalf("plugin CPU time: unexpected /proc/%d/stat", pid)
	}
	// After "(comm)": state is field 3; utime and stime are fields 14 and 15.
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		b.Fatalf("plugin CPU time: unexpected /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		b.Fatalf("plugin CPU time: unexpected /proc/%d/stat", pid)
	}
	const clockTick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(utime+stime) * clockTick
}

func benchDescribe(b *testing.B, serverPID int, in plugins.Integration) {
	b.Helper()
	benchCall(b, serverPID, func(ctx context.Context) error {
		_, err := in.Describe(ctx)
		return err
	})
}

// benchRawDescribe times the generated client alone.
func benchRawDescribe(b *testing.B, serverPID int, conn grpc.ClientConnInterface) {
	b.Helper()
	rpc := pluginpb.NewIntegrationClient(conn)
	benchCall(b, serverPID, func(ctx context.Context) error {
		resp, err := rpc.Describe(ctx, &pluginpb.DescribeRequest{})
		if err == nil && resp.GetProduct() == "" {
			b.Fatal("describe answered no product")
		}
		return err
	})
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
	benchDescribe(b, s.Status().PID, in)
}

// benchGoPlugin starts the test plugin with go-plugin alone (same checksum
// check, handshake and transport options as the supervisor) and times the
// raw generated client on its connection.
func benchGoPlugin(b *testing.B, autoMTLS bool) {
	want, err := hex.DecodeString(testPluginSum)
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(testPluginPath, "-kind", string(plugins.KindIntegration))
	cmd.Env = append(pluginEnv(false, hclog.NoLevel), plugin.EnvUnixSocketDir+"="+shortBenchDir(b))
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  plugins.Handshake,
		VersionedPlugins: plugins.VersionedPlugins(),
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: want, Hash: sha256.New()},
		AutoMTLS:         autoMTLS,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           hclog.NewNullLogger(),
		GRPCDialOptions:  append(plugins.DialOptions(), plugins.TransportDialOptions()...),
		SkipHostEnv:      true,
	})
	defer client.Kill()
	rpc, err := client.Client()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rpc.Dispense(string(plugins.KindIntegration)); err != nil {
		b.Fatal(err)
	}
	gc, ok := rpc.(*plugin.GRPCClient)
	if !ok {
		b.Fatalf("go-plugin gave a %T, not a gRPC client", rpc)
	}
	benchRawDescribe(b, cmd.Process.Pid, gc.Conn)
}

func BenchmarkGoPluginMTLSDescribe(b *testing.B) { benchGoPlugin(b, true) }

func BenchmarkGoPluginDescribe(b *testing.B) { benchGoPlugin(b, false) }

// BenchmarkBareGRPCUnix runs the server in a child process, like a plugin,
// so that both ends do not share one Go scheduler.
func BenchmarkBareGRPCUnix(b *testing.B) {
	sock := filepath.Join(shortBenchDir(b), "bare.sock")
	cmd := exec.Command(testPluginPath, "-bare-grpc", sock)
	cmd.Env = pluginEnv(false, hclog.NoLevel)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close() // the server stops at EOF
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("bare gRPC server did not create its socket")
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn, err := grpc.NewClient("unix://"+sock, benchDialOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	benchRawDescribe(b, cmd.Process.Pid, conn)
}

func BenchmarkBareGRPCUnixInProcess(b *testing.B) {
	benchRawDescribe(b, 0, inProcessServer(b))
}

// The layers of the supervisor path, each added on top of the previous one
// over the in-process server, where a run is steady enough to show a few
// microseconds (the process benchmarks above vary by tens on a busy
// machine):
//
//	BenchmarkLayerDeadline     the raw generated client with a per-call deadline (grpc-timeout header, timers on both sides)
//	BenchmarkLayerClient       plugins.IntegrationClient (proto→Go conversion, answer validation) with that deadline
//	BenchmarkLayerSupervisor   the supervisor's handle (instance lookup, deadline, error mapping) over the same client

func BenchmarkLayerDeadline(b *testing.B) {
	rpc := pluginpb.NewIntegrationClient(inProcessServer(b))
	benchCall(b, 0, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
		_, err := rpc.Describe(ctx, &pluginpb.DescribeRequest{})
		return err
	})
}

func BenchmarkLayerClient(b *testing.B) {
	c := plugins.NewIntegrationClient(inProcessServer(b))
	benchCall(b, 0, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, DefaultCallTimeout)
		defer cancel()
		_, err := c.Describe(ctx)
		return err
	})
}

func BenchmarkLayerSupervisor(b *testing.B) {
	e := Entry{Name: "bench", Kind: plugins.KindIntegration, Path: testPluginPath, SHA256: testPluginSum}
	s, err := NewSupervisor(e, Options{})
	if err != nil {
		b.Fatal(err)
	}
	// Never started: the instance is the in-process server's client.
	s.inst.Store(&instance{integration: plugins.NewIntegrationClient(inProcessServer(b))})
	in, err := s.Integration()
	if err != nil {
		b.Fatal(err)
	}
	benchDescribe(b, 0, in)
}

// inProcessServer serves the test plugin with plain gRPC from this process
// on a unix socket and returns a connection to it; both end with b.
func inProcessServer(b *testing.B) *grpc.ClientConn {
	sock := filepath.Join(shortBenchDir(b), "bench.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer(plugins.ServerOptions()...)
	plugins.RegisterIntegrationServer(srv, testplugin.New(""))
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("unix://"+sock, benchDialOptions()...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = conn.Close() })
	return conn
}

func BenchmarkInProcessDescribe(b *testing.B) {
	benchDescribe(b, 0, testplugin.New(""))
}

func benchDialOptions() []grpc.DialOption {
	return append(plugins.DialOptions(), append(plugins.TransportDialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()))...)
}

// shortBenchDir is a temporary directory with a short path (unix socket
// paths are limited to 108 bytes; b.TempDir() embeds the benchmark name).
func shortBenchDir(b *testing.B) string {
	dir, err := os.MkdirTemp("", "sbb")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
