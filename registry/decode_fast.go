package registry

import (
	"bytes"
	"slices"
	"strconv"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// The heartbeat ingest path decodes every report of every batch, so it has
// a fast path: a hand-written parser for the report batches agents actually
// send, and a hand-written encoder for the canonical form stored. The fast
// parser accepts only a strict subset of what encoding/json accepts — exact
// lower-case field names, each at most once, no null, ASCII strings without
// escapes — and gives up on anything else, leaving it to encoding/json. So
// it never accepts a body encoding/json would refuse nor reads one
// differently; FuzzDecodeFastPath holds it to that, and holds
// appendReportJSON to json.Marshal's bytes.

// fastParser reads one report batch. Any method returning false means
// "not in the fast subset": the caller falls back to encoding/json.
type fastParser struct {
	b []byte
	i int
	// strs holds the strings made so far, for string to hand out again:
	// the reports of a batch repeat their kind, host facts and seat kinds,
	// so a batch of 100 allocates each once, not 100 times.
	strs [8]string
	next int
	// facts holds the batch's Facts, allocated together.
	facts []api.Facts
}

// string returns b as a string, one made before when it has the same bytes.
func (p *fastParser) string(b []byte) string {
	for _, s := range p.strs {
		if s == string(b) {
			return s
		}
	}
	s := string(b)
	p.strs[p.next] = s
	p.next = (p.next + 1) % len(p.strs)
	return s
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// byte consumes c after optional whitespace.
func (p *fastParser) byte(c byte) bool {
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// peek returns the next non-space byte without consuming it (0 at the end).
func (p *fastParser) peek() byte {
	p.ws()
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

// str reads a string of printable ASCII without escapes and returns its
// contents (aliasing the body).
func (p *fastParser) str() ([]byte, bool) {
	if !p.byte('"') {
		return nil, false
	}
	start := p.i
	for ; p.i < len(p.b); p.i++ {
		c := p.b[p.i]
		if plainJSON[c] || c == '<' || c == '>' || c == '&' {
			continue
		}
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			return s, true
		}
		return nil, false // an escape, a control character or non-ASCII: the slow path
	}
	return nil, false
}

// number reads a JSON integer literal (no fraction or exponent).
func (p *fastParser) number() ([]byte, bool) {
	p.ws()
	start := p.i
	if p.i < len(p.b) && p.b[p.i] == '-' {
		p.i++
	}
	digits := p.i
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
	}
	n := p.i - digits
	if n == 0 || (n > 1 && p.b[digits] == '0') {
		return nil, false
	}
	if p.i < len(p.b) {
		switch p.b[p.i] {
		case '.', 'e', 'E':
			return nil, false
		}
	}
	return p.b[start:p.i], true
}

func (p *fastParser) uint64() (uint64, bool) {
	lit, ok := p.number()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(string(lit), 10, 64)
	return v, err == nil
}

func (p *fastParser) int64(bits int) (int64, bool) {
	lit, ok := p.number()
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(string(lit), 10, bits)
	return v, err == nil
}

func (p *fastParser) bool() (bool, bool) {
	p.ws()
	rest := p.b[p.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		p.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		p.i += 5
		return false, true
	}
	return false, false
}

// time reads a string as (*time.Time).UnmarshalJSON does.
func (p *fastParser) time() (time.Time, bool) {
	p.ws()
	start := p.i
	if _, ok := p.str(); !ok {
		return time.Time{}, false
	}
	var t time.Time
	if t.UnmarshalJSON(p.b[start:p.i]) != nil {
		return time.Time{}, false
	}
	return t, true
}

// object reads {"key": value, …}, calling field for each key with the
// parser positioned at the value. field returns false to give up.
func (p *fastParser) object(field func(key []byte) bool) bool {
	if !p.byte('{') {
		return false
	}
	if p.byte('}') {
		return true
	}
	for {
		key, ok := p.str()
		if !ok || !p.byte(':') || !field(key) {
			return false
		}
		if p.byte('}') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// array reads [value, …], calling elem with the parser at each value.
func (p *fastParser) array(elem func() bool) bool {
	if !p.byte('[') {
		return false
	}
	if p.byte(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if p.byte(']') {
			return true
		}
		if !p.byte(',') {
			return false
		}
	}
}

// once records a field in seen and fails on a repeat: encoding/json merges
// repeated object fields, which the fast path does not imitate.
func once(seen *uint32, bit uint32) bool {
	if *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// parseBatchFast parses a report batch in the fast subset, or returns
// false. maxReports stops early on oversized batches (the caller's limit
// check then refuses them through the general path).
func parseBatchFast(body []byte, maxReports int) ([]api.Report, bool) {
	p := &fastParser{b: body}
	var reports []api.Report
	seenReports := false
	ok := p.object(func(key []byte) bool {
		if string(key) != "reports" || seenReports {
			return false
		}
		seenReports = true
		if p.peek() != '[' {
			return false
		}
		// Size the slices from a cheap count of reports (a guess: a string
		// may hold "seq" too, and append grows them when it is short).
		n := min(maxReports+1, 1+bytes.Count(body[p.i:], []byte(`"seq"`)))
		reports = make([]api.Report, 0, n)
		p.facts = make([]api.Facts, 0, n)
		return p.array(func() bool {
			if len(reports) >= maxReports {
				return false
			}
			reports = append(reports, api.Report{})
			return p.report(&reports[len(reports)-1])
		})
	})
	if !ok || !seenReports {
		return nil, false
	}
	p.ws()
	return reports, p.i == len(p.b)
}

func (p *fastParser) report(r *api.Report) bool {
	var seen uint32
	return p.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "seq":
			if ok = once(&seen, 1<<0); ok {
				r.Seq, ok = p.uint64()
			}
		case "kind":
			if ok = once(&seen, 1<<1); ok {
				var s []byte
				s, ok = p.str()
				r.Kind = api.ReportKind(p.string(s))
			}
		case "at":
			if ok = once(&seen, 1<<2); ok {
				r.At, ok = p.time()
			}
		case "facts":
			if ok = once(&seen, 1<<3); ok {
				if len(p.facts) < cap(p.facts) {
					p.facts = append(p.facts, api.Facts{})
					r.Facts = &p.facts[len(p.facts)-1]
				} else {
					r.Facts = new(api.Facts)
				}
				ok = p.parseFacts(r.Facts)
			}
		case "seats":
			if ok = once(&seen, 1<<4); ok {
				r.Seats = map[string]int64{}
				ok = p.object(func(k []byte) bool {
					v, ok := p.int64(64)
					r.Seats[p.string(k)] = v
					return ok
				})
			}
		case "plugins":
			if ok = once(&seen, 1<<5); ok {
				r.Plugins = []api.PluginHealth{}
				ok = p.array(func() bool {
					r.Plugins = append(r.Plugins, api.PluginHealth{})
					return p.plugin(&r.Plugins[len(r.Plugins)-1])
				})
			}
		case "licence_state":
			if ok = once(&seen, 1<<6); ok {
				var s []byte
				s, ok = p.str()
				r.LicenceState = string(s)
			}
		case "summary":
			if ok = once(&seen, 1<<7); ok {
				r.Summary = new(api.Summary)
				ok = p.summary(r.Summary)
			}
		}
		return ok
	})
}

func (p *fastParser) parseFacts(f *api.Facts) bool {
	var seen uint32
	return p.object(func(key []byte) bool {
		var dst *string
		var bit uint32
		switch string(key) {
		case "hostname":
			dst, bit = &f.Hostname, 1<<0
		case "machine_id":
			dst, bit = &f.MachineID, 1<<1
		case "os":
			dst, bit = &f.OS, 1<<2
		case "agent_version":
			dst, bit = &f.AgentVersion, 1<<3
		case "products":
			if !once(&seen, 1<<4) {
				return false
			}
			f.Products = []api.Product{}
			return p.array(func() bool {
				f.Products = append(f.Products, api.Product{})
				return p.product(&f.Products[len(f.Products)-1])
			})
		default:
			return false
		}
		return once(&seen, bit) && p.strInto(dst)
	})
}

func (p *fastParser) strInto(dst *string) bool {
	s, ok := p.str()
	*dst = p.string(s)
	return ok
}

func (p *fastParser) product(pr *api.Product) bool {
	var seen uint32
	return p.object(func(key []byte) bool {
		var dst *string
		var bit uint32
		switch string(key) {
		case "name":
			dst, bit = &pr.Name, 1<<0
		case "version":
			dst, bit = &pr.Version, 1<<1
		case "distribution":
			dst, bit = &pr.Distribution, 1<<2
		case "edition":
			dst, bit = &pr.Edition, 1<<3
		default:
			return false
		}
		return once(&seen, bit) && p.strInto(dst)
	})
}

func (p *fastParser) plugin(ph *api.PluginHealth) bool {
	var seen uint32
	return p.object(func(key []byte) bool {
		switch string(key) {
		case "name":
			return once(&seen, 1<<0) && p.strInto(&ph.Name)
		case "healthy":
			var ok bool
			if ok = once(&seen, 1<<1); ok {
				ph.Healthy, ok = p.bool()
			}
			return ok
		case "state":
			return once(&seen, 1<<2) && p.strInto(&ph.State)
		case "detail":
			return once(&seen, 1<<3) && p.strInto(&ph.Detail)
		}
		return false
	})
}

func (p *fastParser) summary(s *api.Summary) bool {
	var seen uint32
	return p.object(func(key []byte) bool {
		var ok bool
		switch string(key) {
		case "count":
			if ok = once(&seen, 1<<0); ok {
				var v int64
				v, ok = p.int64(strconv.IntSize)
				s.Count = int(v)
			}
		case "first_seq":
			if ok = once(&seen, 1<<1); ok {
				s.FirstSeq, ok = p.uint64()
			}
		case "last_seq":
			if ok = once(&seen, 1<<2); ok {
				s.LastSeq, ok = p.uint64()
			}
		case "first_at":
			if ok = once(&seen, 1<<3); ok {
				s.FirstAt, ok = p.time()
			}
		case "last_at":
			if ok = once(&seen, 1<<4); ok {
				s.LastAt, ok = p.time()
			}
		}
		return ok
	})
}

// appendReportJSON appends json.Marshal(r) to dst without reflection. It
// returns false for a report it does not encode byte for byte like
// encoding/json (strings outside ASCII, times out of Marshal's range); the
// caller then uses json.Marshal.
func appendReportJSON(dst []byte, r *api.Report) ([]byte, bool) {
	ok := true
	str := func(s string) {
		if ok {
			dst, ok = appendASCIIString(dst, s)
		}
	}
	tm := func(t time.Time) {
		if y := t.Year(); y < 0 || y > 9999 {
			ok = false // Marshal refuses these; let it say so
			return
		}
		if _, off := t.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
			ok = false
			return
		}
		dst = append(dst, '"')
		dst = t.AppendFormat(dst, time.RFC3339Nano)
		dst = append(dst, '"')
	}
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, r.Seq, 10)
	dst = append(dst, `,"kind":`...)
	str(string(r.Kind))
	dst = append(dst, `,"at":`...)
	tm(r.At)
	if f := r.Facts; f != nil {
		dst = append(dst, `,"facts":{`...)
		first := true
		field := func(name, v string) {
			if v == "" {
				return
			}
			if !first {
				dst = append(dst, ',')
			}
			first = false
			dst = append(dst, '"')
			dst = append(dst, name...)
			dst = append(dst, `":`...)
			str(v)
		}
		field("hostname", f.Hostname)
		field("machine_id", f.MachineID)
		field("os", f.OS)
		field("agent_version", f.AgentVersion)
		if len(f.Products) > 0 {
			if !first {
				dst = append(dst, ',')
			}
			dst = append(dst, `"products":[`...)
			for i, pr := range f.Products {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = append(dst, `{"name":`...)
				str(pr.Name)
				for _, o := range [...]struct{ name, v string }{{"version", pr.Version}, {"distribution", pr.Distribution}, {"edition", pr.Edition}} {
					if o.v != "" {
						dst = append(dst, `,"`...)
						dst = append(dst, o.name...)
						dst = append(dst, `":`...)
						str(o.v)
					}
				}
				dst = append(dst, '}')
			}
			dst = append(dst, ']')
		}
		dst = append(dst, '}')
	}
	if len(r.Seats) > 0 {
		dst = append(dst, `,"seats":{`...)
		var kinds [maxSeatKinds]string // sorted as json.Marshal sorts map keys
		keys := kinds[:0]
		for k := range r.Seats {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			str(k)
			dst = append(dst, ':')
			dst = strconv.AppendInt(dst, r.Seats[k], 10)
		}
		dst = append(dst, '}')
	}
	if len(r.Plugins) > 0 {
		dst = append(dst, `,"plugins":[`...)
		for i, ph := range r.Plugins {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"name":`...)
			str(ph.Name)
			dst = append(dst, `,"healthy":`...)
			dst = strconv.AppendBool(dst, ph.Healthy)
			if ph.State != "" {
				dst = append(dst, `,"state":`...)
				str(ph.State)
			}
			if ph.Detail != "" {
				dst = append(dst, `,"detail":`...)
				str(ph.Detail)
			}
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	if r.LicenceState != "" {
		dst = append(dst, `,"licence_state":`...)
		str(r.LicenceState)
	}
	if s := r.Summary; s != nil {
		dst = append(dst, `,"summary":{"count":`...)
		dst = strconv.AppendInt(dst, int64(s.Count), 10)
		dst = append(dst, `,"first_seq":`...)
		dst = strconv.AppendUint(dst, s.FirstSeq, 10)
		dst = append(dst, `,"last_seq":`...)
		dst = strconv.AppendUint(dst, s.LastSeq, 10)
		dst = append(dst, `,"first_at":`...)
		tm(s.FirstAt)
		dst = append(dst, `,"last_at":`...)
		tm(s.LastAt)
		dst = append(dst, '}')
	}
	dst = append(dst, '}')
	return dst, ok
}

const hexDigits = "0123456789abcdef"

// appendASCIIString appends s as encoding/json quotes it (with its HTML
// escaping), for ASCII s; false for anything else.
func appendASCIIString(dst []byte, s string) ([]byte, bool) {
	dst = append(dst, '"')
	start := 0 // s[start:i] is plain and not copied yet
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainJSON[c] {
			continue
		}
		if c >= 0x80 {
			return dst, false
		}
		dst = append(dst, s[start:i]...)
		start = i + 1
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default: // other control characters, and < > & as encoding/json escapes them
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), true
}

// plainJSON marks the bytes encoding/json writes as they are inside a
// string: printable ASCII but for the quote, the backslash and < > &.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = true
	}
	for _, c := range `"\<>&` {
		t[c] = false
	}
	return t
}()
