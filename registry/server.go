// Package registry is the vendor's central service: partners and
// referrals, install activation and licences, signed heartbeat ingest and
// install liveness, over HTTP/JSON (documented in openapi.yaml). Storage is
// behind store.Store; wire formats are in registry/api (installs) and
// registry/adminapi (staff and public partner endpoints).
package registry

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
	"github.com/switchboard-dev/switchboard/registry/adminapi"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Server serves the registry API over a Store.
type Server struct {
	cfg   Config
	store store.Store
	log   hclog.Logger
	token string

	keysMu sync.RWMutex
	keys   *KeySet

	// pubKeys caches install id → public key. An install's key never
	// changes, so the hot heartbeat path skips a read transaction.
	pubKeys sync.Map

	signups     *limiter
	activations *limiter

	metrics *metrics
	mux     *http.ServeMux
	routes  []Route

	support *supportService  // support tickets (support*.go)
	pay     *paymentsService // payments, commission ledger, payouts (payments*.go)
}

// Route is one registered endpoint.
type Route struct {
	Method  string
	Path    string // pattern with {id}/{code} placeholders, as in openapi.yaml
	Admin   bool   // needs the admin bearer token
	handler http.HandlerFunc
}

// New builds a server. cfg is completed with defaults and validated.
func New(cfg Config, st store.Store, keys *KeySet, adminToken string, log hclog.Logger) (*Server, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if keys == nil {
		return nil, errors.New("registry needs a signing key: prepare the data directory first")
	}
	if len(adminToken) < 32 {
		return nil, errors.New("admin token must be at least 32 characters")
	}
	if log == nil {
		log = hclog.NewNullLogger()
	}
	s := &Server{
		cfg:         cfg,
		store:       st,
		log:         log,
		token:       adminToken,
		keys:        keys,
		signups:     newLimiter(cfg.SignupsPerHour/3600, cfg.SignupBurst),
		activations: newLimiter(cfg.ActivationsPerSecond, cfg.ActivationBurst),
		metrics:     newMetrics(),
		mux:         http.NewServeMux(),
	}
	s.support = newSupportService(s)
	pay, err := newPaymentsService(s)
	if err != nil {
		return nil, err
	}
	s.pay = pay
	s.register()
	return s, nil
}

// Metrics is the Prometheus registry the server reports to. Pass its
// Observe to the store options to get commit figures too.
func (s *Server) Metrics() *prometheus.Registry { return s.metrics.reg }

// ObserveCommit records one group commit of the store.
func (s *Server) ObserveCommit(writes int, took time.Duration) {
	s.metrics.commitSize.Observe(float64(writes))
	s.metrics.commitSeconds.Observe(took.Seconds())
}

// ObserveCheckpoint records one checkpoint of the store.
func (s *Server) ObserveCheckpoint(_ int, took time.Duration) {
	s.metrics.checkpoints.Observe(took.Seconds())
}

// SetKeys replaces the signing keys (after a rotation, on SIGHUP).
func (s *Server) SetKeys(ks *KeySet) {
	s.keysMu.Lock()
	s.keys = ks
	s.keysMu.Unlock()
}

func (s *Server) currentKeys() *KeySet {
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	return s.keys
}

// Routes lists every endpoint the server serves.
func (s *Server) Routes() []Route { return s.routes }

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) register() {
	for _, r := range []Route{
		{Method: "POST", Path: api.PathActivations, handler: s.handleActivate},
		{Method: "POST", Path: api.PathReports, handler: s.handleReports},
		{Method: "POST", Path: api.PathLink, handler: s.handleLink},
		{Method: "POST", Path: api.PathDeactivate, handler: s.handleDeactivate},
		{Method: "GET", Path: api.PathLicence, handler: s.handleLicence},
		{Method: "GET", Path: api.PathKeys, handler: s.handleKeys},
		{Method: "POST", Path: adminapi.PathSignup, handler: s.handleSignup},
		{Method: "GET", Path: adminapi.PathDirectory, handler: s.handleDirectory},
		{Method: "GET", Path: adminapi.PathHealth, handler: s.handleHealth},
		{Method: "GET", Path: adminapi.PathMetrics, handler: s.handleMetrics},
		{Method: "POST", Path: adminapi.PathPartners, Admin: true, handler: s.handleCreatePartner},
		{Method: "GET", Path: adminapi.PathPartners, Admin: true, handler: s.handleListPartners},
		{Method: "GET", Path: adminapi.PathPartner, Admin: true, handler: s.handleGetPartner},
		{Method: "PATCH", Path: adminapi.PathPartner, Admin: true, handler: s.handleUpdatePartner},
		{Method: "POST", Path: adminapi.PathPartnerApprove, Admin: true, handler: s.handlePartnerStatus(store.PartnerApproved)},
		{Method: "POST", Path: adminapi.PathPartnerSuspend, Admin: true, handler: s.handlePartnerStatus(store.PartnerSuspended)},
		{Method: "GET", Path: adminapi.PathInstalls, Admin: true, handler: s.handleListInstalls},
		{Method: "GET", Path: adminapi.PathInstall, Admin: true, handler: s.handleGetInstall},
		{Method: "POST", Path: adminapi.PathInstallMove, Admin: true, handler: s.handleMoveInstall},
		{Method: "GET", Path: adminapi.PathInstallSeqs, Admin: true, handler: s.handleInstallSeqs},
		{Method: "GET", Path: adminapi.PathInstallReports, Admin: true, handler: s.handleInstallReports},
		// Support tickets (support.go).
		{Method: "POST", Path: api.PathTickets, handler: s.handleOpenTicket},
		{Method: "GET", Path: api.PathTickets, handler: s.handleInstallTickets},
		{Method: "POST", Path: api.PathTicketNotes, handler: s.handleTicketNote},
		{Method: "GET", Path: adminapi.PathTickets, Admin: true, handler: s.handleAdminTickets},
		{Method: "GET", Path: adminapi.PathTicket, Admin: true, handler: s.handleAdminTicket},
		{Method: "POST", Path: adminapi.PathTicketRoute, Admin: true, handler: s.handleAdminRouteTicket},
		{Method: "POST", Path: adminapi.PathTicketNotes, Admin: true, handler: s.handleAdminTicketNote},
		{Method: "PUT", Path: adminapi.PathPartnerChannel, Admin: true, handler: s.handlePutChannel},
		{Method: "GET", Path: adminapi.PathPartnerChannel, Admin: true, handler: s.handleGetChannel},
		{Method: "DELETE", Path: adminapi.PathPartnerChannel, Admin: true, handler: s.handleDeleteChannel},
		{Method: "GET", Path: adminapi.PathSupportStatus, Admin: true, handler: s.handleSupportStatus},
		// Download page, installer scripts and packages (download.go).
		{Method: "GET", Path: PathDownload, handler: s.handleDownloadPage},
		{Method: "GET", Path: PathReferralLink, handler: s.handleDownloadPage},
		{Method: "GET", Path: PathInstallScript, handler: s.handleInstallScript},
		{Method: "GET", Path: PathNamedInstaller, handler: s.handleNamedInstaller},
		{Method: "GET", Path: PathPackage, handler: s.handlePackage},
		// Payments, attribution, payouts and statements (payments*.go, attribution.go).
		{Method: "POST", Path: adminapi.PathPaymentWebhook, handler: s.handlePaymentWebhook},
		{Method: "POST", Path: adminapi.PathStripeWebhook, handler: s.handleStripeWebhook},
		{Method: "POST", Path: adminapi.PathPaymentImport, Admin: true, handler: s.handlePaymentImport},
		{Method: "POST", Path: adminapi.PathSignups, Admin: true, handler: s.handleCustomerSignup},
		{Method: "GET", Path: adminapi.PathCustomer, Admin: true, handler: s.handleGetCustomer},
		{Method: "POST", Path: adminapi.PathCustomerLink, Admin: true, handler: s.handleLinkCustomer},
		{Method: "POST", Path: adminapi.PathCustomerMove, Admin: true, handler: s.handleMoveCustomer},
		{Method: "POST", Path: adminapi.PathPayoutRuns, Admin: true, handler: s.handlePayoutRun},
		{Method: "GET", Path: adminapi.PathPayoutBatch, Admin: true, handler: s.handlePayoutBatch},
		{Method: "POST", Path: adminapi.PathPayoutResults, Admin: true, handler: s.handlePayoutResults},
		{Method: "GET", Path: adminapi.PathLedgerCheck, Admin: true, handler: s.handleLedgerCheck},
		{Method: "GET", Path: adminapi.PathLedgerBalances, Admin: true, handler: s.handleLedgerBalances},
		{Method: "GET", Path: adminapi.PathStatement, Admin: true, handler: s.handleStatement},
	} {
		s.routes = append(s.routes, r)
		s.mux.Handle(r.Method+" "+r.Path, s.wrap(r))
	}
	// Anything else: a JSON 404 (or 405) instead of net/http's text.
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.metrics.requests.WithLabelValues("other", "404").Inc()
		writeError(w, http.StatusNotFound, api.CodeNotFound, fmt.Sprintf("no endpoint %s %s: see registry/openapi.yaml", r.Method, r.URL.Path))
	})
}

// wrap adds authentication, metrics and the request log around a route.
func (s *Server) wrap(rt Route) http.Handler {
	route := rt.Method + " " + rt.Path
	duration := s.metrics.duration.WithLabelValues(route)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if rt.Admin && !s.authorised(r) {
			writeError(sw, http.StatusUnauthorized, api.CodeUnauthorized, "missing or wrong admin token: send 'Authorization: Bearer <token>' with the token from the registry's data directory (admin.token)")
		} else {
			rt.handler(sw, r)
		}
		took := time.Since(start)
		duration.Observe(took.Seconds())
		s.metrics.requests.WithLabelValues(route, statusLabel(sw.status)).Inc()
		// Heartbeats arrive by the thousand per second: successes are
		// logged at debug, problems at info and above.
		switch {
		case sw.status >= 500:
			s.log.Error("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", took, "remote", r.RemoteAddr, "error", sw.errMsg)
		case sw.status >= 400:
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", took, "remote", r.RemoteAddr, "error", sw.errMsg)
		case rt.Admin && r.Method != http.MethodGet:
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", took, "remote", r.RemoteAddr)
		default:
			if s.log.IsDebug() {
				s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "took", took, "remote", r.RemoteAddr)
			}
		}
	})
}

// Run serves on ln until ctx ends, then shuts down gracefully: it stops
// accepting, waits for in-flight requests (and so their commits) up to the
// shutdown timeout, and returns. The caller closes the store afterwards.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.mux,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout.D(),
		ReadTimeout:       s.cfg.ReadTimeout.D(),
		WriteTimeout:      s.cfg.WriteTimeout.D(),
		IdleTimeout:       s.cfg.IdleTimeout.D(),
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          s.log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	// Support delivery stops after the HTTP server: see the end of Run.
	supportCtx, stopSupport := context.WithCancel(context.Background())
	supportDone := make(chan struct{})
	go func() { defer close(supportDone); s.support.run(supportCtx) }()
	defer func() { stopSupport(); <-supportDone }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.log.Info("shutting down: finishing in-flight requests", "timeout", s.cfg.ShutdownTimeout.D())
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout.D())
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("graceful shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// WriteAddrFile records the bound address in DataDir/registry.addr so
// scripts and tests started with port 0 can find the registry.
func WriteAddrFile(dataDir string, addr net.Addr) error {
	return atomicfile.WriteFile(filepath.Join(dataDir, AddrFile), []byte(addr.String()+"\n"), 0o644)
}

// ReadAddrFile returns the address in DataDir/registry.addr.
func ReadAddrFile(dataDir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, AddrFile))
	if err != nil {
		return "", err
	}
	return string(trimNL(b)), nil
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (s *Server) now() time.Time { return s.cfg.Now() }

// installKey returns the public key of an install, from the cache or the store.
func (s *Server) installKey(ctx context.Context, id string) (ed25519.PublicKey, error) {
	if k, ok := s.pubKeys.Load(id); ok {
		return k.(ed25519.PublicKey), nil
	}
	in, err := s.store.GetInstall(ctx, id)
	if err != nil {
		return nil, err
	}
	k := ed25519.PublicKey(in.PublicKey)
	s.pubKeys.Store(id, k)
	return k, nil
}
