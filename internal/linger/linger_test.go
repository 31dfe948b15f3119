package linger

import (
	"testing"
	"time"
)

func newTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func TestFillTakesWhatIsQueued(t *testing.T) {
	ch := make(chan int, 10)
	for i := range 5 {
		ch <- i
	}
	got, closed := Fill(ch, nil, 3, 3, 0, newTimer())
	if len(got) != 3 || closed {
		t.Fatalf("got %v closed %v, want 3 items (max)", got, closed)
	}
	got, closed = Fill(ch, got[:0], 10, 10, 0, newTimer())
	if len(got) != 2 || closed {
		t.Fatalf("got %v closed %v, want the 2 left without waiting", got, closed)
	}
}

func TestFillWaitsForEnough(t *testing.T) {
	ch := make(chan int, 10)
	ch <- 1
	go func() {
		time.Sleep(5 * time.Millisecond)
		ch <- 2
		ch <- 3
	}()
	start := time.Now()
	got, _ := Fill(ch, nil, 10, 3, 10*time.Second, newTimer())
	if len(got) != 3 || time.Since(start) > 5*time.Second {
		t.Fatalf("got %v after %v, want 3 items as soon as they came", got, time.Since(start))
	}
}

func TestFillStopsWaitingAtTheDeadline(t *testing.T) {
	ch := make(chan int, 10)
	ch <- 1
	got, closed := Fill(ch, nil, 10, 5, 2*time.Millisecond, newTimer())
	if len(got) != 1 || closed {
		t.Fatalf("got %v closed %v", got, closed)
	}
}

func TestFillReportsClose(t *testing.T) {
	ch := make(chan int, 10)
	ch <- 1
	close(ch)
	got, closed := Fill(ch, nil, 10, 5, time.Hour, newTimer())
	if len(got) != 1 || !closed {
		t.Fatalf("got %v closed %v, want the item and closed", got, closed)
	}
}
