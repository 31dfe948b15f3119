// Package ari is a protocol-faithful emulator of the Asterisk REST Interface
// (ARI): a real HTTP and websocket server on loopback that answers the way
// Asterisk's res_ari does (paths under /ari, Basic auth or ?api_key=,
// {"message": ...} errors, Asterisk's timestamp format, events on
// /ari/events). Tests and `switchboard dev emulate asterisk` use it in place
// of a PBX; it keeps endpoints, channels and Stasis applications in memory
// and lets a test change them (emitting the events Asterisk would), drop the
// websockets, stall, restart, or send event types a client may not know.
//
// The package also holds a validator for the official ARI API descriptions
// (LoadModels, Models.ValidateModel) so every response and event can be
// checked against Asterisk's own models.
package ari

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Defaults of Options.
const (
	DefaultUser     = "asterisk"
	DefaultPassword = "asterisk"
	DefaultVersion  = "20.15.0"
	DefaultEntityID = "02:42:ac:11:00:02"
)

// Options configure an emulated Asterisk. Zero values take the defaults.
type Options struct {
	// User and Password are the ARI credentials (ari.conf user); default
	// asterisk / asterisk.
	User     string
	Password string
	// Version is the Asterisk version reported (system.version), e.g.
	// "18.20.0", "20.15.0", "22.5.0". It also decides version-dependent
	// fields such as the Channel's caller_rdnis.
	Version string
	// EntityID is the Asterisk id (system.entity_id, asterisk_id of events).
	EntityID string
	// SystemName is config.name (asterisk.conf systemname); empty by default
	// as in a stock Asterisk.
	SystemName string
	// DefaultLanguage is config.default_language; default "en".
	DefaultLanguage string
	// MaxChannels, when > 0, is reported as config.max_channels.
	MaxChannels int
	// Build describes how the emulated Asterisk was built.
	Build BuildInfo
	// Technologies are the channel technologies that exist even without
	// endpoints (GET /endpoints/{tech} answers [] rather than 404 for them);
	// default PJSIP, IAX2 and Local.
	Technologies []string
	// Realm is the Basic auth realm (ari.conf auth_realm); default
	// "Asterisk REST Interface".
	Realm string
	// Models, when set, makes the server validate every response body and
	// event it produces against the ARI API descriptions; failures are kept
	// and returned by Violations.
	Models *Models
	// Logger receives the server's logs; hclog.NewNullLogger() when nil.
	Logger hclog.Logger
}

// BuildInfo is the "build" section of GET /asterisk/info.
type BuildInfo struct {
	OS, Kernel, Options, Machine, Date, User string
}

func (o *Options) setDefaults() {
	if o.User == "" {
		o.User = DefaultUser
	}
	if o.Password == "" {
		o.Password = DefaultPassword
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	if o.EntityID == "" {
		o.EntityID = DefaultEntityID
	}
	if o.DefaultLanguage == "" {
		o.DefaultLanguage = "en"
	}
	if o.Realm == "" {
		o.Realm = "Asterisk REST Interface"
	}
	if len(o.Technologies) == 0 {
		o.Technologies = []string{"PJSIP", "IAX2", "Local"}
	}
	b := &o.Build
	if b.OS == "" {
		b.OS = "Linux"
	}
	if b.Kernel == "" {
		b.Kernel = "6.1.0-28-amd64"
	}
	if b.Machine == "" {
		b.Machine = "x86_64"
	}
	if b.Date == "" {
		b.Date = "2025-07-21 10:00:00 UTC"
	}
	if b.User == "" {
		b.User = "root"
	}
	if o.Logger == nil {
		o.Logger = hclog.NewNullLogger()
	}
}

// Server is one emulated Asterisk. Create it with New, start it with
// Listen, stop it with Close. All methods are safe for concurrent use.
type Server struct {
	opts Options
	log  hclog.Logger

	mu         sync.Mutex
	user, pass string
	addr       string // bound host:port, fixed after the first Listen
	srv        *http.Server
	serveDone  chan struct{}
	closed     bool
	startup    time.Time
	reload     time.Time
	endpoints  map[string]*endpoint // key tech/resource
	channels   map[string]*channel
	chanSeq    int
	apps       map[string]*app
	sessions   map[*session]bool
	globals    map[string]string
	stallCh    chan struct{} // non-nil while stalled; closed when the stall ends
	stallGen   int
	violations []string
	requests   int64
}

// New returns a server that is not listening yet.
func New(opts Options) *Server {
	opts.setDefaults()
	return &Server{
		opts:      opts,
		log:       opts.Logger,
		user:      opts.User,
		pass:      opts.Password,
		endpoints: map[string]*endpoint{},
		channels:  map[string]*channel{},
		apps:      map[string]*app{},
		sessions:  map[*session]bool{},
		globals:   map[string]string{},
	}
}

// Listen binds addr (use "127.0.0.1:0" in tests) and serves in the
// background until Close.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("ARI emulator listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ln.Close()
		return errors.New("ARI emulator: server already closed")
	}
	if s.srv != nil {
		_ = ln.Close()
		return errors.New("ARI emulator: already listening on " + s.addr)
	}
	s.addr = ln.Addr().String()
	s.serveLocked(ln)
	return nil
}

// serveLocked starts serving ln as a freshly booted Asterisk.
func (s *Server) serveLocked(ln net.Listener) {
	now := time.Now()
	s.startup, s.reload = now, now
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	s.srv, s.serveDone = srv, done
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("ARI emulator stopped serving", "addr", ln.Addr().String(), "error", err)
		}
	}()
	s.log.Info("ARI emulator listening", "url", "http://"+s.addr+"/ari", "version", s.opts.Version)
}

// Addr is the bound host:port.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is the ARI base URL, e.g. http://127.0.0.1:8088/ari.
func (s *Server) URL() string { return "http://" + s.Addr() + "/ari" }

// WebsocketURL is the events websocket URL, e.g. ws://127.0.0.1:8088/ari/events.
func (s *Server) WebsocketURL() string { return "ws://" + s.Addr() + "/ari/events" }

// Close stops the server, its websockets and every pending stall.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, done := s.stopLocked()
	s.mu.Unlock()
	return s.waitStopped(srv, done)
}

// stopLocked detaches the running HTTP server and ends what lives with the
// Asterisk process: websockets, applications, channels and stalls.
func (s *Server) stopLocked() (*http.Server, chan struct{}) {
	srv, done := s.srv, s.serveDone
	s.srv, s.serveDone = nil, nil
	for sess := range s.sessions {
		sess.close()
	}
	s.sessions = map[*session]bool{}
	s.apps = map[string]*app{}
	s.channels = map[string]*channel{}
	if s.stallCh != nil {
		close(s.stallCh)
		s.stallCh = nil
	}
	return srv, done
}

func (s *Server) waitStopped(srv *http.Server, done chan struct{}) error {
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	if err != nil {
		return fmt.Errorf("close ARI emulator: %w", err)
	}
	return nil
}

// Restart emulates an Asterisk restart: every connection is cut, the port
// refuses connections for down, then the server comes back on the same
// address with a new startup time. Channels and applications are lost (a
// restart drops calls and websocket registrations); endpoints, credentials
// and global variables survive, as they come from configuration.
func (s *Server) Restart(down time.Duration) error {
	s.mu.Lock()
	if s.closed || s.srv == nil {
		s.mu.Unlock()
		return errors.New("ARI emulator: restart needs a listening server")
	}
	addr := s.addr
	srv, done := s.stopLocked()
	s.mu.Unlock()
	if err := s.waitStopped(srv, done); err != nil {
		return err
	}
	s.log.Info("ARI emulator restarting", "down", down)
	time.Sleep(down)
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("ARI emulator restart: listen again on %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		_ = ln.Close()
		return errors.New("ARI emulator closed during restart")
	}
	s.serveLocked(ln)
	return nil
}

// Stall makes the server accept connections and requests but answer none
// of them for d: HTTP requests and websocket upgrades hang, and open
// websockets receive nothing. Pending requests are answered when the stall
// ends. A second Stall moves the end to now+d.
func (s *Server) Stall(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stallCh == nil {
		s.stallCh = make(chan struct{})
	}
	s.stallGen++
	gen, ch := s.stallGen, s.stallCh
	time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.stallGen == gen && s.stallCh == ch {
			close(ch)
			s.stallCh = nil
		}
	})
	s.log.Info("ARI emulator stalled", "for", d)
}

// Resume ends a stall at once.
func (s *Server) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stallCh != nil {
		close(s.stallCh)
		s.stallCh = nil
	}
}

// waitStall blocks while the server is stalled, until ctx ends.
func (s *Server) waitStall(ctx context.Context) error {
	s.mu.Lock()
	ch := s.stallCh
	s.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SetCredentials replaces the ARI user and password (like editing ari.conf
// and reloading). Open websockets stay open, as in Asterisk.
func (s *Server) SetCredentials(user, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.user, s.pass = user, password
	s.reload = time.Now()
}

// DropWebsockets closes every events websocket from the server side, as when
// Asterisk's HTTP server drops them; their applications are unregistered.
// It returns how many were closed.
func (s *Server) DropWebsockets() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for sess := range s.sessions {
		sess.close()
		n++
	}
	s.log.Info("ARI emulator dropped websockets", "count", n)
	return n
}

// Applications returns the names of the applications that currently have
// an events websocket, sorted.
func (s *Server) Applications() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for name, a := range s.apps {
		if a.session != nil {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// Requests is the number of HTTP requests (including websocket upgrades)
// the server has received.
func (s *Server) Requests() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Violations returns the validation failures of the server's own output
// (only collected when Options.Models is set).
func (s *Server) Violations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.violations...)
}

// checkOutput validates one body or event against typ when models are set.
func (s *Server) checkOutput(typ, what string, body []byte) {
	if s.opts.Models == nil || typ == "" {
		return
	}
	var err error
	if typ == "Message" {
		err = s.opts.Models.ValidateMessage(body)
	} else {
		err = s.opts.Models.ValidateModel(typ, body)
	}
	if err != nil {
		s.mu.Lock()
		s.violations = append(s.violations, fmt.Sprintf("%s: %v: %v", what, errViolation, err))
		s.mu.Unlock()
		s.log.Error("ARI emulator produced invalid output", "what", what, "error", err)
	}
}

// hasCallerRDNIS tells whether this Asterisk version's Channel carries
// caller_rdnis (20.15+ in the 20 line, 21.10+, 22.5+; see reference/ari).
func (s *Server) hasCallerRDNIS() bool {
	var ma, mi int
	if _, err := fmt.Sscanf(s.opts.Version, "%d.%d", &ma, &mi); err != nil {
		return true
	}
	switch {
	case ma >= 23:
		return true
	case ma == 22:
		return mi >= 5
	case ma == 21:
		return mi >= 10
	case ma == 20:
		return mi >= 15
	}
	return false
}

// timestamp formats t the way Asterisk's ast_json_timeval does (UTC here).
func timestamp(t time.Time) string { return t.UTC().Format(DateFormat) }

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
