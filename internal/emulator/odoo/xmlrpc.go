package odoo

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// maxDepth bounds nesting of arrays and structs in a request; Python's
// expat has no such limit, but an emulator must not be crashable.
const maxDepth = 64

// DecodeRequest parses an XML-RPC <methodCall> the way Python's
// xmlrpc.client.loads does (the parser Odoo uses). Values decode to int,
// bool, string, float64, []byte (base64), nil (<nil/>), []any and
// map[string]any; dateTime.iso8601 stays a string, as Odoo handles it.
func DecodeRequest(r io.Reader) (method string, params []any, err error) {
	d := &decoder{x: xml.NewDecoder(r)}
	d.x.Strict = true
	start, err := d.nextStart()
	if err != nil {
		return "", nil, err
	}
	if start.Name.Local != "methodCall" {
		return "", nil, fmt.Errorf("expected <methodCall>, got <%s>", start.Name.Local)
	}
	seenName := false
	for {
		tok, err := d.next()
		if err != nil {
			return "", nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "methodName":
				if method, err = d.text(); err != nil {
					return "", nil, err
				}
				seenName = true
			case "params":
				if params, err = d.params(); err != nil {
					return "", nil, err
				}
			default:
				return "", nil, fmt.Errorf("unexpected <%s> in <methodCall>", t.Name.Local)
			}
		case xml.EndElement:
			if !seenName {
				return "", nil, errors.New("<methodCall> has no <methodName>")
			}
			if params == nil {
				params = []any{}
			}
			return method, params, nil
		}
	}
}

type decoder struct {
	x *xml.Decoder
}

// next returns the next element or end token, skipping whitespace,
// comments and processing instructions; non-space text is an error here.
func (d *decoder) next() (xml.Token, error) {
	for {
		tok, err := d.x.Token()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement, xml.EndElement:
			return t, nil
		case xml.CharData:
			if len(bytes.TrimSpace(t)) > 0 {
				return nil, fmt.Errorf("unexpected text %q", truncate(string(t)))
			}
		}
	}
}

func (d *decoder) nextStart() (xml.StartElement, error) {
	tok, err := d.next()
	if err != nil {
		return xml.StartElement{}, err
	}
	st, ok := tok.(xml.StartElement)
	if !ok {
		return xml.StartElement{}, errors.New("expected an element")
	}
	return st, nil
}

// text reads character data up to the end of the current element.
func (d *decoder) text() (string, error) {
	var sb strings.Builder
	for {
		tok, err := d.x.Token()
		if err != nil {
			if err == io.EOF {
				return "", io.ErrUnexpectedEOF
			}
			return "", err
		}
		switch t := tok.(type) {
		case xml.CharData:
			sb.Write(t)
		case xml.EndElement:
			return sb.String(), nil
		case xml.StartElement:
			return "", fmt.Errorf("unexpected <%s> inside text", t.Name.Local)
		}
	}
}

func (d *decoder) params() ([]any, error) {
	out := []any{}
	for {
		tok, err := d.next()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return out, nil
		case xml.StartElement:
			if t.Name.Local != "param" {
				return nil, fmt.Errorf("unexpected <%s> in <params>", t.Name.Local)
			}
			st, err := d.nextStart()
			if err != nil {
				return nil, err
			}
			if st.Name.Local != "value" {
				return nil, fmt.Errorf("expected <value> in <param>, got <%s>", st.Name.Local)
			}
			v, err := d.value(0)
			if err != nil {
				return nil, err
			}
			if err := d.end("param"); err != nil {
				return nil, err
			}
			out = append(out, v)
		}
	}
}

// end consumes the end tag of the named element.
func (d *decoder) end(name string) error {
	tok, err := d.next()
	if err != nil {
		return err
	}
	if e, ok := tok.(xml.EndElement); !ok || e.Name.Local != name {
		return fmt.Errorf("expected </%s>", name)
	}
	return nil
}

// value decodes the inside of a <value> element (its start tag already
// read) and consumes </value>.
func (d *decoder) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("values nested deeper than %d levels", maxDepth)
	}
	var text strings.Builder
	for {
		tok, err := d.x.Token()
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		switch t := tok.(type) {
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			// A bare <value>text</value> is a string.
			return text.String(), nil
		case xml.StartElement:
			v, err := d.typed(t.Name.Local, depth)
			if err != nil {
				return nil, err
			}
			if err := d.end("value"); err != nil {
				return nil, err
			}
			return v, nil
		}
	}
}

func (d *decoder) typed(kind string, depth int) (any, error) {
	switch kind {
	case "nil":
		if err := d.end("nil"); err != nil {
			return nil, err
		}
		return nil, nil
	case "int", "i4", "i8", "i1", "i2":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("invalid literal for int(): %q", truncate(s))
		}
		return int(n), nil
	case "boolean":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		switch s {
		case "0":
			return false, nil
		case "1":
			return true, nil
		}
		return nil, fmt.Errorf("bad boolean value %q", truncate(s))
	case "string":
		return d.text()
	case "double", "float":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return nil, fmt.Errorf("could not convert string to float: %q", truncate(s))
		}
		return f, nil
	case "dateTime.iso8601":
		return d.text()
	case "base64":
		s, err := d.text()
		if err != nil {
			return nil, err
		}
		b, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
		if err != nil {
			return nil, fmt.Errorf("bad base64 value: %w", err)
		}
		return b, nil
	case "array":
		st, err := d.nextStart()
		if err != nil {
			return nil, err
		}
		if st.Name.Local != "data" {
			return nil, fmt.Errorf("expected <data> in <array>, got <%s>", st.Name.Local)
		}
		out := []any{}
		for {
			tok, err := d.next()
			if err != nil {
				return nil, err
			}
			if _, ok := tok.(xml.EndElement); ok {
				break
			}
			if st := tok.(xml.StartElement); st.Name.Local != "value" {
				return nil, fmt.Errorf("expected <value> in <data>, got <%s>", st.Name.Local)
			}
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		if err := d.end("array"); err != nil {
			return nil, err
		}
		return out, nil
	case "struct":
		out := map[string]any{}
		for {
			tok, err := d.next()
			if err != nil {
				return nil, err
			}
			if _, ok := tok.(xml.EndElement); ok {
				return out, nil
			}
			if st := tok.(xml.StartElement); st.Name.Local != "member" {
				return nil, fmt.Errorf("expected <member> in <struct>, got <%s>", st.Name.Local)
			}
			var name string
			var val any
			hasName, hasValue := false, false
			for {
				tok, err := d.next()
				if err != nil {
					return nil, err
				}
				if _, ok := tok.(xml.EndElement); ok {
					break
				}
				switch st := tok.(xml.StartElement); st.Name.Local {
				case "name":
					if name, err = d.text(); err != nil {
						return nil, err
					}
					hasName = true
				case "value":
					if val, err = d.value(depth + 1); err != nil {
						return nil, err
					}
					hasValue = true
				default:
					return nil, fmt.Errorf("unexpected <%s> in <member>", st.Name.Local)
				}
			}
			if !hasName || !hasValue {
				return nil, errors.New("<member> needs a <name> and a <value>")
			}
			out[name] = val
		}
	}
	return nil, fmt.Errorf("unknown tag %q", kind)
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// errNone is what Python's marshaller says about None with allow_none=False,
// as Odoo's OdooMarshaller is configured.
var errNone = errors.New("cannot marshal None unless allow_none is enabled")

// EncodeResponse writes a <methodResponse> with one value in the layout of
// Python's xmlrpc.client.dumps(methodresponse=True).
func EncodeResponse(v any) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n")
	if err := encodeValue(&b, v, 0); err != nil {
		return nil, err
	}
	b.WriteString("</param>\n</params>\n</methodResponse>\n")
	return b.Bytes(), nil
}

// EncodeFault writes a <methodResponse><fault>; code is an int (xmlrpc/2)
// or a string (legacy /xmlrpc).
func EncodeFault(code any, msg string) []byte {
	var b bytes.Buffer
	b.WriteString("<?xml version='1.0'?>\n<methodResponse>\n<fault>\n")
	_ = encodeValue(&b, map[string]any{"faultCode": code, "faultString": msg}, 0)
	b.WriteString("</fault>\n</methodResponse>\n")
	return b.Bytes()
}

func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func encodeValue(b *bytes.Buffer, v any, depth int) error {
	if depth > maxDepth {
		return errors.New("value nested too deeply to marshal")
	}
	switch x := v.(type) {
	case nil:
		return errNone
	case bool:
		n := 0
		if x {
			n = 1
		}
		fmt.Fprintf(b, "<value><boolean>%d</boolean></value>\n", n)
	case int:
		if x > math.MaxInt32 || x < math.MinInt32 {
			return errors.New("int exceeds XML-RPC limits")
		}
		fmt.Fprintf(b, "<value><int>%d</int></value>\n", x)
	case float64:
		fmt.Fprintf(b, "<value><double>%s</double></value>\n", pyFloat(x))
	case string:
		fmt.Fprintf(b, "<value><string>%s</string></value>\n", escape(x))
	case []byte:
		fmt.Fprintf(b, "<value><base64>\n%s\n</base64></value>\n", base64.StdEncoding.EncodeToString(x))
	case []any:
		b.WriteString("<value><array><data>\n")
		for _, e := range x {
			if err := encodeValue(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteString("</data></array></value>\n")
	case []int:
		arr := make([]any, len(x))
		for i, e := range x {
			arr[i] = e
		}
		return encodeValue(b, arr, depth)
	case []string:
		arr := make([]any, len(x))
		for i, e := range x {
			arr[i] = e
		}
		return encodeValue(b, arr, depth)
	case []map[string]any:
		arr := make([]any, len(x))
		for i, e := range x {
			arr[i] = e
		}
		return encodeValue(b, arr, depth)
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("<value><struct>\n")
		for _, k := range keys {
			fmt.Fprintf(b, "<member>\n<name>%s</name>\n", escape(k))
			if err := encodeValue(b, x[k], depth+1); err != nil {
				return err
			}
			b.WriteString("</member>\n")
		}
		b.WriteString("</struct></value>\n")
	default:
		return fmt.Errorf("cannot marshal %T objects", v)
	}
	return nil
}

// pyFloat formats like Python's repr(float).
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEn") {
		s += ".0"
	}
	return s
}
