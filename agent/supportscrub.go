package agent

import (
	"crypto/ed25519"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// Redacted replaces anything secret in a support ticket.
const Redacted = "[redacted]"

// secretKeyRE matches names (JSON keys, log keys, setting names) whose
// values are never put in a ticket.
var secretKeyRE = regexp.MustCompile(`(?i)pass|secret|token|api_?key|apikey|private|credential|authori[sz]|cookie|session_?id|signature|licence_text|armou?red`)

// secretTextRE catches "password=…", "token: …" and the like inside free
// text (log messages, plugin health details, what a person typed).
var secretTextRE = regexp.MustCompile(`(?i)\b(password|passwd|pwd|secret|token|api[_-]?key|apikey|authorization|bearer)(\s*[=:]\s*|\s+)("[^"]*"|'[^']*'|[^\s,;&]+)`)

// userinfoRE catches credentials in URLs (scheme://user:pass@host).
var userinfoRE = regexp.MustCompile(`(://[^/\s:@]*:)[^@\s/]+@`)

// scrubber removes secrets from what goes into a ticket: values whose key
// looks secret, and every known secret value (the install key, plugin
// settings, credentials in the registry URL) wherever it appears.
type scrubber struct {
	values []string // longest first
}

// minSecretLen: shorter setting values ("true", "20") are not treated as
// secrets in free text, only under secret-looking keys.
const minSecretLen = 6

func newScrubber(key ed25519.PrivateKey, registryURL string, settings ...map[string]map[string]string) *scrubber {
	s := &scrubber{}
	add := func(v string) {
		if len(v) >= minSecretLen && !slices.Contains(s.values, v) {
			s.values = append(s.values, v)
		}
	}
	if len(key) == ed25519.PrivateKeySize {
		for _, b := range [][]byte{key, key.Seed()} {
			add(hex.EncodeToString(b))
			add(base64.StdEncoding.EncodeToString(b))
			add(base64.RawStdEncoding.EncodeToString(b))
			add(base64.URLEncoding.EncodeToString(b))
			add(base64.RawURLEncoding.EncodeToString(b))
		}
		// The key file is PKCS#8 PEM: its base64 body, whole and by line.
		if der, err := x509.MarshalPKCS8PrivateKey(key); err == nil {
			body := base64.StdEncoding.EncodeToString(der)
			add(body)
			for len(body) > 64 {
				add(body[:64])
				body = body[64:]
			}
			add(body)
		}
	}
	if u, err := url.Parse(registryURL); err == nil && u.User != nil {
		if p, ok := u.User.Password(); ok {
			add(p)
		}
		add(u.User.String())
	}
	// Plugin settings (config and manifest) are treated as secret as a
	// whole: they hold product credentials next to harmless values, and
	// a ticket has no need for any of them.
	for _, set := range settings {
		for _, kv := range set {
			for _, v := range kv {
				add(v)
				add(url.QueryEscape(v))
			}
		}
	}
	slices.SortFunc(s.values, func(a, b string) int { return len(b) - len(a) })
	return s
}

// text scrubs free text.
func (s *scrubber) text(v string) string {
	for _, secret := range s.values {
		if strings.Contains(v, secret) {
			v = strings.ReplaceAll(v, secret, Redacted)
		}
	}
	v = userinfoRE.ReplaceAllString(v, "${1}"+Redacted+"@")
	return secretTextRE.ReplaceAllString(v, "${1}${2}"+Redacted)
}

// value scrubs a decoded JSON value in place and returns it.
func (s *scrubber) value(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if secretKeyRE.MatchString(k) {
				if str, ok := e.(string); !ok || str != "" {
					x[k] = Redacted
				}
				continue
			}
			x[k] = s.value(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = s.value(e)
		}
		return x
	case string:
		return s.text(x)
	}
	return v
}

// object encodes v as JSON, scrubbed.
func (s *scrubber) object(v any) (json.RawMessage, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode diagnostics: %w", err)
	}
	var generic any
	if err := json.Unmarshal(raw, &generic); err != nil {
		return nil, fmt.Errorf("decode diagnostics: %w", err)
	}
	out, err := json.Marshal(s.value(generic))
	if err != nil {
		return nil, fmt.Errorf("encode diagnostics: %w", err)
	}
	return out, nil
}

// LogLine is one warning or error the agent logged.
type LogLine struct {
	At      time.Time `json:"at"`
	Level   string    `json:"level"`
	Logger  string    `json:"logger,omitempty"`
	Message string    `json:"message"`
}

// logRing keeps the agent's last warning and error lines for the
// diagnostics of support tickets. It is an hclog sink on the daemon's
// intercept logger, so every named sub-logger (sender, plugins, …) feeds it.
type logRing struct {
	mu    sync.Mutex
	size  int
	lines []LogLine
	next  int
	full  bool
}

func newLogRing(size int) *logRing { return &logRing{size: size, lines: make([]LogLine, size)} }

// Accept implements hclog.SinkAdapter. Values under secret-looking keys
// never even reach the ring.
func (r *logRing) Accept(name string, level hclog.Level, msg string, args ...any) {
	if level < hclog.Warn {
		return
	}
	var b strings.Builder
	b.WriteString(msg)
	for i := 0; i+1 < len(args); i += 2 {
		k := fmt.Sprint(args[i])
		v := fmt.Sprint(args[i+1])
		if secretKeyRE.MatchString(k) {
			v = Redacted
		}
		fmt.Fprintf(&b, " %s=%q", k, v)
	}
	line := LogLine{At: time.Now().UTC(), Level: level.String(), Logger: name, Message: b.String()}
	r.mu.Lock()
	r.lines[r.next] = line
	r.next = (r.next + 1) % r.size
	if r.next == 0 {
		r.full = true
	}
	r.mu.Unlock()
}

// Lines returns the kept lines, oldest first.
func (r *logRing) Lines() []LogLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.full {
		return slices.Clone(r.lines[:r.next])
	}
	return append(slices.Clone(r.lines[r.next:]), r.lines[:r.next]...)
}
