// Package agent is the daemon on the customer's server. It activates the
// install, reports subscription heartbeats through a durable outbox,
// verifies the licence the registry issues, hosts the plugins (through the
// PluginSet interface) and answers the local CLI on a unix socket.
//
// Run is the whole lifecycle: SIGTERM or SIGINT stop taking work, flush
// the outbox within the configured deadline and return nil; SIGHUP reloads
// the configuration (an invalid file is refused and the running one kept).
// A reload applies every key live except state_dir, which waits for a
// restart and is listed in status as restart-required (see Reload).
package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/localapi"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/sender"
	"github.com/switchboard-dev/switchboard/agent/state"
	"github.com/switchboard-dev/switchboard/internal/buildinfo"
	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// DefaultHeartbeatInterval is used until the registry names one.
const DefaultHeartbeatInterval = time.Hour

// Bounds on the heartbeat interval the registry hands out (see
// state.ClampHeartbeatInterval).
const (
	MinHeartbeatInterval = state.MinHeartbeatInterval
	MaxHeartbeatInterval = state.MaxHeartbeatInterval
)

// registryInterval clamps an interval from a registry answer and says so
// in the log when it had to.
func (d *Daemon) registryInterval(seconds int, from string) time.Duration {
	iv, ok := state.ClampHeartbeatInterval(seconds)
	if !ok {
		d.logClamped(seconds, iv, from)
	}
	return iv
}

func (d *Daemon) logClamped(seconds int, iv time.Duration, from string) {
	d.log.Warn("registry named a heartbeat interval outside the agent's bounds; using the nearest bound",
		"from", from, "heartbeat_interval_seconds", seconds, "using", iv,
		"min", MinHeartbeatInterval, "max", MaxHeartbeatInterval)
}

// linkFile keeps the last `partner set` request across restarts.
const linkFile = "link.json"

// Options configure Run.
type Options struct {
	// ConfigPath is the agent's TOML file.
	ConfigPath string
	// LogOutput receives the daemon's log (default os.Stderr), in the
	// level and format of the [log] section; a reload switches both.
	LogOutput io.Writer
	// NewPlugins builds the plugin set (default: NoPlugins).
	NewPlugins NewPluginSet
	// Facts gives host facts (default: SystemFacts).
	Facts FactSource
	// Signals delivers SIGTERM/SIGINT/SIGHUP (default: the process's own).
	Signals <-chan os.Signal
}

// Daemon is one running agent.
type Daemon struct {
	opts      Options
	log       hclog.Logger
	logSw     *logSwitch
	startedAt time.Time
	dir       *state.Dir
	key       ed25519.PrivateKey
	ob        *outbox.Outbox
	plugins   PluginSet
	facts     FactSource
	hbPoke    chan struct{}
	sup       *supportState // support tickets (support*.go)

	mu           sync.Mutex
	cfg          *config.Config
	keyring      *licensing.Keyring
	keyringErr   string
	install      state.Install
	activated    bool
	lic          licenceState
	link         *localapi.LinkRequestInfo
	interval     time.Duration // as the registry gave it
	hb           localapi.HeartbeatInfo
	lastReload   time.Time
	reloadErr    string
	loggedState  string
	lastGraceLog time.Time

	// restartRequired lists the keys whose new value waits for a restart.
	restartRequired []string
	// reloadMu serialises reloads.
	reloadMu sync.Mutex

	sndMu     sync.Mutex
	snd       *sender.Sender
	sndCancel context.CancelFunc
	sndDone   chan struct{}

	// The local API; a reload may move it to another socket. apiStop is
	// nil until Wait started it and after Wait stopped it.
	apiMu   sync.Mutex
	apiCtx  context.Context
	apiStop func(context.Context) error
}

type licenceState struct {
	armoured string
	lic      licensing.Licence
	has      bool // a licence that verified (it may have expired since)
	err      string
}

// Run starts the agent with the configuration at opts.ConfigPath and runs
// it until a stop signal or ctx ends. A clean stop returns nil.
func Run(ctx context.Context, opts Options) error {
	d, err := Start(opts)
	if err != nil {
		return err
	}
	return d.Wait(ctx)
}

// Start loads the configuration, opens the state and starts every part of
// the daemon. Call Wait to run it until it is told to stop.
func Start(opts Options) (*Daemon, error) {
	if opts.LogOutput == nil {
		opts.LogOutput = os.Stderr
	}
	if opts.NewPlugins == nil {
		opts.NewPlugins = func(config.Plugins, hclog.Logger) (PluginSet, error) { return NoPlugins{}, nil }
	}
	if opts.Facts == nil {
		opts.Facts = SystemFacts{}
	}
	cfg, err := config.Load(opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	log, logSw := newDaemonLogger(opts.LogOutput, cfg.Log)
	// The last warnings and errors go into support tickets' diagnostics.
	ring := newLogRing(logRingSize)
	log.RegisterSink(ring)
	d := &Daemon{opts: opts, log: log, logSw: logSw, cfg: cfg, startedAt: time.Now(), facts: opts.Facts,
		hbPoke: make(chan struct{}, 1), interval: DefaultHeartbeatInterval, sup: newSupportState(ring)}

	if d.dir, err = state.Open(cfg.StateDir); err != nil {
		return nil, err
	}
	key, created, err := d.dir.LoadOrCreateKey()
	if err != nil {
		return nil, err
	}
	d.key = key
	if created {
		log.Info("created a new install key", "path", d.dir.File(state.KeyFile))
	}
	d.loadKeyring(cfg.Licence.PublicKeys)

	d.ob, err = outbox.Open(d.dir.File(state.OutboxFile), outbox.Options{
		MaxRecords: cfg.Outbox.MaxRecords,
		OnCompact: func(n int, into uint64) {
			log.Warn("outbox full: compacted heartbeats into one summary", "heartbeats", n, "summary_seq", into)
		},
		OnRefuse: func(err error) { log.Error("heartbeat refused", "error", err) },
	})
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			_ = d.ob.Close()
		}
	}()

	inst, activated, err := d.dir.LoadInstall()
	if err != nil {
		return nil, err
	}
	d.install, d.activated = inst, activated
	if activated && inst.HeartbeatIntervalSeconds > 0 {
		d.interval = d.registryInterval(inst.HeartbeatIntervalSeconds, "install record")
	}
	if armoured, has, err := d.dir.LoadLicence(); err != nil {
		d.lic.err = err.Error()
	} else if has {
		d.adoptLicence(armoured, "file")
	} else {
		d.lic.err = "no licence file yet: it arrives with the activation"
	}
	d.loadLink()
	d.loadTickets()

	d.plugins, err = opts.NewPlugins(cfg.Plugins, log.Named("plugins"))
	if err != nil {
		return nil, fmt.Errorf("start plugins: %w", err)
	}
	if !activated {
		if err := d.enqueueActivation(); err != nil {
			_ = d.plugins.Close()
			return nil, err
		}
	}
	// An install linked at activation (by the installer) has never told
	// its products; plugins that are not up yet catch up with a heartbeat.
	d.showPartnerLink(d.install.Partner)
	ok = true
	return d, nil
}

// showPartnerLink asks the Integration plugins to write the partner code
// into their products, in the background. The plugin set remembers the
// link and retries with later heartbeats where it could not be applied.
func (d *Daemon) showPartnerLink(p *api.PartnerRef) {
	if p == nil || p.Code == "" {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := d.plugins.ApplyPartnerLink(ctx, p.Code, p.Tier); err != nil {
			d.log.Info("plugins will show the partner link once they are up", "code", p.Code, "detail", err)
		}
	}()
}

// Wait serves until a stop signal or ctx ends, then shuts down.
func (d *Daemon) Wait(ctx context.Context) error {
	sigs := d.opts.Signals
	if sigs == nil {
		ch := make(chan os.Signal, 4)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		defer signal.Stop(ch)
		sigs = ch
	}
	d.apiMu.Lock()
	cfg := d.config()
	stopAPI, err := localapi.Serve(ctx, cfg.Socket, d, d.log.Named("localapi"))
	if err == nil {
		d.apiCtx, d.apiStop = ctx, stopAPI
	}
	d.apiMu.Unlock()
	if err != nil {
		_ = d.plugins.Close()
		_ = d.ob.Close()
		return err
	}
	d.startSender(cfg)
	hbCtx, hbCancel := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); d.heartbeats(hbCtx) }()
	supDone := make(chan struct{})
	go func() { defer close(supDone); d.supportLoop(hbCtx) }()

	d.log.Info("agent running", "version", buildinfo.Get().Version, "socket", cfg.Socket,
		"state_dir", cfg.StateDir, "registry", cfg.Registry.URL, "install_id", d.installID(),
		"licence", d.licenceInfo(time.Now()).State)

	var stopSig os.Signal
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.Reload()
				continue
			}
			stopSig = s
			break loop
		}
	}
	d.log.Info("stopping: no new work, flushing the outbox", "signal", fmt.Sprint(stopSig))

	// Stop taking work: the CLI and the heartbeat schedule.
	d.apiMu.Lock()
	stopAPI, d.apiStop = d.apiStop, nil
	d.apiMu.Unlock()
	apiCtx, apiCancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = stopAPI(apiCtx)
	apiCancel()
	hbCancel()
	<-hbDone
	<-supDone
	d.stopSender()

	deadline := d.config().Outbox.FlushDeadline
	flushCtx, flushCancel := context.WithTimeout(context.Background(), deadline)
	go func() {
		// A second stop signal ends the flush at once.
		select {
		case <-sigs:
			flushCancel()
		case <-flushCtx.Done():
		}
	}()
	d.sndMu.Lock()
	snd := d.snd
	d.sndMu.Unlock()
	if err := snd.Flush(flushCtx); err != nil {
		d.log.Warn("outbox not empty at exit; the rest is sent after the next start", "deadline", deadline, "left", d.ob.Stats().Depth)
	} else {
		d.log.Info("outbox flushed")
	}
	flushCancel()
	if err := d.plugins.Close(); err != nil {
		d.log.Warn("stop plugins", "error", err)
	}
	if err := d.ob.Close(); err != nil {
		return fmt.Errorf("close outbox: %w", err)
	}
	d.log.Info("agent stopped")
	return nil
}

func (d *Daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

func (d *Daemon) installID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.activated {
		return ""
	}
	return d.install.InstallID
}

func (d *Daemon) startSender(cfg *config.Config) {
	s := sender.New(d.ob, sender.Options{
		URL: cfg.Registry.URL, Key: d.key, BatchSize: cfg.Sender.BatchSize,
		BackoffMin: cfg.Sender.BackoffMin, BackoffMax: cfg.Sender.BackoffMax,
		RequestTimeout: cfg.Sender.RequestTimeout, Log: d.log.Named("sender"), Hooks: hooks{d},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	d.sndMu.Lock()
	d.snd, d.sndCancel, d.sndDone = s, cancel, done
	d.sndMu.Unlock()
}

func (d *Daemon) stopSender() {
	d.sndMu.Lock()
	cancel, done := d.sndCancel, d.sndDone
	d.sndMu.Unlock()
	cancel()
	<-done
}

// enqueueActivation queues the activation unless one is waiting already
// (queued by the installer, or by an earlier start).
func (d *Daemon) enqueueActivation() error {
	recs, err := d.ob.Pending(0)
	if err != nil {
		return err
	}
	for _, r := range recs {
		if r.Kind == outbox.KindActivation {
			d.log.Info("activation is waiting in the outbox", "seq", r.Seq, "since", r.At)
			return nil
		}
	}
	req := api.ActivationRequest{PublicKey: d.key.Public().(ed25519.PublicKey), Facts: d.hostFacts(nil)}
	seq, err := d.ob.Append(outbox.KindActivation, req)
	if err != nil {
		return fmt.Errorf("queue the activation: %w", err)
	}
	d.log.Info("queued the activation", "seq", seq)
	return nil
}

func (d *Daemon) hostFacts(obs *Observation) api.Facts {
	f := d.facts.HostFacts()
	if obs != nil {
		f.Products = obs.Products
	}
	return f
}

// --- licence -------------------------------------------------------------

func (d *Daemon) loadKeyring(paths []string) {
	var keys []licensing.PublicKey
	var errs []string
	for _, p := range paths {
		ks, err := licensing.LoadPublicKeys(p)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		keys = append(keys, ks...)
	}
	d.mu.Lock()
	d.keyring = licensing.NewKeyring(keys...)
	d.keyringErr = ""
	if len(errs) > 0 {
		d.keyringErr = fmt.Sprintf("licence.public_keys: %v", errs)
	}
	d.mu.Unlock()
	if len(errs) > 0 {
		d.log.Error("cannot read vendor public key(s); licences cannot be verified until licence.public_keys is fixed (then send SIGHUP)", "errors", errs)
	}
}

// adoptLicence verifies armoured and makes it the current licence when it
// is at least as good as the one held. A licence that does not verify never
// replaces a good one, on disk or in memory.
func (d *Daemon) adoptLicence(armoured, source string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	id := ""
	if d.activated {
		id = d.install.InstallID
	}
	now := time.Now()
	l, st, err := d.keyring.Verify([]byte(armoured), id, now)
	if err != nil && !errors.Is(err, licensing.ErrExpired) {
		if d.keyringErr != "" {
			err = fmt.Errorf("%w (%s)", err, d.keyringErr)
		}
		d.log.Error("licence does not verify; keeping the current one", "source", source, "error", err)
		if !d.lic.has {
			d.lic.err = err.Error()
		}
		return false
	}
	if d.lic.has && st == licensing.StatusExpired && d.lic.lic.NotAfter.After(l.NotAfter) {
		d.log.Warn("ignoring a licence older than the current one", "source", source, "licence_id", l.ID)
		return false
	}
	if source != "file" && armoured != d.lic.armoured {
		if err := d.dir.SaveLicence(armoured); err != nil {
			d.log.Error("store the new licence", "error", err)
			return false
		}
	}
	changed := d.lic.armoured != armoured
	d.lic = licenceState{armoured: armoured, lic: l, has: true}
	if changed {
		d.log.Info("licence verified", "source", source, "licence_id", l.ID, "state", string(st),
			"partner_code", l.PartnerCode, "tier", string(l.Tier), "not_after", l.NotAfter.Format(time.RFC3339))
	}
	d.checkLicenceLocked(now)
	return true
}

func (d *Daemon) licenceInfo(now time.Time) localapi.LicenceInfo {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.licenceInfoLocked(now)
}

func (d *Daemon) licenceInfoLocked(now time.Time) localapi.LicenceInfo {
	if !d.lic.has {
		msg := d.lic.err
		if d.keyringErr != "" {
			msg += " (" + d.keyringErr + ")"
		}
		return localapi.LicenceInfo{State: "missing", Error: msg}
	}
	l := d.lic.lic
	st := l.StatusAt(now)
	info := localapi.LicenceInfo{State: string(st), Licensed: st != licensing.StatusExpired, LicenceID: l.ID,
		PartnerCode: l.PartnerCode, Tier: string(l.Tier), NotAfter: l.NotAfter, GraceEnds: l.GraceEnds()}
	switch st {
	case licensing.StatusGrace:
		info.Error = fmt.Sprintf("licence ended on %s; the product keeps working until %s: renew it", l.NotAfter.Format(time.DateOnly), l.GraceEnds().Format(time.DateOnly))
	case licensing.StatusExpired:
		info.Error = fmt.Sprintf("licence and its grace period ended on %s: the product is unlicensed; reports continue. Renew it with the vendor or your partner", l.GraceEnds().Format(time.DateOnly))
	}
	return info
}

// checkLicenceLocked logs state changes, and the grace warning once a day.
func (d *Daemon) checkLicenceLocked(now time.Time) {
	info := d.licenceInfoLocked(now)
	changed := info.State != d.loggedState
	d.loggedState = info.State
	switch info.State {
	case "grace":
		if changed || now.Sub(d.lastGraceLog) >= 24*time.Hour {
			d.lastGraceLog = now
			d.log.Warn("licence in its grace period", "not_after", info.NotAfter.Format(time.RFC3339), "grace_ends", info.GraceEnds.Format(time.RFC3339), "detail", info.Error)
		}
	case "expired":
		if changed {
			d.log.Error("licence expired: the product is unlicensed; heartbeats continue", "grace_ended", info.GraceEnds.Format(time.RFC3339))
		}
	case "missing":
		if changed {
			d.log.Warn("no valid licence", "detail", info.Error)
		}
	}
}

// --- heartbeats ----------------------------------------------------------

func (d *Daemon) heartbeatInterval() time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cfg.Heartbeat.Interval > 0 {
		return d.cfg.Heartbeat.Interval
	}
	return d.interval
}

func (d *Daemon) jittered(iv time.Duration) time.Duration {
	j := d.config().Heartbeat.Jitter
	if j <= 0 {
		return iv
	}
	f := 1 + j*(2*rand.Float64()-1)
	return time.Duration(float64(iv) * f)
}

func (d *Daemon) heartbeats(ctx context.Context) {
	for {
		d.beat(ctx)
		last := time.Now()
		next := last.Add(d.jittered(d.heartbeatInterval()))
	wait:
		for {
			d.mu.Lock()
			d.hb.NextAt = next
			d.hb.IntervalSeconds = d.heartbeatIntervalLocked().Seconds()
			d.mu.Unlock()
			t := time.NewTimer(time.Until(next))
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
				break wait
			case <-d.hbPoke:
				t.Stop()
				// The interval changed: re-plan from the last heartbeat.
				next = last.Add(d.jittered(d.heartbeatInterval()))
			}
		}
	}
}

func (d *Daemon) heartbeatIntervalLocked() time.Duration {
	if d.cfg.Heartbeat.Interval > 0 {
		return d.cfg.Heartbeat.Interval
	}
	return d.interval
}

func (d *Daemon) pokeHeartbeats() {
	select {
	case d.hbPoke <- struct{}{}:
	default:
	}
}

// observeTimeout bounds how long a heartbeat waits for the plugins.
const observeTimeout = 10 * time.Second

func (d *Daemon) beat(ctx context.Context) {
	octx, cancel := context.WithTimeout(ctx, min(observeTimeout, d.heartbeatInterval()/2))
	obs := d.plugins.Observe(octx)
	cancel()
	now := time.Now()
	facts := d.hostFacts(&obs)
	d.mu.Lock()
	d.checkLicenceLocked(now)
	lstate := d.licenceInfoLocked(now).State
	d.mu.Unlock()
	rep := api.Report{Kind: api.KindHeartbeat, At: now.UTC(), Facts: &facts, Seats: obs.Seats,
		Plugins: obs.Plugins, LicenceState: lstate}
	seq, err := d.ob.Append(outbox.KindHeartbeat, rep)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.hb.LastError = err.Error()
		if !errors.Is(err, outbox.ErrFull) { // ErrFull was logged by the outbox hook
			d.log.Error("queue heartbeat", "error", err)
		}
		return
	}
	d.hb.LastError = ""
	d.hb.LastAt, d.hb.LastSeq = now, seq
	d.log.Debug("heartbeat queued", "seq", seq, "licence", lstate)
}

// --- registry answers (sender hooks) --------------------------------------

type hooks struct{ d *Daemon }

func (h hooks) InstallID() string { return h.d.installID() }

func (h hooks) Activated(resp api.ActivationResponse) error {
	d := h.d
	d.mu.Lock()
	if d.activated && d.install.InstallID != resp.InstallID {
		d.log.Warn("registry answered the activation with another install id; using it", "old", d.install.InstallID, "new", resp.InstallID)
	}
	inst := d.install
	if !d.activated || inst.InstallID != resp.InstallID {
		inst = state.Install{InstallID: resp.InstallID, ActivatedAt: time.Now().UTC()}
	}
	// The record keeps the clamped interval: an out-of-range value stored
	// as given would make the next start refuse the install record.
	var iv time.Duration
	inst.HeartbeatIntervalSeconds = 0
	if resp.HeartbeatIntervalSeconds > 0 {
		iv = d.registryInterval(resp.HeartbeatIntervalSeconds, "activation")
		inst.HeartbeatIntervalSeconds = int(iv / time.Second)
	}
	inst.Partner, inst.LinkNote = resp.Partner, resp.LinkNote
	if err := d.dir.SaveInstall(inst); err != nil {
		d.mu.Unlock()
		return err
	}
	d.install, d.activated = inst, true
	if iv > 0 {
		d.interval = iv
	}
	d.mu.Unlock()
	d.log.Info("install activated", "install_id", resp.InstallID, "partner", partnerCode(resp.Partner), "note", resp.LinkNote)
	d.showPartnerLink(resp.Partner)
	if resp.Licence != "" {
		d.adoptLicence(resp.Licence, "activation")
	}
	d.pokeHeartbeats()
	return nil
}

func partnerCode(p *api.PartnerRef) string {
	if p == nil {
		return ""
	}
	return p.Code
}

func (h hooks) ReportsAnswered(resp api.ReportBatchResponse) {
	d := h.d
	if resp.HeartbeatIntervalSeconds > 0 {
		iv, inBounds := state.ClampHeartbeatInterval(resp.HeartbeatIntervalSeconds)
		d.mu.Lock()
		changed := iv != d.interval
		if changed {
			// Logged once, when adopted, not with every answer that
			// repeats the same out-of-range value.
			if !inBounds {
				d.logClamped(resp.HeartbeatIntervalSeconds, iv, "report answer")
			}
			d.interval = iv
			d.install.HeartbeatIntervalSeconds = int(iv / time.Second)
			if err := d.dir.SaveInstall(d.install); err != nil {
				d.log.Warn("store the heartbeat interval", "error", err)
			}
		}
		d.mu.Unlock()
		if changed {
			d.log.Info("registry set the heartbeat interval", "interval", iv)
			d.pokeHeartbeats()
		}
	}
	if resp.Licence != "" {
		d.adoptLicence(resp.Licence, "re-issue")
	}
}

func (h hooks) Linked(seq uint64, resp api.LinkResponse) {
	d := h.d
	ok := d.adoptLicence(resp.Licence, "link")
	d.mu.Lock()
	p := resp.Partner
	d.install.Partner, d.install.LinkNote = &p, ""
	if err := d.dir.SaveInstall(d.install); err != nil {
		d.log.Error("store the partner link", "error", err)
	}
	if d.link != nil && d.link.Seq == seq {
		d.link.State, d.link.AnsweredAt = "linked", time.Now().UTC()
		d.link.Message = "linked to " + p.Code
		if !ok {
			d.link.Message += ", but the re-issued licence does not verify (see licence)"
		}
		d.saveLinkLocked()
	}
	d.mu.Unlock()
	d.log.Info("install linked to partner", "code", p.Code, "tier", p.Tier)
	d.showPartnerLink(&p)
}

func (h hooks) LinkRefused(seq uint64, e *sender.APIError) {
	d := h.d
	msg := e.Message
	if e.Code == api.CodeAlreadyLinked {
		msg = "already linked to another partner: a link is permanent; only vendor staff can move it (" + e.Message + ")"
	}
	d.mu.Lock()
	if d.link != nil && d.link.Seq == seq {
		d.link.State, d.link.Message, d.link.AnsweredAt = "refused", msg, time.Now().UTC()
		d.saveLinkLocked()
	}
	d.mu.Unlock()
	d.log.Error("registry refused the partner link", "seq", seq, "status", e.HTTPStatus, "code", e.Code, "error", msg)
}

func (h hooks) Deactivated(seq uint64) {
	h.d.log.Info("registry recorded the deactivation", "seq", seq)
}

// --- partner link requests ---------------------------------------------

// RequestLink implements localapi.Agent.
func (d *Daemon) RequestLink(_ context.Context, input string) (localapi.LinkAnswer, error) {
	code, err := partnercode.Parse(input)
	if err != nil {
		return localapi.LinkAnswer{}, &localapi.Error{HTTPStatus: 422, Code: api.CodeInvalid, Message: err.Error()}
	}
	c := code.String()
	d.mu.Lock()
	if p := d.install.Partner; p != nil {
		d.mu.Unlock()
		if p.Code == c {
			return localapi.LinkAnswer{Code: c, Message: "this install is already linked to " + c}, nil
		}
		return localapi.LinkAnswer{}, &localapi.Error{HTTPStatus: 409, Code: api.CodeAlreadyLinked,
			Message: fmt.Sprintf("this install is already linked to partner %s: a link is permanent; only vendor staff can move it", p.Code)}
	}
	if d.link != nil && d.link.State == "pending" && d.link.Code == c {
		ans := localapi.LinkAnswer{Seq: d.link.Seq, Code: c, Message: "a link to " + c + " is already waiting for the registry"}
		d.mu.Unlock()
		return ans, nil
	}
	d.mu.Unlock()
	seq, err := d.ob.Append(outbox.KindLink, api.LinkRequest{PartnerCode: c})
	if err != nil {
		return localapi.LinkAnswer{}, fmt.Errorf("queue the link request: %w", err)
	}
	d.mu.Lock()
	d.link = &localapi.LinkRequestInfo{Code: c, Seq: seq, State: "pending", RequestedAt: time.Now().UTC()}
	d.saveLinkLocked()
	d.mu.Unlock()
	d.log.Info("partner link queued", "code", c, "seq", seq)
	return localapi.LinkAnswer{Seq: seq, Code: c, Message: "link to " + c + " queued; the registry's answer shows in `switchboard status`"}, nil
}

func (d *Daemon) saveLinkLocked() {
	data, err := json.Marshal(d.link)
	if err == nil {
		err = state.WriteFileAtomic(d.dir.File(linkFile), data, 0o600)
	}
	if err != nil {
		d.log.Warn("store the link request state", "error", err)
	}
}

// maxLinkFileBytes bounds link.json: the agent writes a few hundred bytes.
const maxLinkFileBytes = 64 << 10

// loadLink reads link.json, the state of the last `partner set`. A file
// that cannot be trusted is kept aside as link.json.corrupt-TIMESTAMP, never
// overwritten unseen: the request itself stays in the outbox, so only the
// progress `switchboard status` shows is lost.
func (d *Daemon) loadLink() {
	path := d.dir.File(linkFile)
	l, err := readLinkFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return
	case err == nil:
		d.link = &l
		return
	}
	const meaning = "only the progress of the last 'switchboard partner set' that 'switchboard status' shows is lost: " +
		"a request still waiting stays queued in the outbox, and a confirmed link is kept in the install record"
	aside, rerr := setAside(path, time.Now())
	if rerr != nil {
		d.log.Error("link request state is damaged and could not be set aside; the next 'switchboard partner set' overwrites it",
			"path", path, "error", err, "set_aside_error", rerr, "meaning", meaning)
		return
	}
	d.log.Warn("link request state is damaged; kept aside for inspection", "path", path, "kept_as", aside, "error", err, "meaning", meaning)
}

// readLinkFile reads and checks link.json.
func readLinkFile(path string) (localapi.LinkRequestInfo, error) {
	var l localapi.LinkRequestInfo
	fh, err := os.Open(path)
	if err != nil {
		return l, err
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, maxLinkFileBytes+1))
	if err != nil {
		return l, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > maxLinkFileBytes {
		return l, fmt.Errorf("%s is larger than %d bytes", path, maxLinkFileBytes)
	}
	if err := json.Unmarshal(data, &l); err != nil {
		return l, fmt.Errorf("%s is not JSON link state: %w", path, err)
	}
	code, err := partnercode.Parse(l.Code)
	if err != nil {
		return l, fmt.Errorf("%s names partner code %q: %w", path, l.Code, err)
	}
	l.Code = code.String()
	switch l.State {
	case "pending", "linked", "refused":
	default:
		return l, fmt.Errorf("%s has state %q, not pending, linked or refused", path, l.State)
	}
	if l.Seq == 0 {
		return l, fmt.Errorf("%s has no outbox sequence number", path)
	}
	return l, nil
}

// setAside renames a damaged state file to NAME.corrupt-TIMESTAMP (with a
// counter if that exists) and returns the new path.
func setAside(path string, now time.Time) (string, error) {
	base := path + ".corrupt-" + now.UTC().Format("20060102T150405Z")
	aside := base
	for i := 2; ; i++ {
		if _, err := os.Lstat(aside); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if i > 100 {
			return "", fmt.Errorf("too many %s* files", base)
		}
		aside = fmt.Sprintf("%s-%d", base, i)
	}
	if err := os.Rename(path, aside); err != nil {
		return "", fmt.Errorf("set %s aside: %w", path, err)
	}
	return aside, nil
}

// --- status --------------------------------------------------------------

// Status implements localapi.Agent.
func (d *Daemon) Status(context.Context) localapi.Status {
	now := time.Now()
	d.sndMu.Lock()
	snd := d.snd
	d.sndMu.Unlock()
	st := localapi.Status{Plugins: d.plugins.Status()}
	if st.Plugins == nil {
		st.Plugins = []localapi.PluginStatus{}
	}
	if snd != nil {
		st.Registry = snd.Status()
	}
	obs := d.ob.Stats()
	st.Outbox = localapi.OutboxInfo{Stats: obs}
	if !obs.OldestAt.IsZero() {
		st.Outbox.OldestAgeSeconds = now.Sub(obs.OldestAt).Seconds()
	}
	if obs.DeadLetters > 0 {
		if dl, err := d.ob.DeadLetters(0); err == nil {
			if len(dl) > 5 {
				dl = dl[len(dl)-5:]
			}
			for _, x := range dl {
				st.Outbox.RecentDead = append(st.Outbox.RecentDead, localapi.DeadSummary{Seq: x.Seq, Kind: x.Kind, Status: x.Status, Reason: x.Reason, DiedAt: x.DiedAt})
			}
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	st.Agent = localapi.AgentInfo{Version: buildinfo.Get().Version, PID: osPID, StartedAt: d.startedAt,
		ConfigFile: d.opts.ConfigPath, StateDir: d.cfg.StateDir, Socket: d.cfg.Socket,
		LastReload: d.lastReload, ReloadError: d.reloadErr, RestartRequired: slices.Clone(d.restartRequired)}
	if d.activated {
		st.Install = localapi.InstallInfo{Activated: true, InstallID: d.install.InstallID, ActivatedAt: d.install.ActivatedAt}
	}
	st.Licence = d.licenceInfoLocked(now)
	if p := d.install.Partner; p != nil {
		st.Partner = localapi.PartnerInfo{Linked: true, Code: p.Code, Tier: p.Tier, Name: p.Name}
	}
	st.Partner.Note = d.install.LinkNote
	if d.link != nil {
		l := *d.link
		st.Partner.Request = &l
	}
	st.Heartbeat = d.hb
	st.Heartbeat.IntervalSeconds = d.heartbeatIntervalLocked().Seconds()
	return st
}

var osPID = os.Getpid()

// --- reload --------------------------------------------------------------

// Reload re-reads the configuration file and the plugin manifest and
// applies them without a restart:
//
//   - log.level and log.format: every later line, from every sub-logger
//     and from the plugins, comes in the new level and format (a plugin
//     writes only the lines at or above the level it was started with, so
//     a more verbose level shows in its lines from its next start);
//   - socket: the local API opens the new socket (mode 0660, the same
//     checks as at start), then closes the old one and removes its file; if
//     the new one cannot be opened the old one stays in service;
//   - outbox.max_records: the new bound holds from the next append; a bound
//     below the depth compacts heartbeats, it never drops a record (see
//     package outbox);
//   - licence.public_keys, registry, sender, heartbeat, support and
//     outbox.flush_deadline: at once;
//   - plugins: the manifest is re-read; only plugins whose entry or
//     settings changed restart, the others keep running. plugins.dir is
//     where third-party binaries are installed; the host starts each plugin
//     from the path its manifest entry names, so a new dir moves nothing
//     by itself (an entry whose path changes restarts).
//
// state_dir is the exception: the install key, licence and outbox live
// there, so a new value waits for a restart. Until then the running
// directory stays in force, with the defaults derived from it (socket,
// vendor key, plugin dir and manifest), status shows it, and status lists
// state_dir under restart_required.
//
// An invalid file is refused with a logged error naming the key and line,
// and the running configuration stays. What a valid file asked for but
// could not be applied (a socket, the plugin manifest) is logged and shown
// in status as the reload error; the rest of the file is applied.
func (d *Daemon) Reload() {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.config()
	cfg, fileStateDir, err := config.LoadRunning(d.opts.ConfigPath, old.StateDir)
	if err != nil {
		d.mu.Lock()
		d.lastReload, d.reloadErr = time.Now(), "refused, the running configuration stays: "+err.Error()
		d.mu.Unlock()
		d.log.Error("reload refused; keeping the running configuration", "error", err)
		return
	}
	var problems, restart []string

	// The log first, so the lines about this reload come in the new format.
	if running := d.logSw.config(); cfg.Log != running {
		d.logSw.set(cfg.Log)
		d.log.SetLevel(hclog.LevelFromString(cfg.Log.Level))
		d.log.Info("log settings applied", "level", cfg.Log.Level, "format", cfg.Log.Format,
			"was_level", running.Level, "was_format", running.Format)
	}
	if fileStateDir != old.StateDir {
		restart = append(restart, "state_dir")
		d.log.Warn("state_dir changed in the file; it takes effect after a restart (the install key, licence and outbox live there). "+
			"Until then the agent keeps the running directory and the defaults derived from it",
			"running", old.StateDir, "file", fileStateDir)
	}
	if cfg.Socket != old.Socket {
		if err := d.moveSocket(cfg.Socket); err != nil {
			problems = append(problems, fmt.Sprintf("socket %s not opened, still serving %s: %v", cfg.Socket, old.Socket, err))
			d.log.Error("local API not moved to the new socket; the old one stays in service", "running", old.Socket, "new", cfg.Socket, "error", err)
			cfg.Socket = old.Socket
		}
	}
	if was := d.ob.MaxRecords(); cfg.Outbox.MaxRecords != was {
		if err := d.ob.SetMaxRecords(cfg.Outbox.MaxRecords); err != nil {
			problems = append(problems, "outbox.max_records: "+err.Error())
			cfg.Outbox.MaxRecords = was
		} else if depth := d.ob.Stats().Depth; depth > cfg.Outbox.MaxRecords {
			d.log.Warn("outbox bound lowered below its depth; the next heartbeats compact the oldest ones into summaries (nothing is dropped)",
				"max_records", cfg.Outbox.MaxRecords, "was", was, "depth", depth)
		} else {
			d.log.Info("outbox bound applied", "max_records", cfg.Outbox.MaxRecords, "was", was, "depth", depth)
		}
	}

	d.mu.Lock()
	d.cfg = cfg
	d.restartRequired = restart
	keyringBroken := d.keyringErr != ""
	d.mu.Unlock()

	if !reflect.DeepEqual(cfg.Licence.PublicKeys, old.Licence.PublicKeys) || keyringBroken {
		d.loadKeyring(cfg.Licence.PublicKeys)
		d.mu.Lock()
		armoured := d.lic.armoured
		d.lic = licenceState{}
		d.mu.Unlock()
		if armoured == "" {
			armoured, _, _ = d.dir.LoadLicence()
		}
		if armoured != "" {
			d.adoptLicence(armoured, "file")
		}
	}
	if cfg.Registry != old.Registry || cfg.Sender != old.Sender {
		d.stopSender()
		d.startSender(cfg)
		d.log.Info("registry connection settings reloaded", "registry", cfg.Registry.URL)
	}
	if cfg.Heartbeat != old.Heartbeat {
		d.pokeHeartbeats()
	}
	// The manifest is re-read on every reload (the installer changes it
	// and sends SIGHUP): only new, removed or changed plugins are touched.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	err = d.plugins.Reconfigure(ctx, cfg.Plugins)
	cancel()
	if err != nil {
		problems = append(problems, "the plugin manifest was not applied: "+err.Error())
	}

	d.mu.Lock()
	d.lastReload = time.Now()
	d.reloadErr = ""
	if len(problems) > 0 {
		d.reloadErr = "configuration applied, except: " + strings.Join(problems, "; ")
	}
	d.mu.Unlock()
	d.log.Info("configuration reloaded", "file", d.opts.ConfigPath, "restart_required", restart, "problems", len(problems))
}

// moveSocket opens the local API on path, then closes the running socket
// and removes its file. When path cannot be served the running socket is
// left as it was. Before Wait started the API there is nothing to move:
// Wait opens the socket the configuration names.
func (d *Daemon) moveSocket(path string) error {
	d.apiMu.Lock()
	defer d.apiMu.Unlock()
	if d.apiStop == nil {
		return nil
	}
	stop, err := localapi.Serve(d.apiCtx, path, d, d.log.Named("localapi"))
	if err != nil {
		return err
	}
	old := d.apiStop
	d.apiStop = stop
	// Requests already running on the old socket get a moment to finish.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := old(ctx); err != nil {
		d.log.Warn("old local API socket did not close cleanly", "error", err)
	}
	d.log.Info("local API moved to the new socket", "socket", path)
	return nil
}
