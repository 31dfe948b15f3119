package installer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/switchboard-dev/switchboard/partnercode"
)

// CodeSource says where the partner code came from.
type CodeSource string

// The sources of a partner code, in the order they are tried.
const (
	SourceFlag     CodeSource = "flag"     // --partner-code
	SourceLink     CodeSource = "link"     // --from-link
	SourceEnv      CodeSource = "env"      // SWITCHBOARD_PARTNER_CODE
	SourceFilename CodeSource = "filename" // the installer's own file name
	SourcePrompt   CodeSource = "prompt"   // typed at the interactive prompt
	SourceNone     CodeSource = "none"     // no code: the install is not linked
	SourceExisting CodeSource = "licence"  // already in this install's licence
)

// EnvPartnerCode is the environment variable read for a partner code.
const EnvPartnerCode = "SWITCHBOARD_PARTNER_CODE"

// EnvInstallerName is set by a shell wrapper (switchboard-install-CODE.sh)
// to its own file name, since the binary it runs has another name.
const EnvInstallerName = "SWITCHBOARD_INSTALLER_NAME"

// CodeInputs are the places a partner code may come from, except the prompt.
type CodeInputs struct {
	Flag string
	Link string
	Env  string
	// Filenames are the installer's own names: the wrapper's name from
	// EnvInstallerName, then os.Args[0].
	Filenames []string
}

// CodeChoice is the code to use and where it came from.
type CodeChoice struct {
	Code   partnercode.Code `json:"code,omitempty"`
	Source CodeSource       `json:"source"`
	// From is the exact input the code was taken from (flag value, link,
	// file name), for the report.
	From string `json:"from,omitempty"`
}

// Describe says in words where the code came from.
func (c CodeChoice) Describe() string {
	switch c.Source {
	case SourceFlag:
		return "from --partner-code"
	case SourceLink:
		return "from the link " + c.From
	case SourceEnv:
		return "from " + EnvPartnerCode
	case SourceFilename:
		return "from the installer's file name " + c.From
	case SourcePrompt:
		return "typed at the prompt"
	case SourceExisting:
		return "from this install's licence"
	}
	return "no partner code"
}

// ResolveCode takes the first source that holds something: the flag, the
// link, the environment, then the installer's file names. A source that is
// present but wrong (a mistyped code, a link without a code) is an error
// naming the source: silently falling through to the next would link the
// install to someone else. ok is false when no source holds anything, and
// the caller may prompt.
func ResolveCode(in CodeInputs) (choice CodeChoice, ok bool, err error) {
	if s := strings.TrimSpace(in.Flag); s != "" {
		c, err := partnercode.Parse(s)
		if err != nil {
			return choice, false, fmt.Errorf("--partner-code: %w", err)
		}
		return CodeChoice{Code: c, Source: SourceFlag, From: s}, true, nil
	}
	if s := strings.TrimSpace(in.Link); s != "" {
		c, err := partnercode.FromLink(s)
		if err != nil {
			return choice, false, fmt.Errorf("--from-link: %w", err)
		}
		return CodeChoice{Code: c, Source: SourceLink, From: s}, true, nil
	}
	if s := strings.TrimSpace(in.Env); s != "" {
		c, err := partnercode.Parse(s)
		if err != nil {
			return choice, false, fmt.Errorf("%s: %w", EnvPartnerCode, err)
		}
		return CodeChoice{Code: c, Source: SourceEnv, From: s}, true, nil
	}
	for _, name := range in.Filenames {
		if strings.TrimSpace(name) == "" {
			continue
		}
		c, err := partnercode.FromFilename(name)
		var pe *partnercode.Error
		if errors.As(err, &pe) && pe.Kind == partnercode.ErrNotFound {
			continue // a plain name such as "switchboard" holds no code
		}
		if err != nil {
			return choice, false, fmt.Errorf("installer file name: %w", err)
		}
		return CodeChoice{Code: c, Source: SourceFilename, From: name}, true, nil
	}
	return CodeChoice{Source: SourceNone}, false, nil
}
