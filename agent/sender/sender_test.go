package sender

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-dev/switchboard/agent/internal/fakeregistry"
	"github.com/switchboard-dev/switchboard/agent/outbox"
	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/registry/api"
)

type hooks struct {
	mu         sync.Mutex
	id         string
	answers    int
	linked     []api.LinkResponse
	refused    []*APIError
	deactivate int
}

func (h *hooks) InstallID() string { h.mu.Lock(); defer h.mu.Unlock(); return h.id }
func (h *hooks) Activated(r api.ActivationResponse) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.id = r.InstallID
	return nil
}
func (h *hooks) ReportsAnswered(api.ReportBatchResponse) { h.mu.Lock(); h.answers++; h.mu.Unlock() }
func (h *hooks) Linked(_ uint64, r api.LinkResponse) {
	h.mu.Lock()
	h.linked = append(h.linked, r)
	h.mu.Unlock()
}
func (h *hooks) LinkRefused(_ uint64, e *APIError) {
	h.mu.Lock()
	h.refused = append(h.refused, e)
	h.mu.Unlock()
}
func (h *hooks) Deactivated(uint64) { h.mu.Lock(); h.deactivate++; h.mu.Unlock() }

type rig struct {
	reg *fakeregistry.Registry
	srv *httptest.Server
	ob  *outbox.Outbox
	s   *Sender
	h   *hooks
	key ed25519.PrivateKey
}

func newRig(t testing.TB, batch int) *rig {
	t.Helper()
	vk, err := licensing.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	reg := fakeregistry.New(vk)
	reg.Partners["PARTNER-A"] = "partner"
	reg.Partners["PARTNER-B"] = "partner"
	srv := httptest.NewServer(reg)
	t.Cleanup(srv.Close)
	ob, err := outbox.Open(filepath.Join(t.TempDir(), "o.db"), outbox.Options{MaxRecords: 1_000_000})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ob.Close() })
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	h := &hooks{}
	s := New(ob, Options{URL: srv.URL, Key: key, BatchSize: batch, BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, Hooks: h})
	return &rig{reg: reg, srv: srv, ob: ob, s: s, h: h, key: key}
}

func (r *rig) activate(t testing.TB, code string) {
	t.Helper()
	if _, err := r.ob.Append(outbox.KindActivation, api.ActivationRequest{PublicKey: r.key.Public().(ed25519.PublicKey), PartnerCode: code}); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) heartbeats(t testing.TB, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := r.ob.Append(outbox.KindHeartbeat, api.Report{Kind: api.KindHeartbeat, At: time.Now().UTC(), LicenceState: "valid"}); err != nil {
			t.Fatal(err)
		}
	}
}

func flush(t testing.TB, s *Sender) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDrainInOrderAcrossOutage(t *testing.T) {
	r := newRig(t, 4)
	r.activate(t, "")
	r.heartbeats(t, 5)
	r.reg.SetDown(true)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.s.Run(ctx); close(done) }()
	r.heartbeats(t, 10)
	waitFor(t, func() bool { return r.s.Status().ConsecutiveFailures >= 3 })
	if st := r.s.Status(); st.LastError == "" || r.ob.Stats().Depth != 16 {
		t.Fatalf("status during outage %+v depth %d", st, r.ob.Stats().Depth)
	}
	r.reg.SetDown(false)
	waitFor(t, func() bool { return r.ob.Stats().Depth == 0 })
	cancel()
	<-done
	arr := r.reg.Arrivals()
	if len(arr) != 15 {
		t.Fatalf("%d arrivals, want 15", len(arr))
	}
	for i, a := range arr {
		if i > 0 && a.Report.Seq <= arr[i-1].Report.Seq {
			t.Fatalf("out of order at %d: %d after %d", i, a.Report.Seq, arr[i-1].Report.Seq)
		}
	}
	for seq, n := range r.reg.Received(r.h.InstallID()) {
		if n != 1 {
			t.Fatalf("seq %d received %d times", seq, n)
		}
	}
	if st := r.s.Status(); !st.Reachable || st.Delivered != 16 {
		t.Fatalf("status after drain %+v", st)
	}
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 15s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestPermanentErrorsAreDeadLettered(t *testing.T) {
	r := newRig(t, 10)
	r.activate(t, "PARTNER-A")
	r.heartbeats(t, 2)
	r.ob.Append(outbox.KindLink, api.LinkRequest{PartnerCode: "PARTNER-B"})
	r.heartbeats(t, 1)
	r.reg.FailNext("/reports", 1, 422) // the first batch is refused for good
	flush(t, r.s)
	dl, _ := r.ob.DeadLetters(0)
	if len(dl) != 3 || dl[0].Status != 422 || dl[2].Kind != outbox.KindLink || dl[2].Status != 409 {
		t.Fatalf("dead letters: %+v", dl)
	}
	if len(r.h.refused) != 1 || r.h.refused[0].Code != api.CodeAlreadyLinked {
		t.Fatalf("link refusal not surfaced: %+v", r.h.refused)
	}
	if n := len(r.reg.Arrivals()); n != 1 {
		t.Fatalf("arrivals %d, want the last heartbeat only", n)
	}
	if st := r.s.Status(); st.DeadLettered != 3 {
		t.Fatalf("status %+v", st)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	var calls atomic.Int32
	var first, second atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch calls.Add(1) {
		case 1:
			first.Store(time.Now().UnixNano())
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(429)
			return
		case 2:
			second.Store(time.Now().UnixNano())
		}
		var b api.ReportBatch
		json.NewDecoder(req.Body).Decode(&b)
		resp := api.ReportBatchResponse{}
		for _, rep := range b.Reports {
			resp.Results = append(resp.Results, api.ReportResult{Seq: rep.Seq, Status: api.StatusStored})
		}
		json.NewEncoder(w).Encode(resp)
	}))
	defer srv.Close()
	ob, _ := outbox.Open(filepath.Join(t.TempDir(), "o.db"), outbox.Options{})
	defer ob.Close()
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	s := New(ob, Options{URL: srv.URL, Key: key, BackoffMin: time.Millisecond, BackoffMax: 2 * time.Millisecond, Hooks: &hooks{id: "i1"}})
	ob.Append(outbox.KindHeartbeat, api.Report{})
	flush(t, s)
	if gap := time.Duration(second.Load() - first.Load()); gap < time.Second {
		t.Fatalf("retried after %s despite Retry-After: 1", gap)
	}
}

func TestTooLargeHalvesBatch(t *testing.T) {
	r := newRig(t, 8)
	r.activate(t, "")
	r.heartbeats(t, 8)
	r.reg.FailNext("/reports", 1, 413)
	flush(t, r.s)
	if n := len(r.reg.Arrivals()); n != 8 {
		t.Fatalf("arrivals %d", n)
	}
	if dl, _ := r.ob.DeadLetters(0); len(dl) != 0 {
		t.Fatalf("a 413 batch was dead-lettered: %+v", dl)
	}
}

func TestRetryAfterParse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{"": 0, "5": 5 * time.Second, "-3": 0, "junk": 0, "999999": time.Hour,
		now.Add(30 * time.Second).Format(http.TimeFormat): 30 * time.Second}
	for in, want := range cases {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	for attempt := 0; attempt < 40; attempt++ {
		d := Backoff(time.Second, time.Minute, attempt)
		want := time.Second << min(attempt, 6)
		if want > time.Minute {
			want = time.Minute
		}
		if d < want/2 || d > want {
			t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, want/2, want)
		}
	}
}

// BenchmarkOutboxDrain measures how fast a 100,000-report backlog drains
// into a local receiver that acknowledges every report.
func BenchmarkOutboxDrain(b *testing.B) {
	const backlog = 100_000
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r := newRig(b, 1000)
		r.activate(b, "")
		for j := 0; j < backlog; j += 1000 {
			var wg sync.WaitGroup
			for k := 0; k < 1000; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					r.ob.Append(outbox.KindHeartbeat, api.Report{Kind: api.KindHeartbeat, At: time.Now().UTC(), Seats: map[string]int64{"pbx_endpoints": 40}})
				}()
			}
			wg.Wait()
		}
		b.StartTimer()
		start := time.Now()
		flush(b, r.s)
		b.ReportMetric(float64(backlog)/time.Since(start).Seconds(), "reports/s")
		if n := len(r.reg.Arrivals()); n != backlog {
			b.Fatalf("%d arrivals", n)
		}
	}
}
