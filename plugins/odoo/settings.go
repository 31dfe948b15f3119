package odoo

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/plugins/odoo/odooclient"
)

// Setting keys the adapter reads (see the package documentation).
const (
	SettingURL            = "url"
	SettingDB             = "db"
	SettingUser           = "user"
	SettingPassword       = "password"
	SettingAPIKey         = "api_key"
	SettingPasswordFile   = "password_file"
	SettingAPIKeyFile     = "api_key_file"
	SettingTimeout        = "timeout"
	SettingAPI            = "api"
	SettingModulePrefixes = "module_prefixes"
	SettingModuleAuthors  = "module_authors"
)

// DefaultModulePrefixes is the module_prefixes value when the setting is
// absent: the vendor's modules are named switchboard_*.
const DefaultModulePrefixes = "switchboard_"

// SettingDoc documents one setting for `switchboard plugin describe` and
// the installer.
type SettingDoc struct {
	Key      string
	Required bool
	Secret   bool
	Default  string
	Help     string
}

// Settings lists every setting the adapter accepts.
func Settings() []SettingDoc {
	return []SettingDoc{
		{Key: SettingURL, Required: true, Help: "Odoo base URL, e.g. http://127.0.0.1:8069 (CLI flag --odoo-url)"},
		{Key: SettingDB, Help: "database name; required for XML-RPC (CLI flag --odoo-db)"},
		{Key: SettingUser, Help: "login of the Odoo user; required for XML-RPC (CLI flag --odoo-user)"},
		{Key: SettingAPIKey, Secret: true, Help: "API key of that user (preferred; the only secret JSON-2 accepts) (CLI flag --odoo-key)"},
		{Key: SettingPassword, Secret: true, Help: "password of that user, XML-RPC only; set api_key or password, not both"},
		{Key: SettingAPIKeyFile, Help: "file holding the API key instead of api_key (the installer writes odoo.secret, mode 0600)"},
		{Key: SettingPasswordFile, Help: "file holding the password instead of password"},
		{Key: SettingTimeout, Default: odooclient.DefaultTimeout.String(), Help: "time limit of one operation, a Go duration (10s, 1m)"},
		{Key: SettingAPI, Default: string(odooclient.APIAuto), Help: "auto, xmlrpc or json2: auto uses XML-RPC below Odoo 19 and JSON-2 from 19 on, or wherever XML-RPC is disabled"},
		{Key: SettingModulePrefixes, Default: DefaultModulePrefixes, Help: "comma-separated technical-name prefixes of the vendor modules to report"},
		{Key: SettingModuleAuthors, Help: "comma-separated author names (case-insensitive substring) of the vendor modules to report"},
	}
}

// config is the adapter's checked settings.
type config struct {
	client   odooclient.Config
	prefixes []string
	authors  []string
}

// parseSettings checks settings and says what is wrong.
func parseSettings(s map[string]string) (config, error) {
	known := map[string]bool{}
	for _, d := range Settings() {
		known[d.Key] = true
	}
	var unknown []string
	for k := range s {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		keys := make([]string, 0, len(known))
		for k := range known {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return config{}, fmt.Errorf("unknown odoo setting(s) %s; the odoo plugin knows: %s",
			strings.Join(unknown, ", "), strings.Join(keys, ", "))
	}
	var c config
	api, err := odooclient.ParseAPI(s[SettingAPI])
	if err != nil {
		return config{}, fmt.Errorf("setting %s: %w", SettingAPI, err)
	}
	c.client.API = api
	if _, err := odooclient.ParseURL(s[SettingURL]); err != nil {
		return config{}, fmt.Errorf("setting %s: %w", SettingURL, err)
	}
	c.client.URL = strings.TrimSpace(s[SettingURL])
	c.client.Database = strings.TrimSpace(s[SettingDB])
	c.client.Login = strings.TrimSpace(s[SettingUser])
	key, err := secretSetting(s, SettingAPIKey, SettingAPIKeyFile)
	if err != nil {
		return config{}, err
	}
	pw, err := secretSetting(s, SettingPassword, SettingPasswordFile)
	if err != nil {
		return config{}, err
	}
	switch {
	case key != "" && pw != "":
		return config{}, fmt.Errorf("set either %s or %s, not both (an API key is preferred)", SettingAPIKey, SettingPassword)
	case key == "" && pw == "":
		return config{}, fmt.Errorf("setting %s is empty: create an API key for the Odoo user (Preferences > Account Security) and set it", SettingAPIKey)
	case pw != "" && api == odooclient.APIJSON2:
		return config{}, fmt.Errorf("api json2 accepts only an API key: set %s instead of %s", SettingAPIKey, SettingPassword)
	}
	c.client.Secret = key + pw
	if api != odooclient.APIJSON2 {
		if c.client.Database == "" {
			return config{}, fmt.Errorf("setting %s is empty: name the Odoo database (db_name in odoo.conf)", SettingDB)
		}
		if c.client.Login == "" {
			return config{}, fmt.Errorf("setting %s is empty: name the Odoo user's login", SettingUser)
		}
	}
	if v := strings.TrimSpace(s[SettingTimeout]); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 || d > 10*time.Minute {
			return config{}, fmt.Errorf("setting %s %q must be a duration between 1ms and 10m, like 10s", SettingTimeout, v)
		}
		c.client.Timeout = d
	}
	prefixes, ok := s[SettingModulePrefixes]
	if !ok {
		prefixes = DefaultModulePrefixes
	}
	c.prefixes = splitList(prefixes)
	c.authors = splitList(s[SettingModuleAuthors])
	for _, p := range c.prefixes {
		if strings.ContainsAny(p, "%'\"\\") {
			return config{}, fmt.Errorf("setting %s: prefix %q may not contain %%, quotes or backslashes", SettingModulePrefixes, p)
		}
	}
	return c, nil
}

// maxSecretFile bounds what a secret file may hold: a key or password, not
// a file someone pointed at by mistake.
const maxSecretFile = 4096

// secretSetting returns the secret set inline under key or in the file named
// under fileKey (secrets kept out of the config file), not both.
func secretSetting(s map[string]string, key, fileKey string) (string, error) {
	inline, path := s[key], strings.TrimSpace(s[fileKey])
	if path == "" {
		return inline, nil
	}
	if inline != "" {
		return "", fmt.Errorf("set either %s or %s, not both", key, fileKey)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("setting %s: %w (the installer writes it; re-run it or fix the path)", fileKey, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return "", fmt.Errorf("setting %s: read %s: %w", fileKey, path, err)
	}
	if len(data) > maxSecretFile {
		return "", fmt.Errorf("setting %s: %s is larger than %d bytes: it should hold only the secret", fileKey, path, maxSecretFile)
	}
	secret := strings.TrimRight(string(data), "\r\n")
	if secret == "" {
		return "", fmt.Errorf("setting %s: %s is empty", fileKey, path)
	}
	return secret, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}
