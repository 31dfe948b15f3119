package ari

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ControlPrefix is the path under which the test controls are served over
// HTTP (no authentication: the emulator only listens on loopback unless told
// otherwise). Routes:
//
//	GET    /_emulator/state                        what the emulator holds
//	POST   /_emulator/endpoints                    {"technology","resource","state"}
//	PUT    /_emulator/endpoints/{tech}/{resource}  {"state"}
//	DELETE /_emulator/endpoints/{tech}/{resource}
//	POST   /_emulator/channels                     {"endpoint","state","id","name","caller_name","caller_number",...}
//	PUT    /_emulator/channels/{id}                {"state"}
//	DELETE /_emulator/channels/{id}[?cause=16]
//	POST   /_emulator/events[?raw=true]            {"type":"ChannelTransfer",...}
//	POST   /_emulator/websockets/drop
//	POST   /_emulator/stall?for=30s
//	POST   /_emulator/resume
//	POST   /_emulator/restart[?down=1s]
//	PUT    /_emulator/credentials                  {"user","password"}
const ControlPrefix = "/_emulator/"

type channelSpecJSON struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Endpoint        string `json:"endpoint"`
	State           string `json:"state"`
	CallerName      string `json:"caller_name"`
	CallerNumber    string `json:"caller_number"`
	ConnectedName   string `json:"connected_name"`
	ConnectedNumber string `json:"connected_number"`
	RDNIS           string `json:"caller_rdnis"`
	Context         string `json:"context"`
	Exten           string `json:"exten"`
	Priority        int    `json:"priority"`
	Language        string `json:"language"`
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/_emulator"), "/"), "/")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		s.writeError(w, http.StatusBadRequest, "read body: "+err.Error())
		return
	}
	decode := func(v any) bool {
		if len(body) == 0 {
			return true
		}
		if err := json.Unmarshal(body, v); err != nil {
			s.writeError(w, http.StatusBadRequest, "body is not the expected JSON object: "+err.Error())
			return false
		}
		return true
	}
	fail := func(err error) {
		status := http.StatusBadRequest
		if strings.HasPrefix(err.Error(), "no ") {
			status = http.StatusNotFound
		}
		s.writeError(w, status, err.Error())
	}
	ok := func(v any) { s.writeJSON(w, http.StatusOK, v) }
	route := r.Method + " " + segs[0]
	switch {
	case route == "GET state" && len(segs) == 1:
		ok(s.State())
	case route == "POST endpoints" && len(segs) == 1:
		var req struct{ Technology, Resource, State string }
		if !decode(&req) {
			return
		}
		if req.State == "" {
			req.State = "online"
		}
		if err := s.AddEndpoint(req.Technology, req.Resource, req.State); err != nil {
			fail(err)
			return
		}
		ok(map[string]string{"endpoint": req.Technology + "/" + req.Resource})
	case route == "PUT endpoints" && len(segs) == 3:
		var req struct{ State string }
		if !decode(&req) {
			return
		}
		if err := s.SetEndpointState(segs[1], segs[2], req.State); err != nil {
			fail(err)
			return
		}
		ok(map[string]string{"endpoint": segs[1] + "/" + segs[2], "state": req.State})
	case route == "DELETE endpoints" && len(segs) == 3:
		if err := s.RemoveEndpoint(segs[1], segs[2]); err != nil {
			fail(err)
			return
		}
		ok(map[string]string{"removed": segs[1] + "/" + segs[2]})
	case route == "POST channels" && len(segs) == 1:
		var req channelSpecJSON
		if !decode(&req) {
			return
		}
		id, err := s.AddChannel(ChannelSpec(req))
		if err != nil {
			fail(err)
			return
		}
		ok(map[string]string{"id": id})
	case route == "PUT channels" && len(segs) == 2:
		var req struct{ State string }
		if !decode(&req) {
			return
		}
		if err := s.SetChannelState(segs[1], req.State); err != nil {
			fail(err)
			return
		}
		ok(map[string]string{"id": segs[1], "state": req.State})
	case route == "DELETE channels" && len(segs) == 2:
		cause := 0
		if c := r.URL.Query().Get("cause"); c != "" {
			if cause, err = strconv.Atoi(c); err != nil {
				s.writeError(w, http.StatusBadRequest, "cause must be a Q.850 cause number, e.g. 16")
				return
			}
		}
		if err := s.Hangup(segs[1], cause); err != nil {
			fail(err)
			return
		}
		ok(map[string]string{"hungup": segs[1]})
	case route == "POST events" && len(segs) == 1:
		if r.URL.Query().Get("raw") == "true" {
			if err := s.SendRawEvent(body); err != nil {
				fail(err)
				return
			}
			ok(map[string]bool{"sent": true})
			return
		}
		var fields map[string]any
		if !decode(&fields) {
			return
		}
		typ, _ := fields["type"].(string)
		delete(fields, "type")
		if err := s.SendEvent(typ, fields); err != nil {
			fail(fmt.Errorf("send event: %w (give a JSON object with a \"type\")", err))
			return
		}
		ok(map[string]bool{"sent": true})
	case route == "POST websockets" && len(segs) == 2 && segs[1] == "drop":
		ok(map[string]int{"dropped": s.DropWebsockets()})
	case route == "POST stall" && len(segs) == 1:
		d, err := time.ParseDuration(r.URL.Query().Get("for"))
		if err != nil || d <= 0 {
			s.writeError(w, http.StatusBadRequest, "stall needs ?for=DURATION, e.g. ?for=30s")
			return
		}
		// Answer this request first: it came in through the server being stalled.
		ok(map[string]string{"stalled_for": d.String()})
		s.Stall(d)
	case route == "POST resume" && len(segs) == 1:
		s.Resume()
		ok(map[string]bool{"resumed": true})
	case route == "POST restart" && len(segs) == 1:
		down := time.Duration(0)
		if v := r.URL.Query().Get("down"); v != "" {
			if down, err = time.ParseDuration(v); err != nil || down < 0 {
				s.writeError(w, http.StatusBadRequest, "down must be a duration, e.g. ?down=2s")
				return
			}
		}
		s.writeJSON(w, http.StatusAccepted, map[string]string{"restarting": "down for " + down.String()})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		go func() {
			if err := s.Restart(down); err != nil {
				s.log.Error("ARI emulator restart failed", "error", err)
			}
		}()
	case route == "PUT credentials" && len(segs) == 1:
		var req struct{ User, Password string }
		if !decode(&req) {
			return
		}
		if req.User == "" || req.Password == "" {
			s.writeError(w, http.StatusBadRequest, "credentials need a non-empty user and password")
			return
		}
		s.SetCredentials(req.User, req.Password)
		ok(map[string]string{"user": req.User})
	default:
		s.writeError(w, http.StatusNotFound, "unknown emulator control "+r.Method+" "+r.URL.Path+" (see GET /_emulator/state and the ari package docs)")
	}
}
