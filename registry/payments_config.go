package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
	"github.com/switchboard-dev/switchboard/registry/ledger"
)

// Files of the money side inside the data directory.
const (
	// PaymentSecretFile holds the shared secret of the payment webhook
	// (created on first start, mode 0600). Billing signs with it.
	PaymentSecretFile = "payments.secret"
	// StripeSecretFile holds the Stripe webhook endpoint's signing secret
	// (whsec_…), copied from the Stripe dashboard. Without it the Stripe
	// endpoint answers 503.
	StripeSecretFile = "stripe.secret"
	// LedgerConfigFile is the commission policy as JSON (ledger.Config);
	// without it the defaults of ledger.DefaultConfig apply.
	LedgerConfigFile = "ledger.json"
)

// PaymentsConfig is the [payments] table of the registry configuration.
//
//	[payments]
//	ledger_config = "/etc/switchboard/ledger.json"   # default DATA/ledger.json when present
//	webhook_secret_file = "/etc/switchboard/payments.secret"
//	stripe_secret_file = "/etc/switchboard/stripe.secret"
//	webhook_tolerance = "5m"
type PaymentsConfig struct {
	LedgerConfig      string `toml:"ledger_config"`
	WebhookSecretFile string `toml:"webhook_secret_file"`
	StripeSecretFile  string `toml:"stripe_secret_file"`
	// WebhookTolerance is how far a webhook's signed timestamp may be from
	// the registry clock (replay window).
	WebhookTolerance Duration `toml:"webhook_tolerance"`
}

func (c PaymentsConfig) withDefaults() PaymentsConfig {
	if c.WebhookTolerance == 0 {
		c.WebhookTolerance = Duration(5 * time.Minute)
	}
	return c
}

func (c PaymentsConfig) validate() []error {
	var errs []error
	if c.WebhookTolerance < Duration(30*time.Second) || c.WebhookTolerance > Duration(time.Hour) {
		errs = append(errs, fmt.Errorf("payments.webhook_tolerance %s must be between 30s and 1h", c.WebhookTolerance.D()))
	}
	return errs
}

// loadLedgerConfig reads the commission policy: the configured file, or
// DATA/ledger.json when present, or the defaults. Unknown keys are an
// error so a misspelt rule does not silently keep a default.
func loadLedgerConfig(cfg Config) (ledger.Config, string, error) {
	path := cfg.Payments.LedgerConfig
	explicit := path != ""
	if !explicit {
		path = filepath.Join(cfg.DataDir, LedgerConfigFile)
	}
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && !explicit {
		return ledger.DefaultConfig(), "", nil
	}
	if err != nil {
		return ledger.Config{}, path, fmt.Errorf("read ledger config %s: %w", path, err)
	}
	lc := ledger.DefaultConfig()
	if err := decodeStrict(raw, &lc); err != nil {
		return lc, path, fmt.Errorf("ledger config %s: %v (see ledger.Config for the keys)", path, err)
	}
	if err := lc.Validate(); err != nil {
		return lc, path, fmt.Errorf("ledger config %s: %w", path, err)
	}
	return lc, path, nil
}

// WriteLedgerConfig writes c as the data directory's ledger.json.
func WriteLedgerConfig(dataDir string, c ledger.Config) error {
	if err := c.Validate(); err != nil {
		return err
	}
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dataDir, LedgerConfigFile), append(raw, '\n'), 0o644)
}

// loadSecret reads a secret file that must not be readable by others.
// create makes a random one when it is missing.
func loadSecret(path, what string, create bool) (string, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		if !create {
			return "", nil
		}
		tok, _, err := loadOrCreateToken(path)
		if err != nil {
			return "", fmt.Errorf("create %s %s: %w", what, path, err)
		}
		return tok, nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s %s: %w", what, path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("stat %s %s: %w", what, path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s %s has mode %04o, so other users can read it: run 'chmod 600 %s'", what, path, fi.Mode().Perm(), path)
	}
	sec := strings.TrimSpace(string(raw))
	if len(sec) < 16 {
		return "", fmt.Errorf("%s %s is shorter than 16 characters: put the full secret in it", what, path)
	}
	return sec, nil
}
