package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/testenv"
)

// sbBin is the switchboard binary built once in TestMain; buildErr says why
// it is missing.
var (
	sbBin    string
	buildErr error
)

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() || runtime.GOOS != "linux" {
		os.Exit(m.Run()) // the tests skip themselves
	}
	sbBin, buildErr = testenv.Switchboard()
	os.Exit(testenv.Main(m))
}

// needBinary skips under -short and off Linux, and fails when the build did.
func needBinary(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: builds and runs the real binary; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("end-to-end test follows processes through /proc: Linux only")
	}
	if buildErr != nil {
		t.Fatal(buildErr)
	}
}

// sb runs the switchboard binary to completion.
func sb(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(sbBin, args...)
	cmd.Env = testenv.CleanEnv()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run switchboard %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// sbJSON runs switchboard with --output json, fails the test unless it exits
// 0, and decodes stdout into v.
func sbJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, errOut, code := sb(t, append(args, "--output", "json")...)
	if code != 0 {
		t.Fatalf("switchboard %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), code, errOut, out)
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("switchboard %s: output is not the expected JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// proc is a long-running process started for the test, the leader of its
// own process group so that whatever it starts can be found and stopped.
// Its log (stderr) is in Output.
type proc struct {
	*testenv.Process
	stdout *testenv.Buffer
}

// start runs switchboard ARGS in the background; the test's cleanup stops
// it (and its process group) if the test did not.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startBin(t, name, sbBin, args...)
}

// startBin is start with another copy of the binary.
func startBin(t *testing.T, name, bin string, args ...string) *proc {
	t.Helper()
	p := &proc{stdout: &testenv.Buffer{}}
	cmd := exec.Command(bin, args...)
	cmd.Env = testenv.CleanEnv()
	cmd.Stdout = p.stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p.Process = testenv.StartProcess(t, name, cmd)
	// Registered after StartProcess's cleanup, so it runs first.
	t.Cleanup(func() {
		if err := p.stop(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return p
}

func (p *proc) pid() int { return p.Cmd.Process.Pid }

// logs is the tail of what the process wrote to stderr (its log), for
// failure messages.
func (p *proc) logs() string {
	b := p.Output.String()
	const max = 6000
	if len(b) > max {
		b = "…" + b[len(b)-max:]
	}
	return b
}

// stop sends SIGTERM to the process alone (it stops its own children), waits,
// then stops anything left in its process group. It fails when the process
// needed SIGKILL or left members of its group running.
func (p *proc) stop() error {
	if err := p.Stop(); err != nil {
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		return err
	}
	return p.leftovers()
}

// leftovers kills and reports live members of the process's group after it
// exited (a plugin that outlived its agent, for one).
func (p *proc) leftovers() error {
	var left []int
	_ = waitFor(5*time.Second, func() error {
		left = groupMembers(p.pid())
		if len(left) > 0 {
			return errors.New("still running")
		}
		return nil
	})
	if len(left) == 0 {
		return nil
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	return fmt.Errorf("%s exited but left processes %v of its group running", p.Name, left)
}

// procStat is one process from /proc/PID/stat.
type procStat struct {
	pid, ppid, pgid int
	state           byte
}

// readStat parses /proc/PID/stat; ok is false when the process is gone.
func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return procStat{}, false
	}
	ppid, err1 := strconv.Atoi(f[1])
	pgid, err2 := strconv.Atoi(f[2])
	if err1 != nil || err2 != nil {
		return procStat{}, false
	}
	return procStat{pid: pid, ppid: ppid, pgid: pgid, state: f[0][0]}, true
}

// processes lists every process but zombies (a zombie runs nothing; some
// containers' init never reaps them).
func processes() []procStat {
	ents, _ := os.ReadDir("/proc")
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok && st.state != 'Z' {
			out = append(out, st)
		}
	}
	return out
}

// alive says whether pid runs (exists and is not a zombie).
func alive(pid int) bool {
	st, ok := readStat(pid)
	return ok && st.state != 'Z'
}

func groupMembers(pgid int) []int {
	var out []int
	for _, p := range processes() {
		if p.pgid == pgid {
			out = append(out, p.pid)
		}
	}
	return out
}

// pluginChildren maps plugin name to pid for the `switchboard plugin serve
// NAME` processes whose parent is pid.
func pluginChildren(pid int) map[string]int {
	out := map[string]int{}
	for _, p := range processes() {
		if p.ppid != pid {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		for i := 0; i+2 < len(args); i++ {
			if args[i] == "plugin" && args[i+1] == "serve" {
				out[args[i+2]] = p.pid
			}
		}
	}
	return out
}

// waitFor calls f every 100 ms until it returns nil or timeout passes, and
// returns f's last error.
func waitFor(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// httpDo makes one loopback HTTP request and returns the status and body.
func httpDo(method, url, contentType, body string) (int, string, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}
