package openapi

import (
	"slices"
	"strings"

	"github.com/parley-voice/parley/internal/textrule"
)

// limitText publishes the text rules the server enforces on every request
// body (internal/textrule): each string schema a request body can reach
// gets maxLength, the smaller of its own and the limit of the member that
// holds it, and each object with free member names gets propertyNames
// bounded by textrule.KeyMax. Schemas shared with responses keep the limits;
// stored values met them when they were written.
func limitText(ps map[string]*pathItem, comps map[string]*schema) {
	type visit struct {
		s   *schema
		key string
	}
	seen := map[visit]bool{}
	// key is the member whose limit applies (see textrule.FreeForm for free).
	var walk func(s *schema, key string, free bool)
	walk = func(s *schema, key string, free bool) {
		if s == nil || seen[visit{s, key}] {
			return
		}
		seen[visit{s, key}] = true
		if s.Ref != "" {
			walk(comps[strings.TrimPrefix(s.Ref, schemaRef)], key, free)
		}
		if hasType(s, "string") && s.Enum == nil && s.Const == nil {
			if lim := textrule.MaxLen(key); s.MaxLength == nil || *s.MaxLength > lim {
				s.MaxLength = &lim
			}
		}
		if hasType(s, "object") && (s.AdditionalProperties != nil || s.Properties == nil) {
			if s.PropertyNames == nil {
				s.PropertyNames = &schema{}
			}
			if lim := textrule.KeyMax; s.PropertyNames.MaxLength == nil || *s.PropertyNames.MaxLength > lim {
				s.PropertyNames.MaxLength = &lim
			}
		}
		for name, p := range s.Properties {
			if free {
				walk(p, key, true)
			} else {
				walk(p, name, textrule.FreeForm(name))
			}
		}
		walk(s.Items, key, free)
		walk(s.AdditionalProperties, key, free)
		for _, alt := range slices.Concat(s.OneOf, s.AnyOf) {
			walk(alt, key, free)
		}
	}
	for _, item := range ps {
		for _, m := range item.methods() {
			if m.op.RequestBody == nil {
				continue
			}
			for _, mt := range m.op.RequestBody.Content {
				walk(mt.Schema, "", false)
			}
		}
	}
}

// hasType reports whether s allows the JSON type t.
func hasType(s *schema, t string) bool {
	switch v := s.Type.(type) {
	case string:
		return v == t
	case []string:
		return slices.Contains(v, t)
	}
	return false
}
