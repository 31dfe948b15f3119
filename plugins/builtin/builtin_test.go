package builtin

import (
	"errors"
	"strings"
	"testing"
)

func TestUnknownNameSaysWhatIsKnown(t *testing.T) {
	err := Serve("no-such-plugin")
	var ue *UnknownError
	if !errors.As(err, &ue) || ue.Name != "no-such-plugin" {
		t.Fatalf("got %v", err)
	}
	if len(Names()) == 0 && !strings.Contains(err.Error(), "no built-in plugins yet") {
		t.Errorf("empty registry message: %v", err)
	}
	for _, n := range Names() {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("message %q does not list %q", err, n)
		}
	}
	if got := (&UnknownError{Name: "x", Known: []string{"asterisk", "odoo"}}).Error(); !strings.Contains(got, "asterisk, odoo") {
		t.Errorf("message %q does not list the known plugins", got)
	}
}

func TestRegistryEntriesAreComplete(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range All() {
		if p.Name == "" || !p.Kind.Valid() || p.New == nil || p.Summary == "" || seen[p.Name] {
			t.Errorf("incomplete or duplicate built-in plugin %+v", p)
		}
		seen[p.Name] = true
	}
}
