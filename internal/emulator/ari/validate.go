package ari

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ModelsDirEnv names the environment variable that points at a directory of
// ARI API descriptions (Swagger 1.1 JSON from Asterisk's rest-api/api-docs).
// It overrides the search FindModelsDir does.
const ModelsDirEnv = "SWITCHBOARD_ARI_MODELS"

// DateFormat is the layout of every Date value ARI sends, in Go's notation
// (Asterisk formats them with "%Y-%m-%dT%H:%M:%S.%3q%z").
const DateFormat = "2006-01-02T15:04:05.000-0700"

// Models holds the data models of a set of ARI API descriptions, ready to
// check JSON documents against. Build it with LoadModels; it is read-only
// afterwards and safe for concurrent use.
type Models struct {
	models map[string]*modelDef
	// parent maps a model to the model that lists it in subTypes.
	parent map[string]string
}

type modelDef struct {
	ID            string                 `json:"id"`
	Discriminator string                 `json:"discriminator"`
	Properties    map[string]propertyDef `json:"properties"`
	SubTypes      []string               `json:"subTypes"`
}

type propertyDef struct {
	Type            string `json:"type"`
	Required        bool   `json:"required"`
	AllowableValues *struct {
		ValueType string   `json:"valueType"`
		Values    []string `json:"values"`
	} `json:"allowableValues"`
}

// FindModelsDir returns the directory holding the ARI API descriptions: the
// value of $SWITCHBOARD_ARI_MODELS when set, otherwise the first
// shared/reference/ari found beside the working directory or one of its
// parents (the repository keeps its reference material in ../shared).
func FindModelsDir() (string, error) {
	if dir := os.Getenv(ModelsDirEnv); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "events.json")); err != nil {
			return "", fmt.Errorf("$%s=%s has no events.json: %w", ModelsDirEnv, dir, err)
		}
		return dir, nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find ARI models: %w", err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "reference", "ari")
		if _, err := os.Stat(filepath.Join(cand, "events.json")); err == nil {
			return cand, nil
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	return "", fmt.Errorf("no shared/reference/ari with events.json above %s: set $%s to the directory of the ARI API descriptions", wd, ModelsDirEnv)
}

// LoadModels reads every *.json API description in dir and collects their
// models. Model ids must be unique across files, as they are in Asterisk.
func LoadModels(dir string) (*Models, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, fmt.Errorf("list ARI API descriptions in %s: %w", dir, err)
	}
	m := &Models{models: map[string]*modelDef{}, parent: map[string]string{}}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("read ARI API description: %w", err)
		}
		var doc struct {
			Models map[string]*modelDef `json:"models"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			return nil, fmt.Errorf("parse ARI API description %s: %w", f, err)
		}
		for id, md := range doc.Models {
			if _, dup := m.models[id]; dup {
				return nil, fmt.Errorf("model %s defined twice (again in %s)", id, f)
			}
			m.models[id] = md
		}
	}
	if len(m.models) == 0 {
		return nil, fmt.Errorf("no ARI models found in %s: expected Asterisk's rest-api/api-docs/*.json there", dir)
	}
	for id, md := range m.models {
		for _, sub := range md.SubTypes {
			m.parent[sub] = id
		}
	}
	return m, nil
}

// Has reports whether a model with this id is known.
func (m *Models) Has(id string) bool { _, ok := m.models[id]; return ok }

// ValidationError lists everything wrong with one document.
type ValidationError struct {
	Model    string
	Problems []string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("does not match ARI model %s: %s", e.Model, strings.Join(e.Problems, "; "))
}

// ValidateModel checks the JSON document data against the ARI type typ: a
// model id ("Channel"), a list ("List[Endpoint]") or a primitive. It checks
// that required fields are present, that every value has its declared type
// and allowed value, and that no field is unknown to the model. A document
// whose model has a discriminator (Message and its subtypes, i.e. events) is
// checked against the subtype it names.
func (m *Models) ValidateModel(typ string, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return &ValidationError{Model: typ, Problems: []string{"not JSON: " + err.Error()}}
	}
	if dec.More() {
		return &ValidationError{Model: typ, Problems: []string{"trailing data after the JSON value"}}
	}
	var probs []string
	m.check(typ, v, "$", &probs)
	if len(probs) > 0 {
		return &ValidationError{Model: typ, Problems: probs}
	}
	return nil
}

// ValidateMessage checks one websocket message (an event or an error
// message) against the model its "type" field names.
func (m *Models) ValidateMessage(data []byte) error {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return &ValidationError{Model: "Message", Problems: []string{"not a JSON object: " + err.Error()}}
	}
	if head.Type == "" {
		return &ValidationError{Model: "Message", Problems: []string{"$.type missing or empty"}}
	}
	if !m.Has(head.Type) {
		return &ValidationError{Model: "Message", Problems: []string{fmt.Sprintf("$.type %q names no ARI model", head.Type)}}
	}
	return m.ValidateModel(head.Type, data)
}

// properties returns the properties of id and of all its ancestors.
func (m *Models) properties(id string) map[string]propertyDef {
	out := map[string]propertyDef{}
	seen := map[string]bool{}
	for cur := id; cur != "" && !seen[cur]; cur = m.parent[cur] {
		seen[cur] = true
		md := m.models[cur]
		if md == nil {
			break
		}
		for k, p := range md.Properties {
			if _, ok := out[k]; !ok {
				out[k] = p
			}
		}
	}
	return out
}

// discriminator returns the discriminator field of id or of an ancestor.
func (m *Models) discriminator(id string) string {
	seen := map[string]bool{}
	for cur := id; cur != "" && !seen[cur]; cur = m.parent[cur] {
		seen[cur] = true
		if md := m.models[cur]; md != nil && md.Discriminator != "" {
			return md.Discriminator
		}
	}
	return ""
}

// isDescendant reports whether sub is id or derives from it.
func (m *Models) isDescendant(sub, id string) bool {
	seen := map[string]bool{}
	for cur := sub; cur != "" && !seen[cur]; cur = m.parent[cur] {
		seen[cur] = true
		if cur == id {
			return true
		}
	}
	return false
}

func (m *Models) check(typ string, v any, path string, probs *[]string) {
	add := func(format string, args ...any) {
		*probs = append(*probs, path+": "+fmt.Sprintf(format, args...))
	}
	if strings.HasPrefix(typ, "List[") && strings.HasSuffix(typ, "]") {
		elem := typ[len("List[") : len(typ)-1]
		arr, ok := v.([]any)
		if !ok {
			add("want a JSON array (%s), got %s", typ, jsonKind(v))
			return
		}
		for i, e := range arr {
			m.check(elem, e, fmt.Sprintf("%s[%d]", path, i), probs)
		}
		return
	}
	switch typ {
	case "string":
		if _, ok := v.(string); !ok {
			add("want string, got %s", jsonKind(v))
		}
	case "int", "long":
		n, ok := v.(json.Number)
		if !ok {
			add("want %s, got %s", typ, jsonKind(v))
			return
		}
		if _, err := n.Int64(); err != nil {
			add("want an integer (%s), got %s", typ, n)
		}
	case "double", "float", "number":
		if _, ok := v.(json.Number); !ok {
			add("want %s, got %s", typ, jsonKind(v))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			add("want boolean, got %s", jsonKind(v))
		}
	case "Date":
		s, ok := v.(string)
		if !ok {
			add("want Date string, got %s", jsonKind(v))
			return
		}
		if _, err := time.Parse(DateFormat, s); err != nil {
			add("Date %q is not in Asterisk's format (like 2024-05-01T10:00:00.000+0000)", s)
		}
	case "object", "containers":
		if _, ok := v.(map[string]any); !ok {
			add("want a JSON object, got %s", jsonKind(v))
		}
	case "void":
		add("a void response has no body")
	default:
		if !m.Has(typ) {
			add("type %s is unknown to the API descriptions", typ)
			return
		}
		obj, ok := v.(map[string]any)
		if !ok {
			add("want a %s object, got %s", typ, jsonKind(v))
			return
		}
		target := typ
		if d := m.discriminator(typ); d != "" {
			name, _ := obj[d].(string)
			switch {
			case name == "":
				add("discriminator %q missing", d)
				return
			case !m.Has(name):
				add("%s %q names no ARI model", d, name)
				return
			case !m.isDescendant(name, typ):
				add("%s %q is not a kind of %s", d, name, typ)
				return
			}
			target = name
		}
		props := m.properties(target)
		keys := make([]string, 0, len(props))
		for k := range props {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := props[k]
			val, present := obj[k]
			if !present {
				if p.Required {
					add("required field %q of %s missing", k, target)
				}
				continue
			}
			sub := path + "." + k
			m.check(p.Type, val, sub, probs)
			if p.AllowableValues != nil && strings.EqualFold(p.AllowableValues.ValueType, "LIST") {
				if s, ok := val.(string); ok && !contains(p.AllowableValues.Values, s) {
					*probs = append(*probs, fmt.Sprintf("%s: %q is not one of %v", sub, s, p.AllowableValues.Values))
				}
			}
		}
		unknown := []string{}
		for k := range obj {
			if _, ok := props[k]; !ok {
				unknown = append(unknown, k)
			}
		}
		sort.Strings(unknown)
		for _, k := range unknown {
			add("field %q is not part of %s", k, target)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func jsonKind(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case json.Number:
		return "number " + x.String()
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// errViolation wraps a validation failure of the emulator's own output.
var errViolation = errors.New("ARI emulator output violates the API descriptions")
