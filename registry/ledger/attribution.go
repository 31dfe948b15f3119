package ledger

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// LinkSource says how a customer came to be linked to a payee.
type LinkSource string

// Link sources.
const (
	// LinkLicence: the install's licence carries the payee's code.
	LinkLicence LinkSource = "licence"
	// LinkManual: the code was typed later (`switchboard partner set`) or
	// staff linked the customer.
	LinkManual LinkSource = "manual"
	// LinkClick: a web sign-up attributed to the latest referral click.
	LinkClick LinkSource = "click"
	// LinkMoved: vendor staff moved the customer to another payee.
	LinkMoved LinkSource = "moved"
)

// Link ties a customer to the payee who brought them. Once made it is
// permanent; only a Move (by staff, with a reason) changes it.
type Link struct {
	CustomerID string     `json:"customer_id"`
	PayeeCode  string     `json:"payee_code"`
	Source     LinkSource `json:"source"`
	LinkedAt   time.Time  `json:"linked_at"`
	// ClickedAt is the attributed click's time (Source click).
	ClickedAt time.Time `json:"clicked_at,omitzero"`
}

// Click is one visit through a payee's link (/r/CODE, ?via=, ?ref=).
// VisitorID is the first-party cookie's id.
type Click struct {
	VisitorID string    `json:"visitor_id"`
	PayeeCode string    `json:"payee_code"`
	At        time.Time `json:"at"`
}

// Move records staff moving a customer from one payee to another. It
// applies to payments recorded afterwards; earlier commission stays.
type Move struct {
	CustomerID string    `json:"customer_id"`
	From       string    `json:"from"`
	To         string    `json:"to"`
	By         string    `json:"by"`
	Reason     string    `json:"reason"`
	At         time.Time `json:"at"`
}

// Linker answers which payee a customer is linked to. The registry store
// implements it from install links; Attribution is the in-memory version.
type Linker interface {
	LinkOf(ctx context.Context, customerID string) (Link, bool, error)
}

// LastClick applies the last-click rule: among clicks made at or before
// signup and no more than window before it, the latest wins. Clicks after
// the sign-up and clicks older than the window attribute nothing.
func LastClick(clicks []Click, signup time.Time, window time.Duration) (Click, bool) {
	var best Click
	found := false
	for _, c := range clicks {
		if c.At.After(signup) || signup.Sub(c.At) > window {
			continue
		}
		if !found || c.At.After(best.At) {
			best, found = c, true
		}
	}
	return best, found
}

// Attribution keeps links, clicks and staff moves in memory and enforces
// first-link-wins. It is safe for concurrent use.
type Attribution struct {
	window time.Duration
	mu     sync.RWMutex
	links  map[string]Link
	clicks map[string][]Click
	moves  []Move
}

// NewAttribution returns an empty Attribution whose clicks attribute for
// window (Config.ClickWindow()).
func NewAttribution(window time.Duration) *Attribution {
	return &Attribution{window: window, links: map[string]Link{}, clicks: map[string][]Click{}}
}

// RecordClick stores a click for later attribution.
func (a *Attribution) RecordClick(c Click) error {
	if err := checkID("click visitor_id", c.VisitorID); err != nil {
		return err
	}
	if err := checkID("click payee_code", c.PayeeCode); err != nil {
		return err
	}
	if c.At.IsZero() {
		return fmt.Errorf("%w: click by %s has no time", ErrInvalid, c.VisitorID)
	}
	c.At = c.At.UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.clicks[c.VisitorID] = append(a.clicks[c.VisitorID], c)
	return nil
}

// Link records l unless the customer is already linked. Linking again to
// the same payee returns the existing link (idempotent); linking to another
// payee fails with ErrAlreadyLinked.
func (a *Attribution) Link(l Link) (Link, error) {
	if err := checkID("link customer_id", l.CustomerID); err != nil {
		return Link{}, err
	}
	if err := checkID("link payee_code", l.PayeeCode); err != nil {
		return Link{}, err
	}
	switch l.Source {
	case LinkLicence, LinkManual, LinkClick:
	default:
		return Link{}, fmt.Errorf("%w: link source %q must be licence, manual or click (staff use Move)", ErrInvalid, l.Source)
	}
	if l.LinkedAt.IsZero() {
		return Link{}, fmt.Errorf("%w: link of customer %s has no time", ErrInvalid, l.CustomerID)
	}
	l.LinkedAt = l.LinkedAt.UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	if old, ok := a.links[l.CustomerID]; ok {
		if old.PayeeCode == l.PayeeCode {
			return old, nil
		}
		return old, fmt.Errorf("link customer %s to %s: %w (%s since %s); ask staff to move it",
			l.CustomerID, l.PayeeCode, ErrAlreadyLinked, old.PayeeCode, old.LinkedAt.Format(time.DateOnly))
	}
	a.links[l.CustomerID] = l
	return l, nil
}

// LinkFromClicks attributes a web sign-up to the latest click of the
// visitor within the window before signup. It returns false when no click
// qualifies (the customer stays unlinked). An existing link wins.
func (a *Attribution) LinkFromClicks(customerID, visitorID string, signup time.Time) (Link, bool, error) {
	a.mu.RLock()
	c, ok := LastClick(a.clicks[visitorID], signup.UTC(), a.window)
	existing, linked := a.links[customerID]
	a.mu.RUnlock()
	if linked {
		return existing, true, nil
	}
	if !ok {
		return Link{}, false, nil
	}
	l, err := a.Link(Link{CustomerID: customerID, PayeeCode: c.PayeeCode, Source: LinkClick, LinkedAt: signup, ClickedAt: c.At})
	if errors.Is(err, ErrAlreadyLinked) {
		return l, true, nil // linked concurrently by another path: the first link wins
	}
	if err != nil {
		return Link{}, false, err
	}
	return l, true, nil
}

// Move is the only way to change a link: staff name who they are and why.
func (a *Attribution) Move(customerID, to, by, reason string, at time.Time) (Move, error) {
	if err := checkID("move customer_id", customerID); err != nil {
		return Move{}, err
	}
	if err := checkID("move target payee", to); err != nil {
		return Move{}, err
	}
	if err := checkID("move by (who moves it)", by); err != nil {
		return Move{}, err
	}
	if err := checkID("move reason", reason); err != nil {
		return Move{}, err
	}
	at = at.UTC()
	a.mu.Lock()
	defer a.mu.Unlock()
	old := a.links[customerID]
	m := Move{CustomerID: customerID, From: old.PayeeCode, To: to, By: by, Reason: reason, At: at}
	a.links[customerID] = Link{CustomerID: customerID, PayeeCode: to, Source: LinkMoved, LinkedAt: at}
	a.moves = append(a.moves, m)
	return m, nil
}

// Moves returns the staff moves of one customer, oldest first.
func (a *Attribution) Moves(customerID string) []Move {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []Move
	for _, m := range a.moves {
		if m.CustomerID == customerID {
			out = append(out, m)
		}
	}
	return slices.Clip(out)
}

// LinkOf implements Linker.
func (a *Attribution) LinkOf(_ context.Context, customerID string) (Link, bool, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	l, ok := a.links[customerID]
	return l, ok, nil
}
