package ari

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// maxBody bounds request bodies, as Asterisk's HTTP server does.
const maxBody = 1 << 20

// params are the request parameters: query string, form body and JSON body
// merged, as res_ari merges them.
type params map[string][]string

func (p params) get(name string) string {
	if v := p[name]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// route is one ARI operation. Path segments in braces are variables.
type route struct {
	method  string
	pattern []string
	model   string // responseClass to validate against ("" = none)
	handle  func(s *Server, w http.ResponseWriter, r *http.Request, vars map[string]string, p params)
}

var routes []route

func init() {
	add := func(method, pattern, model string, h func(*Server, http.ResponseWriter, *http.Request, map[string]string, params)) {
		routes = append(routes, route{method: method, pattern: strings.Split(pattern, "/"), model: model, handle: h})
	}
	add("GET", "asterisk/info", "AsteriskInfo", (*Server).getInfo)
	add("GET", "asterisk/ping", "AsteriskPing", (*Server).getPing)
	add("GET", "asterisk/variable", "Variable", (*Server).getVariable)
	add("POST", "asterisk/variable", "", (*Server).setVariable)
	add("GET", "asterisk/modules", "", notImplemented)
	add("GET", "asterisk/logging", "", notImplemented)
	add("GET", "endpoints", "List[Endpoint]", (*Server).listEndpoints)
	add("PUT", "endpoints/sendMessage", "", notImplemented)
	add("POST", "endpoints/refer", "", notImplemented)
	add("GET", "endpoints/{tech}", "List[Endpoint]", (*Server).listEndpointsByTech)
	add("GET", "endpoints/{tech}/{resource}", "Endpoint", (*Server).getEndpoint)
	add("GET", "channels", "List[Channel]", (*Server).listChannels)
	add("POST", "channels", "", notImplemented)
	add("POST", "channels/create", "", notImplemented)
	add("POST", "channels/externalMedia", "", notImplemented)
	add("GET", "channels/{channelId}", "Channel", (*Server).getChannel)
	add("POST", "channels/{channelId}", "", notImplemented)
	add("DELETE", "channels/{channelId}", "", (*Server).hangupChannel)
	add("GET", "bridges", "List[Bridge]", (*Server).listBridges)
	add("GET", "deviceStates", "List[DeviceState]", (*Server).listDeviceStates)
	add("GET", "applications", "List[Application]", (*Server).listApplications)
	add("GET", "applications/{applicationName}", "Application", (*Server).getApplication)
	add("POST", "applications/{applicationName}/subscription", "Application", (*Server).subscribe)
	add("DELETE", "applications/{applicationName}/subscription", "Application", (*Server).unsubscribe)
	add("PUT", "applications/{applicationName}/eventFilter", "Application", (*Server).setEventFilter)
	add("GET", "events", "", func(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string, p params) {
		s.serveEvents(w, r, p)
	})
	add("POST", "events/user/{eventName}", "", notImplemented)
}

func notImplemented(s *Server, w http.ResponseWriter, r *http.Request, _ map[string]string, _ params) {
	s.writeError(w, http.StatusNotImplemented, "Not implemented by the switchboard ARI emulator: "+r.Method+" "+r.URL.Path)
}

// ServeHTTP routes /ari/... like res_ari and /_emulator/... to the test
// controls.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	s.mu.Unlock()
	if err := s.waitStall(r.Context()); err != nil {
		return
	}
	w.Header().Set("Server", "Asterisk/"+s.opts.Version)
	path := r.URL.EscapedPath()
	switch {
	case strings.HasPrefix(path, "/_emulator/") || path == "/_emulator":
		s.serveControl(w, r)
		return
	case path == "/ari" || strings.HasPrefix(path, "/ari/"):
	default:
		// Asterisk's HTTP server answers unknown URIs with an HTML 404.
		htmlError(w, http.StatusNotFound, "The requested URL was not found on this server.")
		return
	}
	p, perr := readParams(r)
	if !s.authorized(r, p) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", s.opts.Realm))
		s.writeError(w, http.StatusUnauthorized, "Authentication required")
		return
	}
	if perr != nil {
		s.writeError(w, http.StatusBadRequest, "Error parsing request body")
		return
	}
	uri := strings.TrimPrefix(strings.TrimPrefix(path, "/ari"), "/")
	if strings.HasSuffix(uri, "/") {
		s.writeError(w, http.StatusNotFound, "ARI URLs do not end with a slash. Try /ari/"+strings.TrimSuffix(uri, "/"))
		return
	}
	segs := strings.Split(uri, "/")
	for i, seg := range segs {
		dec, err := url.PathUnescape(seg)
		if err != nil {
			s.writeError(w, http.StatusNotFound, "Resource not found")
			return
		}
		segs[i] = dec
	}
	var pathMatched bool
	var allow []string
	for _, rt := range routes {
		vars, ok := matchRoute(rt.pattern, segs)
		if !ok {
			continue
		}
		pathMatched = true
		if rt.method != r.Method {
			allow = append(allow, rt.method)
			continue
		}
		rt.handle(s, &modelWriter{ResponseWriter: w, srv: s, model: rt.model, what: r.Method + " /ari/" + uri}, r, vars, p)
		return
	}
	if !pathMatched {
		s.writeError(w, http.StatusNotFound, "Resource not found")
		return
	}
	sort.Strings(allow)
	w.Header().Set("Allow", strings.Join(allow, ","))
	s.writeError(w, http.StatusMethodNotAllowed, "Invalid method")
}

// matchRoute matches path segments against a pattern; like res_ari, a fixed
// segment is preferred by the order of the routes table (fixed ones first).
func matchRoute(pattern, segs []string) (map[string]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	vars := map[string]string{}
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			vars[p[1:len(p)-1]] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	// A variable segment must not shadow a fixed route of the same shape.
	for _, rt := range routes {
		if len(rt.pattern) == len(segs) && isFixedMatch(rt.pattern, segs) && !equalPattern(rt.pattern, pattern) {
			return nil, false
		}
	}
	return vars, true
}

func isFixedMatch(pattern, segs []string) bool {
	hasVar := false
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") {
			hasVar = true
			continue
		}
		if p != segs[i] {
			return false
		}
	}
	return !hasVar
}

func equalPattern(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// authorized checks Basic auth first and ?api_key=user:password only when
// no Authorization header is present, as res_ari's authenticate_user does.
func (s *Server) authorized(r *http.Request, p params) bool {
	s.mu.Lock()
	user, pass := s.user, s.pass
	s.mu.Unlock()
	ok := func(u, pw string) bool {
		return subtle.ConstantTimeCompare([]byte(u), []byte(user)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pw), []byte(pass)) == 1
	}
	if r.Header.Get("Authorization") != "" {
		u, pw, hasBasic := r.BasicAuth()
		return hasBasic && ok(u, pw)
	}
	if key := p.get("api_key"); key != "" {
		u, pw, found := strings.Cut(key, ":")
		return found && ok(u, pw)
	}
	return false
}

// readParams merges the query string, a form body and a JSON object body.
// JSON strings are taken as they are, arrays of strings are joined with
// commas (ARI's allowMultiple form), other values keep their JSON text.
func readParams(r *http.Request) (params, error) {
	p := params{}
	for k, v := range r.URL.Query() {
		p[k] = append(p[k], v...)
	}
	if r.Body == nil || r.Method == http.MethodGet {
		return p, nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return p, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxBody {
		return p, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	if len(bytes.TrimSpace(body)) == 0 {
		return p, nil
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return p, fmt.Errorf("parse form body: %w", err)
		}
		for k, v := range form {
			p[k] = append(p[k], v...)
		}
	case "application/json", "":
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return p, fmt.Errorf("parse JSON body: %w", err)
		}
		for k, raw := range obj {
			var str string
			var strs []string
			switch {
			case json.Unmarshal(raw, &str) == nil:
				p[k] = append(p[k], str)
			case json.Unmarshal(raw, &strs) == nil:
				p[k] = append(p[k], strings.Join(strs, ","))
			default:
				p[k] = append(p[k], string(raw))
			}
		}
	}
	return p, nil
}

// modelWriter validates JSON bodies of successful responses against the
// route's response model.
type modelWriter struct {
	http.ResponseWriter
	srv   *Server
	model string
	what  string
}

// Hijack lets the events websocket take over the connection.
func (mw *modelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := mw.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("ARI emulator: connection cannot be hijacked for a websocket")
	}
	return h.Hijack()
}

func (s *Server) writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		s.writeError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if mw, ok := w.(*modelWriter); ok && status/100 == 2 {
		s.checkOutput(mw.model, mw.what, body)
	}
	w.Header().Set("Content-Type", "application/json")
	// A known length makes the answer complete on the wire once flushed:
	// the restart control closes every connection right after answering.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeError writes ARI's error body {"message": "..."}.
func (s *Server) writeError(w http.ResponseWriter, status int, msg string) {
	body := mustJSON(map[string]string{"message": msg})
	w.Header().Set("Content-Type", "application/json")
	// A known length makes the answer complete on the wire once flushed:
	// the restart control closes every connection right after answering.
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func writeNoContent(w http.ResponseWriter) { w.WriteHeader(http.StatusNoContent) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("ari emulator: marshal %T: %v", v, err))
	}
	return b
}

func (s *Server) getInfo(w http.ResponseWriter, _ *http.Request, _ map[string]string, p params) {
	show := map[string]bool{"build": true, "system": true, "config": true, "status": true}
	if only := splitList(p.get("only")); len(only) > 0 {
		show = map[string]bool{}
		for _, o := range only {
			show[o] = true
		}
	}
	s.mu.Lock()
	startup, reload := s.startup, s.reload
	s.mu.Unlock()
	o := s.opts
	info := map[string]any{}
	if show["build"] {
		info["build"] = map[string]any{"os": o.Build.OS, "kernel": o.Build.Kernel, "options": o.Build.Options,
			"machine": o.Build.Machine, "date": o.Build.Date, "user": o.Build.User}
	}
	if show["system"] {
		info["system"] = map[string]any{"version": o.Version, "entity_id": o.EntityID}
	}
	if show["config"] {
		cfg := map[string]any{"name": o.SystemName, "default_language": o.DefaultLanguage,
			"setid": map[string]any{"user": "asterisk", "group": "asterisk"}}
		if o.MaxChannels > 0 {
			cfg["max_channels"] = o.MaxChannels
		}
		info["config"] = cfg
	}
	if show["status"] {
		info["status"] = map[string]any{"startup_time": timestamp(startup), "last_reload_time": timestamp(reload)}
	}
	s.writeJSON(w, http.StatusOK, info)
}

func (s *Server) getPing(w http.ResponseWriter, _ *http.Request, _ map[string]string, _ params) {
	s.writeJSON(w, http.StatusOK, map[string]any{"asterisk_id": s.opts.EntityID, "ping": "pong", "timestamp": timestamp(time.Now())})
}

func (s *Server) getVariable(w http.ResponseWriter, _ *http.Request, _ map[string]string, p params) {
	name := p.get("variable")
	if name == "" {
		s.writeError(w, http.StatusBadRequest, "Variable name is required")
		return
	}
	s.mu.Lock()
	v := s.globals[name]
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, map[string]any{"value": v})
}

func (s *Server) setVariable(w http.ResponseWriter, _ *http.Request, _ map[string]string, p params) {
	name := p.get("variable")
	if name == "" {
		s.writeError(w, http.StatusBadRequest, "Variable name is required")
		return
	}
	s.mu.Lock()
	s.globals[name] = p.get("value")
	s.mu.Unlock()
	writeNoContent(w)
}

func (s *Server) listEndpoints(w http.ResponseWriter, _ *http.Request, _ map[string]string, _ params) {
	s.mu.Lock()
	out := []map[string]any{}
	for _, e := range s.sortedEndpointsLocked() {
		out = append(out, s.endpointJSON(e))
	}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) techExistsLocked(tech string) bool {
	for _, t := range s.opts.Technologies {
		if strings.EqualFold(t, tech) {
			return true
		}
	}
	for _, e := range s.endpoints {
		if strings.EqualFold(e.tech, tech) {
			return true
		}
	}
	return false
}

func (s *Server) listEndpointsByTech(w http.ResponseWriter, _ *http.Request, vars map[string]string, _ params) {
	tech := vars["tech"]
	s.mu.Lock()
	if !s.techExistsLocked(tech) {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "No Endpoints found - invalid tech "+tech)
		return
	}
	out := []map[string]any{}
	for _, e := range s.sortedEndpointsLocked() {
		if strings.EqualFold(e.tech, tech) {
			out = append(out, s.endpointJSON(e))
		}
	}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, out)
}

// writeFound answers with what build returns under s.mu, or 404 with
// notFound when build finds nothing (returns nil).
func (s *Server) writeFound(w http.ResponseWriter, notFound string, build func() map[string]any) {
	s.mu.Lock()
	out := build()
	s.mu.Unlock()
	if out == nil {
		s.writeError(w, http.StatusNotFound, notFound)
		return
	}
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getEndpoint(w http.ResponseWriter, _ *http.Request, vars map[string]string, _ params) {
	s.writeFound(w, "Endpoint not found", func() map[string]any {
		if e := s.endpoints[vars["tech"]+"/"+vars["resource"]]; e != nil {
			return s.endpointJSON(e)
		}
		return nil
	})
}

func (s *Server) listChannels(w http.ResponseWriter, _ *http.Request, _ map[string]string, _ params) {
	s.mu.Lock()
	out := []map[string]any{}
	for _, c := range s.sortedChannelsLocked() {
		out = append(out, s.channelJSON(c))
	}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getChannel(w http.ResponseWriter, _ *http.Request, vars map[string]string, _ params) {
	s.writeFound(w, "Channel not found", func() map[string]any {
		if c := s.channels[vars["channelId"]]; c != nil {
			return s.channelJSON(c)
		}
		return nil
	})
}

func (s *Server) hangupChannel(w http.ResponseWriter, _ *http.Request, vars map[string]string, p params) {
	cause := 16
	if code := p.get("reason_code"); code != "" {
		if _, err := fmt.Sscanf(code, "%d", &cause); err != nil {
			s.writeError(w, http.StatusBadRequest, "Invalid reason_code for hangup")
			return
		}
	} else if reason := p.get("reason"); reason != "" {
		c, ok := hangupReasons[reason]
		if !ok {
			s.writeError(w, http.StatusBadRequest, "Invalid reason for hangup provided")
			return
		}
		cause = c
	}
	s.mu.Lock()
	if s.channels[vars["channelId"]] == nil {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "Channel not found")
		return
	}
	s.hangupLocked(vars["channelId"], cause)
	s.mu.Unlock()
	writeNoContent(w)
}

// The emulator models no bridges or device states; the lists are empty as
// on an idle Asterisk.
func (s *Server) listBridges(w http.ResponseWriter, _ *http.Request, _ map[string]string, _ params) {
	s.writeJSON(w, http.StatusOK, []any{})
}

func (s *Server) listDeviceStates(w http.ResponseWriter, _ *http.Request, _ map[string]string, _ params) {
	s.writeJSON(w, http.StatusOK, []any{})
}

func (s *Server) listApplications(w http.ResponseWriter, _ *http.Request, _ map[string]string, _ params) {
	s.mu.Lock()
	out := []map[string]any{}
	for _, a := range s.sortedAppsLocked() {
		out = append(out, s.appJSON(a))
	}
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) getApplication(w http.ResponseWriter, _ *http.Request, vars map[string]string, _ params) {
	s.writeFound(w, "Application not found", func() map[string]any {
		if a := s.apps[vars["applicationName"]]; a != nil {
			return s.appJSON(a)
		}
		return nil
	})
}

// eventSource is one parsed eventSource URI (channel:, endpoint:, bridge:,
// deviceState:).
type eventSource struct{ scheme, id string }

func parseSources(v string) ([]eventSource, bool) {
	var out []eventSource
	for _, item := range splitList(v) {
		scheme, id, ok := strings.Cut(item, ":")
		if !ok {
			return nil, false
		}
		switch scheme {
		case "channel", "endpoint", "bridge", "deviceState":
		default:
			return nil, false
		}
		out = append(out, eventSource{scheme, id})
	}
	return out, true
}

func (s *Server) subscribe(w http.ResponseWriter, _ *http.Request, vars map[string]string, p params) {
	s.changeSubscription(w, vars["applicationName"], p, true)
}

func (s *Server) unsubscribe(w http.ResponseWriter, _ *http.Request, vars map[string]string, p params) {
	s.changeSubscription(w, vars["applicationName"], p, false)
}

func (s *Server) changeSubscription(w http.ResponseWriter, name string, p params, add bool) {
	raw := strings.Join(p["eventSource"], ",")
	if len(splitList(raw)) == 0 {
		s.writeError(w, http.StatusBadRequest, "Missing parameter eventSource")
		return
	}
	s.mu.Lock()
	a := s.apps[name]
	if a == nil {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "Application not found")
		return
	}
	sources, ok := parseSources(raw)
	if !ok {
		s.mu.Unlock()
		s.writeError(w, http.StatusBadRequest, "Invalid event source URI scheme")
		return
	}
	setOf := func(src eventSource) map[string]bool {
		switch src.scheme {
		case "channel":
			return a.channels
		case "endpoint":
			return a.endpoints
		case "bridge":
			return a.bridges
		}
		return a.devices
	}
	// Check every source before changing anything, as Asterisk does.
	for _, src := range sources {
		if add && !s.sourceExistsLocked(src) {
			s.mu.Unlock()
			s.writeError(w, http.StatusUnprocessableEntity, "Event source does not exist")
			return
		}
		if !add && !setOf(src)[src.id] {
			s.mu.Unlock()
			s.writeError(w, http.StatusUnprocessableEntity, "Event source was not subscribed to")
			return
		}
	}
	for _, src := range sources {
		if add {
			setOf(src)[src.id] = true
		} else {
			delete(setOf(src), src.id)
		}
	}
	out := s.appJSON(a)
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, out)
}

func (s *Server) sourceExistsLocked(src eventSource) bool {
	switch src.scheme {
	case "channel":
		return s.channels[src.id] != nil
	case "endpoint":
		if !strings.Contains(src.id, "/") {
			return s.techExistsLocked(src.id)
		}
		return s.endpoints[src.id] != nil
	case "deviceState":
		return src.id != ""
	}
	return false // no bridges in the emulator
}

// setEventFilter implements PUT /applications/{name}/eventFilter like
// stasis_app_event_filter_set: {} clears both lists, a present "allowed" or
// "disallowed" array replaces that list, a missing one is kept.
func (s *Server) setEventFilter(w http.ResponseWriter, r *http.Request, vars map[string]string, _ params) {
	var filter map[string]json.RawMessage
	body, _ := io.ReadAll(r.Body)
	if len(bytes.TrimSpace(body)) > 0 {
		if err := json.Unmarshal(body, &filter); err != nil {
			s.writeError(w, http.StatusBadRequest, "Invalid format definition")
			return
		}
	}
	parse := func(key string) ([]any, bool, bool) {
		raw, present := filter[key]
		if !present {
			return nil, false, true
		}
		var list []any
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, true, false
		}
		for _, item := range list {
			if _, ok := item.(map[string]any); !ok {
				return nil, true, false
			}
		}
		if list == nil {
			list = []any{}
		}
		return list, true, true
	}
	allowed, hasAllowed, ok1 := parse("allowed")
	disallowed, hasDisallowed, ok2 := parse("disallowed")
	if !ok1 || !ok2 {
		s.writeError(w, http.StatusBadRequest, "Invalid format definition")
		return
	}
	s.mu.Lock()
	a := s.apps[vars["applicationName"]]
	if a == nil {
		s.mu.Unlock()
		s.writeError(w, http.StatusNotFound, "Application not found")
		return
	}
	if len(filter) == 0 {
		a.allowed, a.disallowed = []any{}, []any{}
	}
	if hasAllowed {
		a.allowed = allowed
	}
	if hasDisallowed {
		a.disallowed = disallowed
	}
	out := s.appJSON(a)
	s.mu.Unlock()
	s.writeJSON(w, http.StatusOK, out)
}
