package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/registry/store"
)

// openNoCheckpoint opens a store whose logged writes stay in the report
// log until Close or a write that commits.
func openNoCheckpoint(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crashImage copies the store's file and its log as they are on disk now,
// which is what a machine that loses power now would boot with: the
// bbolt file as of its last commit, the log with every acknowledged write
// since.
func crashImage(t *testing.T, s *Store) string {
	t.Helper()
	dir := t.TempDir()
	dst := filepath.Join(dir, "r.db")
	for _, suffix := range []string{"", LogSuffix, SpareLogSuffix} {
		copyFile(t, s.Path()+suffix, dst+suffix)
	}
	return dst
}

// appendT appends heartbeats first..first+n-1 of id and fails t on error.
func appendT(t *testing.T, s *Store, id string, first uint64, n int) {
	t.Helper()
	if _, err := s.AppendReports(context.Background(), id, benchBatch(t, "h", first, n), time.Now().Round(0)); err != nil {
		t.Fatal(err)
	}
}

// snapshotAt opens the store at path (replaying its logs), takes the
// snapshot of each install and closes it.
func snapshotAt(t *testing.T, path string, ids ...string) string {
	t.Helper()
	s := openT(t, path)
	defer s.Close()
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(snapshot(t, s, id))
	}
	return b.String()
}

// snapshot is everything a store says about one install.
func snapshot(t *testing.T, s *Store, id string) string {
	t.Helper()
	ctx := context.Background()
	in, err := s.GetInstall(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	reports, err := s.ListReports(ctx, id, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	events, err := s.ListEvents(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "install: max_seq=%d count=%d conflicts=%d cloned=%v facts=%+v hosts=%+v first=%v last=%v\n",
		in.MaxSeq, in.ReportCount, in.ConflictCount, in.Cloned, in.Facts, in.Hosts, in.FirstSeen.UnixNano(), in.LastSeen.UnixNano())
	for _, r := range reports {
		fmt.Fprintf(&b, "report %d at %d: %s\n", r.Seq, r.ReceivedAt.UnixNano(), r.Body)
	}
	for _, e := range events {
		fmt.Fprintf(&b, "event %s %s\n", e.Kind, e.Why)
	}
	return b.String()
}

// ingest sends what an install's life brings: reports in and out of
// order, repeats, a conflicting copy (a clone) and a move between hosts.
func ingest(t *testing.T, s *Store, id string) {
	t.Helper()
	ctx := context.Background()
	at := time.Unix(1767225600, 0).UTC()
	for _, batch := range [][]store.IncomingReport{
		benchBatch(t, "host-a", 1, 5),
		benchBatch(t, "host-a", 3, 4), // 3..5 repeat, 6 new
		benchBatch(t, "host-b", 10, 2),
		benchBatch(t, "host-a", 8, 1),  // back to a: clone flagged
		benchBatch(t, "host-c", 10, 1), // seq 10 again, other content
		benchBatch(t, "host-a", 7, 1),
	} {
		at = at.Add(time.Second)
		if _, err := s.AppendReports(ctx, id, batch, at); err != nil {
			t.Fatal(err)
		}
	}
}

func activate(t *testing.T, s *Store, id string) {
	t.Helper()
	if _, err := s.ActivateInstall(context.Background(), store.Activation{ID: id, PublicKey: []byte(id + "-public-key"), At: time.Unix(1767225600, 0).UTC()}); err != nil {
		t.Fatal(err)
	}
}

// TestCrashKeepsEveryAcknowledgedReport: a store cut off with reports
// only in its log reopens to the same reports, install state and events
// as the store that acknowledged them.
func TestCrashKeepsEveryAcknowledgedReport(t *testing.T) {
	s := openNoCheckpoint(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	const id = "icrashcrashcrashcrashcrashcr"
	activate(t, s, id)
	ingest(t, s, id)
	image := crashImage(t, s) // before any read: nothing checkpointed
	db, err := bolt.Open(image, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketReports).Bucket([]byte(id)) != nil {
			t.Error("the reports reached the file before the crash: nothing is left to replay")
		}
		return nil
	})
	db.Close()
	want := snapshot(t, s, id)

	if got := snapshotAt(t, image, id); got != want {
		t.Fatalf("after the crash:\n%s\nbefore:\n%s", got, want)
	}
	if !strings.Contains(want, "event clone_flagged") || !strings.Contains(want, "conflicts=1") {
		t.Fatalf("the scenario did not flag the clone:\n%s", want)
	}

	// Replayed once: opening again changes nothing.
	if got := snapshotAt(t, image, id); got != want {
		t.Fatalf("second reopen:\n%s\nwant:\n%s", got, want)
	}
}

// TestTornLogTailIsDropped: a write cut short at any byte of the last
// entry loses that entry (never acknowledged) and nothing before it.
func TestTornLogTailIsDropped(t *testing.T) {
	s := openNoCheckpoint(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	const id = "itorntorntorntorntorntorntor"
	activate(t, s, id)
	ctx := context.Background()
	appendT(t, s, id, 1, 3)
	before := s.log.end
	appendT(t, s, id, 4, 1)
	image := crashImage(t, s)
	full, err := os.ReadFile(image + LogSuffix)
	if err != nil {
		t.Fatal(err)
	}
	for _, cut := range []int64{before + 1, before + entryHeader, (before + s.log.end) / 2, s.log.end - 1} {
		torn := append([]byte(nil), full...)
		// What a torn write leaves: the start of the entry, then what the
		// space held before (zeros here).
		clear(torn[cut:s.log.end])
		path := filepath.Join(t.TempDir(), "r.db")
		copyFile(t, image, path)
		if err := os.WriteFile(path+LogSuffix, torn, 0o600); err != nil {
			t.Fatal(err)
		}
		r := openT(t, path)
		seqs, err := r.ListReportSeqs(ctx, id, 0, 0)
		r.Close()
		if err != nil || fmt.Sprint(seqs) != "[1 2 3]" {
			t.Fatalf("cut at %d: seqs %v %v, want [1 2 3]", cut, seqs, err)
		}
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCheckpointEmptiesTheLog: after a checkpoint the log's entries are
// of an applied generation, so a crash right after replays nothing, and
// reports written after it are replayed on top.
func TestCheckpointEmptiesTheLog(t *testing.T) {
	var mu sync.Mutex
	checkpoints := 0
	s, err := Open(filepath.Join(t.TempDir(), "r.db"), Options{CheckpointInterval: time.Hour, OnCheckpoint: func(int, time.Duration) {
		mu.Lock()
		checkpoints++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const id = "icheckcheckcheckcheckcheckch"
	activate(t, s, id)
	ctx := context.Background()
	appendT(t, s, id, 1, 2)
	gen := s.log.gen
	if seqs, _ := s.ListReportSeqs(ctx, id, 0, 0); len(seqs) != 2 { // a fresh read checkpoints
		t.Fatalf("seqs %v", seqs)
	}
	mu.Lock()
	n := checkpoints
	mu.Unlock()
	if n == 0 || s.log.gen != gen+1 || s.log.size() != 0 {
		t.Fatalf("after the read: %d checkpoints, generation %d (was %d), log %d bytes", n, s.log.gen, gen, s.log.size())
	}
	appendT(t, s, id, 3, 1)
	r := openT(t, crashImage(t, s))
	defer r.Close()
	if seqs, err := r.ListReportSeqs(ctx, id, 0, 0); err != nil || fmt.Sprint(seqs) != "[1 2 3]" {
		t.Fatalf("seqs %v %v", seqs, err)
	}
	if in, _ := r.GetInstall(ctx, id); in.ReportCount != 3 {
		t.Fatalf("report count %d after replay on top of a checkpoint, want 3", in.ReportCount)
	}
}

// brokenLog is a log file whose writes (and reads, with reads set) fail,
// as on a failing disk.
type brokenLog struct {
	*os.File
	reads bool
}

var errDisk = errors.New("input/output error")

func (b brokenLog) WriteAt([]byte, int64) (int, error) { return 0, errDisk }

func (b brokenLog) ReadAt(p []byte, off int64) (int, error) {
	if b.reads {
		return 0, errDisk
	}
	return b.File.ReadAt(p, off)
}

// TestLogWriteFailureFallsBackToCommits: when the log cannot be written
// the group is refused, and the store goes on with bbolt commits alone,
// losing nothing acknowledged before.
func TestLogWriteFailureFallsBackToCommits(t *testing.T) {
	s := openNoCheckpoint(t, filepath.Join(t.TempDir(), "r.db"))
	const id = "ifailfailfailfailfailfailfai"
	activate(t, s, id)
	ctx := context.Background()
	appendT(t, s, id, 1, 2)
	s.log.f = brokenLog{File: s.log.f.(*os.File)}
	if _, err := s.AppendReports(ctx, id, benchBatch(t, "h", 3, 1), time.Now()); err == nil || !errors.Is(err, errDisk) {
		t.Fatalf("append with a broken log: %v", err)
	}
	for seq := uint64(3); seq <= 5; seq++ {
		if _, err := s.AppendReports(ctx, id, benchBatch(t, "h", seq, 1), time.Now()); err != nil {
			t.Fatalf("append %d after the log failed: %v", seq, err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	r := openT(t, s.Path())
	defer r.Close()
	if seqs, err := r.ListReportSeqs(ctx, id, 0, 0); err != nil || fmt.Sprint(seqs) != "[1 2 3 4 5]" {
		t.Fatalf("seqs %v %v", seqs, err)
	}
	if in, _ := r.GetInstall(ctx, id); in.ReportCount != 5 || in.MaxSeq != 5 {
		t.Fatalf("install after the failure: count %d max %d", in.ReportCount, in.MaxSeq)
	}
}

// TestStoreStopsWhenItCannotRebuild: when the log can be neither written
// nor read back, the store refuses writes with a message that says to
// restart, and the restart replays what was acknowledged.
func TestStoreStopsWhenItCannotRebuild(t *testing.T) {
	s := openNoCheckpoint(t, filepath.Join(t.TempDir(), "r.db"))
	const id = "istopstopstopstopstopstopsto"
	activate(t, s, id)
	ctx := context.Background()
	appendT(t, s, id, 1, 2)
	image := crashImage(t, s)
	s.log.f = brokenLog{File: s.log.f.(*os.File), reads: true}
	if _, err := s.AppendReports(ctx, id, benchBatch(t, "h", 3, 1), time.Now()); err == nil {
		t.Fatal("append with an unreadable log succeeded")
	}
	_, err := s.AppendReports(ctx, id, benchBatch(t, "h", 4, 1), time.Now())
	if err == nil || !strings.Contains(err.Error(), "restart the registry") {
		t.Fatalf("append to a failed store: %v", err)
	}
	if _, err := s.CreatePartner(ctx, store.Partner{Code: "K7QM-4XJD-R"}); err == nil {
		t.Fatal("a failed store took a partner")
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close of a failed store reported nothing")
	}
	r := openT(t, image)
	defer r.Close()
	if seqs, err := r.ListReportSeqs(ctx, id, 0, 0); err != nil || fmt.Sprint(seqs) != "[1 2]" {
		t.Fatalf("after restart: seqs %v %v", seqs, err)
	}
}

// TestFailingWriterAmongLoggedWrites: a write that fails in a group of
// report appends is retried without, and the appends that were made
// durable before it are rebuilt from the log, not lost or doubled.
func TestFailingWriterAmongLoggedWrites(t *testing.T) {
	s := openNoCheckpoint(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	ctx := context.Background()
	ids := []string{"iaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ibbbbbbbbbbbbbbbbbbbbbbbbbbb", "icccccccccccccccccccccccccccc"}
	for _, id := range ids {
		activate(t, s, id)
	}
	boom := errors.New("boom")
	var wg sync.WaitGroup
	for round := range 20 {
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.AppendReports(ctx, id, benchBatch(t, id, uint64(round+1), 1), time.Now()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.write(ctx, func(tx *bolt.Tx) error { return boom }); !errors.Is(err, boom) {
				t.Errorf("failing write answered %v", err)
			}
		}()
	}
	wg.Wait()
	for _, id := range ids {
		in, err := s.GetInstall(ctx, id)
		if err != nil || in.ReportCount != 20 || in.MaxSeq != 20 {
			t.Fatalf("install %s: count %d max %d %v", id, in.ReportCount, in.MaxSeq, err)
		}
		if seqs, _ := s.ListReportSeqs(ctx, id, 0, 0); len(seqs) != 20 {
			t.Fatalf("install %s: %d reports stored", id, len(seqs))
		}
	}
}

func TestBothHeadersDamagedIsRefused(t *testing.T) {
	s := openNoCheckpoint(t, filepath.Join(t.TempDir(), "r.db"))
	const id = "iheadheadheadheadheadheadhea"
	activate(t, s, id)
	appendT(t, s, id, 1, 1)
	image := crashImage(t, s)
	s.Close()
	f, err := os.OpenFile(image+LogSuffix, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, logStart), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = Open(image, Options{})
	if err == nil || !strings.Contains(err.Error(), image+LogSuffix) || !strings.Contains(err.Error(), "headers are damaged") {
		t.Fatalf("open with damaged log headers: %v", err)
	}
}

// TestReadReportLogPicksTheNewestHeader: a reset writes the other slot,
// so a torn reset leaves the previous generation readable, and entries of
// an older generation left in the reused space end the log.
func TestReadReportLogPicksTheNewestHeader(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	l, gen, payloads, err := openReportLog(path)
	if err != nil || gen != 0 || payloads != nil {
		t.Fatalf("new log: %d %v %v", gen, payloads, err)
	}
	defer l.close()
	write := func(gen uint64, payloads ...string) {
		t.Helper()
		if err := l.reset(gen); err != nil {
			t.Fatal(err)
		}
		var buf []byte
		for _, p := range payloads {
			var at int
			buf, at = beginEntry(buf)
			buf = append(buf, p...)
			buf = finishEntry(buf, at, gen)
		}
		if err := l.append(buf); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		gen, _, payloads, err := readReportLog(l.f, l.alloc)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %q", gen, payloads)
	}
	write(7, "one", "two", "three")
	if got := read(); got != `7 ["one" "two" "three"]` {
		t.Fatal(got)
	}
	write(8, "uno") // reuses the space: "two" and "three" of generation 7 follow
	if got := read(); got != `8 ["uno"]` {
		t.Fatal(got)
	}
	// A torn header write of the next generation (in the slot where 7 was).
	if _, err := l.f.WriteAt([]byte("SWBD"), (1-l.slot)*headerSlotSize); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != `8 ["uno"]` {
		t.Fatalf("after a torn header: %s", got)
	}
	// A file takes every other generation (the store's two logs take turns):
	// the slots alternate all the same, so a torn header write of 12 still
	// leaves 10.
	write(10, "diez")
	if _, err := l.f.WriteAt([]byte("SWBD"), (1-l.slot)*headerSlotSize); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != `10 ["diez"]` {
		t.Fatalf("after a torn header of the generation after next: %s", got)
	}
}

// TestBlankLogHeadersAreAnEmptyLog: a log file whose header was never
// written (space allocated, then a crash) acknowledged nothing.
func TestBlankLogHeadersAreAnEmptyLog(t *testing.T) {
	gen, _, payloads, err := readReportLog(bytes.NewReader(make([]byte, logStart+4096)), logStart+4096)
	if err != nil || gen != 0 || payloads != nil {
		t.Fatalf("blank log: %d %q %v", gen, payloads, err)
	}
}

func TestEntryRoundTrip(t *testing.T) {
	reports := benchBatch(t, "host", 41, 3)
	at := time.Unix(1767225600, 123456789).UTC()
	p := appendReportsEntry(nil, "iroundroundroundroundroundro", reports, at)
	id, got, gotAt, err := decodeReportsEntry(p)
	if err != nil || id != "iroundroundroundroundroundro" || !gotAt.Equal(at) || len(got) != 3 {
		t.Fatalf("decode: %q %d %v %v", id, len(got), gotAt, err)
	}
	for i := range got {
		if !bytes.Equal(got[i].Raw, reports[i].Raw) || got[i].Report.Seq != reports[i].Report.Seq || got[i].Report.Facts.Hostname != "host" {
			t.Fatalf("report %d: %+v", i, got[i])
		}
	}
	for cut := range p {
		if _, _, _, err := decodeReportsEntry(p[:cut]); err == nil {
			t.Fatalf("entry cut to %d bytes decoded", cut)
		}
	}
}

// TestMigrateVersion1Reports: a store of schema version 1 (all reports in
// one bucket keyed id/seq) opens with its reports moved into a bucket per
// install.
func TestMigrateVersion1Reports(t *testing.T) {
	path := filepath.Join(t.TempDir(), "r.db")
	ctx := context.Background()
	s := openT(t, path)
	ids := []string{"iaaaaaaaaaaaaaaaaaaaaaaaaaaa", "ibbbbbbbbbbbbbbbbbbbbbbbbbbb"}
	for _, id := range ids {
		activate(t, s, id)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// Rewrite it as version 1 wrote it.
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = migrateChunk + 5 // more than one migration step
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bucketReports); err != nil {
			return err
		}
		old, err := tx.CreateBucket(bucketReportsV1)
		if err != nil {
			return err
		}
		for i := range n {
			id := ids[i%2]
			seq := uint64(i/2 + 1)
			v := append([]byte{reportValueVersion}, binary.BigEndian.AppendUint64(nil, uint64(time.Now().UnixNano()))...)
			v = append(v, fmt.Sprintf(`{"seq":%d,"kind":"heartbeat","at":"2026-01-01T00:00:00Z"}`, seq)...)
			if err := old.Put(binary.BigEndian.AppendUint64([]byte(id+"/"), seq), v); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, []byte("1"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = openT(t, path)
	defer s.Close()
	for i, id := range ids {
		seqs, err := s.ListReportSeqs(ctx, id, 0, 0)
		want := n / 2
		if i == 0 {
			want = n - n/2
		}
		if err != nil || len(seqs) != want || seqs[0] != 1 || seqs[len(seqs)-1] != uint64(want) {
			t.Fatalf("install %s after migration: %d seqs %v", id, len(seqs), err)
		}
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketReportsV1) != nil {
			return errors.New("the version 1 bucket is still there")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := ReadSchemaVersion(s.db); err != nil || v != store.SchemaVersion {
		t.Fatalf("schema version %d %v", v, err)
	}
	appendT(t, s, ids[0], uint64(n), 1)
}

// FuzzReadReportLog: whatever a log file holds, reading it does not panic,
// and when it names a generation every entry it returns checks out.
func FuzzReadReportLog(f *testing.F) {
	path := filepath.Join(f.TempDir(), "log")
	l, _, _, err := openReportLog(path)
	if err != nil {
		f.Fatal(err)
	}
	if err := l.reset(3); err != nil {
		f.Fatal(err)
	}
	buf, at := beginEntry(nil)
	buf = appendReportsEntry(buf, "ifuzzfuzzfuzzfuzzfuzzfuzzfu", benchBatch(f, "h", 1, 2), time.Unix(0, 0))
	buf = finishEntry(buf, at, 3)
	if err := l.append(buf); err != nil {
		f.Fatal(err)
	}
	l.close()
	valid, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid[:logStart+len(buf)])
	f.Add(valid[:logStart+len(buf)-3])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		gen, _, payloads, err := readReportLog(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, p := range payloads {
			_, _, _, _ = decodeReportsEntry(p)
			if len(p) == 0 || len(p) > maxEntryPayload {
				t.Fatalf("generation %d: entry of %d bytes", gen, len(p))
			}
		}
	})
}

// FuzzDecodeReportsEntry: an entry that decodes encodes back to itself.
func FuzzDecodeReportsEntry(f *testing.F) {
	f.Add(appendReportsEntry(nil, "ifuzzfuzzfuzzfuzzfuzzfuzzfu", benchBatch(f, "h", 1, 2), time.Unix(0, 0)))
	f.Add([]byte{entryAppendReports, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'i', 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) {
		id, reports, at, err := decodeReportsEntry(p)
		if err != nil {
			return
		}
		if again := appendReportsEntry(nil, id, reports, at); !bytes.Equal(again, p) {
			t.Fatalf("entry does not round-trip:\n%x\n%x", p, again)
		}
	})
}
