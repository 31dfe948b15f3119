package licensing

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// Armour lines.
const (
	BeginLine = "-----BEGIN SWITCHBOARD LICENCE-----"
	EndLine   = "-----END SWITCHBOARD LICENCE-----"
)

const (
	// lineWidth is the base64 column count, as in PEM.
	lineWidth = 64
	// MaxArmouredSize bounds the input Decode and Verify accept; a real
	// licence is well under 2 KiB.
	MaxArmouredSize = 64 << 10
	// containerMagic starts the base64-decoded body; the last byte is the
	// container format version.
	containerMagic = "SBLC\x01"
)

// Signed is a decoded licence file: the licence, the exact bytes that were
// signed and the signature. Decode does not check the signature.
type Signed struct {
	Licence   Licence
	Payload   []byte
	Signature []byte
}

// Issue signs l with key and returns the armoured licence file. It fills in
// l.KeyID, an ID (random) and IssuedAt (now) when those are empty, and
// normalises l as Canonical describes. An unacceptable licence gives an
// error wrapping ErrInvalid that says which field is wrong.
func Issue(l Licence, key SigningKey) ([]byte, error) {
	if err := key.check(); err != nil {
		return nil, err
	}
	l.KeyID = key.Public().ID
	if l.ID == "" {
		id, err := newLicenceID()
		if err != nil {
			return nil, err
		}
		l.ID = id
	}
	if l.IssuedAt.IsZero() {
		l.IssuedAt = time.Now()
	}
	n, err := normalise(l)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	payload := encodePayload(n)
	sig := ed25519.Sign(key.Private, payload)
	return armour(n, payload, sig), nil
}

// encodeContainer lays out the armoured body: magic and version, key id
// (uint8 length + bytes), payload (uint16 length + bytes), then the 64-byte
// signature, with nothing after it.
func encodeContainer(keyID string, payload, sig []byte) []byte {
	b := make([]byte, 0, len(containerMagic)+1+len(keyID)+2+len(payload)+len(sig))
	b = append(b, containerMagic...)
	b = append(b, byte(len(keyID)))
	b = append(b, keyID...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	b = append(b, payload...)
	return append(b, sig...)
}

func decodeContainer(b []byte) (keyID string, payload, sig []byte, err error) {
	if len(b) < len(containerMagic) || string(b[:len(containerMagic)]) != containerMagic {
		return "", nil, nil, fmt.Errorf("body does not start with the licence container marker (format version 1)")
	}
	b = b[len(containerMagic):]
	if len(b) < 1 {
		return "", nil, nil, fmt.Errorf("body ends before the key id")
	}
	n := int(b[0])
	b = b[1:]
	if len(b) < n {
		return "", nil, nil, fmt.Errorf("body ends inside the key id")
	}
	keyID = string(b[:n])
	if !validKeyID(keyID) {
		return "", nil, nil, fmt.Errorf("key id %q is not %d lowercase hex digits", keyID, 2*keyIDBytes)
	}
	b = b[n:]
	if len(b) < 2 {
		return "", nil, nil, fmt.Errorf("body ends before the payload")
	}
	n = int(binary.BigEndian.Uint16(b))
	b = b[2:]
	if len(b) < n {
		return "", nil, nil, fmt.Errorf("body ends inside the payload")
	}
	payload, b = b[:n], b[n:]
	if len(b) != ed25519.SignatureSize {
		return "", nil, nil, fmt.Errorf("signature is %d bytes, want %d", len(b), ed25519.SignatureSize)
	}
	return keyID, payload, b, nil
}

// headerLines renders the readable header of the armour from the signed
// licence. Decode renders it again and demands an exact match.
func headerLines(l Licence) []string {
	partner := "none"
	if l.Tier != TierNone {
		partner = fmt.Sprintf("%s (%s)", l.PartnerCode, l.Tier)
	}
	return []string{
		"Licence: " + l.ID,
		"Install: " + l.InstallID,
		"Partner: " + partner,
		"Not-After: " + l.NotAfter.Format(time.RFC3339),
		"Key: " + l.KeyID,
	}
}

func armour(l Licence, payload, sig []byte) []byte {
	body := base64.StdEncoding.EncodeToString(encodeContainer(l.KeyID, payload, sig))
	var b bytes.Buffer
	b.WriteString(BeginLine + "\n")
	for _, h := range headerLines(l) {
		b.WriteString(h + "\n")
	}
	b.WriteString("\n")
	for len(body) > lineWidth {
		b.WriteString(body[:lineWidth] + "\n")
		body = body[lineWidth:]
	}
	b.WriteString(body + "\n")
	b.WriteString(EndLine + "\n")
	return b.Bytes()
}

// Armour returns the armoured file text of s, as Issue would have written it.
// It fails if s is not self-consistent (payload, licence and key id must agree).
func Armour(s *Signed) ([]byte, error) {
	l, err := decodePayload(s.Payload)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if !licenceEqual(l, s.Licence) {
		return nil, fmt.Errorf("%w: licence does not match its payload", ErrMalformed)
	}
	if len(s.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: signature is %d bytes, want %d", ErrMalformed, len(s.Signature), ed25519.SignatureSize)
	}
	return armour(l, s.Payload, s.Signature), nil
}

func licenceEqual(a, b Licence) bool {
	return bytes.Equal(encodePayload(a), encodePayload(b))
}

// line is one line of the input, without its line end.
type line struct {
	text string
	num  int // 1-based, for messages
}

// splitLines splits on LF and drops one CR before each LF, so CRLF files
// read like LF files. A CR anywhere else stays in the text and is rejected by
// the checks that follow.
func splitLines(in []byte) []line {
	s := string(in)
	var out []line
	for num := 1; ; num++ {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			out = append(out, line{s, num})
			return out
		}
		out = append(out, line{strings.TrimSuffix(s[:i], "\r"), num})
		s = s[i+1:]
	}
}

// quotePrefix reports whether p is acceptable in front of armour lines: only
// the characters e-mail quoting and indentation use.
func quotePrefix(p string) bool {
	return strings.Trim(p, "> \t") == ""
}

// isBeginLine reports whether text is the BEGIN line, possibly quoted, and
// returns the quote prefix.
func isBeginLine(text string) (prefix string, ok bool) {
	p, ok := strings.CutSuffix(text, BeginLine)
	return p, ok && quotePrefix(p)
}

// malformed wraps ErrMalformed with the detail and the standard advice.
func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s: the licence file is damaged or incomplete; copy the whole block from %s to %s again exactly as the vendor sent it, or ask for a fresh copy",
		ErrMalformed, fmt.Sprintf(format, args...), BeginLine, EndLine)
}

// Decode parses an armoured licence without checking its signature: use it to
// show what a licence says, and Keyring.Verify to trust it. Text before the
// BEGIN line and after the END line is ignored, CRLF line ends are accepted
// and the armour lines may all carry the same quote prefix ("> " or
// indentation). Every error wraps ErrMalformed.
func Decode(armoured []byte) (*Signed, error) {
	if len(armoured) > MaxArmouredSize {
		return nil, malformed("input is %d bytes, a licence is at most %d", len(armoured), MaxArmouredSize)
	}
	lines := splitLines(armoured)
	start, prefix, near := -1, "", 0
	for i, ln := range lines {
		if p, ok := isBeginLine(ln.text); ok {
			start, prefix = i, p
			break
		}
		if near == 0 && strings.Contains(ln.text, BeginLine) {
			near = ln.num
		}
	}
	if start < 0 && near > 0 {
		return nil, malformed("line %d has text around %s, and no line holds it alone", near, BeginLine)
	}
	if start < 0 {
		return nil, malformed("no %s line found", BeginLine)
	}
	// An empty quoted line often loses its trailing space ("> " becomes ">").
	emptyQuoted := strings.TrimRight(prefix, " \t")

	// Header lines up to the first empty line, then base64 up to END.
	var headers, body []line
	end := -1
	inHeader := true
	for i := start + 1; i < len(lines); i++ {
		ln := lines[i]
		text, ok := strings.CutPrefix(ln.text, prefix)
		if !ok {
			if ln.text == emptyQuoted && inHeader {
				text = ""
			} else {
				return nil, malformed("line %d does not carry the quote prefix %q of the BEGIN line", ln.num, prefix)
			}
		}
		if text == EndLine {
			end = i
			break
		}
		if strings.HasPrefix(text, "-----") {
			return nil, malformed("line %d: unexpected armour line %q", ln.num, text)
		}
		if inHeader {
			if text == "" {
				inHeader = false
				continue
			}
			headers = append(headers, line{text, ln.num})
			continue
		}
		body = append(body, line{text, ln.num})
	}
	if end < 0 {
		return nil, malformed("no %s line found after the BEGIN line", EndLine)
	}
	for _, ln := range lines[end+1:] {
		if _, ok := isBeginLine(ln.text); ok {
			return nil, malformed("line %d starts a second licence: give one licence at a time", ln.num)
		}
	}
	if inHeader {
		return nil, malformed("no empty line between the header lines and the encoded body")
	}
	if len(body) == 0 {
		return nil, malformed("no encoded body between the header and %s", EndLine)
	}

	var enc strings.Builder
	for i, ln := range body {
		last := i == len(body)-1
		if n := len(ln.text); n == 0 || n > lineWidth || (!last && n != lineWidth) {
			return nil, malformed("line %d has %d characters; body lines have exactly %d, the last one 1 to %d", ln.num, n, lineWidth, lineWidth)
		}
		// encoding/base64 skips CR and LF inside its input, so check the
		// alphabet here to keep every byte significant.
		for j := 0; j < len(ln.text); j++ {
			if !isBase64Char(ln.text[j]) {
				return nil, malformed("line %d, column %d: %q is not a base64 character", ln.num, j+1, ln.text[j])
			}
		}
		enc.WriteString(ln.text)
	}
	raw, err := base64.StdEncoding.Strict().DecodeString(enc.String())
	if err != nil {
		return nil, malformed("body is not valid base64: %v", err)
	}
	keyID, payload, sig, err := decodeContainer(raw)
	if err != nil {
		return nil, malformed("%v", err)
	}
	l, err := decodePayload(payload)
	if err != nil {
		return nil, malformed("%v", err)
	}
	if l.KeyID != keyID {
		return nil, malformed("container names key %s but the licence names key %s", keyID, l.KeyID)
	}
	want := headerLines(l)
	if len(headers) != len(want) {
		return nil, malformed("%d header lines, want %d (%s)", len(headers), len(want), headerNames(want))
	}
	for i, h := range headers {
		if h.text != want[i] {
			return nil, fmt.Errorf("%w: line %d reads %q but the signed licence says %q: the readable header was edited; use the licence file exactly as the vendor sent it, or ask for a fresh copy",
				ErrMalformed, h.num, h.text, want[i])
		}
	}
	return &Signed{Licence: l, Payload: payload, Signature: sig}, nil
}

func headerNames(hs []string) string {
	names := make([]string, len(hs))
	for i, h := range hs {
		names[i], _, _ = strings.Cut(h, ":")
	}
	return strings.Join(names, ", ")
}

func isBase64Char(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '='
}
