package odoo

import (
	"fmt"
	"sort"
	"strings"
)

// versionInfo is common.version() as Odoo answers it. Enterprise marks
// itself with "+e" and a trailing "e" in server_version_info.
func (s *Server) versionInfo() map[string]any {
	serie := fmt.Sprintf("%d.0", s.opts.Version)
	version, suffix := serie, ""
	if s.opts.Edition == Enterprise {
		version, suffix = serie+"+e", "e"
	}
	return map[string]any{
		"server_version":      version,
		"server_version_info": []any{s.opts.Version, 0, 0, "final", 0, suffix},
		"server_serie":        serie,
		"protocol_version":    1,
	}
}

func (s *Server) checkDB(db any) *rpcError {
	name, _ := db.(string)
	if name != s.opts.Database {
		return pyError("psycopg2.OperationalError", "connection to server on socket \"/var/run/postgresql/.s.PGSQL.5432\" failed: FATAL:  database \"%v\" does not exist\n", db)
	}
	return nil
}

func argCountError(fn string, want, got int) *rpcError {
	return pyError("TypeError", "%s() takes %d positional arguments but %d were given", fn, want, got)
}

// dispatch runs one XML-RPC call of a service. Caller holds s.mu.
func (s *Server) dispatch(service, method string, params []any) (any, *rpcError) {
	switch service {
	case "common":
		s.calls["common."+method]++
		switch method {
		case "version":
			return s.versionInfo(), nil
		case "login", "authenticate":
			want := 3
			if method == "authenticate" {
				want = 4
			}
			if len(params) != want {
				return nil, argCountError("exp_"+method, want, len(params))
			}
			if err := s.checkDB(params[0]); err != nil {
				return nil, err
			}
			login, _ := params[1].(string)
			password, _ := params[2].(string)
			// A failed login is False, not a fault: exp_authenticate
			// catches AccessDenied.
			if uid := s.loginLocked(login, password); uid != 0 {
				return uid, nil
			}
			return false, nil
		}
		return nil, pyError("Exception", "Method not found: %s", method)
	case "db":
		s.calls["db."+method]++
		switch method {
		case "list":
			return []any{s.opts.Database}, nil
		case "server_version":
			return s.versionInfo()["server_version"], nil
		case "db_exist":
			if len(params) != 1 {
				return nil, argCountError("exp_db_exist", 1, len(params))
			}
			return params[0] == s.opts.Database, nil
		}
		return nil, pyError("Exception", "Method not found: %s", method)
	case "object":
		switch method {
		case "execute_kw", "execute":
		default:
			return nil, pyError("NameError", "method not available %s", method)
		}
		if len(params) < 5 {
			return nil, argCountError(method, 5, len(params))
		}
		if err := s.checkDB(params[0]); err != nil {
			return nil, err
		}
		uid, ok := params[1].(int)
		password, _ := params[2].(string)
		if !ok || !s.checkPasswordLocked(uid, password) {
			return nil, accessDenied()
		}
		model, _ := params[3].(string)
		name, _ := params[4].(string)
		var args []any
		kw := map[string]any{}
		if method == "execute_kw" {
			if len(params) > 7 {
				return nil, argCountError("execute_kw", 7, len(params))
			}
			if len(params) > 5 {
				a, ok := params[5].([]any)
				if !ok {
					return nil, pyError("TypeError", "execute_kw() argument after * must be an iterable, not %s", pyType(params[5]))
				}
				args = a
			}
			if len(params) > 6 && params[6] != nil {
				k, ok := params[6].(map[string]any)
				if !ok {
					return nil, pyError("TypeError", "execute_kw() argument after ** must be a mapping, not %s", pyType(params[6]))
				}
				kw = k
			}
		} else {
			args = params[5:]
		}
		return s.call(uid, model, name, args, kw, nil, false)
	}
	return nil, pyError("KeyError", "%s", pyRepr(service))
}

func pyType(v any) string {
	switch v.(type) {
	case string:
		return "str"
	case int:
		return "int"
	case bool:
		return "bool"
	case float64:
		return "float"
	case []any:
		return "list"
	case map[string]any:
		return "dict"
	}
	return "NoneType"
}

// loginLocked returns the uid for login+password (or API key), 0 if none.
func (s *Server) loginLocked(login, password string) int {
	if login == "" || password == "" {
		return 0
	}
	for id, r := range s.tables["res.users"].rows {
		if r["login"] == login && s.checkPasswordLocked(id, password) {
			return id
		}
	}
	return 0
}

// checkPasswordLocked accepts the user's password or one of its API keys,
// for active users only.
func (s *Server) checkPasswordLocked(uid int, password string) bool {
	c := s.creds[uid]
	r := s.tables["res.users"].rows[uid]
	if c == nil || r == nil || r["active"] != true || password == "" {
		return false
	}
	if c.password != "" && c.password == password {
		return true
	}
	for _, k := range c.keys {
		if k == password {
			return true
		}
	}
	return false
}

// apiKeyUserLocked finds the active user owning an API key (JSON-2 bearer).
func (s *Server) apiKeyUserLocked(key string) int {
	if key == "" {
		return 0
	}
	for uid, c := range s.creds {
		for _, k := range c.keys {
			if k == key {
				if r := s.tables["res.users"].rows[uid]; r != nil && r["active"] == true {
					return uid
				}
			}
		}
	}
	return 0
}

// methodSpec describes an ORM method's Python signature (after self).
type methodSpec struct {
	params   []string
	required int
	record   bool     // called on records: ids come first
	models   []string // only on these models (nil: every model)
	// kwOnly: Python keyword-only parameters (def f(self, *, a=…)), so
	// positional arguments after the ids are a TypeError.
	kwOnly bool
}

// mailThreadModels are the emulated models that inherit mail.thread in
// real Odoo, so they have message_post.
var mailThreadModels = []string{"res.partner", "project.project", "project.task", "helpdesk.ticket"}

var methodSpecs = map[string]methodSpec{
	"search":                     {params: []string{"domain", "offset", "limit", "order"}, required: 1},
	"search_count":               {params: []string{"domain", "limit"}, required: 1},
	"search_read":                {params: []string{"domain", "fields", "offset", "limit", "order"}},
	"read":                       {params: []string{"fields", "load"}, record: true},
	"create":                     {params: []string{"vals_list"}, required: 1},
	"write":                      {params: []string{"vals"}, required: 1, record: true},
	"unlink":                     {record: true},
	"fields_get":                 {params: []string{"allfields", "attributes"}},
	"get_param":                  {params: []string{"key", "default"}, required: 1, models: []string{"ir.config_parameter"}},
	"set_param":                  {params: []string{"key", "value"}, required: 2, models: []string{"ir.config_parameter"}},
	"button_immediate_install":   {record: true, models: []string{"ir.module.module"}},
	"button_immediate_uninstall": {record: true, models: []string{"ir.module.module"}},
	"update_list":                {models: []string{"ir.module.module"}},
	"context_get":                {models: []string{"res.users"}},
	// mail.thread.message_post(self, *, body='', subject=None,
	// message_type='notification', subtype_xmlid=None, body_is_html=False,
	// …): the arguments switchboard and common integrations pass.
	"message_post": {params: []string{"body", "subject", "message_type", "subtype_xmlid", "body_is_html"}, record: true,
		models: mailThreadModels, kwOnly: true},
}

// call runs model.method for uid. For XML-RPC, record methods take their
// ids from args[0]; JSON-2 passes ids (possibly empty) and named kw only.
func (s *Server) call(uid int, model, method string, args []any, kw map[string]any, ids []int, json2 bool) (any, *rpcError) {
	s.calls[model+"."+method]++
	def := s.defs[model]
	if def == nil || !s.available(def) {
		return nil, userError(fmt.Sprintf("Object %s doesn't exist", model))
	}
	if strings.HasPrefix(method, "_") {
		return nil, &rpcError{"AccessError", fmt.Sprintf("Private methods (such as %s) cannot be called remotely.", method)}
	}
	spec, ok := methodSpecs[method]
	if ok && spec.models != nil {
		ok = false
		for _, m := range spec.models {
			ok = ok || m == model
		}
	}
	if !ok {
		return nil, pyError("NameError", "Method not available %s", method)
	}
	activeTest := true
	if ctx, ok := kw["context"].(map[string]any); ok {
		if v, ok := ctx["active_test"].(bool); ok {
			activeTest = v
		}
	}
	kwargs := map[string]any{}
	for k, v := range kw {
		if k != "context" {
			kwargs[k] = v
		}
	}
	if spec.record && !json2 {
		if len(args) == 0 {
			return nil, pyError("TypeError", "%s() missing 1 required positional argument: 'ids'", method)
		}
		var err *rpcError
		if ids, err = toIDs(args[0]); err != nil {
			return nil, err
		}
		args = args[1:]
	}
	if spec.kwOnly && len(args) > 0 {
		return nil, pyError("TypeError", "%s() takes 1 positional argument but %d were given", method, len(args)+1)
	}
	bound, err := bind(method, spec, args, kwargs)
	if err != nil {
		return nil, err
	}
	lv := s.creds[uid].level
	need := func(op string, l level) *rpcError {
		if lv < l {
			return accessError(def, op, l)
		}
		return nil
	}
	t := s.tables[model]
	switch method {
	case "search", "search_count", "search_read":
		if err := need("read", def.read); err != nil {
			return nil, err
		}
		recs, err := s.search(def, bound["domain"], bound["offset"], bound["limit"], bound["order"], activeTest)
		if err != nil {
			return nil, err
		}
		switch method {
		case "search_count":
			return len(recs), nil
		case "search":
			out := make([]any, len(recs))
			for i, r := range recs {
				out[i] = r["id"]
			}
			return out, nil
		}
		fields, err := fieldList(def, bound["fields"])
		if err != nil {
			return nil, err
		}
		out := make([]any, len(recs))
		for i, r := range recs {
			out[i] = s.readRecord(def, r, fields)
		}
		return out, nil
	case "read":
		if err := need("read", def.read); err != nil {
			return nil, err
		}
		fields, err := fieldList(def, bound["fields"])
		if err != nil {
			return nil, err
		}
		if err := s.missing(def, uid, ids); err != nil {
			return nil, err
		}
		out := make([]any, len(ids))
		for i, id := range ids {
			out[i] = s.readRecord(def, t.rows[id], fields)
		}
		return out, nil
	case "create":
		if err := need("create", def.write); err != nil {
			return nil, err
		}
		return s.create(def, bound["vals_list"])
	case "write":
		if err := need("write", def.write); err != nil {
			return nil, err
		}
		vals, ok := bound["vals"].(map[string]any)
		if !ok {
			return nil, pyError("AttributeError", "'%s' object has no attribute 'items'", pyType(bound["vals"]))
		}
		if err := s.missing(def, uid, ids); err != nil {
			return nil, err
		}
		for _, id := range ids {
			clean, err := s.convertValsFor(def, vals, t.rows[id])
			if err != nil {
				return nil, err
			}
			if model == "res.users" {
				s.takePassword(id, clean)
			}
			for k, v := range clean {
				t.rows[id][k] = v
			}
		}
		return true, nil
	case "unlink":
		if err := need("unlink", def.write); err != nil {
			return nil, err
		}
		if err := s.missing(def, uid, ids); err != nil {
			return nil, err
		}
		for _, id := range ids {
			delete(t.rows, id)
		}
		return true, nil
	case "fields_get":
		return s.fieldsGet(def, bound["allfields"], bound["attributes"])
	case "message_post":
		return s.messagePost(def, uid, ids, bound)
	case "get_param":
		if err := need("read", def.read); err != nil {
			return nil, err
		}
		key, _ := bound["key"].(string)
		if r := s.paramLocked(key); r != nil {
			return r["value"], nil
		}
		if d, ok := bound["default"]; ok {
			return d, nil
		}
		return false, nil
	case "set_param":
		if err := need("write", def.write); err != nil {
			return nil, err
		}
		key, _ := bound["key"].(string)
		var old any = false
		if r := s.paramLocked(key); r != nil {
			old = r["value"]
		}
		switch v := bound["value"].(type) {
		case string:
			if err := s.setParamLocked(key, v); err != nil {
				return nil, pyError("ValueError", "%v", err)
			}
		case bool:
			if v {
				return nil, pyError("ValueError", "set_param: value must be a string or False")
			}
			// set_param(key, False) deletes the parameter.
			if r := s.paramLocked(key); r != nil {
				delete(t.rows, r["id"].(int))
			}
		default:
			if err := s.setParamLocked(key, fmt.Sprint(v)); err != nil {
				return nil, pyError("ValueError", "%v", err)
			}
		}
		return old, nil
	case "button_immediate_install", "button_immediate_uninstall", "update_list":
		// Decorated with @assert_log_admin_access in Odoo.
		if lv < levelSystem {
			return nil, accessDenied()
		}
		if method == "update_list" {
			return []any{0, 0}, nil
		}
		if err := s.missing(def, uid, ids); err != nil {
			return nil, err
		}
		state := "installed"
		if method == "button_immediate_uninstall" {
			state = "uninstalled"
		}
		for _, id := range ids {
			t.rows[id]["state"] = state
			if t.rows[id]["name"] == "rpc" {
				s.xmlrpc = state == "installed"
			}
		}
		return map[string]any{"type": "ir.actions.client", "tag": "reload", "params": map[string]any{"menu_id": 1}}, nil
	case "context_get":
		return map[string]any{"lang": "en_US", "tz": false, "uid": uid}, nil
	}
	return nil, pyError("NameError", "Method not available %s", method)
}

// bind maps positional and keyword arguments onto a signature like Python.
func bind(method string, spec methodSpec, args []any, kw map[string]any) (map[string]any, *rpcError) {
	if len(args) > len(spec.params) {
		if spec.required == len(spec.params) {
			return nil, pyError("TypeError", "%s() takes %d positional arguments but %d were given", method, len(spec.params)+1, len(args)+1)
		}
		return nil, pyError("TypeError", "%s() takes from %d to %d positional arguments but %d were given", method, spec.required+1, len(spec.params)+1, len(args)+1)
	}
	out := map[string]any{}
	for i, a := range args {
		out[spec.params[i]] = a
	}
	keys := make([]string, 0, len(kw))
	for k := range kw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		known := false
		for _, p := range spec.params {
			known = known || p == k
		}
		if !known {
			return nil, pyError("TypeError", "%s() got an unexpected keyword argument '%s'", method, k)
		}
		if _, dup := out[k]; dup {
			return nil, pyError("TypeError", "%s() got multiple values for argument '%s'", method, k)
		}
		out[k] = kw[k]
	}
	var missing []string
	for _, p := range spec.params[:spec.required] {
		if _, ok := out[p]; !ok {
			missing = append(missing, "'"+p+"'")
		}
	}
	if len(missing) > 0 {
		return nil, pyError("TypeError", "%s() missing %d required positional argument%s: %s", method, len(missing), map[bool]string{true: "s", false: ""}[len(missing) > 1], strings.Join(missing, " and "))
	}
	return out, nil
}

func toIDs(v any) ([]int, *rpcError) {
	switch x := v.(type) {
	case int:
		return []int{x}, nil
	case []any:
		out := make([]int, 0, len(x))
		for _, e := range x {
			n, ok := e.(int)
			if !ok {
				if f, isF := e.(float64); isF && f == float64(int(f)) {
					n, ok = int(f), true
				}
			}
			if !ok {
				return nil, pyError("TypeError", "ids must be integers, got %s", pyRepr(e))
			}
			out = append(out, n)
		}
		return out, nil
	case bool:
		if !x {
			return []int{}, nil
		}
	}
	return nil, pyError("TypeError", "ids must be an integer or a list of integers, got %s", pyRepr(v))
}

// missing raises MissingError for ids that are not in the table.
func (s *Server) missing(def *modelDef, uid int, ids []int) *rpcError {
	var gone []string
	for _, id := range ids {
		if s.tables[def.name].rows[id] == nil {
			gone = append(gone, fmt.Sprint(id))
		}
	}
	if len(gone) == 0 {
		return nil
	}
	return &rpcError{"MissingError", fmt.Sprintf("Record does not exist or has been deleted.\n(Record: %s(%s,), User: %d)", def.name, strings.Join(gone, ", "), uid)}
}

func optInt(v any, name string) (int, bool, *rpcError) {
	switch x := v.(type) {
	case nil:
		return 0, false, nil
	case bool:
		if !x {
			return 0, false, nil
		}
	case int:
		return x, true, nil
	case float64:
		if x == float64(int(x)) {
			return int(x), true, nil
		}
	}
	return 0, false, pyError("TypeError", "%s must be an integer, got %s", name, pyRepr(v))
}

func (s *Server) search(def *modelDef, domain, offset, limit, order any, activeTest bool) ([]map[string]any, *rpcError) {
	n, err := parseDomain(domain)
	if err != nil {
		return nil, err
	}
	if err := s.checkDomain(def, n); err != nil {
		return nil, err
	}
	if activeTest && def.field("active") != nil && !n.mentions("active") {
		n = &node{op: "&", children: []*node{{op: "leaf", field: "active", operator: "=", value: true}, n}}
	}
	spec := def.order
	if o, ok := order.(string); ok && strings.TrimSpace(o) != "" {
		spec = o
	} else if order != nil && order != false && order != "" {
		return nil, invalidOrder(pyRepr(order))
	}
	keys, err := parseOrder(def, spec)
	if err != nil {
		return nil, err
	}
	off, _, err := optInt(offset, "offset")
	if err != nil {
		return nil, err
	}
	lim, hasLimit, err := optInt(limit, "limit")
	if err != nil {
		return nil, err
	}
	t := s.tables[def.name]
	var recs []map[string]any
	for _, id := range t.ids() {
		if s.match(def, t.rows[id], n) {
			recs = append(recs, t.rows[id])
		}
	}
	s.sortRecords(def, recs, keys)
	if off > 0 {
		if off >= len(recs) {
			recs = nil
		} else {
			recs = recs[off:]
		}
	}
	// limit=0 means no limit, as in the ORM ("if limit:").
	if hasLimit && lim > 0 && lim < len(recs) {
		recs = recs[:lim]
	}
	return recs, nil
}

// fieldList checks a "fields" argument; nil means every field.
func fieldList(def *modelDef, v any) ([]string, *rpcError) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if !x {
			return nil, nil
		}
	case string:
		x2 := []any{x}
		return fieldList(def, x2)
	case []any:
		out := []string{}
		for _, e := range x {
			name, ok := e.(string)
			if !ok || def.field(name) == nil {
				return nil, pyError("ValueError", "Invalid field %s on model %s", pyRepr(e), pyRepr(def.name))
			}
			out = append(out, name)
		}
		if len(out) == 0 {
			return nil, nil
		}
		return out, nil
	}
	return nil, pyError("TypeError", "fields must be a list of field names, got %s", pyRepr(v))
}

// readRecord renders a record as read() does: id always, False for empty
// values, [id, display_name] for many2one.
func (s *Server) readRecord(def *modelDef, rec map[string]any, fields []string) map[string]any {
	if fields == nil {
		for _, f := range def.fields {
			fields = append(fields, f.name)
		}
	}
	out := map[string]any{"id": rec["id"]}
	for _, name := range fields {
		f := def.field(name)
		v := rec[name]
		switch {
		case name == "display_name":
			out[name] = s.displayName(def, rec)
		case f.typ == "boolean":
			out[name] = v == true
		case f.typ == "integer":
			if v == nil {
				v = 0
			}
			out[name] = v
		case f.typ == "float":
			if v == nil {
				v = 0.0
			}
			out[name] = v
		case f.typ == "many2one":
			id, ok := v.(int)
			rel := s.tables[f.relation]
			if !ok || rel == nil || rel.rows[id] == nil {
				out[name] = false
				continue
			}
			out[name] = []any{id, s.displayName(rel.def, rel.rows[id])}
		case f.typ == "many2many" || f.typ == "one2many":
			ids := relIDs(v)
			arr := make([]any, len(ids))
			for i, id := range ids {
				arr[i] = id
			}
			out[name] = arr
		default:
			if v == nil {
				out[name] = false
			} else {
				out[name] = v
			}
		}
	}
	return out
}

func (s *Server) create(def *modelDef, valsList any) (any, *rpcError) {
	var list []any
	single := false
	switch x := valsList.(type) {
	case map[string]any:
		list, single = []any{x}, true
	case []any:
		list = x
	default:
		return nil, pyError("TypeError", "create() expects a dict or a list of dicts, got %s", pyRepr(valsList))
	}
	ids := []any{}
	for _, item := range list {
		vals, ok := item.(map[string]any)
		if !ok {
			return nil, pyError("TypeError", "create() expects a dict or a list of dicts, got %s", pyRepr(item))
		}
		clean, err := s.convertValsFor(def, vals, nil)
		if err != nil {
			return nil, err
		}
		var password any
		if def.name == "res.users" {
			password = clean["password"]
			delete(clean, "password")
			if clean["partner_id"] == nil {
				pid, ierr := s.insert("res.partner", map[string]any{"name": clean["name"], "email": clean["email"]})
				if ierr != nil {
					return nil, toRPC(ierr)
				}
				clean["partner_id"] = pid
			}
		}
		id, ierr := s.insert(def.name, clean)
		if ierr != nil {
			return nil, toRPC(ierr)
		}
		if def.name == "res.users" {
			pw, _ := password.(string)
			lv := levelUser
			if clean["share"] == true {
				lv = levelPortal
			}
			s.creds[id] = &credential{password: pw, level: lv}
		}
		ids = append(ids, id)
	}
	if single {
		return ids[0], nil
	}
	return ids, nil
}

func toRPC(err error) *rpcError {
	if re, ok := err.(*rpcError); ok {
		return re
	}
	return pyError("ValueError", "%v", err)
}

// takePassword moves a written password into the credentials.
func (s *Server) takePassword(uid int, clean map[string]any) {
	if pw, ok := clean["password"].(string); ok {
		if c := s.creds[uid]; c != nil {
			c.password = pw
		} else {
			s.creds[uid] = &credential{password: pw, level: levelUser}
		}
	}
	delete(clean, "password")
}

// convertVals checks values for create (AddRecord path).
func (s *Server) convertVals(def *modelDef, vals map[string]any) (map[string]any, error) {
	clean, err := s.convertValsFor(def, vals, nil)
	if err != nil {
		return nil, err
	}
	return clean, nil
}

// convertValsFor turns wire values into stored ones, as the ORM's
// convert_to_cache does, against the current record (for x2many commands).
func (s *Server) convertValsFor(def *modelDef, vals map[string]any, cur map[string]any) (map[string]any, *rpcError) {
	out := map[string]any{}
	for k, v := range vals {
		if def.name == "res.users" && k == "password" {
			out[k] = v
			continue
		}
		f := def.field(k)
		if f == nil || k == "id" || k == "display_name" {
			return nil, pyError("ValueError", "Invalid field %s on model %s", pyRepr(k), pyRepr(def.name))
		}
		bad := func() *rpcError {
			return pyError("ValueError", "Wrong value for %s.%s: %s", def.name, k, pyRepr(v))
		}
		if v == false && f.typ != "boolean" && f.typ != "many2many" {
			out[k] = nil
			continue
		}
		switch f.typ {
		case "char", "text", "html", "date", "datetime":
			str, ok := v.(string)
			if !ok {
				return nil, bad()
			}
			out[k] = str
		case "selection":
			str, ok := v.(string)
			valid := false
			for _, opt := range f.selection {
				valid = valid || opt[0] == str
			}
			if !ok || !valid {
				return nil, bad()
			}
			out[k] = str
		case "boolean":
			switch x := v.(type) {
			case bool:
				out[k] = x
			case int:
				out[k] = x != 0
			default:
				return nil, bad()
			}
		case "integer", "many2one":
			n, ok := toInt(v)
			if !ok {
				return nil, bad()
			}
			out[k] = n
		case "float":
			n, ok := toNumber(v)
			if !ok {
				return nil, bad()
			}
			out[k] = n
		case "many2many", "one2many":
			var curIDs []int
			if cur != nil {
				curIDs = append(curIDs, relIDs(cur[k])...)
			}
			ids, err := applyCommands(curIDs, v)
			if err != nil {
				return nil, pyError("ValueError", "Wrong value for %s.%s: %s", def.name, k, pyRepr(v))
			}
			out[k] = ids
		}
	}
	return out, nil
}

// applyCommands interprets x2many commands: a plain id list, or
// (6, 0, ids), (4, id), (3, id), (5,).
func applyCommands(cur []int, v any) ([]int, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("not a list")
	}
	set := append([]int{}, cur...)
	has := func(id int) bool {
		for _, x := range set {
			if x == id {
				return true
			}
		}
		return false
	}
	for _, item := range list {
		if id, ok := item.(int); ok {
			if !has(id) {
				set = append(set, id)
			}
			continue
		}
		cmd, ok := item.([]any)
		if !ok || len(cmd) == 0 {
			return nil, fmt.Errorf("bad command")
		}
		code, _ := cmd[0].(int)
		switch code {
		case 6:
			if len(cmd) != 3 {
				return nil, fmt.Errorf("bad command")
			}
			ids, err := toIDs(cmd[2])
			if err != nil {
				return nil, err
			}
			set = ids
		case 4, 3:
			if len(cmd) < 2 {
				return nil, fmt.Errorf("bad command")
			}
			id, ok := cmd[1].(int)
			if !ok {
				return nil, fmt.Errorf("bad command")
			}
			if code == 4 && !has(id) {
				set = append(set, id)
			}
			if code == 3 {
				kept := set[:0]
				for _, x := range set {
					if x != id {
						kept = append(kept, x)
					}
				}
				set = kept
			}
		case 5:
			set = []int{}
		default:
			return nil, fmt.Errorf("unsupported command %d", code)
		}
	}
	return set, nil
}

func (s *Server) fieldsGet(def *modelDef, allfields, attributes any) (any, *rpcError) {
	only, err := stringSet(allfields)
	if err != nil {
		return nil, err
	}
	attrs, err := stringSet(attributes)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for _, f := range def.fields {
		if only != nil && !only[f.name] {
			continue
		}
		desc := map[string]any{
			"type": f.typ, "string": f.label, "required": f.required, "readonly": f.readonly || f.name == "id" || f.name == "display_name",
			"store": f.name != "display_name", "searchable": true, "sortable": f.typ != "many2many" && f.typ != "one2many" && f.name != "display_name",
		}
		if f.relation != "" {
			desc["relation"] = f.relation
		}
		if f.selection != nil {
			sel := make([]any, len(f.selection))
			for i, o := range f.selection {
				sel[i] = []any{o[0], o[1]}
			}
			desc["selection"] = sel
		}
		if attrs != nil {
			for k := range desc {
				if !attrs[k] {
					delete(desc, k)
				}
			}
		}
		out[f.name] = desc
	}
	return out, nil
}

func stringSet(v any) (map[string]bool, *rpcError) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if !x {
			return nil, nil
		}
	case []any:
		out := map[string]bool{}
		for _, e := range x {
			str, ok := e.(string)
			if !ok {
				return nil, pyError("TypeError", "expected a list of strings, got %s", pyRepr(v))
			}
			out[str] = true
		}
		return out, nil
	}
	return nil, pyError("TypeError", "expected a list of strings, got %s", pyRepr(v))
}

// messagePost is mail.thread.message_post on one record: it stores a
// mail.message linked to the record (model, res_id) and returns its id, as
// Odoo's @api.returns('mail.message', lambda m: m.id) does over RPC.
func (s *Server) messagePost(def *modelDef, uid int, ids []int, bound map[string]any) (any, *rpcError) {
	if s.creds[uid].level < def.read {
		return nil, accessError(def, "read", def.read)
	}
	if len(ids) != 1 {
		parts := make([]string, len(ids))
		for i, id := range ids {
			parts[i] = fmt.Sprint(id)
		}
		return nil, pyError("ValueError", "Expected singleton: %s(%s)", def.name, strings.Join(parts, ", "))
	}
	if err := s.missing(def, uid, ids); err != nil {
		return nil, err
	}
	str := func(k, def string) (string, *rpcError) {
		v, ok := bound[k]
		if !ok || v == nil || v == false {
			return def, nil
		}
		x, ok := v.(string)
		if !ok {
			return "", pyError("TypeError", "message_post() %s must be a string, not %s", k, pyType(v))
		}
		return x, nil
	}
	body, err := str("body", "")
	if err != nil {
		return nil, err
	}
	subject, err := str("subject", "")
	if err != nil {
		return nil, err
	}
	mtype, err := str("message_type", "notification")
	if err != nil {
		return nil, err
	}
	switch mtype {
	case "comment", "notification", "email", "auto_comment":
	default:
		return nil, pyError("ValueError", "Wrong value for mail.message.message_type: '%s'", mtype)
	}
	subtype, err := str("subtype_xmlid", "")
	if err != nil {
		return nil, err
	}
	switch subtype {
	case "", "mail.mt_note", "mail.mt_comment":
	default:
		return nil, pyError("ValueError", "External ID not found in the system: %s", subtype)
	}
	if subtype == "" && mtype == "comment" {
		subtype = "mail.mt_note"
	}
	id, ierr := s.insert("mail.message", map[string]any{"model": def.name, "res_id": ids[0], "body": body,
		"subject": subject, "message_type": mtype, "subtype_xmlid": subtype})
	if ierr != nil {
		return nil, toRPC(ierr)
	}
	return id, nil
}
