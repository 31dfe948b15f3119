package odooclient

import (
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Values arrive from both APIs as the same small set of Go types: string,
// bool, int64, float64, []any, map[string]any (and time.Time or []byte for
// XML-RPC dateTime and base64). Odoo sends the boolean False for every
// empty field (a char with no value, a many2one with no record, a date not
// set), never a null, so every accessor below treats False (and nil) as
// "not set" instead of failing on the type.

// Record is one record as read, search_read or a JSON-2 call returns it.
type Record map[string]any

// ID is the record's id, 0 when missing.
func (r Record) ID() int64 { n, _ := AsInt(r["id"]); return n }

// String returns a char/text/selection/date field, "" when empty (False).
func (r Record) String(field string) string { s, _ := AsString(r[field]); return s }

// Int returns an integer field, 0 when empty or not a whole number.
func (r Record) Int(field string) int64 { n, _ := AsInt(r[field]); return n }

// Bool returns a boolean field; only a true boolean (or non-zero number)
// is true.
func (r Record) Bool(field string) bool { return AsBool(r[field]) }

// Many2One returns a many2one field ([id, display_name] on the wire), ok
// false when it is empty (False).
func (r Record) Many2One(field string) (Ref, bool) { return AsRef(r[field]) }

// IDs returns a many2many/one2many field as a list of ids.
func (r Record) IDs(field string) []int64 { return AsIDs(r[field]) }

// Ref is the value of a many2one field.
type Ref struct {
	ID   int64
	Name string
}

// AsString returns v when it is a string; ok is false for False, nil and
// values of other types.
func AsString(v any) (s string, ok bool) {
	s, ok = v.(string)
	return s, ok
}

// AsInt returns v as an integer when it is one: int64 and int (XML-RPC),
// whole float64 and json.Number (JSON-2). ok is false for False, nil and
// anything else.
func AsInt(v any) (n int64, ok bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case float64:
		if x == math.Trunc(x) && x >= math.MinInt64 && x < math.MaxInt64 {
			return int64(x), true
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
	}
	return 0, false
}

// AsFloat returns a number as float64.
func AsFloat(v any) (f float64, ok bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f, true
		}
	}
	return 0, false
}

// AsBool is true only for the boolean true or a non-zero number.
func AsBool(v any) bool {
	if b, ok := v.(bool); ok {
		return b
	}
	if n, ok := AsInt(v); ok {
		return n != 0
	}
	return false
}

// AsRef decodes a many2one value: [id, "name"] (read) or a bare id.
func AsRef(v any) (Ref, bool) {
	switch x := v.(type) {
	case []any:
		if len(x) == 0 {
			return Ref{}, false
		}
		id, ok := AsInt(x[0])
		if !ok || id <= 0 {
			return Ref{}, false
		}
		r := Ref{ID: id}
		if len(x) > 1 {
			r.Name, _ = AsString(x[1])
		}
		return r, true
	default:
		if id, ok := AsInt(v); ok && id > 0 {
			return Ref{ID: id}, true
		}
	}
	return Ref{}, false
}

// AsIDs decodes a list of ids; elements that are not ids are skipped and
// False gives an empty list.
func AsIDs(v any) []int64 {
	list, ok := v.([]any)
	if !ok {
		if id, ok := AsInt(v); ok && id > 0 {
			return []int64{id}
		}
		return nil
	}
	out := make([]int64, 0, len(list))
	for _, e := range list {
		if id, ok := AsInt(e); ok {
			out = append(out, id)
		}
	}
	return out
}

// AsRecords decodes a list of records (search_read, read); entries that
// are not objects are skipped.
func AsRecords(v any) []Record {
	list, _ := v.([]any)
	out := make([]Record, 0, len(list))
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, Record(m))
		}
	}
	return out
}

// AsTime decodes an Odoo datetime ("2006-01-02 15:04:05", UTC) or date
// ("2006-01-02"); ok is false when empty or malformed.
func AsTime(v any) (time.Time, bool) {
	switch x := v.(type) {
	case time.Time:
		return x, true
	case string:
		for _, layout := range []string{time.DateTime, time.DateOnly} {
			if t, err := time.ParseInLocation(layout, x, time.UTC); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// describe renders a value's type for error messages.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "nothing"
	case bool:
		return strconv.FormatBool(x)
	case string:
		return "a string"
	case int64, int, float64, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return "an unexpected value"
}
