// Package odoo is a protocol-faithful emulator of Odoo's external API: the
// XML-RPC services (/xmlrpc/2/common, /xmlrpc/2/object, /xmlrpc/2/db and the
// legacy /xmlrpc/... aliases) and, for Odoo 19, the JSON-2 API
// (POST /json/2/<model>/<method> with a bearer API key). It is a real HTTP
// server on loopback with an in-memory database of the models the
// switchboard adapters use (res.users, res.partner, ir.config_parameter,
// ir.module.module, project.*, helpdesk.ticket), Odoo's domain and order
// semantics, access rights, and the fault codes and strings Odoo sends.
package odoo

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Editions.
const (
	Community  = "community"
	Enterprise = "enterprise"
)

// Defaults of Options.
const (
	DefaultDatabase = "demo"
	DefaultLogin    = "admin"
	DefaultPassword = "admin"
	DefaultAPIKey   = "admin"
	DefaultVersion  = 17
)

// AdminUID is the id of the administrator user, as in every Odoo database.
const AdminUID = 2

// Options configure an emulated Odoo. Zero values take the defaults.
type Options struct {
	// Version is the major version: 16, 17, 18 or 19 (default 17).
	Version int
	// Edition is Community (default) or Enterprise.
	Edition string
	// Database is the one database served (default "demo").
	Database string
	// AdminLogin, AdminPassword and AdminAPIKey are the credentials of the
	// administrator (uid 2); default admin / admin / admin. An empty
	// AdminAPIKey after defaults is impossible: use "-" for "no API key".
	AdminLogin    string
	AdminPassword string
	AdminAPIKey   string
	// DisableXMLRPC makes /xmlrpc/... answer 404 as on an Odoo 19 without
	// its rpc module (and as on Odoo 22, where XML-RPC is gone). Only for
	// version 19.
	DisableXMLRPC bool
	// Logger receives the server's logs; hclog.NewNullLogger() when nil.
	Logger hclog.Logger
}

// credential is what the emulator knows about a user's secrets.
type credential struct {
	password string
	keys     []string
	level    level
}

// Server is one emulated Odoo. Create it with New, start it with Listen,
// stop it with Close. All methods are safe for concurrent use.
type Server struct {
	opts Options
	log  hclog.Logger

	mu       sync.Mutex
	defs     map[string]*modelDef
	tables   map[string]*table
	creds    map[int]*credential
	calls    map[string]int
	requests int
	xmlrpc   bool
	addr     string
	srv      *http.Server
	done     chan struct{}
	closed   bool
}

// New validates opts and returns a server with a fresh database: the
// administrator, a few inactive system users as Odoo creates them, base
// modules installed and the usual system parameters.
func New(opts Options) (*Server, error) {
	if opts.Version == 0 {
		opts.Version = DefaultVersion
	}
	if opts.Version < 16 || opts.Version > 19 {
		return nil, fmt.Errorf("odoo emulator: version %d not supported: use 16, 17, 18 or 19", opts.Version)
	}
	if opts.Edition == "" {
		opts.Edition = Community
	}
	if opts.Edition != Community && opts.Edition != Enterprise {
		return nil, fmt.Errorf("odoo emulator: edition %q unknown: use %s or %s", opts.Edition, Community, Enterprise)
	}
	if opts.DisableXMLRPC && opts.Version < 19 {
		return nil, fmt.Errorf("odoo emulator: XML-RPC can only be disabled on version 19 (the rpc module), not %d", opts.Version)
	}
	if opts.Database == "" {
		opts.Database = DefaultDatabase
	}
	if opts.AdminLogin == "" {
		opts.AdminLogin = DefaultLogin
	}
	if opts.AdminPassword == "" {
		opts.AdminPassword = DefaultPassword
	}
	if opts.AdminAPIKey == "" {
		opts.AdminAPIKey = DefaultAPIKey
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	s := &Server{opts: opts, log: opts.Logger, defs: modelDefs(opts.Edition), tables: map[string]*table{},
		creds: map[int]*credential{}, calls: map[string]int{}, xmlrpc: !opts.DisableXMLRPC}
	for name, def := range s.defs {
		s.tables[name] = &table{def: def, rows: map[int]map[string]any{}, nextID: 1}
	}
	s.seed()
	return s, nil
}

func (s *Server) seed() {
	must := func(_ int, err error) {
		if err != nil {
			panic("odoo emulator seed: " + err.Error())
		}
	}
	must(s.insert("res.partner", map[string]any{"name": "YourCompany", "is_company": true}))
	must(s.insert("res.partner", map[string]any{"name": "OdooBot", "email": "odoobot@example.com"}))
	must(s.insert("res.partner", map[string]any{"name": "Administrator", "email": "admin@yourcompany.example.com"}))
	must(s.insert("res.users", map[string]any{"name": "OdooBot", "login": "__system__", "active": false, "partner_id": 2}))
	must(s.insert("res.users", map[string]any{"name": "Administrator", "login": s.opts.AdminLogin, "partner_id": 3}))
	must(s.insert("res.users", map[string]any{"name": "Public user", "login": "public", "active": false, "share": true}))
	must(s.insert("res.users", map[string]any{"name": "Default User Template", "login": "default", "active": false}))
	must(s.insert("res.users", map[string]any{"name": "Portal User Template", "login": "portaltemplate", "active": false, "share": true}))
	keys := []string{}
	if s.opts.AdminAPIKey != "-" {
		keys = append(keys, s.opts.AdminAPIKey)
	}
	s.creds[AdminUID] = &credential{password: s.opts.AdminPassword, keys: keys, level: levelSystem}

	mods := []map[string]any{
		{"name": "base", "shortdesc": "Base", "author": "Odoo S.A.", "state": "installed"},
		{"name": "web", "shortdesc": "Web", "author": "Odoo S.A.", "state": "installed"},
		{"name": "mail", "shortdesc": "Discuss", "author": "Odoo S.A.", "state": "installed", "application": true},
		{"name": "contacts", "shortdesc": "Contacts", "author": "Odoo S.A.", "state": "installed", "application": true},
		{"name": "project", "shortdesc": "Project", "author": "Odoo S.A.", "state": "installed", "application": true},
	}
	if s.opts.Version >= 19 {
		mods = append(mods, map[string]any{"name": "rpc", "shortdesc": "RPC", "author": "Odoo S.A.", "state": map[bool]string{true: "installed", false: "uninstalled"}[s.xmlrpc]})
	}
	if s.opts.Edition == Enterprise {
		mods = append(mods,
			map[string]any{"name": "web_enterprise", "shortdesc": "Web Enterprise", "author": "Odoo S.A.", "state": "installed"},
			map[string]any{"name": "helpdesk", "shortdesc": "Helpdesk", "author": "Odoo S.A.", "state": "uninstalled", "application": true})
	} else {
		mods = append(mods, map[string]any{"name": "helpdesk_mgmt", "shortdesc": "Helpdesk Management", "author": "AdaptiveCity, Tecnativa, ForgeFlow, C2i Change 2 Improve, Domatix, Factor Libre, SDi Soluciones, Odoo Community Association (OCA)", "state": "uninstalled", "application": true})
	}
	for _, m := range mods {
		m["latest_version"] = fmt.Sprintf("%d.0.1.0", s.opts.Version)
		must(s.insert("ir.module.module", m))
	}
	must(s.insert("ir.config_parameter", map[string]any{"key": "database.uuid", "value": "8f7d2c1e-5b4a-4e0c-9d3f-2a6b7c8d9e0f"}))
	must(s.insert("ir.config_parameter", map[string]any{"key": "database.create_date", "value": time.Now().UTC().Format("2006-01-02 15:04:05")}))
	must(s.insert("ir.config_parameter", map[string]any{"key": "web.base.url", "value": "http://localhost:8069"}))
	must(s.insert("project.task.type", map[string]any{"name": "New", "sequence": 1}))
	must(s.insert("project.task.type", map[string]any{"name": "In Progress", "sequence": 2}))
	must(s.insert("project.task.type", map[string]any{"name": "Done", "sequence": 3}))
	if s.opts.Edition == Enterprise {
		must(s.insert("helpdesk.team", map[string]any{"name": "Customer Care"}))
		for i, st := range []string{"New", "In Progress", "Solved", "Cancelled"} {
			must(s.insert("helpdesk.stage", map[string]any{"name": st, "sequence": i}))
		}
	} else {
		must(s.insert("helpdesk.ticket.team", map[string]any{"name": "Helpdesk"}))
		for i, st := range []string{"New", "In Progress", "Done", "Cancelled"} {
			must(s.insert("helpdesk.ticket.stage", map[string]any{"name": st, "sequence": i}))
		}
	}
}

// Listen binds addr (use "127.0.0.1:0" in tests) and serves in the
// background until Close.
func (s *Server) Listen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("odoo emulator listen on %s: %w", addr, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.srv != nil {
		_ = ln.Close()
		return errors.New("odoo emulator: already listening or closed")
	}
	s.addr = ln.Addr().String()
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	s.srv, s.done = srv, done
	if err := s.setParamLocked("web.base.url", "http://"+s.addr); err != nil {
		s.log.Warn("odoo emulator: cannot set web.base.url", "error", err)
	}
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("odoo emulator stopped serving", "error", err)
		}
	}()
	s.log.Info("odoo emulator listening", "url", "http://"+s.addr, "version", s.opts.Version, "edition", s.opts.Edition, "database", s.opts.Database)
	return nil
}

// URL is the server's base URL, e.g. http://127.0.0.1:8069.
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return "http://" + s.addr
}

// Options returns the effective options (defaults filled in).
func (s *Server) Options() Options { return s.opts }

// Close stops the server.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	srv, done := s.srv, s.done
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	if err != nil {
		return fmt.Errorf("close odoo emulator: %w", err)
	}
	return nil
}

// User describes a user a test adds.
type User struct {
	Login, Name, Password string
	// APIKeys work as passwords on XML-RPC and as bearer tokens on JSON-2.
	APIKeys []string
	// Share makes a portal user (share=True); Admin gives the Settings
	// group. Neither: an internal user.
	Share, Admin bool
	// Inactive creates an archived user (active=False).
	Inactive bool
	Email    string
}

// AddUser creates a user (and its partner) and returns its uid.
func (s *Server) AddUser(u User) (int, error) {
	if u.Login == "" {
		return 0, errors.New("user needs a login")
	}
	if u.Share && u.Admin {
		return 0, errors.New("a portal (share) user cannot be an administrator")
	}
	if u.Name == "" {
		u.Name = u.Login
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.tables["res.users"].rows {
		if r["login"] == u.Login {
			return 0, fmt.Errorf("login %q already exists", u.Login)
		}
	}
	pid, err := s.insert("res.partner", map[string]any{"name": u.Name, "email": nilIfEmpty(u.Email)})
	if err != nil {
		return 0, err
	}
	uid, err := s.insert("res.users", map[string]any{"name": u.Name, "login": u.Login, "email": nilIfEmpty(u.Email),
		"share": u.Share, "active": !u.Inactive, "partner_id": pid})
	if err != nil {
		return 0, err
	}
	lv := levelUser
	switch {
	case u.Admin:
		lv = levelSystem
	case u.Share:
		lv = levelPortal
	}
	s.creds[uid] = &credential{password: u.Password, keys: append([]string(nil), u.APIKeys...), level: lv}
	return uid, nil
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// SetUserActive archives or restores a user.
func (s *Server) SetUserActive(uid int, active bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.tables["res.users"].rows[uid]
	if r == nil {
		return fmt.Errorf("no user %d", uid)
	}
	r["active"] = active
	return nil
}

// AddAPIKey gives a user one more API key.
func (s *Server) AddAPIKey(uid int, key string) error {
	if key == "" {
		return errors.New("API key is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.creds[uid]
	if c == nil {
		return fmt.Errorf("no user %d with credentials", uid)
	}
	c.keys = append(c.keys, key)
	return nil
}

// AddRecord inserts a record without access checks and returns its id.
// Values use the wire form: many2one as an id, many2many as a list of ids.
func (s *Server) AddRecord(model string, vals map[string]any) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.defs[model] == nil {
		return 0, fmt.Errorf("model %s is not emulated", model)
	}
	clean, rerr := s.convertVals(s.defs[model], vals)
	if rerr != nil {
		return 0, rerr
	}
	return s.insert(model, clean)
}

// Records returns copies of all records of a model (archived ones too), in
// id order, as read() would show them.
func (s *Server) Records(model string) ([]map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tables[model]
	if t == nil {
		return nil, fmt.Errorf("model %s is not emulated", model)
	}
	out := []map[string]any{}
	for _, id := range t.ids() {
		out = append(out, s.readRecord(t.def, t.rows[id], nil))
	}
	return out, nil
}

// Module describes an ir.module.module record a test adds.
type Module struct {
	Name, Shortdesc, Author, Summary string
	// State defaults to "installed".
	State string
}

// AddModule adds a module (a vendor's own, for instance).
func (s *Server) AddModule(m Module) error {
	if m.Name == "" {
		return errors.New("module needs a name")
	}
	if m.State == "" {
		m.State = "installed"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.moduleLocked(m.Name) != nil {
		return fmt.Errorf("module %s already exists", m.Name)
	}
	_, err := s.insert("ir.module.module", map[string]any{"name": m.Name, "shortdesc": nilIfEmpty(m.Shortdesc),
		"author": nilIfEmpty(m.Author), "summary": nilIfEmpty(m.Summary), "state": m.State,
		"latest_version": fmt.Sprintf("%d.0.1.0.0", s.opts.Version)})
	return err
}

// InstallModule marks a module installed (its models appear).
func (s *Server) InstallModule(name string) error { return s.setModuleState(name, "installed") }

// UninstallModule marks a module uninstalled (its models disappear).
func (s *Server) UninstallModule(name string) error { return s.setModuleState(name, "uninstalled") }

func (s *Server) setModuleState(name, state string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.moduleLocked(name)
	if m == nil {
		hint := ""
		if name == "helpdesk" && s.opts.Edition == Community {
			hint = ": Helpdesk is Enterprise-only; Community databases use OCA's helpdesk_mgmt"
		}
		return fmt.Errorf("no module %s in this database%s", name, hint)
	}
	m["state"] = state
	if name == "rpc" {
		s.xmlrpc = state == "installed"
	}
	return nil
}

func (s *Server) moduleLocked(name string) map[string]any {
	for _, r := range s.tables["ir.module.module"].rows {
		if r["name"] == name {
			return r
		}
	}
	return nil
}

// SetXMLRPCEnabled installs or uninstalls the rpc module of Odoo 19,
// which serves /xmlrpc and /jsonrpc.
func (s *Server) SetXMLRPCEnabled(on bool) error {
	if s.opts.Version < 19 {
		return fmt.Errorf("XML-RPC can only be switched off on Odoo 19, this is %d", s.opts.Version)
	}
	if on {
		return s.InstallModule("rpc")
	}
	return s.UninstallModule("rpc")
}

// ConfigParam returns an ir.config_parameter value.
func (s *Server) ConfigParam(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.paramLocked(key)
	if r == nil {
		return "", false
	}
	v, _ := r["value"].(string)
	return v, true
}

// SetConfigParam sets an ir.config_parameter value.
func (s *Server) SetConfigParam(key, value string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setParamLocked(key, value)
}

func (s *Server) paramLocked(key string) map[string]any {
	for _, r := range s.tables["ir.config_parameter"].rows {
		if r["key"] == key {
			return r
		}
	}
	return nil
}

func (s *Server) setParamLocked(key, value string) error {
	if r := s.paramLocked(key); r != nil {
		r["value"] = value
		return nil
	}
	_, err := s.insert("ir.config_parameter", map[string]any{"key": key, "value": value})
	return err
}

// Calls returns how often a call was made: "common.authenticate",
// "common.version", "db.list", or "<model>.<method>" for the object service
// and JSON-2 alike (e.g. "res.users.search_count").
func (s *Server) Calls(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

// CallCounts returns a copy of all call counters.
func (s *Server) CallCounts() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Requests is the number of HTTP requests received.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// insert adds a record with defaults; caller holds s.mu (or owns s).
func (s *Server) insert(model string, vals map[string]any) (int, error) {
	t := s.tables[model]
	if t == nil {
		return 0, fmt.Errorf("model %s is not emulated", model)
	}
	rec := map[string]any{}
	for _, f := range t.def.fields {
		if f.def != nil {
			rec[f.name] = f.def
		}
	}
	for k, v := range vals {
		if t.def.field(k) == nil {
			return 0, fmt.Errorf("model %s has no field %s", model, k)
		}
		rec[k] = v
	}
	for _, f := range t.def.fields {
		if f.required && isEmpty(rec[f.name]) && f.typ != "boolean" {
			return 0, &rpcError{"ValidationError", fmt.Sprintf("The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n- Delete: another model requires the record being deleted. If possible, archive it instead.\n\nModel: %s (%s)\nField: %s (%s)", t.def.label, t.def.name, f.label, f.name)}
		}
	}
	id := t.nextID
	t.nextID++
	rec["id"] = id
	if model == "helpdesk.ticket" {
		if t.def.field("ticket_ref") != nil {
			rec["ticket_ref"] = fmt.Sprint(id)
		}
		if t.def.field("number") != nil {
			rec["number"] = fmt.Sprintf("HT%05d", id)
		}
	}
	t.rows[id] = rec
	return id, nil
}

// available tells whether a model exists in the database now (its
// providing module is installed).
func (s *Server) available(def *modelDef) bool {
	if len(def.modules) == 0 {
		return true
	}
	for _, m := range def.modules {
		if r := s.moduleLocked(m); r != nil && r["state"] == "installed" {
			return true
		}
	}
	return false
}

func (s *Server) displayName(def *modelDef, rec map[string]any) string {
	if v, ok := rec[def.nameFrom].(string); ok {
		return v
	}
	return fmt.Sprintf("%s,%d", def.name, rec["id"])
}
