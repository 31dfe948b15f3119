package registry

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
	"github.com/switchboard-dev/switchboard/licensing"
)

// Files inside the data directory.
const (
	StoreFile      = "registry.db"
	AdminTokenFile = "admin.token"
	AddrFile       = "registry.addr" // host:port actually bound, written on start
	KeysDir        = "keys"          // keys/<key id>/vendor.key|vendor.pub
	CurrentKeyFile = "current"       // keys/current: id of the signing key in use
	KeyringFile    = "keyring.pub"   // keys/keyring.pub: every public key, for agents
)

// Setup is what Prepare found or created in the data directory.
type Setup struct {
	AdminTokenPath string
	AdminToken     string
	TokenCreated   bool
	Keys           *KeySet
	KeyCreated     bool
}

// Prepare makes the data directory ready: creates it (0700), the admin
// token and the first signing key on first start, and loads them on later
// starts. It is the only function that makes a new registry; every other
// command that takes a data directory checks it with CheckDataDir.
func Prepare(dataDir string) (Setup, error) {
	var s Setup
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return s, fmt.Errorf("create data directory %s: %w", dataDir, err)
	}
	var err error
	s.AdminTokenPath = filepath.Join(dataDir, AdminTokenFile)
	s.AdminToken, s.TokenCreated, err = loadOrCreateToken(s.AdminTokenPath)
	if err != nil {
		return s, err
	}
	keysDir := filepath.Join(dataDir, KeysDir)
	if _, err := os.Stat(filepath.Join(keysDir, CurrentKeyFile)); errors.Is(err, fs.ErrNotExist) {
		if _, err := rotateKey(dataDir); err != nil {
			return s, err
		}
		s.KeyCreated = true
	}
	s.Keys, err = LoadKeys(dataDir)
	return s, err
}

func loadOrCreateToken(path string) (string, bool, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		fi, err := os.Stat(path)
		if err != nil {
			return "", false, fmt.Errorf("stat admin token %s: %w", path, err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", false, fmt.Errorf("admin token %s has mode %04o, so other users can read it: run 'chmod 600 %s'", path, fi.Mode().Perm(), path)
		}
		tok := strings.TrimSpace(string(raw))
		if len(tok) < 32 {
			return "", false, fmt.Errorf("admin token %s is shorter than 32 characters: delete it and restart to create a new one", path)
		}
		return tok, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", false, fmt.Errorf("read admin token %s: %w", path, err)
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", false, fmt.Errorf("generate admin token: %w", err)
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	if err := atomicfile.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", false, fmt.Errorf("write admin token: %w", err)
	}
	return tok, true, nil
}

// KeySet is the vendor's licence-signing keys: the current one signs, all
// of them are published so older licences keep verifying.
type KeySet struct {
	Current licensing.SigningKey
	Public  []licensing.PublicKey // every key, oldest directory order
}

// LoadKeys reads keys/<id>/vendor.key for every key and keys/current.
func LoadKeys(dataDir string) (*KeySet, error) {
	keysDir := filepath.Join(dataDir, KeysDir)
	cur, err := os.ReadFile(filepath.Join(keysDir, CurrentKeyFile))
	if err != nil {
		return nil, fmt.Errorf("read current key id: %w (run 'switchboard registry keys rotate --data %s' to create a key)", err, dataDir)
	}
	curID := strings.TrimSpace(string(cur))
	entries, err := os.ReadDir(keysDir)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	ks := &KeySet{}
	found := false
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		k, err := licensing.LoadSigningKey(filepath.Join(keysDir, e.Name(), licensing.PrivateKeyFile))
		if err != nil {
			return nil, fmt.Errorf("load signing key: %w", err)
		}
		if k.ID != e.Name() {
			return nil, fmt.Errorf("signing key in %s has id %s: the directory must be named after its key id", filepath.Join(keysDir, e.Name()), k.ID)
		}
		ks.Public = append(ks.Public, k.Public())
		if k.ID == curID {
			ks.Current, found = k, true
		}
	}
	if !found {
		return nil, fmt.Errorf("current signing key %q (from %s) is not in %s: restore it from a backup or rotate to a new key", curID, filepath.Join(keysDir, CurrentKeyFile), keysDir)
	}
	return ks, nil
}

// CheckDataDir returns an error unless dataDir is an existing registry
// data directory: one that holds the store or a current signing key. Staff
// commands call it before touching the directory, so a mistyped path is
// refused instead of growing a second registry nobody runs.
func CheckDataDir(dataDir string) error {
	fi, err := os.Stat(dataDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("registry data directory %s does not exist: check the path (only 'switchboard registry serve --data DIR' creates a new registry)", dataDir)
	case err != nil:
		return fmt.Errorf("registry data directory %s: %w", dataDir, err)
	case !fi.IsDir():
		return fmt.Errorf("registry data directory %s is a file, not a directory: check the path (only 'switchboard registry serve --data DIR' creates a new registry)", dataDir)
	}
	for _, marker := range []string{StoreFile, filepath.Join(KeysDir, CurrentKeyFile)} {
		_, err := os.Stat(filepath.Join(dataDir, marker))
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("registry data directory %s: %w", dataDir, err)
		}
	}
	return fmt.Errorf("%s is not a registry data directory (it has neither %s nor %s): check the path (only 'switchboard registry serve --data DIR' creates a new registry)",
		dataDir, StoreFile, filepath.Join(KeysDir, CurrentKeyFile))
}

// RotateKey creates a new signing key in an existing data directory (see
// CheckDataDir) and makes it current. Earlier keys stay, so licences they
// signed keep verifying, and keys/keyring.pub is rewritten with every
// public key.
func RotateKey(dataDir string) (licensing.SigningKey, error) {
	if err := CheckDataDir(dataDir); err != nil {
		return licensing.SigningKey{}, err
	}
	return rotateKey(dataDir)
}

// rotateKey is RotateKey without the check, for Prepare's first key.
func rotateKey(dataDir string) (licensing.SigningKey, error) {
	keysDir := filepath.Join(dataDir, KeysDir)
	if err := os.MkdirAll(keysDir, 0o700); err != nil {
		return licensing.SigningKey{}, fmt.Errorf("create key directory: %w", err)
	}
	k, err := licensing.GenerateKey()
	if err != nil {
		return k, err
	}
	if err := licensing.WriteKeyPair(filepath.Join(keysDir, k.ID), k); err != nil {
		return k, fmt.Errorf("write signing key: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(keysDir, CurrentKeyFile), []byte(k.ID+"\n"), 0o600); err != nil {
		return k, fmt.Errorf("make key %s current: %w", k.ID, err)
	}
	ks, err := LoadKeys(dataDir)
	if err != nil {
		return k, err
	}
	bundle, err := ks.KeyringPEM()
	if err != nil {
		return k, err
	}
	if err := atomicfile.WriteFile(filepath.Join(keysDir, KeyringFile), bundle, 0o644); err != nil {
		return k, fmt.Errorf("write keyring: %w", err)
	}
	return k, nil
}

// KeyringPEM returns every public key as concatenated PEM blocks
// (licensing.LoadPublicKeys reads it), current key first.
func (ks *KeySet) KeyringPEM() ([]byte, error) {
	var out []byte
	for _, pk := range ks.ordered() {
		b, err := licensing.MarshalPublicKey(pk)
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// ordered lists the current key first, then the others by id.
func (ks *KeySet) ordered() []licensing.PublicKey {
	keys := slices.Clone(ks.Public)
	slices.SortFunc(keys, func(a, b licensing.PublicKey) int {
		switch {
		case a.ID == ks.Current.ID:
			return -1
		case b.ID == ks.Current.ID:
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	return keys
}
