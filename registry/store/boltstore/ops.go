package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// reportValueVersion starts every stored report value: version byte,
// received-at (unix nanoseconds, 8 bytes BE), then the report's canonical
// JSON (built by encodeReports).
const reportValueVersion = 1

func decodeReport(v []byte) (time.Time, []byte, error) {
	if len(v) < 9 || v[0] != reportValueVersion {
		return time.Time{}, nil, fmt.Errorf("stored report value is damaged (%d bytes)", len(v))
	}
	return time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).UTC(), v[9:], nil
}

func getJSON(b *bolt.Bucket, key []byte, v any) (bool, error) {
	raw := b.Get(key)
	if raw == nil {
		return false, nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return true, fmt.Errorf("decode record %q: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %q: %w", key, err)
	}
	return b.Put(key, raw)
}

// CreatePartner implements store.Store.
func (s *Store) CreatePartner(ctx context.Context, p store.Partner) (store.Partner, error) {
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		b := tx.Bucket(bucketPartners)
		if b.Get([]byte(p.Code)) != nil {
			return fmt.Errorf("partner code %s: %w", p.Code, store.ErrExists), nil
		}
		return nil, putJSON(b, []byte(p.Code), p)
	})
	return p, err
}

// GetPartner implements store.Store.
func (s *Store) GetPartner(ctx context.Context, code string) (store.Partner, error) {
	var p store.Partner
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		p, err = getPartner(tx, code)
		return err
	})
	return p, err
}

func getPartner(tx *bolt.Tx, code string) (store.Partner, error) {
	var p store.Partner
	ok, err := getJSON(tx.Bucket(bucketPartners), []byte(code), &p)
	if err == nil && !ok {
		err = store.NotFoundf("partner %s", code)
	}
	return p, err
}

// ListPartners implements store.Store.
func (s *Store) ListPartners(ctx context.Context, f store.PartnerFilter) ([]store.Partner, error) {
	var out []store.Partner
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketPartners).ForEach(func(k, v []byte) error {
			var p store.Partner
			if err := json.Unmarshal(v, &p); err != nil {
				return fmt.Errorf("decode partner %q: %w", k, err)
			}
			if (f.Tier == "" || p.Tier == f.Tier) && (f.Status == "" || p.Status == f.Status) {
				out = append(out, p)
			}
			return nil
		})
	})
	return out, err
}

// SetPartnerStatus implements store.Store.
func (s *Store) SetPartnerStatus(ctx context.Context, code string, status store.PartnerStatus, reason string, at time.Time) (store.Partner, error) {
	var p store.Partner
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		var err error
		p, err = getPartner(tx, code)
		if err != nil {
			return err, nil
		}
		p.Status, p.StatusReason, p.UpdatedAt = status, reason, at
		return nil, putJSON(tx.Bucket(bucketPartners), []byte(code), p)
	})
	return p, err
}

// readInstall decodes an install from tx, with its armoured licence.
func readInstall(tx *bolt.Tx, id string) (store.Install, error) {
	var in store.Install
	ok, err := getJSON(tx.Bucket(bucketInstalls), []byte(id), &in)
	if err == nil && !ok {
		err = store.NotFoundf("install %s", id)
	}
	if err == nil {
		in.Licence.Armoured = string(tx.Bucket(bucketLicences).Get([]byte(id)))
	}
	return in, err
}

// getInstall is the committer's read: the group's pending version, one
// not yet saved to the transaction, the cache, or the file. The result is a
// private copy the caller may change.
func (s *Store) getInstall(tx *bolt.Tx, id string) (store.Install, error) {
	if in, ok := s.pending[id]; ok {
		return cloneInstall(in), nil
	}
	if s.replaying {
		return readInstall(tx, id)
	}
	if in, ok := s.unsaved[id]; ok {
		return cloneInstall(in), nil
	}
	if in, ok := s.cached(id); ok {
		return in, nil
	}
	return readInstall(tx, id)
}

// hasInstall reports whether an install exists, for the committer.
func (s *Store) hasInstall(tx *bolt.Tx, id string) bool {
	_, pending := s.pending[id]
	_, unsaved := s.unsaved[id]
	return pending || unsaved || tx.Bucket(bucketInstalls).Get([]byte(id)) != nil
}

// putInstall records an install the group changed. Its record is encoded
// into the transaction only when that is committed (saveInstalls): an
// install that reports fifty times between two checkpoints is encoded
// once.
func (s *Store) putInstall(_ *bolt.Tx, in store.Install) error {
	s.pending[in.ID] = in
	return nil
}

// saveInstalls writes the records of the installs changed since the last
// commit into tx; the armoured licence lives in its own bucket, so the
// record stays small.
func (s *Store) saveInstalls(tx *bolt.Tx) error {
	b := tx.Bucket(bucketInstalls)
	save := func(in store.Install) error {
		in.Licence.Armoured = ""
		return putJSON(b, []byte(in.ID), in)
	}
	for id, in := range s.unsaved {
		if _, newer := s.pending[id]; !newer {
			if err := save(in); err != nil {
				return err
			}
		}
	}
	for _, in := range s.pending {
		if err := save(in); err != nil {
			return err
		}
	}
	return nil
}

func addEvent(tx *bolt.Tx, e store.Event) error {
	b := tx.Bucket(bucketEvents)
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	return putJSON(b, binary.BigEndian.AppendUint64(installPrefix(e.InstallID), n), e)
}

// ActivateInstall implements store.Store.
func (s *Store) ActivateInstall(ctx context.Context, a store.Activation) (store.ActivationResult, error) {
	var res store.ActivationResult
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (error, error) {
		res = store.ActivationResult{}
		if id := tx.Bucket(bucketInstallKeys).Get(a.PublicKey); id != nil {
			in, err := s.getInstall(tx, string(id))
			if err != nil {
				return nil, fmt.Errorf("install key index points to a missing install: %w", err)
			}
			if in.State == store.InstallDeactivated {
				// A reinstall that kept its key: the same install comes back,
				// with its id, link and history.
				in.State, in.DeactivatedAt, in.DeactivateReason = store.InstallRegistered, time.Time{}, ""
				if err := s.putInstall(tx, in); err != nil {
					return nil, err
				}
				if err := addEvent(tx, store.Event{InstallID: in.ID, Kind: store.EventReactivated, At: a.At, By: "activation"}); err != nil {
					return nil, err
				}
			}
			res.Install = in
			return nil, nil
		}
		in := store.Install{
			ID:          a.ID,
			PublicKey:   a.PublicKey,
			State:       store.InstallRegistered,
			ActivatedAt: a.At,
			Facts:       a.Facts,
		}
		if a.PartnerCode != "" {
			p, err := getPartner(tx, a.PartnerCode)
			if err != nil {
				return fmt.Errorf("partner code %s: %w", a.PartnerCode, store.ErrPartnerNotFound), nil
			}
			if p.Status == store.PartnerApproved {
				in.PartnerCode, in.PartnerTier, in.LinkedAt, in.LinkSource = p.Code, p.Tier, a.At, "activation"
			} else {
				res.LinkNote = fmt.Sprintf("partner code %s is %s, so the install was activated without a partner; link it later with 'switchboard partner set CODE' once the partner is approved", p.Code, p.Status)
			}
		}
		if s.hasInstall(tx, in.ID) {
			return nil, fmt.Errorf("install id %s collides with an existing install", in.ID)
		}
		if err := s.putInstall(tx, in); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketInstallKeys).Put(a.PublicKey, []byte(in.ID)); err != nil {
			return nil, err
		}
		if err := addEvent(tx, store.Event{InstallID: in.ID, Kind: store.EventActivated, At: a.At, To: in.PartnerCode, By: "activation", Why: res.LinkNote}); err != nil {
			return nil, err
		}
		res.Install, res.Created = in, true
		return nil, nil
	})
	return res, err
}

// GetInstall implements store.Store.
func (s *Store) GetInstall(ctx context.Context, id string) (store.Install, error) {
	var in store.Install
	if in, ok := s.cached(id); ok {
		return in, nil
	}
	// Not cached, so not waiting for a checkpoint either (remember): the
	// file is up to date for this install.
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		in, err = readInstall(tx, id)
		return err
	})
	return in, err
}

// ListInstalls implements store.Store.
func (s *Store) ListInstalls(ctx context.Context, f store.InstallFilter) ([]store.Install, error) {
	var out []store.Install
	err := s.viewFresh(ctx, func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketInstalls).Cursor()
		k, v := c.First()
		if f.AfterID != "" {
			k, v = c.Seek([]byte(f.AfterID))
			if k != nil && string(k) == f.AfterID {
				k, v = c.Next()
			}
		}
		for ; k != nil; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var in store.Install
			if err := json.Unmarshal(v, &in); err != nil {
				return fmt.Errorf("decode install %q: %w", k, err)
			}
			if !matchInstall(in, f) {
				continue
			}
			out = append(out, in)
			if f.Limit > 0 && len(out) >= f.Limit {
				return nil
			}
		}
		return nil
	})
	return out, err
}

func matchInstall(in store.Install, f store.InstallFilter) bool {
	last := in.LastActivity()
	switch {
	case f.PartnerCode != "" && in.PartnerCode != f.PartnerCode,
		f.State != "" && in.State != f.State,
		f.Cloned && !in.Cloned,
		!f.LastSeenAfter.IsZero() && !last.After(f.LastSeenAfter),
		!f.LastSeenBefore.IsZero() && last.After(f.LastSeenBefore):
		return false
	}
	return true
}

// updateInstall loads an install inside a write, lets fn change it, and
// stores it. A refusal from fn leaves the install untouched.
func (s *Store) updateInstall(ctx context.Context, id string, fn func(tx *bolt.Tx, in *store.Install) (error, error)) (store.Install, error) {
	var out store.Install
	err := s.domainWrite(ctx, func(tx *bolt.Tx) (refusal error, err error) {
		out, refusal, err = s.updateInstallTx(tx, id, fn)
		return refusal, err
	})
	return out, err
}

// updateInstallTx is updateInstall inside tx.
func (s *Store) updateInstallTx(tx *bolt.Tx, id string, fn func(tx *bolt.Tx, in *store.Install) (error, error)) (store.Install, error, error) {
	in, err := s.getInstall(tx, id)
	if err != nil {
		if store.IsNotFound(err) {
			return in, err, nil
		}
		return in, nil, err
	}
	refusal, err := fn(tx, &in)
	if refusal != nil || err != nil {
		return in, refusal, err
	}
	return in, nil, s.putInstall(tx, in)
}

// LinkInstall implements store.Store.
func (s *Store) LinkInstall(ctx context.Context, id, code string, at time.Time) (store.Install, error) {
	return s.updateInstall(ctx, id, func(tx *bolt.Tx, in *store.Install) (error, error) {
		if in.State == store.InstallDeactivated {
			return fmt.Errorf("install %s: %w", id, store.ErrDeactivated), nil
		}
		p, err := getPartner(tx, code)
		if err != nil {
			return fmt.Errorf("partner code %s: %w", code, store.ErrPartnerNotFound), nil
		}
		if in.PartnerCode == code {
			return nil, nil
		}
		if in.Linked() {
			return fmt.Errorf("install %s is linked to %s: %w", id, in.PartnerCode, store.ErrAlreadyLinked), nil
		}
		if p.Status != store.PartnerApproved {
			return fmt.Errorf("partner %s is %s, not approved: %w", code, p.Status, store.ErrPartnerNotApproved), nil
		}
		in.PartnerCode, in.PartnerTier, in.LinkedAt, in.LinkSource = p.Code, p.Tier, at, "install"
		return nil, addEvent(tx, store.Event{InstallID: id, Kind: store.EventLinked, At: at, To: code, By: "install"})
	})
}

// MoveInstall implements store.Store.
func (s *Store) MoveInstall(ctx context.Context, id string, m store.Move) (store.Install, error) {
	return s.updateInstall(ctx, id, func(tx *bolt.Tx, in *store.Install) (error, error) {
		from := in.PartnerCode
		in.PartnerCode, in.PartnerTier, in.LinkedAt, in.LinkSource = "", "", time.Time{}, ""
		if m.To != "" {
			p, err := getPartner(tx, m.To)
			if err != nil {
				return fmt.Errorf("partner code %s: %w", m.To, store.ErrPartnerNotFound), nil
			}
			in.PartnerCode, in.PartnerTier, in.LinkedAt, in.LinkSource = p.Code, p.Tier, m.At, "admin"
		}
		return nil, addEvent(tx, store.Event{InstallID: id, Kind: store.EventMoved, At: m.At, From: from, To: m.To, By: m.By, Why: m.Why})
	})
}

// DeactivateInstall implements store.Store.
func (s *Store) DeactivateInstall(ctx context.Context, id, reason string, at time.Time) (store.Install, error) {
	return s.updateInstall(ctx, id, func(tx *bolt.Tx, in *store.Install) (error, error) {
		if in.State == store.InstallDeactivated {
			return nil, nil
		}
		in.State, in.DeactivatedAt, in.DeactivateReason = store.InstallDeactivated, at, reason
		return nil, addEvent(tx, store.Event{InstallID: id, Kind: store.EventDeactivated, At: at, By: "install", Why: reason})
	})
}

// SetLicence implements store.Store.
func (s *Store) SetLicence(ctx context.Context, id string, l store.LicenceRecord) (store.Install, error) {
	return s.updateInstall(ctx, id, func(tx *bolt.Tx, in *store.Install) (error, error) {
		in.Licence = l
		return nil, tx.Bucket(bucketLicences).Put([]byte(id), []byte(l.Armoured))
	})
}

// AppendReports implements store.Store. Keys and values are built before
// the write is queued, so the shared transaction only looks up and puts.
// The write is made durable through the report log: its entry holds the
// reports as received, and replayEntry repeats the same steps from it.
func (s *Store) AppendReports(ctx context.Context, id string, reports []store.IncomingReport, at time.Time) (store.AppendResult, error) {
	var (
		res     store.AppendResult
		in      store.Install
		refusal error
	)
	results := make([]api.ReportResult, len(reports))
	keys, vals := encodeReports(id, reports, at)
	err := s.enqueue(ctx, &op{fn: func(tx *bolt.Tx) (err error) {
		in, refusal, err = s.appendReportsTx(tx, id, reports, at, keys, vals, results)
		return err
	}, entry: func(dst []byte) []byte {
		if refusal != nil {
			return dst
		}
		return appendReportsEntry(dst, id, reports, at)
	}, early: func() (later func(*bolt.Tx) error, ok bool) {
		in, later, ok = s.appendReportsEarly(id, reports, at, keys, vals, results)
		return later, ok
	}})
	if err == nil {
		err = refusal
	}
	if err != nil {
		return res, err
	}
	res.Results, res.Install = results, in
	return res, nil
}

// appendReportsTx is AppendReports inside tx; it fills results.
func (s *Store) appendReportsTx(tx *bolt.Tx, id string, reports []store.IncomingReport, at time.Time, keys, vals [][]byte, results []api.ReportResult) (store.Install, error, error) {
	return s.updateInstallTx(tx, id, func(tx *bolt.Tx, in *store.Install) (error, error) {
		if in.State == store.InstallDeactivated {
			return fmt.Errorf("install %s: %w", id, store.ErrDeactivated), nil
		}
		rb, err := installReports(tx, id)
		if err != nil {
			return nil, err
		}
		cb := tx.Bucket(bucketConflicts)
		for i, r := range reports {
			seq := r.Report.Seq
			results[i] = api.ReportResult{Seq: seq, Status: api.StatusStored}
			key := keys[i]
			seqKey := key[len(key)-8:]
			// Every stored seq of an install (reports and conflicts) is at
			// most its MaxSeq, which is written in the same transaction:
			// above it there is nothing to look up.
			if seq <= in.MaxSeq {
				if old := rb.Get(seqKey); old != nil {
					dup, err := sameAsStored(cb, key, old, r.Raw)
					if err != nil {
						return nil, err
					}
					if dup {
						results[i].Status = api.StatusDuplicate
						continue
					}
					// Same seq, other content: keep both, flag the install.
					n, err := cb.NextSequence()
					if err != nil {
						return nil, err
					}
					if err := cb.Put(binary.BigEndian.AppendUint64(bytes.Clone(key), n), vals[i]); err != nil {
						return nil, err
					}
					in.ConflictCount++
					if reason := store.ConflictReason(seq); store.FlagClone(in, reason, at) {
						if err := addEvent(tx, store.Event{InstallID: id, Kind: store.EventCloned, At: at, Why: reason}); err != nil {
							return nil, err
						}
					}
					continue
				}
			}
			if err := rb.Put(seqKey, vals[i]); err != nil {
				return nil, err
			}
			if e, ok := applyNew(in, r.Report, at); ok {
				if err := addEvent(tx, e); err != nil {
					return nil, err
				}
			}
		}
		return nil, nil
	})
}

// applyNew folds a report stored for the first time into its install and
// returns the event to record when it shows the install cloned.
func applyNew(in *store.Install, r api.Report, at time.Time) (store.Event, bool) {
	if reason := store.ApplyReport(in, r, at); reason != "" && store.FlagClone(in, reason, at) {
		return store.Event{InstallID: in.ID, Kind: store.EventCloned, At: at, Why: reason}, true
	}
	return store.Event{}, false
}

// appendReportsEarly is appendReportsTx for a batch of reports newer than
// any the install stored (the steady flow of heartbeats), decided on the
// install in memory while a checkpoint holds the transaction: the same
// results and install, and the writes into the file returned for later.
// Anything else — an install not in memory, a deactivated one, a seq that
// needs looking up — is left to appendReportsTx (false).
func (s *Store) appendReportsEarly(id string, reports []store.IncomingReport, at time.Time, keys, vals [][]byte, results []api.ReportResult) (store.Install, func(*bolt.Tx) error, bool) {
	in, ok := s.pending[id]
	if ok {
		in = cloneInstall(in)
	} else if in, ok = s.cached(id); !ok {
		return in, nil, false
	}
	if in.State == store.InstallDeactivated {
		return in, nil, false
	}
	var events []store.Event
	for i, r := range reports {
		if r.Report.Seq <= in.MaxSeq {
			return in, nil, false
		}
		results[i] = api.ReportResult{Seq: r.Report.Seq, Status: api.StatusStored}
		if e, ok := applyNew(&in, r.Report, at); ok {
			events = append(events, e)
		}
	}
	s.pending[id] = in
	return in, func(tx *bolt.Tx) error {
		rb, err := installReports(tx, id)
		if err != nil {
			return err
		}
		for i, key := range keys {
			if err := rb.Put(key[len(key)-8:], vals[i]); err != nil {
				return err
			}
		}
		for _, e := range events {
			if err := addEvent(tx, e); err != nil {
				return err
			}
		}
		return nil
	}, true
}

// installReports is the bucket of an install's reports, created with its
// first report.
func installReports(tx *bolt.Tx, id string) (*bolt.Bucket, error) {
	all := tx.Bucket(bucketReports)
	if b := all.Bucket([]byte(id)); b != nil {
		return b, nil
	}
	b, err := all.CreateBucket([]byte(id))
	if err != nil {
		return nil, fmt.Errorf("create the report bucket of install %s: %w", id, err)
	}
	return b, nil
}

// Report log entries. An entry is one AppendReports call as it came in:
//
//	kind(1)=entryAppendReports  at(8, unix ns)  len(id)(1) id  n(4)  n × [len(raw)(4) raw]
//
// Replaying entries in log order onto the state of the last checkpoint
// repeats every decision (stored, duplicate, conflict) the first run made
// and answered, because appendReportsTx depends on nothing else.
const entryAppendReports = 1

func appendReportsEntry(dst []byte, id string, reports []store.IncomingReport, at time.Time) []byte {
	dst = append(dst, entryAppendReports)
	dst = binary.BigEndian.AppendUint64(dst, uint64(at.UnixNano()))
	dst = append(dst, byte(len(id)))
	dst = append(dst, id...)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(reports)))
	for _, r := range reports {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Raw)))
		dst = append(dst, r.Raw...)
	}
	return dst
}

// decodeReportsEntry reads an entry back. The reports are decoded from
// their stored JSON with encoding/json, as every reader of stored reports
// does. p is not retained.
func decodeReportsEntry(p []byte) (id string, reports []store.IncomingReport, at time.Time, err error) {
	bad := func(what string) (string, []store.IncomingReport, time.Time, error) {
		return "", nil, time.Time{}, fmt.Errorf("damaged entry (%d bytes): %s", len(p), what)
	}
	if len(p) < 14 || p[0] != entryAppendReports {
		return bad("not a report batch")
	}
	at = time.Unix(0, int64(binary.BigEndian.Uint64(p[1:9]))).UTC()
	idLen := int(p[9])
	if len(p) < 10+idLen+4 {
		return bad("short install id")
	}
	id = string(p[10 : 10+idLen])
	n := binary.BigEndian.Uint32(p[10+idLen:])
	rest := p[14+idLen:]
	if uint64(n) > uint64(len(rest))/4 {
		return bad("more reports than bytes")
	}
	reports = make([]store.IncomingReport, n)
	for i := range reports {
		if len(rest) < 4 {
			return bad("short report header")
		}
		size := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(size) > uint64(len(rest)) {
			return bad("short report")
		}
		raw := bytes.Clone(rest[:size])
		rest = rest[size:]
		var r api.Report
		if err := json.Unmarshal(raw, &r); err != nil {
			return bad(fmt.Sprintf("report %d is not a report: %v", i+1, err))
		}
		reports[i] = store.IncomingReport{Report: r, Raw: raw}
	}
	if len(rest) != 0 {
		return bad("bytes after the last report")
	}
	return id, reports, at, nil
}

// replayEntry applies a report log entry to tx as AppendReports did. Only
// writes that were not refused are logged, so a refusal here means the log
// and the file disagree: an error.
func (s *Store) replayEntry(tx *bolt.Tx, p []byte) error {
	id, reports, at, err := decodeReportsEntry(p)
	if err != nil {
		return err
	}
	keys, vals := encodeReports(id, reports, at)
	_, refusal, err := s.appendReportsTx(tx, id, reports, at, keys, vals, make([]api.ReportResult, len(reports)))
	if err == nil && refusal != nil {
		err = fmt.Errorf("install %s refuses the reports it took before: %w", id, refusal)
	}
	return err
}

// encodeReports builds the key and the stored value of every report in
// two buffers (two allocations per batch instead of two per report). The
// slices are capped so nothing appended to one can reach another.
func encodeReports(id string, reports []store.IncomingReport, at time.Time) (keys, vals [][]byte) {
	keyLen := len(id) + 1 + 8
	valLen := 0
	for _, r := range reports {
		valLen += 9 + len(r.Raw)
	}
	kb := make([]byte, 0, keyLen*len(reports))
	vb := make([]byte, 0, valLen)
	keys, vals = make([][]byte, len(reports)), make([][]byte, len(reports))
	nanos := uint64(at.UnixNano())
	for i, r := range reports {
		start := len(kb)
		kb = append(kb, id...)
		kb = append(kb, '/')
		kb = binary.BigEndian.AppendUint64(kb, r.Report.Seq)
		keys[i] = kb[start:len(kb):len(kb)]
		start = len(vb)
		vb = append(vb, reportValueVersion)
		vb = binary.BigEndian.AppendUint64(vb, nanos)
		vb = append(vb, r.Raw...)
		vals[i] = vb[start:len(vb):len(vb)]
	}
	return keys, vals
}

// sameAsStored reports whether raw repeats the stored report at key or one
// of the conflicting copies recorded for the same seq.
func sameAsStored(cb *bolt.Bucket, key, stored, raw []byte) (bool, error) {
	_, body, err := decodeReport(stored)
	if err != nil {
		return false, err
	}
	if store.SameReport(body, raw) {
		return true, nil
	}
	c := cb.Cursor()
	for k, v := c.Seek(key); k != nil && bytes.HasPrefix(k, key) && len(k) == len(key)+8; k, v = c.Next() {
		_, body, err := decodeReport(v)
		if err != nil {
			return false, err
		}
		if store.SameReport(body, raw) {
			return true, nil
		}
	}
	return false, nil
}

// ListReports implements store.Store.
func (s *Store) ListReports(ctx context.Context, id string, afterSeq uint64, limit int) ([]store.Report, error) {
	var out []store.Report
	err := s.scanReports(ctx, id, afterSeq, limit, func(seq uint64, v []byte) error {
		at, body, err := decodeReport(v)
		if err != nil {
			return fmt.Errorf("report %s/%d: %w", id, seq, err)
		}
		out = append(out, store.Report{InstallID: id, Seq: seq, ReceivedAt: at, Body: bytes.Clone(body)})
		return nil
	})
	return out, err
}

// ListReportSeqs implements store.Store.
func (s *Store) ListReportSeqs(ctx context.Context, id string, afterSeq uint64, limit int) ([]uint64, error) {
	var out []uint64
	err := s.scanReports(ctx, id, afterSeq, limit, func(seq uint64, _ []byte) error {
		out = append(out, seq)
		return nil
	})
	return out, err
}

// errStopScan, returned by a scanReports callback, ends the scan early;
// scanReports returns it as it is.
var errStopScan = errors.New("scan stopped")

// scanReports calls fn for an install's stored reports with Seq > afterSeq,
// in seq order, at most limit of them (0: all).
func (s *Store) scanReports(ctx context.Context, id string, afterSeq uint64, limit int, fn func(seq uint64, v []byte) error) error {
	return s.viewFresh(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketInstalls).Get([]byte(id)) == nil {
			return store.NotFoundf("install %s", id)
		}
		rb := tx.Bucket(bucketReports).Bucket([]byte(id))
		if rb == nil {
			return nil // no report yet
		}
		c := rb.Cursor()
		n := 0
		for k, v := c.Seek(binary.BigEndian.AppendUint64(nil, afterSeq)); k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return fmt.Errorf("report key %q of install %s is damaged", k, id)
			}
			seq := binary.BigEndian.Uint64(k)
			if seq <= afterSeq {
				continue
			}
			if limit > 0 && n >= limit {
				return nil
			}
			if err := fn(seq, v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

// ListEvents implements store.Store.
func (s *Store) ListEvents(ctx context.Context, id string) ([]store.Event, error) {
	var out []store.Event
	err := s.viewFresh(ctx, func(tx *bolt.Tx) error {
		prefix := installPrefix(id)
		c := tx.Bucket(bucketEvents).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var e store.Event
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode event %q: %w", k, err)
			}
			out = append(out, e)
		}
		return nil
	})
	return out, err
}
