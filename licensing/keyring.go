package licensing

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// The five ways a licence is refused. Errors returned by Decode and
// Keyring.Verify wrap exactly one of them (test with errors.Is) and add what
// is wrong and what to do about it.
var (
	// ErrMalformed: the file is not a well-formed licence (damaged, cut
	// short, edited in a way that breaks its structure).
	ErrMalformed = errors.New("malformed licence")
	// ErrUnknownKey: signed by a key the keyring does not hold.
	ErrUnknownKey = errors.New("licence signed by an unknown key")
	// ErrBadSignature: well-formed, known key, but the signature does not
	// match the content: it was altered after signing.
	ErrBadSignature = errors.New("bad licence signature")
	// ErrExpired: past NotAfter and past the grace period.
	ErrExpired = errors.New("licence expired")
	// ErrWrongInstall: a valid licence issued for a different install.
	ErrWrongInstall = errors.New("licence is for another install")
)

// Keyring holds the vendor public keys an agent trusts, by key id. Holding
// the previous and the current key lets the vendor rotate keys without
// breaking licences signed with the old one. The zero value is an empty,
// usable keyring; it is safe for concurrent use.
type Keyring struct {
	mu   sync.RWMutex
	keys map[string]ed25519.PublicKey
}

// NewKeyring returns a keyring holding keys.
func NewKeyring(keys ...PublicKey) *Keyring {
	k := &Keyring{}
	for _, pk := range keys {
		k.Add(pk)
	}
	return k
}

// Add trusts pk. The key is filed under the id derived from pk.Key, whatever
// pk.ID says, so a mislabelled key can never vouch for another key's
// licences. Adding a key twice is harmless. A key that is not 32 bytes is a
// programming error (LoadPublicKey never returns one) and panics, like
// ed25519.Verify would.
func (k *Keyring) Add(pk PublicKey) {
	if len(pk.Key) != ed25519.PublicKeySize {
		panic(fmt.Sprintf("licensing: Keyring.Add: public key is %d bytes, want %d", len(pk.Key), ed25519.PublicKeySize))
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.keys == nil {
		k.keys = make(map[string]ed25519.PublicKey)
	}
	k.keys[KeyID(pk.Key)] = slices.Clone(pk.Key)
}

// IDs returns the ids of the trusted keys, sorted.
func (k *Keyring) IDs() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	ids := make([]string, 0, len(k.keys))
	for id := range k.keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (k *Keyring) lookup(id string) (ed25519.PublicKey, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	pub, ok := k.keys[id]
	return pub, ok
}

// Verify checks an armoured licence: its structure, that a trusted key signed
// it, that it belongs to installID (skipped when installID is ""), and its
// validity at now.
//
// A licence past NotAfter but within its grace period verifies with
// StatusGrace and a nil error; past the grace period Verify returns
// StatusExpired and an error wrapping ErrExpired. For ErrExpired and
// ErrWrongInstall the (authentic) licence is returned too, so callers can say
// which licence it was; for the other errors the Licence is zero and the
// Status empty. A licence issued after now (clock skew) is not refused.
func (k *Keyring) Verify(armoured []byte, installID string, now time.Time) (Licence, Status, error) {
	s, err := Decode(armoured)
	if err != nil {
		return Licence{}, "", err
	}
	l := s.Licence
	pub, ok := k.lookup(l.KeyID)
	if !ok {
		held := "it holds no keys"
		if ids := k.IDs(); len(ids) > 0 {
			held = "it holds " + strings.Join(ids, ", ")
		}
		return Licence{}, "", fmt.Errorf("%w: licence %s was signed by key %s which is not in the keyring (%s): add the vendor's current public key (vendor.pub) to the agent config, or ask the vendor which key signed it",
			ErrUnknownKey, l.ID, l.KeyID, held)
	}
	if !ed25519.Verify(pub, s.Payload, s.Signature) {
		return Licence{}, "", fmt.Errorf("%w: the content of licence %s does not match its signature by key %s, so it was altered after signing: use the licence file exactly as the vendor sent it, or ask for a fresh copy",
			ErrBadSignature, l.ID, l.KeyID)
	}
	if installID != "" && l.InstallID != installID {
		return l, "", fmt.Errorf("%w: licence %s was issued for install %q but this is install %q: use the licence issued for this server, or ask the vendor to issue one for install %q",
			ErrWrongInstall, l.ID, l.InstallID, installID, installID)
	}
	st := l.StatusAt(now)
	if st == StatusExpired {
		return l, st, fmt.Errorf("%w: licence %s ended on %s and its grace period of %s ended on %s: ask the vendor or your partner to renew it, then install the new licence",
			ErrExpired, l.ID, l.NotAfter.Format(time.RFC3339), FormatGrace(l.Grace), l.GraceEnds().Format(time.RFC3339))
	}
	return l, st, nil
}

// FormatGrace prints a grace period in days when it is whole days
// ("30 days"), and as a Go duration otherwise.
func FormatGrace(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > 0 && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	default:
		return d.String()
	}
}
