// Package boltstore is the registry's embedded storage engine: one bbolt
// file, with many concurrent writers grouped into one durable step per
// fsync (group commit). Heartbeat reports, the bulk of the writes, are made
// durable through a report log beside the file (reportlog.go) and reach
// the bbolt file in periodic checkpoints, which commit in the background
// while the next reports go to a second log; every other write is a bbolt
// commit of its own group. Either way a write returns only once it is on
// disk, and the store reopens to exactly what was acknowledged.
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/switchboard-dev/switchboard/internal/linger"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// Bucket names. The layout is described by store.SchemaVersion; changing it
// means a new version and a migration in migrate.
var (
	bucketMeta        = []byte("meta")
	bucketPartners    = []byte("partners")     // code → Partner JSON
	bucketInstalls    = []byte("installs")     // id → Install JSON
	bucketInstallKeys = []byte("install_keys") // Ed25519 public key → id
	// bucketReports holds a bucket per install: seq(8, BE) → report value.
	// One tree per install means a heartbeat appends at the end of its own
	// install's tree, however many installs report between checkpoints.
	bucketReports   = []byte("install_reports")
	bucketConflicts = []byte("conflicts") // id "/" seq(8) n(8) → report value (same seq, other content)
	bucketEvents    = []byte("events")    // id "/" n(8) → Event JSON
	bucketLicences  = []byte("licences")  // id → armoured licence last issued

	keySchemaVersion = []byte("schema_version")
	keyCreatedAt     = []byte("created_at")
	// keyLogApplied is the newest report log generation whose entries are
	// all in the file (8 bytes BE): a log of that generation or older holds
	// nothing to replay.
	keyLogApplied = []byte("report_log_applied")

	allBuckets = [][]byte{bucketMeta, bucketPartners, bucketInstalls, bucketInstallKeys, bucketReports, bucketConflicts, bucketEvents, bucketLicences}
)

// LogSuffix and SpareLogSuffix name the two report log files of a store:
// the store's path with them appended ("registry.db-wal",
// "registry.db-wal2"). They belong with the store file: copy all three,
// or stop the registry first (a clean close leaves nothing in the logs).
const (
	LogSuffix      = "-wal"
	SpareLogSuffix = "-wal2"
)

// Options tune the engine.
type Options struct {
	// LockTimeout is how long Open waits for another process holding the file.
	LockTimeout time.Duration
	// MaxGroup bounds how many writes share one durable step.
	MaxGroup int
	// OnCommit, when set, is called after every durable group with the
	// number of writes in it and how long making them durable took (a
	// report log write with its fdatasync, or a bbolt commit).
	OnCommit func(writes int, took time.Duration)
	// OnCheckpoint, when set, is called after every checkpoint with the
	// number of logged writes it brought into the bbolt file and how long
	// the commit took.
	OnCheckpoint func(logged int, took time.Duration)
	// Linger is how long a group is held open for more writes once the
	// queue is drained, but only while the store is under concurrent load
	// (the previous group had more than one write): a lone write is made
	// durable at once. 0 means the default (500µs); negative disables it.
	Linger time.Duration
	// CheckpointInterval is how long logged reports wait at most before a
	// checkpoint commits them to the bbolt file. 0 means the default (1s).
	CheckpointInterval time.Duration
	// CheckpointBytes is the report log size that triggers a checkpoint. 0
	// means the default (32 MiB). While a checkpoint is in flight the next
	// log may grow to maxLogFactor times that before writes wait for it.
	CheckpointBytes int64
}

// initialMmapSize is address space, not memory: a store growing within it
// is never remapped, which copies every value a checkpoint holds out of
// the old mapping. On a 32-bit system bbolt's own growth applies.
const initialMmapSize = (1 << 30) * (strconv.IntSize / 64)

// Store is a store.Store on one bbolt file and its report log.
type Store struct {
	db   *bolt.DB
	path string
	opts Options

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *op
	done   chan struct{}

	// The committer's state; only the committer goroutine touches it
	// (Open and Close before it starts and after it ends).
	log *reportLog
	// spare is the other log file. While a checkpoint commits the
	// generation of one file in the background (ckpt), the next generation
	// is written to the other; spareUnapplied says a checkpoint of spare's
	// generation failed, so it is replayed with log's until one succeeds.
	spare          *reportLog
	spareUnapplied bool
	ckpt           *checkpointRun
	replaying      bool                 // restore: installs are read from the transaction only
	commitTx       func(*bolt.Tx) error // (*bolt.Tx).Commit; tests hold it or fail it
	laterBudget    time.Duration        // laterSlice; tests make it tiny
	// later holds the changes to the file of the writes made durable while
	// a checkpoint was in flight or its later ones were being applied
	// (commitEarly): applied in order, a slice at a time (applyLater).
	later    []func(tx *bolt.Tx) error
	tx       *bolt.Tx  // the open write transaction: logged writes since the last checkpoint
	logged   int       // writes logged since the last checkpoint
	since    time.Time // when the first of them was logged
	logStale bool      // the log's generation is applied: checkpoint every group until a reset works
	// failed is set when the transaction could not be rebuilt from the log
	// after a failure: the store refuses every write with it from then on,
	// and a restart replays the log.
	failed  error
	entries []byte // the log entries of the group being written
	// unapplied mirrors logged > 0 for readers (see viewFresh).
	unapplied atomic.Bool

	// pending holds the installs written by the group being made durable,
	// unsaved those made durable through the log whose records are not in
	// the transaction yet (saveInstalls); both belong to the committer.
	// Once a group is durable its installs go into cache, so the hot path
	// decodes an install once, not on every heartbeat. The cache only ever
	// holds durable state, and every unsaved install (see remember).
	pending map[string]store.Install
	unsaved map[string]store.Install
	// saving holds the unsaved installs an in-flight checkpoint writes: kept
	// from eviction until it is durable.
	saving  map[string]store.Install
	cacheMu sync.RWMutex
	cache   map[string]store.Install
}

// maxCached bounds the install cache; beyond it arbitrary entries go.
const maxCached = 200000

var _ store.Store = (*Store)(nil)

// op is one write waiting for the committer.
type op struct {
	// fn changes the transaction; nil asks for a checkpoint.
	fn func(tx *bolt.Tx) error
	// entry, set for a logged write, appends the payload of the write's log
	// entry to dst after fn succeeded, or returns dst as it is when fn
	// changed nothing. Without entry the write is made durable by a commit.
	entry func(dst []byte) []byte
	// early, optional for a logged write, does what fn does without the
	// transaction while a checkpoint has it: it decides on the installs in
	// memory and returns the changes to the file to apply later, or false
	// when it cannot decide that way (the write then waits for the
	// checkpoint). The log entry and the answer are the same either way.
	early func() (later func(tx *bolt.Tx) error, ok bool)
	errc  chan error
}

// checkpointRun is a checkpoint committing in the background.
type checkpointRun struct {
	done   chan error // the commit's result
	logged int        // logged writes it brings into the file
	start  time.Time
}

// Open opens (creating if needed) the store at path and its report log,
// replaying into the file what the log holds from before a crash. A store
// written by a newer binary is refused with an error wrapping
// store.ErrNewerSchema.
func Open(path string, opts Options) (*Store, error) {
	if opts.LockTimeout == 0 {
		opts.LockTimeout = 2 * time.Second
	}
	if opts.MaxGroup <= 0 {
		opts.MaxGroup = 1024
	}
	if opts.Linger == 0 {
		opts.Linger = 500 * time.Microsecond
	}
	if opts.CheckpointInterval <= 0 {
		opts.CheckpointInterval = time.Second
	}
	if opts.CheckpointBytes <= 0 {
		opts.CheckpointBytes = 32 << 20
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The freelist is rebuilt on open instead of written on every
		// commit: fewer pages per fsync, same durability of the data.
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: initialMmapSize,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: another process (a running registry?) holds it: stop it first", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := initSchema(db, path); err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &Store{db: db, path: path, opts: opts, ops: make(chan *op, 4096), done: make(chan struct{}), commitTx: (*bolt.Tx).Commit, laterBudget: laterSlice,
		pending: map[string]store.Install{}, unsaved: map[string]store.Install{}, cache: map[string]store.Install{}}
	if err := s.openLog(); err != nil {
		_ = db.Close()
		return nil, err
	}
	go s.commitLoop()
	return s, nil
}

// openLog opens the report log, replays what it holds that the file does
// not, and starts a new generation.
func (s *Store) openLog() error {
	log, gen, payloads, err := openReportLog(s.path + LogSuffix)
	if err != nil {
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	spare, spareGen, sparePayloads, err := openReportLog(s.path + SpareLogSuffix)
	if err != nil {
		_ = log.close()
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	// The file with the newer generation is the current log; the other
	// may hold the generation before it, whose checkpoint a crash cut.
	if spareGen > gen {
		log, spare, gen, spareGen, payloads, sparePayloads = spare, log, spareGen, gen, sparePayloads, payloads
	}
	s.log, s.spare = log, spare
	var applied uint64
	err = s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(keyLogApplied); len(v) == 8 {
			applied = binary.BigEndian.Uint64(v)
		}
		return nil
	})
	if spareGen > applied {
		payloads = append(sparePayloads, payloads...)
	}
	switch {
	case err != nil:
	case gen > applied && len(payloads) > 0:
		err = s.begin()
		for i := 0; err == nil && i < len(payloads); i++ {
			if err = s.replayEntry(s.tx, payloads[i]); err != nil {
				err = fmt.Errorf("replay report log %s, entry %d of %d: %w", log.path, i+1, len(payloads), err)
			}
		}
		if err == nil {
			s.logged = len(payloads)
			err = s.checkpoint() // marks gen applied and starts gen+1
		}
		if err == nil {
			s.remember(true)
		}
	default:
		err = log.reset(max(gen, applied) + 1)
	}
	if err != nil {
		if s.tx != nil {
			_ = s.tx.Rollback()
		}
		_ = log.close()
		_ = spare.close()
		return fmt.Errorf("open store %s: %w", s.path, err)
	}
	return nil
}

func putApplied(tx *bolt.Tx, gen uint64) error {
	return tx.Bucket(bucketMeta).Put(keyLogApplied, binary.BigEndian.AppendUint64(nil, gen))
}

// initSchema creates the buckets of a new store, or checks the version of
// an existing one.
func initSchema(db *bolt.DB, path string) error {
	version, err := ReadSchemaVersion(db)
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	if version > store.SchemaVersion {
		return fmt.Errorf("open store %s: it has schema version %d but this switchboard binary knows up to version %d: run the newer switchboard that wrote it (never downgrade a registry): %w",
			path, version, store.SchemaVersion, store.ErrNewerSchema)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if version == 0 {
			return tx.Bucket(bucketMeta).Put(keyCreatedAt, []byte(time.Now().UTC().Format(time.RFC3339)))
		}
		return nil
	})
	if err == nil && version == 1 {
		err = migrateReportsV1(db)
	}
	if err == nil && version != store.SchemaVersion {
		err = db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte(strconv.Itoa(store.SchemaVersion)))
		})
	}
	if err != nil {
		return fmt.Errorf("initialise store %s: %w", path, err)
	}
	return nil
}

// ReadSchemaVersion returns the schema version recorded in db, 0 for a new
// file.
func ReadSchemaVersion(db *bolt.DB) (int, error) {
	version := 0
	err := db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			return nil
		}
		raw := meta.Get(keySchemaVersion)
		v, err := strconv.Atoi(string(raw))
		if err != nil || v <= 0 {
			return fmt.Errorf("schema version %q is damaged: restore the store from a backup", raw)
		}
		version = v
		return nil
	})
	return version, err
}

// SetSchemaVersion overwrites the recorded schema version. It exists for
// tests of the newer-schema refusal and for future migrations.
func SetSchemaVersion(path string, version int) error {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
	if err != nil {
		return fmt.Errorf("open store %s: %w", path, err)
	}
	defer db.Close()
	return db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return meta.Put(keySchemaVersion, []byte(strconv.Itoa(version)))
	})
}

// Path is the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close lets every queued write become durable, checkpoints the report
// log into the file and closes both.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.ops)
	s.mu.Unlock()
	<-s.done
	if s.ckpt != nil {
		s.endCheckpoint(<-s.ckpt.done)
	}
	// A failed store keeps its log as it is, for the next start to replay.
	err := s.failed
	if err == nil {
		err = s.checkpoint()
	}
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.tx = nil
	}
	err = errors.Join(err, s.log.close(), s.spare.close())
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close store %s: %w", s.path, cerr))
	}
	return err
}

// write queues fn for the next group and waits until it is durable (a
// bbolt commit). fn runs inside a read-write transaction shared with other
// writers and may run more than once (when another writer in its group
// fails), so it must only derive its effects from tx. A non-nil error from
// fn rolls back only fn's own effects.
func (s *Store) write(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	return s.enqueue(ctx, &op{fn: fn})
}

// flush returns once every write acknowledged before it is in the bbolt
// file, so that a plain bbolt read sees it.
func (s *Store) flush(ctx context.Context) error {
	return s.enqueue(ctx, &op{})
}

// viewFresh is db.View after flush when logged writes are waiting for a
// checkpoint: reads of installs, reports and events see every write
// acknowledged before they began.
func (s *Store) viewFresh(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if s.unapplied.Load() {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	return s.db.View(fn)
}

func (s *Store) enqueue(ctx context.Context, o *op) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o.errc = make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	// Once queued the write is not withdrawn: waiting here even when ctx
	// ends keeps "answered" and "durable" the same thing.
	return <-o.errc
}

// commitLoop takes every write queued while the previous fsync ran and
// makes them durable together; under concurrent load it lingers a little
// for more (Options.Linger). While logged writes wait for a checkpoint it
// also wakes up to checkpoint them when the interval is over.
func (s *Store) commitLoop() {
	defer close(s.done)
	group := make([]*op, 0, s.opts.MaxGroup)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	busy := false // the previous group had company
	for {
		var (
			first *op
			due   <-chan time.Time
			ended <-chan error
		)
		switch {
		case s.ckpt != nil:
			ended = s.ckpt.done
		case s.logged > 0 && s.failed == nil:
			idle.Reset(time.Until(s.since.Add(s.opts.CheckpointInterval)))
			due = idle.C
		}
		select {
		case o, ok := <-s.ops:
			idle.Stop()
			if !ok {
				return
			}
			first = o
		case <-due:
			// Deferred writes first, a slice at a time between groups,
			// then the checkpoint. A failure leaves the writes in the log
			// and the transaction; the next group's checkpoint reports it.
			if len(s.later) > 0 {
				s.applyLater(s.laterBudget)
			} else {
				s.startCheckpoint()
			}
			continue
		case err := <-ended:
			s.endCheckpoint(err)
			continue
		}
		// Linger only under concurrent load, for writes in flight towards
		// the queue: a lone write is made durable at once.
		wait := time.Duration(0)
		if busy {
			wait = s.opts.Linger
		}
		group, _ = linger.Fill(s.ops, append(group[:0], first), s.opts.MaxGroup, s.opts.MaxGroup, wait, timer)
		busy = len(group) > 1
		s.commit(group)
	}
}

// commit applies a group to the open transaction and makes it durable: by
// writing the log entries of its logged writes, or, when the group holds
// another write, a checkpoint request, or the log is due (size, age), by
// committing the transaction (a checkpoint). A writer whose fn fails is
// answered with its error and the rest are retried without it, the same
// contract as bbolt's DB.Batch.
func (s *Store) commit(group []*op) {
	if s.ckpt != nil || len(s.later) > 0 {
		if s.commitEarly(group) {
			return
		}
		if s.ckpt != nil {
			s.endCheckpoint(<-s.ckpt.done)
		}
		s.applyLater(0)
	}
	for len(group) > 0 {
		if s.failed != nil {
			answer(group, s.failed)
			return
		}
		start := time.Now()
		err := s.begin()
		if err != nil {
			answer(group, err)
			return
		}
		checkpoint := s.logStale
		logged := 0
		failed := -1
		s.entries = s.entries[:0]
		for i, o := range group {
			if o.fn == nil {
				checkpoint = true
				continue
			}
			if err = o.fn(s.tx); err != nil {
				failed = i
				break
			}
			if o.entry == nil {
				checkpoint = true
				continue
			}
			mark := len(s.entries)
			buf, at := beginEntry(s.entries)
			buf = o.entry(buf)
			if len(buf) == at+entryHeader {
				s.entries = buf[:mark] // nothing changed: nothing to log
				continue
			}
			s.entries = finishEntry(buf, at, s.log.gen)
			logged++
		}
		if failed >= 0 {
			// fn may have changed the transaction before it failed: go back
			// to the last durable state and retry the others without it.
			group[failed].errc <- err
			group = slices.Delete(group, failed, failed+1)
			if rerr := s.restore(); rerr != nil {
				answer(group, rerr)
				return
			}
			continue
		}
		// A checkpoint that is due only by the log's age or size starts
		// after the group is logged and answered, and commits in the
		// background; one the group needs commits now.
		due := s.checkpointDue(int64(len(s.entries)))
		if due && (s.logStale || s.spareUnapplied) {
			checkpoint = true
		}
		if checkpoint {
			// The commit makes the group durable: its entries need not be
			// written.
			s.logged += logged
			if err = s.checkpoint(); err != nil {
				s.logged -= logged
			}
		} else if err = s.log.append(s.entries); err != nil {
			// Not durable, and the log may hold part of the group after
			// its last good entry: go back to what the log holds and
			// commit that, so that nothing written after this group can
			// follow a torn entry.
			if rerr := s.restore(); rerr != nil {
				err = errors.Join(err, rerr)
			} else {
				s.logStale = true
			}
		} else if logged > 0 {
			if s.logged == 0 {
				s.since = start
			}
			s.logged += logged
			s.unapplied.Store(true)
		}
		if err == nil {
			s.remember(checkpoint)
		} else {
			clear(s.pending)
		}
		answer(group, err)
		if err == nil && s.opts.OnCommit != nil {
			s.opts.OnCommit(len(group), time.Since(start))
		}
		if err == nil && due && !checkpoint {
			s.startCheckpoint()
		}
		return
	}
}

// commitEarly makes a group durable while a checkpoint holds the
// transaction, when every write in it can be decided without it (see
// op.early): their entries go to the log of the next generation and their
// changes to the file wait in later. It returns false, having changed
// nothing, when the group has to wait for the checkpoint.
func (s *Store) commitEarly(group []*op) bool {
	start := time.Now()
	s.entries = s.entries[:0]
	mark := len(s.later)
	undo := func() { // back to before the group: the answers are not given yet
		clear(s.pending)
		s.later = s.later[:mark]
	}
	logged := 0
	for _, o := range group {
		var later func(*bolt.Tx) error
		ok := o.early != nil && o.entry != nil
		if ok {
			later, ok = o.early()
		}
		if !ok {
			undo()
			return false
		}
		at := len(s.entries)
		buf, hdr := beginEntry(s.entries)
		buf = o.entry(buf)
		if len(buf) == hdr+entryHeader {
			s.entries = buf[:at]
			continue
		}
		s.entries = finishEntry(buf, hdr, s.log.gen)
		s.later = append(s.later, later)
		logged++
	}
	if s.log.size()+int64(len(s.entries)) >= maxLogFactor*s.opts.CheckpointBytes {
		// The disk falls behind: wait for the checkpoint rather than let
		// the log (and the replay after a crash) grow without bound.
		undo()
		return false
	}
	if err := s.log.append(s.entries); err != nil {
		// As in commit: back to what the logs hold, committed in full
		// from now on, so nothing follows a torn entry.
		undo()
		if s.ckpt != nil {
			s.endCheckpoint(<-s.ckpt.done)
		}
		if rerr := s.restore(); rerr != nil {
			err = errors.Join(err, rerr)
		} else {
			s.logStale = true
		}
		answer(group, err)
		return true
	}
	if logged > 0 {
		if s.logged == 0 {
			s.since = start
		}
		s.logged += logged
	}
	s.remember(false)
	answer(group, nil)
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(len(group), time.Since(start))
	}
	if s.ckpt == nil {
		s.applyLater(s.laterBudget)
		if len(s.later) == 0 && s.checkpointDue(0) {
			s.startCheckpoint()
		}
	}
	return true
}

// maxLogFactor bounds a log generation, in CheckpointBytes, while a
// checkpoint is in flight or its writes wait to be applied.
const maxLogFactor = 2

// laterSlice is how long the committer applies deferred writes (later)
// between two groups once their checkpoint has ended: a group waits at
// most that long for it, and a few hundred milliseconds of them are
// spread over the next groups instead of holding up one.
const laterSlice = 2 * time.Millisecond

// applyLater applies the deferred writes, in order, for about budget (0:
// all of them) into the open transaction. A failure rebuilds the
// transaction from the logs, which hold them all.
func (s *Store) applyLater(budget time.Duration) {
	if len(s.later) == 0 {
		return
	}
	start := time.Now()
	err := s.begin()
	n := 0
	for err == nil && n < len(s.later) && (budget == 0 || n == 0 || time.Since(start) < budget) {
		err = s.later[n](s.tx)
		s.later[n] = nil
		n++
	}
	if err != nil {
		_ = s.restore()
		return
	}
	s.later = s.later[n:]
	if len(s.later) == 0 {
		s.later = nil
	}
}

// checkpointDue says the logged writes, with unlogged bytes of entries
// about to join them, are old or large enough for a checkpoint.
func (s *Store) checkpointDue(unlogged int64) bool {
	return (s.logged > 0 && time.Since(s.since) >= s.opts.CheckpointInterval) ||
		s.log.size()+unlogged >= s.opts.CheckpointBytes
}

func answer(group []*op, err error) {
	for _, o := range group {
		o.errc <- err
	}
}

// begin opens the write transaction if none is open.
func (s *Store) begin() error {
	if s.tx != nil {
		return nil
	}
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("begin a write to %s: %w", s.path, err)
	}
	s.tx = tx
	clear(s.pending)
	return nil
}

// checkpoint commits the open transaction — the logged writes since the
// last checkpoint and whatever else it holds — with the log's generation
// marked applied, then starts a new log generation. When the commit fails,
// the transaction is rebuilt from the log, which still holds every logged
// write.
func (s *Store) checkpoint() error {
	s.applyLater(0)
	if s.failed != nil {
		return s.failed
	}
	if s.tx == nil {
		return nil
	}
	start, n := time.Now(), s.logged
	err := s.saveInstalls(s.tx)
	if err == nil {
		err = putApplied(s.tx, s.log.gen)
	}
	if err == nil {
		err = s.tx.Commit()
	} else {
		_ = s.tx.Rollback()
	}
	s.tx = nil
	if err != nil {
		err = fmt.Errorf("commit to %s: %w", s.path, err)
		if rerr := s.restore(); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return err
	}
	s.logged = 0
	clear(s.unsaved)
	s.spareUnapplied = false
	s.unapplied.Store(false)
	// The commit made everything durable. Until the log has a generation
	// that is not applied yet, new entries would be skipped on replay:
	// every group commits instead (logStale).
	s.logStale = s.log.reset(s.log.gen+1) != nil
	if s.opts.OnCheckpoint != nil {
		s.opts.OnCheckpoint(n, time.Since(start))
	}
	return nil
}

// startCheckpoint checkpoints in the background: the log's generation is
// committed with the transaction while writes go on into the spare log
// under the next generation (commitEarly). It checkpoints at once when the
// spare log cannot take the next generation.
func (s *Store) startCheckpoint() {
	s.applyLater(0)
	if s.tx == nil || s.failed != nil {
		return
	}
	start := time.Now()
	err := s.saveInstalls(s.tx)
	if err == nil {
		err = putApplied(s.tx, s.log.gen)
	}
	if err != nil {
		_ = s.restore() // the log holds every write; the next checkpoint tries again
		return
	}
	if s.logStale || s.spareUnapplied || s.spare.reset(s.log.gen+1) != nil {
		_ = s.checkpoint()
		return
	}
	run := &checkpointRun{done: make(chan error, 1), logged: s.logged, start: start}
	tx := s.tx
	go func() { run.done <- s.commitTx(tx) }()
	s.tx, s.ckpt = nil, run
	s.log, s.spare = s.spare, s.log
	s.logged = 0
	s.saving, s.unsaved = s.unsaved, map[string]store.Install{}
}

// endCheckpoint takes the result of the checkpoint in flight. After a
// failure the transaction is rebuilt from both logs, and the next
// checkpoint commits at once.
func (s *Store) endCheckpoint(err error) {
	run := s.ckpt
	s.ckpt = nil
	if err != nil {
		s.spareUnapplied = true
		s.logged += run.logged
		_ = s.restore() // drops later: the logs hold those writes
		return
	}
	s.saving = nil
	if s.opts.OnCheckpoint != nil {
		s.opts.OnCheckpoint(run.logged, time.Since(run.start))
	}
	// The writes made durable meanwhile go into the next transaction a
	// slice at a time, between groups (commitEarly, applyLater).
	s.unapplied.Store(s.logged > 0)
}

// restore drops the open transaction and rebuilds it from the report logs:
// the durable state of the store again. The installs the logged writes
// changed are computed again from the file's records (replaying), as on a
// restart, so that the events they raised are recorded again.
func (s *Store) restore() error {
	if s.tx != nil {
		_ = s.tx.Rollback()
		s.tx = nil
	}
	clear(s.pending)
	s.later = nil
	if s.logged == 0 {
		return nil
	}
	// The installs of a failed checkpoint are unsaved again. Readers keep
	// the cached installs meanwhile: replaying computes the same ones.
	for id, in := range s.saving {
		if _, newer := s.unsaved[id]; !newer {
			s.unsaved[id] = in
		}
	}
	s.saving = nil
	s.replaying = true
	defer func() { s.replaying = false }()
	var payloads [][]byte
	var err error
	if s.spareUnapplied {
		payloads, err = s.spare.current()
	}
	if err == nil {
		var cur [][]byte
		cur, err = s.log.current()
		payloads = append(payloads, cur...)
	}
	if err == nil {
		err = s.begin()
	}
	for i := 0; err == nil && i < len(payloads); i++ {
		err = s.replayEntry(s.tx, payloads[i])
	}
	if err == nil {
		s.remember(false)
	}
	if err != nil {
		if s.tx != nil {
			_ = s.tx.Rollback()
			s.tx = nil
		}
		s.failed = fmt.Errorf("store %s stopped taking writes: it could not rebuild the writes acknowledged since its last checkpoint from its report log: %w: "+
			"restart the registry once the disk is fixed (the log is replayed on start)", s.path, err)
		return s.failed
	}
	return nil
}

// domainWrite runs fn as a write whose domain refusal (not found, already
// linked, …) is returned without failing the shared transaction.
func (s *Store) domainWrite(ctx context.Context, fn func(tx *bolt.Tx) (refusal error, err error)) error {
	var refusal error
	err := s.write(ctx, func(tx *bolt.Tx) error {
		var err error
		refusal, err = fn(tx)
		return err
	})
	if err != nil {
		return err
	}
	return refusal
}

// installKey is the prefix of every per-install key: id "/".
func installPrefix(id string) []byte {
	b := make([]byte, 0, len(id)+1+16)
	b = append(b, id...)
	return append(b, '/')
}

// remember moves the installs of a durable group into the cache, and,
// unless the group was committed (saved), into unsaved. An unsaved install
// is never evicted: a reader that misses the cache can then read the file,
// which holds the latest state of every install not in unsaved.
func (s *Store) remember(saved bool) {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	for id, in := range s.pending {
		if _, ok := s.cache[id]; !ok && len(s.cache) >= maxCached {
			s.evictOne()
		}
		s.cache[id] = in
		if !saved {
			s.unsaved[id] = in
		}
	}
	clear(s.pending)
}

// evictOne drops an arbitrary saved install from the cache. It looks at a
// few only: when all of them wait for a checkpoint the cache grows past
// maxCached until the next one.
func (s *Store) evictOne() {
	tries := 0
	for k := range s.cache {
		_, unsaved := s.unsaved[k]
		_, saving := s.saving[k]
		if !unsaved && !saving {
			delete(s.cache, k)
			return
		}
		if tries++; tries == 8 {
			return
		}
	}
}

// cached returns a private copy of a committed install, if cached.
func (s *Store) cached(id string) (store.Install, bool) {
	s.cacheMu.RLock()
	in, ok := s.cache[id]
	s.cacheMu.RUnlock()
	if !ok {
		return in, false
	}
	return cloneInstall(in), true
}

// cloneInstall copies the parts of an install that writers change in
// place; the others are replaced wholesale, never mutated.
func cloneInstall(in store.Install) store.Install {
	in.Hosts = slices.Clone(in.Hosts)
	return in
}
