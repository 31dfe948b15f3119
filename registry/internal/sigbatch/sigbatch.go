// Package sigbatch checks the Ed25519 signatures of concurrent requests
// together. Batch verification checks n signatures in one multi-scalar
// multiplication, at about half the cost per signature of checking them
// one at a time once n reaches 16 or so; under load, the signatures that
// arrive while a batch is being checked make up the next batch, so the
// registry gets the saving without holding any request back. A batch that
// does not check out is checked one signature at a time, so every caller
// gets the answer for its own signature.
//
// Signatures are checked by the rules of ZIP-215 (ed25519consensus), the
// rules under which checking alone and checking in a batch always agree.
// Every signature that crypto/ed25519 makes passes them; they accept a few
// encodings that crypto/ed25519's Verify refuses (non-canonical points,
// small-order components), which only the key holder can produce, so no
// one can sign for an install without its key either way.
package sigbatch

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hdevalence/ed25519consensus"

	"github.com/switchboard-dev/switchboard/internal/linger"
)

// MaxBatch bounds a batch: beyond a few dozen signatures the saving per
// signature stops growing, while the wait of the first in the batch does.
const MaxBatch = 64

// ErrClosed is returned by Verify after Close.
var ErrClosed = errors.New("signature verifier is closed")

// Verifier checks signatures for many goroutines with a few workers.
type Verifier struct {
	linger time.Duration
	reqs   chan *request

	batches, signatures, fallbacks atomic.Uint64
	mu                             sync.RWMutex // guards closed against sends on reqs
	done                           sync.WaitGroup

	closed bool
}

type request struct {
	pub ed25519.PublicKey
	msg []byte
	sig []byte
	ok  chan bool
}

// New starts a Verifier with the given number of workers (at least one).
// Each worker checks one batch at a time, so workers bounds the CPUs
// signature checks take.
//
// linger is how long a worker waits for company for a small batch, but
// only while signatures arrive together (its previous batch had more than
// one): a lone signature is checked at once. Under load a short linger
// turns a trickle of single checks into batches that cost half as much
// CPU; 0 turns it off.
func New(workers int, linger time.Duration) *Verifier {
	v := &Verifier{linger: linger, reqs: make(chan *request, 4*MaxBatch)}
	for range max(workers, 1) {
		v.done.Add(1)
		go v.work()
	}
	return v
}

// Verify reports whether sig is pub's signature of msg. It waits for the
// batch the signature is checked in, or until ctx ends. msg and sig must
// not change until Verify returns.
func (v *Verifier) Verify(ctx context.Context, pub ed25519.PublicKey, msg, sig []byte) (bool, error) {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false, nil
	}
	r := &request{pub: pub, msg: msg, sig: sig, ok: make(chan bool, 1)}
	v.mu.RLock()
	if v.closed {
		v.mu.RUnlock()
		return false, ErrClosed
	}
	select {
	case v.reqs <- r:
	case <-ctx.Done():
		v.mu.RUnlock()
		return false, fmt.Errorf("signature check: %w", ctx.Err())
	}
	v.mu.RUnlock()
	select {
	case ok := <-r.ok:
		return ok, nil
	case <-ctx.Done():
		// The worker still answers into the buffered channel; the
		// request's memory stays valid until then because r holds it.
		return false, fmt.Errorf("signature check: %w", ctx.Err())
	}
}

// Stats counts what a Verifier did.
type Stats struct {
	Batches    uint64 // checks run: a batch, or a lone signature
	Signatures uint64 // signatures checked
	// Fallbacks counts batches that did not check out and were checked
	// one signature at a time (a bad signature among them).
	Fallbacks uint64
}

// Stats returns the counts so far.
func (v *Verifier) Stats() Stats {
	return Stats{Batches: v.batches.Load(), Signatures: v.signatures.Load(), Fallbacks: v.fallbacks.Load()}
}

// Close lets the workers finish the signatures queued and stops them.
func (v *Verifier) Close() {
	v.mu.Lock()
	if !v.closed {
		v.closed = true
		close(v.reqs)
	}
	v.mu.Unlock()
	v.done.Wait()
}

// minBatch is the batch size from which a worker stops lingering: the
// saving per signature is most of the way there (on a 2-core machine, 100
// µs for a lone check, about 50 in a batch of 6, 40 from 16 to 64).
const minBatch = 32

func (v *Verifier) work() {
	defer v.done.Done()
	batch := make([]*request, 0, MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	busy := false // the previous batch had company
	for first := range v.reqs {
		wait := time.Duration(0)
		if busy {
			wait = v.linger
		}
		batch, _ = linger.Fill(v.reqs, append(batch[:0], first), MaxBatch, minBatch, wait, timer)
		busy = len(batch) > 1
		v.check(batch)
	}
}

// check answers every request of batch.
func (v *Verifier) check(batch []*request) {
	v.batches.Add(1)
	v.signatures.Add(uint64(len(batch)))
	if len(batch) > 1 {
		bv := ed25519consensus.NewPreallocatedBatchVerifier(len(batch))
		for _, r := range batch {
			bv.Add(r.pub, r.msg, r.sig)
		}
		if bv.Verify() {
			for _, r := range batch {
				r.ok <- true
			}
			return
		}
		v.fallbacks.Add(1)
	}
	for _, r := range batch {
		r.ok <- ed25519consensus.Verify(r.pub, r.msg, r.sig)
	}
}
