package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"

	"github.com/switchboard-dev/switchboard/plugins"
)

// Defaults of Options.
const (
	DefaultCallTimeout    = 5 * time.Second
	DefaultStartTimeout   = 15 * time.Second
	DefaultHealthInterval = 15 * time.Second
	DefaultHealthRecheck  = 250 * time.Millisecond
	DefaultHealthTimeout  = 3 * time.Second
	DefaultBackoffInitial = 1 * time.Second
	DefaultBackoffMax     = 1 * time.Minute
	DefaultStableAfter    = 1 * time.Minute
)

// maxSocketDirLen leaves room in the 108-byte unix socket path for
// "/sbpNNNNNNNNNN/pluginNNNNNNNNNN".
const maxSocketDirLen = 70

// killGrace is how long a graceful stop may take before the process is
// killed.
const killGrace = 3 * time.Second

// Options tune a Supervisor. Zero values take the Default* constants.
type Options struct {
	// Logger receives the supervisor's logs and the plugin's own (go-plugin
	// re-logs the plugin's stderr under it).
	Logger hclog.Logger
	// CallTimeout bounds every call made through Integration() and
	// SupportChannel(), whatever the caller's context says, and Configure.
	CallTimeout time.Duration
	// StartTimeout bounds process start and handshake.
	StartTimeout time.Duration
	// HealthInterval is the time between health checks of a healthy plugin.
	HealthInterval time.Duration
	// HealthRecheck is the first delay before checking again a plugin that
	// answered unhealthy (typically "connecting" just after start); it
	// doubles with every unhealthy answer up to HealthInterval and starts
	// over once the plugin is healthy. So a plugin that connects within
	// moments is shown healthy within moments, and a plugin that stays
	// broken is asked a handful more times before settling on
	// HealthInterval.
	HealthRecheck time.Duration
	// HealthTimeout bounds a health check; a plugin that misses it is
	// considered hung, killed and restarted.
	HealthTimeout time.Duration
	// BackoffInitial is the first restart delay; it doubles with every
	// consecutive failure up to BackoffMax, with ±20% jitter.
	BackoffInitial time.Duration
	BackoffMax     time.Duration
	// StableAfter: a plugin that ran at least this long before failing
	// restarts with BackoffInitial again.
	StableAfter time.Duration
	// OnChange, when set, is called with the new status after every state
	// change, from the supervisor's goroutine. It must return quickly and
	// must not call Stop.
	OnChange func(Status)

	// SocketDir is where each plugin process gets its private (0700)
	// directory for its unix socket; default os.TempDir(). The host removes
	// the directory once the process is reaped, so sockets of killed
	// plugins do not pile up over the years.
	SocketDir string

	// DisablePdeathsig and DisableLifeline each turn off one of the two
	// independent guards that end a plugin when its host dies. They exist
	// so tests can prove each guard alone; production code leaves both on.
	DisablePdeathsig bool
	DisableLifeline  bool
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.CallTimeout, DefaultCallTimeout)
	def(&o.StartTimeout, DefaultStartTimeout)
	def(&o.HealthInterval, DefaultHealthInterval)
	def(&o.HealthTimeout, DefaultHealthTimeout)
	def(&o.HealthRecheck, DefaultHealthRecheck)
	def(&o.BackoffInitial, DefaultBackoffInitial)
	def(&o.BackoffMax, DefaultBackoffMax)
	def(&o.StableAfter, DefaultStableAfter)
	if o.BackoffMax < o.BackoffInitial {
		o.BackoffMax = o.BackoffInitial
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
	return o
}

// RefusedError says why the host will not start a plugin. The plugin stays
// refused until its manifest entry changes (UpdateEntry, Update) or
// Restart is called.
type RefusedError struct {
	Plugin string
	Reason string
	Err    error
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("plugin %q refused: %s", e.Plugin, e.Reason)
}
func (e *RefusedError) Unwrap() error { return e.Err }

// ChecksumError is the refusal of a binary whose SHA-256 is not the one in
// the manifest.
type ChecksumError struct {
	Plugin, Path, Expected, Actual string
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("checksum mismatch for %s: the manifest expects sha256 %s but the file has %s; "+
		"re-run the installer or update the manifest", e.Path, e.Expected, e.Actual)
}

// NotRunningError is returned by calls made while the plugin is not running.
type NotRunningError struct {
	Status Status
}

func (e *NotRunningError) Error() string {
	return fmt.Sprintf("plugin %q is not running: %s", e.Status.Name, e.Status.Summary(time.Now()))
}

// Supervisor keeps one plugin process running: it starts it (only if its
// checksum matches the manifest), configures it, checks its health, gives
// every call a deadline, and restarts it with exponential backoff when it
// crashes or hangs. A Supervisor never panics or blocks its caller because
// of the plugin.
//
// The plugin process is bound to the host's life twice over: it is spawned
// from an OS thread that lives as long as the supervisor with
// PR_SET_PDEATHSIG=SIGKILL, and it holds the read end of a pipe (the
// lifeline) whose write end only the host has, on which plugins.Serve
// exits at EOF. Either one alone ends the plugin when the host is killed.
type Supervisor struct {
	opts Options
	log  hclog.Logger
	name string       // immutable: UpdateEntry refuses to change it
	kind plugins.Kind // immutable too

	mu      sync.Mutex
	entry   Entry
	status  Status
	started bool
	// inst is the running process, nil between processes. It is atomic so
	// that calls, which only read it, never wait for the status mutex that
	// the supervisor's goroutine and Status() hold.
	inst atomic.Pointer[instance]

	changed  chan string   // restart requests (reason); buffered 1
	probe    chan struct{} // health check requests; buffered 1
	stopCh   chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// instance is one running plugin process.
type instance struct {
	client    *plugin.Client
	cmd       *exec.Cmd
	lifeline  *os.File // write end; closing it tells the plugin to exit
	socketDir string   // removed after the process is reaped
	pid       int
	startedAt time.Time
	exited    <-chan struct{}

	integration *plugins.IntegrationClient
	support     *plugins.SupportChannelClient
	configure   func(context.Context, map[string]string) error
	health      func(context.Context) (plugins.Health, error)
}

// NewSupervisor returns a supervisor for the plugin e; call Start to run it.
func NewSupervisor(e Entry, opts Options) (*Supervisor, error) {
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("supervise plugin: %w", err)
	}
	opts = opts.withDefaults()
	if len(opts.SocketDir) > maxSocketDirLen {
		return nil, fmt.Errorf("supervise plugin %q: socket directory %s is longer than %d bytes; unix socket paths are limited to 108: choose a shorter one",
			e.Name, opts.SocketDir, maxSocketDirLen)
	}
	s := &Supervisor{
		opts:    opts,
		log:     opts.Logger.Named(e.Name),
		name:    e.Name,
		kind:    e.Kind,
		entry:   e.Clone(),
		changed: make(chan string, 1),
		probe:   make(chan struct{}, 1),
		stopCh:  make(chan struct{}),
		done:    make(chan struct{}),
	}
	s.status = Status{Name: e.Name, Kind: e.Kind, State: StateStarting, Since: time.Now()}
	return s, nil
}

// Name is the plugin's name.
func (s *Supervisor) Name() string { return s.name }

// Kind is the plugin's kind.
func (s *Supervisor) Kind() plugins.Kind { return s.kind }

// Entry returns a copy of the manifest entry the supervisor runs.
func (s *Supervisor) Entry() Entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.entry.Clone()
}

// Status returns a snapshot of the plugin's state.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status.clone()
}

// Start starts the plugin in the background and returns at once; watch
// Status (or Options.OnChange) for the outcome. Calling it again, or after
// Stop, does nothing.
func (s *Supervisor) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started {
		return
	}
	select {
	case <-s.stopCh:
		return
	default:
	}
	s.started = true
	go s.run()
}

// Stop stops the plugin process and the supervisor and waits until the
// process is gone and reaped, or ctx ends (the process is then still
// killed, in the background). It is safe to call more than once.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.stopOnce.Do(func() { close(s.stopCh) })
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if !started {
		s.setState(StateStopped, "", time.Time{})
		return nil
	}
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop plugin %q: %w", s.Name(), ctx.Err())
	}
}

// Update gives the plugin new settings. When they differ from the current
// ones the plugin is restarted with them (its Configure runs once per
// start) and Update returns true; equal settings change nothing (SIGHUP
// reloads call this for every plugin).
func (s *Supervisor) Update(settings map[string]string) bool {
	s.mu.Lock()
	if maps.Equal(s.entry.Settings, settings) {
		s.mu.Unlock()
		return false
	}
	s.entry.Settings = maps.Clone(settings)
	s.mu.Unlock()
	s.requestRestart("settings changed")
	return true
}

// UpdateEntry replaces the whole manifest entry (new binary, checksum,
// args or settings) and restarts the plugin when anything differs. The
// name and kind cannot change: remove the plugin and add a new one.
func (s *Supervisor) UpdateEntry(e Entry) (bool, error) {
	if err := e.Validate(); err != nil {
		return false, fmt.Errorf("update plugin: %w", err)
	}
	s.mu.Lock()
	if e.Name != s.entry.Name || e.Kind != s.entry.Kind {
		s.mu.Unlock()
		return false, fmt.Errorf("update plugin %q: name and kind cannot change (got %q, %s); remove the plugin and add a new one",
			s.entry.Name, e.Name, e.Kind)
	}
	if e.equal(s.entry) {
		s.mu.Unlock()
		return false, nil
	}
	s.entry = e.Clone()
	s.mu.Unlock()
	s.requestRestart("manifest entry changed")
	return true, nil
}

// Restart restarts the plugin now (also one that was refused).
func (s *Supervisor) Restart(reason string) { s.requestRestart(reason) }

func (s *Supervisor) requestRestart(reason string) {
	select {
	case s.changed <- reason:
	default: // a restart is already pending; it will read the newest entry
	}
}

func (s *Supervisor) requestProbe() {
	select {
	case s.probe <- struct{}{}:
	default:
	}
}

// setState records a state change and tells OnChange.
func (s *Supervisor) setState(state State, reason string, retryAt time.Time) {
	s.mu.Lock()
	now := time.Now()
	if s.status.State != state {
		s.status.Since = now
	}
	changed := s.status.State != state || s.status.Reason != reason || !s.status.RetryAt.Equal(retryAt)
	s.status.State = state
	s.status.Reason = reason
	s.status.RetryAt = retryAt
	if state != StateHealthy && state != StateUnhealthy && state != StateStarting {
		s.status.PID = 0
		s.status.Plugin = nil
	}
	if (state == StateHealthy || state == StateUnhealthy) && s.status.LastOutage != nil && s.status.LastOutage.End.IsZero() {
		s.status.LastOutage.End = now
	}
	st := s.status.clone()
	s.mu.Unlock()
	if changed && s.opts.OnChange != nil {
		s.opts.OnChange(st)
	}
}

func (s *Supervisor) openOutage(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if o := s.status.LastOutage; o != nil && o.End.IsZero() {
		return // still the same outage
	}
	s.status.LastOutage = &Outage{Start: time.Now(), Reason: reason}
}

// run is the supervisor's goroutine. It stays locked to its OS thread for
// its whole life and never unlocks: every plugin process is spawned from
// this thread with PR_SET_PDEATHSIG, which the kernel fires when the
// spawning thread exits, not the process; a thread that the Go runtime could
// retire or reuse would kill (or fail to kill) the plugin at random.
func (s *Supervisor) run() {
	runtime.LockOSThread()
	defer close(s.done)
	failures := 0
	for first := true; ; first = false {
		select {
		case <-s.stopCh:
			s.setState(StateStopped, "", time.Time{})
			return
		default:
		}
		if !first {
			s.mu.Lock()
			s.status.Restarts++
			s.mu.Unlock()
		}
		s.mu.Lock()
		e := s.entry.Clone()
		s.mu.Unlock()
		s.setState(StateStarting, "", time.Time{})

		inst, err := s.launch(e)
		if err != nil {
			var refused *RefusedError
			if errors.As(err, &refused) {
				s.log.Error("plugin refused", "reason", refused.Reason)
				s.setState(StateRefused, refused.Reason, time.Time{})
				select {
				case <-s.stopCh:
					s.setState(StateStopped, "", time.Time{})
					return
				case reason := <-s.changed:
					s.log.Info("retrying refused plugin", "why", reason)
					failures = 0
					continue
				}
			}
			failures++
			if !s.backoffWait(failures, err.Error()) {
				return
			}
			continue
		}

		s.mu.Lock()
		s.inst.Store(inst)
		s.status.PID = inst.pid
		s.mu.Unlock()
		s.log.Info("plugin started", "pid", inst.pid, "path", e.Path)

		out := s.watch(inst)

		s.mu.Lock()
		s.inst.Store(nil)
		s.mu.Unlock()
		if out.kind == outcomeRestart {
			// A graceful stop can take a while; the status must not go on
			// saying healthy for a process that no longer takes calls.
			s.setState(StateStarting, "restarting: "+out.reason, time.Time{})
		}
		s.terminate(inst, out.graceful)

		switch out.kind {
		case outcomeStop:
			s.log.Info("plugin stopped", "pid", inst.pid)
			s.setState(StateStopped, "", time.Time{})
			return
		case outcomeRestart:
			s.log.Info("restarting plugin", "why", out.reason)
			failures = 0
		case outcomeFailed:
			s.log.Warn("plugin failed; restarting", "reason", out.reason, "pid", inst.pid)
			if time.Since(inst.startedAt) >= s.opts.StableAfter {
				failures = 0
			}
			failures++
			s.openOutage(out.reason)
			if !s.backoffWait(failures, out.reason) {
				return
			}
		}
	}
}

// backoffWait waits out the restart delay for the n-th consecutive failure.
// It returns false when the supervisor was stopped meanwhile.
func (s *Supervisor) backoffWait(n int, reason string) bool {
	d := s.backoff(n)
	s.setState(StateRestarting, reason, time.Now().Add(d))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case why := <-s.changed:
		s.log.Info("restarting plugin before its backoff ends", "why", why)
		return true
	case <-s.stopCh:
		s.setState(StateStopped, "", time.Time{})
		return false
	}
}

// backoff is BackoffInitial·2^(n-1), capped at BackoffMax, with ±20% jitter
// so plugins that failed together do not restart in lockstep.
func (s *Supervisor) backoff(n int) time.Duration {
	d := s.opts.BackoffInitial
	for i := 1; i < n && d < s.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.opts.BackoffMax)
	jittered := time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return min(jittered, s.opts.BackoffMax)
}

type outcomeKind int

const (
	outcomeStop outcomeKind = iota
	outcomeRestart
	outcomeFailed
)

type outcome struct {
	kind     outcomeKind
	reason   string
	graceful bool
}

// watch checks a running plugin until it must stop, restart or has failed.
func (s *Supervisor) watch(inst *instance) outcome {
	o, done, ok := s.check(inst)
	if done {
		return o
	}
	sched := checkSchedule{opts: &s.opts}
	t := time.NewTimer(sched.next(ok))
	defer t.Stop()
	for {
		select {
		case <-inst.exited:
			return outcome{kind: outcomeFailed, reason: "crashed (" + exitDescription(inst.cmd) + ")"}
		case <-s.stopCh:
			return outcome{kind: outcomeStop, graceful: true}
		case why := <-s.changed:
			return outcome{kind: outcomeRestart, reason: why, graceful: true}
		case <-t.C:
		case <-s.probe:
		}
		if o, done, ok = s.check(inst); done {
			return o
		}
		t.Reset(sched.next(ok)) // Go ≥ 1.23: Reset needs no drain
	}
}

// checkSchedule spaces the health checks of one plugin process: every
// HealthInterval while it is healthy; after an unhealthy answer (or a
// failed check) HealthRecheck, doubling with every further unhealthy answer
// up to HealthInterval, and back to the start after a healthy one.
type checkSchedule struct {
	opts      *Options
	unhealthy int // consecutive unhealthy answers
}

// next records the answer of the check that just ran and returns the delay
// before the next one.
func (c *checkSchedule) next(healthy bool) time.Duration {
	if healthy {
		c.unhealthy = 0
		return c.opts.HealthInterval
	}
	c.unhealthy++
	d := c.opts.HealthRecheck
	for i := 1; i < c.unhealthy && d < c.opts.HealthInterval; i++ {
		d *= 2
	}
	return min(d, c.opts.HealthInterval)
}

// check asks the plugin for its health once. done says the plugin must be
// restarted (the outcome says why); healthy says it answered healthy.
func (s *Supervisor) check(inst *instance) (o outcome, done, healthy bool) {
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.HealthTimeout)
	h, err := inst.health(ctx)
	cancel()
	switch {
	case err == nil:
		s.mu.Lock()
		s.status.Plugin = &h
		s.mu.Unlock()
		if h.Healthy {
			s.setState(StateHealthy, "", time.Time{})
			return outcome{}, false, true
		}
		reason := h.State
		if h.Detail != "" {
			reason += ": " + h.Detail
		}
		s.setState(StateUnhealthy, reason, time.Time{})
		return outcome{}, false, false
	case errors.Is(err, context.DeadlineExceeded):
		return outcome{kind: outcomeFailed, reason: fmt.Sprintf("hung: no answer to a health check within %s", s.opts.HealthTimeout)}, true, false
	case errors.Is(err, plugins.ErrUnavailable):
		select {
		case <-inst.exited:
			return outcome{kind: outcomeFailed, reason: "crashed (" + exitDescription(inst.cmd) + ")"}, true, false
		case <-time.After(200 * time.Millisecond):
		}
		return outcome{kind: outcomeFailed, reason: "lost the connection to the plugin: " + err.Error()}, true, false
	default:
		s.setState(StateUnhealthy, "health check failed: "+err.Error(), time.Time{})
		return outcome{}, false, false
	}
}

// terminate ends a plugin process and waits until it is reaped. A hung or
// failed plugin is killed at once; otherwise go-plugin asks it to exit and
// it is killed after killGrace.
func (s *Supervisor) terminate(inst *instance, graceful bool) {
	if !graceful {
		inst.kill()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		inst.client.Kill() // waits for go-plugin's goroutines, which reap the process
	}()
	select {
	case <-done:
	case <-time.After(killGrace):
		s.log.Warn("plugin did not exit in time; killing it", "pid", inst.pid)
		inst.kill()
		<-done
	}
	if inst.lifeline != nil {
		_ = inst.lifeline.Close()
	}
	if inst.socketDir != "" {
		_ = os.RemoveAll(inst.socketDir)
	}
}

// kill sends SIGKILL. os.Process uses a pidfd on Linux, so this is safe
// even after the process was reaped.
func (inst *instance) kill() {
	if inst.cmd.Process != nil {
		_ = inst.cmd.Process.Kill()
	}
}

// exitDescription says how a process ended, once go-plugin has reaped it.
func exitDescription(cmd *exec.Cmd) string {
	if cmd.ProcessState == nil {
		return "exited"
	}
	return cmd.ProcessState.String()
}

// hostEnvSkip lists variables a plugin must get from this host only, never
// inherited from the host's own environment.
var hostEnvSkip = []string{
	plugins.LifelineFDEnv + "=",
	plugins.Handshake.MagicCookieKey + "=",
	"PLUGIN_",
}

// pluginGCEnv tunes the Go runtime of plugin processes, which idle for
// years next to the customer's product: a collection at 50% heap growth
// instead of 100% keeps an idle plugin's heap small, and the soft limit
// makes a plugin that grows past it collect harder before it costs the
// server more. Both are soft: a plugin with a larger live heap still runs.
// GOMAXPROCS is plugins.Procs (see there why one P).
// A variable set in the host's environment wins.
var pluginGCEnv = []string{"GOGC=50", "GOMEMLIMIT=64MiB", "GOMAXPROCS=" + strconv.Itoa(plugins.Procs)}

// pluginEnv is a plugin process's environment: the host's, without the
// variables only this host may set, with the runtime defaults above, the
// host's log level (plugins filter their own lines before go-plugin
// relays them, so a plugin at info would never send the debug lines a host
// at debug asks for) and, when lifeline, the lifeline descriptor. A new
// host level reaches a plugin at its next start.
func pluginEnv(lifeline bool, level hclog.Level) []string {
	var env []string
	for _, kv := range os.Environ() {
		skip := false
		for _, p := range hostEnvSkip {
			if strings.HasPrefix(kv, p) {
				skip = true
				break
			}
		}
		if !skip {
			env = append(env, kv)
		}
	}
	for _, kv := range pluginGCEnv {
		name, _, _ := strings.Cut(kv, "=")
		if _, set := os.LookupEnv(name); !set {
			env = append(env, kv)
		}
	}
	if _, set := os.LookupEnv(plugins.LogLevelEnv); !set && level != hclog.NoLevel {
		env = append(env, plugins.LogLevelEnv+"="+level.String())
	}
	if lifeline {
		env = append(env, plugins.LifelineFDEnv+"=3") // first of ExtraFiles
	}
	return env
}

// launch starts, handshakes and configures one plugin process. It must run
// on the supervisor's locked thread (see run).
func (s *Supervisor) launch(e Entry) (inst *instance, err error) {
	var client *plugin.Client
	defer func() {
		if r := recover(); r != nil {
			if client != nil {
				client.Kill()
			}
			inst, err = nil, fmt.Errorf("starting the plugin panicked: %v", r)
		}
	}()

	info, statErr := os.Stat(e.Path)
	if statErr != nil {
		return nil, &RefusedError{Plugin: e.Name, Err: statErr,
			Reason: fmt.Sprintf("binary %s cannot be used (%v): re-run the installer or remove the plugin from the manifest", e.Path, unwrapPathErr(statErr))}
	}
	if !info.Mode().IsRegular() || info.Mode().Perm()&0o111 == 0 {
		return nil, &RefusedError{Plugin: e.Name,
			Reason: fmt.Sprintf("%s is not an executable file: re-run the installer", e.Path)}
	}
	want, _ := hex.DecodeString(e.SHA256) // Validate checked the format

	// Short name: a unix socket path must fit in 108 bytes (sun_path).
	socketDir, err := os.MkdirTemp(s.opts.SocketDir, "sbp")
	if err != nil {
		return nil, fmt.Errorf("create socket directory: %w", err)
	}
	cmd := exec.Command(e.Path, e.Args...)
	cmd.Env = append(pluginEnv(!s.opts.DisableLifeline, s.log.GetLevel()), plugin.EnvUnixSocketDir+"="+socketDir)
	var lifeR, lifeW *os.File
	if !s.opts.DisableLifeline {
		lifeR, lifeW, err = os.Pipe()
		if err != nil {
			_ = os.RemoveAll(socketDir)
			return nil, fmt.Errorf("create lifeline pipe: %w", err)
		}
		cmd.ExtraFiles = []*os.File{lifeR}
	}
	if !s.opts.DisablePdeathsig {
		setParentDeathSignal(cmd)
	}

	client = plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  plugins.Handshake,
		VersionedPlugins: plugins.VersionedPlugins(),
		Cmd:              cmd,
		SecureConfig:     &plugin.SecureConfig{Checksum: want, Hash: sha256.New()},
		AutoMTLS:         true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           s.log,
		StartTimeout:     s.opts.StartTimeout,
		GRPCDialOptions:  append(plugins.DialOptions(), plugins.TransportDialOptions()...),
		SkipHostEnv:      true, // pluginEnv passed the host's environment, minus our own variables
	})
	rpc, err := client.Client()
	if lifeR != nil {
		_ = lifeR.Close() // the child has its copy
	}
	fail := func(err error) (*instance, error) {
		client.Kill()
		if lifeW != nil {
			_ = lifeW.Close()
		}
		_ = os.RemoveAll(socketDir)
		return nil, err
	}
	if err != nil {
		return fail(s.startError(e, cmd, err))
	}
	raw, err := rpc.Dispense(string(e.Kind))
	if err != nil {
		return fail(fmt.Errorf("dispense %s: %w", e.Kind, err))
	}

	inst = &instance{client: client, cmd: cmd, lifeline: lifeW, socketDir: socketDir, pid: cmd.Process.Pid, startedAt: time.Now()}
	switch v := raw.(type) {
	case *plugins.IntegrationClient:
		inst.integration, inst.exited, inst.configure, inst.health = v, v.Exited(), v.Configure, v.Health
	case *plugins.SupportChannelClient:
		inst.support, inst.exited, inst.configure, inst.health = v, v.Exited(), v.Configure, v.Health
	default:
		return fail(fmt.Errorf("dispense %s: unexpected client type %T", e.Kind, raw))
	}

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.CallTimeout)
	err = inst.configure(ctx, e.Settings)
	cancel()
	if err != nil {
		s.terminate(inst, false)
		var remote *plugins.RemoteError
		switch {
		case errors.Is(err, plugins.ErrUnimplemented):
			return nil, &RefusedError{Plugin: e.Name, Err: err,
				Reason: fmt.Sprintf("%s does not serve the %s contract: check the plugin's kind in the manifest", e.Path, e.Kind)}
		case errors.As(err, &remote):
			return nil, &RefusedError{Plugin: e.Name, Err: err,
				Reason: fmt.Sprintf("rejected its settings: %s; fix them and reload", remote.Message)}
		}
		return nil, fmt.Errorf("configure failed: %w", err)
	}
	return inst, nil
}

// startError explains why go-plugin could not start the plugin.
func (s *Supervisor) startError(e Entry, cmd *exec.Cmd, err error) error {
	if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
		actual, sumErr := FileSHA256(e.Path)
		if sumErr != nil {
			actual = "unreadable (" + sumErr.Error() + ")"
		}
		ce := &ChecksumError{Plugin: e.Name, Path: e.Path, Expected: e.SHA256, Actual: actual}
		return &RefusedError{Plugin: e.Name, Reason: ce.Error(), Err: ce}
	}
	if strings.HasPrefix(err.Error(), "error verifying checksum") {
		return &RefusedError{Plugin: e.Name, Err: err,
			Reason: fmt.Sprintf("cannot read %s to verify its checksum (%v): re-run the installer", e.Path, err)}
	}
	var pe *plugins.ProtocolError
	if errors.As(plugins.AsProtocolError(e.Name, err), &pe) {
		return &RefusedError{Plugin: e.Name, Reason: pe.Error(), Err: pe}
	}
	msg := plugins.SanitizeMessage(err.Error())
	if cmd.ProcessState != nil {
		msg += " (" + cmd.ProcessState.String() + ")"
	}
	return fmt.Errorf("start failed: %s", msg)
}

// current returns the running instance, or an error saying why there is none.
func (s *Supervisor) current() (*instance, error) {
	if inst := s.inst.Load(); inst != nil {
		return inst, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return nil, &NotRunningError{Status: s.status.clone()}
}

// call runs fn against the running plugin with the per-call deadline; see
// callPlugin.
func (s *Supervisor) call(ctx context.Context, method string, fn func(context.Context, *instance) error) error {
	_, err := callPlugin(s, ctx, method, func(ctx context.Context, inst *instance) (struct{}, error) {
		return struct{}{}, fn(ctx, inst)
	})
	return err
}

// callPlugin runs fn against the running plugin with the per-call
// deadline and returns its answer. A call that times out or loses the
// connection asks for an immediate health check, so a hung plugin is found
// and restarted without waiting for the next scheduled one.
//
// It is generic, rather than taking a closure that stores the answer, so
// that the hot calls (Describe, Health) pass a function that captures
// nothing and the answer stays on the caller's stack: no allocation per
// call besides the deadline's.
func callPlugin[R any](s *Supervisor, ctx context.Context, method string, fn func(context.Context, *instance) (R, error)) (r R, err error) {
	defer func() {
		if p := recover(); p != nil {
			var zero R
			r, err = zero, fmt.Errorf("plugin %q: %s: internal error: %v", s.name, method, p)
		}
	}()
	inst, err := s.current()
	if err != nil {
		return r, err
	}
	// The caller's own deadline is kept when it is the earlier one: a
	// second timer would change nothing but cost one.
	cctx := ctx
	if dl, ok := ctx.Deadline(); !ok || time.Until(dl) > s.opts.CallTimeout {
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, s.opts.CallTimeout)
		defer cancel()
	}
	r, err = fn(cctx, inst)
	if err == nil {
		return r, nil
	}
	var zero R
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		s.requestProbe()
		return zero, fmt.Errorf("plugin %q: %s: no answer within %s: %w", s.name, method, s.opts.CallTimeout, context.DeadlineExceeded)
	case errors.Is(err, plugins.ErrUnavailable):
		s.requestProbe()
	}
	return zero, fmt.Errorf("plugin %q: %w", s.name, err)
}

// Integration returns the plugin as an Integration whose every call has the
// supervisor's deadline and goes to whichever process currently runs. It
// fails when the plugin is of another kind.
func (s *Supervisor) Integration() (plugins.Integration, error) {
	if s.Kind() != plugins.KindIntegration {
		return nil, fmt.Errorf("plugin %q is a %s plugin, not an integration", s.Name(), s.Kind())
	}
	return integrationHandle{s}, nil
}

// SupportChannel returns the plugin as a SupportChannel; see Integration.
func (s *Supervisor) SupportChannel() (plugins.SupportChannel, error) {
	if s.Kind() != plugins.KindSupportChannel {
		return nil, fmt.Errorf("plugin %q is a %s plugin, not a support channel", s.Name(), s.Kind())
	}
	return supportHandle{s}, nil
}

type integrationHandle struct{ s *Supervisor }

// Configure stores the settings in the supervisor and restarts the plugin
// when they changed, so they survive later restarts.
func (h integrationHandle) Configure(_ context.Context, settings map[string]string) error {
	h.s.Update(settings)
	return nil
}

func (h integrationHandle) Describe(ctx context.Context) (plugins.Facts, error) {
	return callPlugin(h.s, ctx, "describe", integrationDescribe)
}

func (h integrationHandle) Health(ctx context.Context) (plugins.Health, error) {
	return callPlugin(h.s, ctx, "health", integrationHealth)
}

// The hot calls as plain functions (see callPlugin).
func integrationDescribe(ctx context.Context, inst *instance) (plugins.Facts, error) {
	return inst.integration.Describe(ctx)
}

func integrationHealth(ctx context.Context, inst *instance) (plugins.Health, error) {
	return inst.integration.Health(ctx)
}

func (h integrationHandle) ApplyPartnerLink(ctx context.Context, code, tier string) (r plugins.LinkResult, err error) {
	err = h.s.call(ctx, "apply partner link", func(ctx context.Context, inst *instance) (err error) {
		r, err = inst.integration.ApplyPartnerLink(ctx, code, tier)
		return err
	})
	return r, err
}

type supportHandle struct{ s *Supervisor }

// Configure: see integrationHandle.Configure.
func (h supportHandle) Configure(_ context.Context, settings map[string]string) error {
	h.s.Update(settings)
	return nil
}

func (h supportHandle) Deliver(ctx context.Context, t plugins.Ticket) (r plugins.Receipt, err error) {
	err = h.s.call(ctx, "deliver", func(ctx context.Context, inst *instance) (err error) {
		r, err = inst.support.Deliver(ctx, t)
		return err
	})
	return r, err
}

// DeliverNote passes a note to the plugin; a plugin that cannot deliver
// notes gives an error wrapping plugins.ErrNotesUnsupported, naming it.
func (h supportHandle) DeliverNote(ctx context.Context, n plugins.Note) (r plugins.Receipt, err error) {
	err = h.s.call(ctx, "deliver note", func(ctx context.Context, inst *instance) (err error) {
		r, err = inst.support.DeliverNote(ctx, n)
		return err
	})
	if errors.Is(err, plugins.ErrNotesUnsupported) {
		return r, fmt.Errorf("channel %s cannot deliver notes: %w", h.s.Name(), plugins.ErrNotesUnsupported)
	}
	return r, err
}

func (h supportHandle) Health(ctx context.Context) (r plugins.Health, err error) {
	err = h.s.call(ctx, "health", func(ctx context.Context, inst *instance) (err error) {
		r, err = inst.support.Health(ctx)
		return err
	})
	return r, err
}
