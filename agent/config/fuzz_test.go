package config

import (
	"errors"
	"testing"
)

// FuzzParse: any file either parses into a config with the required URL or
// fails with an error; it never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(Example))
	f.Add([]byte("[registry]\nurl = \"http://x\"\n[plugins.a]\nk = 1\n"))
	f.Add([]byte("[plugins]\nasterisk = 3\n"))
	f.Add([]byte("a.b.c = 1\n[[x]]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("/etc/a.toml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error is not a *config.Error: %T %v", err, err)
			}
			return
		}
		if c.Registry.URL == "" || c.Sender.BatchSize < 1 || c.Outbox.MaxRecords < 10 {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
	})
}
