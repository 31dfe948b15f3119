// Package state is the agent's state directory: the install key, the
// install record and licence the registry handed out, the outbox database
// and the plugin manifest. The installer writes the same files through this
// package, so both agree on names, formats and permissions.
package state

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchboard-dev/switchboard/internal/atomicfile"
	"github.com/switchboard-dev/switchboard/registry/api"
)

// File names inside the state directory.
const (
	KeyFile     = "install.key"  // Ed25519 private key, PKCS#8 PEM, 0600
	InstallFile = "install.json" // Install, written after activation
	LicenceFile = "licence"      // armoured licence, as the registry sent it
	OutboxFile  = "outbox.db"    // bbolt, see agent/outbox
)

// Dir is an opened state directory.
type Dir struct {
	Path string
}

// Open creates path (mode 0700) when missing and tightens its mode when it
// is readable by others: it holds the install's private key.
func Open(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("create state directory %s: %w", path, err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("state directory %s is not a directory", path)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(path, 0o700); err != nil {
			return nil, fmt.Errorf("state directory %s has mode %o and cannot be set to 0700: %w", path, fi.Mode().Perm(), err)
		}
	}
	return &Dir{Path: path}, nil
}

// File returns the path of name inside the directory.
func (d *Dir) File(name string) string { return filepath.Join(d.Path, name) }

// LoadOrCreateKey returns the install key, creating it on first use.
// created tells the caller a new install identity was just made.
func (d *Dir) LoadOrCreateKey() (key ed25519.PrivateKey, created bool, err error) {
	path := d.File(KeyFile)
	key, err = LoadKey(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	if err := d.CheckKeyNotLost(); err != nil {
		return nil, false, err
	}
	key, pemBytes, err := NewKey()
	if err != nil {
		return nil, false, err
	}
	if err := WriteFileAtomic(path, pemBytes, 0o600); err != nil {
		return nil, false, fmt.Errorf("write install key: %w", err)
	}
	return key, true, nil
}

// CheckKeyNotLost is called before a new install key is made: when the
// install record exists the install already has an identity at the
// registry, and a new key would silently cut it off (every report refused
// as badly signed). It returns an error saying how to recover.
func (d *Dir) CheckKeyNotLost() error {
	if _, err := os.Stat(d.File(InstallFile)); err != nil {
		return nil
	}
	return fmt.Errorf("install key %s is missing but %s records an activated install: restore the key from backup (it is the install's identity at the registry); to register this server as a new install instead, remove %s and %s, then re-run the installer",
		d.File(KeyFile), d.File(InstallFile), d.File(InstallFile), d.File(LicenceFile))
}

// NewKey generates a new install key and returns it with its file
// contents (PKCS#8 PEM).
func NewKey() (ed25519.PrivateKey, []byte, error) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate the install key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("encode the install key: %w", err)
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// LoadKey reads an install key file. A key readable by group or others is
// tightened to 0600 rather than refused: refusing would stop reporting.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read install key: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(path, 0o600); err != nil {
			return nil, fmt.Errorf("install key %s has mode %o and cannot be set to 0600: %w", path, fi.Mode().Perm(), err)
		}
	}
	return ParseKey(path, data)
}

// ParseKey reads the contents data of the install key file at path
// (named in errors) without touching the file.
func ParseKey(path string, data []byte) (ed25519.PrivateKey, error) {
	block, _ := pem.Decode(data)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("install key %s is not a PEM \"PRIVATE KEY\" block: restore it from backup, or remove it to register this server as a new install", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("install key %s: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("install key %s is a %T, not an Ed25519 key", path, k)
	}
	return ek, nil
}

// Install is what the registry said when the install activated, plus what
// later answers changed (partner link, interval).
type Install struct {
	InstallID                string          `json:"install_id"`
	ActivatedAt              time.Time       `json:"activated_at"`
	HeartbeatIntervalSeconds int             `json:"heartbeat_interval_seconds,omitempty"`
	Partner                  *api.PartnerRef `json:"partner,omitempty"`
	LinkNote                 string          `json:"link_note,omitempty"`
}

// LoadInstall reads the install record; ok is false before activation.
func (d *Dir) LoadInstall() (inst Install, ok bool, err error) {
	data, err := os.ReadFile(d.File(InstallFile))
	if errors.Is(err, fs.ErrNotExist) {
		return inst, false, nil
	}
	if err != nil {
		return inst, false, fmt.Errorf("read install record: %w", err)
	}
	if err := json.Unmarshal(data, &inst); err != nil {
		return Install{}, false, fmt.Errorf("install record %s is damaged (%v): restore it from backup or re-run the installer", d.File(InstallFile), err)
	}
	if err := inst.check(); err != nil {
		return Install{}, false, fmt.Errorf("install record %s %v: restore it from backup or re-run the installer", d.File(InstallFile), err)
	}
	return inst, true, nil
}

// maxHeartbeatInterval bounds heartbeat_interval_seconds: a year, far
// above any real schedule and far below what overflows a time.Duration.
const maxHeartbeatInterval = 366 * 24 * 3600

// check says what is wrong with a decoded install record.
func (inst Install) check() error {
	if inst.InstallID == "" {
		return errors.New("has no install_id")
	}
	if len(inst.InstallID) > 64 {
		return fmt.Errorf("has an install_id of %d bytes; install ids are short", len(inst.InstallID))
	}
	for _, c := range []byte(inst.InstallID) {
		if c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			return fmt.Errorf("has an install_id %q that is not an install id", inst.InstallID)
		}
	}
	if inst.HeartbeatIntervalSeconds < 0 || inst.HeartbeatIntervalSeconds > maxHeartbeatInterval {
		return fmt.Errorf("has heartbeat_interval_seconds %d, outside 0 to %d", inst.HeartbeatIntervalSeconds, maxHeartbeatInterval)
	}
	return nil
}

// SaveInstall writes the install record atomically.
func (d *Dir) SaveInstall(inst Install) error {
	data, err := json.MarshalIndent(inst, "", "  ")
	if err != nil {
		return fmt.Errorf("encode install record: %w", err)
	}
	if err := WriteFileAtomic(d.File(InstallFile), append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("write install record: %w", err)
	}
	return nil
}

// LoadLicence returns the armoured licence; ok is false when there is none.
func (d *Dir) LoadLicence() (armoured string, ok bool, err error) {
	data, err := os.ReadFile(d.File(LicenceFile))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read licence: %w", err)
	}
	return strings.TrimSpace(string(data)), true, nil
}

// SaveLicence writes an armoured licence atomically. Callers verify it
// first: a licence that does not verify must never replace a good one.
func (d *Dir) SaveLicence(armoured string) error {
	if err := WriteFileAtomic(d.File(LicenceFile), []byte(strings.TrimSpace(armoured)+"\n"), 0o644); err != nil {
		return fmt.Errorf("write licence: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path so that a crash leaves either the
// old or the new content; see atomicfile.WriteFile.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	return atomicfile.WriteFile(path, data, mode)
}
