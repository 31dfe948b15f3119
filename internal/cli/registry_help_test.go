package cli

import (
	"bytes"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard-dev/switchboard/registry"
)

// Every key of the registry's config, and of its [support] and [payments] tables, is listed in
// 'registry serve --help': a key added to the config without a line in the
// help fails here.
func TestRegistryServeHelpListsConfigKeys(t *testing.T) {
	var out bytes.Buffer
	root := NewRootCommand(&App{Stdout: &out, Stderr: &out})
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"registry", "serve", "--help"})
	if err := root.Execute(); err != nil {
		t.Fatal(err)
	}
	help := out.String()
	rt := reflect.TypeOf(registry.Config{})
	for i := range rt.NumField() {
		if key := rt.Field(i).Tag.Get("toml"); key != "-" && key != "support" && key != "payments" && !strings.Contains(help, key) {
			t.Errorf("help does not list the top-level key %s", key)
		}
	}
	for table, v := range map[string]any{"support": registry.SupportConfig{}, "payments": registry.PaymentsConfig{},
		"support.vendor": registry.VendorChannel{}, "support.channel_types.NAME": registry.ChannelType{}} {
		if !strings.Contains(help, "["+table+"]") {
			t.Errorf("help does not name the [%s] table", table)
		}
		rt := reflect.TypeOf(v)
		for i := range rt.NumField() {
			key, _, _ := strings.Cut(rt.Field(i).Tag.Get("toml"), ",")
			if key == "" || key == "-" || key == "vendor" || key == "channel_types" {
				continue
			}
			if !strings.Contains(help, key) {
				t.Errorf("help does not list %s.%s", table, key)
			}
		}
	}
}
