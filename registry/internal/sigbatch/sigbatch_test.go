package sigbatch

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"sync"
	"testing"
	"time"
)

type signed struct {
	pub      ed25519.PublicKey
	msg, sig []byte
	want     bool
}

// corpus makes n signatures; every fifth one is wrong in a different way.
func corpus(t testing.TB, n int) []signed {
	out := make([]signed, n)
	for i := range out {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		msg := []byte(fmt.Sprintf("switchboard-request-v1\nPOST\n/v1/installs/i%d/reports\n%d", i, i))
		s := signed{pub: pub, msg: msg, sig: ed25519.Sign(priv, msg), want: true}
		switch i % 10 {
		case 5: // altered message
			s.msg = append([]byte(nil), msg...)
			s.msg[0] ^= 1
			s.want = false
		case 9: // another key's signature
			other, _, _ := ed25519.GenerateKey(rand.Reader)
			s.pub, s.want = other, false
		}
		out[i] = s
	}
	return out
}

// TestBatchesAnswerEachCaller: many goroutines at once, so batches form,
// with bad signatures among them: every caller gets its own answer, the
// same as crypto/ed25519 gives.
func TestBatchesAnswerEachCaller(t *testing.T) {
	v := New(2, time.Millisecond)
	defer v.Close()
	sigs := corpus(t, 400)
	var wg sync.WaitGroup
	for i, s := range sigs {
		if ed25519.Verify(s.pub, s.msg, s.sig) != s.want {
			t.Fatalf("corpus %d: crypto/ed25519 disagrees with the corpus", i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, err := v.Verify(context.Background(), s.pub, s.msg, s.sig)
			if err != nil || ok != s.want {
				t.Errorf("signature %d: got %v %v, want %v", i, ok, err, s.want)
			}
		}()
	}
	wg.Wait()
}

func TestMalformedInputIsRefusedNotPanicked(t *testing.T) {
	v := New(1, 0)
	defer v.Close()
	s := corpus(t, 1)[0]
	for name, c := range map[string]signed{
		"short key":       {pub: s.pub[:31], msg: s.msg, sig: s.sig},
		"short signature": {pub: s.pub, msg: s.msg, sig: s.sig[:63]},
		"zero signature":  {pub: s.pub, msg: s.msg, sig: make([]byte, 64)},
		"s not reduced":   {pub: s.pub, msg: s.msg, sig: append(append([]byte(nil), s.sig[:32]...), bytesFF(32)...)},
		"zero key":        {pub: make([]byte, 32), msg: s.msg, sig: s.sig},
	} {
		if ok, err := v.Verify(context.Background(), c.pub, c.msg, c.sig); ok || err != nil {
			t.Errorf("%s: got %v %v, want false", name, ok, err)
		}
	}
}

func bytesFF(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

func TestClosedAndCancelled(t *testing.T) {
	v := New(1, 0)
	s := corpus(t, 1)[0]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.Verify(ctx, s.pub, s.msg, s.sig); err == nil {
		// Either the send or the wait may win the race with a cancelled
		// context; an answer is fine too, but then it must be right.
		if ok, _ := v.Verify(context.Background(), s.pub, s.msg, s.sig); !ok {
			t.Fatal("valid signature refused")
		}
	}
	v.Close()
	v.Close() // twice is fine
	if _, err := v.Verify(context.Background(), s.pub, s.msg, s.sig); err != ErrClosed {
		t.Fatalf("after Close: %v", err)
	}
}

// BenchmarkVerify is the cost per valid signature from 64 goroutines
// (batches form) against one at a time (crypto/ed25519), in the same run.
func BenchmarkVerify(b *testing.B) {
	var sigs []signed
	for _, s := range corpus(b, 320) {
		if s.want {
			sigs = append(sigs, s)
		}
	}
	b.Run("one-at-a-time", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s := sigs[i%len(sigs)]
			if !ed25519.Verify(s.pub, s.msg, s.sig) {
				b.Fatal("valid signature refused")
			}
			i++
		}
	})
	b.Run("batched", func(b *testing.B) {
		v := New(1, time.Millisecond)
		defer v.Close()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				s := sigs[i%len(sigs)]
				if ok, err := v.Verify(context.Background(), s.pub, s.msg, s.sig); err != nil || !ok {
					b.Error("valid signature refused")
					return
				}
				i++
			}
		})
	})
}
