package outbox

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
)

func open(t testing.TB, path string, max int) *Outbox {
	t.Helper()
	o, err := Open(path, Options{MaxRecords: max})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func hb(t testing.TB, o *Outbox, n int) uint64 {
	t.Helper()
	seq, err := o.Append(KindHeartbeat, api.Report{Kind: api.KindHeartbeat, At: time.Unix(int64(1000+n), 0).UTC(), Seats: map[string]int64{"n": int64(n)}})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

func TestFIFOAndDurable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "outbox.db")
	o := open(t, path, 100)
	var seqs []uint64
	seqs = append(seqs, must(o.Append(KindActivation, map[string]string{"a": "b"})))
	for i := 0; i < 5; i++ {
		seqs = append(seqs, hb(t, o, i))
	}
	seqs = append(seqs, must(o.Append(KindLink, api.LinkRequest{PartnerCode: "X"})))
	seqs = append(seqs, hb(t, o, 9))
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Fatalf("seqs not increasing: %v", seqs)
		}
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	o = open(t, path, 100)
	defer o.Close()
	if st := o.Stats(); st.Depth != 8 || st.LastSeq != seqs[7] || st.OldestAt.IsZero() {
		t.Fatalf("stats after reopen: %+v", st)
	}
	// activation alone, then the 5 heartbeats in one batch, then link, then 1.
	wantSizes := []int{1, 5, 1, 1}
	wantKinds := []Kind{KindActivation, KindHeartbeat, KindLink, KindHeartbeat}
	for i, n := range wantSizes {
		recs, err := o.Next(10)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != n || recs[0].Kind != wantKinds[i] {
			t.Fatalf("batch %d: %d records of %s, want %d of %s", i, len(recs), recs[0].Kind, n, wantKinds[i])
		}
		var ack []uint64
		for _, r := range recs {
			ack = append(ack, r.Seq)
		}
		if err := o.Ack(ack...); err != nil {
			t.Fatal(err)
		}
	}
	if recs, _ := o.Next(10); len(recs) != 0 {
		t.Fatalf("left over: %v", recs)
	}
	// Sequence numbers keep increasing after a restart.
	if s := hb(t, o, 10); s <= seqs[7] {
		t.Fatalf("seq %d reused after restart", s)
	}
}

func must(s uint64, err error) uint64 {
	if err != nil {
		panic(err)
	}
	return s
}

func TestNextBatchLimit(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 100)
	defer o.Close()
	for i := 0; i < 7; i++ {
		hb(t, o, i)
	}
	recs, _ := o.Next(3)
	if len(recs) != 3 || recs[0].Seq != 1 || recs[2].Seq != 3 {
		t.Fatalf("got %+v", recs)
	}
	// Not acked: the same head comes back.
	recs2, _ := o.Next(3)
	if recs2[0].Seq != 1 {
		t.Fatalf("unacked head lost: %+v", recs2)
	}
}

func TestCompactionWhenFull(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 10)
	defer o.Close()
	must(o.Append(KindActivation, "act"))
	for i := 0; i < 25; i++ {
		hb(t, o, i)
	}
	must(o.Append(KindSupportTicket, "ticket"))
	hb(t, o, 99)
	st := o.Stats()
	if st.Depth > 10 || st.Compactions == 0 {
		t.Fatalf("outbox not bounded: %+v", st)
	}
	recs, err := o.Pending(0)
	if err != nil {
		t.Fatal(err)
	}
	if recs[0].Kind != KindActivation {
		t.Fatalf("activation was compacted or moved: %+v", recs[0])
	}
	// Every heartbeat is accounted for: count individual ones plus summaries.
	total, tickets := 0, 0
	var lastSeq uint64
	for _, r := range recs {
		if r.Seq <= lastSeq {
			t.Fatalf("order broken at %d", r.Seq)
		}
		lastSeq = r.Seq
		switch r.Kind {
		case KindHeartbeat:
			total++
		case KindHeartbeatSummary:
			var rep api.Report
			if err := json.Unmarshal(r.Body, &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Summary == nil || rep.Summary.LastSeq != r.Seq || rep.Kind != api.KindHeartbeatSummary || rep.Seq != r.Seq {
				t.Fatalf("bad summary: %+v", rep)
			}
			total += rep.Summary.Count
		case KindSupportTicket:
			tickets++
		}
	}
	if total != 26 || tickets != 1 {
		t.Fatalf("heartbeats accounted %d (want 26), tickets %d", total, tickets)
	}
}

func TestFullOfPreciousRefusesHeartbeats(t *testing.T) {
	var refused int
	o, err := Open(filepath.Join(t.TempDir(), "o.db"), Options{MaxRecords: 10, OnRefuse: func(error) { refused++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	for i := 0; i < 10; i++ {
		must(o.Append(KindLink, i))
	}
	if _, err := o.Append(KindHeartbeat, api.Report{}); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	// Precious records are still taken beyond the bound, and the refused
	// heartbeat left no gap in the seqs.
	if s, err := o.Append(KindDeactivation, "bye"); err != nil || s != 11 {
		t.Fatalf("deactivation seq %d (want 11): %v", s, err)
	}
	if st := o.Stats(); st.Depth != 11 || st.Refused != 1 || refused != 1 {
		t.Fatalf("stats %+v refused %d", st, refused)
	}
}

func TestLeasedRecordsAreNotCompacted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	o := open(t, path, 10)
	for i := 0; i < 5; i++ {
		hb(t, o, i)
	}
	leased, _ := o.Next(5) // seqs 1..5 handed to the sender
	o.Close()
	o = open(t, path, 10) // the lease survives a crash
	defer o.Close()
	for i := 0; i < 20; i++ {
		hb(t, o, i)
	}
	recs, _ := o.Pending(0)
	for i, r := range leased {
		if recs[i].Seq != r.Seq || recs[i].Kind != KindHeartbeat {
			t.Fatalf("leased record %d was compacted: %+v", r.Seq, recs[i])
		}
	}
}

func TestDeadLetter(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 10)
	defer o.Close()
	s := must(o.Append(KindLink, api.LinkRequest{PartnerCode: "X"}))
	hb(t, o, 1)
	if err := o.DeadLetter("already linked", 409, s); err != nil {
		t.Fatal(err)
	}
	dl, err := o.DeadLetters(0)
	if err != nil || len(dl) != 1 || dl[0].Seq != s || dl[0].Status != 409 || dl[0].Kind != KindLink {
		t.Fatalf("dead letters %+v %v", dl, err)
	}
	if st := o.Stats(); st.Depth != 1 || st.DeadLetters != 1 {
		t.Fatalf("stats %+v", st)
	}
	if recs, _ := o.Next(5); recs[0].Kind != KindHeartbeat {
		t.Fatalf("queue after dead letter: %+v", recs)
	}
}

func TestConcurrentAppendsAndClose(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 100000)
	var wg sync.WaitGroup
	seen := sync.Map{}
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				s, err := o.Append(KindHeartbeat, api.Report{})
				if err != nil {
					t.Error(err)
					return
				}
				if _, dup := seen.LoadOrStore(s, true); dup {
					t.Errorf("seq %d given twice", s)
				}
			}
		}()
	}
	wg.Wait()
	if st := o.Stats(); st.Depth != 800 {
		t.Fatalf("depth %d", st.Depth)
	}
	o.Close()
	if _, err := o.Append(KindHeartbeat, api.Report{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}

func TestLockedByAnotherOpener(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	o := open(t, path, 10)
	defer o.Close()
	if _, err := Open(path, Options{}); err == nil {
		t.Fatal("second open of a locked outbox succeeded")
	}
}

func BenchmarkOutboxAppend(b *testing.B) {
	o := open(b, filepath.Join(b.TempDir(), "o.db"), 10_000_000)
	defer o.Close()
	rep := api.Report{Kind: api.KindHeartbeat, At: time.Now(), Seats: map[string]int64{"pbx_endpoints": 42},
		Facts: &api.Facts{Hostname: "pbx1", OS: "Debian 12", AgentVersion: "1.0.0"}}
	b.SetParallelism(16) // heartbeats, CLI and API callers append at once; the writer groups them
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := o.Append(KindHeartbeat, rep); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// The sender holding every record of a full box (registry down, each retry
// leases the whole head batch) must not make the box refuse heartbeats:
// they are compacted, never dropped.
func TestFullOfLeasedHeartbeatsStillCompacts(t *testing.T) {
	var refused int
	o, err := Open(filepath.Join(t.TempDir(), "o.db"), Options{MaxRecords: 10, OnRefuse: func(error) { refused++ }})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	n := 0
	for ; n < 10; n++ {
		hb(t, o, n)
	}
	for round := 0; round < 20; round++ {
		// A failed send attempt: the sender asks for far more than the box holds.
		if _, err := o.Next(500); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if _, err := o.Append(KindHeartbeat, api.Report{Kind: api.KindHeartbeat, At: time.Unix(int64(1000+n), 0).UTC()}); err != nil {
				t.Fatalf("round %d: heartbeat %d refused: %v", round, n, err)
			}
			n++
		}
		if st := o.Stats(); st.Depth > 10 {
			t.Fatalf("round %d: depth %d over the bound", round, st.Depth)
		}
	}
	st := o.Stats()
	if refused != 0 || st.Refused != 0 || st.Compactions == 0 {
		t.Fatalf("refused %d, stats %+v", refused, st)
	}
	// Every heartbeat is accounted for, and the seqs have no gap.
	recs, _ := o.Pending(0)
	total := 0
	for _, r := range recs {
		total++
		if r.Kind == KindHeartbeatSummary {
			var rep api.Report
			if err := json.Unmarshal(r.Body, &rep); err != nil {
				t.Fatal(err)
			}
			total += rep.Summary.Count - 1
		}
	}
	if total != n || st.LastSeq != uint64(n) {
		t.Fatalf("accounted %d heartbeats, last seq %d, want %d", total, st.LastSeq, n)
	}
}

// A lease wider than the current bound (the bound was lowered between
// runs) must not make the box refuse heartbeats either: the new heartbeat
// is kept over the bound and the following ones fold into it.
func TestHeartbeatAfterHeldHeartbeatIsKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "o.db")
	o := open(t, path, 20)
	for i := 0; i < 10; i++ {
		hb(t, o, i)
	}
	if recs, _ := o.Next(500); len(recs) != 10 {
		t.Fatalf("leased %d, want 10", len(recs))
	}
	o.Close()
	o = open(t, path, 10) // every record is held by the sender
	defer o.Close()
	for i := 10; i < 30; i++ {
		hb(t, o, i)
		if st := o.Stats(); st.Depth > 11 {
			t.Fatalf("after heartbeat %d: depth %d", i, st.Depth)
		}
	}
	st := o.Stats()
	if st.Refused != 0 || st.Compactions == 0 || st.LastSeq != 30 {
		t.Fatalf("stats %+v", st)
	}
	recs, _ := o.Pending(0)
	if len(recs) != 11 || recs[10].Kind != KindHeartbeatSummary || recs[9].Kind != KindHeartbeat || recs[9].Seq != 10 {
		t.Fatalf("held records were touched or the tail was not compacted: %+v", recs)
	}
}

// heartbeatsAccounted counts the heartbeats the pending records stand for
// (a summary counts for all it folded) and the other records.
func heartbeatsAccounted(t *testing.T, o *Outbox) (heartbeats, others int) {
	t.Helper()
	recs, err := o.Pending(0)
	if err != nil {
		t.Fatal(err)
	}
	var last uint64
	for _, r := range recs {
		if r.Seq <= last {
			t.Fatalf("order broken at %d", r.Seq)
		}
		last = r.Seq
		switch r.Kind {
		case KindHeartbeat:
			heartbeats++
		case KindHeartbeatSummary:
			var rep api.Report
			if err := json.Unmarshal(r.Body, &rep); err != nil {
				t.Fatal(err)
			}
			heartbeats += rep.Summary.Count
		default:
			others++
		}
	}
	return heartbeats, others
}

// TestSetMaxRecordsBelowDepth: lowering the bound under the depth drops
// nothing; the following appends compact the oldest runs, one per append,
// until the queue is back under its bound.
func TestSetMaxRecordsBelowDepth(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 100)
	defer o.Close()
	n := 0
	for run := 0; run < 3; run++ {
		for i := 0; i < 5; i++ {
			hb(t, o, n)
			n++
		}
		must(o.Append(KindLink, run))
	}
	if err := o.SetMaxRecords(0); err == nil {
		t.Fatal("a bound of 0 was accepted")
	}
	if err := o.SetMaxRecords(5); err != nil {
		t.Fatal(err)
	}
	st := o.Stats()
	if st.MaxRecords != 5 || o.MaxRecords() != 5 || st.Depth != 18 || st.Compactions != 0 {
		t.Fatalf("right after SetMaxRecords: %+v", st)
	}
	// Each append folds the oldest run of heartbeats: 5+1, 5+1, 5+1 and the
	// new one come down to at most 1+1, 1+1, 1+1 plus the tail.
	for i := 0; i < 4; i++ {
		hb(t, o, n)
		n++
	}
	st = o.Stats()
	if st.Compactions < 3 || st.Depth > 8 || st.Refused != 0 {
		t.Fatalf("after appends over the lowered bound: %+v", st)
	}
	if hbs, others := heartbeatsAccounted(t, o); hbs != n || others != 3 {
		t.Fatalf("accounted %d heartbeats and %d other records, want %d and 3", hbs, others, n)
	}
	// Raising it again lets the queue grow without compaction.
	if err := o.SetMaxRecords(1000); err != nil {
		t.Fatal(err)
	}
	before := o.Stats().Compactions
	for i := 0; i < 50; i++ {
		hb(t, o, n)
		n++
	}
	if st := o.Stats(); st.Compactions != before || st.MaxRecords != 1000 {
		t.Fatalf("after raising the bound: %+v", st)
	}
	// The lease limit follows the bound too.
	if err := o.SetMaxRecords(10); err != nil {
		t.Fatal(err)
	}
	if recs, err := o.Next(500); err != nil || len(recs) > 5 {
		t.Fatalf("Next handed out %d records with a bound of 10: %v", len(recs), err)
	}
}

// TestSetMaxRecordsWhileAppending changes the bound from another goroutine
// while the writer runs (meaningful under -race).
func TestSetMaxRecordsWhileAppending(t *testing.T) {
	o := open(t, filepath.Join(t.TempDir(), "o.db"), 50)
	defer o.Close()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			if _, err := o.Append(KindHeartbeat, api.Report{Kind: api.KindHeartbeat, At: time.Unix(int64(1000+i), 0).UTC()}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < 200; i++ {
			if err := o.SetMaxRecords(10 + i%40); err != nil {
				t.Error(err)
				return
			}
			_ = o.Stats()
			if _, err := o.Next(100); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	if hbs, _ := heartbeatsAccounted(t, o); hbs != 200 {
		t.Fatalf("accounted %d heartbeats, want 200", hbs)
	}
}
