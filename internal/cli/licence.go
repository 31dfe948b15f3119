package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/switchboard-dev/switchboard/licensing"
	"github.com/switchboard-dev/switchboard/partnercode"
)

func newLicenceCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "licence",
		Aliases: []string{"license"},
		Short:   "Make vendor keys, issue, verify and show signed install licences",
		Long: `An install licence binds one install to a customer, a partner code and its
tier, products and seats, until a not-after date plus a grace period. The
vendor signs it with an Ed25519 key; agents verify it offline with the vendor's
public key(s), so keep the previous public key next to the new one when you
rotate keys.

A licence file is an armoured text block that survives e-mail:
  -----BEGIN SWITCHBOARD LICENCE-----
  Licence: …   Install: …   Partner: …   Not-After: …   Key: …
  <base64>
  -----END SWITCHBOARD LICENCE-----
The readable lines must match the signed content; any edit is refused.`,
		Example: `  switchboard licence keygen --dir /etc/switchboard/vendor
  switchboard licence issue --key vendor.key --install inst-42 \
      --partner-code K7QM-4XJD-R --tier partner --product asterisk-callcenter > inst-42.lic
  switchboard licence verify --pub vendor.pub --install inst-42 inst-42.lic
  switchboard licence show inst-42.lic --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newLicenceKeygenCommand(app),
		newLicenceIssueCommand(app),
		newLicenceVerifyCommand(app),
		newLicenceShowCommand(app),
	)
	return cmd
}

func newLicenceKeygenCommand(app *App) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "keygen --dir DIR",
		Short: "Create a vendor signing key pair (vendor.key and vendor.pub)",
		Long: `Create a new Ed25519 vendor key pair in DIR: vendor.key (mode 0600, the
signing key: keep it secret and backed up) and vendor.pub (mode 0644, give it
to every agent). The key id printed is what licences name as "Key:".

keygen never overwrites an existing vendor.key. To rotate keys, create the new
pair in another directory, ship the new vendor.pub to agents alongside the old
one, then start issuing with the new key.`,
		Example: `  switchboard licence keygen --dir ./vendor-2026
  switchboard licence keygen --dir ./vendor-2026 --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if dir == "" {
				return usageErrorf("--dir is required: give the directory to write vendor.key and vendor.pub into")
			}
			key, err := licensing.GenerateKey()
			if err != nil {
				return failed(err)
			}
			if err := licensing.WriteKeyPair(dir, key); err != nil {
				return failed(err)
			}
			out := struct {
				KeyID      string `json:"key_id"`
				PrivateKey string `json:"private_key"`
				PublicKey  string `json:"public_key"`
			}{key.ID, filepath.Join(dir, licensing.PrivateKeyFile), filepath.Join(dir, licensing.PublicKeyFile)}
			return app.render(out, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "key id:      %s\nprivate key: %s (mode 0600: keep it secret, back it up)\npublic key:  %s (give it to the agents)\n",
					out.KeyID, out.PrivateKey, out.PublicKey)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to write vendor.key and vendor.pub into (created if missing)")
	_ = cmd.MarkFlagDirname("dir")
	return cmd
}

// issueFlags are the raw flag values of `licence issue`.
type issueFlags struct {
	key, install, code, tier, customer, id string
	products                               []string
	seats                                  int
	notAfter, grace                        string
}

func newLicenceIssueCommand(app *App) *cobra.Command {
	var f issueFlags
	cmd := &cobra.Command{
		Use:   "issue --key FILE --install ID [flags]",
		Short: "Sign a licence for one install and print it",
		Long: `Sign a licence with the vendor key and print the armoured licence on stdout
(redirect it into a file, or paste it into an e-mail).

--tier says how the partner code was earned: partner (an integrator) or
referral; with no --partner-code the tier is none. --not-after takes a date
(YYYY-MM-DD, meaning the end of that day in UTC) or an RFC 3339 time; the
default is one year from now. --grace is how long the licence keeps working
after not-after, as a Go duration or in days ("30d"). --seats 0 means no seat
limit. Ids and product names are printable ASCII without spaces.`,
		Example: `  switchboard licence issue --key vendor.key --install inst-42 > inst-42.lic
  switchboard licence issue --key vendor.key --install inst-42 --customer cust-7 \
      --partner-code k7qm4xjdr --tier partner \
      --product asterisk-callcenter --product odoo-connector --seats 25 \
      --not-after 2027-01-31 --grace 30d`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			l, err := f.licence(time.Now())
			if err != nil {
				return err
			}
			key, err := licensing.LoadSigningKey(f.key)
			if err != nil {
				return failed(err)
			}
			file, err := licensing.Issue(l, key)
			if errors.Is(err, licensing.ErrInvalid) {
				return usageErrorf("%v", err)
			} else if err != nil {
				return failed(err)
			}
			s, err := licensing.Decode(file)
			if err != nil {
				return failed(fmt.Errorf("the licence just issued does not decode (a bug, please report it): %w", err))
			}
			app.Log.Debug("issued licence", "id", s.Licence.ID, "install", s.Licence.InstallID, "key", s.Licence.KeyID)
			out := struct {
				Licence  licenceJSON `json:"licence"`
				Armoured string      `json:"armoured"`
			}{toLicenceJSON(s.Licence), string(file)}
			return app.render(out, func(w io.Writer) error {
				_, err := w.Write(file)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "", "vendor private key file (vendor.key, mode 0600)")
	fl.StringVar(&f.install, "install", "", "install id the licence is for")
	fl.StringVar(&f.code, "partner-code", "", "partner code to embed (as typed; it is checked and normalised)")
	fl.StringVar(&f.tier, "tier", "", "partner, referral or none (default none without --partner-code)")
	fl.StringVar(&f.customer, "customer", "", "customer id (optional)")
	fl.StringVar(&f.id, "id", "", "licence id (default: random)")
	fl.StringArrayVar(&f.products, "product", nil, "product the licence enables (repeat for several)")
	fl.IntVar(&f.seats, "seats", 0, "seats paid for; 0 means no limit")
	fl.StringVar(&f.notAfter, "not-after", "", "end of the paid period: YYYY-MM-DD (end of that day, UTC) or RFC 3339 (default: one year from now)")
	fl.StringVar(&f.grace, "grace", "720h", `grace period after not-after: Go duration or days, e.g. "720h", "30d"`)
	_ = cmd.MarkFlagFilename("key", "key")
	_ = cmd.RegisterFlagCompletionFunc("tier", fixedCompletion("partner", "referral", "none"))
	return cmd
}

// licence turns the flags into a licence, or a usage error naming the flag.
func (f issueFlags) licence(now time.Time) (licensing.Licence, error) {
	l := licensing.Licence{
		ID:         f.id,
		InstallID:  f.install,
		CustomerID: f.customer,
		Products:   f.products,
		Seats:      f.seats,
		IssuedAt:   now,
	}
	if f.key == "" {
		return l, usageErrorf("--key is required: give the vendor private key file (vendor.key)")
	}
	if f.install == "" {
		return l, usageErrorf("--install is required: give the install id the licence is for")
	}
	switch {
	case f.tier == "" && f.code == "":
		l.Tier = licensing.TierNone
	case f.tier == "":
		return l, usageErrorf("--partner-code needs --tier partner or --tier referral")
	default:
		t, err := licensing.ParseTier(f.tier)
		if err != nil {
			return l, usageErrorf("--tier: %v", err)
		}
		l.Tier = t
	}
	if f.code != "" {
		if l.Tier == licensing.TierNone {
			return l, usageErrorf("--tier none cannot carry --partner-code %q: use --tier partner or referral, or drop the code", f.code)
		}
		code, err := partnercode.Parse(f.code)
		if err != nil {
			return l, usageErrorf("--partner-code: %v", err)
		}
		l.PartnerCode = code.String()
	} else if l.Tier != licensing.TierNone {
		return l, usageErrorf("--tier %s needs --partner-code", l.Tier)
	}
	if f.seats < 0 {
		return l, usageErrorf("--seats %d is negative: give the number of seats, or 0 for no limit", f.seats)
	}
	l.NotAfter = now.AddDate(1, 0, 0)
	if f.notAfter != "" {
		t, err := parseTime(f.notAfter, true)
		if err != nil {
			return l, usageErrorf("--not-after: %v", err)
		}
		if !t.After(now) {
			return l, usageErrorf("--not-after %s is in the past: give a future date", t.Format(time.RFC3339))
		}
		l.NotAfter = t
	}
	g, err := parseGrace(f.grace)
	if err != nil {
		return l, usageErrorf("--grace: %v", err)
	}
	l.Grace = g
	return l, nil
}

// parseTime reads YYYY-MM-DD or RFC 3339. A bare date means the start of that
// day in UTC, or its last second when endOfDay is set.
func parseTime(s string, endOfDay bool) (time.Time, error) {
	if d, err := time.Parse(time.DateOnly, s); err == nil {
		if endOfDay {
			d = d.Add(24*time.Hour - time.Second)
		}
		return d, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither a date (2027-01-31) nor an RFC 3339 time (2027-01-31T12:00:00Z)", s)
	}
	return t, nil
}

// parseGrace reads a Go duration or a whole number of days ("30d").
func parseGrace(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil {
			return 0, fmt.Errorf("%q is not a number of days: use e.g. 30d or 720h", s)
		}
		d = time.Duration(n) * 24 * time.Hour
		if n > int(licensing.MaxGrace/(24*time.Hour)) {
			d = licensing.MaxGrace + 1
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, fmt.Errorf("%q is not a duration: use e.g. 30d or 720h", s)
		}
	}
	if d < 0 || d > licensing.MaxGrace {
		return 0, fmt.Errorf("%s is out of range: use 0 up to %s", s, licensing.FormatGrace(licensing.MaxGrace))
	}
	if d%time.Second != 0 {
		return 0, fmt.Errorf("%s is not whole seconds", s)
	}
	return d, nil
}

func newLicenceVerifyCommand(app *App) *cobra.Command {
	var pubs []string
	var install, at string
	cmd := &cobra.Command{
		Use:   "verify --pub FILE [--pub FILE…] [--install ID] LICENCEFILE",
		Short: "Check a licence's signature, install and dates (exit 0 valid, 1 invalid)",
		Long: `Verify LICENCEFILE ("-" reads stdin) against the vendor public keys given with
--pub (each file may hold several keys, e.g. the current and the previous
one). With --install the licence must belong to that install.

Exit 0 when the licence is valid or in its grace period (the output says
which: renew a licence in grace soon), exit 1 when it is refused: malformed,
signed by a key not given, altered after signing, expired past its grace
period, or issued for another install. --at checks at another moment
(YYYY-MM-DD means the start of that day, UTC) instead of now.`,
		Example: `  switchboard licence verify --pub vendor.pub inst-42.lic
  switchboard licence verify --pub vendor-2026.pub --pub vendor-2025.pub --install inst-42 inst-42.lic
  switchboard licence verify --pub vendor.pub --at 2027-02-01 inst-42.lic --output json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(pubs) == 0 {
				return usageErrorf("--pub is required: give the vendor public key file(s) (vendor.pub)")
			}
			now := time.Now()
			if at != "" {
				t, err := parseTime(at, false)
				if err != nil {
					return usageErrorf("--at: %v", err)
				}
				now = t
			}
			kr := licensing.NewKeyring()
			for _, p := range pubs {
				keys, err := licensing.LoadPublicKeys(p)
				if err != nil {
					return failed(err)
				}
				for _, k := range keys {
					kr.Add(k)
				}
			}
			file, err := readLicenceFile(app, args[0])
			if err != nil {
				return failed(err)
			}
			l, status, verr := kr.Verify(file, install, now)
			out := verifyJSON{Valid: verr == nil, Status: string(status)}
			if l.ID != "" {
				lj := toLicenceJSON(l)
				out.Licence = &lj
			}
			if verr != nil {
				out.Reason = refusalReason(verr)
				out.Error = verr.Error()
			}
			if err := app.render(out, func(w io.Writer) error {
				if verr != nil {
					return nil // the reason goes to stderr as the error line
				}
				return writeVerified(w, l, status)
			}); err != nil {
				return err
			}
			if verr != nil {
				return failed(verr)
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&pubs, "pub", nil, "vendor public key file (repeat for several keys)")
	cmd.Flags().StringVar(&install, "install", "", "require the licence to be for this install id")
	cmd.Flags().StringVar(&at, "at", "", "verify at this date or RFC 3339 time instead of now")
	_ = cmd.MarkFlagFilename("pub", "pub")
	return cmd
}

type verifyJSON struct {
	Valid   bool         `json:"valid"`
	Status  string       `json:"status,omitempty"`
	Reason  string       `json:"reason,omitempty"`
	Error   string       `json:"error,omitempty"`
	Licence *licenceJSON `json:"licence,omitempty"`
}

// refusalReason names which of the five refusals err is, for scripts.
func refusalReason(err error) string {
	for _, r := range []struct {
		err  error
		name string
	}{
		{licensing.ErrMalformed, "malformed"},
		{licensing.ErrUnknownKey, "unknown_key"},
		{licensing.ErrBadSignature, "bad_signature"},
		{licensing.ErrExpired, "expired"},
		{licensing.ErrWrongInstall, "wrong_install"},
	} {
		if errors.Is(err, r.err) {
			return r.name
		}
	}
	return "error"
}

func writeVerified(w io.Writer, l licensing.Licence, status licensing.Status) error {
	partner := "no partner"
	if l.Tier != licensing.TierNone {
		partner = fmt.Sprintf("partner code %s (%s)", l.PartnerCode, l.Tier)
	}
	var err error
	switch status {
	case licensing.StatusGrace:
		_, err = fmt.Fprintf(w, "grace: licence %s for install %s ended on %s; it keeps working until %s: renew it now\n",
			l.ID, l.InstallID, l.NotAfter.Format(time.RFC3339), l.GraceEnds().Format(time.RFC3339))
	default:
		_, err = fmt.Fprintf(w, "valid: licence %s for install %s until %s (grace %s)\n",
			l.ID, l.InstallID, l.NotAfter.Format(time.RFC3339), licensing.FormatGrace(l.Grace))
	}
	if err == nil {
		_, err = fmt.Fprintf(w, "%s, signed by key %s\n", partner, l.KeyID)
	}
	return err
}

func newLicenceShowCommand(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "show LICENCEFILE",
		Short: "Print what a licence says, without checking its signature",
		Long: `Print the fields of LICENCEFILE ("-" reads stdin). The signature is NOT
checked, so the output is only what the file claims: use 'switchboard licence
verify' before trusting it. A file whose structure is damaged is refused.`,
		Example: `  switchboard licence show inst-42.lic
  switchboard licence show - --output json < mail.txt`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			file, err := readLicenceFile(app, args[0])
			if err != nil {
				return failed(err)
			}
			s, err := licensing.Decode(file)
			if err != nil {
				return failed(err)
			}
			out := struct {
				licenceJSON
				SignatureChecked bool `json:"signature_checked"`
			}{toLicenceJSON(s.Licence), false}
			return app.render(out, func(w io.Writer) error { return writeLicence(w, s.Licence) })
		},
	}
	return cmd
}

func writeLicence(w io.Writer, l licensing.Licence) error {
	orNone := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	seats := "no limit"
	if l.Seats > 0 {
		seats = strconv.Itoa(l.Seats)
	}
	products := "-"
	if len(l.Products) > 0 {
		products = strings.Join(l.Products, ", ")
	}
	_, err := fmt.Fprintf(w, `licence:      %s
install:      %s
customer:     %s
partner code: %s
tier:         %s
products:     %s
seats:        %s
issued at:    %s
not after:    %s
grace:        %s (until %s)
key id:       %s
signature not checked: run 'switchboard licence verify --pub vendor.pub FILE' before trusting it
`, l.ID, l.InstallID, orNone(l.CustomerID), orNone(l.PartnerCode), l.Tier, products, seats,
		l.IssuedAt.Format(time.RFC3339), l.NotAfter.Format(time.RFC3339),
		licensing.FormatGrace(l.Grace), l.GraceEnds().Format(time.RFC3339), l.KeyID)
	return err
}

// licenceJSON is the --output json form of a licence.
type licenceJSON struct {
	ID           string   `json:"id"`
	InstallID    string   `json:"install_id"`
	CustomerID   string   `json:"customer_id"`
	PartnerCode  string   `json:"partner_code"`
	Tier         string   `json:"tier"`
	Products     []string `json:"products"`
	Seats        int      `json:"seats"`
	IssuedAt     string   `json:"issued_at"`
	NotAfter     string   `json:"not_after"`
	GraceSeconds int64    `json:"grace_seconds"`
	GraceEnds    string   `json:"grace_ends"`
	KeyID        string   `json:"key_id"`
}

func toLicenceJSON(l licensing.Licence) licenceJSON {
	products := l.Products
	if products == nil {
		products = []string{}
	}
	return licenceJSON{
		ID: l.ID, InstallID: l.InstallID, CustomerID: l.CustomerID,
		PartnerCode: l.PartnerCode, Tier: string(l.Tier), Products: products, Seats: l.Seats,
		IssuedAt:     l.IssuedAt.Format(time.RFC3339),
		NotAfter:     l.NotAfter.Format(time.RFC3339),
		GraceSeconds: int64(l.Grace / time.Second),
		GraceEnds:    l.GraceEnds().Format(time.RFC3339),
		KeyID:        l.KeyID,
	}
}

// readLicenceFile reads a licence file, or stdin for "-", refusing input far
// larger than any licence.
func readLicenceFile(app *App, path string) ([]byte, error) {
	var r io.Reader
	name := path
	if path == "-" {
		r, name = app.Stdin, "stdin"
	} else {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("open licence file: %w", err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, licensing.MaxArmouredSize+1))
	if err != nil {
		return nil, fmt.Errorf("read licence from %s: %w", name, err)
	}
	if len(data) > licensing.MaxArmouredSize {
		return nil, fmt.Errorf("%s is larger than %d bytes, far more than a licence: check the file name", name, licensing.MaxArmouredSize)
	}
	return data, nil
}
