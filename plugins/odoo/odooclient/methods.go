package odooclient

import (
	"context"
	"fmt"
)

// Domain is an Odoo search domain: conditions [field, operator, value]
// and the prefix operators "&", "|", "!".
type Domain []any

// Cond is one domain condition.
func Cond(field, operator string, value any) []any { return []any{field, operator, value} }

// Or joins domains (each a list of implicitly AND-ed terms) with OR.
func Or(domains ...Domain) Domain {
	var out Domain
	for i := 1; i < len(domains); i++ {
		out = append(out, "|")
	}
	for _, d := range domains {
		if len(d) == 0 {
			d = Domain{Cond("id", "!=", 0)} // an empty domain matches everything
		}
		for i := 1; i < len(d); i++ {
			out = append(out, "&")
		}
		out = append(out, d...)
	}
	return out
}

func (d Domain) wire() []any {
	if d == nil {
		return []any{}
	}
	return []any(d)
}

// SearchOptions narrow a search; zero values mean Odoo's defaults.
type SearchOptions struct {
	Offset int
	Limit  int
	Order  string
}

func (o SearchOptions) kw(kw map[string]any) map[string]any {
	if o.Offset > 0 {
		kw["offset"] = o.Offset
	}
	if o.Limit > 0 {
		kw["limit"] = o.Limit
	}
	if o.Order != "" {
		kw["order"] = o.Order
	}
	return kw
}

// SearchCount counts the records of model matching domain.
func (c *Client) SearchCount(ctx context.Context, model string, domain Domain) (int64, error) {
	res, err := c.call(ctx, model, "search_count", nil, []arg{{"domain", domain.wire()}}, nil)
	if err != nil {
		return 0, err
	}
	n, ok := AsInt(res)
	if !ok || n < 0 {
		return 0, &Error{Kind: KindProtocol, Op: model + ".search_count", Message: "search_count answered " + describe(res) + ", not a count"}
	}
	return n, nil
}

// Search returns the ids of the records matching domain.
func (c *Client) Search(ctx context.Context, model string, domain Domain, opts SearchOptions) ([]int64, error) {
	res, err := c.call(ctx, model, "search", nil, []arg{{"domain", domain.wire()}}, opts.kw(map[string]any{}))
	if err != nil {
		return nil, err
	}
	if _, ok := res.([]any); !ok {
		return nil, &Error{Kind: KindProtocol, Op: model + ".search", Message: "search answered " + describe(res) + ", not a list"}
	}
	return AsIDs(res), nil
}

// SearchRead returns fields of the records matching domain (every field
// when fields is empty).
func (c *Client) SearchRead(ctx context.Context, model string, domain Domain, fields []string, opts SearchOptions) ([]Record, error) {
	kw := opts.kw(map[string]any{})
	if len(fields) > 0 {
		kw["fields"] = fields
	}
	res, err := c.call(ctx, model, "search_read", nil, []arg{{"domain", domain.wire()}}, kw)
	if err != nil {
		return nil, err
	}
	if _, ok := res.([]any); !ok {
		return nil, &Error{Kind: KindProtocol, Op: model + ".search_read", Message: "search_read answered " + describe(res) + ", not a list"}
	}
	return AsRecords(res), nil
}

// Read returns fields of the records ids.
func (c *Client) Read(ctx context.Context, model string, ids []int64, fields []string) ([]Record, error) {
	kw := map[string]any{}
	if len(fields) > 0 {
		kw["fields"] = fields
	}
	res, err := c.call(ctx, model, "read", nonNil(ids), nil, kw)
	if err != nil {
		return nil, err
	}
	if _, ok := res.([]any); !ok {
		return nil, &Error{Kind: KindProtocol, Op: model + ".read", Message: "read answered " + describe(res) + ", not a list"}
	}
	return AsRecords(res), nil
}

// Create makes one record and returns its id.
func (c *Client) Create(ctx context.Context, model string, vals map[string]any) (int64, error) {
	if vals == nil {
		vals = map[string]any{}
	}
	res, err := c.call(ctx, model, "create", nil, []arg{{"vals_list", vals}}, nil)
	if err != nil {
		return 0, err
	}
	// create returns an id for one dict (a list of one on some versions).
	if ids := AsIDs(res); len(ids) == 1 && ids[0] > 0 {
		return ids[0], nil
	}
	return 0, &Error{Kind: KindProtocol, Op: model + ".create", Message: "create answered " + describe(res) + ", not a record id"}
}

// Write changes the records ids.
func (c *Client) Write(ctx context.Context, model string, ids []int64, vals map[string]any) error {
	if len(ids) == 0 {
		return nil
	}
	res, err := c.call(ctx, model, "write", ids, []arg{{"vals", vals}}, nil)
	if err != nil {
		return err
	}
	if ok, isBool := res.(bool); !isBool || !ok {
		return &Error{Kind: KindProtocol, Op: model + ".write", Message: fmt.Sprintf("write answered %s instead of true", describe(res))}
	}
	return nil
}

// FieldsGet describes the fields of model; attributes narrows what is
// said about each (e.g. "type", "required", "string"); nil gives all.
func (c *Client) FieldsGet(ctx context.Context, model string, attributes []string) (map[string]Record, error) {
	kw := map[string]any{}
	if len(attributes) > 0 {
		kw["attributes"] = attributes
	}
	res, err := c.call(ctx, model, "fields_get", nil, nil, kw)
	if err != nil {
		return nil, err
	}
	m, ok := res.(map[string]any)
	if !ok {
		return nil, &Error{Kind: KindProtocol, Op: model + ".fields_get", Message: "fields_get answered " + describe(res) + ", not an object"}
	}
	out := make(map[string]Record, len(m))
	for name, v := range m {
		if f, ok := v.(map[string]any); ok {
			out[name] = Record(f)
		}
	}
	return out, nil
}

// Check proves the session works with one cheap authenticated call
// (res.users.context_get), logging in first when needed.
func (c *Client) Check(ctx context.Context) error {
	_, err := c.call(ctx, "res.users", "context_get", nil, nil, nil)
	return err
}

func nonNil(ids []int64) []int64 {
	if ids == nil {
		return []int64{}
	}
	return ids
}
