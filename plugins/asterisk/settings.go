package asterisk

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting names the adapter accepts from the plugin manifest / agent
// configuration ([plugins.asterisk]).
const (
	SettingURL             = "ari_url"           // http(s)://host:8088/ari (required)
	SettingWebsocketURL    = "ws_url"            // ws(s)://host:8088/ari/events (default: from ari_url)
	SettingUser            = "ari_user"          // ari.conf user (required)
	SettingPassword        = "ari_password"      // its password (this or ari_password_file)
	SettingPasswordFile    = "ari_password_file" // file holding the password
	SettingApp             = "ari_app"           // Stasis application name (default switchboard-<hostname>)
	SettingDistribution    = "distribution"      // FreePBX, VitalPBX … as the installer detected it
	SettingConnectTimeout  = "connect_timeout"   // one whole connection attempt (default 10s)
	SettingRequestTimeout  = "request_timeout"   // one REST call (default 5s)
	SettingPingInterval    = "ping_interval"     // keepalive ping (default 15s)
	SettingRefreshInterval = "refresh_interval"  // full re-read of endpoints and channels (default 5m)
	SettingBackoffInitial  = "backoff_initial"   // first reconnect delay (default 1s)
	SettingBackoffMax      = "backoff_max"       // longest reconnect delay (default 1m)
	SettingEventFilter     = "event_filter"      // ask Asterisk for the used event types only (default true)
)

var knownSettings = []string{
	SettingURL, SettingWebsocketURL, SettingUser, SettingPassword, SettingPasswordFile, SettingApp,
	SettingDistribution, SettingConnectTimeout, SettingRequestTimeout, SettingPingInterval,
	SettingRefreshInterval, SettingBackoffInitial, SettingBackoffMax, SettingEventFilter,
}

// Defaults of the timing settings.
const (
	DefaultConnectTimeout  = 10 * time.Second
	DefaultRequestTimeout  = 5 * time.Second
	DefaultPingInterval    = 15 * time.Second
	DefaultRefreshInterval = 5 * time.Minute
	DefaultBackoffInitial  = 1 * time.Second
	DefaultBackoffMax      = 1 * time.Minute
)

// maxPasswordFile bounds what is read from ari_password_file.
const maxPasswordFile = 4096

var appRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$`)

// Settings is the parsed, checked configuration of the adapter.
type Settings struct {
	URL             string // ARI base URL without trailing slash
	WebsocketURL    string // events websocket URL without query
	User, Password  string
	App             string
	Distribution    string
	ConnectTimeout  time.Duration
	RequestTimeout  time.Duration
	PingInterval    time.Duration
	RefreshInterval time.Duration
	BackoffInitial  time.Duration
	BackoffMax      time.Duration
	EventFilter     bool
}

// DefaultApp is the application name used when ari_app is not set:
// "switchboard-<hostname>", so two hosts sharing one Asterisk (or a
// FreePBX cluster) never take each other's websocket over.
func DefaultApp() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "host"
	}
	h = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '-'
	}, h)
	app := "switchboard-" + h
	if len(app) > 80 {
		app = app[:80]
	}
	return app
}

// ParseSettings checks settings and fills in defaults. Every error says
// which setting is wrong and what a right one looks like.
func ParseSettings(in map[string]string) (Settings, error) {
	for k := range in {
		if !slices.Contains(knownSettings, k) {
			return Settings{}, fmt.Errorf("unknown asterisk setting %q; known settings: %s", k, strings.Join(knownSettings, ", "))
		}
	}
	s := Settings{
		User:         strings.TrimSpace(in[SettingUser]),
		Distribution: strings.TrimSpace(in[SettingDistribution]),
		EventFilter:  true,
	}

	raw := strings.TrimSpace(in[SettingURL])
	if raw == "" {
		return Settings{}, fmt.Errorf("setting %s is missing: give the ARI base URL, e.g. http://127.0.0.1:8088/ari", SettingURL)
	}
	u, err := checkURL(SettingURL, raw, "http", "https")
	if err != nil {
		return Settings{}, err
	}
	s.URL = strings.TrimSuffix(u.String(), "/")

	if raw := strings.TrimSpace(in[SettingWebsocketURL]); raw != "" {
		wu, err := checkURL(SettingWebsocketURL, raw, "ws", "wss")
		if err != nil {
			return Settings{}, err
		}
		s.WebsocketURL = strings.TrimSuffix(wu.String(), "/")
	} else {
		// The library's default ignores the REST URL; derive it instead.
		wu := *u
		wu.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
		wu.Path = strings.TrimSuffix(u.Path, "/") + "/events"
		s.WebsocketURL = wu.String()
	}

	if s.User == "" {
		return Settings{}, fmt.Errorf("setting %s is missing: give the user of an ari.conf section with type = user", SettingUser)
	}
	pw, pwFile := in[SettingPassword], strings.TrimSpace(in[SettingPasswordFile])
	switch {
	case pw != "" && pwFile != "":
		return Settings{}, fmt.Errorf("settings %s and %s are both set: keep only one", SettingPassword, SettingPasswordFile)
	case pwFile != "":
		data, err := readSmallFile(pwFile)
		if err != nil {
			return Settings{}, fmt.Errorf("setting %s: %w", SettingPasswordFile, err)
		}
		pw = strings.TrimRight(string(data), "\r\n")
		if pw == "" {
			return Settings{}, fmt.Errorf("setting %s: %s is empty: write the ARI password into it (re-run the installer)", SettingPasswordFile, pwFile)
		}
	case pw == "":
		return Settings{}, fmt.Errorf("setting %s (or %s) is missing: give the password of ARI user %q", SettingPassword, SettingPasswordFile, s.User)
	}
	s.Password = pw

	s.App = strings.TrimSpace(in[SettingApp])
	if s.App == "" {
		s.App = DefaultApp()
	}
	if !appRE.MatchString(s.App) {
		return Settings{}, fmt.Errorf("setting %s %q must be 1-80 letters, digits, '.', '-' or '_', e.g. switchboard-pbx1", SettingApp, s.App)
	}

	durations := []struct {
		key      string
		dst      *time.Duration
		def, min time.Duration
	}{
		{SettingConnectTimeout, &s.ConnectTimeout, DefaultConnectTimeout, 100 * time.Millisecond},
		{SettingRequestTimeout, &s.RequestTimeout, DefaultRequestTimeout, 50 * time.Millisecond},
		{SettingPingInterval, &s.PingInterval, DefaultPingInterval, 50 * time.Millisecond},
		{SettingRefreshInterval, &s.RefreshInterval, DefaultRefreshInterval, 100 * time.Millisecond},
		{SettingBackoffInitial, &s.BackoffInitial, DefaultBackoffInitial, 10 * time.Millisecond},
		{SettingBackoffMax, &s.BackoffMax, DefaultBackoffMax, 10 * time.Millisecond},
	}
	for _, d := range durations {
		v := strings.TrimSpace(in[d.key])
		if v == "" {
			*d.dst = d.def
			continue
		}
		parsed, err := time.ParseDuration(v)
		if err != nil || parsed < d.min || parsed > 24*time.Hour {
			return Settings{}, fmt.Errorf("setting %s %q must be a duration between %s and 24h, e.g. %s", d.key, v, d.min, d.def)
		}
		*d.dst = parsed
	}
	if s.BackoffMax < s.BackoffInitial {
		return Settings{}, fmt.Errorf("setting %s (%s) is shorter than %s (%s)", SettingBackoffMax, s.BackoffMax, SettingBackoffInitial, s.BackoffInitial)
	}
	if v := strings.TrimSpace(in[SettingEventFilter]); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Settings{}, fmt.Errorf("setting %s %q must be true or false", SettingEventFilter, v)
		}
		s.EventFilter = b
	}
	return s, nil
}

func checkURL(key, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("setting %s %q is not a URL: %v", key, raw, err)
	}
	if !slices.Contains(schemes, u.Scheme) || u.Host == "" {
		return nil, fmt.Errorf("setting %s %q must be an absolute %s URL, e.g. %s://127.0.0.1:8088/ari", key, raw, strings.Join(schemes, " or "), schemes[0])
	}
	if u.User != nil {
		return nil, fmt.Errorf("setting %s must not carry credentials: put them in %s and %s", key, SettingUser, SettingPasswordFile)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("setting %s %q must not have a query or fragment", key, raw)
	}
	return u, nil
}

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read password file: %w (re-run the installer, or point the setting at the right file)", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return nil, fmt.Errorf("read password file %s: %w", path, err)
	}
	if len(data) > maxPasswordFile {
		return nil, fmt.Errorf("password file %s is larger than %d bytes: it should hold only the ARI password", path, maxPasswordFile)
	}
	return data, nil
}
