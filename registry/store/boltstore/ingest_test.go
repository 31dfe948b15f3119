package boltstore

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// TestAppendOutOfOrderAndRepeats: reports below the install's highest seq
// are still looked up (the lookup is skipped only above it), so late,
// repeated and conflicting reports keep their answers.
func TestAppendOutOfOrderAndRepeats(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	const id = "iaaaaaaaaaaaaaaaaaaaaaaaaaa"
	if _, err := s.ActivateInstall(ctx, store.Activation{ID: id, PublicKey: []byte("k-32-bytes-long-enough-for-test!"), At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	statuses := func(reports []store.IncomingReport) []string {
		t.Helper()
		res, err := s.AppendReports(ctx, id, reports, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range res.Results {
			out = append(out, fmt.Sprintf("%d:%s", r.Seq, r.Status))
		}
		return out
	}
	b10 := benchBatch(t, "host", 10, 1)
	b5 := benchBatch(t, "host", 5, 1)
	for _, c := range []struct {
		batch []store.IncomingReport
		want  string
	}{
		{b10, "[10:stored]"},
		{b5, "[5:stored]"}, // below MaxSeq, new
		{append(b5, b10...), "[5:duplicate 10:duplicate]"},                                                  // both seen
		{append(benchBatch(t, "host", 11, 1), benchBatch(t, "host", 11, 1)...), "[11:stored 11:duplicate]"}, // twice in one batch
	} {
		if got := fmt.Sprint(statuses(c.batch)); got != c.want {
			t.Fatalf("got %s, want %s", got, c.want)
		}
	}
	other := benchBatch(t, "other-host", 10, 1) // same seq, other content
	if got := fmt.Sprint(statuses(other)); got != "[10:stored]" {
		t.Fatalf("conflict answered %s", got)
	}
	in, err := s.GetInstall(ctx, id)
	if err != nil || !in.Cloned || in.ConflictCount != 1 || in.ReportCount != 3 || in.MaxSeq != 11 {
		t.Fatalf("install after conflicts: %+v %v", in, err)
	}
	seqs, err := s.ListReportSeqs(ctx, id, 0, 0)
	if err != nil || fmt.Sprint(seqs) != "[5 10 11]" {
		t.Fatalf("stored seqs %v %v", seqs, err)
	}
}

// TestLingerGroupsConcurrentWrites: concurrent writers share commits and
// every one of them is answered, with lingering on and off.
func TestLingerGroupsConcurrentWrites(t *testing.T) {
	for _, linger := range []time.Duration{-1, 0, 2 * time.Millisecond} {
		t.Run(fmt.Sprint(linger), func(t *testing.T) {
			ctx := context.Background()
			var mu sync.Mutex
			commits, writes := 0, 0
			s, err := Open(filepath.Join(t.TempDir(), "r.db"), Options{Linger: linger, OnCommit: func(n int, _ time.Duration) {
				mu.Lock()
				commits++
				writes += n
				mu.Unlock()
			}})
			if err != nil {
				t.Fatal(err)
			}
			const installs, rounds = 16, 20
			ids := make([]string, installs)
			for i := range ids {
				ids[i] = fmt.Sprintf("i%026d", i)
				if _, err := s.ActivateInstall(ctx, store.Activation{ID: ids[i], PublicKey: []byte(ids[i] + "-key"), At: time.Now()}); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for _, id := range ids {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for r := range rounds {
						res, err := s.AppendReports(ctx, id, benchBatch(t, id, uint64(r+1), 1), time.Now())
						if err != nil || len(res.Results) != 1 || res.Results[0].Status != api.StatusStored {
							t.Errorf("install %s round %d: %+v %v", id, r, res.Results, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if writes != installs*(rounds+1) || commits == 0 {
				t.Fatalf("%d writes in %d commits, want %d writes", writes, commits, installs*(rounds+1))
			}
		})
	}
}
