package odoo

import (
	"fmt"
	"sort"
	"strings"
)

// access levels, each including the ones below it.
type level int

const (
	levelPortal level = iota // share users (portal, public)
	levelUser                // internal users (base.group_user)
	levelSystem              // settings administrators (base.group_system)
)

func (l level) group() string {
	if l == levelSystem {
		return "Administration / Settings"
	}
	return "User types / Internal User"
}

type fieldDef struct {
	name, typ, label string
	relation         string
	required         bool
	readonly         bool
	selection        [][2]string
	def              any // default on create
}

type modelDef struct {
	name, label string
	// modules that provide the model; it exists when one is installed
	// (none: always there, part of base).
	modules  []string
	fields   []fieldDef
	byName   map[string]*fieldDef
	read     level
	write    level
	order    string
	nameFrom string // field used for display_name
}

func (m *modelDef) field(name string) *fieldDef { return m.byName[name] }

func newModel(name, label string, read, write level, order, nameFrom string, modules []string, fields ...fieldDef) *modelDef {
	m := &modelDef{name: name, label: label, modules: modules, read: read, write: write, order: order, nameFrom: nameFrom, byName: map[string]*fieldDef{}}
	all := append([]fieldDef{{name: "id", typ: "integer", label: "ID", readonly: true}}, fields...)
	all = append(all, fieldDef{name: "display_name", typ: "char", label: "Display Name", readonly: true})
	m.fields = all
	for i := range m.fields {
		m.byName[m.fields[i].name] = &m.fields[i]
	}
	return m
}

func char(name, label string) fieldDef { return fieldDef{name: name, typ: "char", label: label} }
func text(name, label string) fieldDef { return fieldDef{name: name, typ: "text", label: label} }
func boolean(name, label string, def bool) fieldDef {
	return fieldDef{name: name, typ: "boolean", label: label, def: def}
}
func m2o(name, label, rel string) fieldDef {
	return fieldDef{name: name, typ: "many2one", label: label, relation: rel}
}
func required(f fieldDef) fieldDef { f.required = true; return f }

var priorities = [][2]string{{"0", "Low priority"}, {"1", "Medium priority"}, {"2", "High priority"}, {"3", "Urgent"}}

// modelDefs builds the models of one edition. helpdesk.ticket comes from
// Odoo's Helpdesk app on Enterprise and from OCA's helpdesk_mgmt on
// Community (Odoo Community has no helpdesk); their fields differ.
func modelDefs(edition string) map[string]*modelDef {
	defs := []*modelDef{
		newModel("res.users", "User", levelUser, levelSystem, "name, login", "name", nil,
			required(char("name", "Name")), required(char("login", "Login")), char("email", "Email"),
			boolean("active", "Active", true), boolean("share", "Share User", false),
			m2o("partner_id", "Related Partner", "res.partner"),
			fieldDef{name: "login_date", typ: "datetime", label: "Latest authentication", readonly: true}),
		newModel("res.partner", "Contact", levelUser, levelUser, "name, id desc", "name", nil,
			char("name", "Name"), char("email", "Email"), char("phone", "Phone"), char("ref", "Reference"),
			char("street", "Street"), char("city", "City"), boolean("is_company", "Is a Company", false),
			boolean("active", "Active", true), m2o("parent_id", "Related Company", "res.partner")),
		newModel("ir.config_parameter", "System Parameter", levelSystem, levelSystem, "key", "key", nil,
			required(char("key", "Key")), required(text("value", "Value"))),
		newModel("ir.module.module", "Module", levelUser, levelSystem, "name", "shortdesc", nil,
			required(char("name", "Technical Name")), char("shortdesc", "Module Name"), char("author", "Author"),
			char("summary", "Summary"), char("latest_version", "Latest Version"),
			boolean("application", "Application", false),
			fieldDef{name: "state", typ: "selection", label: "Status", readonly: true, def: "uninstalled",
				selection: [][2]string{{"uninstallable", "Uninstallable"}, {"uninstalled", "Not Installed"}, {"installed", "Installed"},
					{"to upgrade", "To be upgraded"}, {"to remove", "To be removed"}, {"to install", "To be installed"}}}),
		// mail.message holds what message_post stores. subtype_xmlid
		// stands in for Odoo's subtype_id (a mail.message.subtype).
		newModel("mail.message", "Message", levelUser, levelSystem, "id desc", "subject", nil,
			fieldDef{name: "body", typ: "html", label: "Contents"}, char("subject", "Subject"),
			char("model", "Related Document Model"), fieldDef{name: "res_id", typ: "integer", label: "Related Document ID"},
			fieldDef{name: "message_type", typ: "selection", label: "Type", def: "comment",
				selection: [][2]string{{"email", "Incoming Email"}, {"comment", "Comment"}, {"notification", "System notification"}, {"auto_comment", "Automated Targeted Notification"}}},
			char("subtype_xmlid", "Subtype")),
		newModel("project.project", "Project", levelUser, levelUser, "name, id", "name", []string{"project"},
			required(char("name", "Name")), boolean("active", "Active", true), m2o("partner_id", "Customer", "res.partner"),
			m2o("user_id", "Project Manager", "res.users"), fieldDef{name: "description", typ: "html", label: "Description"}),
		newModel("project.task.type", "Task Stage", levelUser, levelUser, "sequence, id", "name", []string{"project"},
			required(char("name", "Stage Name")), fieldDef{name: "sequence", typ: "integer", label: "Sequence", def: 1}),
		newModel("project.task", "Task", levelUser, levelUser, "priority desc, id desc", "name", []string{"project"},
			required(char("name", "Title")), boolean("active", "Active", true), m2o("project_id", "Project", "project.project"),
			m2o("partner_id", "Customer", "res.partner"), m2o("stage_id", "Stage", "project.task.type"),
			fieldDef{name: "user_ids", typ: "many2many", label: "Assignees", relation: "res.users"},
			fieldDef{name: "priority", typ: "selection", label: "Priority", def: "0", selection: [][2]string{{"0", "Low"}, {"1", "High"}}},
			fieldDef{name: "description", typ: "html", label: "Description"}),
	}
	if edition == Enterprise {
		defs = append(defs,
			newModel("helpdesk.team", "Helpdesk Team", levelUser, levelSystem, "sequence, id", "name", []string{"helpdesk"},
				required(char("name", "Helpdesk Team")), fieldDef{name: "sequence", typ: "integer", label: "Sequence", def: 10}),
			newModel("helpdesk.stage", "Helpdesk Stage", levelUser, levelSystem, "sequence, id", "name", []string{"helpdesk"},
				required(char("name", "Stage Name")), fieldDef{name: "sequence", typ: "integer", label: "Sequence", def: 1}),
			newModel("helpdesk.ticket", "Helpdesk Ticket", levelUser, levelUser, "priority desc, id desc", "name", []string{"helpdesk"},
				required(char("name", "Subject")), fieldDef{name: "description", typ: "html", label: "Description"},
				m2o("team_id", "Helpdesk Team", "helpdesk.team"), m2o("stage_id", "Stage", "helpdesk.stage"),
				m2o("partner_id", "Customer", "res.partner"), char("partner_name", "Customer Name"),
				char("partner_email", "Customer Email"), m2o("user_id", "Assigned to", "res.users"),
				fieldDef{name: "priority", typ: "selection", label: "Priority", def: "0", selection: priorities},
				fieldDef{name: "ticket_ref", typ: "char", label: "Ticket IDs Sequence", readonly: true},
				boolean("active", "Active", true)))
	} else {
		defs = append(defs,
			newModel("helpdesk.ticket.team", "Helpdesk Ticket Team", levelUser, levelSystem, "sequence, id", "name", []string{"helpdesk_mgmt"},
				required(char("name", "Name")), fieldDef{name: "sequence", typ: "integer", label: "Sequence", def: 10}),
			newModel("helpdesk.ticket.stage", "Helpdesk Ticket Stage", levelUser, levelSystem, "sequence, id", "name", []string{"helpdesk_mgmt"},
				required(char("name", "Stage Name")), fieldDef{name: "sequence", typ: "integer", label: "Sequence", def: 1}),
			newModel("helpdesk.ticket", "Helpdesk Ticket", levelUser, levelUser, "priority desc, id desc", "name", []string{"helpdesk_mgmt"},
				fieldDef{name: "number", typ: "char", label: "Ticket number", readonly: true},
				required(char("name", "Title")), required(fieldDef{name: "description", typ: "html", label: "Description"}),
				m2o("team_id", "Team", "helpdesk.ticket.team"), m2o("stage_id", "Stage", "helpdesk.ticket.stage"),
				m2o("partner_id", "Contact", "res.partner"), char("partner_name", "Partner Name"),
				char("partner_email", "Email"), m2o("user_id", "Assigned user", "res.users"),
				fieldDef{name: "priority", typ: "selection", label: "Priority", def: "1", selection: priorities},
				boolean("active", "Active", true)))
	}
	out := map[string]*modelDef{}
	for _, d := range defs {
		out[d.name] = d
	}
	return out
}

// table holds the records of one model; a record maps field names to
// values (nil = empty, int for many2one, []int for many2many).
type table struct {
	def    *modelDef
	rows   map[int]map[string]any
	nextID int
}

func (t *table) ids() []int {
	out := make([]int, 0, len(t.rows))
	for id := range t.rows {
		out = append(out, id)
	}
	sort.Ints(out)
	return out
}

// rpcError is an Odoo exception on its way to becoming a fault or a JSON-2
// error.
type rpcError struct {
	kind string // AccessDenied, AccessError, UserError, MissingError, ValidationError, or a Python exception name
	msg  string
}

func (e *rpcError) Error() string { return e.kind + ": " + e.msg }

func accessDenied() *rpcError        { return &rpcError{"AccessDenied", "Access Denied"} }
func userError(msg string) *rpcError { return &rpcError{"UserError", msg} }
func pyError(kind, format string, args ...any) *rpcError {
	return &rpcError{kind, fmt.Sprintf(format, args...)}
}

func accessError(def *modelDef, op string, need level) *rpcError {
	verb := map[string]string{"read": "access", "write": "modify", "create": "create", "unlink": "delete"}[op]
	return &rpcError{"AccessError", fmt.Sprintf("You are not allowed to %s '%s' (%s) records.\n\nThis operation is allowed for the following groups:\n\t- %s\n\nContact your administrator to request access if necessary.",
		verb, def.label, def.name, need.group())}
}

// pyRepr renders a value the way Python's repr would, for messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + strings.ReplaceAll(x, "'", "\\'") + "'"
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = pyRepr(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case float64:
		return pyFloat(x)
	}
	return fmt.Sprint(v)
}
