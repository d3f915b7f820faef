package openapi

// schema is a JSON Schema 2020-12 object as OpenAPI 3.1 uses it. Only the
// keywords this document needs are present. Type is a string or, for
// nullable values, a []string ending in "null".
type schema struct {
	Ref                  string             `json:"$ref,omitempty"`
	Title                string             `json:"title,omitempty"`
	Description          string             `json:"description,omitempty"`
	Type                 any                `json:"type,omitempty"`
	Format               string             `json:"format,omitempty"`
	Const                any                `json:"const,omitempty"`
	Enum                 []any              `json:"enum,omitempty"`
	Default              any                `json:"default,omitempty"`
	Minimum              *float64           `json:"minimum,omitempty"`
	Maximum              *float64           `json:"maximum,omitempty"`
	MinLength            *int               `json:"minLength,omitempty"`
	MaxLength            *int               `json:"maxLength,omitempty"`
	Pattern              string             `json:"pattern,omitempty"`
	Items                *schema            `json:"items,omitempty"`
	MinItems             *int               `json:"minItems,omitempty"`
	MaxItems             *int               `json:"maxItems,omitempty"`
	UniqueItems          bool               `json:"uniqueItems,omitempty"`
	Properties           map[string]*schema `json:"properties,omitempty"`
	Required             []string           `json:"required,omitempty"`
	AdditionalProperties *schema            `json:"additionalProperties,omitempty"`
	PropertyNames        *schema            `json:"propertyNames,omitempty"`
	MaxProperties        *int               `json:"maxProperties,omitempty"`
	OneOf                []*schema          `json:"oneOf,omitempty"`
	AnyOf                []*schema          `json:"anyOf,omitempty"`
	Not                  *schema            `json:"not,omitempty"`
	Discriminator        *discriminator     `json:"discriminator,omitempty"`
	ReadOnly             bool               `json:"readOnly,omitempty"`
	WriteOnly            bool               `json:"writeOnly,omitempty"`
	Deprecated           bool               `json:"deprecated,omitempty"`
	Examples             []any              `json:"examples,omitempty"`
}

type discriminator struct {
	PropertyName string            `json:"propertyName"`
	Mapping      map[string]string `json:"mapping,omitempty"`
}

// props are the properties of an object schema.
type props map[string]*schema

const schemaRef = "#/components/schemas/"

// ref points at a component schema.
func ref(name string) *schema { return &schema{Ref: schemaRef + name} }

func str() *schema     { return &schema{Type: "string"} }
func integer() *schema { return &schema{Type: "integer"} }
func number() *schema  { return &schema{Type: "number"} }
func boolean() *schema { return &schema{Type: "boolean"} }

// freeObject is an object with any members.
func freeObject() *schema { return &schema{Type: "object"} }

// object is an object schema with the given properties and required names.
func object(p props, required ...string) *schema {
	return &schema{Type: "object", Properties: p, Required: required}
}

func array(items *schema) *schema { return &schema{Type: "array", Items: items} }

// stringMap is an object whose members are all strings.
func stringMap() *schema { return &schema{Type: "object", AdditionalProperties: str()} }

// enum is a string schema limited to values.
func enum(values ...string) *schema {
	s := &schema{Type: "string"}
	for _, v := range values {
		s.Enum = append(s.Enum, v)
	}
	return s
}

// intEnum is an integer schema limited to values.
func intEnum(values ...int) *schema {
	s := &schema{Type: "integer"}
	for _, v := range values {
		s.Enum = append(s.Enum, v)
	}
	return s
}

// constant is a string schema with exactly one value.
func constant(v string) *schema { return &schema{Type: "string", Const: v} }

func uuid() *schema      { return &schema{Type: "string", Format: "uuid"} }
func timestamp() *schema { return &schema{Type: "string", Format: "date-time"} }
func uri() *schema       { return &schema{Type: "string", Format: "uri"} }
func email() *schema     { return &schema{Type: "string", Format: "email"} }

// e164 is a phone number in E.164 form.
func e164() *schema {
	return &schema{Type: "string", Pattern: `^\+[1-9][0-9]{1,14}$`, Examples: []any{"+31201234567"}}
}

// oneOf is a choice among schemas.
func oneOf(alts ...*schema) *schema { return &schema{OneOf: alts} }

// tagged is a oneOf of component schemas told apart by the property tag;
// mapping maps each tag value to a component schema name.
func tagged(tag string, mapping map[string]string, names ...string) *schema {
	s := &schema{Discriminator: &discriminator{PropertyName: tag, Mapping: map[string]string{}}}
	for _, n := range names {
		s.OneOf = append(s.OneOf, ref(n))
	}
	for v, n := range mapping {
		s.Discriminator.Mapping[v] = schemaRef + n
	}
	return s
}

// d sets the description.
func (s *schema) d(text string) *schema { s.Description = text; return s }

// nullable lets s also be null, 2020-12 style: a type list for typed
// schemas (with null added to an enum), a oneOf with {"type":"null"} for
// references and compositions.
func (s *schema) nullable() *schema {
	switch t := s.Type.(type) {
	case string:
		s.Type = []string{t, "null"}
		if s.Enum != nil {
			s.Enum = append(s.Enum, nil)
		}
		return s
	case []string:
		s.Type = append(t, "null")
		if s.Enum != nil {
			s.Enum = append(s.Enum, nil)
		}
		return s
	}
	if s.Ref != "" {
		return &schema{Description: s.Description, OneOf: []*schema{{Ref: s.Ref}, {Type: "null"}}}
	}
	if s.OneOf != nil && s.Discriminator == nil {
		s.OneOf = append(s.OneOf, &schema{Type: "null"})
		return s
	}
	return &schema{OneOf: []*schema{s, {Type: "null"}}}
}

// between sets an inclusive numeric range.
func (s *schema) between(lo, hi float64) *schema {
	s.Minimum, s.Maximum = &lo, &hi
	return s
}

// atLeast sets an inclusive lower bound.
func (s *schema) atLeast(lo float64) *schema { s.Minimum = &lo; return s }

// def sets the default value.
func (s *schema) def(v any) *schema { s.Default = v; return s }

// length bounds a string's length; a negative max means unbounded.
func (s *schema) length(lo, hi int) *schema {
	if lo > 0 {
		s.MinLength = &lo
	}
	if hi >= 0 {
		s.MaxLength = &hi
	}
	return s
}

// count bounds an array's length; a negative max means unbounded.
func (s *schema) count(lo, hi int) *schema {
	if lo > 0 {
		s.MinItems = &lo
	}
	if hi >= 0 {
		s.MaxItems = &hi
	}
	return s
}

// pattern sets a regular expression the string must match.
func (s *schema) pattern(re string) *schema { s.Pattern = re; return s }

// ex adds an example value.
func (s *schema) ex(v any) *schema { s.Examples = append(s.Examples, v); return s }

func (s *schema) readOnly() *schema   { s.ReadOnly = true; return s }
func (s *schema) writeOnly() *schema  { s.WriteOnly = true; return s }
func (s *schema) deprecated() *schema { s.Deprecated = true; return s }

// titled sets the title.
func (s *schema) titled(t string) *schema { s.Title = t; return s }

// merge returns the union of property sets; later sets win on a clash.
func merge(sets ...props) props {
	out := props{}
	for _, set := range sets {
		for k, v := range set {
			out[k] = v
		}
	}
	return out
}
