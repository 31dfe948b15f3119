package odoo

import (
	"strings"
	"testing"
)

// TestMessagePost: message_post works like mail.thread's — keyword-only
// arguments, one record, a mail.message id back — on tasks and tickets.
func TestMessagePost(t *testing.T) {
	s := startOdoo(t, Options{Edition: Enterprise})
	if err := s.InstallModule("project"); err != nil {
		t.Fatal(err)
	}
	admin := connect(t, s, "admin", "admin")
	var task, other int
	admin.must("project.task", "create", []any{map[string]any{"name": "Phone dead"}}, nil, &task)
	admin.must("project.task", "create", []any{map[string]any{"name": "Other"}}, nil, &other)
	var msg int
	admin.must("project.task", "message_post", []any{[]any{task}},
		map[string]any{"body": "<p>recovered</p>", "message_type": "comment", "subtype_xmlid": "mail.mt_note"}, &msg)
	if msg <= 0 {
		t.Fatalf("message_post returned %d", msg)
	}
	var recs []map[string]any
	admin.must("mail.message", "search_read", []any{[]any{[]any{"model", "=", "project.task"}, []any{"res_id", "=", task}}},
		map[string]any{"fields": []any{"body", "message_type", "subtype_xmlid"}}, &recs)
	if len(recs) != 1 || recs[0]["body"] != "<p>recovered</p>" || recs[0]["message_type"] != "comment" || recs[0]["subtype_xmlid"] != "mail.mt_note" {
		t.Fatalf("messages %v", recs)
	}
	var out any
	for name, c := range map[string]struct {
		args []any
		kw   map[string]any
		want string
	}{
		"positional body":  {[]any{[]any{task}, "hi"}, nil, "takes 1 positional argument but 2 were given"},
		"two records":      {[]any{[]any{task, other}}, map[string]any{"body": "x"}, "Expected singleton: project.task("},
		"unknown record":   {[]any{[]any{9999}}, map[string]any{"body": "x"}, "does not exist"},
		"bad message_type": {[]any{[]any{task}}, map[string]any{"body": "x", "message_type": "chat"}, "message_type"},
		"bad subtype":      {[]any{[]any{task}}, map[string]any{"body": "x", "subtype_xmlid": "mail.mt_nope"}, "External ID not found"},
		"unknown keyword":  {[]any{[]any{task}}, map[string]any{"body": "x", "colour": "red"}, "unexpected keyword argument 'colour'"},
	} {
		err := admin.exec("project.task", "message_post", c.args, c.kw, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", name, err, c.want)
		}
	}
	// Only mail.thread models have it.
	err := admin.exec("res.users", "message_post", []any{[]any{2}}, map[string]any{"body": "x"}, &out)
	if err == nil || !strings.Contains(err.Error(), "Method not available message_post") {
		t.Errorf("res.users.message_post: %v", err)
	}
	if err := s.InstallModule("helpdesk"); err != nil {
		t.Fatal(err)
	}
	var ticket int
	admin.must("helpdesk.ticket", "create", []any{map[string]any{"name": "T"}}, nil, &ticket)
	admin.must("helpdesk.ticket", "message_post", []any{[]any{ticket}}, map[string]any{"body": "note"}, &msg)
	var n int
	admin.must("mail.message", "search_count", []any{[]any{[]any{"model", "=", "helpdesk.ticket"}, []any{"res_id", "=", ticket}}}, nil, &n)
	if n != 1 {
		t.Fatalf("%d messages on the ticket", n)
	}
}
