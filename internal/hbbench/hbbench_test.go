package hbbench

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"
)

func TestCheckSeqs(t *testing.T) {
	cases := []struct {
		stored      []uint64
		acked, sent uint64
		ok          bool
	}{
		{[]uint64{1, 2, 3}, 3, 3, true},
		{[]uint64{1, 2, 3, 4}, 3, 5, true}, // 4 sent, not acknowledged, stored
		{[]uint64{}, 0, 0, true},
		{[]uint64{1, 3}, 3, 3, false},       // 2 lost
		{[]uint64{1, 2, 2, 3}, 3, 3, false}, // duplicate
		{[]uint64{1, 2, 3, 9}, 3, 5, false}, // never sent
		{[]uint64{2, 3}, 2, 3, false},
	}
	for _, c := range cases {
		if err := CheckSeqs(c.stored, c.acked, c.sent); (err == nil) != c.ok {
			t.Errorf("CheckSeqs(%v, %d, %d) = %v, want ok=%v", c.stored, c.acked, c.sent, err, c.ok)
		}
	}
}

func TestNoopRun(t *testing.T) {
	srv := httptest.NewServer(NoopHandler())
	defer srv.Close()
	res, err := Run(context.Background(), Options{Registry: srv.URL, Installs: 4, Duration: 200 * time.Millisecond, Batch: 3, Noop: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Reports != 3*res.Requests || res.Mode != "noop" || res.Verified != "skipped" || res.P99Ms < res.P50Ms {
		t.Fatalf("%+v", res)
	}
}

// TestAppendBatch holds the hand-written encoder to encoding/json's output
// of the same batch.
func TestAppendBatch(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 890, time.FixedZone("x", 3600))
	for _, id := range []string{"iabcdefghijklmnopqrstuvwxyz", "noop000001", `we"ird\id`} {
		for _, n := range []int{1, 3} {
			got := AppendBatch([]byte("prefix"), id, 41, n, at)
			want, err := json.Marshal(batchReports(id, 41, n, at.UTC()))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != "prefix"+string(want) {
				t.Errorf("AppendBatch(%q, %d):\n got %s\nwant prefix%s", id, n, got, want)
			}
		}
	}
}

func TestParseCPUMetric(t *testing.T) {
	v, err := parseCPUMetric([]byte("# HELP process_cpu_seconds_total x\n# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total 12.5\nprocess_max_fds 1024\n"))
	if err != nil || v != 12.5 {
		t.Fatalf("got %v, %v", v, err)
	}
	if _, err := parseCPUMetric([]byte("other 1\n")); err == nil {
		t.Fatal("a missing metric was not an error")
	}
}
