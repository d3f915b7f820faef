package catalog

import (
	"encoding/json"
	"fmt"
	"slices"
)

// FieldType names the JSON type a Field accepts.
type FieldType string

// The field types. Ranges, lengths and item counts are inclusive.
const (
	Bool       FieldType = "bool"        // true or false
	Int        FieldType = "int"         // a whole number within Min..Max, or one of OneOf
	Number     FieldType = "number"      // any number within Min..Max
	String     FieldType = "string"      // MinLen..MaxLen characters, optionally of a Format
	Enum       FieldType = "enum"        // one of Values
	VoiceID    FieldType = "voice"       // a voice id of the voice set VoiceSet
	List       FieldType = "list"        // an array of Items, MinItems..MaxItems long
	Object     FieldType = "object"      // an object with Fields (or, with Tag, one of Variants)
	JSONObject FieldType = "json_object" // any JSON object, kept as sent (e.g. a JSON Schema)
)

// String formats understood by validators (Field.Format).
const (
	FormatEmail        = "email"         // a bare address, e.g. ops@example.com
	FormatURL          = "url"           // an absolute http or https URL
	FormatUUID         = "uuid"          // 8-4-4-4-12 hex digits
	FormatE164         = "e164"          // +31201234567
	FormatFunctionName = "function_name" // letter or _, then letters, digits, _ or -, at most 64
)

// Field describes one configuration key: its JSON type, the values it
// accepts and its default. Fields come from the embedded catalog; other
// packages may build their own for documents that are not provider configs.
// Treat Fields returned by a Catalog as read-only.
type Field struct {
	Name string    `json:"name"`
	Type FieldType `json:"type"`
	Doc  string    `json:"doc,omitempty"`

	Required bool            `json:"required,omitempty"` // absent is an error unless Default is set with Fill
	Nullable bool            `json:"nullable,omitempty"` // JSON null is a meaningful value that is kept
	Default  json.RawMessage `json:"default,omitempty"`  // the documented default
	Fill     bool            `json:"fill,omitempty"`     // write Default into canonical documents when absent

	Min     *float64  `json:"min,omitempty"`      // numbers: lowest value
	Max     *float64  `json:"max,omitempty"`      // numbers: highest value
	Clamp   bool      `json:"clamp,omitempty"`    // numbers outside Min..Max are clamped, not rejected
	AtLeast string    `json:"at_least,omitempty"` // numbers: name of a sibling field this one may not be below
	OneOf   []float64 `json:"one_of,omitempty"`   // numbers: the only values allowed

	MinLen *int     `json:"min_len,omitempty"` // strings: fewest characters
	MaxLen *int     `json:"max_len,omitempty"` // strings: most characters
	Format string   `json:"format,omitempty"`  // strings: one of the Format constants
	Values []string `json:"values,omitempty"`  // enums: allowed values

	VoiceSet string `json:"voice_set,omitempty"` // voices: name of the voice set

	Items    *Field `json:"items,omitempty"`     // lists: the element
	MinItems *int   `json:"min_items,omitempty"` // lists: fewest elements
	MaxItems *int   `json:"max_items,omitempty"` // lists: most elements
	Unique   bool   `json:"unique,omitempty"`    // lists: elements must differ

	Fields   []*Field  `json:"fields,omitempty"`   // objects: members
	Tag      string    `json:"tag,omitempty"`      // objects: discriminator key selecting a Variant
	Variants []Variant `json:"variants,omitempty"` // objects: members per Tag value
}

// Variant is the member list of a tagged object for one value of its tag.
type Variant struct {
	Value  string   `json:"value"`
	Fields []*Field `json:"fields,omitempty"`
}

// Member returns the member field called name, or nil.
func (f *Field) Member(name string) *Field { return findField(f.Fields, name) }

// Variant returns the variant whose tag value is v, or nil.
func (f *Field) Variant(v string) *Variant {
	for i := range f.Variants {
		if f.Variants[i].Value == v {
			return &f.Variants[i]
		}
	}
	return nil
}

// TagValues lists the tag values of a tagged object, in catalog order.
func (f *Field) TagValues() []string {
	out := make([]string, len(f.Variants))
	for i, v := range f.Variants {
		out[i] = v.Value
	}
	return out
}

func findField(fields []*Field, name string) *Field {
	for _, f := range fields {
		if f.Name == name {
			return f
		}
	}
	return nil
}

var fieldTypes = []FieldType{Bool, Int, Number, String, Enum, VoiceID, List, Object, JSONObject}

// check reports the first inconsistency in f and its children.
func (f *Field) check(c *Catalog, path string) error {
	if !slices.Contains(fieldTypes, f.Type) {
		return fmt.Errorf("%s: unknown field type %q", path, f.Type)
	}
	if f.Default != nil && !json.Valid(f.Default) {
		return fmt.Errorf("%s: default is not JSON", path)
	}
	switch f.Type {
	case Enum:
		if len(f.Values) == 0 {
			return fmt.Errorf("%s: enum without values", path)
		}
	case VoiceID:
		if c.VoiceSet(f.VoiceSet) == nil {
			return fmt.Errorf("%s: unknown voice set %q", path, f.VoiceSet)
		}
	case List:
		if f.Items == nil {
			return fmt.Errorf("%s: list without items", path)
		}
		return f.Items.check(c, path+"[]")
	case Object:
		for _, m := range f.Fields {
			if err := m.check(c, path+"."+m.Name); err != nil {
				return err
			}
		}
		for _, v := range f.Variants {
			for _, m := range v.Fields {
				if err := m.check(c, path+"."+m.Name); err != nil {
					return err
				}
			}
		}
	}
	if f.AtLeast != "" && f.Type != Number && f.Type != Int {
		return fmt.Errorf("%s: at_least on a non-numeric field", path)
	}
	return nil
}
