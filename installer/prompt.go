package installer

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/switchboard-dev/switchboard/partnercode"
)

// PromptTries is how many codes the prompt accepts before giving up.
const PromptTries = 3

// ErrPromptInterrupted is returned when the person pressed Ctrl-C or
// Ctrl-D at the prompt.
var ErrPromptInterrupted = errors.New("interrupted at the partner code prompt: nothing was changed")

// IsTerminal reports whether f is a terminal (the prompt is only shown on one).
func IsTerminal(f *os.File) bool { return isTerminal(f) }

const promptText = "Partner code (press Enter for none): "

// PromptCode asks for a partner code on a terminal. It checks the input
// as it is typed (a character that can never be in a code is flagged at
// once, a complete code shows its canonical form), explains a wrong code
// with partnercode's message, allows tries attempts, and takes an empty
// answer as "no partner".
func PromptCode(in *os.File, out io.Writer, tries int) (CodeChoice, error) {
	if tries <= 0 {
		tries = PromptTries
	}
	restore, err := rawMode(in)
	if err != nil {
		return promptLines(bufio.NewReader(in), out, tries)
	}
	defer restore()
	fmt.Fprint(out, "A partner code links this install to the partner who brought it (e.g. K7QM-4XJD-R).\n")
	for try := 1; try <= tries; try++ {
		line, err := readLineRaw(in, out)
		if err != nil {
			return CodeChoice{}, err
		}
		choice, done, msg := judge(line)
		if done {
			if choice.Source == SourcePrompt {
				fmt.Fprintf(out, "Using partner code %s.\n", choice.Code)
			} else {
				fmt.Fprint(out, "No partner code: the install will not be linked (add one later with `switchboard partner set CODE`).\n")
			}
			return choice, nil
		}
		fmt.Fprintf(out, "%s\n", msg)
		if try < tries {
			fmt.Fprintf(out, "Try again (%d of %d), or press Enter for no partner.\n", try+1, tries)
		}
	}
	return CodeChoice{}, tooManyTries(tries)
}

func tooManyTries(n int) error {
	return fmt.Errorf("no valid partner code after %d tries: nothing was changed; check the code with your partner, pass it with --partner-code, or press Enter at the prompt to install without one", n)
}

// judge decides what a finished line means: done with a choice, or the
// message explaining why it is not a code.
func judge(line string) (CodeChoice, bool, string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return CodeChoice{Source: SourceNone}, true, ""
	}
	c, err := partnercode.Parse(line)
	if err != nil {
		return CodeChoice{}, false, err.Error()
	}
	return CodeChoice{Code: c, Source: SourcePrompt, From: line}, true, ""
}

// hint is what the prompt shows next to the input while it is typed.
func hint(input string) string {
	if strings.TrimSpace(input) == "" {
		return ""
	}
	c, err := partnercode.Parse(input)
	if err == nil {
		return "-> " + c.String() + " (Enter to use it)"
	}
	var pe *partnercode.Error
	if errors.As(err, &pe) && pe.Kind == partnercode.ErrLength {
		n := 0
		for _, r := range input {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				n++
			}
		}
		if n < 9 {
			return fmt.Sprintf("(%d of 9 characters)", n)
		}
	}
	return err.Error()
}

// readLineRaw reads one line in raw mode, echoing it with a live hint.
func readLineRaw(in *os.File, out io.Writer) (string, error) {
	var buf []byte
	redraw := func() {
		h := hint(string(buf))
		if h != "" {
			h = "   " + h
		}
		// \r and erase-line redraw the whole line each time: simple, and
		// right after a backspace over a multi-byte character.
		fmt.Fprintf(out, "\r\x1b[K%s%s\x1b[2m%s\x1b[0m", promptText, buf, h)
		// Put the cursor back right after the input.
		if n := utf8.RuneCountInString(h); n > 0 {
			fmt.Fprintf(out, "\x1b[%dD", n)
		}
	}
	redraw()
	b := make([]byte, 1)
	for {
		n, err := in.Read(b)
		if n == 0 {
			if err == nil {
				continue
			}
			if errors.Is(err, io.EOF) {
				return "", ErrPromptInterrupted
			}
			return "", fmt.Errorf("read the partner code: %w", err)
		}
		switch c := b[0]; {
		case c == '\r' || c == '\n':
			// Show the line without the hint, then move on. Output
			// post-processing is left on, so "\n" ends the line as the
			// terminal is set up to.
			fmt.Fprintf(out, "\r\x1b[K%s%s\n", promptText, buf)
			return string(buf), nil
		case c == 0x03 || (c == 0x04 && len(buf) == 0): // Ctrl-C, Ctrl-D
			fmt.Fprint(out, "\n")
			return "", ErrPromptInterrupted
		case c == 0x7f || c == 0x08: // backspace
			if len(buf) > 0 {
				_, size := utf8.DecodeLastRune(buf)
				buf = buf[:len(buf)-size]
			}
		case c == 0x15: // Ctrl-U
			buf = buf[:0]
		case c == 0x1b: // escape sequence (arrow keys): ignored
			continue
		case c < 0x20:
			continue
		default:
			if len(buf) < 256 {
				buf = append(buf, c)
			}
			// Redraw only once a multi-byte character is complete.
			if !utf8.FullRune(buf[lastRuneStart(buf):]) {
				continue
			}
		}
		redraw()
	}
}

func lastRuneStart(b []byte) int {
	for i := len(b) - 1; i >= 0 && i >= len(b)-utf8.UTFMax; i-- {
		if utf8.RuneStart(b[i]) {
			return i
		}
	}
	return len(b)
}

// promptLines is the prompt for terminals whose mode cannot be changed:
// the code is checked when Enter is pressed.
func promptLines(r *bufio.Reader, out io.Writer, tries int) (CodeChoice, error) {
	for try := 1; try <= tries; try++ {
		fmt.Fprint(out, promptText)
		line, err := r.ReadString('\n')
		if err != nil && line == "" {
			return CodeChoice{}, ErrPromptInterrupted
		}
		choice, done, msg := judge(line)
		if done {
			if choice.Source == SourcePrompt {
				fmt.Fprintf(out, "Using partner code %s.\n", choice.Code)
			}
			return choice, nil
		}
		fmt.Fprintln(out, msg)
	}
	return CodeChoice{}, tooManyTries(tries)
}
