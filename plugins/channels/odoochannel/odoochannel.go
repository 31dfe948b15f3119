// Package odoochannel is the built-in SupportChannel that files each
// ticket in the partner's own Odoo (`switchboard plugin serve odoo`), over
// XML-RPC or JSON-2 through plugins/odoo/odooclient: a helpdesk.ticket when
// the database has a helpdesk (Odoo Enterprise's Helpdesk or OCA's
// helpdesk_mgmt on Community), otherwise a project.task.
//
// The two helpdesks require different fields (helpdesk_mgmt requires a
// description, for example), so the channel asks fields_get which fields
// are required and fills each one it can: text fields from the ticket, a
// many-to-one from the configured team or project, or the first record of
// the related model. A required field it cannot fill is a permanent error
// naming the field.
//
// # Settings
//
//	url       the partner's Odoo, e.g. https://erp.acme.example           required
//	database  database name (XML-RPC)                                      required for xmlrpc/auto
//	login     the user's login (XML-RPC)                                   required for xmlrpc/auto
//	api_key   the user's API key (or password over XML-RPC)                required
//	api       auto (default), xmlrpc or json2
//	team      helpdesk team name for new tickets (default: Odoo's choice)
//	project   project name for tasks (default: none)
//	timeout   one delivery's time limit (default 30s)
//
// A retried delivery finds the record it created before (the ticket id is
// in its name) instead of creating a second one.
package odoochannel

import (
	"context"
	"errors"
	"fmt"
	"html"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/plugins"
	"github.com/switchboard-dev/switchboard/plugins/channels"
	"github.com/switchboard-dev/switchboard/plugins/odoo/odooclient"
)

// Name is the channel type.
const Name = "odoo"

// BuiltinName is the built-in plugin that serves this channel ("odoo" is
// the Odoo Integration plugin).
const BuiltinName = "odoo-helpdesk"

// Models the channel writes to.
const (
	ModelHelpdesk = "helpdesk.ticket"
	ModelTask     = "project.task"
)

type config struct {
	client  *odooclient.Client
	url     string
	team    string
	project string
	timeout time.Duration
}

// Channel is the Odoo SupportChannel.
type Channel struct {
	log hclog.Logger

	mu  sync.Mutex
	cfg *config
}

var (
	_ plugins.SupportChannel = (*Channel)(nil)
	_ plugins.NoteDeliverer  = (*Channel)(nil)
)

// New returns an unconfigured Odoo channel.
func New(log hclog.Logger) *Channel {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Channel{log: log}
}

// Configure implements plugins.SupportChannel.
func (c *Channel) Configure(_ context.Context, settings map[string]string) error {
	s := channels.NewSettings(settings)
	raw := s.Required("url", "the partner's Odoo, e.g. https://erp.acme.example")
	db := s.String("database", "")
	login := s.String("login", "")
	key := s.Secret("api_key")
	apiName := s.String("api", "auto")
	cfg := &config{url: strings.TrimRight(raw, "/"), team: s.String("team", ""), project: s.String("project", ""),
		timeout: s.Duration("timeout", 30*time.Second)}
	api, err := odooclient.ParseAPI(apiName)
	if err != nil {
		s.Errorf("%v", err)
	}
	if key == "" {
		s.Errorf("api_key is required: an API key of the Odoo user that creates the tickets")
	}
	if raw != "" && key != "" && err == nil {
		cfg.client, err = odooclient.New(odooclient.Config{URL: raw, Database: db, Login: login, Secret: key, API: api,
			Timeout: cfg.timeout, UserAgent: "switchboard-support-odoo"})
		if err != nil {
			s.Errorf("%v", err)
		}
	}
	if err := s.Err(Name); err != nil {
		return err
	}
	c.mu.Lock()
	c.cfg = cfg
	c.mu.Unlock()
	return nil
}

func (c *Channel) config() (*config, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg == nil {
		return nil, channels.Permanentf("odoo channel is not configured")
	}
	return c.cfg, nil
}

// classify: wrong credentials, missing rights, a missing database and
// refused values will not fix themselves; the rest is retried.
func classify(err error) error {
	switch odooclient.KindOf(err) {
	case odooclient.KindCredentials, odooclient.KindAccess, odooclient.KindUnknownDatabase, odooclient.KindUser, odooclient.KindNoAPI:
		return channels.Permanent(err)
	}
	return err
}

// Deliver implements plugins.SupportChannel.
func (c *Channel) Deliver(ctx context.Context, t plugins.Ticket) (plugins.Receipt, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Receipt{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	model := ModelHelpdesk
	fields, err := cfg.client.FieldsGet(ctx, model, []string{"type", "required", "readonly", "relation", "string"})
	if errors.Is(err, odooclient.ErrMissingModel) {
		model = ModelTask
		fields, err = cfg.client.FieldsGet(ctx, model, []string{"type", "required", "readonly", "relation", "string"})
		if errors.Is(err, odooclient.ErrMissingModel) {
			return plugins.Receipt{}, channels.Permanentf("the partner's Odoo has neither a helpdesk (helpdesk.ticket) nor Project (project.task): install one of them")
		}
	}
	if err != nil {
		return plugins.Receipt{}, classify(fmt.Errorf("fields_get %s: %w", model, err))
	}
	name := fmt.Sprintf("%s [%s]", t.Subject, t.ID)
	// A retry after a lost answer finds what the first attempt created.
	ids, err := cfg.client.Search(ctx, model, odooclient.Domain{odooclient.Cond("name", "ilike", "["+t.ID+"]")}, odooclient.SearchOptions{Limit: 1})
	if err != nil {
		return plugins.Receipt{}, classify(fmt.Errorf("search %s: %w", model, err))
	}
	if len(ids) > 0 {
		return c.receipt(cfg, model, ids[0], "already filed"), nil
	}
	vals, err := c.values(ctx, cfg, model, fields, name, t)
	if err != nil {
		return plugins.Receipt{}, err
	}
	id, err := cfg.client.Create(ctx, model, vals)
	if err != nil {
		return plugins.Receipt{}, classify(fmt.Errorf("create %s: %w", model, err))
	}
	c.log.Info("ticket filed in Odoo", "ticket", t.ID, "model", model, "id", id)
	return c.receipt(cfg, model, id, "created"), nil
}

// DeliverNote implements plugins.NoteDeliverer: the note is posted as an
// internal note (message_post with message_type comment, subtype
// mail.mt_note) on the record the ticket created, named by the ticket's
// receipt ("model,id"). The delivery id goes into the body, so a retry
// finds the message it posted before and does not post it twice.
func (c *Channel) DeliverNote(ctx context.Context, n plugins.Note) (plugins.Receipt, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Receipt{}, err
	}
	model, id, err := parseRemoteID(n.TicketReceipt.RemoteID)
	if err != nil {
		return plugins.Receipt{}, channels.Permanentf("ticket %s: %v", n.TicketID, err)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	marker := "switchboard-delivery:" + n.DeliveryID
	found, err := cfg.client.Search(ctx, "mail.message", odooclient.Domain{
		odooclient.Cond("model", "=", model), odooclient.Cond("res_id", "=", id), odooclient.Cond("body", "ilike", marker),
	}, odooclient.SearchOptions{Limit: 1})
	if err != nil {
		return plugins.Receipt{}, classify(fmt.Errorf("search mail.message: %w", err))
	}
	if len(found) > 0 {
		return c.noteReceipt(cfg, model, id, found[0], "already posted"), nil
	}
	by := n.Author
	if by == "" {
		by = "switchboard"
	}
	body := fmt.Sprintf("<p>Note from %s, %s:</p><pre>%s</pre><p><small>%s</small></p>", html.EscapeString(by),
		n.CreatedAt.UTC().Format(time.RFC3339), html.EscapeString(n.Text), html.EscapeString(marker))
	res, err := cfg.client.Call(ctx, model, "message_post", []int64{id}, map[string]any{
		"body": body, "message_type": "comment", "subtype_xmlid": "mail.mt_note",
	})
	if err != nil {
		return plugins.Receipt{}, classify(fmt.Errorf("message_post on %s %d: %w", model, id, err))
	}
	msg, ok := toInt64(res)
	if !ok {
		return plugins.Receipt{}, fmt.Errorf("message_post on %s %d answered %v, not a message id", model, id, res)
	}
	c.log.Info("ticket note posted in Odoo", "ticket", n.TicketID, "note", n.NoteID, "model", model, "id", id, "message", msg)
	return c.noteReceipt(cfg, model, id, msg, "posted"), nil
}

func (c *Channel) noteReceipt(cfg *config, model string, id, msg int64, what string) plugins.Receipt {
	r := c.receipt(cfg, model, id, what)
	r.RemoteID = fmt.Sprintf("mail.message,%d", msg)
	r.Detail = fmt.Sprintf("%s as message %d on %s %d", what, msg, model, id)
	return r
}

// parseRemoteID reads the "model,id" a ticket's receipt carries.
func parseRemoteID(s string) (string, int64, error) {
	model, num, ok := strings.Cut(s, ",")
	id, err := strconv.ParseInt(num, 10, 64)
	if !ok || err != nil || id <= 0 || (model != ModelHelpdesk && model != ModelTask) {
		return "", 0, fmt.Errorf("the ticket's receipt %q does not name the Odoo record it created (want helpdesk.ticket,ID or project.task,ID)", s)
	}
	return model, id, nil
}

func toInt64(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case float64:
		return int64(x), x == float64(int64(x))
	case []any: // a recordset answered as a list of ids
		if len(x) == 1 {
			return toInt64(x[0])
		}
	}
	return 0, false
}

func (c *Channel) receipt(cfg *config, model string, id int64, what string) plugins.Receipt {
	return plugins.Receipt{RemoteID: fmt.Sprintf("%s,%d", model, id),
		URL:    fmt.Sprintf("%s/web#id=%d&model=%s&view_type=form", cfg.url, id, model),
		Detail: fmt.Sprintf("%s %s %d", what, model, id)}
}

// description renders the ticket as the HTML Odoo keeps in description.
func description(t plugins.Ticket) string {
	var b strings.Builder
	b.WriteString("<pre>")
	b.WriteString(html.EscapeString(channels.Summary(t)))
	b.WriteString("</pre>")
	if len(t.Diagnostics) > 0 {
		b.WriteString("<p>Diagnostics:</p><pre>")
		b.WriteString(html.EscapeString(string(t.Diagnostics)))
		b.WriteString("</pre>")
	}
	return b.String()
}

// values fills the new record: the ticket's own fields where the model has
// them, then every other required field it can.
func (c *Channel) values(ctx context.Context, cfg *config, model string, fields map[string]odooclient.Record, name string, t plugins.Ticket) (map[string]any, error) {
	vals := map[string]any{"name": name}
	set := func(field string, v any) {
		if _, ok := fields[field]; ok {
			vals[field] = v
		}
	}
	set("description", description(t))
	set("partner_name", t.Customer)
	if model == ModelHelpdesk && cfg.team != "" {
		if err := c.setRef(ctx, cfg, fields, vals, "team_id", cfg.team); err != nil {
			return nil, err
		}
	}
	if model == ModelTask && cfg.project != "" {
		if err := c.setRef(ctx, cfg, fields, vals, "project_id", cfg.project); err != nil {
			return nil, err
		}
	}
	var names []string
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		def := fields[f]
		if _, done := vals[f]; done || !def.Bool("required") || def.Bool("readonly") {
			continue
		}
		switch def.String("type") {
		case "char":
			vals[f] = t.Subject
		case "text", "html":
			vals[f] = description(t)
		case "many2one":
			rel := def.String("relation")
			ids, err := cfg.client.Search(ctx, rel, nil, odooclient.SearchOptions{Limit: 1})
			if err != nil {
				return nil, classify(fmt.Errorf("find a %s for the required field %s: %w", rel, f, err))
			}
			if len(ids) == 0 {
				return nil, channels.Permanentf("%s.%s is required and needs a %s, but there is none: create one in the partner's Odoo", model, f, rel)
			}
			vals[f] = ids[0]
		default:
			return nil, channels.Permanentf("%s.%s (%s, %q) is required and switchboard cannot fill it: give it a default in the partner's Odoo", model, f, def.String("type"), def.String("string"))
		}
	}
	return vals, nil
}

// setRef sets a many-to-one field to the record of its relation named name.
func (c *Channel) setRef(ctx context.Context, cfg *config, fields map[string]odooclient.Record, vals map[string]any, field, name string) error {
	def, ok := fields[field]
	if !ok {
		return nil
	}
	rel := def.String("relation")
	ids, err := cfg.client.Search(ctx, rel, odooclient.Domain{odooclient.Cond("name", "=", name)}, odooclient.SearchOptions{Limit: 1})
	if err != nil {
		return classify(fmt.Errorf("find %s %q: %w", rel, name, err))
	}
	if len(ids) == 0 {
		return channels.Permanentf("no %s named %q in the partner's Odoo: fix the channel's %s setting", rel, name, strings.TrimSuffix(field, "_id"))
	}
	vals[field] = ids[0]
	return nil
}

// Health implements plugins.SupportChannel: configured means ready (the
// partner's Odoo is judged by deliveries, not polled).
func (c *Channel) Health(context.Context) (plugins.Health, error) {
	cfg, err := c.config()
	if err != nil {
		return plugins.Health{State: "unconfigured", Detail: err.Error()}, nil
	}
	return plugins.Health{Healthy: true, State: "ready", Detail: "filing in " + cfg.url}, nil
}
