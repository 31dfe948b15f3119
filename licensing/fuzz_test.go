package licensing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to Decode. It must never panic, every
// refusal must wrap ErrMalformed, and whatever it accepts must be
// self-consistent: the payload is the canonical encoding of the licence, and
// armouring the result again gives a file that decodes to the same thing.
func FuzzDecode(f *testing.F) {
	k := testKey(f, 1)
	file := issue(f, sampleLicence(), k)
	f.Add(file)
	f.Add(bytes.ReplaceAll(file, []byte("\n"), []byte("\r\n")))
	f.Add([]byte("> " + strings.ReplaceAll(strings.TrimSuffix(string(file), "\n"), "\n", "\n> ") + "\n"))
	f.Add(file[:len(file)-40])
	f.Add([]byte(BeginLine + "\n\n" + EndLine + "\n"))
	if golden, err := os.ReadFile(filepath.Join("testdata", "golden.lic")); err == nil {
		f.Add(golden)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Decode(in)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Decode error does not wrap ErrMalformed: %v", err)
			}
			return
		}
		canon, err := Canonical(s.Licence)
		if err != nil {
			t.Fatalf("decoded licence is not valid: %v", err)
		}
		if !bytes.Equal(canon, s.Payload) {
			t.Fatalf("payload is not the canonical encoding of the licence it holds")
		}
		out, err := Armour(s)
		if err != nil {
			t.Fatalf("Armour of a decoded licence: %v", err)
		}
		s2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-armoured licence does not decode: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("re-armoured licence decodes differently:\n%+v\n%+v", s, s2)
		}
		// Armouring depends only on the decoded content.
		if again, _ := Armour(s2); !bytes.Equal(again, out) {
			t.Fatalf("Armour is not stable")
		}
	})
}
