package asterisk

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	ariemu "github.com/switchboard-dev/switchboard/internal/emulator/ari"
	"github.com/switchboard-dev/switchboard/plugins"
)

var (
	modelsOnce sync.Once
	models     *ariemu.Models
	modelsErr  error
)

// startEmulator runs an ARI emulator on loopback that validates its own
// output against the official ARI descriptions; the test fails on any
// violation.
func startEmulator(t testing.TB, opts ariemu.Options) *ariemu.Server {
	t.Helper()
	modelsOnce.Do(func() {
		dir, err := ariemu.FindModelsDir()
		if err != nil {
			modelsErr = err
			return
		}
		models, modelsErr = ariemu.LoadModels(dir)
	})
	if modelsErr != nil {
		t.Fatalf("load ARI models: %v", modelsErr)
	}
	opts.Models = models
	s := ariemu.New(opts)
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		for _, v := range s.Violations() {
			t.Errorf("emulator output violation: %s", v)
		}
	})
	return s
}

// fastSettings are settings that make failures show within a test's
// patience.
func fastSettings(s *ariemu.Server) map[string]string {
	return map[string]string{
		SettingURL:             s.URL(),
		SettingWebsocketURL:    s.WebsocketURL(),
		SettingUser:            ariemu.DefaultUser,
		SettingPassword:        ariemu.DefaultPassword,
		SettingApp:             "switchboard-test",
		SettingConnectTimeout:  "2s",
		SettingRequestTimeout:  "400ms",
		SettingPingInterval:    "100ms",
		SettingRefreshInterval: "1h",
		SettingBackoffInitial:  "20ms",
		SettingBackoffMax:      "200ms",
	}
}

func with(m map[string]string, kv ...string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func testLogger(t testing.TB) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: t.Name(), Level: hclog.Warn, Output: testWriter{t}})
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startAdapter(t testing.TB, settings map[string]string) *Adapter {
	t.Helper()
	a := New(testLogger(t))
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.Configure(ctx, settings); err != nil {
		t.Fatalf("configure: %v", err)
	}
	t.Cleanup(a.Close)
	return a
}

func health(t testing.TB, a *Adapter) plugins.Health {
	t.Helper()
	h, err := a.Health(context.Background())
	if err != nil {
		t.Fatalf("health: %v", err)
	}
	if err := plugins.ValidateHealth(h, time.Now()); err != nil {
		t.Fatalf("health breaks the contract: %v", err)
	}
	return h
}

func describe(t testing.TB, a *Adapter) plugins.Facts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f, err := a.Describe(ctx)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	if err := plugins.ValidateFacts(f); err != nil {
		t.Fatalf("facts break the contract: %v", err)
	}
	return f
}

// eventually polls cond for up to 10 s.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitState(t testing.TB, a *Adapter, state string) plugins.Health {
	t.Helper()
	var h plugins.Health
	eventually(t, "health "+state, func() bool {
		h = health(t, a)
		return h.State == state
	})
	return h
}
