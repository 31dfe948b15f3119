package asterisk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v5"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/websocket"

	"github.com/switchboard-dev/switchboard/plugins"
)

// Link states reported by Health (plugins.Health.State).
const (
	StateUnconfigured = "unconfigured"
	StateConnecting   = "connecting"
	StateConnected    = "connected"
	StateReconnecting = "reconnecting"
	StateUnauthorised = "unauthorised"
)

// Product is Facts.Product of this adapter.
const Product = "asterisk"

// maxTracked bounds the channels and endpoints kept from events, so a
// runaway event stream cannot exhaust the plugin's memory.
const maxTracked = 500000

// errReplaced ends a session whose application another websocket took over.
var errReplaced = errors.New("another ARI client took over the application (ApplicationReplaced)")

// Adapter is the Asterisk Integration plugin. Configure starts a background
// connection that keeps a snapshot of Asterisk (full reads plus live
// channel and endpoint events); Describe and Health answer from it without
// waiting on Asterisk. The zero value is not usable; call New.
type Adapter struct {
	log hclog.Logger

	life   sync.Mutex // serialises Configure and Close
	cancel context.CancelFunc
	done   chan struct{}

	refreshMu sync.Mutex // one full read at a time

	mu          sync.Mutex
	cfg         *Settings
	state       string
	since       time.Time // when state began
	reason      string    // why not connected
	nextAttempt time.Time
	attempted   chan struct{} // closed once the first connection attempt ended
	live        *rest         // REST client of the connected session
	snap        *snapshot
	refreshing  bool
	pending     []Event // events seen while a full read is in flight
	ignored     int64   // events of types the adapter does not use
	undecodable int64   // messages that were not ARI events
}

// snapshot is what the adapter knows about Asterisk.
type snapshot struct {
	info      ari.AsteriskInfo
	endpoints map[string]endpointState // tech/resource
	channels  map[string]bool          // channel id
	readAt    time.Time                // last full read
}

type endpointState struct{ tech, state string }

var _ plugins.Integration = (*Adapter)(nil)

// New returns an unconfigured adapter logging to log (nil: no logs).
func New(log hclog.Logger) *Adapter {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Adapter{log: log, state: StateUnconfigured, since: time.Now()}
}

// Configure checks the settings (see ParseSettings) and (re)starts the
// background connection. It never waits for Asterisk: an unreachable PBX
// shows in Health, not here.
func (a *Adapter) Configure(_ context.Context, settings map[string]string) error {
	s, err := ParseSettings(settings)
	if err != nil {
		return err
	}
	a.life.Lock()
	defer a.life.Unlock()
	a.stopLocked()

	ctx, cancel := context.WithCancel(context.Background())
	attempted := make(chan struct{})
	a.mu.Lock()
	a.cfg = &s
	a.state, a.since, a.reason, a.nextAttempt = StateConnecting, time.Now(), "", time.Time{}
	a.attempted = attempted
	a.live, a.snap, a.pending, a.refreshing = nil, nil, nil, false
	a.mu.Unlock()

	a.cancel, a.done = cancel, make(chan struct{})
	go a.run(ctx, s, attempted, a.done)
	a.log.Info("configured", "ari_url", s.URL, "ws_url", s.WebsocketURL, "ari_user", s.User, "app", s.App)
	return nil
}

// Close stops the background connection and waits until it is gone.
func (a *Adapter) Close() {
	a.life.Lock()
	defer a.life.Unlock()
	a.stopLocked()
	a.mu.Lock()
	a.cfg, a.state, a.since, a.live = nil, StateUnconfigured, time.Now(), nil
	a.mu.Unlock()
}

func (a *Adapter) stopLocked() {
	if a.cancel != nil {
		a.cancel()
		<-a.done
		a.cancel, a.done = nil, nil
	}
}

// run keeps one session with Asterisk up until ctx ends, reconnecting with
// exponential backoff.
func (a *Adapter) run(ctx context.Context, s Settings, attempted chan struct{}, done chan struct{}) {
	defer close(done)
	var firstOnce sync.Once
	first := func() { firstOnce.Do(func() { close(attempted) }) }
	defer first()
	failures := 0
	for {
		r := newREST(s)
		conn, err := a.connect(ctx, s, r)
		var lived time.Duration
		if err == nil {
			a.setConnected(r)
			first()
			start := time.Now()
			err = a.session(ctx, s, r, conn)
			lived = time.Since(start)
		}
		r.close()
		if ctx.Err() != nil {
			return
		}
		// A session that survived two keepalives was stable: start the
		// backoff over.
		if lived >= 2*s.PingInterval {
			failures = 0
		}
		failures++
		d := backoff(s, failures)
		a.setDown(s, err, d)
		first()
		a.log.Warn("not connected to Asterisk; retrying", "error", err, "retry_in", d.Round(time.Millisecond).String())
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// backoff is BackoffInitial·2^(n-1) capped at BackoffMax, with ±20%
// jitter so that many agents behind one restarted PBX do not reconnect in
// lockstep.
func backoff(s Settings, n int) time.Duration {
	d := s.BackoffInitial
	for i := 1; i < n && d < s.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.BackoffMax)
	return min(time.Duration(float64(d)*(0.8+0.4*rand.Float64())), s.BackoffMax)
}

// eventConn is a connected events websocket and its reader.
type eventConn struct {
	ws      *websocket.Conn
	readErr chan error    // the reader's reason to stop; buffered 1
	stopped chan struct{} // closed when the reader returned
}

func (c *eventConn) close() {
	_ = c.ws.Close()
	<-c.stopped
}

// connect makes one connection attempt under ConnectTimeout: check the
// credentials and read the system info, open the events websocket, set the
// event filter, then read endpoints and channels.
func (a *Adapter) connect(ctx context.Context, s Settings, r *rest) (*eventConn, error) {
	ctx, cancel := context.WithTimeout(ctx, s.ConnectTimeout)
	defer cancel()
	info, err := r.info(ctx)
	if err != nil {
		return nil, connectError(s, err)
	}
	ws, err := dialEvents(ctx, s)
	if err != nil {
		return nil, connectError(s, err)
	}
	conn := &eventConn{ws: ws, readErr: make(chan error, 1), stopped: make(chan struct{})}
	go a.read(conn)
	if s.EventFilter {
		if err := a.filterEvents(ctx, s, r); err != nil {
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status == http.StatusUnauthorized {
				conn.close()
				return nil, connectError(s, err)
			}
			// Asterisk before 13.26/16.3 has no event filter; DecodeEvent
			// ignores what the adapter does not use anyway.
			a.log.Info("Asterisk has no ARI event filter; ignoring unused events client-side", "error", err)
		}
	}
	if err := a.refresh(ctx, r, info); err != nil {
		conn.close()
		return nil, connectError(s, err)
	}
	return conn, nil
}

// filterEvents sets the application's event filter. Asterisk registers
// the application only once the websocket upgrade completed, so a 404
// "Application not found" right after connecting is retried briefly.
func (a *Adapter) filterEvents(ctx context.Context, s Settings, r *rest) error {
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := r.setEventFilter(ctx, s.App, usedEventTypes)
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || apiErr.Message != "Application not found" {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// connectError says what failed in words a person can act on.
func connectError(s Settings, err error) error {
	var de *websocket.DialError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("no answer from Asterisk at %s within %s (connect_timeout): %w", s.URL, s.ConnectTimeout, err)
	case errors.As(err, &de) && errors.Is(de.Err, websocket.ErrBadStatus):
		return fmt.Errorf("events websocket %s refused by Asterisk (wrong ARI credentials, or websockets disabled in http.conf)", s.WebsocketURL)
	case errors.As(err, &de):
		return fmt.Errorf("open events websocket %s: %w", s.WebsocketURL, de.Err)
	}
	return err
}

func dialEvents(ctx context.Context, s Settings) (*websocket.Conn, error) {
	q := url.Values{"app": {s.App}, "subscribeAll": {"true"}}
	origin := "http://localhost/"
	if u, err := url.Parse(s.URL); err == nil {
		origin = u.Scheme + "://" + u.Host + "/"
	}
	cfg, err := websocket.NewConfig(s.WebsocketURL+"?"+q.Encode(), origin)
	if err != nil {
		return nil, fmt.Errorf("events websocket %s: %w", s.WebsocketURL, err)
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(s.User+":"+s.Password)))
	// TCP keepalive notices a peer that vanished without closing the socket.
	cfg.Dialer = &net.Dialer{KeepAlive: 15 * time.Second}
	ws, err := cfg.DialContext(ctx)
	if err != nil {
		return nil, err
	}
	ws.MaxPayloadBytes = maxEventBytes
	return ws, nil
}

// read takes events off the websocket until it fails. A message that is
// not an ARI event, or an event type the adapter does not use, is counted
// and skipped: it must never end the session, let alone the process.
func (a *Adapter) read(c *eventConn) {
	defer close(c.stopped)
	for {
		var msg []byte
		if err := websocket.Message.Receive(c.ws, &msg); err != nil {
			c.readErr <- fmt.Errorf("events websocket closed: %w", err)
			return
		}
		ev, err := DecodeEvent(msg)
		switch {
		case err != nil:
			a.mu.Lock()
			a.undecodable++
			a.mu.Unlock()
			a.log.Debug("skipping a websocket message that is not an ARI event", "error", err)
		case !ev.Used:
			a.mu.Lock()
			a.ignored++
			a.mu.Unlock()
			a.log.Trace("ignoring ARI event", "type", ev.Type)
		case ev.Type == "ApplicationReplaced":
			c.readErr <- errReplaced
			return
		default:
			a.apply(ev)
		}
	}
}

// session watches a connected session until it fails: websocket closed,
// keepalive ping failed (a stalled or vanished Asterisk), or a full read
// failed.
func (a *Adapter) session(ctx context.Context, s Settings, r *rest, conn *eventConn) error {
	defer conn.close()
	ping := time.NewTicker(s.PingInterval)
	defer ping.Stop()
	refresh := time.NewTicker(s.RefreshInterval)
	defer refresh.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-conn.readErr:
			if errors.Is(err, errReplaced) {
				return fmt.Errorf("%w: application %q is used by another ARI client; give each host its own %s", err, s.App, SettingApp)
			}
			return err
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, s.RequestTimeout)
			_, err := r.ping(pctx)
			cancel()
			if errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("keepalive ping failed, rebuilding the connection: no answer from Asterisk at %s within %s (request_timeout)", s.URL, s.RequestTimeout)
			}
			if err != nil {
				return fmt.Errorf("keepalive ping failed, rebuilding the connection: %w", err)
			}
		case <-refresh.C:
			rctx, cancel := context.WithTimeout(ctx, s.ConnectTimeout)
			err := a.refresh(rctx, r, nil)
			cancel()
			if err != nil {
				return fmt.Errorf("full read failed, rebuilding the connection: %w", connectError(s, err))
			}
		}
	}
}

// refresh reads info (unless given), endpoints and channels, and replaces
// the snapshot. Events that arrive meanwhile are replayed on the new
// snapshot; they are idempotent, so one already reflected in the read
// changes nothing.
func (a *Adapter) refresh(ctx context.Context, r *rest, info *ari.AsteriskInfo) error {
	a.refreshMu.Lock()
	defer a.refreshMu.Unlock()
	a.mu.Lock()
	a.refreshing, a.pending = true, nil
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		a.refreshing, a.pending = false, nil
		a.mu.Unlock()
	}()
	var err error
	if info == nil {
		if info, err = r.info(ctx); err != nil {
			return err
		}
	}
	eps, err := r.endpoints(ctx)
	if err != nil {
		return err
	}
	chans, err := r.channels(ctx)
	if err != nil {
		return err
	}
	snap := &snapshot{info: *info, endpoints: map[string]endpointState{}, channels: map[string]bool{}, readAt: time.Now()}
	for _, e := range eps {
		if e.Technology == "" || e.Resource == "" || len(snap.endpoints) >= maxTracked {
			continue
		}
		snap.endpoints[e.Technology+"/"+e.Resource] = endpointState{tech: e.Technology, state: e.State}
	}
	for _, c := range chans {
		if c.ID != "" && len(snap.channels) < maxTracked {
			snap.channels[c.ID] = true
		}
	}
	a.mu.Lock()
	for _, ev := range a.pending {
		snap.apply(ev)
	}
	a.snap = snap
	a.mu.Unlock()
	return nil
}

// apply updates the live counts from one event.
func (a *Adapter) apply(ev Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.refreshing && len(a.pending) < maxTracked {
		a.pending = append(a.pending, ev)
	}
	if a.snap != nil {
		a.snap.apply(ev)
	}
}

func (s *snapshot) apply(ev Event) {
	switch ev.Type {
	case "ChannelCreated", "ChannelStateChange":
		if len(s.channels) < maxTracked {
			s.channels[ev.ChannelID] = true
		}
	case "ChannelDestroyed":
		delete(s.channels, ev.ChannelID)
	case "EndpointStateChange":
		// A removed endpoint is last published as offline; it leaves the
		// count at the next full read.
		if _, ok := s.endpoints[ev.Endpoint]; ok || len(s.endpoints) < maxTracked {
			s.endpoints[ev.Endpoint] = endpointState{tech: ev.Technology, state: ev.State}
		}
	}
}

func (a *Adapter) setConnected(r *rest) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state, a.since, a.reason, a.nextAttempt, a.live = StateConnected, time.Now(), "", time.Time{}, r
	a.log.Info("connected to Asterisk", "version", a.snap.info.SystemInfo.Version, "endpoints", len(a.snap.endpoints))
}

func (a *Adapter) setDown(s Settings, err error, retry time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	state := StateReconnecting
	if errors.Is(err, ErrUnauthorised) {
		state = StateUnauthorised
	}
	if a.state != state {
		a.since = time.Now()
	}
	a.state, a.live = state, nil
	a.reason = oneLine(err.Error(), 1000)
	a.nextAttempt = time.Now().Add(retry)
}

// Health reports the link to Asterisk. It never waits on Asterisk.
func (a *Adapter) Health(context.Context) (plugins.Health, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := plugins.Health{State: a.state, Since: a.since}
	if a.cfg == nil {
		h.State = StateUnconfigured
		h.Detail = "not configured yet: the host has not sent the ARI settings"
		return h, nil
	}
	switch a.state {
	case StateConnected:
		h.Healthy = true
		h.Detail = fmt.Sprintf("Asterisk %s at %s, application %s: %d endpoints, %d live channels",
			a.snap.info.SystemInfo.Version, a.cfg.URL, a.cfg.App, len(a.snap.endpoints), len(a.snap.channels))
	case StateConnecting:
		h.Detail = fmt.Sprintf("first connection to Asterisk at %s in progress", a.cfg.URL)
	case StateUnauthorised:
		h.Detail = a.unauthorisedText()
	case StateReconnecting:
		h.Detail = fmt.Sprintf("since %s: %s; next attempt in %s", a.since.UTC().Format(time.RFC3339), a.reason,
			max(time.Until(a.nextAttempt), 0).Round(time.Second))
	default:
		h.Detail = a.reason
	}
	return h, nil
}

// unauthorisedText tells the customer how to fix a 401. Callers hold a.mu.
func (a *Adapter) unauthorisedText() string {
	u := a.cfg.User
	return fmt.Sprintf("ARI user %q refused by Asterisk at %s (401 Unauthorized): fix ari.conf: user %s needs a section [%s] "+
		"with type = user and the password switchboard was given (setting %s or the file in %s), then run "+
		"`asterisk -rx 'module reload res_ari.so'`; retrying since %s",
		u, a.cfg.URL, u, u, SettingPassword, SettingPasswordFile, a.since.UTC().Format(time.RFC3339))
}

// Describe reports Asterisk's facts and seats from the live snapshot. It
// waits (within ctx) for the first connection attempt to end; a snapshot
// older than refresh_interval is read again first.
func (a *Adapter) Describe(ctx context.Context) (plugins.Facts, error) {
	a.mu.Lock()
	cfg, attempted := a.cfg, a.attempted
	a.mu.Unlock()
	if cfg == nil {
		return plugins.Facts{}, errors.New("asterisk adapter is not configured: Configure must come first")
	}
	select {
	case <-attempted:
	case <-ctx.Done():
		return plugins.Facts{}, fmt.Errorf("still connecting to Asterisk at %s: %w", cfg.URL, ctx.Err())
	}
	a.mu.Lock()
	r, stale := a.live, a.snap != nil && time.Since(a.snap.readAt) >= cfg.RefreshInterval
	a.mu.Unlock()
	if r != nil && stale {
		if err := a.refresh(ctx, r, nil); err != nil {
			a.log.Warn("full read for describe failed; answering from the live snapshot", "error", err)
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.snap == nil {
		switch a.state {
		case StateUnauthorised:
			return plugins.Facts{}, errors.New(a.unauthorisedText())
		case StateReconnecting:
			return plugins.Facts{}, fmt.Errorf("cannot reach Asterisk since %s: %s", a.since.UTC().Format(time.RFC3339), a.reason)
		}
		return plugins.Facts{}, fmt.Errorf("nothing read from Asterisk at %s yet (%s)", cfg.URL, a.state)
	}
	return a.factsLocked(time.Now()), nil
}

// ApplyPartnerLink reports that Asterisk has no place for a partner code.
// ARI's only writable store is global variables, which Asterisk forgets on
// restart; pretending they hold the link would be fake success.
func (a *Adapter) ApplyPartnerLink(_ context.Context, code, tier string) (plugins.LinkResult, error) {
	if strings.TrimSpace(code) == "" {
		return plugins.LinkResult{}, errors.New("apply partner link: the partner code is empty")
	}
	return plugins.LinkResult{Applied: false, Detail: "not applied: Asterisk has no persistent place for a partner code over ARI " +
		"(its global variables are lost on restart), so the link is kept in the switchboard licence only"}, nil
}
