package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/registry/ledger"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Money buckets. Like the support buckets they are created by the first
// write that needs them, so older stores open unchanged (same schema
// version: the change only adds buckets). Index keys join their parts with
// a 0 byte: ids never contain control characters (ledger.checkID).
var (
	bucketLedger          = []byte("ledger")            // seq(8 BE) → Entry JSON
	bucketLedgerByPayee   = []byte("ledger_by_payee")   // payee 0 seq(8) → empty
	bucketLedgerByPayment = []byte("ledger_by_payment") // payment id 0 seq(8) → empty
	bucketLedgerByBatch   = []byte("ledger_by_batch")   // batch id 0 seq(8) → empty
	bucketCustomerLinks   = []byte("customer_links")    // customer id → Link JSON
	bucketCustomerMoves   = []byte("customer_moves")    // customer id 0 n(8) → Move JSON
	bucketClicks          = []byte("clicks")            // visitor id 0 n(8) → Click JSON
	bucketCustInstalls    = []byte("customer_installs") // customer id 0 install id → empty
	bucketPaymentAliases  = []byte("payment_aliases")   // provider id → payment external id

	ledgerBuckets = [][]byte{bucketLedger, bucketLedgerByPayee, bucketLedgerByPayment, bucketLedgerByBatch,
		bucketCustomerLinks, bucketCustomerMoves, bucketClicks, bucketCustInstalls, bucketPaymentAliases}
)

// ledgerChunk is how many entries one read transaction collects before
// they are handed to the caller: a reader never holds a transaction open
// while the caller works, so a long replay does not stall bbolt's remaps.
const ledgerChunk = 512

func ensureLedgerBuckets(tx *bolt.Tx) error {
	for _, name := range ledgerBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return nil
}

func joinKey(a string, b []byte) []byte {
	k := make([]byte, 0, len(a)+1+len(b))
	k = append(k, a...)
	k = append(k, 0)
	return append(k, b...)
}

func seqBytes(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// AppendLedger implements store.LedgerStore.
func (s *Store) AppendLedger(ctx context.Context, entries []ledger.Entry) error {
	if len(entries) == 0 {
		return nil
	}
	return s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		if err := ensureLedgerBuckets(tx); err != nil {
			return nil, err
		}
		b := tx.Bucket(bucketLedger)
		last := uint64(0)
		if k, _ := b.Cursor().Last(); k != nil {
			last = binary.BigEndian.Uint64(k)
		}
		for _, e := range entries {
			if e.Seq <= last {
				return fmt.Errorf("append ledger entry seq %d: not above the last stored seq %d (another writer appended first)", e.Seq, last), nil
			}
			last = e.Seq
		}
		for _, e := range entries {
			sk := seqBytes(e.Seq)
			if err := putJSON(b, sk, e); err != nil {
				return nil, err
			}
			for _, ix := range []struct {
				bucket []byte
				key    string
			}{{bucketLedgerByPayee, e.Payee}, {bucketLedgerByPayment, e.PaymentID}, {bucketLedgerByBatch, e.BatchID}} {
				if ix.key == "" {
					continue
				}
				if err := tx.Bucket(ix.bucket).Put(joinKey(ix.key, sk), nil); err != nil {
					return nil, err
				}
			}
		}
		return nil, nil
	})
}

func matchEntry(f ledger.Filter, e *ledger.Entry) bool {
	return (f.Payee == "" || e.Payee == f.Payee) &&
		(f.PaymentID == "" || e.PaymentID == f.PaymentID) &&
		(f.BatchID == "" || e.BatchID == f.BatchID) &&
		e.Seq > f.AfterSeq &&
		(f.Before.IsZero() || e.At.Before(f.Before))
}

// LedgerEntries implements store.LedgerStore. Entries are read in chunks
// of ledgerChunk, each in its own read transaction; the journal is
// append-only, so resuming after the last key read sees a consistent
// prefix plus whatever was appended meanwhile (bounded by the last seq at
// the start, so one call yields a snapshot).
func (s *Store) LedgerEntries(ctx context.Context, f ledger.Filter) iter.Seq2[ledger.Entry, error] {
	return func(yield func(ledger.Entry, error) bool) {
		var index []byte
		var prefix []byte
		switch {
		case f.PaymentID != "":
			index, prefix = bucketLedgerByPayment, joinKey(f.PaymentID, nil)
		case f.Payee != "":
			index, prefix = bucketLedgerByPayee, joinKey(f.Payee, nil)
		case f.BatchID != "":
			index, prefix = bucketLedgerByBatch, joinKey(f.BatchID, nil)
		}
		var resume []byte // last key read; the next chunk starts after it
		var maxSeq uint64
		first := true
		for {
			if err := ctx.Err(); err != nil {
				yield(ledger.Entry{}, err)
				return
			}
			chunk := make([]ledger.Entry, 0, 64)
			done := false
			err := s.db.View(func(tx *bolt.Tx) error {
				b := tx.Bucket(bucketLedger)
				if b == nil {
					done = true
					return nil
				}
				if first {
					if k, _ := b.Cursor().Last(); k != nil {
						maxSeq = binary.BigEndian.Uint64(k)
					}
					first = false
				}
				var c *bolt.Cursor
				var k []byte
				if index != nil {
					ib := tx.Bucket(index)
					if ib == nil {
						done = true
						return nil
					}
					c = ib.Cursor()
				} else {
					c = b.Cursor()
				}
				start := prefix
				if resume != nil {
					start = resume
				}
				if start == nil {
					k, _ = c.First()
				} else {
					k, _ = c.Seek(start)
				}
				if resume != nil && k != nil && bytes.Equal(k, resume) {
					k, _ = c.Next()
				}
				for ; k != nil && len(chunk) < ledgerChunk; k, _ = c.Next() {
					var sk []byte
					if index != nil {
						if !bytes.HasPrefix(k, prefix) {
							done = true
							return nil
						}
						if len(k) != len(prefix)+8 {
							continue
						}
						sk = k[len(prefix):]
					} else {
						sk = k
					}
					resume = bytes.Clone(k)
					seq := binary.BigEndian.Uint64(sk)
					if seq > maxSeq {
						done = true
						return nil
					}
					var e ledger.Entry
					ok, err := getJSON(b, sk, &e)
					if err != nil {
						return fmt.Errorf("ledger entry %d: %w", seq, err)
					}
					if !ok {
						return fmt.Errorf("ledger index %q points to missing entry %d: the store is damaged; restore it from a backup", k, seq)
					}
					if matchEntry(f, &e) {
						chunk = append(chunk, e)
					}
				}
				if k == nil {
					done = true
				}
				return nil
			})
			if err != nil {
				yield(ledger.Entry{}, fmt.Errorf("read ledger from %s: %w", s.path, err))
				return
			}
			for _, e := range chunk {
				if !yield(e, nil) {
					return
				}
			}
			if done {
				return
			}
		}
	}
}

// CustomerLink implements store.LedgerStore.
func (s *Store) CustomerLink(ctx context.Context, customerID string) (ledger.Link, bool, error) {
	var l ledger.Link
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCustomerLinks)
		if b == nil {
			return nil
		}
		var err error
		ok, err = getJSON(b, []byte(customerID), &l)
		return err
	})
	return l, ok, err
}

// LinkCustomer implements store.LedgerStore.
func (s *Store) LinkCustomer(ctx context.Context, l ledger.Link) (ledger.Link, error) {
	var out ledger.Link
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		if err := ensureLedgerBuckets(tx); err != nil {
			return nil, err
		}
		b := tx.Bucket(bucketCustomerLinks)
		var old ledger.Link
		ok, err := getJSON(b, []byte(l.CustomerID), &old)
		if err != nil {
			return nil, err
		}
		if ok {
			out = old
			if old.PayeeCode == l.PayeeCode {
				return nil, nil
			}
			return fmt.Errorf("customer %s is linked to %s since %s: %w; staff can move it", l.CustomerID, old.PayeeCode,
				old.LinkedAt.Format(time.DateOnly), store.ErrCustomerLinked), nil
		}
		out = l
		return nil, putJSON(b, []byte(l.CustomerID), l)
	})
	return out, err
}

// MoveCustomer implements store.LedgerStore.
func (s *Store) MoveCustomer(ctx context.Context, m ledger.Move) (ledger.Move, error) {
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		if err := ensureLedgerBuckets(tx); err != nil {
			return nil, err
		}
		b := tx.Bucket(bucketCustomerLinks)
		var old ledger.Link
		if _, err := getJSON(b, []byte(m.CustomerID), &old); err != nil {
			return nil, err
		}
		m.From = old.PayeeCode
		if err := putJSON(b, []byte(m.CustomerID), ledger.Link{CustomerID: m.CustomerID, PayeeCode: m.To, Source: ledger.LinkMoved, LinkedAt: m.At}); err != nil {
			return nil, err
		}
		mb := tx.Bucket(bucketCustomerMoves)
		n, err := mb.NextSequence()
		if err != nil {
			return nil, err
		}
		return nil, putJSON(mb, joinKey(m.CustomerID, seqBytes(n)), m)
	})
	return m, err
}

// CustomerMoves implements store.LedgerStore.
func (s *Store) CustomerMoves(ctx context.Context, customerID string) ([]ledger.Move, error) {
	var out []ledger.Move
	err := s.scanPrefix(bucketCustomerMoves, joinKey(customerID, nil), func(k, v []byte) error {
		var m ledger.Move
		if err := json.Unmarshal(v, &m); err != nil {
			return fmt.Errorf("decode move %q: %w", k, err)
		}
		out = append(out, m)
		return nil
	})
	return out, err
}

// AddClick implements store.LedgerStore.
func (s *Store) AddClick(ctx context.Context, c ledger.Click) error {
	return s.write(ctx, func(tx *bolt.Tx) error {
		if err := ensureLedgerBuckets(tx); err != nil {
			return err
		}
		b := tx.Bucket(bucketClicks)
		n, err := b.NextSequence()
		if err != nil {
			return err
		}
		return putJSON(b, joinKey(c.VisitorID, seqBytes(n)), c)
	})
}

// Clicks implements store.LedgerStore.
func (s *Store) Clicks(ctx context.Context, visitorID string) ([]ledger.Click, error) {
	var out []ledger.Click
	err := s.scanPrefix(bucketClicks, joinKey(visitorID, nil), func(k, v []byte) error {
		var c ledger.Click
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode click %q: %w", k, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// SetInstallCustomer implements store.LedgerStore.
func (s *Store) SetInstallCustomer(ctx context.Context, installID, customerID string, at time.Time) (store.Install, error) {
	return s.updateInstall(ctx, installID, func(tx *bolt.Tx, in *store.Install) (error, error) {
		if in.CustomerID == customerID {
			return nil, nil
		}
		if in.CustomerID != "" {
			return fmt.Errorf("install %s belongs to customer %s, not %s: %w", installID, in.CustomerID, customerID, store.ErrInstallCustomer), nil
		}
		if err := ensureLedgerBuckets(tx); err != nil {
			return nil, err
		}
		in.CustomerID = customerID
		if err := tx.Bucket(bucketCustInstalls).Put(joinKey(customerID, []byte(installID)), nil); err != nil {
			return nil, err
		}
		return nil, addEvent(tx, store.Event{InstallID: installID, Kind: store.EventCustomer, At: at, By: "billing", Why: "billing customer " + customerID})
	})
}

// CustomerInstalls implements store.LedgerStore.
func (s *Store) CustomerInstalls(ctx context.Context, customerID string) ([]string, error) {
	var out []string
	prefix := joinKey(customerID, nil)
	err := s.scanPrefix(bucketCustInstalls, prefix, func(k, _ []byte) error {
		out = append(out, string(k[len(prefix):]))
		return nil
	})
	return out, err
}

func (s *Store) scanPrefix(bucket, prefix []byte, fn func(k, v []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

// reportTimes is the part of a stored report liveness needs.
type reportTimes struct {
	At      time.Time `json:"at"`
	Summary *struct {
		FirstAt time.Time `json:"first_at"`
		LastAt  time.Time `json:"last_at"`
	} `json:"summary"`
}

// ReportedIn implements store.LedgerStore. Reports received before from
// cannot be dated in the period (a date is capped at its receipt), so
// they are skipped without decoding; the scan stops at the first hit.
func (s *Store) ReportedIn(ctx context.Context, installID string, from, to time.Time) (bool, error) {
	in, err := s.GetInstall(ctx, installID)
	if err != nil {
		return false, err
	}
	if in.LastSeen.Before(from) {
		return false, nil
	}
	err = s.scanReports(ctx, installID, 0, 0, func(seq uint64, v []byte) error {
		received, body, err := decodeReport(v)
		if err != nil {
			return fmt.Errorf("report %s/%d: %w", installID, seq, err)
		}
		if received.Before(from) {
			return nil
		}
		var rt reportTimes
		if err := json.Unmarshal(body, &rt); err != nil {
			return fmt.Errorf("decode report %s/%d: %w", installID, seq, err)
		}
		first, last := rt.At, rt.At
		if rt.Summary != nil {
			first, last = rt.Summary.FirstAt, rt.Summary.LastAt
		}
		if last.After(received) {
			last = received
		}
		if first.After(last) {
			first = last
		}
		// [first, last] meets [from, to)
		if !last.Before(from) && first.Before(to) {
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		return true, nil
	}
	return false, err
}

// PutPaymentAliases implements store.LedgerStore. An alias keeps the
// payment it was first recorded for.
func (s *Store) PutPaymentAliases(ctx context.Context, aliases map[string]string) error {
	if len(aliases) == 0 {
		return nil
	}
	return s.write(ctx, func(tx *bolt.Tx) error {
		if err := ensureLedgerBuckets(tx); err != nil {
			return err
		}
		b := tx.Bucket(bucketPaymentAliases)
		for alias, id := range aliases {
			if b.Get([]byte(alias)) != nil {
				continue
			}
			if err := b.Put([]byte(alias), []byte(id)); err != nil {
				return err
			}
		}
		return nil
	})
}

// PaymentAlias implements store.LedgerStore.
func (s *Store) PaymentAlias(ctx context.Context, alias string) (string, bool, error) {
	var id string
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPaymentAliases)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(alias)); v != nil {
			id, ok = string(v), true
		}
		return nil
	})
	return id, ok, err
}

// SetPartnerBillingAccount implements store.LedgerStore. It rewrites the
// partner record in place (the partners bucket is the one CreatePartner
// writes), in one transaction.
func (s *Store) SetPartnerBillingAccount(ctx context.Context, code, account string, at time.Time) (store.Partner, error) {
	var p store.Partner
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		var err error
		p, err = getPartner(tx, code)
		if err != nil {
			return err, nil
		}
		p.BillingAccount, p.UpdatedAt = account, at
		return nil, putJSON(tx.Bucket(bucketPartners), []byte(code), p)
	})
	return p, err
}
