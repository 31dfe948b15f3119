// Package outbox is the agent's durable queue of reports for the registry.
//
// Every outgoing record (activation, heartbeat, link, support ticket,
// deactivation) is committed to a bbolt file before anyone tries to send
// it, and leaves it only when the registry acknowledged it (Ack) or refused
// it for good (DeadLetter). Records keep their order: keys are the
// per-install sequence numbers assigned at append, which are also the
// registry's idempotency keys.
//
// One goroutine owns every write. It takes whatever requests are waiting
// and commits them in one bbolt Update, so many appends cost one fsync.
// (bbolt's own Batch waits for company from other goroutines; from one
// writer it only adds delay.)
//
// The queue is bounded. When it is full, runs of consecutive heartbeats are
// compacted into one heartbeat_summary report; nothing else is ever
// compacted or dropped. Records handed to the sender are never compacted
// (the registry may already hold them), so Next hands out at most half the
// bound at a time: the other half always has room for a run to fold, however
// long the registry stays away. A new heartbeat that follows such a held
// heartbeat is kept over the bound as the start of the next run, and the
// next heartbeat folds into it. Only when the heartbeat would follow a record
// that can never be compacted (activation, link, support, deactivation) and
// the queue is full of such records is it refused with ErrFull (logged and
// counted, never silent); those records themselves are accepted beyond the
// bound.
//
// The bound may change while the outbox runs (SetMaxRecords, on an agent
// reload). A smaller bound than the current depth drops nothing: the queue
// is simply over its bound, and each following append compacts the oldest
// run of heartbeats exactly as when the queue fills up, so the depth comes
// down as heartbeats arrive. Records held by the sender and records that
// are never compacted stay as they are.
package outbox

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// Kind says what a record is.
type Kind string

// Record kinds.
const (
	KindActivation       Kind = "activation"
	KindHeartbeat        Kind = "heartbeat"
	KindHeartbeatSummary Kind = "heartbeat_summary"
	KindLink             Kind = "link"
	KindSupportTicket    Kind = "support_ticket"
	KindDeactivation     Kind = "deactivation"
)

var kindCodes = map[Kind]byte{
	KindActivation: 1, KindHeartbeat: 2, KindHeartbeatSummary: 3,
	KindLink: 4, KindSupportTicket: 5, KindDeactivation: 6,
}

var codeKinds = func() map[byte]Kind {
	m := map[byte]Kind{}
	for k, c := range kindCodes {
		m[c] = k
	}
	return m
}()

// IsHeartbeat reports whether records of kind k are subscription
// heartbeats, the only kind that may be compacted or batched.
func (k Kind) IsHeartbeat() bool { return k == KindHeartbeat || k == KindHeartbeatSummary }

// Record is one queued report.
type Record struct {
	Seq  uint64          `json:"seq"`
	Kind Kind            `json:"kind"`
	At   time.Time       `json:"at"` // when it was appended
	Body json.RawMessage `json:"body"`
}

// DeadLetter is a record the registry refused for good, kept so people can
// see what was refused and why.
type DeadLetter struct {
	Record
	Reason string    `json:"reason"`
	Status int       `json:"http_status,omitempty"`
	DiedAt time.Time `json:"died_at"`
}

// Stats describe the queue.
type Stats struct {
	Depth       int       `json:"depth"`
	OldestAt    time.Time `json:"oldest_at,omitzero"`
	DeadLetters int       `json:"dead_letters"`
	LastSeq     uint64    `json:"last_seq"`
	MaxRecords  int       `json:"max_records"`
	Compactions uint64    `json:"compactions"` // since start
	Compacted   uint64    `json:"compacted"`   // heartbeats folded into summaries since start
	Refused     uint64    `json:"refused"`     // heartbeats refused since start (queue full of other records)
}

// Errors.
var (
	ErrFull   = errors.New("outbox is full of records that cannot be compacted (activation, link, support, deactivation): heartbeat refused; check why the registry does not accept them (switchboard status)")
	ErrClosed = errors.New("outbox is closed")
)

var (
	bucketPending = []byte("pending")
	bucketDead    = []byte("dead")
	bucketMeta    = []byte("meta")
	keyNextSeq    = []byte("next_seq")
	keyLeased     = []byte("leased_upto")
)

// Options tune an outbox.
type Options struct {
	// MaxRecords bounds the pending records (see the package comment);
	// default 10000. SetMaxRecords changes it later.
	MaxRecords int
	// OnCompact, when set, is called (from the writer goroutine) after a
	// run of heartbeats was compacted, and OnRefuse after a heartbeat was
	// refused. The agent logs them.
	OnCompact func(folded int, into uint64)
	OnRefuse  func(err error)
	// Now is the clock (tests).
	Now func() time.Time
}

// Outbox is an opened outbox file.
type Outbox struct {
	db   *bolt.DB
	opts Options

	ops    chan *op
	quit   chan struct{}
	done   chan struct{}
	notify chan struct{}

	closeOnce sync.Once
	closeMu   sync.RWMutex // held for reading while sending to ops
	closed    bool

	// maxRecords is the bound: read by the writer at every append and by
	// Next for the lease limit, changed by SetMaxRecords (under statsMu, so
	// Stats never shows an older bound than the one in force).
	maxRecords atomic.Int64

	// Owned by the writer goroutine.
	nextSeq uint64
	leased  uint64
	depth   int
	dead    int

	statsMu sync.Mutex
	stats   Stats
}

type opKind int

const (
	opAppend opKind = iota
	opNext
	opAck
	opDead
)

type op struct {
	kind opKind
	// append
	rec Record
	// next
	max int
	// ack / dead
	seqs   []uint64
	reason string
	status int

	// results
	seq  uint64
	recs []Record
	err  error
	done chan struct{}
}

// Open opens (creating) the outbox at path. It fails at once when another
// process holds the file.
func Open(path string, opts Options) (*Outbox, error) {
	if opts.MaxRecords <= 0 {
		opts.MaxRecords = 10000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second, FreelistType: bolt.FreelistMapType})
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, fmt.Errorf("open outbox %s: the file is locked by another process (is another agent running with this state directory?)", path)
		}
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	o := &Outbox{
		db: db, opts: opts,
		ops: make(chan *op, 1024), quit: make(chan struct{}), done: make(chan struct{}),
		notify: make(chan struct{}, 1),
	}
	o.maxRecords.Store(int64(opts.MaxRecords))
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketPending, bucketDead, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		o.nextSeq = getU64(meta, keyNextSeq)
		if o.nextSeq == 0 {
			o.nextSeq = 1
		}
		o.leased = getU64(meta, keyLeased)
		pending := tx.Bucket(bucketPending)
		// Guard against a meta counter behind the data (never expected).
		if k, _ := pending.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) >= o.nextSeq {
			o.nextSeq = binary.BigEndian.Uint64(k) + 1
		}
		o.depth = pending.Stats().KeyN
		o.dead = tx.Bucket(bucketDead).Stats().KeyN
		o.refreshStats(tx)
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open outbox %s: %w", path, err)
	}
	go o.writer()
	return o, nil
}

// Close stops the writer after the requests already queued, and closes the file.
func (o *Outbox) Close() error {
	var err error
	o.closeOnce.Do(func() {
		o.closeMu.Lock()
		o.closed = true
		o.closeMu.Unlock()
		close(o.quit)
		<-o.done
		err = o.db.Close()
	})
	return err
}

// SetMaxRecords changes the bound while the outbox runs; it is safe to call
// from any goroutine. Appends committed after it returns use the new bound.
// A bound below the current depth drops nothing: the next appends compact
// the oldest runs of heartbeats as when the queue fills up (see the package
// comment).
func (o *Outbox) SetMaxRecords(n int) error {
	if n < 1 {
		return fmt.Errorf("outbox bound must be at least 1 record, not %d", n)
	}
	o.statsMu.Lock()
	o.maxRecords.Store(int64(n))
	o.stats.MaxRecords = n
	o.statsMu.Unlock()
	return nil
}

// MaxRecords returns the bound in force.
func (o *Outbox) MaxRecords() int { return int(o.maxRecords.Load()) }

// Notify returns a channel that receives after records were appended.
func (o *Outbox) Notify() <-chan struct{} { return o.notify }

// Stats returns the queue's current figures.
func (o *Outbox) Stats() Stats {
	o.statsMu.Lock()
	defer o.statsMu.Unlock()
	return o.stats
}

// Append stores a record of the given kind whose body is body (encoded as
// JSON) and returns its sequence number once it is durable.
func (o *Outbox) Append(kind Kind, body any) (uint64, error) {
	if _, ok := kindCodes[kind]; !ok || kind == KindHeartbeatSummary {
		return 0, fmt.Errorf("append to outbox: unknown record kind %q", kind)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, fmt.Errorf("append %s to outbox: encode: %w", kind, err)
	}
	p := &op{kind: opAppend, rec: Record{Kind: kind, At: o.opts.Now().UTC(), Body: raw}}
	if err := o.do(p); err != nil {
		return 0, err
	}
	return p.seq, p.err
}

// Next returns the records at the head of the queue without removing them:
// one record, or up to max consecutive heartbeats (which the sender
// delivers in one request). The returned records are marked as possibly
// sent, so they are never compacted afterwards: the registry may already
// hold them under their own sequence numbers. At most half of MaxRecords are
// returned, so a full queue always keeps heartbeats it can compact.
func (o *Outbox) Next(max int) ([]Record, error) {
	max = min(max, o.leaseLimit())
	if max < 1 {
		max = 1
	}
	p := &op{kind: opNext, max: max}
	if err := o.do(p); err != nil {
		return nil, err
	}
	return p.recs, p.err
}

// Ack removes delivered records.
func (o *Outbox) Ack(seqs ...uint64) error {
	p := &op{kind: opAck, seqs: seqs}
	if err := o.do(p); err != nil {
		return err
	}
	return p.err
}

// DeadLetter moves records the registry refused for good out of the queue
// into the dead-letter bucket, with the reason and HTTP status.
func (o *Outbox) DeadLetter(reason string, status int, seqs ...uint64) error {
	p := &op{kind: opDead, seqs: seqs, reason: reason, status: status}
	if err := o.do(p); err != nil {
		return err
	}
	return p.err
}

// DeadLetters lists the dead-letter bucket, oldest first, at most limit (0: all).
func (o *Outbox) DeadLetters(limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketDead).Cursor()
		for k, v := c.First(); k != nil && (limit == 0 || len(out) < limit); k, v = c.Next() {
			var d DeadLetter
			if err := json.Unmarshal(v, &d); err != nil {
				return fmt.Errorf("dead letter %d is damaged: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list dead letters: %w", err)
	}
	return out, nil
}

// Pending lists up to limit pending records (0: all), oldest first, without
// marking them. For status and tests.
func (o *Outbox) Pending(limit int) ([]Record, error) {
	var out []Record
	err := o.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketPending).Cursor()
		for k, v := c.First(); k != nil && (limit == 0 || len(out) < limit); k, v = c.Next() {
			r, err := decode(k, v)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pending records: %w", err)
	}
	return out, nil
}

func (o *Outbox) do(p *op) error {
	p.done = make(chan struct{})
	o.closeMu.RLock()
	if o.closed {
		o.closeMu.RUnlock()
		return ErrClosed
	}
	o.ops <- p
	o.closeMu.RUnlock()
	<-p.done
	return nil
}

// leaseLimit is the most records Next hands out at once: half the bound, so
// that with the sender holding its batch through any number of failed
// attempts the other half of a full queue is still free to compact.
func (o *Outbox) leaseLimit() int { return max(1, o.MaxRecords()/2) }

// maxGroup bounds how many requests share one transaction, so one commit
// stays short and callers see steady latency.
const maxGroup = 4096

func (o *Outbox) writer() {
	defer close(o.done)
	group := make([]*op, 0, 64)
	for {
		group = group[:0]
		select {
		case p := <-o.ops:
			group = append(group, p)
		case <-o.quit:
			// Finish what was queued before Close.
			for {
				select {
				case p := <-o.ops:
					group = append(group, p)
					continue
				default:
				}
				break
			}
			if len(group) > 0 {
				o.commit(group)
			}
			return
		}
	more:
		for len(group) < maxGroup {
			select {
			case p := <-o.ops:
				group = append(group, p)
			default:
				break more
			}
		}
		o.commit(group)
	}
}

func (o *Outbox) commit(group []*op) {
	savedNext, savedLeased, savedDepth, savedDead := o.nextSeq, o.leased, o.depth, o.dead
	var compactions, compacted, refused uint64
	appended := false
	err := o.db.Update(func(tx *bolt.Tx) error {
		pending, dead, meta := tx.Bucket(bucketPending), tx.Bucket(bucketDead), tx.Bucket(bucketMeta)
		for _, p := range group {
			p.err, p.seq, p.recs = nil, 0, nil
			switch p.kind {
			case opAppend:
				c, f, r, err := o.append(tx, pending, p)
				if err != nil {
					return err
				}
				compactions, compacted, refused = compactions+c, compacted+f, refused+r
				if p.err == nil {
					appended = true
				}
			case opNext:
				if err := o.next(pending, p); err != nil {
					return err
				}
			case opAck:
				for _, s := range p.seqs {
					k := u64(s)
					if pending.Get(k) != nil {
						if err := pending.Delete(k); err != nil {
							return err
						}
						o.depth--
					}
				}
			case opDead:
				now := o.opts.Now().UTC()
				for _, s := range p.seqs {
					k := u64(s)
					v := pending.Get(k)
					if v == nil {
						continue
					}
					r, err := decode(k, v)
					if err != nil {
						return err
					}
					dl, err := json.Marshal(DeadLetter{Record: r, Reason: p.reason, Status: p.status, DiedAt: now})
					if err != nil {
						return err
					}
					if err := dead.Put(k, dl); err != nil {
						return err
					}
					if err := pending.Delete(k); err != nil {
						return err
					}
					o.depth--
					o.dead++
				}
			}
		}
		if err := meta.Put(keyNextSeq, u64(o.nextSeq)); err != nil {
			return err
		}
		if err := meta.Put(keyLeased, u64(o.leased)); err != nil {
			return err
		}
		o.refreshStats(tx)
		return nil
	})
	if err != nil {
		o.nextSeq, o.leased, o.depth, o.dead = savedNext, savedLeased, savedDepth, savedDead
		_ = o.db.View(func(tx *bolt.Tx) error { o.refreshStats(tx); return nil })
		err = fmt.Errorf("outbox commit: %w", err)
		for _, p := range group {
			p.err, p.seq, p.recs = err, 0, nil
		}
	} else {
		o.statsMu.Lock()
		o.stats.Compactions += compactions
		o.stats.Compacted += compacted
		o.stats.Refused += refused
		o.statsMu.Unlock()
	}
	for _, p := range group {
		close(p.done)
	}
	if err == nil && appended {
		select {
		case o.notify <- struct{}{}:
		default:
		}
	}
}

// append stores p.rec, compacting heartbeats when the queue is over its
// bound. A returned error aborts the transaction; a refusal is p.err.
func (o *Outbox) append(tx *bolt.Tx, pending *bolt.Bucket, p *op) (compactions, folded, refused uint64, err error) {
	p.rec.Seq = o.nextSeq
	o.nextSeq++
	if err := pending.Put(u64(p.rec.Seq), encode(p.rec)); err != nil {
		return 0, 0, 0, err
	}
	o.depth++
	if o.depth <= o.MaxRecords() {
		p.seq = p.rec.Seq
		return 0, 0, 0, nil
	}
	n, into, err := o.compactOldestRun(pending)
	if err != nil {
		return 0, 0, 0, err
	}
	if n > 0 {
		p.seq = p.rec.Seq
		if o.opts.OnCompact != nil {
			o.opts.OnCompact(n, into)
		}
		return 1, uint64(n), 0, nil
	}
	if p.rec.Kind.IsHeartbeat() {
		// No run to fold. If the record before this one is a heartbeat, it
		// is one the sender holds (an unheld one would have formed a run
		// with this record): keep this heartbeat over the bound as the start
		// of a run the next heartbeat folds into. Refuse only after a record
		// that can never be compacted.
		if o.previousIsHeartbeat(pending, p.rec.Seq) {
			p.seq = p.rec.Seq
			return 0, 0, 0, nil
		}
		if err := pending.Delete(u64(p.rec.Seq)); err != nil {
			return 0, 0, 0, err
		}
		o.depth--
		// The refused heartbeat never existed: give its seq back so the
		// registry sees no gap.
		o.nextSeq--
		p.err = ErrFull
		if o.opts.OnRefuse != nil {
			o.opts.OnRefuse(ErrFull)
		}
		return 0, 0, 1, nil
	}
	// Never drop activation, link, support or deactivation: keep it over
	// the bound.
	p.seq = p.rec.Seq
	return 0, 0, 0, nil
}

// previousIsHeartbeat reports whether the pending record just before seq is
// a heartbeat or summary.
func (o *Outbox) previousIsHeartbeat(pending *bolt.Bucket, seq uint64) bool {
	c := pending.Cursor()
	if k, _ := c.Seek(u64(seq)); k == nil {
		return false
	}
	_, v := c.Prev()
	return len(v) > 0 && codeKinds[v[0]].IsHeartbeat()
}

// compactOldestRun folds the oldest run of two or more consecutive
// heartbeats that were never handed to the sender into one summary, stored
// under the run's last sequence number so the queue order holds. It returns
// how many records were folded (0: no such run).
func (o *Outbox) compactOldestRun(pending *bolt.Bucket) (int, uint64, error) {
	c := pending.Cursor()
	var run [][]byte
	for k, v := c.Seek(u64(o.leased + 1)); k != nil; k, v = c.Next() {
		if len(v) > 0 && codeKinds[v[0]].IsHeartbeat() {
			run = append(run, append([]byte(nil), k...))
			continue
		}
		if len(run) >= 2 {
			break
		}
		run = run[:0]
	}
	if len(run) < 2 {
		return 0, 0, nil
	}
	var sum api.Report
	var s api.Summary
	for i, k := range run {
		r, err := decode(k, pending.Get(k))
		if err != nil {
			return 0, 0, err
		}
		var rep api.Report
		if err := json.Unmarshal(r.Body, &rep); err != nil {
			return 0, 0, fmt.Errorf("outbox record %d is damaged: %w", r.Seq, err)
		}
		part := api.Summary{Count: 1, FirstSeq: r.Seq, LastSeq: r.Seq, FirstAt: rep.At, LastAt: rep.At}
		if rep.Summary != nil {
			part = *rep.Summary
		}
		if i == 0 {
			s = part
		} else {
			s.Count += part.Count
			s.LastSeq, s.LastAt = part.LastSeq, part.LastAt
		}
		sum = rep // the summary carries the latest heartbeat's fields
	}
	last := binary.BigEndian.Uint64(run[len(run)-1])
	sum.Seq, sum.Kind, sum.Summary = last, api.KindHeartbeatSummary, &s
	body, err := json.Marshal(sum)
	if err != nil {
		return 0, 0, err
	}
	first, _ := decode(run[0], pending.Get(run[0]))
	for _, k := range run {
		if err := pending.Delete(k); err != nil {
			return 0, 0, err
		}
	}
	rec := Record{Seq: last, Kind: KindHeartbeatSummary, At: first.At, Body: body}
	if err := pending.Put(u64(last), encode(rec)); err != nil {
		return 0, 0, err
	}
	o.depth -= len(run) - 1
	return len(run), last, nil
}

func (o *Outbox) next(pending *bolt.Bucket, p *op) error {
	c := pending.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		r, err := decode(k, v)
		if err != nil {
			return err
		}
		if len(p.recs) > 0 && (!r.Kind.IsHeartbeat() || !p.recs[0].Kind.IsHeartbeat() || len(p.recs) >= p.max) {
			break
		}
		p.recs = append(p.recs, r)
		if !r.Kind.IsHeartbeat() {
			break
		}
	}
	if n := len(p.recs); n > 0 && p.recs[n-1].Seq > o.leased {
		o.leased = p.recs[n-1].Seq
	}
	return nil
}

func (o *Outbox) refreshStats(tx *bolt.Tx) {
	var oldest time.Time
	if k, v := tx.Bucket(bucketPending).Cursor().First(); k != nil {
		if r, err := decode(k, v); err == nil {
			oldest = r.At
		}
	}
	o.statsMu.Lock()
	o.stats.Depth = o.depth
	o.stats.OldestAt = oldest
	o.stats.DeadLetters = o.dead
	o.stats.LastSeq = o.nextSeq - 1
	o.stats.MaxRecords = o.MaxRecords()
	o.statsMu.Unlock()
}

// A stored record is one kind byte, the append time (unix nanoseconds, 8
// bytes) and the JSON body. The kind byte lets compaction scan without
// decoding JSON.
func encode(r Record) []byte {
	b := make([]byte, 9, 9+len(r.Body))
	b[0] = kindCodes[r.Kind]
	binary.BigEndian.PutUint64(b[1:9], uint64(r.At.UnixNano()))
	return append(b, r.Body...)
}

func decode(k, v []byte) (Record, error) {
	seq := binary.BigEndian.Uint64(k)
	if len(v) < 9 {
		return Record{}, fmt.Errorf("outbox record %d is damaged: %d bytes", seq, len(v))
	}
	kind, ok := codeKinds[v[0]]
	if !ok {
		return Record{}, fmt.Errorf("outbox record %d has unknown kind code %d: written by a newer agent?", seq, v[0])
	}
	return Record{
		Seq:  seq,
		Kind: kind,
		At:   time.Unix(0, int64(binary.BigEndian.Uint64(v[1:9]))).UTC(),
		Body: append(json.RawMessage(nil), v[9:]...),
	}, nil
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getU64(b *bolt.Bucket, k []byte) uint64 {
	v := b.Get(k)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}
