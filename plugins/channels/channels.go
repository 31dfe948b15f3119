// Package channels holds what the built-in SupportChannel plugins share
// (webhook, email and odoochannel, in the sub-packages) and the convention
// by which any channel tells its host how a failed delivery should be
// retried:
//
//   - a permanent failure (the remote side refused the ticket and will
//     refuse it again: wrong credentials, unknown address, 4xx) is returned
//     as Permanent(err): the registry stops retrying this route at once and
//     falls back to the vendor queue;
//   - a transient failure (timeout, 5xx, 429, connection refused) is any
//     other error; Retry(err, after) adds the earliest time the remote side
//     asked to be called again (Retry-After), which the registry honours.
//
// Over go-plugin these travel as gRPC status codes (FailedPrecondition for
// permanent, Aborted with "[retry-after=Ns]" in the message), so a channel
// plugin written in another language can use the same convention.
package channels

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchboard-dev/switchboard/plugins"
)

// PermanentError is a delivery failure that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// GRPCStatus carries the error over go-plugin as FailedPrecondition.
func (e *PermanentError) GRPCStatus() *status.Status {
	return status.New(codes.FailedPrecondition, e.Err.Error())
}

// Permanent marks err as a failure retrying cannot fix.
func Permanent(err error) error { return &PermanentError{Err: err} }

// Permanentf is Permanent(fmt.Errorf(...)).
func Permanentf(format string, args ...any) error { return Permanent(fmt.Errorf(format, args...)) }

// RetryError is a transient failure with the earliest time to try again.
type RetryError struct {
	Err   error
	After time.Duration
}

func (e *RetryError) Error() string {
	return fmt.Sprintf("%v [retry-after=%ds]", e.Err, int(e.After.Round(time.Second)/time.Second))
}
func (e *RetryError) Unwrap() error { return e.Err }

// GRPCStatus carries the error over go-plugin as Aborted.
func (e *RetryError) GRPCStatus() *status.Status { return status.New(codes.Aborted, e.Error()) }

// Retry marks err as transient with a wait the remote side asked for.
func Retry(err error, after time.Duration) error {
	if after <= 0 {
		return err
	}
	return &RetryError{Err: err, After: after}
}

var retryAfterRE = regexp.MustCompile(`\[retry-after=(\d+)s\]`)

// Classify says how the host should treat a delivery error: permanent
// (fall back now) or transient, with the wait the channel asked for.
func Classify(err error) (permanent bool, retryAfter time.Duration) {
	if err == nil {
		return false, 0
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return true, 0
	}
	var re *RetryError
	if errors.As(err, &re) {
		return false, re.After
	}
	var remote *plugins.RemoteError
	if errors.As(err, &remote) && remote.Code == codes.FailedPrecondition {
		return true, 0
	}
	if m := retryAfterRE.FindStringSubmatch(err.Error()); m != nil {
		if secs, convErr := strconv.Atoi(m[1]); convErr == nil {
			return false, time.Duration(secs) * time.Second
		}
	}
	return false, 0
}

// Settings reads a channel's settings and collects every problem.
type Settings struct {
	m    map[string]string
	used map[string]bool
	errs []string
}

// NewSettings wraps the settings handed to Configure.
func NewSettings(m map[string]string) *Settings {
	return &Settings{m: m, used: map[string]bool{}}
}

// String returns the setting key, or def when absent or blank.
func (s *Settings) String(key, def string) string {
	s.used[key] = true
	if v := strings.TrimSpace(s.m[key]); v != "" {
		return v
	}
	return def
}

// Required returns the setting key and records a problem when it is blank.
func (s *Settings) Required(key, what string) string {
	v := s.String(key, "")
	if v == "" {
		s.Errorf("%s is required: %s", key, what)
	}
	return v
}

// Secret returns the setting key unchanged (secrets are not trimmed).
func (s *Settings) Secret(key string) string {
	s.used[key] = true
	return s.m[key]
}

// Duration returns a duration setting, or def.
func (s *Settings) Duration(key string, def time.Duration) time.Duration {
	v := s.String(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		s.Errorf("%s = %q is not a positive duration like 10s or 2m", key, v)
		return def
	}
	return d
}

// Bool returns a boolean setting, or def.
func (s *Settings) Bool(key string, def bool) bool {
	v := s.String(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		s.Errorf("%s = %q is not true or false", key, v)
		return def
	}
	return b
}

// Errorf records a problem.
func (s *Settings) Errorf(format string, args ...any) {
	s.errs = append(s.errs, fmt.Sprintf(format, args...))
}

// Err returns every problem, and unknown keys, in one error (nil if none).
func (s *Settings) Err(channel string) error {
	for k := range s.m {
		if !s.used[k] {
			s.errs = append(s.errs, fmt.Sprintf("unknown setting %q", k))
		}
	}
	if len(s.errs) == 0 {
		return nil
	}
	return fmt.Errorf("%s channel settings: %s", channel, strings.Join(s.errs, "; "))
}

// Summary is the plain-text rendering of a ticket shared by the channels
// that write for people (e-mail, Odoo).
func Summary(t plugins.Ticket) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", strings.TrimSpace(t.Body))
	b.WriteString("-- \n")
	fmt.Fprintf(&b, "Ticket:    %s\n", t.ID)
	fmt.Fprintf(&b, "Install:   %s\n", t.InstallID)
	if t.Customer != "" {
		fmt.Fprintf(&b, "Customer:  %s\n", t.Customer)
	}
	if t.PartnerCode != "" {
		fmt.Fprintf(&b, "Partner:   %s\n", t.PartnerCode)
	}
	fmt.Fprintf(&b, "Routed to: %s (%s)\n", t.RoutedTo, t.Reason)
	fmt.Fprintf(&b, "Opened:    %s\n", t.CreatedAt.UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "Delivery:  %s\n", t.DeliveryID)
	if len(t.Diagnostics) > 0 {
		b.WriteString("Diagnostics are attached (JSON).\n")
	}
	return b.String()
}
