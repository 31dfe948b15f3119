package host

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/switchboard-dev/switchboard/plugins"
)

func TestPluginEnvGCDefaults(t *testing.T) {
	t.Setenv("GOGC", "80")
	env := pluginEnv(false, hclog.NoLevel)
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

func TestPluginEnvLogLevel(t *testing.T) {
	if _, set := os.LookupEnv(plugins.LogLevelEnv); set {
		t.Skipf("%s is set in the test's environment", plugins.LogLevelEnv)
	}
	if env := pluginEnv(false, hclog.Debug); !slices.Contains(env, plugins.LogLevelEnv+"=debug") {
		t.Fatalf("a host at debug must start its plugins at debug: %v", env)
	}
	for _, kv := range pluginEnv(false, hclog.NoLevel) {
		if strings.HasPrefix(kv, plugins.LogLevelEnv+"=") {
			t.Fatalf("no host level, yet the plugin got %s", kv)
		}
	}
	t.Setenv(plugins.LogLevelEnv, "trace")
	env := pluginEnv(false, hclog.Warn)
	if !slices.Contains(env, plugins.LogLevelEnv+"=trace") || slices.Contains(env, plugins.LogLevelEnv+"=warn") {
		t.Fatalf("the level set in the host's environment must win: %v", env)
	}
}
