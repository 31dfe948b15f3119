package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleParses(t *testing.T) {
	c, err := Parse("/etc/switchboard/agent.toml", []byte(Example))
	if err != nil {
		t.Fatalf("the shipped example does not parse: %v", err)
	}
	if c.Registry.URL != "https://registry.example.com" || c.Outbox.MaxRecords != 10000 ||
		c.Sender.BatchSize != 500 || c.Sender.BackoffMax != 5*time.Minute ||
		c.Plugins.Settings["asterisk"]["ari_user"] != "switchboard" ||
		c.Plugins.Manifest != "/var/lib/switchboard/plugins.json" || c.Heartbeat.Interval != 0 {
		t.Fatalf("example parsed to %+v", c)
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("/etc/sb/agent.toml", []byte("[registry]\nurl = \"http://127.0.0.1:8420/\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		StateDir: DefaultStateDir, Socket: DefaultStateDir + "/agent.sock",
		Registry:  Registry{URL: "http://127.0.0.1:8420"},
		Licence:   Licence{PublicKeys: []string{DefaultStateDir + "/vendor.pub"}},
		Outbox:    Outbox{MaxRecords: 10000, FlushDeadline: 10 * time.Second},
		Sender:    Sender{BatchSize: 500, BackoffMin: time.Second, BackoffMax: 5 * time.Minute, RequestTimeout: 30 * time.Second},
		Heartbeat: Heartbeat{Jitter: 0.1},
		Plugins:   Plugins{Dir: DefaultStateDir + "/plugins", Manifest: DefaultStateDir + "/plugins.json", Settings: map[string]map[string]string{}},
		Log:       Log{Level: "info", Format: "text"},
	}
	if got := *c; !equal(got, want) {
		t.Fatalf("defaults\n got %+v\nwant %+v", got, want)
	}
}

func equal(a, b Config) bool {
	return strings.Join(a.Licence.PublicKeys, ",") == strings.Join(b.Licence.PublicKeys, ",") &&
		a.StateDir == b.StateDir && a.Socket == b.Socket && a.Registry == b.Registry &&
		a.Outbox == b.Outbox && a.Sender == b.Sender && a.Heartbeat == b.Heartbeat &&
		a.Plugins.Dir == b.Plugins.Dir && a.Plugins.Manifest == b.Plugins.Manifest &&
		len(a.Plugins.Settings) == len(b.Plugins.Settings) && a.Log == b.Log
}

func TestRelativePaths(t *testing.T) {
	c, err := Parse("/etc/sb/agent.toml", []byte("state_dir = \"state\"\n[registry]\nurl = \"https://r.example\"\n[plugins]\ndir = \"../plug\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.StateDir != "/etc/sb/state" || c.Socket != "/etc/sb/state/agent.sock" || c.Plugins.Dir != "/etc/plug" {
		t.Fatalf("paths: %+v", c)
	}
}

func TestErrorsNameKeyAndLine(t *testing.T) {
	cases := []struct {
		name, text string
		key        string
		line       int
		msg        string
	}{
		{"missing url", "state_dir = \"/x\"\n", "registry.url", 0, "required"},
		{"bad scheme", "[registry]\nurl = \"ftp://x\"\n", "registry.url", 2, "scheme"},
		{"unknown key", "[registry]\nurl = \"http://x\"\n\n[sender]\nbatch_sise = 3\n", "sender.batch_sise", 5, "unknown key"},
		{"unknown section", "[registry]\nurl = \"http://x\"\n[sendr]\nbatch_size = 3\n", "sendr", 3, "unknown key"},
		{"range", "[registry]\nurl = \"http://x\"\n[sender]\n# c\nbatch_size = 0\n", "sender.batch_size", 5, "between 1 and 10000"},
		{"bad duration", "[registry]\nurl = \"http://x\"\n[outbox]\nflush_deadline = \"soon\"\n", "outbox.flush_deadline", 4, "soon"},
		{"backoff order", "[registry]\nurl = \"http://x\"\n[sender]\nbackoff_min = \"10s\"\nbackoff_max = \"1s\"\n", "sender.backoff_max", 5, "backoff_min"},
		{"heartbeat", "[registry]\nurl = \"http://x\"\n[heartbeat]\ninterval = \"often\"\n", "heartbeat.interval", 4, "not a duration"},
		{"plugin scalar", "[registry]\nurl = \"http://x\"\n[plugins]\nasterisk = 3\n", "plugins.asterisk", 4, "table"},
		{"plugin nested", "[registry]\nurl = \"http://x\"\n[plugins.odoo]\nurl = \"u\"\nlist = [1]\n", "plugins.odoo.list", 5, "strings, numbers or booleans"},
		{"log level", "[registry]\nurl = \"http://x\"\n[log]\nlevel = \"loud\"\n", "log.level", 4, "trace"},
		{"syntax", "[registry]\nurl = \"http://x\n", "", 2, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("/etc/a.toml", []byte(c.text))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			if (c.key != "" && ce.Key != c.key) || ce.Line != c.line || !strings.Contains(ce.Msg, c.msg) {
				t.Fatalf("got key %q line %d msg %q (%v); want key %q line %d msg ~%q", ce.Key, ce.Line, ce.Msg, err, c.key, c.line, c.msg)
			}
			if c.line > 0 && !strings.Contains(err.Error(), "/etc/a.toml:") {
				t.Fatalf("error does not name file and line: %v", err)
			}
		})
	}
}

func TestTypeMismatchNamesKeyAndLine(t *testing.T) {
	_, err := Parse("/etc/a.toml", []byte("[registry]\nurl = \"http://x\"\n[sender]\nbatch_size = \"ten\"\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4") || !strings.Contains(err.Error(), "sender.batch_size") {
		t.Fatalf("got %v", err)
	}
}

// TestLoadRunningKeepsStateDir: on a reload the running state directory
// stays, and so do the defaults derived from it; keys set explicitly are
// taken from the file; the file's own state_dir is returned and checked.
func TestLoadRunningKeepsStateDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "agent.toml")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("state_dir = \"new\"\n[registry]\nurl = \"https://r.example\"\n[plugins]\nmanifest = \"/srv/plugins.json\"\n")
	c, fileDir, err := LoadRunning(path, "/var/lib/old")
	if err != nil {
		t.Fatal(err)
	}
	if fileDir != filepath.Join(dir, "new") || c.StateDir != "/var/lib/old" || c.Socket != "/var/lib/old/agent.sock" ||
		c.Plugins.Dir != "/var/lib/old/plugins" || c.Licence.PublicKeys[0] != "/var/lib/old/vendor.pub" ||
		c.Plugins.Manifest != "/srv/plugins.json" {
		t.Fatalf("file state_dir %q, config %+v", fileDir, c)
	}
	// Without the override the same file moves everything to the new dir.
	if c, err := Load(path); err != nil || c.Socket != filepath.Join(dir, "new", "agent.sock") {
		t.Fatalf("Load: %+v %v", c, err)
	}
	write("state_dir = \"\"\n[registry]\nurl = \"https://r.example\"\n")
	var ce *Error
	if _, _, err := LoadRunning(path, "/var/lib/old"); !errors.As(err, &ce) || ce.Key != "state_dir" || ce.Line != 1 {
		t.Fatalf("an empty state_dir on reload: %v", err)
	}
	if _, _, err := LoadRunning(path, ""); err == nil {
		t.Fatal("LoadRunning without a running state dir succeeded")
	}
}
