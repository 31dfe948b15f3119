// Package odooclient is a client for Odoo's external API, shared by the
// Odoo Integration plugin and the partner's-Odoo support channel.
//
// It speaks both protocols Odoo offers and behaves the same over each:
//
//   - XML-RPC (/xmlrpc/2/common and /xmlrpc/2/object, execute_kw), encoded
//     and decoded with github.com/kolo/xmlrpc, for Odoo 16 to 19. Login is
//     common.authenticate with a password or an API key.
//   - JSON-2 (POST /json/2/<model>/<method>, "Authorization: bearer KEY",
//     "X-Odoo-Database: DB"), Odoo 19's replacement of XML-RPC, which is
//     deprecated in 19 and gone when the rpc module is uninstalled (and in
//     Odoo 20). It accepts API keys only.
//
// With API "auto" the client asks /xmlrpc/2/common for the version: below
// 19 it uses XML-RPC; from 19 on it uses JSON-2, falling back to XML-RPC
// when the secret is a password that JSON-2 refuses; when XML-RPC answers
// 404 it uses JSON-2 (version from GET /web/version).
//
// Every failure is an *Error with a Kind (wrong credentials, no access to a
// model, missing model or module, unknown database, server error,
// unreachable ...) and a plain message; Odoo's fault codes 1-4 and JSON-2
// error documents map onto the same kinds. Odoo's False for empty fields
// decodes through the accessors of Record (see values.go).
package odooclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// API selects the protocol.
type API string

// The protocols.
const (
	APIAuto   API = "auto"
	APIXMLRPC API = "xmlrpc"
	APIJSON2  API = "json2"
)

// ParseAPI reads an api setting; "" means auto.
func ParseAPI(s string) (API, error) {
	switch API(strings.ToLower(strings.TrimSpace(s))) {
	case "", APIAuto:
		return APIAuto, nil
	case APIXMLRPC:
		return APIXMLRPC, nil
	case APIJSON2:
		return APIJSON2, nil
	}
	return "", fmt.Errorf("api %q is not auto, xmlrpc or json2", s)
}

// DefaultTimeout bounds one client operation (login included) when
// Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config says how to reach and log in to one Odoo database.
type Config struct {
	// URL is Odoo's base URL, e.g. http://127.0.0.1:8069 or
	// https://erp.example.com (a path prefix is kept).
	URL string
	// Database is the database name (XML-RPC needs it; JSON-2 sends it as
	// X-Odoo-Database).
	Database string
	// Login is the user's login (XML-RPC authenticate; JSON-2 ignores it).
	Login string
	// Secret is the user's API key (preferred; JSON-2 accepts nothing else)
	// or password (XML-RPC only).
	Secret string
	// API forces a protocol; "" or APIAuto detects it.
	API API
	// Timeout bounds each operation; DefaultTimeout when zero.
	Timeout time.Duration
	// UserAgent is sent with every request; "switchboard-odooclient" when empty.
	UserAgent string
	// HTTPClient is used for every request when set (its own Timeout
	// applies too); otherwise the client makes one.
	HTTPClient *http.Client
}

// Client talks to one Odoo database. It is safe for concurrent use; it
// logs in on first use and keeps the session until a call shows that the
// login, the server or the protocol changed.
type Client struct {
	cfg  Config
	base *url.URL
	http *http.Client

	mu   sync.Mutex
	sess *Session
}

// New checks cfg and returns a client. It does not contact Odoo.
func New(cfg Config) (*Client, error) {
	u, err := ParseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	if cfg.API, err = ParseAPI(string(cfg.API)); err != nil {
		return nil, err
	}
	if cfg.Secret == "" {
		return nil, errors.New("the Odoo password or API key is empty")
	}
	if cfg.API != APIJSON2 && cfg.Login == "" {
		return nil, errors.New("the Odoo login is empty (XML-RPC needs it)")
	}
	if cfg.API != APIJSON2 && cfg.Database == "" {
		return nil, errors.New("the Odoo database name is empty (XML-RPC needs it)")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("timeout %s is negative", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.UserAgent == "" {
		cfg.UserAgent = "switchboard-odooclient"
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: cfg.Timeout}
	}
	return &Client{cfg: cfg, base: u, http: hc}, nil
}

// ParseURL checks an Odoo base URL: http or https, a host, no user
// information (credentials go in their own settings), no query.
func ParseURL(raw string) (*url.URL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil, errors.New("the Odoo URL is empty: set it to e.g. http://127.0.0.1:8069")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("the Odoo URL %q does not parse: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("the Odoo URL %q must start with http:// or https://", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("the Odoo URL %q has no host", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("the Odoo URL must not carry a user or password; put them in their own settings")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("the Odoo URL %q must not have a query or fragment", u.Redacted())
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// URL is the base URL the client talks to.
func (c *Client) URL() string { return c.base.String() }

// Database is the configured database.
func (c *Client) Database() string { return c.cfg.Database }

// VersionInfo is what Odoo says about its version.
type VersionInfo struct {
	// ServerVersion is the full string, "17.0" or "17.0+e".
	ServerVersion string `json:"server_version"`
	// Serie is the release without edition marker, "17.0" or "saas~17.2".
	Serie string `json:"serie"`
	Major int    `json:"major"`
	Minor int    `json:"minor"`
	// Enterprise is true when the version says so: "+e" in server_version
	// or "e" as the last element of server_version_info (the test Odoo's
	// own web client makes).
	Enterprise      bool `json:"enterprise"`
	ProtocolVersion int  `json:"protocol_version,omitempty"`
}

// Session is a logged-in connection.
type Session struct {
	API      API         `json:"api"`
	UID      int64       `json:"uid"`
	Login    string      `json:"login,omitempty"`
	Database string      `json:"database,omitempty"`
	Version  VersionInfo `json:"version"`
	// Note explains a choice the detection made (a fallback), else "".
	Note string `json:"note,omitempty"`
}

// Session returns the current session, logging in when there is none.
func (c *Client) Session(ctx context.Context) (Session, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	s, err := c.session(ctx)
	if err != nil {
		return Session{}, err
	}
	return *s, nil
}

// CurrentSession returns the session without logging in; ok is false
// when there is none.
func (c *Client) CurrentSession() (s Session, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sess == nil {
		return Session{}, false
	}
	return *c.sess, true
}

// Forget drops the session; the next call logs in (and detects) again.
func (c *Client) Forget() {
	c.mu.Lock()
	c.sess = nil
	c.mu.Unlock()
}

func (c *Client) session(ctx context.Context) (*Session, error) {
	c.mu.Lock()
	s := c.sess
	c.mu.Unlock()
	if s != nil {
		return s, nil
	}
	s, err := c.login(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
	return s, nil
}

// forgetOn drops the session after errors that may mean the login, the
// server or its protocols changed.
func (c *Client) forgetOn(err error) {
	switch KindOf(err) {
	case KindCredentials, KindNoAPI, KindUnreachable, KindUnknownDatabase, KindProtocol:
		c.Forget()
	}
}

func (c *Client) login(ctx context.Context) (*Session, error) {
	switch c.cfg.API {
	case APIXMLRPC:
		return c.loginXMLRPC(ctx, nil)
	case APIJSON2:
		return c.loginJSON2(ctx, nil)
	}
	vi, err := c.xmlrpcVersion(ctx)
	if KindOf(err) == KindNoAPI {
		s, jerr := c.loginJSON2(ctx, nil)
		if KindOf(jerr) == KindNoAPI {
			return nil, &Error{Kind: KindNoAPI, Op: "detect", Err: jerr,
				Message: fmt.Sprintf("no Odoo external API at %s: /xmlrpc/2/common and /json/2 both answered Not Found; check the url", c.base)}
		}
		if jerr != nil {
			return nil, jerr
		}
		s.Note = "XML-RPC is not served here; using JSON-2"
		return s, nil
	}
	if err != nil {
		return nil, err
	}
	if vi.Major < 19 {
		return c.loginXMLRPC(ctx, &vi)
	}
	s, jerr := c.loginJSON2(ctx, &vi)
	if jerr == nil {
		return s, nil
	}
	if k := KindOf(jerr); k != KindCredentials && k != KindNoAPI {
		return nil, jerr
	}
	// The secret may be a password, which JSON-2 refuses but XML-RPC
	// (deprecated from 19 on) still takes.
	s, xerr := c.loginXMLRPC(ctx, &vi)
	if xerr != nil {
		return nil, jerr
	}
	s.Note = "JSON-2 refused the secret (a password?); using XML-RPC, which Odoo 19 deprecates: configure an API key"
	return s, nil
}

func (c *Client) xmlrpcVersion(ctx context.Context) (VersionInfo, error) {
	res, err := c.xmlrpcCall(ctx, "common", "version", "common.version", nil)
	if err != nil {
		return VersionInfo{}, err
	}
	m, ok := res.(map[string]any)
	if !ok {
		return VersionInfo{}, &Error{Kind: KindProtocol, Op: "common.version", Message: "version answer is " + describe(res) + ", not an object"}
	}
	return parseVersion("common.version", m["server_version"], m["server_version_info"], m["server_serie"], m["protocol_version"])
}

// json2Version asks GET /web/version (Odoo 19: {"version": ..., "version_info": [...]}).
func (c *Client) json2Version(ctx context.Context) (VersionInfo, error) {
	const op = "web.version"
	req, err := http.NewRequest(http.MethodGet, c.base.JoinPath("web", "version").String(), nil)
	if err != nil {
		return VersionInfo{}, &Error{Kind: KindProtocol, Op: op, Err: err, Message: "cannot build the request"}
	}
	status, body, err := c.post(ctx, op, req)
	if err != nil {
		return VersionInfo{}, err
	}
	res, err := DecodeJSON2Response(op, status, body)
	if err != nil {
		return VersionInfo{}, err
	}
	m, ok := res.(map[string]any)
	if !ok {
		return VersionInfo{}, &Error{Kind: KindProtocol, Op: op, Message: "version answer is " + describe(res) + ", not an object"}
	}
	return parseVersion(op, m["version"], m["version_info"], nil, nil)
}

// Version asks the server for its version over the session's protocol
// (logging in first when needed).
func (c *Client) Version(ctx context.Context) (VersionInfo, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	s, err := c.session(ctx)
	if err != nil {
		return VersionInfo{}, err
	}
	var vi VersionInfo
	if s.API == APIJSON2 {
		vi, err = c.json2Version(ctx)
		if KindOf(err) == KindNoAPI && s.Version.Serie != "" {
			return s.Version, nil // no /web/version: keep what login found
		}
	} else {
		vi, err = c.xmlrpcVersion(ctx)
	}
	if err != nil {
		c.forgetOn(err)
		return VersionInfo{}, err
	}
	if vi != s.Version {
		// An upgrade while we were connected: log in again next time so
		// that the protocol choice is made anew.
		c.Forget()
	}
	return vi, nil
}

var serieRE = regexp.MustCompile(`(\d+)\.(\d+)`)

func parseVersion(op string, version, info, serie, protocol any) (VersionInfo, error) {
	var vi VersionInfo
	vi.ServerVersion, _ = AsString(version)
	vi.Serie, _ = AsString(serie)
	if list, ok := info.([]any); ok {
		if len(list) > 0 {
			n, _ := AsInt(list[0])
			vi.Major = int(n)
		}
		if len(list) > 1 {
			n, _ := AsInt(list[1])
			vi.Minor = int(n)
		}
		if len(list) > 0 {
			if last, _ := AsString(list[len(list)-1]); last == "e" {
				vi.Enterprise = true
			}
		}
	}
	if strings.Contains(vi.ServerVersion, "+e") {
		vi.Enterprise = true
	}
	if vi.Serie == "" {
		vi.Serie, _, _ = strings.Cut(vi.ServerVersion, "+")
	}
	if vi.Major == 0 {
		if m := serieRE.FindStringSubmatch(vi.Serie); m != nil {
			vi.Major, _ = strconv.Atoi(m[1])
			vi.Minor, _ = strconv.Atoi(m[2])
		}
	}
	if p, ok := AsInt(protocol); ok {
		vi.ProtocolVersion = int(p)
	}
	vi.ServerVersion, vi.Serie = clean(vi.ServerVersion), clean(vi.Serie)
	if vi.Serie == "" || vi.Major <= 0 || vi.Major > 1000 {
		return VersionInfo{}, &Error{Kind: KindProtocol, Op: op, Message: "the version answer names no Odoo version: is the url that of an Odoo server?"}
	}
	return vi, nil
}

func (c *Client) loginXMLRPC(ctx context.Context, vi *VersionInfo) (*Session, error) {
	if vi == nil {
		v, err := c.xmlrpcVersion(ctx)
		if err != nil {
			if e, ok := AsError(err); ok && e.Kind == KindNoAPI && c.cfg.API == APIXMLRPC {
				e.Message += "; set api to auto or json2"
			}
			return nil, err
		}
		vi = &v
	}
	const op = "common.authenticate"
	res, err := c.xmlrpcCall(ctx, "common", "authenticate", op,
		[]any{c.cfg.Database, c.cfg.Login, c.cfg.Secret, map[string]any{}})
	if err != nil {
		return nil, err
	}
	uid, ok := AsInt(res)
	if !ok || uid <= 0 {
		if b, isBool := res.(bool); isBool && !b {
			return nil, &Error{Kind: KindCredentials, Op: op,
				Message: fmt.Sprintf("wrong login or API key: Odoo refused login %q on database %q", c.cfg.Login, c.cfg.Database)}
		}
		return nil, &Error{Kind: KindProtocol, Op: op, Message: "authenticate answered " + describe(res) + " instead of a user id"}
	}
	return &Session{API: APIXMLRPC, UID: uid, Login: c.cfg.Login, Database: c.cfg.Database, Version: *vi}, nil
}

func (c *Client) loginJSON2(ctx context.Context, vi *VersionInfo) (*Session, error) {
	var known VersionInfo
	if vi != nil {
		known = *vi
	} else {
		v, err := c.json2Version(ctx)
		switch {
		case err == nil:
			known = v
		case KindOf(err) != KindNoAPI:
			return nil, err
		}
	}
	res, err := c.json2Call(ctx, "res.users", "context_get", "res.users.context_get", map[string]any{})
	if err != nil {
		return nil, err
	}
	m, _ := res.(map[string]any)
	uid, ok := AsInt(m["uid"])
	if !ok || uid <= 0 {
		return nil, &Error{Kind: KindProtocol, Op: "res.users.context_get", Message: "the user context names no user id"}
	}
	s := &Session{API: APIJSON2, UID: uid, Database: c.cfg.Database, Version: known}
	// JSON-2 knows the user by its key only: read the login for reports.
	users, err := c.json2Call(ctx, "res.users", "read", "res.users.read", map[string]any{"ids": []int64{uid}, "fields": []string{"login"}})
	if err == nil {
		if recs := AsRecords(users); len(recs) == 1 {
			s.Login = recs[0].String("login")
		}
	}
	if s.Version.Serie == "" {
		// No /web/version on this server: the base module's version
		// ("19.0.1.3") names the release.
		mods, err := c.json2Call(ctx, "ir.module.module", "search_read", "ir.module.module.search_read",
			map[string]any{"domain": []any{[]any{"name", "=", "base"}}, "fields": []string{"latest_version"}, "limit": 1})
		if err != nil {
			return nil, err
		}
		recs := AsRecords(mods)
		if len(recs) == 0 {
			return nil, &Error{Kind: KindProtocol, Op: "ir.module.module.search_read", Message: "cannot tell the Odoo version: no base module"}
		}
		lv := recs[0].String("latest_version")
		parts := strings.SplitN(lv, ".", 3)
		if len(parts) < 2 {
			return nil, &Error{Kind: KindProtocol, Op: "ir.module.module.search_read", Message: fmt.Sprintf("cannot tell the Odoo version from base %q", clean(lv))}
		}
		v, err := parseVersion("ir.module.module.search_read", parts[0]+"."+parts[1], nil, nil, nil)
		if err != nil {
			return nil, err
		}
		s.Version = v
	}
	return s, nil
}

// arg is a named argument; XML-RPC sends it positionally.
type arg struct {
	name  string
	value any
}

// Call runs model.method with keyword arguments kw (by name, over both
// protocols) on the records ids (nil for model-level methods such as
// search or create) and returns the decoded result.
func (c *Client) Call(ctx context.Context, model, method string, ids []int64, kw map[string]any) (any, error) {
	return c.call(ctx, model, method, ids, nil, kw)
}

func (c *Client) call(ctx context.Context, model, method string, ids []int64, pos []arg, kw map[string]any) (any, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	op := model + "." + method
	if model == "" || method == "" || strings.ContainsAny(model+method, "/?#% \t\n") {
		return nil, &Error{Kind: KindUser, Op: op, Message: "invalid model or method name"}
	}
	s, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	var res any
	if s.API == APIJSON2 {
		body := make(map[string]any, len(kw)+len(pos)+1)
		for k, v := range kw {
			body[k] = v
		}
		for _, a := range pos {
			body[a.name] = a.value
		}
		if ids != nil {
			body["ids"] = ids
		}
		res, err = c.json2Call(ctx, model, method, op, body)
	} else {
		args := make([]any, 0, len(pos)+1)
		if ids != nil {
			args = append(args, ids)
		}
		for _, a := range pos {
			args = append(args, a.value)
		}
		if kw == nil {
			kw = map[string]any{}
		}
		res, err = c.xmlrpcCall(ctx, "object", "execute_kw", op,
			[]any{c.cfg.Database, s.UID, c.cfg.Secret, model, method, args, kw})
	}
	if err != nil {
		c.forgetOn(err)
		return nil, err
	}
	return res, nil
}
