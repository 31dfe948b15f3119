// Command filedrop is a support channel plugin that is not built into
// switchboard: it writes each ticket as DIR/<ticket id>.json. Tests build it
// and name it in the registry's [support.channel_types] to show that a new
// channel type needs no change to the registry's routing code.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/switchboard-dev/switchboard/plugins"
)

type channel struct {
	mu  sync.Mutex
	dir string
}

func (c *channel) Configure(_ context.Context, settings map[string]string) error {
	dir := settings["dir"]
	if dir == "" || !filepath.IsAbs(dir) {
		return errors.New("filedrop channel settings: dir must be an absolute directory")
	}
	c.mu.Lock()
	c.dir = dir
	c.mu.Unlock()
	return nil
}

func (c *channel) Deliver(_ context.Context, t plugins.Ticket) (plugins.Receipt, error) {
	c.mu.Lock()
	dir := c.dir
	c.mu.Unlock()
	data, err := json.Marshal(t)
	if err != nil {
		return plugins.Receipt{}, err
	}
	path := filepath.Join(dir, t.ID+".json")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return plugins.Receipt{}, fmt.Errorf("write %s: %w", path, err)
	}
	return plugins.Receipt{RemoteID: "file:" + t.ID, Detail: "written to " + path}, nil
}

func (c *channel) Health(context.Context) (plugins.Health, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dir == "" {
		return plugins.Health{State: "unconfigured"}, nil
	}
	return plugins.Health{Healthy: true, State: "ready", Detail: c.dir}, nil
}

func main() {
	if err := plugins.Serve("filedrop", &channel{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
