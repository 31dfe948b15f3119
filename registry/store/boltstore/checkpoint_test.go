package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// heldCheckpoints opens a store whose background checkpoints start soon
// after a logged write and wait, before committing, for a value on release
// (or its close); fail makes the held commits fail instead.
func heldCheckpoints(t *testing.T) (s *Store, started <-chan struct{}, release chan struct{}, fail *atomic.Bool) {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "r.db"), Options{CheckpointInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s.laterBudget = time.Nanosecond // one deferred write between two groups
	st := make(chan struct{}, 16)
	release = make(chan struct{})
	fail = new(atomic.Bool)
	s.commitTx = func(tx *bolt.Tx) error {
		st <- struct{}{}
		<-release
		if fail.Load() {
			_ = tx.Rollback()
			return errors.New("disk full")
		}
		return tx.Commit()
	}
	return s, st, release, fail
}

// appendAsync appends heartbeats first..first+n-1 from host in a goroutine;
// the channel gets the result.
func appendAsync(t *testing.T, s *Store, id, host string, first uint64, n int) <-chan error {
	done := make(chan error, 1)
	go func() {
		// Round(0): times read back from the file carry no monotonic clock.
		_, err := s.AppendReports(context.Background(), id, benchBatch(t, host, first, n), time.Now().Round(0))
		done <- err
	}()
	return done
}

func waitFor(t *testing.T, what string, c <-chan struct{}) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("no %s after 10 s", what)
	}
}

// TestWritesGoOnDuringACheckpoint: while a checkpoint commits, new
// heartbeats (a host move and a clone flag among them) are made durable
// and answered through the other log without waiting for it; a repeat,
// which needs the file, waits. A crash while the commit is held reopens to
// exactly what was answered, and so does the store once it ends.
func TestWritesGoOnDuringACheckpoint(t *testing.T) {
	s, started, release, _ := heldCheckpoints(t)
	const a, b = "iaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ibbbbbbbbbbbbbbbbbbbbbbbbbbb"
	activate(t, s, a)
	activate(t, s, b)
	appendT(t, s, a, 1, 3) // host h
	appendT(t, s, b, 1, 2)
	waitFor(t, "checkpoint", started)

	for _, w := range []struct {
		id, host string
		first    uint64
		n        int
	}{{a, "host-b", 4, 2}, {a, "h", 6, 1}, {b, "host-a", 3, 10}} { // a back on h: a clone
		select {
		case err := <-appendAsync(t, s, w.id, w.host, w.first, w.n):
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("reports %d.. of %s waited for the checkpoint", w.first, w.id)
		}
	}
	repeat := appendAsync(t, s, a, "h", 2, 1)
	select {
	case err := <-repeat:
		t.Fatalf("a repeat was answered (%v) while the checkpoint held the file", err)
	case <-time.After(50 * time.Millisecond):
	}
	image := crashImage(t, s)
	close(release)
	if err := <-repeat; err != nil {
		t.Fatal(err)
	}

	want := snapshot(t, s, a) + snapshot(t, s, b)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if strings.Count(want, "event clone_flagged") != 1 || !strings.Contains(want, "max_seq=6 count=6 conflicts=0") || !strings.Contains(want, "max_seq=12 count=12") {
		t.Fatalf("the scenario went otherwise:\n%s", want)
	}
	if got := snapshotAt(t, image, a, b); got != want {
		t.Fatalf("crash during the checkpoint:\n%s\nwant:\n%s", got, want)
	}
	if got := snapshotAt(t, s.Path(), a, b); got != want {
		t.Fatalf("after a clean close:\n%s\nwant:\n%s", got, want)
	}
}

// TestFailedCheckpointLosesNothing: when the background commit fails, the
// writes it held and those made durable meanwhile are rebuilt from both
// logs and committed by the next checkpoint, each once.
func TestFailedCheckpointLosesNothing(t *testing.T) {
	s, started, release, fail := heldCheckpoints(t)
	const id = "ifailfailfailfailfailfailfai"
	activate(t, s, id)
	appendT(t, s, id, 1, 2) // host h
	waitFor(t, "checkpoint", started)
	fail.Store(true)
	if err := <-appendAsync(t, s, id, "host-b", 3, 2); err != nil {
		t.Fatal(err)
	}
	close(release)                                             // the commit fails
	if err := <-appendAsync(t, s, id, "h", 5, 1); err != nil { // back on h: a clone
		t.Fatal(err)
	}
	fail.Store(false)
	want := snapshot(t, s, id) // reads checkpoint first
	if !strings.Contains(want, "max_seq=5 count=5") || strings.Count(want, "event clone_flagged") != 1 || strings.Count(want, "\nreport ") != 5 {
		t.Fatalf("after a failed checkpoint:\n%s", want)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := snapshotAt(t, s.Path(), id); got != want {
		t.Fatalf("reopened:\n%s\nwant:\n%s", got, want)
	}
}

// TestRestoreKeepsCloneEvents: rebuilding the transaction after a failed
// write computes the installs again from the file, so the events their
// logged reports raised are recorded again, once.
func TestRestoreKeepsCloneEvents(t *testing.T) {
	s := openNoCheckpoint(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	const id = "iclonecloneclonecloneclonecl"
	activate(t, s, id)
	appendT(t, s, id, 1, 1)
	for _, w := range []struct {
		host  string
		first uint64
	}{{"host-b", 2}, {"h", 3}} { // back on h: a clone
		if err := <-appendAsync(t, s, id, w.host, w.first, 1); err != nil {
			t.Fatal(err)
		}
	}
	boom := errors.New("boom")
	if err := s.write(context.Background(), func(*bolt.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	got := snapshot(t, s, id)
	if strings.Count(got, "event clone_flagged") != 1 || !strings.Contains(got, "max_seq=3 count=3") {
		t.Fatalf("after a restore:\n%s", got)
	}
}

// TestDeferredWritesApplyBetweenGroups: the writes made durable during a
// checkpoint reach the file one at a time between later groups, in order
// with the groups' own, and a write that needs the file takes them all
// first: nothing is lost, doubled or reordered.
func TestDeferredWritesApplyBetweenGroups(t *testing.T) {
	s, started, release, _ := heldCheckpoints(t)
	const a, b = "iaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ibbbbbbbbbbbbbbbbbbbbbbbbbbb"
	activate(t, s, a)
	activate(t, s, b)
	appendT(t, s, a, 1, 2)
	waitFor(t, "checkpoint", started)
	for seq := uint64(3); seq <= 8; seq++ { // deferred: a one report a write, b ten
		if err := <-appendAsync(t, s, a, "h", seq, 1); err != nil {
			t.Fatal(err)
		}
		if err := <-appendAsync(t, s, b, "h", (seq-3)*10+1, 10); err != nil {
			t.Fatal(err)
		}
	}
	release <- struct{}{} // the checkpoint commits; 12 writes wait
	go func() {           // later checkpoints commit at once
		for range started {
			release <- struct{}{}
		}
	}()
	for seq := uint64(9); seq <= 11; seq++ { // each takes one deferred write along
		if err := <-appendAsync(t, s, a, "h", seq, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-appendAsync(t, s, a, "h", 5, 1); err != nil { // a repeat: needs the file
		t.Fatal(err)
	}
	got := snapshot(t, s, a) + snapshot(t, s, b)
	for _, want := range []string{"max_seq=11 count=11 conflicts=0", "max_seq=60 count=60 conflicts=0"} {
		if !strings.Contains(got, want) {
			t.Fatalf("want %s in:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "\nreport "); n != 71 {
		t.Fatalf("%d reports stored, want 71:\n%s", n, got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if again := snapshotAt(t, s.Path(), a, b); again != got {
		t.Fatalf("reopened:\n%s\nwant:\n%s", again, got)
	}
}
