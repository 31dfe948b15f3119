package odooclient

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kolo/xmlrpc"
)

// Kind classifies what went wrong while talking to Odoo, so that callers
// can tell a person what to fix without reading Odoo's own text.
type Kind int

// The kinds of Error. The XML-RPC fault code each one comes from is in
// brackets; JSON-2 errors map onto the same kinds.
const (
	// KindServer: Odoo failed while running the call [fault 1, HTTP 5xx].
	KindServer Kind = iota + 1
	// KindUser: Odoo refused the operation as a user error (validation,
	// missing record, ...) [fault 2, HTTP 422].
	KindUser
	// KindCredentials: the login, password or API key is wrong, or the
	// user is archived [fault 3, authenticate returned False, HTTP 401].
	KindCredentials
	// KindAccess: the user may not read or change a model [fault 4, HTTP 403].
	KindAccess
	// KindMissingModel: the model (or method) does not exist in this
	// database: the module providing it is not installed [fault 2 "Object
	// x doesn't exist", HTTP 404].
	KindMissingModel
	// KindUnknownDatabase: the configured database does not exist.
	KindUnknownDatabase
	// KindUnreachable: no answer from Odoo (network, timeout, proxy error).
	KindUnreachable
	// KindNoAPI: the server answers but serves neither XML-RPC nor JSON-2
	// at this URL (XML-RPC disabled and JSON-2 not there, or not Odoo).
	KindNoAPI
	// KindProtocol: the answer does not decode as Odoo's protocol.
	KindProtocol
)

// Sentinel errors, one per Kind, for errors.Is. An *Error unwraps to the
// sentinel of its kind.
var (
	ErrServer          = errors.New("odoo server error")
	ErrUser            = errors.New("odoo refused the operation")
	ErrCredentials     = errors.New("wrong login or API key")
	ErrAccess          = errors.New("no access to the model")
	ErrMissingModel    = errors.New("model or method missing in this database")
	ErrUnknownDatabase = errors.New("database does not exist")
	ErrUnreachable     = errors.New("odoo unreachable")
	ErrNoAPI           = errors.New("no Odoo external API at this URL")
	ErrProtocol        = errors.New("answer is not Odoo's protocol")
)

var kindSentinels = map[Kind]error{
	KindServer: ErrServer, KindUser: ErrUser, KindCredentials: ErrCredentials,
	KindAccess: ErrAccess, KindMissingModel: ErrMissingModel, KindUnknownDatabase: ErrUnknownDatabase,
	KindUnreachable: ErrUnreachable, KindNoAPI: ErrNoAPI, KindProtocol: ErrProtocol,
}

// String names the kind for logs and tests.
func (k Kind) String() string {
	if s, ok := kindSentinels[k]; ok {
		return s.Error()
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Error is any failure of a call to Odoo. Message is plain language for a
// person; Remote is Odoo's own text (sanitised, shortened) for support.
type Error struct {
	Kind Kind
	// Op is the call that failed: "common.authenticate",
	// "res.users.search_count" ...
	Op string
	// Model is the model named by an access or missing-model error.
	Model string
	// Code is the XML-RPC fault code (1-4), 0 when the error was not a fault.
	Code int
	// Status is the HTTP status of a JSON-2 or HTTP-level error, else 0.
	Status int
	// Message says what is wrong in plain words.
	Message string
	// Remote is what Odoo said (first meaningful line), may be empty.
	Remote string
	// Err is the underlying error (network, decoding), may be nil.
	Err error
}

func (e *Error) Error() string {
	if e.Op == "" {
		return e.Message
	}
	return "odoo " + e.Op + ": " + e.Message
}

// Unwrap returns the sentinel of the kind and the underlying error.
func (e *Error) Unwrap() []error {
	out := []error{}
	if s, ok := kindSentinels[e.Kind]; ok {
		out = append(out, s)
	}
	if e.Err != nil {
		out = append(out, e.Err)
	}
	return out
}

// AsError returns err as an *Error when it is one (anywhere in its chain).
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// KindOf returns the kind of err, 0 when err is not an *Error.
func KindOf(err error) Kind {
	if e, ok := AsError(err); ok {
		return e.Kind
	}
	return 0
}

// Fault codes of Odoo's /xmlrpc/2 endpoints (odoo/addons/base/controllers/rpc.py).
const (
	FaultApplication = 1 // any other exception; the fault string is the traceback
	FaultWarning     = 2 // UserError, ValidationError, MissingError, RedirectWarning
	FaultDenied      = 3 // AccessDenied: bad login, password or key
	FaultAccess      = 4 // AccessError: no right on the model
)

// maxMessage bounds the plain message and Remote text of an Error.
const maxMessage = 600

var faultTextRE = regexp.MustCompile(`Fault\((-?\d{1,18})\): `)

// ParseFaultText splits the text form of an XML-RPC fault,
// "Fault(3): Access Denied" (kolo's FaultError.Error(), which is all that
// reaches a caller of kolo's net/rpc Client), into code and fault string.
// A prefix before "Fault(" (an error wrapped with context) is skipped.
// ok is false when s holds no such text.
func ParseFaultText(s string) (code int, faultString string, ok bool) {
	m := faultTextRE.FindStringSubmatchIndex(s)
	if m == nil {
		return 0, "", false
	}
	n, err := strconv.Atoi(s[m[2]:m[3]])
	if err != nil {
		return 0, "", false
	}
	return n, s[m[1]:], true
}

// FaultFromError turns an XML-RPC fault as kolo reports it (xmlrpc.FaultError
// by value or pointer, or its text through net/rpc's ServerError) into an
// *Error. ok is false when err is not a fault.
func FaultFromError(op string, err error) (*Error, bool) {
	if err == nil {
		return nil, false
	}
	if e, ok := AsError(err); ok {
		return e, true
	}
	var fe xmlrpc.FaultError
	if errors.As(err, &fe) {
		return DecodeFault(op, fe.Code, fe.String), true
	}
	var pfe *xmlrpc.FaultError
	if errors.As(err, &pfe) && pfe != nil {
		return DecodeFault(op, pfe.Code, pfe.String), true
	}
	code, str, ok := ParseFaultText(err.Error())
	if !ok {
		return nil, false
	}
	return DecodeFault(op, code, str), true
}

var (
	objectMissingRE = regexp.MustCompile(`^Object (\S+) doesn't exist`)
	// AccessError: "You are not allowed to access 'Contact' (res.partner) records."
	accessModelRE = regexp.MustCompile(`You are not allowed to (\w+) '([^'\n]*)' \(([\w.]+)\) records`)
	accessGroupRE = regexp.MustCompile(`(?m)^\s*-\s*(.+?)\s*$`)
	dbMissingRE   = regexp.MustCompile(`database "([^"\n]*)" does not exist`)
	methodMissRE  = regexp.MustCompile(`(?i)method not (?:available|found):? (\S+)`)
	json2ModelRE  = regexp.MustCompile(`^the model '([^'\n]*)' does not exist`)
	json2MethodRE = regexp.MustCompile(`^The method '([^'\n]*)' does not exist`)
	// JSON-2 with an X-Odoo-Database the server does not have.
	dbMissingJSON2RE = regexp.MustCompile(`database "([^"\n]*)" not found`)
)

// DecodeFault classifies an XML-RPC fault of /xmlrpc/2 (integer code) into
// an *Error with a plain message. Codes outside 1-4 are treated as server
// errors.
func DecodeFault(op string, code int, faultString string) *Error {
	e := &Error{Op: op, Code: code}
	switch code {
	case FaultDenied:
		e.Kind = KindCredentials
		e.Remote = clean(faultString)
		e.Message = "wrong login or API key"
		if e.Remote != "" && !strings.EqualFold(e.Remote, "Access Denied") {
			// e.g. "Too many login failures, please wait a bit before trying again."
			e.Message += " (Odoo says: " + e.Remote + ")"
		}
	case FaultAccess:
		accessError(e, faultString)
	case FaultWarning:
		userError(e, faultString)
	default:
		serverError(e, faultString)
	}
	return e
}

// DecodeLegacyFault classifies a fault of the legacy /xmlrpc/<service>
// endpoints, whose faultCode is a string: "AccessDenied",
// "warning -- AccessError\n\n<message>", or an exception text.
func DecodeLegacyFault(op, code, faultString string) *Error {
	switch {
	case code == "AccessDenied":
		return DecodeFault(op, FaultDenied, faultString)
	case strings.HasPrefix(code, "warning -- "):
		head, msg, _ := strings.Cut(strings.TrimPrefix(code, "warning -- "), "\n\n")
		if strings.TrimSpace(head) == "AccessError" {
			return DecodeFault(op, FaultAccess, msg)
		}
		return DecodeFault(op, FaultWarning, msg)
	}
	e := DecodeFault(op, FaultApplication, faultString+"\n"+code)
	e.Code = 0
	return e
}

func accessError(e *Error, msg string) {
	e.Kind = KindAccess
	e.Remote = clean(firstParagraph(msg))
	m := accessModelRE.FindStringSubmatch(msg)
	if m == nil {
		e.Message = "no access: " + orDefault(e.Remote, "Odoo refused access to a model")
		return
	}
	e.Model = m[3]
	verb := map[string]string{"access": "read", "modify": "change", "create": "create", "delete": "delete"}[m[1]]
	if verb == "" {
		verb = "use"
	}
	e.Message = fmt.Sprintf("no access to model %s (%s): Odoo does not let this user %s its records",
		e.Model, clean(m[2]), verb)
	if _, rest, ok := strings.Cut(msg, "allowed for the following groups:"); ok {
		rest, _, _ = strings.Cut(rest, "\n\n")
		var groups []string
		for _, g := range accessGroupRE.FindAllStringSubmatch(rest, 8) {
			groups = append(groups, clean(g[1]))
		}
		if len(groups) > 0 {
			e.Message += "; give the user one of these groups: " + strings.Join(groups, ", ")
		}
	} else if strings.Contains(msg, "No group currently allows this operation") {
		e.Message += "; no group allows it"
	}
	e.Message = truncate(e.Message, maxMessage)
}

func userError(e *Error, msg string) {
	e.Remote = clean(firstParagraph(msg))
	if m := objectMissingRE.FindStringSubmatch(msg); m != nil {
		e.Kind = KindMissingModel
		e.Model = clean(m[1])
		e.Message = fmt.Sprintf("model %s does not exist in this database: the Odoo module that provides it is not installed", e.Model)
		return
	}
	e.Kind = KindUser
	e.Message = "Odoo refused the operation: " + orDefault(e.Remote, "no reason given")
	e.Message = truncate(e.Message, maxMessage)
}

func serverError(e *Error, msg string) {
	last := lastLine(msg)
	e.Remote = clean(last)
	if m := dbMissingRE.FindStringSubmatch(msg); m != nil {
		e.Kind = KindUnknownDatabase
		e.Message = fmt.Sprintf("database %q does not exist on this Odoo server: check the db setting", clean(m[1]))
		return
	}
	if m := methodMissRE.FindStringSubmatch(last); m != nil {
		e.Kind = KindMissingModel
		e.Message = fmt.Sprintf("method %s does not exist: the Odoo module that provides it is not installed, or this Odoo version lacks it", clean(m[1]))
		return
	}
	e.Kind = KindServer
	e.Message = "Odoo server error: " + orDefault(e.Remote, "no detail given")
	e.Message = truncate(e.Message, maxMessage)
}

// lastLine is the last non-empty line of a traceback: the exception.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" {
			return l
		}
	}
	return ""
}

func firstParagraph(s string) string {
	p, _, _ := strings.Cut(strings.TrimSpace(s), "\n\n")
	return p
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// clean makes remote text safe for one line of a message: valid UTF-8,
// control characters and runs of spaces collapsed, at most maxMessage bytes.
func clean(s string) string {
	if len(s) > 4*maxMessage {
		s = s[:4*maxMessage]
	}
	var b strings.Builder
	space := false
	for _, r := range strings.ToValidUTF8(s, "?") {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = b.Len() > 0
			continue
		}
		if space {
			b.WriteByte(' ')
			space = false
		}
		b.WriteRune(r)
	}
	return truncate(b.String(), maxMessage)
}

// truncate cuts s to at most n bytes at a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
