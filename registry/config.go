package registry

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/BurntSushi/toml"
)

// Config is everything the registry service can be tuned with. Zero values
// take the defaults of DefaultConfig; a TOML file (--config) uses the toml
// names below, and command-line flags override it.
type Config struct {
	// DataDir holds the store, the admin token and the signing keys.
	DataDir string `toml:"data"`
	// Listen is host:port; port 0 picks a free port (see DataDir/registry.addr).
	Listen string `toml:"listen"`
	// PublicURL is how installs reach the registry, used in download links.
	PublicURL string `toml:"public_url"`
	// PackagesDir holds the .deb and .rpm packages the download page links
	// and the installer script downloads; empty publishes none.
	PackagesDir string `toml:"packages"`

	// HeartbeatInterval is the interval installs are told to report at.
	HeartbeatInterval Duration `toml:"heartbeat_interval"`
	// StaleAfter / DeadAfter: an install with no heartbeat for longer is
	// stale / dead.
	StaleAfter Duration `toml:"stale_after"`
	DeadAfter  Duration `toml:"dead_after"`

	// LicenceValidity is how long an issued licence is valid; it is
	// re-issued in heartbeat answers once less than half of it remains.
	LicenceValidity Duration `toml:"licence_validity"`
	// LicenceGrace is how long an expired licence keeps working.
	LicenceGrace Duration `toml:"licence_grace"`

	// MaxBodyBytes bounds every request body; MaxBatchReports bounds the
	// reports in one batch.
	MaxBodyBytes    int64 `toml:"max_body_bytes"`
	MaxBatchReports int   `toml:"max_batch_reports"`

	// SignupsPerHour and SignupBurst limit public referral sign-ups per
	// client IP; ActivationsPerSecond and ActivationBurst limit activations
	// per client IP. 0 keeps the default; negative disables the limit.
	SignupsPerHour       float64 `toml:"signups_per_hour"`
	SignupBurst          int     `toml:"signup_burst"`
	ActivationsPerSecond float64 `toml:"activations_per_second"`
	ActivationBurst      int     `toml:"activation_burst"`

	ReadHeaderTimeout Duration `toml:"read_header_timeout"`
	ReadTimeout       Duration `toml:"read_timeout"`
	WriteTimeout      Duration `toml:"write_timeout"`
	IdleTimeout       Duration `toml:"idle_timeout"`
	// ShutdownTimeout bounds how long SIGTERM waits for in-flight requests.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
	// CheckpointInterval is how long acknowledged reports stay in the
	// report log at most before a checkpoint writes them into the store
	// file: longer means fewer, larger checkpoints and a longer replay
	// after a crash.
	CheckpointInterval Duration `toml:"checkpoint_interval"`

	// Support routes and delivers support tickets (support_config.go).
	Support SupportConfig `toml:"support"`
	// Payments: webhook secrets and the commission policy (payments_config.go).
	Payments PaymentsConfig `toml:"payments"`

	// Now is the clock (tests inject one); nil means time.Now.
	Now func() time.Time `toml:"-"`
}

// Duration is a time.Duration written as "90s", "24h" in TOML.
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration like 90s, 15m or 24h", b)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Listen:               "127.0.0.1:8420",
		HeartbeatInterval:    Duration(time.Hour),
		StaleAfter:           Duration(26 * time.Hour),
		DeadAfter:            Duration(30 * 24 * time.Hour),
		LicenceValidity:      Duration(30 * 24 * time.Hour),
		LicenceGrace:         Duration(14 * 24 * time.Hour),
		MaxBodyBytes:         1 << 20,
		MaxBatchReports:      1000,
		SignupsPerHour:       10,
		SignupBurst:          5,
		ActivationsPerSecond: 50,
		ActivationBurst:      1000,
		ReadHeaderTimeout:    Duration(5 * time.Second),
		ReadTimeout:          Duration(30 * time.Second),
		WriteTimeout:         Duration(60 * time.Second),
		IdleTimeout:          Duration(2 * time.Minute),
		ShutdownTimeout:      Duration(30 * time.Second),
		CheckpointInterval:   Duration(time.Second),
	}
}

// LoadConfigFile reads a TOML config file over the defaults. Unknown keys
// are an error, so a typo does not silently keep a default.
func LoadConfigFile(path string) (Config, error) {
	cfg := DefaultConfig()
	raw, err := os.ReadFile(path)
	if err != nil {
		return cfg, fmt.Errorf("read config %s: %w", path, err)
	}
	md, err := toml.Decode(string(raw), &cfg)
	if err != nil {
		return cfg, fmt.Errorf("config %s: %w", path, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return cfg, fmt.Errorf("config %s: unknown key %q: see 'switchboard registry serve --help' for the keys", path, und[0].String())
	}
	return cfg, nil
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	fill := func(v *Duration, def Duration) {
		if *v == 0 {
			*v = def
		}
	}
	fill(&c.HeartbeatInterval, d.HeartbeatInterval)
	fill(&c.StaleAfter, d.StaleAfter)
	fill(&c.DeadAfter, d.DeadAfter)
	fill(&c.LicenceValidity, d.LicenceValidity)
	fill(&c.LicenceGrace, d.LicenceGrace)
	fill(&c.ReadHeaderTimeout, d.ReadHeaderTimeout)
	fill(&c.ReadTimeout, d.ReadTimeout)
	fill(&c.WriteTimeout, d.WriteTimeout)
	fill(&c.IdleTimeout, d.IdleTimeout)
	fill(&c.ShutdownTimeout, d.ShutdownTimeout)
	fill(&c.CheckpointInterval, d.CheckpointInterval)
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.MaxBatchReports == 0 {
		c.MaxBatchReports = d.MaxBatchReports
	}
	if c.SignupsPerHour == 0 {
		c.SignupsPerHour = d.SignupsPerHour
	}
	if c.SignupBurst == 0 {
		c.SignupBurst = d.SignupBurst
	}
	if c.ActivationsPerSecond == 0 {
		c.ActivationsPerSecond = d.ActivationsPerSecond
	}
	if c.ActivationBurst == 0 {
		c.ActivationBurst = d.ActivationBurst
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Support = c.Support.withDefaults()
	c.Payments = c.Payments.withDefaults()
	return c
}

// Validate says what is wrong with a configuration, all problems at once.
func (c Config) Validate() error {
	var errs []error
	if c.DataDir == "" {
		errs = append(errs, errors.New("data directory is not set: pass --data DIR"))
	}
	if c.HeartbeatInterval < Duration(time.Second) {
		errs = append(errs, fmt.Errorf("heartbeat interval %s is too short: use at least 1s", c.HeartbeatInterval.D()))
	}
	if c.StaleAfter <= c.HeartbeatInterval {
		errs = append(errs, fmt.Errorf("stale-after %s must be longer than the heartbeat interval %s", c.StaleAfter.D(), c.HeartbeatInterval.D()))
	}
	if c.DeadAfter <= c.StaleAfter {
		errs = append(errs, fmt.Errorf("dead-after %s must be longer than stale-after %s", c.DeadAfter.D(), c.StaleAfter.D()))
	}
	if c.LicenceValidity < Duration(time.Hour) {
		errs = append(errs, fmt.Errorf("licence validity %s is too short: use at least 1h", c.LicenceValidity.D()))
	}
	if c.CheckpointInterval < Duration(10*time.Millisecond) || c.CheckpointInterval > Duration(10*time.Minute) {
		errs = append(errs, fmt.Errorf("checkpoint interval %s is out of range: use 10ms to 10m (default 1s)", c.CheckpointInterval.D()))
	}
	if c.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("max body size %d bytes is too small: use at least 1024", c.MaxBodyBytes))
	}
	if c.MaxBatchReports < 1 {
		errs = append(errs, fmt.Errorf("max batch size %d: use at least 1", c.MaxBatchReports))
	}
	if c.PackagesDir != "" {
		if fi, err := os.Stat(c.PackagesDir); err != nil || !fi.IsDir() {
			errs = append(errs, fmt.Errorf("packages directory %s is not a readable directory: create it (make package writes dist/) or fix --packages", c.PackagesDir))
		}
	}
	errs = append(errs, c.Support.validate()...)
	errs = append(errs, c.Payments.validate()...)
	return errors.Join(errs...)
}
