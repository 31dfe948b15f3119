package registry

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/switchboard-dev/switchboard/registry/api"
)

// fastSeeds are bodies in and just outside the fast subset.
var fastSeeds = []string{
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z","seats":{"pbx_endpoints":3}}]}`,
	`{"reports":[{"seq":7,"kind":"heartbeat","at":"2026-01-02T03:04:05.123456789+02:00","facts":{"hostname":"pbx<1>&","machine_id":"m","os":"debian 12","agent_version":"1.2.3","products":[{"name":"asterisk","version":"20.5.0","distribution":"freepbx","edition":"x"},{"name":"odoo"}]},"seats":{"b":2,"a":-1,"c":0},"plugins":[{"name":"ari","healthy":true,"state":"up","detail":"ok"},{"name":"odoo","healthy":false}],"licence_state":"valid"}]}`,
	`{"reports":[{"seq":9,"kind":"heartbeat_summary","at":"2026-01-02T03:04:05Z","summary":{"count":3,"first_seq":7,"last_seq":9,"first_at":"2026-01-01T00:00:00+01:00","last_at":"2026-01-02T00:00:00Z"}}]}`,
	` { "reports" : [ { "seq" : 2 , "kind" : "heartbeat" , "at" : "2026-01-02T03:04:05Z" } , {"seq":3,"kind":"heartbeat","at":"2026-01-02T03:04:06Z"} ] } `,
	`{"reports":[{"seq":1,"seq":2,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]}`,
	`{"reports":[{"SEQ":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z","extra":{"x":[1,2]}}]}`,
	`{"reports":[{"seq":1,"kind":"heart\u0062eat","at":"2026-01-02T03:04:05Z","facts":{"hostname":"h\u00e9"}}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z","facts":{"hostname":"hé"},"plugins":[{"name":"p","healthy":true,"detail":"a\tb\u0001"}]}]}`,
	`{"reports":[{"seq":1.0,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]}`,
	`{"reports":[{"seq":01,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]}`,
	`{"reports":[{"seq":18446744073709551616,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":null,"facts":null,"seats":null}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z","seats":{"a":1,"a":2}}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]} x`,
	`{"reports":[],"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"},{"seq":2,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"},{"seq":3,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}]}`,
	`{"reports":null}`,
	`{"reports":[{"seq":-1}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z","summary":{"count":-0,"first_seq":1,"last_seq":1,"first_at":"2026-01-02T03:04:05Z","last_at":"2026-01-02T03:04:05Z"}}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"0001-01-01T00:00:00Z"}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05+23:59","plugins":[]}]}`,
	`{"reports":[{"seq":1,"kind":"heartbeat","at":"2026-01-02T03:04:05Z"}`,
}

// FuzzDecodeFastPath: DecodeReportBatch (fast path first) and the
// encoding/json reference agree on every body — same reports, same stored
// bytes, same error — and the hand-written encoder matches json.Marshal
// whenever it claims to.
func FuzzDecodeFastPath(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const limit = 3
		got, gotErr := DecodeReportBatch(body, limit)
		want, wantErr := decodeReportBatchSlow(body, limit)
		if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
			t.Fatalf("errors differ:\n fast: %v\n slow: %v", gotErr, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("%d reports, reference %d", len(got), len(want))
		}
		for i := range got {
			if !reflect.DeepEqual(got[i].Report, want[i].Report) {
				t.Fatalf("report %d:\n fast: %+v\n slow: %+v", i, got[i].Report, want[i].Report)
			}
			if !bytes.Equal(got[i].Raw, want[i].Raw) {
				t.Fatalf("stored bytes of report %d:\n fast: %s\n slow: %s", i, got[i].Raw, want[i].Raw)
			}
		}
		// The encoder on whatever encoding/json decoded, checked or not.
		var batch struct {
			Reports []json.RawMessage `json:"reports"`
		}
		if json.Unmarshal(body, &batch) != nil {
			return
		}
		for _, raw := range batch.Reports {
			var r api.Report
			if json.Unmarshal(raw, &r) != nil {
				continue
			}
			want, err := json.Marshal(r)
			enc, ok := appendReportJSON(nil, &r)
			if ok && (err != nil || !bytes.Equal(enc, want)) {
				t.Fatalf("appendReportJSON:\n got %s\nwant %s (%v)", enc, want, err)
			}
		}
	})
}

// TestFastPathTaken makes sure the common shapes do not silently fall back.
func TestFastPathTaken(t *testing.T) {
	for _, s := range fastSeeds[:4] {
		if _, ok := parseBatchFast([]byte(s), 10); !ok {
			t.Errorf("fast path refused %s", s)
		}
	}
	for _, s := range fastSeeds[4:8] {
		if _, ok := parseBatchFast([]byte(s), 10); ok {
			t.Errorf("fast path accepted %s", s)
		}
	}
}

// TestReportBatchResponse holds the hand-written answer to writeJSON's.
func TestReportBatchResponse(t *testing.T) {
	for _, c := range []struct {
		results []api.ReportResult
		licence string
	}{
		{nil, ""},
		{[]api.ReportResult{{Seq: 1, Status: api.StatusStored}}, ""},
		{[]api.ReportResult{{Seq: 7, Status: api.StatusStored}, {Seq: 18446744073709551615, Status: api.StatusDuplicate}}, "-----BEGIN SWITCHBOARD LICENCE-----\nabc<&>\n-----END-----\n"},
	} {
		got := appendReportBatchResponse(nil, c.results, 3600, c.licence)
		want, err := json.Marshal(api.ReportBatchResponse{Results: c.results, HeartbeatIntervalSeconds: 3600, Licence: c.licence})
		if err != nil {
			t.Fatal(err)
		}
		if c.results == nil {
			// encoding/json writes null for a nil slice; the handler always
			// has one result per report, so [] is what it can send.
			want = bytes.Replace(want, []byte(`"results":null`), []byte(`"results":[]`), 1)
		}
		if string(got) != string(want)+"\n" {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
