package registrytest

import (
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry"
)

func TestStartServesTheTweakedRegistry(t *testing.T) {
	var tweaked bool
	s := Start(t, func(c *registry.Config) {
		tweaked = c.DataDir != ""
		c.HeartbeatInterval = registry.Duration(time.Hour)
	})
	if !tweaked {
		t.Fatal("tweak ran before DataDir was set")
	}
	resp, err := http.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: HTTP %d", resp.StatusCode)
	}
	if s.AdminToken == "" || s.Registry == nil {
		t.Fatalf("server %+v lacks its token or registry", s)
	}
	if _, err := os.Stat(s.Data); err != nil {
		t.Fatalf("data directory: %v", err)
	}
}
