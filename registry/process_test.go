package registry_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/internal/hbbench"
	"github.com/switchboard-dev/switchboard/internal/testenv"
	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/client"
	"github.com/switchboard-dev/switchboard/registry/store/boltstore"
)

// binary is the switchboard binary built by TestMain for the tests that
// run the registry as a real process.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testenv.MainWithSwitchboard(m, &binary))
}

// startRegistry runs 'switchboard registry serve' on 127.0.0.1:0 over data
// and waits until it answers. It checkpoints every 25 ms, so kills land
// while checkpoints commit and while reports wait for one.
func startRegistry(t *testing.T, data string) *testenv.Registry {
	t.Helper()
	return testenv.StartRegistry(t, binary, data, "127.0.0.1:0", "--log-level", "warn", "--checkpoint-interval", "25ms")
}

// loadInstall sends batches like an agent's outbox: a batch is resent
// until it is acknowledged.
type loadInstall struct {
	id    string
	key   ed25519.PrivateKey
	acked uint64
	sent  uint64
	batch []api.Report // not yet acknowledged
}

func (li *loadInstall) next(n int) {
	if li.batch != nil {
		return
	}
	now := time.Now().UTC()
	for i := range n {
		li.batch = append(li.batch, report(li.acked+uint64(i)+1, "pbx-"+li.id, now))
	}
	li.sent = max(li.sent, li.acked+uint64(n))
}

// post sends the pending batch once; true when acknowledged.
func (li *loadInstall) post(hc *http.Client, url string) (bool, error) {
	body, err := json.Marshal(api.ReportBatch{Reports: li.batch})
	if err != nil {
		return false, err
	}
	path := api.InstallPath(api.PathReports, li.id)
	req, err := http.NewRequest("POST", url+path, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	api.SignRequest(req, body, li.id, li.key, time.Now())
	resp, err := hc.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return false, fmt.Errorf("%d %s", resp.StatusCode, raw)
	}
	li.acked = li.batch[len(li.batch)-1].Seq
	li.batch = nil
	return true, nil
}

func activateProc(t *testing.T, url string, n int) []*loadInstall {
	t.Helper()
	var out []*loadInstall
	for range n {
		e := &env{t: t}
		k := e.newKey()
		id, err := hbbench.Activate(context.Background(), http.DefaultClient, url, k, "")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &loadInstall{id: id, key: k})
	}
	return out
}

// hammer sends batches from every install until stop is closed or the
// registry stops answering.
func hammer(url string, installs []*loadInstall, stop <-chan struct{}) {
	var wg sync.WaitGroup
	for _, li := range installs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			hc := &http.Client{Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				default:
				}
				li.next(5)
				if _, err := li.post(hc, url); err != nil {
					return
				}
			}
		}()
	}
	wg.Wait()
}

func verifyStored(t *testing.T, p *testenv.Registry, installs []*loadInstall, exact bool) {
	t.Helper()
	c, err := client.New(p.URL, p.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, li := range installs {
		seqs, err := c.ReportSeqs(context.Background(), li.id)
		if err != nil {
			t.Fatal(err)
		}
		if err := hbbench.CheckSeqs(seqs, li.acked, li.sent); err != nil {
			t.Fatalf("install %s: %v", li.id, err)
		}
		if exact && uint64(len(seqs)) != li.acked {
			t.Fatalf("install %s: %d stored, %d acknowledged", li.id, len(seqs), li.acked)
		}
		d, err := c.GetInstall(context.Background(), li.id)
		if err != nil || d.ReportCount != int64(len(seqs)) {
			t.Fatalf("install %s: report_count %d but %d seqs stored (%v)", li.id, d.ReportCount, len(seqs), err)
		}
	}
}

func TestSIGKILLUnderLoadLosesNothing(t *testing.T) {
	data := t.TempDir()
	p := startRegistry(t, data)
	installs := activateProc(t, p.URL, 6)
	total := uint64(0)
	for round := 1; round <= 5; round++ {
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() { hammer(p.URL, installs, stop); close(done) }()
		time.Sleep(time.Duration(150+40*round) * time.Millisecond)
		p.Kill()
		close(stop)
		<-done
		p = startRegistry(t, data)
		// Every acknowledged report survived; unacknowledged ones may or may not have.
		verifyStored(t, p, installs, false)
		// The outbox resends what was in flight: stored now, exactly once.
		hc := &http.Client{Timeout: 5 * time.Second}
		for _, li := range installs {
			if li.batch != nil {
				if _, err := li.post(hc, p.URL); err != nil {
					t.Fatalf("round %d: resend after restart: %v", round, err)
				}
			}
		}
		verifyStored(t, p, installs, true)
		total = 0
		for _, li := range installs {
			total += li.acked
		}
		t.Logf("round %d: %d reports acknowledged so far", round, total)
	}
	if total == 0 {
		t.Fatal("no report was acknowledged: the load never ran")
	}
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	data := t.TempDir()
	p := startRegistry(t, data)
	installs := activateProc(t, p.URL, 4)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { hammer(p.URL, installs, stop); close(done) }()
	time.Sleep(200 * time.Millisecond)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := p.Err(); err != nil {
		t.Fatalf("registry exited with %v after SIGTERM:\n%s", err, p.Output.String())
	}
	close(stop)
	<-done
	p = startRegistry(t, data)
	verifyStored(t, p, installs, false)
}

func TestNewerSchemaIsRefused(t *testing.T) {
	data := t.TempDir()
	if err := startRegistry(t, data).Stop(); err != nil {
		t.Fatal(err)
	}
	if err := boltstore.SetSchemaVersion(filepath.Join(data, registry.StoreFile), 99); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "registry", "serve", "--data", data, "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("serve on a newer store: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "schema version 99") || !strings.Contains(string(out), "newer switchboard") {
		t.Fatalf("message does not explain the refusal:\n%s", out)
	}
}
