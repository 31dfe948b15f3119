package host

import (
	"os"
	"slices"
	"testing"
)

func TestPluginEnvGCDefaults(t *testing.T) {
	t.Setenv("GOGC", "80")
	env := pluginEnv(false)
	has := func(kv string) bool { return slices.Contains(env, kv) }
	if !has("GOGC=80") || has("GOGC=50") {
		t.Fatalf("the host's GOGC must win: %v", env)
	}
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set && !has("GOMEMLIMIT=64MiB") {
		t.Fatalf("no soft memory limit for the plugin: %v", env)
	}
	if _, set := os.LookupEnv("GOMAXPROCS"); !set && !has("GOMAXPROCS=1") {
		t.Fatalf("plugin not limited to one P: %v", env)
	}
}
