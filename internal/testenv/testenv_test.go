package testenv

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestEventuallyWaitsForCondition(t *testing.T) {
	calls := 0
	Eventually(t, 5*time.Second, func() error {
		calls++
		if calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if calls != 3 {
		t.Fatalf("cond called %d times, want 3", calls)
	}
}

// recorder is a testing.TB that records Fatalf instead of stopping.
type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Fatalf(format string, args ...any) { r.msg = fmt.Sprintf(format, args...) }

func TestEventuallyFailsWithLastError(t *testing.T) {
	r := &recorder{TB: t}
	Eventually(r, 50*time.Millisecond, Until("the moon", func() bool { return false }))
	if want := "timed out after 50ms: waiting for the moon"; r.msg != want {
		t.Fatalf("failure message = %q, want %q", r.msg, want)
	}
}

func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := len(b.String()); n != 800 {
		t.Fatalf("buffer holds %d bytes, want 800", n)
	}
}
