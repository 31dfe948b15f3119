package api

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the install's signature over a request:
//
//	Switchboard-Signature: v1 install=<id>, ts=<unix seconds>, sig=<base64url>
//
// An activation has no install id yet; it names the key instead:
//
//	Switchboard-Signature: v1 key=<base64url public key>, ts=<unix>, sig=<base64url>
//
// The signature covers SignedMessage(method, path, ts, body). Because a
// batch of reports is signed as one body, every report in it is signed by
// the install key at the cost of one Ed25519 operation per request.
const SignatureHeader = "Switchboard-Signature"

// MaxClockSkew is how far a request's timestamp may be from the registry's
// clock. PBX servers drift; reports are idempotent, so this is wide.
const MaxClockSkew = 24 * time.Hour

// Signature is a parsed SignatureHeader.
type Signature struct {
	InstallID string
	PublicKey ed25519.PublicKey // only on activation
	Timestamp int64
	Sig       []byte
}

// ErrNoSignature means the request carries no Switchboard-Signature header.
var ErrNoSignature = errors.New("request is not signed: missing " + SignatureHeader + " header")

// SignedMessage is the exact byte string an install signs.
func SignedMessage(method, path string, ts int64, body []byte) []byte {
	sum := sha256.Sum256(body)
	return []byte("switchboard-request-v1\n" + method + "\n" + path + "\n" +
		strconv.FormatInt(ts, 10) + "\n" + base64.RawURLEncoding.EncodeToString(sum[:]))
}

// Sign returns the SignatureHeader value for a request. installID is empty
// for an activation, where the public key is named instead.
func Sign(method, path string, body []byte, installID string, key ed25519.PrivateKey, now time.Time) string {
	ts := now.Unix()
	sig := ed25519.Sign(key, SignedMessage(method, path, ts, body))
	who := "install=" + installID
	if installID == "" {
		who = "key=" + base64.RawURLEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	}
	return fmt.Sprintf("v1 %s, ts=%d, sig=%s", who, ts, base64.RawURLEncoding.EncodeToString(sig))
}

// SignRequest sets the SignatureHeader on r, whose body is body.
func SignRequest(r *http.Request, body []byte, installID string, key ed25519.PrivateKey, now time.Time) {
	r.Header.Set(SignatureHeader, Sign(r.Method, r.URL.Path, body, installID, key, now))
}

// ParseSignature parses a SignatureHeader value.
func ParseSignature(header string) (Signature, error) {
	var s Signature
	if header == "" {
		return s, ErrNoSignature
	}
	rest, ok := strings.CutPrefix(header, "v1 ")
	if !ok {
		return s, fmt.Errorf("%s must start with \"v1 \": update the agent", SignatureHeader)
	}
	seen := map[string]bool{}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || v == "" || seen[k] {
			return s, fmt.Errorf("%s: malformed field %q", SignatureHeader, part)
		}
		seen[k] = true
		switch k {
		case "install":
			s.InstallID = v
		case "key":
			raw, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(raw) != ed25519.PublicKeySize {
				return s, fmt.Errorf("%s: key is not a base64url Ed25519 public key", SignatureHeader)
			}
			s.PublicKey = raw
		case "ts":
			ts, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return s, fmt.Errorf("%s: ts is not unix seconds", SignatureHeader)
			}
			s.Timestamp = ts
		case "sig":
			raw, err := base64.RawURLEncoding.DecodeString(v)
			if err != nil || len(raw) != ed25519.SignatureSize {
				return s, fmt.Errorf("%s: sig is not a base64url Ed25519 signature", SignatureHeader)
			}
			s.Sig = raw
		default:
			return s, fmt.Errorf("%s: unknown field %q", SignatureHeader, k)
		}
	}
	switch {
	case s.Sig == nil || !seen["ts"]:
		return s, fmt.Errorf("%s needs ts and sig", SignatureHeader)
	case (s.InstallID == "") == (s.PublicKey == nil):
		return s, fmt.Errorf("%s needs exactly one of install= or key=", SignatureHeader)
	}
	return s, nil
}

// Verify checks s over a request with the given method, path and body
// against pub, and that its timestamp is within MaxClockSkew of now.
func (s Signature) Verify(method, path string, body []byte, pub ed25519.PublicKey, now time.Time) error {
	return s.VerifyWith(method, path, body, pub, now, func(pub ed25519.PublicKey, msg, sig []byte) (bool, error) {
		return ed25519.Verify(pub, msg, sig), nil
	})
}

// VerifyWith is Verify with the Ed25519 check done by check (a batch
// verifier, say). An error from check is returned as it is.
func (s Signature) VerifyWith(method, path string, body []byte, pub ed25519.PublicKey, now time.Time,
	check func(pub ed25519.PublicKey, msg, sig []byte) (bool, error)) error {
	if len(pub) != ed25519.PublicKeySize {
		return errors.New("install public key on record is invalid")
	}
	ok, err := check(pub, SignedMessage(method, path, s.Timestamp, body), s.Sig)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("signature does not match the install key: the request was altered or signed with another key")
	}
	skew := now.Sub(time.Unix(s.Timestamp, 0))
	if skew > MaxClockSkew || skew < -MaxClockSkew {
		return fmt.Errorf("request timestamp is %s away from the registry clock: fix the server's clock (NTP)", skew.Round(time.Second))
	}
	return nil
}
