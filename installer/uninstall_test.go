package installer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/partnercode"
)

func mustUninstall(t *testing.T, opts UninstallOptions) *UninstallReport {
	t.Helper()
	u, err := PrepareUninstall(context.Background(), opts)
	if err != nil {
		t.Fatalf("prepare uninstall: %v", err)
	}
	if err := u.Execute(context.Background()); err != nil {
		t.Fatalf("uninstall: %v", err)
	}
	return u.Report
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func TestUninstallKeepsIdentityThenPurges(t *testing.T) {
	reg := newFakeRegistry(t)
	root := copyRoot(t, "plain-asterisk")
	original := snapshot(t, root)
	opts := installOpts(t, root, reg.srv.URL)
	opts.ConfigureARI = true
	rep := mustInstall(t, opts)
	lay := NewLayout(root)

	u := mustUninstall(t, UninstallOptions{Root: root})
	if u.Deactivation.State != "delivered" || u.Deactivation.InstallID != rep.Activation.InstallID {
		t.Errorf("deactivation %+v", u.Deactivation)
	}
	if got := reg.deactivated(); len(got) != 1 || got[0] != rep.Activation.InstallID {
		t.Errorf("registry saw deactivations %v", got)
	}
	for _, p := range []string{lay.Unit, lay.ConfigFile, lay.Manifest, lay.ARISecret, lay.Binary, lay.PluginDir} {
		if exists(p) {
			t.Errorf("%s is still there", p)
		}
	}
	for _, f := range []string{state.KeyFile, state.LicenceFile, state.InstallFile} {
		if !exists(filepath.Join(lay.StateDir, f)) {
			t.Errorf("%s was removed without --purge", f)
		}
	}
	ari := readFile(t, filepath.Join(root, "etc/asterisk/ari.conf"))
	if ari != original["etc/asterisk/ari.conf"].data {
		t.Error("the ARI user block was not removed from ari.conf")
	}

	// Again with --purge: the state goes, nothing else of ours stays.
	mustUninstall(t, UninstallOptions{Root: root, Purge: true})
	if exists(lay.StateDir) {
		t.Errorf("state dir still there after --purge")
	}
	after := snapshot(t, root)
	for p := range after {
		if _, ok := original[p]; ok || strings.Contains(p, "switchboard-bak-") {
			continue
		}
		// Directories the install created stay when other things live
		// there (etc/systemd/system, usr/local/bin): they are empty here.
		if after[p].mode.IsDir() {
			continue
		}
		t.Errorf("left behind: %s", p)
	}
}

func TestUninstallOfflineQueuesAndReinstallDropsIt(t *testing.T) {
	reg := newFakeRegistry(t)
	root := copyRoot(t, "odoo")
	opts := installOpts(t, root, reg.srv.URL)
	first := mustInstall(t, opts)
	lay := NewLayout(root)

	// The registry moves: the deactivation cannot be delivered.
	cfg := readFile(t, lay.ConfigFile)
	offline := strings.Replace(cfg, reg.srv.URL, unreachableURL(t), 1)
	if err := os.WriteFile(lay.ConfigFile, []byte(offline), 0o600); err != nil {
		t.Fatal(err)
	}
	u := mustUninstall(t, UninstallOptions{Root: root, Purge: true, FlushTimeout: 300 * time.Millisecond})
	if u.Deactivation.State != "queued" {
		t.Fatalf("deactivation %+v", u.Deactivation)
	}
	// --purge kept what is needed to send it later.
	for _, f := range []string{state.KeyFile, state.OutboxFile, PendingDeactivationFile} {
		if !exists(filepath.Join(lay.StateDir, f)) {
			t.Errorf("%s removed although the deactivation waits", f)
		}
	}
	// Installing again drops it and keeps the install id.
	second := mustInstall(t, opts)
	if second.Activation.InstallID != first.Activation.InstallID {
		t.Errorf("install id changed: %s → %s", first.Activation.InstallID, second.Activation.InstallID)
	}
	ob, err := outbox.Open(filepath.Join(lay.StateDir, state.OutboxFile), outbox.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	recs, _ := ob.Pending(0)
	for _, r := range recs {
		if r.Kind == outbox.KindDeactivation {
			t.Errorf("the deactivation still waits after reinstalling: %+v", r)
		}
	}
	if exists(filepath.Join(lay.StateDir, PendingDeactivationFile)) {
		t.Error("pending-deactivation marker still there")
	}
}

func TestUninstallRollbackEachStep(t *testing.T) {
	reg := newFakeRegistry(t)
	for _, step := range []string{"service", "ari-user", "files", "deactivation", "purge"} {
		t.Run(step, func(t *testing.T) {
			root := copyRoot(t, "freepbx")
			opts := installOpts(t, root, reg.srv.URL)
			opts.ConfigureARI = true
			mustInstall(t, opts)
			before := snapshot(t, root)
			u, err := PrepareUninstall(context.Background(), UninstallOptions{Root: root, Purge: true, HTTPClient: nil})
			if err != nil {
				t.Fatal(err)
			}
			// Deactivation cannot be undone at the registry; its local
			// change (the outbox) is.
			u.plan.afterStep = func(name string) error {
				if name == step {
					return errors.New("injected")
				}
				return nil
			}
			if err := u.Execute(context.Background()); err == nil || !strings.Contains(err.Error(), "injected") {
				t.Fatalf("got %v", err)
			}
			sameTree(t, "after uninstall rollback of "+step, before, snapshot(t, root))
		})
	}
}

// TestPromptPTY drives the interactive prompt through a real
// pseudo-terminal: a mistyped code is caught with partnercode's message, a
// correct one is accepted in its canonical form.
func TestPromptPTY(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	defer ptm.Close()
	defer tty.Close()
	if !IsTerminal(tty) {
		t.Fatal("the pty is not seen as a terminal")
	}
	code := testCode(t)
	typo := []byte(code.Compact())
	typo[3] = map[byte]byte{'A': 'B'}[typo[3]]
	if typo[3] == 0 {
		typo[3] = 'A'
	}
	_, perr := partnercode.Parse(string(typo))
	if perr == nil {
		t.Fatalf("the typo %s is a valid code", typo)
	}

	var mu sync.Mutex
	var screen bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := ptm.Read(buf)
			mu.Lock()
			screen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			mu.Lock()
			ok := strings.Contains(screen.String(), s)
			mu.Unlock()
			if ok {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("screen never showed %q; it shows:\n%q", s, screen.String())
	}

	type result struct {
		c   CodeChoice
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := PromptCode(tty, tty, PromptTries)
		res <- result{c, err}
	}()
	waitFor(promptText)
	// Type the typo key by key, in lower case with a space, then Enter.
	for i, b := range strings.ToLower(string(typo[:4])) + " " + strings.ToLower(string(typo[4:])) {
		if _, err := ptm.Write([]byte(string(b))); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			waitFor("(3 of 9 characters)") // the live hint while typing
		}
	}
	_, _ = ptm.Write([]byte("\r"))
	waitFor(perr.Error() + "\r\n")
	waitFor("Try again (2 of 3)")
	// The right code, with dashes and in lower case.
	_, _ = io.WriteString(ptm, strings.ToLower(code.String()))
	waitFor("-> " + code.String())
	_, _ = ptm.Write([]byte("\r"))
	r := <-res
	if r.err != nil || r.c.Code != code || r.c.Source != SourcePrompt {
		t.Fatalf("got %+v, %v", r.c, r.err)
	}
	waitFor("Using partner code " + code.String())
}

func TestPromptEmptyMeansNoPartnerAndThreeTries(t *testing.T) {
	ptm, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal on this machine: %v", err)
	}
	defer ptm.Close()
	defer tty.Close()
	go func() { _, _ = io.Copy(io.Discard, ptm) }()
	_, _ = ptm.Write([]byte("\r"))
	c, err := PromptCode(tty, tty, PromptTries)
	if err != nil || c.Source != SourceNone {
		t.Fatalf("empty answer: %+v %v", c, err)
	}
	_, _ = ptm.Write([]byte("x\rzz\r123\r"))
	if _, err := PromptCode(tty, tty, PromptTries); err == nil || !strings.Contains(err.Error(), "after 3 tries") {
		t.Fatalf("three wrong answers: %v", err)
	}
}
