package ledger

import (
	"errors"
	"fmt"
	"time"
)

// CommissionRule says what a tier earns on one payment. Exactly one of
// PercentBP and Flat is set. Rules with a Plan beat rules without one.
type CommissionRule struct {
	Tier Tier `json:"tier"`
	// Plan limits the rule to monthly or annual payments; empty matches both.
	Plan Plan `json:"plan,omitempty"`
	// PercentBP is the share of the payment in basis points (2000 = 20%).
	PercentBP int64 `json:"percent_bp,omitempty"`
	// Flat is a fixed amount per billing period (per payment of Plan), by
	// currency in minor units, e.g. {"USD": 2000} for $20 per monthly payment.
	Flat map[string]int64 `json:"flat,omitempty"`
	// Cap bounds the commission on one payment, by currency; a currency
	// without an entry is not capped.
	Cap map[string]int64 `json:"cap,omitempty"`
	// DurationMonths > 0 limits earning to payments made within that many
	// months after the customer's first payment; 0 is the whole subscription.
	DurationMonths int `json:"duration_months,omitempty"`
	// RequireHeartbeat: earn only when one of the customer's installs sent a
	// heartbeat during the billing period (partners: while the install lives).
	RequireHeartbeat bool `json:"require_heartbeat,omitempty"`
}

// describe renders the rule for statements ("20.00% whole subscription").
func (r CommissionRule) describe(currency string) string {
	var s string
	if r.PercentBP > 0 {
		s = fmt.Sprintf("%d.%02d%%", r.PercentBP/100, r.PercentBP%100)
	} else {
		s = FormatAmount(r.Flat[currency], currency) + " " + currency + " flat"
	}
	if c, ok := r.Cap[currency]; ok {
		s += ", cap " + FormatAmount(c, currency) + " " + currency
	}
	if r.Plan != "" {
		s += " per " + string(r.Plan) + " payment"
	}
	return s
}

// Config is the money policy. DefaultConfig returns the programme the
// design describes; every field can be changed per vendor.
type Config struct {
	Rules []CommissionRule `json:"rules"`
	// SecondTierBP is the parent's share of what a sub-affiliate earns, in
	// basis points (1000 = 10%); 0 turns the second tier off.
	SecondTierBP int64 `json:"second_tier_bp"`
	// HoldDays keeps a commission pending after the payment (refund window).
	HoldDays int `json:"hold_days"`
	// Thresholds: minimum payable balance per tier and currency before a
	// payout goes out. A currency without a threshold is never paid out
	// automatically: the run holds it with a reason that says to configure it.
	Thresholds map[Tier]map[string]int64 `json:"thresholds"`
	// TaxThresholds: yearly paid total per currency above which a payee must
	// have tax details on file (e.g. 600 USD for a US 1099).
	TaxThresholds map[string]int64 `json:"tax_thresholds"`
	// ManualEveryMonths: payees without PayPal are paid in runs for months
	// that are a multiple of this (3: Mar, Jun, Sep, Dec).
	ManualEveryMonths int `json:"manual_every_months"`
	// ClickWindowDays is how long a referral click attributes a sign-up.
	ClickWindowDays int `json:"click_window_days"`
	// PublicEmailDomains are shared mail providers: a payee and a customer
	// both on gmail.com are not the same party.
	PublicEmailDomains []string `json:"public_email_domains"`
}

// DefaultConfig returns the defaults: partners 20% for the whole
// subscription while an install is alive, referrals 10% for 12 months,
// second tier 10%, 30-day hold, thresholds 200 EUR / 100 EUR, tax
// threshold 600 USD a year, manual payouts quarterly, 90-day click window.
func DefaultConfig() Config {
	return Config{
		Rules: []CommissionRule{
			{Tier: TierPartner, PercentBP: 2000, RequireHeartbeat: true},
			{Tier: TierReferral, PercentBP: 1000, DurationMonths: 12},
		},
		SecondTierBP: 1000,
		HoldDays:     30,
		Thresholds: map[Tier]map[string]int64{
			TierPartner:  {"EUR": 20000},
			TierReferral: {"EUR": 10000},
		},
		TaxThresholds:     map[string]int64{"USD": 60000},
		ManualEveryMonths: 3,
		ClickWindowDays:   90,
		PublicEmailDomains: []string{
			"gmail.com", "googlemail.com", "outlook.com", "hotmail.com", "live.com", "msn.com",
			"yahoo.com", "icloud.com", "me.com", "aol.com", "proton.me", "protonmail.com",
			"gmx.de", "gmx.net", "gmx.com", "web.de", "t-online.de", "mail.ru", "yandex.ru",
			"qq.com", "163.com", "zoho.com", "mail.com", "orange.fr", "free.fr", "libero.it",
		},
	}
}

// Hold is HoldDays as a duration.
func (c Config) Hold() time.Duration { return time.Duration(c.HoldDays) * 24 * time.Hour }

// ClickWindow is ClickWindowDays as a duration.
func (c Config) ClickWindow() time.Duration { return time.Duration(c.ClickWindowDays) * 24 * time.Hour }

// Validate reports every problem in the configuration at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	seen := map[string]bool{}
	for i, r := range c.Rules {
		where := fmt.Sprintf("rules[%d] (tier %s)", i, r.Tier)
		if r.Tier != TierPartner && r.Tier != TierReferral {
			bad("%s: tier must be partner or referral", where)
		}
		if r.Plan != "" && r.Plan != PlanMonthly && r.Plan != PlanAnnual {
			bad("%s: plan %q must be monthly, annual or empty for both", where, r.Plan)
		}
		key := string(r.Tier) + "/" + string(r.Plan)
		if seen[key] {
			bad("%s: a second rule for the same tier and plan; keep one", where)
		}
		seen[key] = true
		switch {
		case r.PercentBP > 0 && len(r.Flat) > 0:
			bad("%s: set percent_bp or flat, not both", where)
		case r.PercentBP == 0 && len(r.Flat) == 0:
			bad("%s: set percent_bp (e.g. 2000 for 20%%) or flat amounts per currency", where)
		case r.PercentBP < 0 || r.PercentBP > 10000:
			bad("%s: percent_bp %d must be between 1 and 10000", where, r.PercentBP)
		}
		for _, m := range []struct {
			name string
			v    map[string]int64
		}{{"flat", r.Flat}, {"cap", r.Cap}} {
			for cur, v := range m.v {
				if n, err := ParseCurrency(cur); err != nil || n != cur {
					bad("%s: %s currency %q must be an upper-case ISO 4217 code", where, m.name, cur)
				}
				if v <= 0 || v > MaxAmount {
					bad("%s: %s %s %d must be a positive amount in minor units", where, m.name, cur, v)
				}
			}
		}
		if r.DurationMonths < 0 || r.DurationMonths > 1200 {
			bad("%s: duration_months %d must be 0 (whole subscription) or a number of months", where, r.DurationMonths)
		}
	}
	if c.SecondTierBP < 0 || c.SecondTierBP > 10000 {
		bad("second_tier_bp %d must be between 0 and 10000", c.SecondTierBP)
	}
	if c.HoldDays < 0 || c.HoldDays > 3660 {
		bad("hold_days %d must be between 0 and 3660", c.HoldDays)
	}
	for tier, m := range c.Thresholds {
		if tier != TierPartner && tier != TierReferral {
			bad("thresholds: tier %q must be partner or referral", tier)
		}
		for cur, v := range m {
			if n, err := ParseCurrency(cur); err != nil || n != cur {
				bad("thresholds[%s]: currency %q must be an upper-case ISO 4217 code", tier, cur)
			}
			if v <= 0 || v > MaxAmount {
				bad("thresholds[%s][%s] %d must be a positive amount in minor units", tier, cur, v)
			}
		}
	}
	for cur, v := range c.TaxThresholds {
		if n, err := ParseCurrency(cur); err != nil || n != cur {
			bad("tax_thresholds: currency %q must be an upper-case ISO 4217 code", cur)
		}
		if v <= 0 || v > MaxAmount {
			bad("tax_thresholds[%s] %d must be a positive amount in minor units", cur, v)
		}
	}
	if c.ManualEveryMonths < 1 || 12%c.ManualEveryMonths != 0 {
		bad("manual_every_months %d must divide 12 (1, 2, 3, 4, 6 or 12)", c.ManualEveryMonths)
	}
	if c.ClickWindowDays < 1 || c.ClickWindowDays > 3660 {
		bad("click_window_days %d must be between 1 and 3660", c.ClickWindowDays)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: ledger config: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// rule returns the rule for a tier and plan: the plan-specific one first.
func (c Config) rule(tier Tier, plan Plan) (CommissionRule, bool) {
	var general *CommissionRule
	for i := range c.Rules {
		r := &c.Rules[i]
		if r.Tier != tier {
			continue
		}
		if r.Plan == plan {
			return *r, true
		}
		if r.Plan == "" {
			general = r
		}
	}
	if general != nil {
		return *general, true
	}
	return CommissionRule{}, false
}
