package licensing

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestDecodeToleratesEmailAround(t *testing.T) {
	k := testKey(t, 1)
	kr := NewKeyring(k.Public())
	file := string(issue(t, sampleLicence(), k))
	quote := func(prefix string) string {
		lines := strings.Split(strings.TrimSuffix(file, "\n"), "\n")
		for i, ln := range lines {
			lines[i] = prefix + ln
			if ln == "" {
				lines[i] = strings.TrimRight(prefix, " ")
			}
		}
		return strings.Join(lines, "\n") + "\n"
	}
	for name, in := range map[string]string{
		"as issued":          file,
		"no final newline":   strings.TrimSuffix(file, "\n"),
		"crlf":               strings.ReplaceAll(file, "\n", "\r\n"),
		"inside an e-mail":   "Hello,\r\n\r\nhere is your licence:\r\n\r\n" + strings.ReplaceAll(file, "\n", "\r\n") + "\r\nRegards,\r\nthe vendor\r\n",
		"surrounded blank":   "\n\n   \n" + file + "\n\t\n",
		"quoted reply":       "On Monday you wrote:\n" + quote("> ") + ">\n> bye\n",
		"quoted twice":       quote("> > "),
		"indented":           quote("    "),
		"quoted blank kept":  strings.ReplaceAll(quote("> "), "\n>\n", "\n> \n"),
		"text mentions END":  "see " + EndLine + " below\n" + file,
		"prose mentions it":  "the " + BeginLine + " line starts it\n" + file + "up to " + BeginLine + "!\n",
		"other pem after it": file + "-----BEGIN PGP SIGNATURE-----\nxyz\n-----END PGP SIGNATURE-----\n",
	} {
		t.Run(name, func(t *testing.T) {
			l, st, err := kr.Verify([]byte(in), "inst-7f3a9c", t0)
			if err != nil || st != StatusValid || l.ID != "lic-0001" {
				t.Fatalf("%s %v\n%s", st, err, in)
			}
		})
	}
}

func TestDecodeRejectsStructuralDamage(t *testing.T) {
	k := testKey(t, 1)
	file := string(issue(t, sampleLicence(), k))
	lines := strings.Split(strings.TrimSuffix(file, "\n"), "\n")
	join := func(ls []string) string { return strings.Join(ls, "\n") + "\n" }
	without := func(i int) string {
		return join(append(append([]string{}, lines[:i]...), lines[i+1:]...))
	}
	blank := 0
	for i, ln := range lines {
		if ln == "" {
			blank = i
		}
	}
	cases := map[string]string{
		"missing END":            join(lines[:len(lines)-1]),
		"missing header line":    without(1),
		"missing blank line":     without(blank),
		"missing a body line":    without(blank + 1),
		"trailing space":         strings.Replace(file, "\n", " \n", 3),
		"text after BEGIN":       strings.Replace(file, BeginLine, BeginLine+" v1", 1),
		"text before BEGIN":      strings.Replace(file, BeginLine, "x"+BeginLine, 1),
		"mixed quote prefixes":   "> " + strings.Replace(file, "\n", "\n> ", 3),
		"lone CR":                strings.Replace(file, "\n", "\r", 1),
		"blank line in body":     strings.Replace(file, lines[blank+1]+"\n", lines[blank+1]+"\n\n", 1),
		"space in body":          strings.Replace(file, lines[blank+1], lines[blank+1][:10]+" "+lines[blank+1][11:], 1),
		"rewrapped at 76":        rewrap(lines, blank, 76),
		"extra header":           strings.Replace(file, "Key: ", "Comment: hi\nKey: ", 1),
		"edited header":          strings.Replace(file, "Install: inst-7f3a9c", "Install: inst-7f3a9d", 1),
		"edited partner":         strings.Replace(file, "K7QM-4XJD-R (partner)", "K7QM-4XJD-R (referral)", 1),
		"two licences":           file + file,
		"oversized":              file + strings.Repeat(" ", MaxArmouredSize),
		"second BEGIN in header": strings.Replace(file, "Key: ", BeginLine+"\nKey: ", 1),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if in == file {
				t.Fatal("test case did not change the file")
			}
			_, err := Decode([]byte(in))
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode: %v\n%s", err, in)
			}
		})
	}
}

// rewrap re-flows the base64 body to width columns.
func rewrap(lines []string, blank, width int) string {
	var body string
	i := blank + 1
	for ; lines[i] != EndLine; i++ {
		body += lines[i]
	}
	out := append([]string{}, lines[:blank+1]...)
	for len(body) > width {
		out = append(out, body[:width])
		body = body[width:]
	}
	out = append(out, body)
	out = append(out, lines[i:]...)
	return strings.Join(out, "\n") + "\n"
}

// TestEverySingleByteChangeIsRejected takes one licence file and, for every
// byte from the first byte of the BEGIN line to the newline ending the END
// line, tries all 255 other values, and requires Verify to refuse each
// variant with one of the five errors.
func TestEverySingleByteChangeIsRejected(t *testing.T) {
	k := testKey(t, 1)
	kr := NewKeyring(k.Public())
	file := issue(t, sampleLicence(), k)
	now := t0.Add(time.Hour)
	if _, _, err := kr.Verify(file, "inst-7f3a9c", now); err != nil {
		t.Fatalf("the original does not verify: %v", err)
	}
	if file[0] != '-' || !bytes.HasSuffix(file, []byte(EndLine+"\n")) {
		t.Fatal("file does not span exactly BEGIN..END")
	}

	type result struct {
		counts   map[error]int
		accepted []string
	}
	positions := make(chan int)
	results := make(chan result)
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := result{counts: map[error]int{}}
			buf := bytes.Clone(file)
			for pos := range positions {
				orig := buf[pos]
				for v := range 256 {
					if byte(v) == orig {
						continue
					}
					buf[pos] = byte(v)
					_, _, err := kr.Verify(buf, "inst-7f3a9c", now)
					matched := false
					for _, e := range allErrors {
						if errors.Is(err, e) {
							r.counts[e]++
							matched = true
							break
						}
					}
					if !matched && len(r.accepted) < 10 {
						r.accepted = append(r.accepted, fmt.Sprintf("byte %d (%q) -> %q: %s", pos, orig, byte(v), errString(err)))
					}
				}
				buf[pos] = orig
			}
			results <- r
		}()
	}
	go func() {
		for pos := range file {
			positions <- pos
		}
		close(positions)
		wg.Wait()
		close(results)
	}()
	total := map[error]int{}
	var accepted []string
	for r := range results {
		for e, n := range r.counts {
			total[e] += n
		}
		accepted = append(accepted, r.accepted...)
	}
	if len(accepted) > 0 {
		t.Fatalf("variants not rejected with one of the five errors:\n%s", strings.Join(accepted, "\n"))
	}
	n := 0
	for _, c := range total {
		n += c
	}
	if want := len(file) * 255; n != want {
		t.Fatalf("checked %d variants, want %d", n, want)
	}
	t.Logf("%d bytes x 255 = %d variants: malformed %d, unknown key %d, bad signature %d",
		len(file), n, total[ErrMalformed], total[ErrUnknownKey], total[ErrBadSignature])
}

func errString(err error) string {
	if err == nil {
		return "accepted"
	}
	return err.Error()
}

// TestGoldenLicence pins the file format: a licence issued by an earlier
// build (testdata/golden.lic, signed by the key in testdata/golden.pub) must
// keep verifying, and issuing the same licence today must give the same file.
func TestGoldenLicence(t *testing.T) {
	file, err := os.ReadFile(filepath.Join("testdata", "golden.lic"))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := LoadPublicKey(filepath.Join("testdata", "golden.pub"))
	if err != nil {
		t.Fatal(err)
	}
	l, st, err := NewKeyring(pub).Verify(file, "inst-7f3a9c", t0)
	if err != nil || st != StatusValid {
		t.Fatalf("golden licence: %s %v", st, err)
	}
	if again := issue(t, l, testKey(t, 1)); !bytes.Equal(again, file) {
		t.Fatalf("issuing the golden licence again gives a different file:\n%s", again)
	}
}
