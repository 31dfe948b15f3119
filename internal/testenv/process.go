package testenv

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopTimeout is how long Stop waits after SIGTERM before it kills.
const stopTimeout = 20 * time.Second

// startTimeout is how long AwaitRegistry waits for the registry to answer:
// generous, because the tests of several packages share two cores under
// -race.
const startTimeout = 30 * time.Second

// Process is a program a test runs in the background.
type Process struct {
	Name string
	Cmd  *exec.Cmd
	// Output collects what the process writes to stdout and stderr, but
	// for a stream the caller pointed elsewhere before StartProcess.
	Output Buffer

	done chan struct{}
	err  error // from Wait; read only once done is closed
}

// StartProcess starts cmd in the background and fails tb when it cannot.
// When the test ends the process is stopped as by Stop (a stop that needed
// SIGKILL fails the test) and, if the test failed, its output is logged.
func StartProcess(tb testing.TB, name string, cmd *exec.Cmd) *Process {
	tb.Helper()
	p := &Process{Name: name, Cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.Output
	}
	if cmd.Stderr == nil {
		cmd.Stderr = &p.Output
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	tb.Cleanup(func() {
		if err := p.Stop(); err != nil {
			tb.Error(err)
		}
		if tb.Failed() {
			tb.Logf("%s output:\n%s", name, p.Output.String())
		}
	})
	return p
}

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is what waiting for the process returned: nil after exit status 0.
// Call it once Done is closed.
func (p *Process) Err() error { return p.err }

// Stop sends SIGTERM and waits for the process to exit. A process still
// running 20 s later is killed, and Stop returns an error saying so.
// Stopping a process that has exited does nothing.
func (p *Process) Stop() error {
	if p.Exited() {
		return nil
	}
	_ = p.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(stopTimeout):
		_ = p.Cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s (pid %d) ignored SIGTERM for %v and was killed", p.Name, p.Cmd.Process.Pid, stopTimeout)
	}
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	_ = p.Cmd.Process.Kill()
	<-p.done
}

// CleanEnv is the environment without the SWITCHBOARD_ variables the CLI
// reads, so that a developer's shell cannot steer a test's processes.
func CleanEnv() []string {
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "SWITCHBOARD_") {
			env = append(env, e)
		}
	}
	return env
}

// Files in a registry's data directory: registry.AddrFile,
// registry.AdminTokenFile and the public keyring under registry.KeysDir
// (testenv does not import the registry, so that any package's tests can
// use it; testenv_test checks the names agree).
const (
	registryAddrFile  = "registry.addr"
	registryTokenFile = "admin.token"
	registryPubKey    = "keys/keyring.pub"
)

// Registry is `switchboard registry serve` running for a test.
type Registry struct {
	*Process
	Data       string // the --data directory
	Addr       string // host:port it listens on
	URL        string // "http://" + Addr
	AdminToken string
	PubKey     string // the vendor keyring file, for an agent's [licence] public_keys
}

// StartRegistry runs bin as `registry serve --data data --listen listen
// args...` with CleanEnv and waits for it as AwaitRegistry does. Listen on
// "127.0.0.1:0" for a free port; a restart listens on the Addr of the run
// before, so that agents keep their registry URL.
func StartRegistry(tb testing.TB, bin, data, listen string, args ...string) *Registry {
	tb.Helper()
	// An earlier run's address file names its port until this run
	// overwrites it.
	_ = os.Remove(filepath.Join(data, registryAddrFile))
	cmd := exec.Command(bin, append([]string{"registry", "serve", "--data", data, "--listen", listen}, args...)...)
	cmd.Env = CleanEnv()
	return AwaitRegistry(tb, StartProcess(tb, "registry", cmd), data)
}

// AwaitRegistry waits until p, a `registry serve` over data that the
// caller started its own way, has written its address file and answers
// /healthz, and fails tb if p exits first. An address file left by an
// earlier run must be gone, or name the address p listens on.
func AwaitRegistry(tb testing.TB, p *Process, data string) *Registry {
	tb.Helper()
	r := &Registry{Process: p, Data: data}
	Eventually(tb, startTimeout, func() error {
		tb.Helper()
		if r.Exited() {
			tb.Fatalf("registry exited during start: %v", r.Err())
		}
		b, err := os.ReadFile(filepath.Join(data, registryAddrFile))
		if r.Addr = strings.TrimSpace(string(b)); err != nil || r.Addr == "" {
			return errors.New("no " + registryAddrFile + " yet")
		}
		r.URL = "http://" + r.Addr
		resp, err := http.Get(r.URL + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /healthz: HTTP %d", resp.StatusCode)
		}
		return nil
	})
	tok, err := os.ReadFile(filepath.Join(data, registryTokenFile))
	if err != nil {
		tb.Fatal(err)
	}
	r.AdminToken = strings.TrimSpace(string(tok))
	r.PubKey = filepath.Join(data, filepath.FromSlash(registryPubKey))
	return r
}
