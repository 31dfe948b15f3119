package agent

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/agent/config"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/agent/sender"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// flakyPlugins reports one plugin whose health a test switches.
type flakyPlugins struct {
	NoPlugins
	mu      sync.Mutex
	healthy bool
}

func (f *flakyPlugins) set(h bool) { f.mu.Lock(); f.healthy = h; f.mu.Unlock() }
func (f *flakyPlugins) Health() []api.PluginHealth {
	f.mu.Lock()
	defer f.mu.Unlock()
	return []api.PluginHealth{{Name: "asterisk", Healthy: f.healthy, State: "unhealthy", Detail: "ARI refused the login"}}
}

func TestAutomaticTicketOncePerFaultAndRecoveryNote(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.toml")
	cfg := "state_dir = \"state\"\n[registry]\nurl = \"http://127.0.0.1:1\"\n[support]\nauto_ticket_after = \"1s\"\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	fp := &flakyPlugins{}
	d, err := Start(Options{ConfigPath: cfgPath, LogOutput: io.Discard,
		NewPlugins: func(config.Plugins, hclog.Logger) (PluginSet, error) { return fp, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer d.ob.Close()
	ctx := context.Background()
	d.checkFaults(ctx) // the fault starts
	if n := len(d.sup.tickets); n != 0 {
		t.Fatalf("ticket opened at once: %d", n)
	}
	d.sup.faults["asterisk"].since = time.Now().Add(-2 * time.Second)
	for range 3 { // one ticket, not one per check
		d.checkFaults(ctx)
	}
	if n := len(d.sup.tickets); n != 1 || d.sup.tickets[0].Fault != "asterisk" || d.sup.tickets[0].Origin != api.OriginAuto {
		t.Fatalf("tickets %+v", d.sup.tickets)
	}
	fp.set(true)
	d.checkFaults(ctx)
	if d.sup.tickets[0].RecoveredAt.IsZero() {
		t.Error("recovery not noted")
	}
	recs, err := d.ob.Pending(0)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, r := range recs {
		if r.Kind != outbox.KindSupportTicket {
			continue
		}
		var sr sender.SupportRecord
		if err := json.Unmarshal(r.Body, &sr); err != nil {
			t.Fatal(err)
		}
		switch {
		case sr.Ticket != nil:
			kinds = append(kinds, "ticket")
		case sr.Note != nil && sr.Note.TicketID == d.sup.tickets[0].ID:
			kinds = append(kinds, "note")
		}
	}
	if len(kinds) != 2 || kinds[0] != "ticket" || kinds[1] != "note" {
		t.Errorf("outbox support records %v", kinds)
	}
}
