package ari

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/websocket"
)

// sessionQueue bounds the events waiting for a slow websocket reader;
// Asterisk likewise gives up on a websocket it cannot write to.
const sessionQueue = 1024

// session is one events websocket.
type session struct {
	srv       *Server
	ws        *websocket.Conn
	out       chan []byte
	done      chan struct{}
	closeOnce sync.Once
	apps      []string
}

// send queues one message; a full queue closes the websocket. Called with
// s.srv.mu held.
func (ss *session) send(msg []byte) {
	select {
	case <-ss.done:
	case ss.out <- msg:
	default:
		ss.srv.log.Warn("ARI emulator: websocket reader too slow, closing it", "apps", strings.Join(ss.apps, ","))
		ss.close()
	}
}

func (ss *session) close() {
	ss.closeOnce.Do(func() {
		close(ss.done)
		_ = ss.ws.Close()
	})
}

// writer sends queued messages in order, holding them while stalled.
func (ss *session) writer() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-ss.done
		cancel()
	}()
	for {
		select {
		case <-ss.done:
			return
		case msg := <-ss.out:
			if err := ss.srv.waitStall(ctx); err != nil {
				return
			}
			_ = ss.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := websocket.Message.Send(ss.ws, string(msg)); err != nil {
				ss.close()
				return
			}
		}
	}
}

// htmlError answers like Asterisk's ast_http_error, which the websocket
// upgrade path uses (an HTML page, not ARI's JSON).
func htmlError(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\r\n<html><head>\r\n<title>%d %s</title>\r\n</head><body>\r\n<h1>%s</h1>\r\n<p>%s</p>\r\n<hr />\r\n<address>Asterisk Server</address>\r\n</body></html>\r\n",
		status, http.StatusText(status), http.StatusText(status), text)
}

// serveEvents handles GET /ari/events (already authenticated).
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, p params) {
	apps := splitList(strings.Join(p["app"], ","))
	if len(apps) == 0 {
		htmlError(w, http.StatusBadRequest, "HTTP request is missing param: [app]")
		return
	}
	subscribeAll := false
	if v := p.get("subscribeAll"); v != "" {
		b, ok := parseBool(v)
		if !ok {
			htmlError(w, http.StatusBadRequest, "Invalid value for subscribeAll")
			return
		}
		subscribeAll = b
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		htmlError(w, http.StatusBadRequest, "This URI is for websocket connections only")
		return
	}
	ws := websocket.Server{
		// Asterisk checks no Origin unless allowed_origins is configured.
		Handshake: func(*websocket.Config, *http.Request) error { return nil },
		Handler: func(conn *websocket.Conn) {
			s.runSession(conn, apps, subscribeAll)
		},
	}
	ws.ServeHTTP(w, r)
}

func (s *Server) runSession(conn *websocket.Conn, apps []string, subscribeAll bool) {
	conn.PayloadType = websocket.TextFrame
	ss := &session{srv: s, ws: conn, out: make(chan []byte, sessionQueue), done: make(chan struct{}), apps: apps}
	s.mu.Lock()
	if s.srv == nil || s.closed {
		s.mu.Unlock()
		_ = conn.Close()
		return
	}
	s.sessions[ss] = true
	for _, name := range apps {
		a := s.apps[name]
		if a == nil {
			a = newApp(name)
			s.apps[name] = a
		} else if a.session != nil && a.session != ss {
			// The newer websocket wins; the older one is told so and
			// gets nothing more for this application.
			ev := s.baseEvent("ApplicationReplaced")
			ev["application"] = name
			if a.allows(ev) {
				body := mustJSON(ev)
				s.checkOutputLocked("Message", "event ApplicationReplaced", body)
				a.session.send(body)
			}
		}
		a.session = ss
		a.subscribeAll = subscribeAll
	}
	s.mu.Unlock()
	s.log.Debug("ARI emulator websocket connected", "apps", strings.Join(apps, ","), "subscribe_all", subscribeAll)

	go ss.writer()
	// Asterisk ignores what clients send; read until the connection ends.
	for {
		var msg []byte
		if err := websocket.Message.Receive(conn, &msg); err != nil {
			break
		}
	}
	ss.close()

	s.mu.Lock()
	delete(s.sessions, ss)
	for _, name := range apps {
		if a := s.apps[name]; a != nil && a.session == ss {
			// The application is unregistered with its websocket; its
			// subscriptions and filters go with it.
			delete(s.apps, name)
		}
	}
	s.mu.Unlock()
	s.log.Debug("ARI emulator websocket closed", "apps", strings.Join(apps, ","))
}

func parseBool(v string) (bool, bool) {
	switch strings.ToLower(v) {
	case "true", "yes", "1", "on":
		return true, true
	case "false", "no", "0", "off":
		return false, true
	}
	return false, false
}
