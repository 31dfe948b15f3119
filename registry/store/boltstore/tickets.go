package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/registry/store"
)

// Support buckets. They are created by the first write that needs them, so
// stores made before support existed open unchanged (same schema version:
// the change only adds buckets).
var (
	bucketTickets         = []byte("tickets")           // ticket id → Ticket JSON
	bucketTicketDue       = []byte("ticket_due")        // next attempt (unix ns, 8 BE) ticket id → empty
	bucketTicketByInstall = []byte("ticket_by_install") // install id "/" ticket id → empty
	bucketChannels        = []byte("support_channels")  // partner code → Channel JSON
)

func ensureSupportBuckets(tx *bolt.Tx) error {
	for _, name := range [][]byte{bucketTickets, bucketTicketDue, bucketTicketByInstall, bucketChannels} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func dueKey(t store.Ticket) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(t.NextAttemptAt.UnixNano()))
	return append(k, t.ID...)
}

func getTicket(tx *bolt.Tx, id string) (store.Ticket, bool, error) {
	var t store.Ticket
	b := tx.Bucket(bucketTickets)
	if b == nil {
		return t, false, nil
	}
	ok, err := getJSON(b, []byte(id), &t)
	return t, ok, err
}

// putTicket writes t and keeps the due index in step with it; old is the
// stored version (nil for a new ticket).
func putTicket(tx *bolt.Tx, old *store.Ticket, t store.Ticket) error {
	due := tx.Bucket(bucketTicketDue)
	if old != nil && old.Due() {
		if err := due.Delete(dueKey(*old)); err != nil {
			return err
		}
	}
	if t.Due() {
		if err := due.Put(dueKey(t), nil); err != nil {
			return err
		}
	}
	return putJSON(tx.Bucket(bucketTickets), []byte(t.ID), t)
}

// CreateTicket implements store.Store.
func (s *Store) CreateTicket(ctx context.Context, t store.Ticket) (store.Ticket, bool, error) {
	var out store.Ticket
	var created bool
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		created = false
		if err := ensureSupportBuckets(tx); err != nil {
			return nil, err
		}
		old, ok, err := getTicket(tx, t.ID)
		if err != nil {
			return nil, err
		}
		if ok {
			if old.InstallID != t.InstallID {
				return fmt.Errorf("ticket id %s: %w", t.ID, store.ErrExists), nil
			}
			out = old
			return nil, nil
		}
		if !s.hasInstall(tx, t.InstallID) {
			return store.NotFoundf("install %s", t.InstallID), nil
		}
		if err := putTicket(tx, nil, t); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketTicketByInstall).Put(append(installPrefix(t.InstallID), t.ID...), nil); err != nil {
			return nil, err
		}
		out, created = t, true
		return nil, nil
	})
	return out, created, err
}

// GetTicket implements store.Store.
func (s *Store) GetTicket(ctx context.Context, id string) (store.Ticket, error) {
	var t store.Ticket
	err := s.db.View(func(tx *bolt.Tx) error {
		var ok bool
		var err error
		t, ok, err = getTicket(tx, id)
		if err == nil && !ok {
			err = store.NotFoundf("ticket %s", id)
		}
		return err
	})
	return t, err
}

func matchTicket(t store.Ticket, f store.TicketFilter) bool {
	return (f.InstallID == "" || t.InstallID == f.InstallID) &&
		(f.State == "" || t.State == f.State) &&
		(f.PartnerCode == "" || (t.Route.Target == store.TargetPartner && t.Route.PartnerCode == f.PartnerCode))
}

// ListTickets implements store.Store.
func (s *Store) ListTickets(ctx context.Context, f store.TicketFilter) ([]store.Ticket, error) {
	out := []store.Ticket{}
	err := s.db.View(func(tx *bolt.Tx) error {
		tb := tx.Bucket(bucketTickets)
		if tb == nil {
			return nil
		}
		add := func(id []byte) (bool, error) {
			var t store.Ticket
			ok, err := getJSON(tb, id, &t)
			if err != nil || !ok {
				return false, err
			}
			if matchTicket(t, f) {
				out = append(out, t)
			}
			return f.Limit > 0 && len(out) >= f.Limit, nil
		}
		if f.InstallID != "" {
			prefix := installPrefix(f.InstallID)
			c := tx.Bucket(bucketTicketByInstall).Cursor()
			start := prefix
			if f.AfterID != "" {
				start = append(append([]byte(nil), prefix...), f.AfterID+"\x00"...)
			}
			for k, _ := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
				if full, err := add(k[len(prefix):]); err != nil || full {
					return err
				}
			}
			return nil
		}
		c := tb.Cursor()
		var k []byte
		if f.AfterID != "" {
			k, _ = c.Seek([]byte(f.AfterID + "\x00"))
		} else {
			k, _ = c.First()
		}
		for ; k != nil; k, _ = c.Next() {
			if full, err := add(k); err != nil || full {
				return err
			}
		}
		return nil
	})
	return out, err
}

// UpdateTicket implements store.Store.
func (s *Store) UpdateTicket(ctx context.Context, id string, fn func(*store.Ticket) error) (store.Ticket, error) {
	var out store.Ticket
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		if err := ensureSupportBuckets(tx); err != nil {
			return nil, err
		}
		old, ok, err := getTicket(tx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return store.NotFoundf("ticket %s", id), nil
		}
		// fn gets its own copy: it may run again when the group retries.
		var t store.Ticket
		raw, _ := json.Marshal(old)
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, err
		}
		if err := fn(&t); err != nil {
			return err, nil
		}
		t.ID, t.InstallID = old.ID, old.InstallID
		if err := putTicket(tx, &old, t); err != nil {
			return nil, err
		}
		out = t
		return nil, nil
	})
	return out, err
}

// DueTickets implements store.Store.
func (s *Store) DueTickets(ctx context.Context, before time.Time, limit int) ([]store.Ticket, error) {
	var out []store.Ticket
	bound := binary.BigEndian.AppendUint64(nil, uint64(before.UnixNano()))
	err := s.db.View(func(tx *bolt.Tx) error {
		due := tx.Bucket(bucketTicketDue)
		if due == nil {
			return nil
		}
		c := due.Cursor()
		for k, _ := c.First(); len(k) > 8 && bytes.Compare(k[:8], bound) <= 0; k, _ = c.Next() {
			t, ok, err := getTicket(tx, string(k[8:]))
			if err != nil {
				return err
			}
			if ok && t.Due() {
				out = append(out, t)
			}
			if limit > 0 && len(out) >= limit {
				return nil
			}
		}
		return nil
	})
	return out, err
}

// NextDue implements store.Store.
func (s *Store) NextDue(ctx context.Context) (time.Time, error) {
	var next time.Time
	err := s.db.View(func(tx *bolt.Tx) error {
		due := tx.Bucket(bucketTicketDue)
		if due == nil {
			return nil
		}
		if k, _ := due.Cursor().First(); len(k) > 8 {
			next = time.Unix(0, int64(binary.BigEndian.Uint64(k[:8])))
		}
		return nil
	})
	return next, err
}

// SetPartnerChannel implements store.Store.
func (s *Store) SetPartnerChannel(ctx context.Context, code string, ch store.Channel) error {
	return s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		if err := ensureSupportBuckets(tx); err != nil {
			return nil, err
		}
		if tx.Bucket(bucketPartners).Get([]byte(code)) == nil {
			return store.NotFoundf("partner %s", code), nil
		}
		return nil, putJSON(tx.Bucket(bucketChannels), []byte(code), ch)
	})
}

// GetPartnerChannel implements store.Store.
func (s *Store) GetPartnerChannel(ctx context.Context, code string) (store.Channel, error) {
	var ch store.Channel
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketChannels)
		ok := false
		var err error
		if b != nil {
			ok, err = getJSON(b, []byte(code), &ch)
		}
		if err == nil && !ok {
			err = store.NotFoundf("support channel of partner %s", code)
		}
		return err
	})
	return ch, err
}

// DeletePartnerChannel implements store.Store.
func (s *Store) DeletePartnerChannel(ctx context.Context, code string) error {
	return s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		if err := ensureSupportBuckets(tx); err != nil {
			return nil, err
		}
		b := tx.Bucket(bucketChannels)
		if b.Get([]byte(code)) == nil {
			return store.NotFoundf("support channel of partner %s", code), nil
		}
		return nil, b.Delete([]byte(code))
	})
}
