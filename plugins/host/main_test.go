package host

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/plugins"
)

// Binaries built once for the whole package by TestMain.
var (
	testPluginPath string // sb-testplugin
	testHostPath   string // sb-testhost
	testPluginSum  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "switchboard-host-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"github.com/switchboard-dev/switchboard/plugins/internal/testplugin/cmd/sb-testplugin",
		"github.com/switchboard-dev/switchboard/plugins/internal/testplugin/cmd/sb-testhost")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build test binaries:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	testPluginPath = filepath.Join(dir, "sb-testplugin")
	testHostPath = filepath.Join(dir, "sb-testhost")
	if testPluginSum, err = FileSHA256(testPluginPath); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// fixture is one test plugin with its mode file.
type fixture struct {
	t        *testing.T
	modeFile string
	entry    Entry
}

func newFixture(t *testing.T, kind plugins.Kind, extraArgs ...string) *fixture {
	t.Helper()
	mode := filepath.Join(t.TempDir(), "mode")
	f := &fixture{t: t, modeFile: mode}
	f.setMode(testpluginOK)
	args := append([]string{"-kind", string(kind), "-mode-file", mode}, extraArgs...)
	f.entry = Entry{Name: "testplugin", Kind: kind, Path: testPluginPath, SHA256: testPluginSum, Args: args,
		Settings: map[string]string{"greeting": "hello"}}
	return f
}

const testpluginOK = "ok"

func (f *fixture) setMode(mode string) {
	f.t.Helper()
	if err := os.WriteFile(f.modeFile, []byte(mode), 0o600); err != nil {
		f.t.Fatal(err)
	}
}

// fastOptions make failures show within a test's patience.
func fastOptions(t *testing.T) Options {
	return Options{
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "test", Level: hclog.Warn, Output: testWriter{t},
		}),
		CallTimeout:    2 * time.Second,
		StartTimeout:   10 * time.Second,
		HealthInterval: 200 * time.Millisecond,
		HealthTimeout:  1 * time.Second,
		BackoffInitial: 100 * time.Millisecond,
		BackoffMax:     800 * time.Millisecond,
		StableAfter:    time.Minute,
		SocketDir:      shortTempDir(t),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// start runs a supervisor and stops it at the end of the test, checking
// that its process is gone and reaped.
func start(t *testing.T, e Entry, opts Options) *Supervisor {
	t.Helper()
	s, err := NewSupervisor(e, opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() { stopAndCheck(t, s) })
	return s
}

func stopAndCheck(t *testing.T, s *Supervisor) {
	t.Helper()
	pid := s.Status().PID
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Errorf("stop: %v", err)
	}
	if st := s.Status(); st.State != StateStopped {
		t.Errorf("state after Stop: %s", st.State)
	}
	if pid != 0 {
		if state, alive := procState(pid); alive {
			t.Errorf("plugin process %d still exists after Stop (state %s)", pid, state)
		}
	}
	// Every process's socket directory is gone, killed ones' included.
	if dir := s.opts.SocketDir; dir != "" {
		if left, _ := os.ReadDir(dir); len(left) != 0 {
			t.Errorf("socket directories left behind in %s: %v", dir, left)
		}
	}
}

// waitFor polls the supervisor's status until cond holds.
func waitFor(t *testing.T, s *Supervisor, what string, timeout time.Duration, cond func(Status) bool) Status {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		st := s.Status()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; status: %s (%+v)", timeout, what, st.Summary(time.Now()), st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func healthy(st Status) bool { return st.State == StateHealthy }

// procState returns the state letter of /proc/PID/stat ("R", "S", "Z" ...)
// and whether the process entry exists at all. A zombie exists: it was not
// reaped.
func procState(pid int) (string, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", false
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return "?", true
	}
	return s[i+2 : i+3], true
}

// shortTempDir is a temporary directory with a short path: t.TempDir()
// embeds the test name and can push a unix socket path past 108 bytes.
func shortTempDir(t *testing.T) string {
	dir, err := os.MkdirTemp("", "sbt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
