package hbbench

import (
	"context"
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
