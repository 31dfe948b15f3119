// Package boltstore is the registry's embedded storage engine: one bbolt
// file, committed with fsync, with many concurrent writers grouped into one
// transaction per fsync (group commit), so heartbeat throughput is bounded
// by the disk's fsync rate times the group size rather than by one fsync per
// request.
package boltstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/switchboard-dev/switchboard/registry/store"
)

// Bucket names. The layout is described by store.SchemaVersion; changing it
// means a new version and a migration in migrate.
var (
	bucketMeta        = []byte("meta")
	bucketPartners    = []byte("partners")     // code → Partner JSON
	bucketInstalls    = []byte("installs")     // id → Install JSON
	bucketInstallKeys = []byte("install_keys") // Ed25519 public key → id
	bucketReports     = []byte("reports")      // id "/" seq(8, BE) → report value
	bucketConflicts   = []byte("conflicts")    // id "/" seq(8) n(8) → report value (same seq, other content)
	bucketEvents      = []byte("events")       // id "/" n(8) → Event JSON
	bucketLicences    = []byte("licences")     // id → armoured licence last issued

	keySchemaVersion = []byte("schema_version")
	keyCreatedAt     = []byte("created_at")

	allBuckets = [][]byte{bucketMeta, bucketPartners, bucketInstalls, bucketInstallKeys, bucketReports, bucketConflicts, bucketEvents, bucketLicences}
)

// Options tune the engine.
type Options struct {
	// LockTimeout is how long Open waits for another process holding the file.
	LockTimeout time.Duration
	// MaxGroup bounds how many writes share one transaction.
	MaxGroup int
	// OnCommit, when set, is called after every group commit with the number
	// of writes in it and how long the transaction with its fsync took.
	OnCommit func(writes int, took time.Duration)
	// Linger is how long a commit is held open for more writes once the
	// queue is drained, but only while the store is under concurrent load
	// (the previous group had more than one write): a lone write commits at
	// once. Each commit costs two fsyncs and their kernel time whatever its
	// size, so under load a short linger buys far fewer commits per write.
	// 0 means the default (500µs); negative disables lingering.
	Linger time.Duration
}

// Store is a store.Store on one bbolt file.
type Store struct {
	db   *bolt.DB
	path string
	opts Options

	mu     sync.RWMutex // guards closed against sends on ops
	closed bool
	ops    chan *op
	done   chan struct{}

	// pending holds the installs written by the group being committed; it
	// is only touched by the committer goroutine. After the commit it is
	// merged into cache, so the hot path decodes an install once, not on
	// every heartbeat.
	pending map[string]store.Install
	cacheMu sync.RWMutex
	cache   map[string]store.Install
}

// maxCached bounds the install cache; beyond it arbitrary entries go.
const maxCached = 200000

var _ store.Store = (*Store)(nil)

// op is one write waiting for the committer.
type op struct {
	fn   func(tx *bolt.Tx) error
	errc chan error
}

// Open opens (creating if needed) the store at path. A store written by a
// newer binary is refused with an error wrapping store.ErrNewerSchema.
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
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: opts.LockTimeout,
		// The freelist is rebuilt on open instead of written on every
		// commit: fewer pages per fsync, same durability of the data.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
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
	s := &Store{db: db, path: path, opts: opts, ops: make(chan *op, 4096), done: make(chan struct{}),
		pending: map[string]store.Install{}, cache: map[string]store.Install{}}
	go s.commitLoop()
	return s, nil
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
		meta := tx.Bucket(bucketMeta)
		if version == store.SchemaVersion {
			return nil
		}
		if version == 0 {
			if err := meta.Put(keyCreatedAt, []byte(time.Now().UTC().Format(time.RFC3339))); err != nil {
				return err
			}
		}
		return meta.Put(keySchemaVersion, []byte(strconv.Itoa(store.SchemaVersion)))
	})
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

// Close lets every queued write commit, then closes the file.
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
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// write queues fn for the next group commit and waits until it is durable.
// fn runs inside a read-write transaction shared with other writers and may
// run more than once (when another writer in its group fails), so it must
// only derive its effects from tx. A non-nil error from fn rolls back only
// fn's own effects.
func (s *Store) write(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{fn: fn, errc: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return store.ErrClosed
	}
	s.ops <- o
	s.mu.RUnlock()
	// Once queued the write is not withdrawn: waiting here even when ctx
	// ends keeps "answered" and "committed" the same thing.
	return <-o.errc
}

// commitLoop takes every write queued while the previous fsync ran and
// commits them in one transaction; under concurrent load it lingers a
// little for more (Options.Linger).
func (s *Store) commitLoop() {
	defer close(s.done)
	group := make([]*op, 0, s.opts.MaxGroup)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	busy := false // the previous group had company
	for first := range s.ops {
		group = append(group[:0], first)
		lingering := false
	fill:
		for len(group) < s.opts.MaxGroup {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break fill
				}
				group = append(group, o)
				continue
			default:
			}
			if !busy || s.opts.Linger < 0 || lingering {
				break
			}
			// Linger once, for writes in flight towards the queue.
			lingering = true
			timer.Reset(s.opts.Linger)
		wait:
			for len(group) < s.opts.MaxGroup {
				select {
				case o, ok := <-s.ops:
					if !ok {
						break wait
					}
					group = append(group, o)
				case <-timer.C:
					break wait
				}
			}
			timer.Stop()
		}
		busy = len(group) > 1
		s.commit(group)
	}
}

// commit runs a group in one transaction. A writer whose fn fails is
// answered with its error and the rest are retried without it, the same
// contract as bbolt's DB.Batch.
func (s *Store) commit(group []*op) {
	for len(group) > 0 {
		start := time.Now()
		failed := -1
		clear(s.pending)
		err := s.db.Update(func(tx *bolt.Tx) error {
			for i, o := range group {
				if err := o.fn(tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			group[failed].errc <- err
			group = append(group[:failed], group[failed+1:]...)
			continue
		}
		if err != nil {
			err = fmt.Errorf("commit to %s: %w", s.path, err)
		} else {
			s.remember()
		}
		for _, o := range group {
			o.errc <- err
		}
		if s.opts.OnCommit != nil {
			s.opts.OnCommit(len(group), time.Since(start))
		}
		return
	}
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

func seqKey(id string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(installPrefix(id), seq)
}

// remember moves the installs of a committed group into the cache.
func (s *Store) remember() {
	s.cacheMu.Lock()
	defer s.cacheMu.Unlock()
	for id, in := range s.pending {
		if len(s.cache) >= maxCached {
			for k := range s.cache {
				delete(s.cache, k)
				break
			}
		}
		s.cache[id] = in
	}
	clear(s.pending)
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
