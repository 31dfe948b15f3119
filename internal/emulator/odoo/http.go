package odoo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strings"
)

// maxBody bounds request bodies.
const maxBody = 16 << 20

const werkzeug404 = "<!doctype html>\n<html lang=en>\n<title>404 Not Found</title>\n<h1>Not Found</h1>\n<p>The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again.</p>\n"

const werkzeug405 = "<!doctype html>\n<html lang=en>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n<p>The method is not allowed for the requested URL.</p>\n"

// traceback dresses an exception the way Odoo's fault code 1 carries it:
// the formatted Python traceback.
func traceback(e *rpcError) string {
	return "Traceback (most recent call last):\n" +
		"  File \"/usr/lib/python3/dist-packages/odoo/addons/base/controllers/rpc.py\", line 160, in xmlrpc_2\n" +
		"    response = self._xmlrpc(service)\n" +
		"  File \"/usr/lib/python3/dist-packages/odoo/addons/base/controllers/rpc.py\", line 140, in _xmlrpc\n" +
		"    result = dispatch_rpc(service, method, params)\n" +
		"  File \"/usr/lib/python3/dist-packages/odoo/http.py\", line 388, in dispatch_rpc\n" +
		"    return dispatch(method, params)\n" +
		e.kind + ": " + e.msg + "\n"
}

// faultInt maps an exception to /xmlrpc/2's integer fault codes.
func faultInt(e *rpcError) (int, string) {
	switch e.kind {
	case "AccessError":
		return 4, e.msg
	case "AccessDenied":
		return 3, e.msg
	case "UserError", "MissingError", "ValidationError", "RedirectWarning":
		return 2, e.msg
	}
	return 1, traceback(e)
}

// faultString maps an exception to legacy /xmlrpc's string fault codes.
func faultString(e *rpcError) (string, string) {
	switch e.kind {
	case "MissingError", "AccessError", "UserError":
		return "warning -- " + e.kind + "\n\n" + e.msg, ""
	case "ValidationError":
		return "warning -- UserError\n\n" + e.msg, ""
	case "AccessDenied":
		return "AccessDenied", e.msg
	}
	return e.msg, traceback(e)
}

// ServeHTTP routes /xmlrpc, /json/2 and /web/version.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	xmlrpcOn := s.xmlrpc
	s.mu.Unlock()
	w.Header().Set("Server", "Werkzeug/3.0.1 Python/3.12.3")
	path := r.URL.Path
	switch {
	case strings.HasPrefix(path, "/xmlrpc/"):
		if !xmlrpcOn {
			htmlStatus(w, http.StatusNotFound, werkzeug404)
			return
		}
		service, legacy := strings.TrimPrefix(path, "/xmlrpc/"), true
		if strings.HasPrefix(service, "2/") {
			service, legacy = strings.TrimPrefix(service, "2/"), false
		}
		if service == "" || strings.Contains(service, "/") {
			htmlStatus(w, http.StatusNotFound, werkzeug404)
			return
		}
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			htmlStatus(w, http.StatusMethodNotAllowed, werkzeug405)
			return
		}
		s.serveXMLRPC(w, r, service, legacy)
	case path == "/web/version" && s.opts.Version >= 19:
		info := s.versionInfo()
		writeJSON(w, http.StatusOK, map[string]any{"version_info": info["server_version_info"], "version": info["server_version"]})
	case strings.HasPrefix(path, "/json/2") && s.opts.Version >= 19:
		s.serveJSON2(w, r)
	default:
		htmlStatus(w, http.StatusNotFound, werkzeug404)
	}
}

func htmlStatus(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		status, body = http.StatusInternalServerError, []byte(`"internal server error"`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *Server) serveXMLRPC(w http.ResponseWriter, r *http.Request, service string, legacy bool) {
	write := func(body []byte) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		w.WriteHeader(http.StatusOK) // faults travel with 200, as in Odoo
		_, _ = w.Write(body)
	}
	fault := func(e *rpcError) {
		if legacy {
			code, msg := faultString(e)
			write(EncodeFault(code, msg))
			return
		}
		code, msg := faultInt(e)
		write(EncodeFault(code, msg))
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		fault(pyError("werkzeug.exceptions.RequestEntityTooLarge", "413 Request Entity Too Large: The data value transmitted exceeds the capacity limit."))
		return
	}
	method, params, err := DecodeRequest(bytes.NewReader(body))
	if err != nil {
		fault(pyError("xml.parsers.expat.ExpatError", "%v", err))
		return
	}
	s.mu.Lock()
	result, rerr := s.dispatch(service, method, params)
	s.mu.Unlock()
	if rerr != nil {
		s.log.Debug("odoo emulator fault", "service", service, "method", method, "error", rerr.Error())
		fault(rerr)
		return
	}
	out, err := EncodeResponse(result)
	if err != nil {
		fault(pyError("TypeError", "%v", err))
		return
	}
	write(out)
}

// json2Error is the error body of the JSON-2 API.
func json2Error(w http.ResponseWriter, status int, name, msg string, args []any) {
	if args == nil {
		args = []any{msg}
	}
	debug := "Traceback (most recent call last):\n  File \"/usr/lib/python3/dist-packages/odoo/http.py\", line 2212, in _transactioning\n    return service_model.retrying(func, env=self.env)\n" + name + ": " + msg + "\n"
	writeJSON(w, status, map[string]any{"name": name, "message": msg, "arguments": args, "context": map[string]any{}, "debug": debug})
}

// json2Status maps Odoo exceptions to HTTP statuses (UserError.http_code).
func json2Status(e *rpcError) (int, string) {
	switch e.kind {
	case "AccessError":
		return http.StatusForbidden, "odoo.exceptions.AccessError"
	case "AccessDenied":
		return http.StatusForbidden, "odoo.exceptions.AccessDenied"
	case "MissingError":
		return http.StatusNotFound, "odoo.exceptions.MissingError"
	case "UserError", "ValidationError":
		return http.StatusUnprocessableEntity, "odoo.exceptions." + e.kind
	}
	name := e.kind
	if !strings.Contains(name, ".") {
		name = "builtins." + name
	}
	return http.StatusInternalServerError, name
}

func (s *Server) serveJSON2(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.Path, "/json/2"), "/"), "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		json2Error(w, http.StatusNotFound, "werkzeug.exceptions.NotFound", "Did you mean POST /json/2/<model>/<method>?", []any{"Did you mean POST /json/2/<model>/<method>?", 404})
		return
	}
	model, method := parts[0], parts[1]
	// Authentication comes first (auth='bearer').
	scheme, key, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if db := r.Header.Get("X-Odoo-Database"); db != "" && db != s.opts.Database {
		json2Error(w, http.StatusNotFound, "werkzeug.exceptions.NotFound", fmt.Sprintf("database %q not found", db), []any{fmt.Sprintf("database %q not found", db), 404})
		return
	}
	s.mu.Lock()
	uid := 0
	if strings.EqualFold(scheme, "bearer") {
		uid = s.apiKeyUserLocked(strings.TrimSpace(key))
	}
	s.mu.Unlock()
	if uid == 0 {
		w.Header().Set("WWW-Authenticate", "Bearer")
		json2Error(w, http.StatusUnauthorized, "werkzeug.exceptions.Unauthorized", "Invalid apikey", []any{"Invalid apikey", 401})
		return
	}
	if r.Method != http.MethodPost {
		json2Error(w, http.StatusMethodNotAllowed, "werkzeug.exceptions.MethodNotAllowed", "The method is not allowed for the requested URL.", []any{405})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil || len(body) > maxBody {
		json2Error(w, http.StatusRequestEntityTooLarge, "werkzeug.exceptions.RequestEntityTooLarge", "The data value transmitted exceeds the capacity limit.", nil)
		return
	}
	params := map[string]any{}
	if len(bytes.TrimSpace(body)) > 0 {
		var raw any
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		if err := dec.Decode(&raw); err != nil {
			json2Error(w, http.StatusBadRequest, "werkzeug.exceptions.BadRequest", "could not parse the body as json: "+err.Error(), nil)
			return
		}
		obj, ok := raw.(map[string]any)
		if !ok {
			json2Error(w, http.StatusBadRequest, "werkzeug.exceptions.BadRequest", "could not parse the body, expecting a json object", nil)
			return
		}
		params = normalizeJSON(obj).(map[string]any)
	}
	var ids []int
	if v, ok := params["ids"]; ok {
		var rerr *rpcError
		if ids, rerr = toIDs(v); rerr != nil {
			json2Error(w, http.StatusUnprocessableEntity, "werkzeug.exceptions.UnprocessableEntity", rerr.msg, nil)
			return
		}
		delete(params, "ids")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	def := s.defs[model]
	if def == nil || !s.available(def) {
		s.calls[model+"."+method]++
		msg := fmt.Sprintf("the model %s does not exist", pyRepr(model))
		json2Error(w, http.StatusNotFound, "werkzeug.exceptions.NotFound", msg, []any{msg, 404})
		return
	}
	spec, known := methodSpecs[method]
	if known && spec.models != nil {
		known = false
		for _, m := range spec.models {
			known = known || m == model
		}
	}
	if !known || strings.HasPrefix(method, "_") {
		s.calls[model+"."+method]++
		msg := fmt.Sprintf("The method '%s.%s' does not exist", model, method)
		if strings.HasPrefix(method, "_") {
			msg = fmt.Sprintf("Private methods (such as '%s.%s') cannot be called remotely.", model, method)
		}
		json2Error(w, http.StatusNotFound, "werkzeug.exceptions.NotFound", msg, []any{msg, 404})
		return
	}
	if !spec.record && len(ids) > 0 {
		s.calls[model+"."+method]++
		msg := fmt.Sprintf("cannot call %s.%s with ids", model, method)
		json2Error(w, http.StatusUnprocessableEntity, "werkzeug.exceptions.UnprocessableEntity", msg, []any{msg, 422})
		return
	}
	result, rerr := s.call(uid, model, method, nil, params, ids, true)
	if rerr != nil {
		if rerr.kind == "TypeError" {
			// Signature mismatches are caught before the call in JSON-2.
			json2Error(w, http.StatusUnprocessableEntity, "werkzeug.exceptions.UnprocessableEntity", rerr.msg, []any{rerr.msg, 422})
			return
		}
		status, name := json2Status(rerr)
		json2Error(w, status, name, rerr.msg, nil)
		return
	}
	writeJSON(w, http.StatusOK, result)
}

// normalizeJSON turns json.Number into int or float64 so JSON-2 and
// XML-RPC share one set of value types.
func normalizeJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil && i >= math.MinInt && i <= math.MaxInt {
			return int(i)
		}
		f, _ := x.Float64()
		return f
	case []any:
		for i := range x {
			x[i] = normalizeJSON(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = normalizeJSON(x[k])
		}
		return x
	}
	return v
}
