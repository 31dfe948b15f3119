package licensing

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keyIDBytes is how much of the SHA-256 of a public key its id keeps: 64 bits
// tell a handful of vendor keys apart with no chance of collision, and stay
// short enough to read out on the phone.
const keyIDBytes = 8

// File names WriteKeyPair uses inside its directory.
const (
	PrivateKeyFile = "vendor.key"
	PublicKeyFile  = "vendor.pub"
)

// PEM block types of the key files.
const (
	privatePEMType = "SWITCHBOARD VENDOR PRIVATE KEY"
	publicPEMType  = "SWITCHBOARD VENDOR PUBLIC KEY"
	keyIDHeader    = "Key-ID"
)

// KeyID returns the id of an Ed25519 public key: the first 8 bytes of its
// SHA-256, in lowercase hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:keyIDBytes])
}

func validKeyID(id string) bool {
	if len(id) != 2*keyIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// SigningKey is a vendor's private licence-signing key.
type SigningKey struct {
	// ID is KeyID of the public half.
	ID      string
	Private ed25519.PrivateKey
}

// PublicKey is a vendor public key as the agent holds it.
type PublicKey struct {
	// ID is KeyID(Key).
	ID  string
	Key ed25519.PublicKey
}

// GenerateKey makes a new vendor signing key from crypto/rand.
func GenerateKey() (SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return SigningKey{}, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return signingKeyFrom(priv), nil
}

// NewSigningKeyFromSeed builds a signing key from a 32-byte Ed25519 seed. It
// exists for tests and fixtures that need a fixed key; production keys come
// from GenerateKey.
func NewSigningKeyFromSeed(seed []byte) (SigningKey, error) {
	if len(seed) != ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("ed25519 seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return signingKeyFrom(ed25519.NewKeyFromSeed(seed)), nil
}

func signingKeyFrom(priv ed25519.PrivateKey) SigningKey {
	return SigningKey{ID: KeyID(priv.Public().(ed25519.PublicKey)), Private: priv}
}

// Public returns the public half of k, with its id.
func (k SigningKey) Public() PublicKey {
	pub := k.Private.Public().(ed25519.PublicKey)
	return PublicKey{ID: KeyID(pub), Key: pub}
}

// check makes sure a SigningKey someone built by hand is usable.
func (k SigningKey) check() error {
	if len(k.Private) != ed25519.PrivateKeySize {
		return fmt.Errorf("signing key is %d bytes, want %d: load it with LoadSigningKey or make one with GenerateKey", len(k.Private), ed25519.PrivateKeySize)
	}
	// The private key embeds its public half; a mismatch means a damaged key
	// that would sign licences nobody can verify.
	if !bytes.Equal(k.Private[32:], ed25519.NewKeyFromSeed(k.Private.Seed())[32:]) {
		return errors.New("signing key is damaged: its public half does not match its seed")
	}
	if id := k.Public().ID; k.ID != "" && k.ID != id {
		return fmt.Errorf("signing key says id %s but its public key has id %s: the key or its id was changed", k.ID, id)
	}
	return nil
}

// MarshalPrivateKey returns the text of a private key file: a PEM block of
// type "SWITCHBOARD VENDOR PRIVATE KEY" with a Key-ID header, holding the
// 32-byte Ed25519 seed.
func MarshalPrivateKey(k SigningKey) ([]byte, error) {
	if err := k.check(); err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{
		Type:    privatePEMType,
		Headers: map[string]string{keyIDHeader: k.Public().ID},
		Bytes:   k.Private.Seed(),
	}), nil
}

// MarshalPublicKey returns the text of a public key file: a PEM block of type
// "SWITCHBOARD VENDOR PUBLIC KEY" with a Key-ID header. Several such blocks
// may be concatenated into one file (see LoadPublicKeys).
func MarshalPublicKey(k PublicKey) ([]byte, error) {
	if len(k.Key) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("public key is %d bytes, want %d", len(k.Key), ed25519.PublicKeySize)
	}
	return pem.EncodeToMemory(&pem.Block{
		Type:    publicPEMType,
		Headers: map[string]string{keyIDHeader: KeyID(k.Key)},
		Bytes:   k.Key,
	}), nil
}

// WriteKeyPair writes key into dir as vendor.key (mode 0600) and vendor.pub
// (mode 0644), creating dir (0700) if needed. It refuses to overwrite an
// existing vendor.key, since losing a signing key cannot be undone; an
// existing vendor.pub is replaced by the public half of key.
func WriteKeyPair(dir string, key SigningKey) error {
	priv, err := MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	pub, err := MarshalPublicKey(key.Public())
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create key directory: %w", err)
	}
	privPath := filepath.Join(dir, PrivateKeyFile)
	if _, err := os.Lstat(privPath); err == nil {
		return fmt.Errorf("%s already exists: refusing to overwrite a signing key; move it away first or pick another --dir", privPath)
	}
	if err := writeNew(privPath, priv, 0o600); err != nil {
		return err
	}
	if err := writeReplace(filepath.Join(dir, PublicKeyFile), pub, 0o644); err != nil {
		return fmt.Errorf("%s was written but the public key was not: %w", privPath, err)
	}
	return nil
}

// writeTemp writes data to a synced temporary file next to path.
func writeTemp(path string, data []byte, mode fs.FileMode) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) (string, error) {
		f.Close()
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes 0600 files; Chmod sets the exact mode whatever the umask.
	if err := f.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return tmp, nil
}

// writeNew creates path with data, atomically, and fails if path exists:
// the hard link either creates the complete file or nothing.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s already exists: refusing to overwrite a signing key; move it away first or pick another --dir", path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeReplace writes path atomically, replacing any previous file.
func writeReplace(path string, data []byte, mode fs.FileMode) error {
	tmp, err := writeTemp(path, data, mode)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// maxKeyFile bounds what the loaders read: key files are a few hundred bytes.
const maxKeyFile = 64 << 10

func readKeyFile(path string) ([]byte, fs.FileInfo, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("open key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("key file %s is not a regular file", path)
	}
	if fi.Size() > maxKeyFile {
		return nil, nil, fmt.Errorf("key file %s is %d bytes: too large for a key file, check the path", path, fi.Size())
	}
	data := make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && fi.Size() > 0 {
		return nil, nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	return data, fi, nil
}

// LoadSigningKey reads a private key file written by WriteKeyPair. It refuses
// a file that group or others can read or write, because anyone who can
// read it can issue licences.
func LoadSigningKey(path string) (SigningKey, error) {
	data, fi, err := readKeyFile(path)
	if err != nil {
		return SigningKey{}, err
	}
	block, rest := pem.Decode(data)
	if block == nil || block.Type != privatePEMType {
		return SigningKey{}, fmt.Errorf("%s is not a Switchboard vendor private key (no '-----BEGIN %s-----' block): pass the vendor.key written by 'switchboard licence keygen'", path, privatePEMType)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return SigningKey{}, fmt.Errorf("private key %s has mode %04o, so other users can reach it: run 'chmod 600 %s' (and consider rotating the key if others could read it)", path, perm, path)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return SigningKey{}, fmt.Errorf("%s holds more than the private key block: keep one key per file", path)
	}
	if len(block.Bytes) != ed25519.SeedSize {
		return SigningKey{}, fmt.Errorf("%s: private key is %d bytes, want %d: the file is damaged", path, len(block.Bytes), ed25519.SeedSize)
	}
	key := signingKeyFrom(ed25519.NewKeyFromSeed(block.Bytes))
	if id := block.Headers[keyIDHeader]; id != key.ID {
		return SigningKey{}, fmt.Errorf("%s: Key-ID header %q does not match the key (id %s): the file was edited or damaged", path, id, key.ID)
	}
	return key, nil
}

// LoadPublicKey reads a public key file holding exactly one key. Files with
// several keys (a rotation bundle) are read with LoadPublicKeys.
func LoadPublicKey(path string) (PublicKey, error) {
	keys, err := LoadPublicKeys(path)
	if err != nil {
		return PublicKey{}, err
	}
	if len(keys) != 1 {
		return PublicKey{}, fmt.Errorf("%s holds %d public keys: load it with LoadPublicKeys, or keep one key per file", path, len(keys))
	}
	return keys[0], nil
}

// LoadPublicKeys reads a public key file holding one or more concatenated
// "SWITCHBOARD VENDOR PUBLIC KEY" blocks, such as a vendor.pub or a bundle of
// the current and previous vendor keys. Text between blocks is ignored; a
// damaged block, a block of another type or a Key-ID that does not match its
// key is an error.
func LoadPublicKeys(path string) ([]PublicKey, error) {
	data, _, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	var keys []PublicKey
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n := len(keys) + 1
		if block.Type == privatePEMType {
			return nil, fmt.Errorf("%s holds a PRIVATE key: give the agent vendor.pub, never vendor.key", path)
		}
		if block.Type != publicPEMType {
			return nil, fmt.Errorf("%s: block %d is a %q, not a %q: pass the vendor.pub written by 'switchboard licence keygen'", path, n, block.Type, publicPEMType)
		}
		if len(block.Bytes) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("%s: public key %d is %d bytes, want %d: the file is damaged", path, n, len(block.Bytes), ed25519.PublicKeySize)
		}
		pub := ed25519.PublicKey(bytes.Clone(block.Bytes))
		id := KeyID(pub)
		if h := block.Headers[keyIDHeader]; h != id {
			return nil, fmt.Errorf("%s: public key %d has Key-ID header %q but the key's id is %s: the file was edited or damaged", path, n, h, id)
		}
		keys = append(keys, PublicKey{ID: id, Key: pub})
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s holds no '-----BEGIN %s-----' block: pass the vendor.pub written by 'switchboard licence keygen'", path, publicPEMType)
	}
	return keys, nil
}
