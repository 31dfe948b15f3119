package licensing

import (
	"crypto/ed25519"
	"testing"
)

func BenchmarkIssue(b *testing.B) {
	k := testKey(b, 1)
	l := sampleLicence()
	for b.Loop() {
		if _, err := Issue(l, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the whole offline check an agent does: parse the
// armour, look up the key, verify the signature, check install and dates.
func BenchmarkVerify(b *testing.B) {
	k := testKey(b, 1)
	file := issue(b, sampleLicence(), k)
	kr := NewKeyring(k.Public())
	b.SetBytes(int64(len(file)))
	for b.Loop() {
		if _, _, err := kr.Verify(file, "inst-7f3a9c", t0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEd25519Verify is the floor under BenchmarkVerify: a bare
// ed25519.Verify over a message as long as the licence payload.
func BenchmarkEd25519Verify(b *testing.B) {
	k := testKey(b, 1)
	s, err := Decode(issue(b, sampleLicence(), k))
	if err != nil {
		b.Fatal(err)
	}
	msg := make([]byte, len(s.Payload))
	sig := ed25519.Sign(k.Private, msg)
	pub := k.Public().Key
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("verify failed")
		}
	}
}
