package registry_test

import (
	"encoding/json"
	"testing"

	"github.com/switchboard-dev/switchboard/registry"
	"github.com/switchboard-dev/switchboard/registry/api"
	"github.com/switchboard-dev/switchboard/registry/store"
)

// FuzzDecodeReportBatch: any body either fails with a DecodeError or gives
// 1..max reports whose stored bytes decode to the same checked report.
func FuzzDecodeReportBatch(f *testing.F) {
	f.Add([]byte(`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z","seats":{"pbx_endpoints":3}}]}`))
	f.Add([]byte(`{"reports":[{"seq":9,"kind":"heartbeat_summary","at":"2026-01-02T03:04:05Z","summary":{"count":3,"first_seq":7,"last_seq":9,"first_at":"2026-01-01T00:00:00Z","last_at":"2026-01-02T00:00:00Z"}}]}`))
	f.Add([]byte(`{"reports":[]}`))
	f.Add([]byte(`{"reports":[{"seq":0}]}`))
	f.Add([]byte(`[1,2]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		reps, err := registry.DecodeReportBatch(body, 10)
		if err != nil {
			if _, ok := err.(*registry.DecodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(reps) == 0 || len(reps) > 10 {
			t.Fatalf("%d reports accepted", len(reps))
		}
		for _, r := range reps {
			var again api.Report
			if err := json.Unmarshal(r.Raw, &again); err != nil || again.Seq != r.Report.Seq || again.Seq == 0 {
				t.Fatalf("stored bytes do not decode to the report: %v", err)
			}
			if !store.SameReport(r.Raw, r.Raw) {
				t.Fatal("a report differs from itself")
			}
		}
	})
}

// FuzzDecodeActivation: any body either fails with a DecodeError or gives
// a request with a 32-byte key and bounded facts.
func FuzzDecodeActivation(f *testing.F) {
	f.Add([]byte(`{"public_key":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","partner_code":"K7QM-4XJD-R","facts":{"hostname":"pbx","products":[{"name":"asterisk","version":"20"}]}}`))
	f.Add([]byte(`{"public_key":"AAAA","facts":{}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := registry.DecodeActivation(body)
		if err != nil {
			if _, ok := err.(*registry.DecodeError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(req.PublicKey) != 32 || len(req.Facts.Products) > 64 || len(req.Facts.Hostname) > 256 {
			t.Fatalf("accepted an invalid activation: %+v", req)
		}
	})
}
