// Package agentbench measures the agent as it runs on a customer's server,
// with real processes on loopback: the resident memory and CPU of the idle
// agent with its two built-in plugins (Asterisk and Odoo, against the
// emulators), and how fast the agent drains a large outbox backlog into a
// real registry (`switchboard registry serve`). cmd/agentbench prints the
// figures for `make bench`.
package agentbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/switchboard-dev/switchboard/agent/localapi"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat.
// The kernel exports 100 on every architecture Go supports on Linux.
const clockTicks = 100

// Mem is one process's memory, in bytes.
type Mem struct {
	// RSS is the resident set (VmRSS): it counts pages shared with other
	// processes (the switchboard binary's text, mapped by the agent and
	// every built-in plugin) once per process.
	RSS int64
	// PSS is the proportional set size: each shared page is divided among
	// the processes mapping it, so PSS adds up across processes to the
	// memory they use together.
	PSS int64
	// Anon is private, anonymous memory (heap, stacks): what the process
	// alone costs.
	Anon int64
}

// ReadMem reads pid's memory from /proc/PID/smaps_rollup.
func ReadMem(pid int) (Mem, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return Mem{}, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	return parseSmapsRollup(string(data))
}

func parseSmapsRollup(s string) (Mem, error) {
	var m Mem
	seen := 0
	for line := range strings.Lines(s) {
		key, rest, ok := strings.Cut(line, ":")
		var dst *int64
		switch key {
		case "Rss":
			dst = &m.RSS
		case "Pss":
			dst = &m.PSS
		case "Anonymous":
			dst = &m.Anon
		}
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return Mem{}, fmt.Errorf("unexpected smaps_rollup line %q", strings.TrimSpace(line))
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return Mem{}, fmt.Errorf("smaps_rollup %s %q: %w", key, f[0], err)
		}
		*dst = kb * 1024
		seen++
	}
	if seen != 3 {
		return Mem{}, errors.New("smaps_rollup lacks Rss, Pss or Anonymous (a kernel thread or a zombie?)")
	}
	return m, nil
}

// ReadCPU returns the CPU time pid has used so far (utime + stime).
func ReadCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read CPU time of pid %d: %w", pid, err)
	}
	return parseCPU(string(data))
}

func parseCPU(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces and
	// parentheses itself: fields are counted after the last ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat line")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat line has %d fields after the name, want at least 13", len(f))
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("utime/stime: %w", err)
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// process is one child started by the bench, logging into a file.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

func start(name, logPath string, bin string, args ...string) (*process, error) {
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{}), log: logPath}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits up to timeout, then kills.
func (p *process) stop(timeout time.Duration) {
	if p == nil || p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail returns the end of the process's log, for error messages.
func (p *process) tail() string {
	data, _ := os.ReadFile(p.log)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// waitFor polls cond every 20 ms until it holds, ctx ends or timeout.
func waitFor(ctx context.Context, timeout time.Duration, what string, cond func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ok, err := cond()
		if ok {
			return nil
		}
		if err != nil {
			last = err
		}
		if time.Now().After(deadline) {
			if last != nil {
				return fmt.Errorf("timed out after %s waiting for %s: %w", timeout, what, last)
			}
			return fmt.Errorf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// registryProc is a real registry on loopback.
type registryProc struct {
	*process
	data  string
	URL   string
	Token string
	// PubKey is the vendor keyring agents verify licences with.
	PubKey string
}

func startRegistry(ctx context.Context, bin, dir string) (*registryProc, error) {
	data := filepath.Join(dir, "registry")
	p, err := start("registry", filepath.Join(dir, "registry.log"), bin,
		"registry", "serve", "--data", data, "--listen", "127.0.0.1:0", "--log-level", "warn")
	if err != nil {
		return nil, err
	}
	r := &registryProc{process: p, data: data, PubKey: filepath.Join(data, "keys", "keyring.pub")}
	err = waitFor(ctx, 30*time.Second, "the registry to listen", func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("registry exited: %s", p.tail())
		}
		b, err := os.ReadFile(filepath.Join(data, "registry.addr"))
		addr := strings.TrimSpace(string(b))
		if err != nil || addr == "" {
			return false, nil
		}
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false, err
		}
		resp.Body.Close()
		r.URL = "http://" + addr
		return resp.StatusCode == http.StatusOK, nil
	})
	if err == nil {
		var tok []byte
		tok, err = os.ReadFile(filepath.Join(data, "admin.token"))
		r.Token = strings.TrimSpace(string(tok))
	}
	if err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	return r, nil
}

// agentProc is a real agent.
type agentProc struct {
	*process
	cfg    string
	client *localapi.Client
}

// writeAgentConfig writes agent.toml in dir with state in dir/state;
// extra is appended TOML.
func writeAgentConfig(dir, registryURL, pubKey, extra string) (string, error) {
	cfg := fmt.Sprintf(`state_dir = "state"
[registry]
url = %q
[licence]
public_keys = [%q]
[log]
level = "warn"
%s`, registryURL, pubKey, extra)
	path := filepath.Join(dir, "agent.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return "", fmt.Errorf("write agent config: %w", err)
	}
	return path, nil
}

func startAgent(ctx context.Context, bin, dir, cfg string) (*agentProc, error) {
	p, err := start("agent", filepath.Join(dir, "agent.log"), bin, "agent", "run", "--config", cfg)
	if err != nil {
		return nil, err
	}
	a := &agentProc{process: p, cfg: cfg, client: localapi.NewClient(filepath.Join(dir, "state", "agent.sock"))}
	err = waitFor(ctx, 30*time.Second, "the agent's socket", func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("agent exited: %s", p.tail())
		}
		c, err := net.Dial("unix", a.client.Socket)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	})
	if err != nil {
		p.stop(5 * time.Second)
		return nil, err
	}
	return a, nil
}

func (a *agentProc) status(ctx context.Context) (localapi.Status, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return a.client.Status(ctx)
}

// Logf is where progress notes go (stderr in cmd/agentbench).
type Logf func(format string, args ...any)

func nopLog(string, ...any) {}

// logTo writes progress notes to w, one line each (nowhere when w is nil).
func logTo(w io.Writer) Logf {
	if w == nil {
		return nopLog
	}
	return func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
}
