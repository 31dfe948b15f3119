// Package testenv is test support shared by the packages whose tests run
// real processes: it builds the switchboard binary once per test binary,
// starts and stops processes (the registry among them), waits for
// conditions with a deadline and collects process output safely.
//
// It is imported only from _test.go files; production code must not use it.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// switchboardPkg is built by import path so it works from any package
// directory inside the module.
const switchboardPkg = "github.com/switchboard-dev/switchboard/cmd/switchboard"

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Switchboard builds cmd/switchboard into a temporary directory the first
// time it is called in this test binary and returns its path; later calls
// return the same path (or the same build error). The go command inherits
// the environment, so GOFLAGS and friends apply. Use it from TestMain, or
// BuildSwitchboard from a test; Main removes the directory afterwards.
func Switchboard() (string, error) {
	build.once.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-test-bin-")
		if err != nil {
			build.err = fmt.Errorf("make a directory for the switchboard binary: %w", err)
			return
		}
		build.dir = dir
		bin := filepath.Join(dir, "switchboard")
		out, err := exec.Command("go", "build", "-o", bin, switchboardPkg).CombinedOutput()
		if err != nil {
			build.err = fmt.Errorf("go build %s: %v\n%s", switchboardPkg, err, out)
			return
		}
		build.path = bin
	})
	return build.path, build.err
}

// BuildSwitchboard is Switchboard for a test: it skips tb under -short
// (the build takes a while) and fails it when the build fails.
func BuildSwitchboard(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("builds the switchboard binary; skipped with -short")
	}
	bin, err := Switchboard()
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// Main runs the tests and then removes the binary Switchboard built, if
// any. Call it from TestMain: os.Exit(testenv.Main(m)).
func Main(m *testing.M) int {
	defer removeBuild()
	return m.Run()
}

// MainWithSwitchboard is Main for a package whose tests all run the
// binary: it builds it first and sets *bin to its path, or prints why the
// build failed and returns 1 without running a test. Call it from
// TestMain: os.Exit(testenv.MainWithSwitchboard(m, &binary)).
func MainWithSwitchboard(m *testing.M, bin *string) int {
	path, err := Switchboard()
	if err != nil {
		removeBuild()
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	*bin = path
	return Main(m)
}

func removeBuild() {
	if build.dir != "" {
		_ = os.RemoveAll(build.dir)
	}
}

// Eventually calls cond until it returns nil, and fails tb with the last
// error when timeout passes first.
func Eventually(tb testing.TB, timeout time.Duration, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %v: %v", timeout, err)
			return // for a testing.TB whose Fatalf does not stop the goroutine
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Until turns a boolean condition into one for Eventually; what says
// what is awaited, for the failure message.
func Until(what string, cond func() bool) func() error {
	return func() error {
		if cond() {
			return nil
		}
		return errors.New("waiting for " + what)
	}
}

// Buffer collects the output of a process or command while a test reads
// it: a strings.Builder safe for concurrent use.
type Buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

// Write appends p.
func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
