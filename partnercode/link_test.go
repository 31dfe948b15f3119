package partnercode

import (
	"errors"
	"strings"
	"testing"
)

type extractCase struct {
	in    string
	want  string    // canonical code when valid
	kind  ErrorKind // error kind when not
	inMsg string    // substring of the message
}

func checkExtract(t *testing.T, name string, fn func(string) (Code, error), cases []extractCase) {
	t.Helper()
	for _, c := range cases {
		got, err := fn(c.in)
		if c.want != "" {
			if err != nil || string(got) != c.want {
				t.Errorf("%s(%q) = %q, %v; want %q", name, c.in, got, err, c.want)
			}
			continue
		}
		var pe *Error
		if err == nil || !errors.As(err, &pe) {
			t.Errorf("%s(%q) = %q, %v; want *Error of kind %v", name, c.in, got, err, c.kind)
			continue
		}
		if got != "" || pe.Kind != c.kind {
			t.Errorf("%s(%q) = %q, kind %v (%v); want kind %v", name, c.in, got, pe.Kind, err, c.kind)
		}
		if !strings.Contains(err.Error(), c.inMsg) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s(%q) message %q should contain %q on one line", name, c.in, err.Error(), c.inMsg)
		}
	}
}

func TestFromLink(t *testing.T) {
	other := "ZZZZ-ZZZZ-V"
	checkExtract(t, "FromLink", FromLink, []extractCase{
		{in: "https://switchboard.example/download?ref=K7QM-4XJD-R", want: codeExample},
		{in: "https://switchboard.example/download?ref=k7qm4xjdr", want: codeExample},
		{in: "https://switchboard.example/download?os=linux&via=K7QM4XJDR&utm_source=mail", want: codeExample},
		{in: "https://switchboard.example/?fpr=K7QM-4XJD-R", want: codeExample},
		{in: "https://switchboard.example/?code=K7QM-4XJD-R", want: codeExample},
		{in: "https://switchboard.example/?REF=K7QM-4XJD-R", want: codeExample},
		{in: "https://switchboard.example/?ref=K7QM+4XJD+R", want: codeExample},     // + is a space
		{in: "https://switchboard.example/?ref=K7QM%204XJD%2DR", want: codeExample}, // escapes
		{in: "https://switchboard.example/?%72ef=K7QM4XJDR", want: codeExample},     // escaped key
		{in: "https://switchboard.example/r/K7QM-4XJD-R", want: codeExample},
		{in: "https://switchboard.example/r/k7qm4xjdr/", want: codeExample},
		{in: "https://switchboard.example/en/R/K7QM4XJDR?lang=en", want: codeExample},
		{in: "switchboard.example/download?ref=K7QM4XJDR", want: codeExample}, // no scheme
		{in: "/download?ref=K7QM4XJDR", want: codeExample},
		{in: "?ref=K7QM4XJDR", want: codeExample},
		{in: "  https://switchboard.example/?ref=K7QM4XJDR\n", want: codeExample}, // pasted with a newline
		{in: "https://switchboard.example/?ref=K7QM4XJDR#ref=" + other, want: codeExample},
		{in: "https://switchboard.example/?ref=K7QM4XJDR&ref=k7qm-4xjd-r", want: codeExample},    // same code twice
		{in: "https://switchboard.example/r/K7QM4XJDR?ref=K7QM-4XJD-R", want: codeExample},       // same code twice
		{in: "https://switchboard.example/?code=SUMMER24&ref=K7QM4XJDR", want: codeExample},      // a coupon beside it
		{in: "https://switchboard.example/?ref=&via=K7QM4XJDR", want: codeExample},               // empty ref
		{in: "https://switchboard.example/?ref=K7QM4XJDR;x=1", kind: ErrCharacter, inMsg: "';'"}, // ; is not a separator
		{in: "mailto:x@example.com?ref=K7QM4XJDR", want: codeExample},
		{in: "https://switchboard.example/?ref=K7QM4XJDR&via=" + other, kind: ErrAmbiguous, inMsg: "two different partner codes"},
		{in: "https://switchboard.example/r/" + other + "?ref=K7QM4XJDR", kind: ErrAmbiguous, inMsg: "ask the partner"},
		{in: "https://switchboard.example/?ref=K7QM4XJDT", kind: ErrCheck, inMsg: "check character wrong (code from the link's ref parameter)"},
		{in: "https://switchboard.example/?via=K7QM4XJD", kind: ErrLength, inMsg: "wrong length (code from the link's via parameter): 8 characters"},
		{in: "https://switchboard.example/?ref=K7QMU4XJD", kind: ErrCharacter, inMsg: "bad character 'U' at position 5 (code from the link's ref parameter)"},
		{in: "https://switchboard.example/?ref=K7QM%ZZ", kind: ErrCharacter, inMsg: "'%' at position 5"}, // broken escape kept and reported
		{in: "https://switchboard.example/r/K7QM4XJDT", kind: ErrCheck, inMsg: "link's /r/ path"},
		{in: "https://switchboard.example/download", kind: ErrNotFound, inMsg: "expected ?ref=CODE"},
		{in: "https://switchboard.example/download#ref=K7QM4XJDR", kind: ErrNotFound},
		{in: "https://switchboard.example/r/", kind: ErrNotFound},
		{in: "https://switchboard.example/r", kind: ErrNotFound},
		{in: "https://switchboard.example/?reference=K7QM4XJDR", kind: ErrNotFound},
		{in: "K7QM-4XJD-R", kind: ErrNotFound, inMsg: "type the code itself"}, // a bare code is not a link
		{in: "", kind: ErrNotFound, inMsg: "no link given"},
		{in: "   ", kind: ErrNotFound, inMsg: "no link given"},
		{in: "http://[::1/?ref=K7QM4XJDR", kind: ErrNotFound, inMsg: "not a valid link"},
		{in: "https://switchboard.example/\x00?ref=K7QM4XJDR", kind: ErrNotFound, inMsg: "not a valid link"},
		{in: "https://switchboard.example/?ref=" + strings.Repeat("A", 100000), kind: ErrLength},
		{in: "https://switchboard.example/?" + strings.Repeat("ref=K&", 10000), kind: ErrLength},
	})
}

func TestFromLinkNotValidLinkDoesNotRepeatInput(t *testing.T) {
	long := "http://[::1/" + strings.Repeat("x", 5000)
	_, err := FromLink(long)
	if err == nil || len(err.Error()) > 300 {
		t.Fatalf("message for a malformed link should stay short, got %d bytes", len(err.Error()))
	}
}

func TestFromFilename(t *testing.T) {
	checkExtract(t, "FromFilename", FromFilename, []extractCase{
		{in: "switchboard-install-K7QM4XJDR.sh", want: codeExample},
		{in: "switchboard-install-K7QM-4XJD-R.sh", want: codeExample},
		{in: "switchboard-install-k7qm4xjdr.sh", want: codeExample},
		{in: "SWITCHBOARD-INSTALL-K7QM4XJDR.SH", want: codeExample},
		{in: "switchboard_install_K7QM4XJDR.sh", want: codeExample},
		{in: "switchboard-install-K7QM4XJDR", want: codeExample},
		{in: "switchboard-install-K7QM4XJDR.tar.gz", want: codeExample},
		{in: "/home/ana/Downloads/switchboard-install-K7QM4XJDR.sh", want: codeExample},
		{in: `C:\Users\ana\Downloads\switchboard-install-K7QM4XJDR.sh`, want: codeExample},
		{in: "./switchboard-install-K7QM4XJDR.sh", want: codeExample},
		{in: "switchboard-install-K7QM4XJDR (1).sh", want: codeExample}, // Chrome
		{in: "switchboard-install-K7QM4XJDR(2).sh", want: codeExample},  // Firefox
		{in: "switchboard-install-K7QM4XJDR 2.sh", want: codeExample},   // Safari
		{in: "switchboard-install-K7QM4XJDR-1.sh", want: codeExample},
		{in: "switchboard-install-K7QM-4XJD-R-3.sh", want: codeExample},
		{in: "switchboard-install-K7QM4XJDR.sh.1", want: codeExample},      // wget
		{in: "switchboard-install-K7QM4XJDR - Copy.sh", want: codeExample}, // Windows
		{in: "switchboard-install-K7QM4XJDR [1].sh", want: codeExample},
		{in: "Copy of switchboard-install-K7QM4XJDR.sh", want: codeExample},
		{in: "switchboard-install-K7QM4XJDR.sh\n", want: codeExample},
		{in: "/tmp/switchboard-install-0000-0000-0.sh", want: codeZeros},
		{in: "switchboard-install-1100-ZZ11-Z (1).sh", want: code1100},
		{in: "switchboard-install-K7QM4XJDT.sh", kind: ErrCheck, inMsg: "(code from the file name)"},
		{in: "switchboard-install-K7QM4XJDT-1.sh", kind: ErrLength, inMsg: "10 characters"}, // a typo does not hide behind the suffix rule
		{in: "switchboard-install-K7QM4XJ.sh", kind: ErrLength, inMsg: "7 characters"},
		{in: "switchboard-install-K7QMU4XJD.sh", kind: ErrCharacter, inMsg: "'U' at position 5"},
		{in: "switchboard-install-K7QМ4XJDR.sh", kind: ErrCharacter, inMsg: "'М' at position 4"}, // Cyrillic
		{in: "switchboard-install.sh", kind: ErrNotFound, inMsg: "install without one"},
		{in: "switchboard-install-.sh", kind: ErrNotFound},
		{in: "switchboard-install--(1).sh", kind: ErrNotFound},
		{in: "switchboard-installer-K7QM4XJDR.sh", kind: ErrNotFound},
		{in: "install-K7QM4XJDR.sh", kind: ErrNotFound},
		{in: "K7QM4XJDR.sh", kind: ErrNotFound},
		{in: "switchboard-install-K7QM4XJDR.sh/", kind: ErrNotFound}, // a directory, not a file
		{in: "/switchboard-install-K7QM4XJDR/evil.sh", kind: ErrNotFound},
		{in: "", kind: ErrNotFound},
		{in: "../../etc/passwd", kind: ErrNotFound, inMsg: `"passwd"`},
		{in: "switchboard-install-" + strings.Repeat("K", 100000) + ".sh", kind: ErrLength},
		{in: strings.Repeat("ä", 1000) + ".sh", kind: ErrNotFound, inMsg: "…"}, // long names are shortened in the message
	})
}
