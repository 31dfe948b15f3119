package asterisk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSettings(t *testing.T) {
	base := map[string]string{SettingURL: "https://pbx.example:8089/ari/", SettingUser: "switchboard", SettingPassword: "s3cret"}
	s, err := ParseSettings(base)
	if err != nil {
		t.Fatal(err)
	}
	if s.URL != "https://pbx.example:8089/ari" || s.WebsocketURL != "wss://pbx.example:8089/ari/events" {
		t.Fatalf("urls %q %q (the websocket URL must follow ari_url)", s.URL, s.WebsocketURL)
	}
	if !strings.HasPrefix(s.App, "switchboard-") || s.RequestTimeout != DefaultRequestTimeout || !s.EventFilter {
		t.Fatalf("defaults %+v", s)
	}

	pwFile := filepath.Join(t.TempDir(), "ari.secret")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = ParseSettings(map[string]string{SettingURL: "http://127.0.0.1:8088/ari", SettingUser: "u", SettingPasswordFile: pwFile,
		SettingWebsocketURL: "ws://127.0.0.1:8088/ari/events", SettingPingInterval: "30s", SettingEventFilter: "false"})
	if err != nil || s.Password != "from-file" || s.PingInterval != 30*time.Second || s.EventFilter {
		t.Fatalf("%+v %v", s, err)
	}

	bad := map[string]struct {
		settings map[string]string
		want     string
	}{
		"no url":         {with(base, SettingURL, ""), "ari_url is missing"},
		"ftp url":        {with(base, SettingURL, "ftp://x/ari"), "absolute http or https URL"},
		"relative url":   {with(base, SettingURL, "/ari"), "absolute http or https URL"},
		"creds in url":   {with(base, SettingURL, "http://u:p@x/ari"), "must not carry credentials"},
		"http ws url":    {with(base, SettingWebsocketURL, "http://x/ari/events"), "ws or wss"},
		"no user":        {with(base, SettingUser, ""), "ari_user is missing"},
		"no password":    {with(base, SettingPassword, ""), "ari_password (or ari_password_file) is missing"},
		"two passwords":  {with(base, SettingPasswordFile, pwFile), "keep only one"},
		"missing file":   {with(base, SettingPassword, "", SettingPasswordFile, "/nonexistent/ari.secret"), "re-run the installer"},
		"bad app":        {with(base, SettingApp, "my app"), "ari_app"},
		"bad duration":   {with(base, SettingRequestTimeout, "soon"), "request_timeout"},
		"tiny duration":  {with(base, SettingPingInterval, "1ns"), "ping_interval"},
		"backoff order":  {with(base, SettingBackoffInitial, "2m", SettingBackoffMax, "1m"), "shorter than"},
		"bad bool":       {with(base, SettingEventFilter, "maybe"), "true or false"},
		"unknown":        {with(base, "ari_pasword", "x"), `unknown asterisk setting "ari_pasword"`},
		"query in url":   {with(base, SettingURL, "http://x/ari?api_key=a:b"), "query"},
		"empty pw file":  {with(base, SettingPassword, "", SettingPasswordFile, emptyFile(t)), "is empty"},
		"huge pw file":   {with(base, SettingPassword, "", SettingPasswordFile, bigFile(t)), "larger than"},
		"not a url":      {with(base, SettingURL, "http://[::1"), "not a URL"},
		"ws url has key": {with(base, SettingWebsocketURL, "ws://x/ari/events?app=a"), "query"},
	}
	for name, c := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := ParseSettings(c.settings)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func emptyFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "empty")
	if err := os.WriteFile(p, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func bigFile(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, maxPasswordFile+10), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultAppIsHostSpecific(t *testing.T) {
	app := DefaultApp()
	if !appRE.MatchString(app) || !strings.HasPrefix(app, "switchboard-") {
		t.Fatalf("default app %q is not a valid application name", app)
	}
	if h, err := os.Hostname(); err == nil && len(h) < 60 && appRE.MatchString(h) && app != "switchboard-"+h {
		t.Fatalf("default app %q for host %q", app, h)
	}
}
