// Package testplugin is a plugin whose misbehaviour tests can switch at run
// time: it crashes, hangs, answers slowly, reports itself unhealthy, sends
// answers that break the contract, rejects its settings, or (at start)
// speaks another protocol version. Unhealthy answers carry the number of
// Health calls the process has had, so tests can see how often the host
// asks. It implements both Integration and
// SupportChannel; cmd/sb-testplugin serves it as a real plugin process.
//
// The behaviour comes from a mode file whose path is given at start; the
// plugin re-reads it on every call, so a test changes behaviour by
// rewriting the file. Its content is one mode, optionally with an argument:
//
//	ok                  answer normally (also: empty or missing file)
//	crash               exit with status 3 on the next call
//	crash-on-start      exit with status 3 before serving (read at start only)
//	hang                never answer (ignores the call's deadline)
//	slow DURATION       sleep DURATION, then answer
//	unhealthy           Health says healthy=false
//	healthy-after D     Health says "connecting" (healthy=false) until D after
//	                    the process started, then healthy, like an adapter
//	                    whose first connection is in progress
//	garbage             Describe/Health/Deliver answers break the contract
//	reject-settings     Configure fails
package testplugin

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-dev/switchboard/plugins"
)

// Modes a test can write into the mode file.
const (
	ModeOK             = "ok"
	ModeCrash          = "crash"
	ModeCrashOnStart   = "crash-on-start"
	ModeHang           = "hang"
	ModeSlow           = "slow"
	ModeUnhealthy      = "unhealthy"
	ModeHealthyAfter   = "healthy-after"
	ModeGarbage        = "garbage"
	ModeRejectSettings = "reject-settings"
)

// CrashExitCode is the exit status of a crash.
const CrashExitCode = 3

// Plugin is the test plugin's implementation.
type Plugin struct {
	modeFile    string
	started     time.Time
	healthCalls atomic.Int64

	mu       sync.Mutex
	settings map[string]string
}

var (
	_ plugins.Integration    = (*Plugin)(nil)
	_ plugins.SupportChannel = (*Plugin)(nil)
)

// New returns a plugin reading its mode from modeFile ("" means always ok).
func New(modeFile string) *Plugin {
	return &Plugin{modeFile: modeFile, started: time.Now()}
}

// Mode reads the mode file: the mode and its argument.
func (p *Plugin) Mode() (string, string) {
	if p.modeFile == "" {
		return ModeOK, ""
	}
	data, err := os.ReadFile(p.modeFile)
	if err != nil {
		return ModeOK, ""
	}
	fields := strings.Fields(string(data))
	switch len(fields) {
	case 0:
		return ModeOK, ""
	case 1:
		return fields[0], ""
	default:
		return fields[0], fields[1]
	}
}

// misbehave applies the current mode to a call and reports the mode.
func (p *Plugin) misbehave(ctx context.Context) (string, error) {
	mode, arg := p.Mode()
	switch mode {
	case ModeCrash:
		fmt.Fprintln(os.Stderr, "testplugin: crashing as asked")
		os.Exit(CrashExitCode)
	case ModeHang:
		select {} // a hung plugin does not look at its context either
	case ModeSlow:
		d, err := time.ParseDuration(arg)
		if err != nil {
			return mode, fmt.Errorf("mode file: slow needs a duration, got %q", arg)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return mode, ctx.Err()
		}
	}
	return mode, nil
}

// Configure stores the settings, or rejects them in reject-settings mode.
func (p *Plugin) Configure(ctx context.Context, settings map[string]string) error {
	if mode, _ := p.Mode(); mode == ModeRejectSettings {
		return errors.New(`setting "url" is required: set it in the plugin's settings`)
	}
	p.mu.Lock()
	p.settings = maps.Clone(settings)
	p.mu.Unlock()
	return nil
}

// Describe reports the test plugin as a product; details carry the pid and
// the settings it was configured with, so tests can see which process and
// which configuration answered.
func (p *Plugin) Describe(ctx context.Context) (plugins.Facts, error) {
	mode, err := p.misbehave(ctx)
	if err != nil {
		return plugins.Facts{}, err
	}
	if mode == ModeGarbage {
		return plugins.Facts{Product: "test", Seats: map[string]int64{plugins.SeatPBXEndpoints: -5}}, nil
	}
	p.mu.Lock()
	details := map[string]string{"pid": strconv.Itoa(os.Getpid())}
	for k, v := range p.settings {
		details["setting."+k] = v
	}
	p.mu.Unlock()
	return plugins.Facts{
		Product:      "testproduct",
		Version:      "1.2.3",
		Distribution: "test",
		Build:        "b42",
		Details:      details,
		Seats:        map[string]int64{plugins.SeatPBXEndpoints: 7},
	}, nil
}

// Health says healthy unless the mode says otherwise.
func (p *Plugin) Health(ctx context.Context) (plugins.Health, error) {
	n := p.healthCalls.Add(1)
	mode, err := p.misbehave(ctx)
	if err != nil {
		return plugins.Health{}, err
	}
	switch mode {
	case ModeUnhealthy:
		return plugins.Health{Healthy: false, State: "unreachable", Since: p.started,
			Detail: fmt.Sprintf("test product is down: start it (health check %d)", n)}, nil
	case ModeHealthyAfter:
		_, arg := p.Mode()
		d, err := time.ParseDuration(arg)
		if err != nil {
			return plugins.Health{}, fmt.Errorf("mode file: healthy-after needs a duration, got %q", arg)
		}
		if time.Since(p.started) < d {
			return plugins.Health{Healthy: false, State: "connecting", Since: p.started,
				Detail: fmt.Sprintf("first connection to the test product in progress (health check %d)", n)}, nil
		}
	case ModeGarbage:
		return plugins.Health{Healthy: true, State: "ok\xff\xfe"}, nil
	}
	return plugins.Health{Healthy: true, State: "connected", Since: p.started}, nil
}

// ApplyPartnerLink pretends to write the code.
func (p *Plugin) ApplyPartnerLink(ctx context.Context, code, tier string) (plugins.LinkResult, error) {
	if _, err := p.misbehave(ctx); err != nil {
		return plugins.LinkResult{}, err
	}
	if code == "" {
		return plugins.LinkResult{}, errors.New("partner code is empty")
	}
	return plugins.LinkResult{Applied: true, Detail: "code " + code + " (" + tier + ") written"}, nil
}

// Deliver returns a receipt naming the ticket.
func (p *Plugin) Deliver(ctx context.Context, t plugins.Ticket) (plugins.Receipt, error) {
	mode, err := p.misbehave(ctx)
	if err != nil {
		return plugins.Receipt{}, err
	}
	if mode == ModeGarbage {
		return plugins.Receipt{RemoteID: "x", URL: "javascript:alert(1)"}, nil
	}
	return plugins.Receipt{
		RemoteID: "T-" + t.ID,
		URL:      "https://helpdesk.example.test/tickets/" + t.ID,
		Detail:   fmt.Sprintf("delivery %s, %d bytes of diagnostics", t.DeliveryID, len(t.Diagnostics)),
	}, nil
}
