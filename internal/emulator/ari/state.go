package ari

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Endpoint states and channel states ARI reports (the allowableValues of the
// Endpoint and Channel models).
var (
	endpointStates = []string{"unknown", "offline", "online"}
	channelStates  = []string{"Down", "Rsrved", "OffHook", "Dialing", "Ring", "Ringing", "Up", "Busy", "Dialing Offhook", "Pre-ring", "Unknown"}
)

type endpoint struct {
	tech, resource, state string
}

func (e *endpoint) key() string { return e.tech + "/" + e.resource }

type channel struct {
	id, name, state                string
	endpoint                       string // tech/resource or ""
	callerName, callerNumber       string
	connectedName, connectedNumber string
	rdnis                          string
	context, exten                 string
	priority                       int
	appName, appData               string
	language, accountcode          string
	created                        time.Time
}

// app is a Stasis application registered by an events websocket.
type app struct {
	name         string
	session      *session // nil once its websocket is gone
	subscribeAll bool
	channels     map[string]bool
	endpoints    map[string]bool // tech/resource, or tech alone for all of a technology
	bridges      map[string]bool
	devices      map[string]bool
	allowed      []any // events_allowed filter objects
	disallowed   []any
}

func newApp(name string) *app {
	return &app{name: name, channels: map[string]bool{}, endpoints: map[string]bool{},
		bridges: map[string]bool{}, devices: map[string]bool{}, allowed: []any{}, disallowed: []any{}}
}

// ChannelSpec describes a channel a test adds. Only Endpoint is required.
type ChannelSpec struct {
	// ID is the unique id; default "<unix time>.<sequence>" like Asterisk.
	ID string
	// Name defaults to "<Endpoint>-<8 hex digits>", e.g. PJSIP/100-00000001.
	Name string
	// Endpoint is "tech/resource" of an existing endpoint.
	Endpoint string
	// State defaults to "Ring".
	State                          string
	CallerName, CallerNumber       string
	ConnectedName, ConnectedNumber string
	// RDNIS is reported as caller_rdnis on versions that have it.
	RDNIS string
	// Context, Exten and Priority default to default, s and 1.
	Context, Exten string
	Priority       int
	// Language defaults to the server's default language.
	Language string
}

func checkState(kind, state string, allowed []string) error {
	for _, s := range allowed {
		if s == state {
			return nil
		}
	}
	return fmt.Errorf("%s state %q is not one of %s", kind, state, strings.Join(allowed, ", "))
}

func splitEndpoint(key string) (tech, resource string, err error) {
	tech, resource, ok := strings.Cut(key, "/")
	if !ok || tech == "" || resource == "" {
		return "", "", fmt.Errorf("endpoint %q is not tech/resource (e.g. PJSIP/100)", key)
	}
	return tech, resource, nil
}

// AddEndpoint adds tech/resource in the given state (unknown, offline or
// online) and emits EndpointStateChange.
func (s *Server) AddEndpoint(tech, resource, state string) error {
	if tech == "" || resource == "" || strings.Contains(tech, "/") {
		return fmt.Errorf("endpoint needs a technology and a resource, got %q/%q", tech, resource)
	}
	if err := checkState("endpoint", state, endpointStates); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := &endpoint{tech: tech, resource: resource, state: state}
	if _, dup := s.endpoints[e.key()]; dup {
		return fmt.Errorf("endpoint %s already exists", e.key())
	}
	s.endpoints[e.key()] = e
	s.emitEndpointLocked(e)
	return nil
}

// SetEndpointState changes an endpoint's state and emits EndpointStateChange.
func (s *Server) SetEndpointState(tech, resource, state string) error {
	if err := checkState("endpoint", state, endpointStates); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.endpoints[tech+"/"+resource]
	if e == nil {
		return fmt.Errorf("no endpoint %s/%s", tech, resource)
	}
	e.state = state
	s.emitEndpointLocked(e)
	return nil
}

// RemoveEndpoint removes an endpoint (as a PJSIP reload that deletes it
// would). Its last snapshot is published as offline, so applications see an
// EndpointStateChange with state "offline" before it disappears from
// GET /endpoints. Channels still on it are hung up first.
func (s *Server) RemoveEndpoint(tech, resource string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := tech + "/" + resource
	e := s.endpoints[key]
	if e == nil {
		return fmt.Errorf("no endpoint %s", key)
	}
	for _, id := range s.channelIDsLocked(key) {
		s.hangupLocked(id, 16)
	}
	e.state = "offline"
	s.emitEndpointLocked(e)
	delete(s.endpoints, key)
	return nil
}

// AddChannel creates a channel on an existing endpoint, emits ChannelCreated
// and returns the channel id.
func (s *Server) AddChannel(spec ChannelSpec) (string, error) {
	if _, _, err := splitEndpoint(spec.Endpoint); err != nil {
		return "", err
	}
	if spec.State == "" {
		spec.State = "Ring"
	}
	if err := checkState("channel", spec.State, channelStates); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.endpoints[spec.Endpoint] == nil {
		return "", fmt.Errorf("no endpoint %s: add it first", spec.Endpoint)
	}
	s.chanSeq++
	now := time.Now()
	c := &channel{
		id: spec.ID, name: spec.Name, state: spec.State, endpoint: spec.Endpoint,
		callerName: spec.CallerName, callerNumber: spec.CallerNumber,
		connectedName: spec.ConnectedName, connectedNumber: spec.ConnectedNumber,
		rdnis: spec.RDNIS, context: spec.Context, exten: spec.Exten, priority: spec.Priority,
		language: spec.Language, created: now,
	}
	if c.id == "" {
		c.id = fmt.Sprintf("%d.%d", now.Unix(), s.chanSeq)
	}
	if _, dup := s.channels[c.id]; dup {
		return "", fmt.Errorf("channel %s already exists", c.id)
	}
	if c.name == "" {
		c.name = fmt.Sprintf("%s-%08x", spec.Endpoint, s.chanSeq)
	}
	if c.context == "" {
		c.context = "default"
	}
	if c.exten == "" {
		c.exten = "s"
	}
	if c.priority == 0 {
		c.priority = 1
	}
	if c.language == "" {
		c.language = s.opts.DefaultLanguage
	}
	s.channels[c.id] = c
	s.emitChannelLocked("ChannelCreated", c, nil)
	return c.id, nil
}

// SetChannelState changes a channel's state and emits ChannelStateChange.
func (s *Server) SetChannelState(id, state string) error {
	if err := checkState("channel", state, channelStates); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[id]
	if c == nil {
		return fmt.Errorf("no channel %s", id)
	}
	c.state = state
	s.emitChannelLocked("ChannelStateChange", c, nil)
	return nil
}

// Hangup removes a channel with a Q.850 cause (16 = Normal Clearing when 0)
// and emits ChannelDestroyed.
func (s *Server) Hangup(id string, cause int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.channels[id] == nil {
		return fmt.Errorf("no channel %s", id)
	}
	if cause == 0 {
		cause = 16
	}
	s.hangupLocked(id, cause)
	return nil
}

func (s *Server) hangupLocked(id string, cause int) {
	c := s.channels[id]
	delete(s.channels, id)
	for _, a := range s.apps {
		// Asterisk drops a subscription when its channel goes away, after
		// the final event has been sent.
		defer delete(a.channels, id)
	}
	s.emitChannelLocked("ChannelDestroyed", c, map[string]any{"cause": cause, "cause_txt": causeText(cause)})
}

// causeText is the subset of Asterisk's ast_cause2str that hangups use.
func causeText(cause int) string {
	switch cause {
	case 1:
		return "Unallocated (unassigned) number"
	case 16:
		return "Normal Clearing"
	case 17:
		return "User busy"
	case 18:
		return "No user responding"
	case 19:
		return "User alerting, no answer"
	case 21:
		return "Call Rejected"
	case 34:
		return "Circuit/channel congestion"
	case 38:
		return "Network out of order"
	case 127:
		return "Interworking, unspecified"
	}
	return "Unknown"
}

// hangupReasons maps DELETE /channels/{id}?reason= to causes, as in
// resource_channels.c.
var hangupReasons = map[string]int{
	"normal": 16, "busy": 17, "congestion": 34, "no_answer": 19, "timeout": 18,
	"rejected": 21, "unallocated": 1, "normal_unspecified": 31, "number_incomplete": 28,
	"codec_mismatch": 58, "interworking": 127, "failure": 38, "answered_elsewhere": 26,
}

// SendEvent sends an event of any type (known to ARI or not, e.g.
// ChannelTransfer or ChannelToneDetected from newer Asterisk versions) to
// every connected application, subject to their event filters. type,
// timestamp, asterisk_id and application are filled in; fields may add
// anything else. A string value under a key ending in "channel" ("channel",
// "source_channel", ... at any depth) is taken as a channel id and replaced
// by that channel's full JSON, so
//
//	SendEvent("ChannelTransfer", map[string]any{
//		"refer_to":    map[string]any{"requested_destination": map[string]any{"destination": "200"}},
//		"referred_by": map[string]any{"source_channel": id}})
//
// produces an event that matches the ChannelTransfer model.
func (s *Server) SendEvent(typ string, fields map[string]any) error {
	if typ == "" {
		return errors.New("event type is empty")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := map[string]any{}
	for k, v := range fields {
		ev[k] = v
	}
	if err := s.expandChannelsLocked(ev); err != nil {
		return err
	}
	ev["type"] = typ
	if _, ok := ev["timestamp"]; !ok {
		ev["timestamp"] = timestamp(time.Now())
	}
	ev["asterisk_id"] = s.opts.EntityID
	s.emitLocked(ev, target{all: true})
	return nil
}

// expandChannelsLocked replaces channel ids by channel objects in place.
func (s *Server) expandChannelsLocked(obj map[string]any) error {
	for k, v := range obj {
		switch x := v.(type) {
		case string:
			if strings.HasSuffix(k, "channel") {
				c := s.channels[x]
				if c == nil {
					return fmt.Errorf("no channel %s (field %s)", x, k)
				}
				obj[k] = s.channelJSON(c)
			}
		case map[string]any:
			cp := map[string]any{}
			for kk, vv := range x {
				cp[kk] = vv
			}
			if err := s.expandChannelsLocked(cp); err != nil {
				return err
			}
			obj[k] = cp
		}
	}
	return nil
}

// SendRawEvent writes raw (a JSON object) verbatim to every events
// websocket whose applications' filters let its "type" through.
func (s *Server) SendRawEvent(raw []byte) error {
	var obj map[string]any
	if err := json.Unmarshal(raw, &obj); err != nil {
		return fmt.Errorf("raw event is not a JSON object: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sent := map[*session]bool{}
	for _, a := range s.sortedAppsLocked() {
		if a.session == nil || sent[a.session] || !a.allows(obj) {
			continue
		}
		sent[a.session] = true
		a.session.send(append([]byte(nil), raw...))
	}
	return nil
}

// target says which applications an event concerns.
type target struct {
	all      bool   // every application (events sent by a test)
	channel  string // channel id
	endpoint string // tech/resource
}

func (a *app) interested(t target) bool {
	if a.subscribeAll || t.all {
		return true
	}
	if t.channel != "" && a.channels[t.channel] {
		return true
	}
	if t.endpoint != "" {
		tech, _, _ := strings.Cut(t.endpoint, "/")
		if a.endpoints[t.endpoint] || a.endpoints[tech] {
			return true
		}
	}
	return false
}

// allows applies the application's event filter the way Asterisk's
// stasis_app_event_allowed does: an event is dropped when a disallowed
// entry has its type, or when an allowed list exists without its type.
func (a *app) allows(ev map[string]any) bool {
	typ, _ := ev["type"].(string)
	match := func(list []any) bool {
		for _, f := range list {
			if obj, ok := f.(map[string]any); ok {
				if t, _ := obj["type"].(string); t == typ {
					return true
				}
			}
		}
		return false
	}
	if len(a.disallowed) > 0 && match(a.disallowed) {
		return false
	}
	if len(a.allowed) > 0 && !match(a.allowed) {
		return false
	}
	return true
}

func (s *Server) sortedAppsLocked() []*app {
	out := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// emitLocked sends ev to each interested application with "application"
// set to its name.
func (s *Server) emitLocked(ev map[string]any, t target) {
	for _, a := range s.sortedAppsLocked() {
		if a.session == nil || !a.interested(t) || !a.allows(ev) {
			continue
		}
		ev["application"] = a.name
		body, err := json.Marshal(ev)
		if err != nil {
			s.log.Error("ARI emulator cannot encode event", "type", ev["type"], "error", err)
			continue
		}
		s.checkOutputLocked("Message", "event "+fmt.Sprint(ev["type"]), body)
		a.session.send(body)
	}
	delete(ev, "application")
}

// checkOutputLocked is checkOutput for callers holding s.mu.
func (s *Server) checkOutputLocked(typ, what string, body []byte) {
	if s.opts.Models == nil {
		return
	}
	var err error
	if typ == "Message" {
		err = s.opts.Models.ValidateMessage(body)
	} else {
		err = s.opts.Models.ValidateModel(typ, body)
	}
	if err != nil {
		s.violations = append(s.violations, fmt.Sprintf("%s: %v: %v", what, errViolation, err))
	}
}

func (s *Server) baseEvent(typ string) map[string]any {
	return map[string]any{"type": typ, "timestamp": timestamp(time.Now()), "asterisk_id": s.opts.EntityID}
}

func (s *Server) emitEndpointLocked(e *endpoint) {
	ev := s.baseEvent("EndpointStateChange")
	ev["endpoint"] = s.endpointJSON(e)
	s.emitLocked(ev, target{endpoint: e.key()})
}

func (s *Server) emitChannelLocked(typ string, c *channel, extra map[string]any) {
	ev := s.baseEvent(typ)
	ev["channel"] = s.channelJSON(c)
	for k, v := range extra {
		ev[k] = v
	}
	s.emitLocked(ev, target{channel: c.id, endpoint: c.endpoint})
}

func (s *Server) channelIDsLocked(endpointKey string) []string {
	ids := []string{}
	for id, c := range s.channels {
		if c.endpoint == endpointKey {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

func (s *Server) endpointJSON(e *endpoint) map[string]any {
	return map[string]any{
		"technology":  e.tech,
		"resource":    e.resource,
		"state":       e.state,
		"channel_ids": s.channelIDsLocked(e.key()),
	}
}

func (s *Server) channelJSON(c *channel) map[string]any {
	out := map[string]any{
		"id":          c.id,
		"protocol_id": "",
		"name":        c.name,
		"state":       c.state,
		"caller":      map[string]any{"name": c.callerName, "number": c.callerNumber},
		"connected":   map[string]any{"name": c.connectedName, "number": c.connectedNumber},
		"accountcode": c.accountcode,
		"dialplan": map[string]any{
			"context": c.context, "exten": c.exten, "priority": c.priority,
			"app_name": c.appName, "app_data": c.appData,
		},
		"creationtime": timestamp(c.created),
		"language":     c.language,
	}
	if s.hasCallerRDNIS() {
		out["caller_rdnis"] = c.rdnis
	}
	return out
}

func (s *Server) appJSON(a *app) map[string]any {
	keys := func(m map[string]bool) []string {
		out := []string{}
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	return map[string]any{
		"name":              a.name,
		"channel_ids":       keys(a.channels),
		"bridge_ids":        keys(a.bridges),
		"endpoint_ids":      keys(a.endpoints),
		"device_names":      keys(a.devices),
		"events_allowed":    a.allowed,
		"events_disallowed": a.disallowed,
	}
}

func (s *Server) sortedEndpointsLocked() []*endpoint {
	out := make([]*endpoint, 0, len(s.endpoints))
	for _, e := range s.endpoints {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func (s *Server) sortedChannelsLocked() []*channel {
	out := make([]*channel, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].created.Equal(out[j].created) {
			return out[i].created.Before(out[j].created)
		}
		return out[i].id < out[j].id
	})
	return out
}

// Snapshot is what the emulator holds, for tests and GET /_emulator/state.
type Snapshot struct {
	Version      string            `json:"version"`
	StartupTime  string            `json:"startup_time"`
	Endpoints    []map[string]any  `json:"endpoints"`
	Channels     []map[string]any  `json:"channels"`
	Applications []map[string]any  `json:"applications"`
	Connected    map[string]bool   `json:"connected"`
	Globals      map[string]string `json:"globals"`
	Stalled      bool              `json:"stalled"`
	Requests     int64             `json:"requests"`
}

// State returns a copy of the emulator's state.
func (s *Server) State() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{Version: s.opts.Version, StartupTime: timestamp(s.startup), Connected: map[string]bool{},
		Globals: map[string]string{}, Stalled: s.stallCh != nil, Requests: s.requests,
		Endpoints: []map[string]any{}, Channels: []map[string]any{}, Applications: []map[string]any{}}
	for _, e := range s.sortedEndpointsLocked() {
		snap.Endpoints = append(snap.Endpoints, s.endpointJSON(e))
	}
	for _, c := range s.sortedChannelsLocked() {
		snap.Channels = append(snap.Channels, s.channelJSON(c))
	}
	for _, a := range s.sortedAppsLocked() {
		snap.Applications = append(snap.Applications, s.appJSON(a))
		snap.Connected[a.name] = a.session != nil
	}
	for k, v := range s.globals {
		snap.Globals[k] = v
	}
	return snap
}
