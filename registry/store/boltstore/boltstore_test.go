package boltstore

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

func openT(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestReopenKeepsEverythingAndRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "r.db")
	s := openT(t, path)
	now := time.Now().UTC()
	if _, err := s.CreatePartner(ctx, store.Partner{Code: "K7QM-4XJD-R", Name: "Acme", Tier: store.TierPartner, Status: store.PartnerApproved}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreatePartner(ctx, store.Partner{Code: "K7QM-4XJD-R"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("duplicate code: %v", err)
	}
	id := "i" + "abcdefghijklmnopqrstuvwxyz"
	res, err := s.ActivateInstall(ctx, store.Activation{ID: id, PublicKey: []byte("k"), PartnerCode: "K7QM-4XJD-R", At: now})
	if err != nil || !res.Created || res.Install.PartnerCode != "K7QM-4XJD-R" {
		t.Fatalf("activate %+v %v", res, err)
	}
	// Many concurrent writers in shared group commits.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := s.AppendReports(ctx, id, benchBatch(t, "h", uint64(w*100+i+1), 1), now); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if _, err := s.SetLicence(ctx, id, store.LicenceRecord{ID: "l1", Armoured: "ARMOURED"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendReports(ctx, id, benchBatch(t, "h", 999, 1), now); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}

	s = openT(t, path)
	in, err := s.GetInstall(ctx, id)
	if err != nil || in.ReportCount != 160 || in.Licence.Armoured != "ARMOURED" || in.PartnerCode != "K7QM-4XJD-R" {
		t.Fatalf("after reopen: %+v %v", in, err)
	}
	seqs, err := s.ListReportSeqs(ctx, id, 0, 0)
	if err != nil || len(seqs) != 160 {
		t.Fatalf("seqs %d %v", len(seqs), err)
	}
	page, _ := s.ListReportSeqs(ctx, id, seqs[9], 5)
	if len(page) != 5 || page[0] != seqs[10] {
		t.Fatalf("paging %v", page)
	}
	if _, err := s.AppendReports(ctx, "i"+"zzzzzzzzzzzzzzzzzzzzzzzzzz", benchBatch(t, "h", 1, 1), now); !store.IsNotFound(err) {
		t.Fatalf("unknown install: %v", err)
	}
	if _, err := s.DeactivateInstall(ctx, id, "gone", now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AppendReports(ctx, id, benchBatch(t, "h", 1000, 1), now); !errors.Is(err, store.ErrDeactivated) {
		t.Fatalf("deactivated: %v", err)
	}
	s.Close()

	if err := SetSchemaVersion(path, store.SchemaVersion+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{}); !errors.Is(err, store.ErrNewerSchema) {
		t.Fatalf("newer schema opened: %v", err)
	}
}

func TestFailingWriterDoesNotSinkItsGroup(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%5 == 0 {
				errs[i] = s.write(ctx, func(tx *bolt.Tx) error { return boom })
				return
			}
			_, errs[i] = s.CreatePartner(ctx, store.Partner{Code: string(rune('A'+i)) + "CODE", Tier: store.TierReferral})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if i%5 == 0 && !errors.Is(err, boom) || i%5 != 0 && err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	ps, _ := s.ListPartners(ctx, store.PartnerFilter{})
	if len(ps) != 16 {
		t.Fatalf("%d partners stored, want 16", len(ps))
	}
}

func TestApplyReportKeepsNewestFacts(t *testing.T) {
	in := store.Install{}
	at := time.Now()
	store.ApplyReport(&in, api.Report{Seq: 5, Facts: &api.Facts{AgentVersion: "2"}}, at)
	store.ApplyReport(&in, api.Report{Seq: 3, Facts: &api.Facts{AgentVersion: "1"}}, at)
	if in.Facts.AgentVersion != "2" || in.MaxSeq != 5 || in.ReportCount != 2 {
		t.Fatalf("%+v", in)
	}
}

// A reinstall keeps the install key, so activating a deactivated install
// again must bring back the same install, link and all, and let it report.
func TestReactivationKeepsInstall(t *testing.T) {
	ctx := context.Background()
	s := openT(t, filepath.Join(t.TempDir(), "r.db"))
	defer s.Close()
	now := time.Now().UTC()
	if _, err := s.CreatePartner(ctx, store.Partner{Code: "K7QM-4XJD-R", Name: "Acme", Tier: store.TierPartner, Status: store.PartnerApproved}); err != nil {
		t.Fatal(err)
	}
	id := "i" + "reactivatereactivatereacti"
	act := store.Activation{ID: id, PublicKey: []byte("key"), PartnerCode: "K7QM-4XJD-R", At: now}
	if _, err := s.ActivateInstall(ctx, act); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeactivateInstall(ctx, id, "uninstalled", now); err != nil {
		t.Fatal(err)
	}
	act.ID = "i" + "someotheridsomeotheridsome"
	res, err := s.ActivateInstall(ctx, act)
	if err != nil || res.Created || res.Install.ID != id || res.Install.State == store.InstallDeactivated || res.Install.PartnerCode != "K7QM-4XJD-R" {
		t.Fatalf("reactivate: %+v %v", res, err)
	}
	if _, err := s.AppendReports(ctx, id, benchBatch(t, "h", 1, 1), now); err != nil {
		t.Fatalf("report after reactivation: %v", err)
	}
	events, err := s.ListEvents(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []store.EventKind
	for _, e := range events {
		kinds = append(kinds, e.Kind)
	}
	if len(kinds) != 3 || kinds[2] != store.EventReactivated {
		t.Fatalf("events %v, want activated, deactivated, reactivated", kinds)
	}
}
