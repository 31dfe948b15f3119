package odoo

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// node is a parsed domain expression.
type node struct {
	op       string // "&", "|", "!", "leaf", "true", "false"
	children []*node
	field    string
	operator string
	value    any
}

var domainOperators = map[string]bool{
	"=": true, "!=": true, "<>": true, "<": true, ">": true, "<=": true, ">=": true,
	"in": true, "not in": true, "like": true, "not like": true, "ilike": true, "not ilike": true,
	"=like": true, "=ilike": true,
}

// parseDomain reads Odoo's prefix-notation domain; consecutive terms are
// implicitly and-ed.
func parseDomain(domain any) (*node, *rpcError) {
	if domain == nil || domain == false {
		return &node{op: "true"}, nil
	}
	items, ok := domain.([]any)
	if !ok {
		return nil, pyError("ValueError", "Invalid domain: %s", pyRepr(domain))
	}
	var terms []*node
	rest := items
	for len(rest) > 0 {
		var n *node
		var err *rpcError
		n, rest, err = parseTerm(rest)
		if err != nil {
			return nil, err
		}
		terms = append(terms, n)
	}
	if len(terms) == 0 {
		return &node{op: "true"}, nil
	}
	out := terms[0]
	for _, t := range terms[1:] {
		out = &node{op: "&", children: []*node{out, t}}
	}
	return out, nil
}

func parseTerm(items []any) (*node, []any, *rpcError) {
	if len(items) == 0 {
		return nil, nil, pyError("ValueError", "Domain ends too early: an operator lacks its operands")
	}
	switch t := items[0].(type) {
	case string:
		switch t {
		case "&", "|":
			a, rest, err := parseTerm(items[1:])
			if err != nil {
				return nil, nil, err
			}
			b, rest, err := parseTerm(rest)
			if err != nil {
				return nil, nil, err
			}
			return &node{op: t, children: []*node{a, b}}, rest, nil
		case "!":
			a, rest, err := parseTerm(items[1:])
			if err != nil {
				return nil, nil, err
			}
			return &node{op: "!", children: []*node{a}}, rest, nil
		}
		return nil, nil, pyError("ValueError", "Invalid leaf %s", pyRepr(t))
	case []any:
		if len(t) != 3 {
			return nil, nil, pyError("ValueError", "Invalid leaf %s", pyRepr(t))
		}
		op, ok := t[1].(string)
		if !ok || !domainOperators[strings.ToLower(op)] {
			return nil, nil, pyError("ValueError", "Invalid leaf %s", pyRepr(t))
		}
		op = strings.ToLower(op)
		if op == "<>" {
			op = "!="
		}
		// (1, '=', 1) and (0, '=', 1) are Odoo's TRUE_LEAF and FALSE_LEAF.
		if n, isInt := t[0].(int); isInt {
			if v, ok := t[2].(int); ok && op == "=" && v == 1 && (n == 0 || n == 1) {
				if n == 1 {
					return &node{op: "true"}, items[1:], nil
				}
				return &node{op: "false"}, items[1:], nil
			}
			return nil, nil, pyError("ValueError", "Invalid leaf %s", pyRepr(t))
		}
		field, ok := t[0].(string)
		if !ok || field == "" {
			return nil, nil, pyError("ValueError", "Invalid leaf %s", pyRepr(t))
		}
		return &node{op: "leaf", field: field, operator: op, value: t[2]}, items[1:], nil
	}
	return nil, nil, pyError("ValueError", "Invalid leaf %s", pyRepr(items[0]))
}

// mentions reports whether a leaf on field appears in the domain.
func (n *node) mentions(field string) bool {
	if n.op == "leaf" {
		return n.field == field || strings.HasPrefix(n.field, field+".")
	}
	for _, c := range n.children {
		if c.mentions(field) {
			return true
		}
	}
	return false
}

// check validates field names against the model before evaluation.
func (s *Server) checkDomain(def *modelDef, n *node) *rpcError {
	if n.op != "leaf" {
		for _, c := range n.children {
			if err := s.checkDomain(def, c); err != nil {
				return err
			}
		}
		return nil
	}
	head, rest, dotted := strings.Cut(n.field, ".")
	f := def.field(head)
	if f == nil {
		return pyError("ValueError", "Invalid field %s on model %s", pyRepr(head), pyRepr(def.name))
	}
	if dotted {
		if f.relation == "" {
			return pyError("ValueError", "Invalid field %s on model %s", pyRepr(n.field), pyRepr(def.name))
		}
		sub := s.defs[f.relation]
		if sub == nil {
			return pyError("KeyError", "%s", pyRepr(f.relation))
		}
		return s.checkDomain(sub, &node{op: "leaf", field: rest})
	}
	return nil
}

func (s *Server) match(def *modelDef, rec map[string]any, n *node) bool {
	switch n.op {
	case "true":
		return true
	case "false":
		return false
	case "&":
		return s.match(def, rec, n.children[0]) && s.match(def, rec, n.children[1])
	case "|":
		return s.match(def, rec, n.children[0]) || s.match(def, rec, n.children[1])
	case "!":
		return !s.match(def, rec, n.children[0])
	}
	head, rest, dotted := strings.Cut(n.field, ".")
	f := def.field(head)
	val := rec[head]
	if head == "display_name" {
		val = s.displayName(def, rec)
	}
	if dotted {
		sub := s.tables[f.relation]
		if sub == nil {
			return false
		}
		for _, id := range relIDs(val) {
			if r := sub.rows[id]; r != nil && s.match(sub.def, r, &node{op: "leaf", field: rest, operator: n.operator, value: n.value}) {
				return true
			}
		}
		return strings.HasPrefix(n.operator, "not") || n.operator == "!="
	}
	return s.leafMatch(f, val, n.operator, n.value)
}

func relIDs(v any) []int {
	switch x := v.(type) {
	case int:
		return []int{x}
	case []int:
		return x
	}
	return nil
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case bool:
		return !x
	case string:
		return x == ""
	case []int:
		return len(x) == 0
	}
	return false
}

// leafMatch applies one comparison the way Odoo's SQL would.
func (s *Server) leafMatch(f *fieldDef, val any, op string, want any) bool {
	switch op {
	case "=", "!=":
		eq := s.equal(f, val, want)
		if op == "=" {
			return eq
		}
		return !eq
	case "in", "not in":
		list, ok := want.([]any)
		if !ok {
			list = []any{want}
		}
		found := false
		for _, w := range list {
			if s.equal(f, val, w) {
				found = true
				break
			}
		}
		if op == "in" {
			return found
		}
		return !found
	case "like", "ilike", "=like", "=ilike", "not like", "not ilike":
		pat, ok := want.(string)
		if !ok {
			if want == false && (op == "ilike" || op == "like") {
				return isEmpty(val)
			}
			pat = fmt.Sprint(want)
		}
		var subject []string
		if f.typ == "many2one" || f.typ == "many2many" || f.typ == "one2many" {
			for _, id := range relIDs(val) {
				if t := s.tables[f.relation]; t != nil && t.rows[id] != nil {
					subject = append(subject, s.displayName(t.def, t.rows[id]))
				}
			}
		} else if str, ok := val.(string); ok {
			subject = []string{str}
		}
		base := strings.TrimPrefix(strings.TrimPrefix(op, "not "), "=")
		exact := strings.HasPrefix(op, "=")
		re := likeRegexp(pat, exact, base == "ilike")
		found := false
		for _, sub := range subject {
			if re.MatchString(sub) {
				found = true
				break
			}
		}
		if strings.HasPrefix(op, "not ") {
			return !found
		}
		return found
	case "<", ">", "<=", ">=":
		if isEmpty(val) && f.typ != "integer" && f.typ != "float" && f.typ != "boolean" {
			return false
		}
		c, ok := compare(val, want)
		if !ok {
			return false
		}
		switch op {
		case "<":
			return c < 0
		case ">":
			return c > 0
		case "<=":
			return c <= 0
		}
		return c >= 0
	}
	return false
}

func (s *Server) equal(f *fieldDef, val, want any) bool {
	if want == false || want == nil {
		if f.typ == "boolean" {
			return val != true
		}
		if f.typ == "integer" || f.typ == "float" {
			return val == nil
		}
		return isEmpty(val)
	}
	switch f.typ {
	case "many2many", "one2many":
		w, ok := toInt(want)
		if !ok {
			return false
		}
		for _, id := range relIDs(val) {
			if id == w {
				return true
			}
		}
		return false
	case "boolean":
		return (val == true) == (want == true)
	}
	c, ok := compare(val, want)
	return ok && c == 0
}

func toInt(v any) (int, bool) {
	switch x := v.(type) {
	case int:
		return x, true
	case float64:
		if x == float64(int(x)) {
			return int(x), true
		}
	}
	return 0, false
}

// compare orders two scalar values of compatible types.
func compare(a, b any) (int, bool) {
	if ai, ok := toNumber(a); ok {
		if bi, ok := toNumber(b); ok {
			switch {
			case ai < bi:
				return -1, true
			case ai > bi:
				return 1, true
			}
			return 0, true
		}
		return 0, false
	}
	as, ok1 := a.(string)
	bs, ok2 := b.(string)
	if ok1 && ok2 {
		return strings.Compare(as, bs), true
	}
	return 0, false
}

func toNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, true
	}
	return 0, false
}

// likeRegexp turns a SQL LIKE pattern into a regexp. like/ilike wrap the
// value in % as Odoo does; =like/=ilike use it as given.
func likeRegexp(pat string, exact, fold bool) *regexp.Regexp {
	var sb strings.Builder
	if fold {
		sb.WriteString("(?is)")
	} else {
		sb.WriteString("(?s)")
	}
	sb.WriteString("^")
	if !exact {
		sb.WriteString(".*")
	}
	for _, r := range pat {
		switch r {
		case '%':
			sb.WriteString(".*")
		case '_':
			sb.WriteString(".")
		default:
			sb.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	if !exact {
		sb.WriteString(".*")
	}
	sb.WriteString("$")
	return regexp.MustCompile(sb.String())
}

type orderKey struct {
	field string
	desc  bool
}

// parseOrder checks an order spec like "name asc, id desc".
func parseOrder(def *modelDef, spec string) ([]orderKey, *rpcError) {
	var out []orderKey
	for _, part := range strings.Split(spec, ",") {
		words := strings.Fields(part)
		if len(words) == 0 || len(words) > 3 {
			return nil, invalidOrder(spec)
		}
		k := orderKey{field: words[0]}
		if len(words) >= 2 {
			switch strings.ToLower(words[1]) {
			case "asc":
			case "desc":
				k.desc = true
			default:
				return nil, invalidOrder(spec)
			}
		}
		f := def.field(k.field)
		if f == nil || f.typ == "many2many" || f.typ == "one2many" {
			return nil, invalidOrder(spec)
		}
		out = append(out, k)
	}
	return out, nil
}

func invalidOrder(spec string) *rpcError {
	return pyError("ValueError", "Invalid \"order\" specified (%s). A valid \"order\" specification is a comma-separated list of valid field names (optionally followed by asc/desc for the direction)", spec)
}

// sortRecords orders records like PostgreSQL: NULLs last ascending, first
// descending; many2one by the related id; id breaks ties.
func (s *Server) sortRecords(def *modelDef, recs []map[string]any, keys []orderKey) {
	sort.SliceStable(recs, func(i, j int) bool {
		for _, k := range keys {
			a, b := recs[i][k.field], recs[j][k.field]
			if k.field == "display_name" {
				a, b = s.displayName(def, recs[i]), s.displayName(def, recs[j])
			}
			an, bn := a == nil, b == nil
			if an || bn {
				if an == bn {
					continue
				}
				// NULL is larger than any value in PostgreSQL.
				return bn != k.desc
			}
			if ab, ok := a.(bool); ok {
				bb, _ := b.(bool)
				if ab == bb {
					continue
				}
				return (!ab) != k.desc
			}
			c, ok := compare(a, b)
			if !ok || c == 0 {
				continue
			}
			return (c < 0) != k.desc
		}
		return recs[i]["id"].(int) < recs[j]["id"].(int)
	})
}
