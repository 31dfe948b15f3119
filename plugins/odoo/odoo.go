// Package odoo is the Odoo Integration plugin: it tells the agent which
// Odoo runs next to it (version, edition, database, the vendor's installed
// modules), how many seats it has (active internal users, reported as
// seats["odoo_users"]), whether it can reach it, and it writes the partner
// link into Odoo so that the vendor's Odoo modules can show it.
//
// It talks to Odoo through plugins/odoo/odooclient: XML-RPC (kolo/xmlrpc)
// for Odoo 16-18, JSON-2 for Odoo 19 and wherever XML-RPC is disabled.
//
// # Settings
//
// Configure takes these keys (unknown keys are refused, so a typo shows):
//
//	url              Odoo base URL, e.g. http://127.0.0.1:8069      (--odoo-url)  required
//	db               database name, db_name in odoo.conf            (--odoo-db)   required for XML-RPC
//	user             the Odoo user's login                          (--odoo-user) required for XML-RPC
//	api_key          that user's API key (preferred)                (--odoo-key)
//	password         that user's password, XML-RPC only; set api_key or password, not both
//	timeout          time limit of one operation, Go duration       default 10s
//	api              auto | xmlrpc | json2                          default auto
//	module_prefixes  comma-separated module name prefixes to report default switchboard_
//	module_authors   comma-separated author substrings to report    default none
//
// With api=auto the plugin asks /xmlrpc/2/common for the version and uses
// XML-RPC below Odoo 19, JSON-2 from 19 on (falling back to XML-RPC when
// JSON-2 refuses the secret, e.g. a password), and JSON-2 when XML-RPC
// answers 404 (Odoo 19 without its rpc module).
//
// The user needs read access to res.users and ir.module.module (any
// internal user has it); ApplyPartnerLink also needs write access to
// ir.config_parameter (Administration / Settings).
//
// # What it reports
//
// Facts: product "odoo", version the release ("17.0"), distribution the
// edition ("community" or "enterprise": "+e" in the server version, "e" at
// the end of server_version_info, or the web_enterprise module installed),
// build the full server version ("17.0+e"), and details: database, api,
// user, url, edition, modules (installed modules whose technical name starts
// with a module_prefixes entry or whose author contains a module_authors
// entry, as "name version" separated by ", "), modules_count, note.
//
// Health states: "connected"; "unreachable" (detail "unreachable since T:
// …"); "unauthorized" (wrong login or API key); "no_access" (the user lacks
// a group); "wrong_database"; "no_api" (no XML-RPC nor JSON-2 at the URL);
// "error"; "not_configured".
//
// ApplyPartnerLink writes the code into the ir.config_parameter
// switchboard.partner_code and the tier into switchboard.partner_tier,
// creating or updating them, then reads them back to confirm.
package odoo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/partnercode"
	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/odoo/odooclient"
)

// Name is the plugin's name in the manifest and on the CLI.
const Name = "odoo"

// Product is Facts.Product for Odoo.
const Product = "odoo"

// Config parameter keys written by ApplyPartnerLink.
const (
	ParamPartnerCode = "switchboard.partner_code"
	ParamPartnerTier = "switchboard.partner_tier"
)

// Health states.
const (
	StateConnected     = "connected"
	StateUnreachable   = "unreachable"
	StateUnauthorized  = "unauthorized"
	StateNoAccess      = "no_access"
	StateWrongDatabase = "wrong_database"
	StateNoAPI         = "no_api"
	StateError         = "error"
	StateNotConfigured = "not_configured"
)

// credentialsHint is what to do about a refused login.
const credentialsHint = "wrong login or API key (check the Odoo user and key in the agent config)"

// Adapter is the Odoo Integration plugin. Create it with New; it is safe
// for concurrent use.
type Adapter struct {
	log hclog.Logger
	now func() time.Time

	mu     sync.Mutex
	cfg    config
	client *odooclient.Client
	health plugins.Health
}

var _ plugins.Integration = (*Adapter)(nil)

// New returns an unconfigured adapter logging to log (a null logger when nil).
func New(log hclog.Logger) *Adapter {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	a := &Adapter{log: log, now: time.Now}
	a.health = plugins.Health{State: StateNotConfigured, Detail: "the odoo plugin has no settings yet", Since: a.now()}
	return a
}

// Configure checks and applies settings; it does not contact Odoo.
func (a *Adapter) Configure(_ context.Context, settings map[string]string) error {
	cfg, err := parseSettings(settings)
	if err != nil {
		return err
	}
	cfg.client.UserAgent = "switchboard-odoo-plugin"
	client, err := odooclient.New(cfg.client)
	if err != nil {
		return fmt.Errorf("odoo settings: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cfg, a.client = cfg, client
	a.health = plugins.Health{State: StateUnreachable, Detail: "not contacted yet", Since: a.now()}
	a.log.Info("configured", "url", client.URL(), "db", cfg.client.Database, "user", cfg.client.Login, "api", cfg.client.API)
	return nil
}

func (a *Adapter) current() (*odooclient.Client, config, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client == nil {
		return nil, config{}, errors.New("the odoo plugin is not configured: set url, db, user and api_key")
	}
	return a.client, a.cfg, nil
}

// Describe reports version, edition, database, vendor modules and seats.
func (a *Adapter) Describe(ctx context.Context) (plugins.Facts, error) {
	c, cfg, err := a.current()
	if err != nil {
		return plugins.Facts{}, err
	}
	ctx, cancel := leaveTimeToAnswer(ctx)
	defer cancel()
	f, err := describe(ctx, c, cfg)
	a.observe(c, err)
	if err != nil {
		return plugins.Facts{}, err
	}
	return f, nil
}

func describe(ctx context.Context, c *odooclient.Client, cfg config) (plugins.Facts, error) {
	if _, err := c.Session(ctx); err != nil {
		return plugins.Facts{}, err
	}
	// Ask for the version every time: an upgrade (or an edition change)
	// shows at once, and the call proves the server is there.
	vi, err := c.Version(ctx)
	if err != nil {
		return plugins.Facts{}, err
	}
	sess, err := c.Session(ctx) // Version may have dropped a stale session
	if err != nil {
		return plugins.Facts{}, err
	}
	users, err := c.SearchCount(ctx, "res.users", odooclient.Domain{
		odooclient.Cond("share", "=", false), odooclient.Cond("active", "=", true)})
	if err != nil {
		return plugins.Facts{}, fmt.Errorf("count active internal users: %w", err)
	}
	details := map[string]string{
		"database": sess.Database,
		"api":      string(sess.API),
		"url":      c.URL(),
	}
	if sess.Login != "" {
		details["user"] = sess.Login
	}
	if sess.Note != "" {
		details["note"] = sess.Note
	}
	mods, enterpriseModule, err := vendorModules(ctx, c, cfg)
	if err != nil {
		// Modules are a nice-to-have; the seats above are not.
		details["modules_error"] = err.Error()
	} else {
		details["modules_count"] = fmt.Sprint(len(mods))
		if len(mods) > 0 {
			details["modules"] = joinCapped(mods, plugins.MaxTextLen)
		}
	}
	edition := "community"
	if vi.Enterprise || enterpriseModule {
		edition = "enterprise"
	}
	details["edition"] = edition
	return plugins.Facts{
		Product:      Product,
		Version:      vi.Serie,
		Distribution: edition,
		Build:        vi.ServerVersion,
		Details:      details,
		Seats:        map[string]int64{plugins.SeatOdooUsers: users},
	}, nil
}

// vendorModules lists installed modules matching the filters ("name
// version"), and whether web_enterprise is installed.
func vendorModules(ctx context.Context, c *odooclient.Client, cfg config) ([]string, bool, error) {
	alts := []odooclient.Domain{{odooclient.Cond("name", "=", "web_enterprise")}}
	for _, p := range cfg.prefixes {
		// =like's "_" matches any character: the exact prefix check is below.
		alts = append(alts, odooclient.Domain{odooclient.Cond("name", "=like", p+"%")})
	}
	for _, a := range cfg.authors {
		alts = append(alts, odooclient.Domain{odooclient.Cond("author", "ilike", a)})
	}
	domain := append(odooclient.Domain{"&", odooclient.Cond("state", "=", "installed")}, odooclient.Or(alts...)...)
	recs, err := c.SearchRead(ctx, "ir.module.module", domain, []string{"name", "author", "latest_version"},
		odooclient.SearchOptions{Order: "name", Limit: 500})
	if err != nil {
		return nil, false, fmt.Errorf("list installed modules: %w", err)
	}
	var out []string
	enterprise := false
	for _, r := range recs {
		name := r.String("name")
		if name == "web_enterprise" {
			enterprise = true
		}
		if !matches(name, r.String("author"), cfg) {
			continue
		}
		entry := name
		if v := r.String("latest_version"); v != "" {
			entry += " " + v
		}
		out = append(out, entry)
	}
	slices.Sort(out)
	return out, enterprise, nil
}

func matches(name, author string, cfg config) bool {
	for _, p := range cfg.prefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	la := strings.ToLower(author)
	for _, a := range cfg.authors {
		if strings.Contains(la, strings.ToLower(a)) {
			return true
		}
	}
	return false
}

// joinCapped joins items with ", ", stopping before limit bytes with a
// count of what was left out.
func joinCapped(items []string, limit int) string {
	var b strings.Builder
	for i, it := range items {
		more := fmt.Sprintf(", … (%d more)", len(items)-i)
		sep := ""
		if i > 0 {
			sep = ", "
		}
		if b.Len()+len(sep)+len(it)+len(more) > limit {
			b.WriteString(more)
			break
		}
		b.WriteString(sep + it)
	}
	return b.String()
}

// Health checks that Odoo answers and the login works, with one cheap
// authenticated call.
func (a *Adapter) Health(ctx context.Context) (plugins.Health, error) {
	c, _, err := a.current()
	if err != nil {
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.health, nil
	}
	ctx, cancel := leaveTimeToAnswer(ctx)
	defer cancel()
	err = c.Check(ctx)
	return a.observe(c, err), nil
}

// leaveTimeToAnswer shortens the caller's deadline by a fifth, so that a
// silent Odoo ends our call in time to report "unreachable" to the host:
// a plugin that misses the host's own deadline is taken for hung and
// restarted.
func leaveTimeToAnswer(ctx context.Context) (context.Context, context.CancelFunc) {
	if dl, ok := ctx.Deadline(); ok {
		return context.WithTimeout(ctx, time.Until(dl)*4/5)
	}
	return context.WithCancel(ctx)
}

// observe records the outcome of a call and returns the health it implies.
// Since moves only when the state changes.
func (a *Adapter) observe(c *odooclient.Client, err error) plugins.Health {
	state, detail := classify(err)
	healthy := err == nil
	if healthy {
		if s, ok := c.CurrentSession(); ok {
			detail = fmt.Sprintf("Odoo %s, database %s, via %s", s.Version.ServerVersion, s.Database, s.API)
			if s.Login != "" {
				detail += " as " + s.Login
			}
			if s.Note != "" {
				detail += "; " + s.Note
			}
		}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.client != c {
		return a.health // reconfigured meanwhile
	}
	now := a.now()
	since := a.health.Since
	if a.health.State != state || a.health.Healthy != healthy || since.IsZero() {
		since = now
		if healthy {
			a.log.Info("odoo connected", "detail", detail)
		} else {
			a.log.Warn("odoo unhealthy", "state", state, "error", err)
		}
	}
	if state == StateUnreachable {
		detail = fmt.Sprintf("unreachable since %s: %s", since.UTC().Format(time.RFC3339), detail)
	}
	a.health = plugins.Health{Healthy: healthy, State: state, Detail: detail, Since: since}
	return a.health
}

// classify maps an error onto a health state and a detail for a person.
func classify(err error) (state, detail string) {
	if err == nil {
		return StateConnected, ""
	}
	msg := err.Error()
	if e, ok := odooclient.AsError(err); ok {
		msg = e.Message
		switch e.Kind {
		case odooclient.KindUnreachable:
			return StateUnreachable, msg + " (check that Odoo runs and the url setting)"
		case odooclient.KindCredentials:
			detail = credentialsHint
			if strings.Contains(e.Message, "Odoo says") {
				detail += ": " + e.Message
			}
			return StateUnauthorized, detail
		case odooclient.KindAccess:
			return StateNoAccess, msg
		case odooclient.KindUnknownDatabase:
			return StateWrongDatabase, msg
		case odooclient.KindNoAPI:
			return StateNoAPI, msg
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return StateUnreachable, msg
	}
	return StateError, msg
}

// ApplyPartnerLink writes the partner code and tier into Odoo's system
// parameters and reads them back.
func (a *Adapter) ApplyPartnerLink(ctx context.Context, code, tier string) (plugins.LinkResult, error) {
	pc, err := partnercode.Parse(code)
	if err != nil {
		return plugins.LinkResult{}, fmt.Errorf("partner code %q: %w", code, err)
	}
	switch tier {
	case "partner", "referral", "":
	default:
		return plugins.LinkResult{}, fmt.Errorf("partner tier %q is not partner or referral", tier)
	}
	c, _, err := a.current()
	if err != nil {
		return plugins.LinkResult{}, err
	}
	want := map[string]string{ParamPartnerCode: pc.String()}
	if tier != "" {
		want[ParamPartnerTier] = tier
	}
	changed, err := writeParams(ctx, c, want)
	if err == nil {
		err = confirmParams(ctx, c, want)
	}
	a.observe(c, err)
	if err != nil {
		return plugins.LinkResult{}, fmt.Errorf("write the partner link into Odoo: %w", err)
	}
	detail := fmt.Sprintf("%s = %s", ParamPartnerCode, pc)
	if tier != "" {
		detail += fmt.Sprintf(", %s = %s", ParamPartnerTier, tier)
	}
	if !changed {
		return plugins.LinkResult{Applied: false, Detail: "already set: " + detail}, nil
	}
	a.log.Info("partner link written into Odoo", "code", pc.String(), "tier", tier)
	return plugins.LinkResult{Applied: true, Detail: "written and read back: " + detail}, nil
}

func paramKeys(want map[string]string) []any {
	keys := make([]any, 0, len(want))
	for k := range want {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y any) int { return strings.Compare(x.(string), y.(string)) })
	return keys
}

// writeParams creates or updates each parameter; changed tells whether
// any value differed.
func writeParams(ctx context.Context, c *odooclient.Client, want map[string]string) (changed bool, err error) {
	recs, err := c.SearchRead(ctx, "ir.config_parameter", odooclient.Domain{odooclient.Cond("key", "in", paramKeys(want))},
		[]string{"key", "value"}, odooclient.SearchOptions{})
	if err != nil {
		return false, err
	}
	have := map[string]odooclient.Record{}
	for _, r := range recs {
		have[r.String("key")] = r
	}
	for _, k := range paramKeys(want) {
		key := k.(string)
		r, ok := have[key]
		switch {
		case !ok:
			if _, err := c.Create(ctx, "ir.config_parameter", map[string]any{"key": key, "value": want[key]}); err != nil {
				return changed, err
			}
			changed = true
		case r.String("value") != want[key]:
			if err := c.Write(ctx, "ir.config_parameter", []int64{r.ID()}, map[string]any{"value": want[key]}); err != nil {
				return changed, err
			}
			changed = true
		}
	}
	return changed, nil
}

// confirmParams reads the parameters back and compares.
func confirmParams(ctx context.Context, c *odooclient.Client, want map[string]string) error {
	recs, err := c.SearchRead(ctx, "ir.config_parameter", odooclient.Domain{odooclient.Cond("key", "in", paramKeys(want))},
		[]string{"key", "value"}, odooclient.SearchOptions{})
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	got := map[string]string{}
	for _, r := range recs {
		got[r.String("key")] = r.String("value")
	}
	for k, v := range want {
		if got[k] != v {
			return fmt.Errorf("read back %s = %q, wrote %q: another process changed it, or Odoo did not store it", k, got[k], v)
		}
	}
	return nil
}
