package ari

import (
	"encoding/json"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestValidatorCatchesMistakes(t *testing.T) {
	m := testModels(t)
	good := `{"technology":"PJSIP","resource":"100","state":"online","channel_ids":[]}`
	if err := m.ValidateModel("Endpoint", []byte(good)); err != nil {
		t.Fatalf("valid endpoint rejected: %v", err)
	}
	bad := map[string]struct{ typ, doc, want string }{
		"missing required": {"Endpoint", `{"technology":"PJSIP","state":"online","channel_ids":[]}`, `required field "resource"`},
		"wrong type":       {"Endpoint", `{"technology":"PJSIP","resource":100,"channel_ids":[]}`, "want string"},
		"unknown field":    {"Endpoint", `{"technology":"PJSIP","resource":"1","channel_ids":[],"extra":1}`, `field "extra" is not part`},
		"bad allowable":    {"Endpoint", `{"technology":"PJSIP","resource":"1","state":"busy","channel_ids":[]}`, "is not one of"},
		"list element":     {"Endpoint", `{"technology":"PJSIP","resource":"1","channel_ids":[1]}`, "$.channel_ids[0]"},
		"not a list":       {"List[Endpoint]", good, "want a JSON array"},
		"bad date":         {"StatusInfo", `{"startup_time":"2024-05-01 10:00:00","last_reload_time":"2024-05-01T10:00:00.000+0000"}`, "not in Asterisk's format"},
		"int not float":    {"DialplanCEP", `{"context":"c","exten":"s","priority":1.5,"app_name":"","app_data":""}`, "want an integer"},
		"nested":           {"ChannelCreated", `{"type":"ChannelCreated","application":"a","timestamp":"2024-05-01T10:00:00.000+0000","channel":{"id":"1"}}`, "$.channel"},
		"event base field": {"Message", `{"type":"ChannelStateChange","timestamp":"2024-05-01T10:00:00.000+0000","channel":{}}`, `required field "application"`},
		"unknown type":     {"Message", `{"type":"NoSuchEvent"}`, "names no ARI model"},
		"boolean":          {"Variable", `{"value":true}`, "want string"},
		"not json":         {"Endpoint", `{`, "not JSON"},
		"trailing":         {"Variable", `{"value":"x"} {}`, "trailing data"},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			err := m.ValidateModel(c.typ, []byte(c.doc))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want error containing %q", err, c.want)
			}
		})
	}
	if err := m.ValidateMessage([]byte(`{"type":"MissingParams","params":["app"]}`)); err != nil {
		t.Fatalf("MissingParams rejected: %v", err)
	}
}

func TestEveryResponseValidates(t *testing.T) {
	for _, version := range []string{"18.20.0", "20.15.0", "22.5.0"} {
		t.Run(version, func(t *testing.T) {
			s := startServer(t, Options{Version: version, MaxChannels: 500, SystemName: "pbx1"})
			for _, res := range []string{"100", "101"} {
				if err := s.AddEndpoint("PJSIP", res, "online"); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.AddEndpoint("IAX2", "trunk", "offline"); err != nil {
				t.Fatal(err)
			}
			id, err := s.AddChannel(ChannelSpec{Endpoint: "PJSIP/100", CallerNumber: "100", RDNIS: "200"})
			if err != nil {
				t.Fatal(err)
			}
			ws := dialEvents(t, s, "app=check&subscribeAll=true")
			waitFor(t, "app registered", func() bool { return len(s.Applications()) == 1 })

			info := call(t, s, "GET", "/ari/asterisk/info", "")
			mustModel(t, info, "AsteriskInfo")
			var ai struct {
				System struct{ Version string }
				Config struct {
					MaxChannels int `json:"max_channels"`
				}
			}
			_ = json.Unmarshal(info.body, &ai)
			if ai.System.Version != version || ai.Config.MaxChannels != 500 {
				t.Fatalf("info %s", info.body)
			}
			mustModel(t, call(t, s, "GET", "/ari/asterisk/info?only=system,status", ""), "AsteriskInfo")
			mustModel(t, call(t, s, "GET", "/ari/asterisk/ping", ""), "AsteriskPing")
			if r := call(t, s, "POST", "/ari/asterisk/variable", `{"variable":"X","value":"1"}`); r.status != http.StatusNoContent {
				t.Fatalf("set variable: %d %s", r.status, r.body)
			}
			v := call(t, s, "GET", "/ari/asterisk/variable?variable=X", "")
			mustModel(t, v, "Variable")
			if !strings.Contains(string(v.body), `"1"`) {
				t.Fatalf("variable %s", v.body)
			}
			eps := call(t, s, "GET", "/ari/endpoints", "")
			mustModel(t, eps, "List[Endpoint]")
			var list []map[string]any
			_ = json.Unmarshal(eps.body, &list)
			if len(list) != 3 {
				t.Fatalf("endpoints %s", eps.body)
			}
			mustModel(t, call(t, s, "GET", "/ari/endpoints/PJSIP", ""), "List[Endpoint]")
			mustModel(t, call(t, s, "GET", "/ari/endpoints/Local", ""), "List[Endpoint]")
			ep := call(t, s, "GET", "/ari/endpoints/PJSIP/100", "")
			mustModel(t, ep, "Endpoint")
			if !strings.Contains(string(ep.body), id) {
				t.Fatalf("endpoint lacks its channel: %s", ep.body)
			}
			mustModel(t, call(t, s, "GET", "/ari/channels", ""), "List[Channel]")
			ch := call(t, s, "GET", "/ari/channels/"+id, "")
			mustModel(t, ch, "Channel")
			if got := strings.Contains(string(ch.body), "caller_rdnis"); got != (version != "18.20.0") {
				t.Fatalf("caller_rdnis presence wrong for %s: %s", version, ch.body)
			}
			mustModel(t, call(t, s, "GET", "/ari/bridges", ""), "List[Bridge]")
			mustModel(t, call(t, s, "GET", "/ari/deviceStates", ""), "List[DeviceState]")
			mustModel(t, call(t, s, "GET", "/ari/applications", ""), "List[Application]")
			mustModel(t, call(t, s, "GET", "/ari/applications/check", ""), "Application")
			mustModel(t, call(t, s, "POST", "/ari/applications/check/subscription?eventSource=endpoint:PJSIP/101,channel:"+id, ""), "Application")
			mustModel(t, call(t, s, "DELETE", "/ari/applications/check/subscription?eventSource=channel:"+id, ""), "Application")
			mustModel(t, call(t, s, "PUT", "/ari/applications/check/eventFilter", `{"disallowed":[{"type":"ChannelTransfer"}]}`), "Application")

			// Every kind of event the emulator emits.
			if err := s.SetEndpointState("PJSIP", "101", "offline"); err != nil {
				t.Fatal(err)
			}
			ws.expect("EndpointStateChange", "check")
			id2, err := s.AddChannel(ChannelSpec{Endpoint: "PJSIP/101", State: "Ringing"})
			if err != nil {
				t.Fatal(err)
			}
			ws.expect("ChannelCreated", "check")
			if err := s.SetChannelState(id2, "Up"); err != nil {
				t.Fatal(err)
			}
			ws.expect("ChannelStateChange", "check")
			if r := call(t, s, "DELETE", "/ari/channels/"+id2+"?reason=busy", ""); r.status != http.StatusNoContent {
				t.Fatalf("hangup %d %s", r.status, r.body)
			}
			ev := ws.expect("ChannelDestroyed", "check")
			if ev["cause"] != float64(17) || ev["cause_txt"] != "User busy" {
				t.Fatalf("destroyed %v", ev)
			}
			if err := s.SendEvent("ChannelToneDetected", map[string]any{"channel": id}); err != nil {
				t.Fatal(err)
			}
			ws.expect("ChannelToneDetected", "check")
			if err := s.RemoveEndpoint("PJSIP", "100"); err != nil {
				t.Fatal(err)
			}
			ws.expect("ChannelDestroyed", "check")
			ev = ws.expect("EndpointStateChange", "check")
			if ev["endpoint"].(map[string]any)["state"] != "offline" {
				t.Fatalf("removal event %v", ev)
			}
			wantError(t, call(t, s, "GET", "/ari/endpoints/PJSIP/100", ""), 404, "Endpoint not found")
		})
	}
}

func TestAuthentication(t *testing.T) {
	s := startServer(t, Options{User: "ari", Password: "s3cret"})
	check401 := func(r response) {
		t.Helper()
		wantError(t, r, http.StatusUnauthorized, "Authentication required")
		if h := r.header.Get("WWW-Authenticate"); h != `Basic realm="Asterisk REST Interface"` {
			t.Fatalf("WWW-Authenticate %q", h)
		}
	}
	check401(callAuth(t, s, "GET", "/ari/asterisk/info", "", "", ""))
	check401(callAuth(t, s, "GET", "/ari/asterisk/info", "", "ari", "wrong"))
	check401(callAuth(t, s, "GET", "/ari/asterisk/info?api_key=ari:wrong", "", "", ""))
	check401(callAuth(t, s, "GET", "/ari/asterisk/info?api_key=ari", "", "", ""))
	// A Basic header is judged alone, even next to a good api_key.
	check401(callAuth(t, s, "GET", "/ari/asterisk/info?api_key=ari:s3cret", "", "ari", "wrong"))
	// Authentication comes before routing, so unknown paths answer 401 too.
	check401(callAuth(t, s, "GET", "/ari/nothing", "", "", ""))
	mustModel(t, callAuth(t, s, "GET", "/ari/asterisk/info?api_key=ari:s3cret", "", "", ""), "AsteriskInfo")
	mustModel(t, callAuth(t, s, "GET", "/ari/asterisk/info", "", "ari", "s3cret"), "AsteriskInfo")

	s.SetCredentials("other", "pw")
	check401(callAuth(t, s, "GET", "/ari/asterisk/ping", "", "ari", "s3cret"))
	mustModel(t, callAuth(t, s, "GET", "/ari/asterisk/ping", "", "other", "pw"), "AsteriskPing")
	// The websocket upgrade is authenticated the same way.
	check401(callAuth(t, s, "GET", "/ari/events?app=x", "", "ari", "s3cret"))
}

func TestErrorsLikeAsterisk(t *testing.T) {
	s := startServer(t, Options{})
	if err := s.AddEndpoint("PJSIP", "100", "online"); err != nil {
		t.Fatal(err)
	}
	wantError(t, call(t, s, "GET", "/ari/nothing/here", ""), 404, "Resource not found")
	wantError(t, call(t, s, "GET", "/ari/endpoints/", ""), 404, "ARI URLs do not end with a slash. Try /ari/endpoints")
	wantError(t, call(t, s, "GET", "/ari/endpoints/SIP", ""), 404, "No Endpoints found - invalid tech SIP")
	wantError(t, call(t, s, "GET", "/ari/endpoints/PJSIP/999", ""), 404, "Endpoint not found")
	wantError(t, call(t, s, "GET", "/ari/channels/nope", ""), 404, "Channel not found")
	wantError(t, call(t, s, "DELETE", "/ari/channels/nope", ""), 404, "Channel not found")
	wantError(t, call(t, s, "GET", "/ari/applications/nope", ""), 404, "Application not found")
	wantError(t, call(t, s, "POST", "/ari/applications/nope/subscription?eventSource=endpoint:PJSIP/100", ""), 404, "Application not found")
	r := call(t, s, "POST", "/ari/endpoints", "")
	wantError(t, r, 405, "Invalid method")
	if r.header.Get("Allow") != "GET" {
		t.Fatalf("Allow %q", r.header.Get("Allow"))
	}
	wantError(t, call(t, s, "GET", "/ari/asterisk/variable", ""), 400, "Variable name is required")
	wantError(t, call(t, s, "POST", "/ari/asterisk/variable", "{not json"), 400, "Error parsing request body")
	r = call(t, s, "POST", "/ari/channels", `{"endpoint":"PJSIP/100"}`)
	if r.status != http.StatusNotImplemented || !strings.Contains(string(r.body), "Not implemented by the switchboard ARI emulator") {
		t.Fatalf("originate: %d %s", r.status, r.body)
	}
	if r := call(t, s, "GET", "/other", ""); r.status != 404 {
		t.Fatalf("non-ARI path: %d", r.status)
	}
	if r := call(t, s, "GET", "/ari/events", ""); r.status != 400 || !strings.Contains(string(r.body), "missing param: [app]") {
		t.Fatalf("events without app: %d %s", r.status, r.body)
	}
	if r := call(t, s, "GET", "/ari/asterisk/info", ""); r.header.Get("Server") != "Asterisk/"+DefaultVersion {
		t.Fatalf("Server header %q", r.header.Get("Server"))
	}
}

func TestSubscriptionsAndFilters(t *testing.T) {
	s := startServer(t, Options{})
	for _, res := range []string{"100", "101"} {
		if err := s.AddEndpoint("PJSIP", res, "online"); err != nil {
			t.Fatal(err)
		}
	}
	plain := dialEvents(t, s, "app=plain")
	all := dialEvents(t, s, "app=all&subscribeAll=true")
	waitFor(t, "both apps", func() bool { return len(s.Applications()) == 2 })

	// Without a subscription an application hears nothing of endpoints.
	if err := s.SetEndpointState("PJSIP", "100", "offline"); err != nil {
		t.Fatal(err)
	}
	all.expect("EndpointStateChange", "all")
	plain.quiet()

	// Parameters may come in a JSON body; endpoint:TECH covers a technology.
	mustModel(t, call(t, s, "POST", "/ari/applications/plain/subscription", `{"eventSource":["endpoint:PJSIP"]}`), "Application")
	if err := s.SetEndpointState("PJSIP", "101", "offline"); err != nil {
		t.Fatal(err)
	}
	plain.expect("EndpointStateChange", "plain")
	all.expect("EndpointStateChange", "all")
	id, err := s.AddChannel(ChannelSpec{Endpoint: "PJSIP/101"})
	if err != nil {
		t.Fatal(err)
	}
	plain.expect("ChannelCreated", "plain")
	all.expect("ChannelCreated", "all")

	wantError(t, call(t, s, "POST", "/ari/applications/plain/subscription?eventSource=endpoint:PJSIP/999", ""), 422, "Event source does not exist")
	wantError(t, call(t, s, "POST", "/ari/applications/plain/subscription?eventSource=foo:bar", ""), 400, "Invalid event source URI scheme")
	wantError(t, call(t, s, "POST", "/ari/applications/plain/subscription", ""), 400, "Missing parameter eventSource")
	wantError(t, call(t, s, "DELETE", "/ari/applications/plain/subscription?eventSource=channel:"+id, ""), 422, "Event source was not subscribed to")

	// An allowed list keeps unknown event types away from a client.
	mustModel(t, call(t, s, "PUT", "/ari/applications/all/eventFilter",
		`{"allowed":[{"type":"ChannelCreated"},{"type":"ChannelDestroyed"},{"type":"ChannelStateChange"},{"type":"EndpointStateChange"}]}`), "Application")
	if err := s.SendEvent("ChannelTransfer", map[string]any{"refer_to": map[string]any{"requested_destination": map[string]any{"destination": "200"}}, "referred_by": map[string]any{"source_channel": id}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SendRawEvent([]byte(`{"type":"BrandNewEvent","application":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SetChannelState(id, "Up"); err != nil {
		t.Fatal(err)
	}
	all.expect("ChannelStateChange", "all") // the transfer and the raw event were filtered
	// The plain application has no filter and sees all three.
	plain.expect("ChannelTransfer", "plain")
	_ = plain.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var raw string
	if err := receiveText(plain, &raw); err != nil || raw != `{"type":"BrandNewEvent","application":"x"}` {
		t.Fatalf("raw event %q %v", raw, err)
	}
	plain.expect("ChannelStateChange", "plain")
	// {} resets the filter.
	r := call(t, s, "PUT", "/ari/applications/all/eventFilter", `{}`)
	mustModel(t, r, "Application")
	if !strings.Contains(string(r.body), `"events_allowed":[]`) {
		t.Fatalf("filter not reset: %s", r.body)
	}
	wantError(t, call(t, s, "PUT", "/ari/applications/all/eventFilter", `{"allowed":"x"}`), 400, "Invalid format definition")
}

func TestApplicationReplaced(t *testing.T) {
	s := startServer(t, Options{})
	if err := s.AddEndpoint("PJSIP", "100", "online"); err != nil {
		t.Fatal(err)
	}
	old := dialEvents(t, s, "app=sb&subscribeAll=true")
	waitFor(t, "first registration", func() bool { return len(s.Applications()) == 1 })
	newer := dialEvents(t, s, "app=sb&subscribeAll=true")
	old.expect("ApplicationReplaced", "sb")
	if err := s.SetEndpointState("PJSIP", "100", "offline"); err != nil {
		t.Fatal(err)
	}
	newer.expect("EndpointStateChange", "sb")
	old.quiet()
	// The old websocket closing does not unregister the new owner.
	_ = old.conn.Close()
	time.Sleep(50 * time.Millisecond)
	if got := s.Applications(); len(got) != 1 || got[0] != "sb" {
		t.Fatalf("applications %v", got)
	}
}

func TestDropStallRestart(t *testing.T) {
	s := startServer(t, Options{})
	ws := dialEvents(t, s, "app=x&subscribeAll=true")
	waitFor(t, "registered", func() bool { return len(s.Applications()) == 1 })
	if n := s.DropWebsockets(); n != 1 {
		t.Fatalf("dropped %d", n)
	}
	if ev := ws.next(2 * time.Second); ev != nil {
		t.Fatalf("event after drop: %v", ev)
	}
	waitFor(t, "unregistered", func() bool { return len(s.Applications()) == 0 })

	// Stall: the request hangs past the client's timeout, then works again.
	s.Stall(time.Minute)
	client := &http.Client{Timeout: 200 * time.Millisecond}
	req, _ := http.NewRequest("GET", s.URL()+"/asterisk/ping", nil)
	req.SetBasicAuth(DefaultUser, DefaultPassword)
	if resp, err := client.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("stalled server answered")
	}
	s.Resume()
	mustModel(t, call(t, s, "GET", "/ari/asterisk/ping", ""), "AsteriskPing")

	// Restart: refused while down, back on the same port with a new startup.
	before := s.State().StartupTime
	if err := s.AddEndpoint("PJSIP", "100", "online"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddChannel(ChannelSpec{Endpoint: "PJSIP/100"}); err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	done := make(chan error, 1)
	go func() { done <- s.Restart(300 * time.Millisecond) }()
	waitFor(t, "port closed", func() bool {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err != nil {
			return true
		}
		c.Close()
		return false
	})
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	st := s.State()
	if s.Addr() != addr || st.StartupTime == before {
		t.Fatalf("restart state %+v", st)
	}
	if len(st.Channels) != 0 || len(st.Endpoints) != 1 {
		t.Fatalf("after restart channels %d endpoints %d", len(st.Channels), len(st.Endpoints))
	}
	mustModel(t, call(t, s, "GET", "/ari/asterisk/info", ""), "AsteriskInfo")
}

func TestControlHTTP(t *testing.T) {
	s := startServer(t, Options{})
	ws := dialEvents(t, s, "app=c&subscribeAll=true")
	waitFor(t, "registered", func() bool { return len(s.Applications()) == 1 })
	ctl := func(method, path, body string, want int) response {
		t.Helper()
		r := callAuth(t, s, method, path, body, "", "")
		if r.status != want {
			t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
		}
		return r
	}
	ctl("POST", "/_emulator/endpoints", `{"technology":"PJSIP","resource":"200","state":"online"}`, 200)
	ws.expect("EndpointStateChange", "c")
	ctl("PUT", "/_emulator/endpoints/PJSIP/200", `{"state":"offline"}`, 200)
	ws.expect("EndpointStateChange", "c")
	r := ctl("POST", "/_emulator/channels", `{"endpoint":"PJSIP/200","caller_number":"200"}`, 200)
	var created struct{ ID string }
	_ = json.Unmarshal(r.body, &created)
	ws.expect("ChannelCreated", "c")
	ctl("PUT", "/_emulator/channels/"+created.ID, `{"state":"Up"}`, 200)
	ws.expect("ChannelStateChange", "c")
	ctl("POST", "/_emulator/events", `{"type":"ChannelToneDetected","channel":"`+created.ID+`"}`, 200)
	ws.expect("ChannelToneDetected", "c")
	ctl("DELETE", "/_emulator/channels/"+created.ID+"?cause=17", "", 200)
	ws.expect("ChannelDestroyed", "c")
	ctl("PUT", "/_emulator/channels/nope", `{"state":"Up"}`, 404)
	ctl("PUT", "/_emulator/endpoints/PJSIP/200", `{"state":"sleepy"}`, 400)
	ctl("POST", "/_emulator/events", `{"no":"type"}`, 400)
	ctl("GET", "/_emulator/bogus", "", 404)
	st := ctl("GET", "/_emulator/state", "", 200)
	if !strings.Contains(string(st.body), `"PJSIP"`) {
		t.Fatalf("state %s", st.body)
	}
	ctl("PUT", "/_emulator/credentials", `{"user":"u","password":"p"}`, 200)
	if r := call(t, s, "GET", "/ari/asterisk/ping", ""); r.status != 401 {
		t.Fatalf("old credentials still work: %d", r.status)
	}
	ctl("POST", "/_emulator/websockets/drop", "", 200)
	waitFor(t, "dropped", func() bool { return len(s.Applications()) == 0 })
	ctl("POST", "/_emulator/stall?for=bad", "", 400)
	ctl("POST", "/_emulator/stall?for=1m", "", 200)
	if !s.State().Stalled {
		t.Fatal("not stalled")
	}
	s.Resume()
	ctl("POST", "/_emulator/restart?down=10ms", "", 202)
	waitFor(t, "restart", func() bool {
		r, err := http.Get("http://" + s.Addr() + "/_emulator/state")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == 200
	})
}

func TestListenErrors(t *testing.T) {
	s := New(Options{})
	if err := s.Restart(0); err == nil {
		t.Fatal("restart of a server that never listened succeeded")
	}
	if err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err == nil {
		t.Fatal("second Listen succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Listen("127.0.0.1:0"); err == nil {
		t.Fatal("Listen after Close succeeded")
	}
	if err := s.AddEndpoint("PJSIP", "1", "weird"); err == nil {
		t.Fatal("bad endpoint state accepted")
	}
	if _, err := s.AddChannel(ChannelSpec{Endpoint: "PJSIP/none"}); err == nil {
		t.Fatal("channel on a missing endpoint accepted")
	}
}

// TestSampleEvents checks the Asterisk-shaped sample events in
// testdata/events (kept for adapters' decoding tests and fuzz corpora)
// against the models, and that SendRawEvent delivers them byte for byte.
func TestSampleEvents(t *testing.T) {
	files, err := filepath.Glob("testdata/events/*.json")
	if err != nil || len(files) < 5 {
		t.Fatalf("sample events: %v %v", files, err)
	}
	s := startServer(t, Options{})
	ws := dialEvents(t, s, "app=switchboard&subscribeAll=true")
	waitFor(t, "registered", func() bool { return len(s.Applications()) == 1 })
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := testModels(t).ValidateMessage(raw); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := s.SendRawEvent(raw); err != nil {
			t.Fatal(err)
		}
		var got string
		_ = ws.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := receiveText(ws, &got); err != nil || got != string(raw) {
			t.Fatalf("%s: delivered %q, %v", f, got, err)
		}
	}
	if err := s.SendRawEvent([]byte("not json")); err == nil {
		t.Fatal("raw non-JSON accepted")
	}
}
