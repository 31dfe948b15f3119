package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/partnercode"
)

// maxCodesPerRun bounds `code new --count`: enough for a batch import, small
// enough that a typo does not flood a terminal.
const maxCodesPerRun = 10000

func newCodeCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "code",
		Short: "Generate partner codes and check codes people typed",
		Long: `A partner code ties an install to the partner or referral who brought it.
It is 9 characters in groups, like K7QM-4XJD-R: 8 random characters and a
check character. Codes use digits and letters except I, L, O and U, so none
looks like another; when reading one in, case does not matter, spaces, dashes,
underscores and dots are ignored, O counts as 0 and I or L as 1.

The check character catches every single mistyped character and every swap
of two characters. Several mistakes at once can still give a valid code (about
1 in 32 of them do), so read a code back to the person when it matters.`,
		Example: `  switchboard code new --count 3
  switchboard code check k7qm 4xjd r
  switchboard code check --link 'https://switchboard.example/download?ref=K7QM-4XJD-R'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newCodeNewCommand(app), newCodeCheckCommand(app))
	return cmd
}

func newCodeNewCommand(app *App) *cobra.Command {
	var count int
	cmd := &cobra.Command{
		Use:   "new",
		Short: "Print fresh random partner codes, one a line",
		Long: `Print fresh partner codes, one a line (a JSON array of strings with
--output json). Each carries 40 bits from the operating system's secure random
source; the codes printed by one run are all different. This command does not
register the codes anywhere: the registry issues the codes partners get.`,
		Example: `  switchboard code new
  switchboard code new --count 100 > codes.txt
  switchboard code new --count 5 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if count < 1 || count > maxCodesPerRun {
				return usageErrorf("--count must be between 1 and %d, not %d", maxCodesPerRun, count)
			}
			codes := make([]string, 0, count)
			seen := make(map[partnercode.Code]bool, count)
			for len(codes) < count {
				c, err := partnercode.New()
				if err != nil {
					return failed(err)
				}
				if seen[c] { // 40 bits make this rare, but a batch must not repeat
					continue
				}
				seen[c] = true
				codes = append(codes, c.String())
			}
			return app.render(codes, func(w io.Writer) error {
				_, err := io.WriteString(w, strings.Join(codes, "\n")+"\n")
				return err
			})
		},
	}
	cmd.Flags().IntVarP(&count, "count", "n", 1, fmt.Sprintf("how many codes to print (1 to %d)", maxCodesPerRun))
	return cmd
}

// codeCheckResult is the JSON answer of `code check`. All three documented
// keys are always present; kind and position help scripts explain the error.
type codeCheckResult struct {
	Valid    bool   `json:"valid"`
	Code     string `json:"code"`
	Error    string `json:"error"`
	Kind     string `json:"kind,omitempty"`
	Position int    `json:"position,omitempty"`
}

func newCodeCheckCommand(app *App) *cobra.Command {
	var link, file string
	cmd := &cobra.Command{
		Use:   "check INPUT | --link URL | --file NAME",
		Short: "Check a partner code and print it in canonical form",
		Long: `Check a partner code as a person typed it and print it in canonical form
(K7QM-4XJD-R). Exit 0 when it is valid; otherwise explain what is wrong and
exit 1: wrong length, a bad character at a given position, or a check
character that does not match (one character mistyped or two swapped).

Give exactly one of:
  INPUT        the code as typed; it may be given in several words
  --link URL   a download or referral link: the code is read from ?ref=, ?via=,
               ?fpr=, ?code= or a /r/CODE path
  --file NAME  an installer file name like switchboard-install-K7QM4XJDR.sh

With --output json the answer is one object on stdout,
{"valid": true|false, "code": "...", "error": "..."}, and the exit code is
still 1 for an invalid code.`,
		Example: `  switchboard code check K7QM-4XJD-R
  switchboard code check 'k7qm 4xjd r'
  switchboard code check --link 'https://switchboard.example/download?ref=K7QM4XJDR'
  switchboard code check --file ~/Downloads/'switchboard-install-K7QM4XJDR (1).sh'
  switchboard code check K7QM-4XJD-R --output json`,
		Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			given := 0
			if len(args) > 0 {
				given++
			}
			if cmd.Flags().Changed("link") {
				given++
			}
			if cmd.Flags().Changed("file") {
				given++
			}
			if given != 1 {
				return usageErrorf("give exactly one of INPUT, --link URL or --file NAME")
			}

			var code partnercode.Code
			var err error
			switch {
			case cmd.Flags().Changed("link"):
				code, err = partnercode.FromLink(link)
			case cmd.Flags().Changed("file"):
				code, err = partnercode.FromFilename(file)
			default:
				// Several words are one code typed with spaces: k7qm 4xjd r.
				input := strings.Join(args, " ")
				code, err = partnercode.Parse(input)
				err = withInputHint(err, input)
			}

			res := codeCheckResult{Valid: err == nil, Code: code.String()}
			if err != nil {
				res.Error = err.Error()
				var pe *partnercode.Error
				if errors.As(err, &pe) {
					res.Kind = pe.Kind.String()
					res.Position = pe.Position
				}
			}
			if app.JSON() {
				if werr := writeJSON(app.Stdout, res); werr != nil {
					return failed(werr)
				}
				if err != nil {
					return reported(err)
				}
				return nil
			}
			if err != nil {
				return failed(err)
			}
			_, werr := fmt.Fprintln(app.Stdout, code)
			return werr
		},
	}
	f := cmd.Flags()
	f.StringVar(&link, "link", "", "read the code from this download or referral link")
	f.StringVar(&file, "file", "", "read the code from this installer file name")
	return cmd
}

// withInputHint adds what to do when someone passed a link or a file name as
// INPUT: "bad character ':'" or "wrong length: 29 characters" alone would not
// say why.
func withInputHint(err error, input string) error {
	if err == nil {
		return nil
	}
	lower := strings.ToLower(input)
	switch {
	case strings.Contains(lower, "://") || strings.Contains(lower, "?"):
		return fmt.Errorf("%w (to read the code from a link, use --link)", err)
	case strings.Contains(lower, "switchboard") || strings.HasSuffix(lower, ".sh"):
		return fmt.Errorf("%w (to read the code from an installer file name, use --file)", err)
	}
	return err
}
