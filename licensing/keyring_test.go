package licensing

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

var allErrors = []error{ErrMalformed, ErrUnknownKey, ErrBadSignature, ErrExpired, ErrWrongInstall}

// isOnly checks that err wraps want and none of the other four sentinels.
func isOnly(t *testing.T, err, want error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", want)
	}
	for _, e := range allErrors {
		if got := errors.Is(err, e); got != (e == want) {
			t.Fatalf("errors.Is(err, %q) = %v; err = %v", e, got, err)
		}
	}
}

func TestKeyRotation(t *testing.T) {
	oldKey, newKey := testKey(t, 1), testKey(t, 2)
	if oldKey.ID == newKey.ID {
		t.Fatal("two keys share an id")
	}
	oldLic := issue(t, sampleLicence(), oldKey)
	newLic := issue(t, sampleLicence(), newKey)
	now := t0.Add(time.Hour)

	both := NewKeyring(oldKey.Public(), newKey.Public())
	for name, f := range map[string][]byte{"old": oldLic, "new": newLic} {
		l, st, err := both.Verify(f, "", now)
		if err != nil || st != StatusValid {
			t.Fatalf("%s licence with both keys: %s %v", name, st, err)
		}
		if want := map[string]string{"old": oldKey.ID, "new": newKey.ID}[name]; l.KeyID != want {
			t.Fatalf("%s licence reports key %s, want %s", name, l.KeyID, want)
		}
	}
	// Once the old key is retired, its licences are refused as unknown key.
	onlyNew := NewKeyring(newKey.Public())
	if _, _, err := onlyNew.Verify(newLic, "", now); err != nil {
		t.Fatal(err)
	}
	_, _, err := onlyNew.Verify(oldLic, "", now)
	isOnly(t, err, ErrUnknownKey)
	for _, want := range []string{oldKey.ID, newKey.ID, "vendor.pub"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("unknown-key error lacks %q: %v", want, err)
		}
	}
	if got := both.IDs(); len(got) != 2 {
		t.Fatalf("IDs = %v", got)
	}
}

func TestKeyringFilesKeysUnderDerivedID(t *testing.T) {
	k := testKey(t, 1)
	other := testKey(t, 2)
	// A key mislabelled with the other key's id must not verify the other
	// key's licences, and must still verify its own.
	kr := NewKeyring(PublicKey{ID: other.ID, Key: k.Public().Key})
	_, _, err := kr.Verify(issue(t, sampleLicence(), other), "", t0)
	isOnly(t, err, ErrUnknownKey)
	if _, _, err := kr.Verify(issue(t, sampleLicence(), k), "", t0); err != nil {
		t.Fatal(err)
	}
	var zero Keyring
	zero.Add(k.Public())
	if _, _, err := zero.Verify(issue(t, sampleLicence(), k), "", t0); err != nil {
		t.Fatalf("zero-value keyring: %v", err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Add accepted a 3-byte key")
		}
	}()
	zero.Add(PublicKey{Key: ed25519.PublicKey{1, 2, 3}})
}

func TestVerifyErrors(t *testing.T) {
	k := testKey(t, 1)
	kr := NewKeyring(k.Public())
	file := issue(t, sampleLicence(), k)
	now := t0.Add(time.Hour)

	t.Run("malformed", func(t *testing.T) {
		for name, in := range map[string][]byte{
			"empty":     nil,
			"truncated": file[:len(file)/2],
			"no body":   []byte(BeginLine + "\n" + EndLine + "\n"),
			"garbage":   []byte("hello"),
			"two":       append(bytes.Clone(file), file...),
		} {
			_, st, err := kr.Verify(in, "", now)
			isOnly(t, err, ErrMalformed)
			if st != "" || !strings.Contains(err.Error(), "copy the whole block") {
				t.Errorf("%s: status %q, error %v", name, st, err)
			}
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		_, _, err := NewKeyring(testKey(t, 9).Public()).Verify(file, "", now)
		isOnly(t, err, ErrUnknownKey)
		_, _, err = NewKeyring().Verify(file, "", now)
		isOnly(t, err, ErrUnknownKey)
		if !strings.Contains(err.Error(), "holds no keys") {
			t.Error(err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		// Re-sign nothing: change the signed seat count and keep the old
		// signature, with the header still consistent.
		s, err := Decode(file)
		if err != nil {
			t.Fatal(err)
		}
		forged := s.Licence
		forged.Seats = 1000
		s.Licence = forged
		s.Payload = encodePayload(forged)
		f, err := Armour(s)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = kr.Verify(f, "", now)
		isOnly(t, err, ErrBadSignature)
		if !strings.Contains(err.Error(), "altered after signing") {
			t.Error(err)
		}
	})
	t.Run("wrong install", func(t *testing.T) {
		l, st, err := kr.Verify(file, "inst-other", now)
		isOnly(t, err, ErrWrongInstall)
		if l.InstallID != "inst-7f3a9c" || st != "" {
			t.Errorf("licence %+v, status %q", l, st)
		}
		for _, want := range []string{"inst-7f3a9c", "inst-other"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
	t.Run("expired", func(t *testing.T) {
		l, st, err := kr.Verify(file, "inst-7f3a9c", notAfter.Add(31*24*time.Hour))
		isOnly(t, err, ErrExpired)
		if st != StatusExpired || l.ID != "lic-0001" {
			t.Errorf("status %q licence %q", st, l.ID)
		}
		for _, want := range []string{"30 days", "2027-01-14T23:59:59Z", "2027-02-13T23:59:59Z", "renew"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q: %v", want, err)
			}
		}
	})
}

func TestGraceStates(t *testing.T) {
	k := testKey(t, 1)
	kr := NewKeyring(k.Public())
	l := sampleLicence()
	l.Grace = 72 * time.Hour
	file := issue(t, l, k)
	for _, c := range []struct {
		name    string
		at      time.Time
		want    Status
		wantErr error
	}{
		{"before issue (clock skew)", t0.Add(-time.Hour), StatusValid, nil},
		{"just issued", t0, StatusValid, nil},
		{"last second", notAfter, StatusValid, nil},
		{"first grace second", notAfter.Add(time.Second), StatusGrace, nil},
		{"mid grace", notAfter.Add(36 * time.Hour), StatusGrace, nil},
		{"last grace second", notAfter.Add(72 * time.Hour), StatusGrace, nil},
		{"first expired second", notAfter.Add(72*time.Hour + time.Second), StatusExpired, ErrExpired},
		{"long expired", notAfter.AddDate(5, 0, 0), StatusExpired, ErrExpired},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, st, err := kr.Verify(file, "inst-7f3a9c", c.at)
			if st != c.want {
				t.Errorf("status %q, want %q", st, c.want)
			}
			if c.wantErr == nil && err != nil {
				t.Errorf("error %v", err)
			}
			if c.wantErr != nil {
				isOnly(t, err, c.wantErr)
			}
		})
	}
	// No grace at all: expired the second after not-after.
	l.Grace = 0
	_, st, err := kr.Verify(issue(t, l, k), "", notAfter.Add(time.Second))
	if st != StatusExpired || !errors.Is(err, ErrExpired) {
		t.Fatalf("zero grace: %s %v", st, err)
	}
}

func TestVerifyConcurrentWithAdd(t *testing.T) {
	k := testKey(t, 1)
	kr := NewKeyring(k.Public())
	file := issue(t, sampleLicence(), k)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, _, err := kr.Verify(file, "", t0); err != nil {
					t.Error(err)
					return
				}
				kr.Add(testKey(t, byte(10+i)).Public())
			}
		}()
	}
	wg.Wait()
}
