// Package textrule says what text the API accepts. Every string a request
// carries — JSON body values and member names, path parameters, query
// values — must be valid UTF-8 without NUL: PostgreSQL cannot store a NUL in
// text, and a NUL or a broken byte sequence would otherwise travel on into
// provider requests, SIP headers and logs. A JSON escape of a lone UTF-16
// surrogate (\ud800 without its pair) is refused too: it is not a character,
// and Go would silently turn it into U+FFFD.
//
// Each free-text field has a maximum length in characters (Unicode code
// points, as JSON Schema's maxLength counts them). The limits are one table,
// Rules, keyed by member name so that a field has the same limit wherever it
// appears (inside free-form objects, see FreeForm, the holding member's
// limit applies); the HTTP decoder enforces it on every request body and
// the OpenAPI document publishes it as maxLength.
package textrule

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The length classes, in characters.
const (
	// NameMax bounds names and other one-line labels.
	NameMax = 200
	// PromptMax bounds prompts, instructions and message templates.
	PromptMax = 100_000
	// TextMax bounds every other string value: descriptions, spoken lines,
	// URLs, secrets, metadata values.
	TextMax = 10_000
	// KeyMax bounds the member names of free-form objects (metadata,
	// variables, headers, schemas).
	KeyMax = 200
	// ParamMax bounds a path parameter or a query value.
	ParamMax = 1_000
)

// Rule gives the members named Fields a maximum length.
type Rule struct {
	Fields []string
	Max    int
	What   string // the class, for documentation
}

// Rules is the table of field limits. A string member not listed gets
// TextMax; the items of a string array and the values of a string map take
// the limit of the member that holds them.
func Rules() []Rule {
	return []Rule{
		{Max: NameMax, What: "names", Fields: []string{"name", "business_name", "company_name", "tool_name", "agent_name", "caller_name"}},
		{Max: PromptMax, What: "prompts and instructions", Fields: []string{
			"content", "instructions", "global_prompt", "system_prompt", "user_prompt", "prompt", "system_message_template",
		}},
	}
}

// FreeForm reports whether the member named field holds a free-form object:
// metadata, template variables, HTTP headers, provider settings, static
// tool arguments, JSON Schemas. The member names inside are the client's
// data, not fields, so every string below such a member takes the limit of
// the member itself (TextMax), whatever its own name.
func FreeForm(field string) bool {
	switch field {
	case "metadata", "variables", "headers", "config", "arguments", "schema", "parameters", "input_schema":
		return true
	}
	return false
}

// MaxLen is the maximum length in characters of a string held by the member
// named field.
func MaxLen(field string) int {
	for _, r := range Rules() {
		for _, f := range r.Fields {
			if f == field {
				return r.Max
			}
		}
	}
	return TextMax
}

// Problem says what is wrong with s as text ("" when nothing is): a NUL
// character or bytes that are not UTF-8. A Go string cannot hold a lone
// surrogate as valid UTF-8, so that case is covered by the second.
func Problem(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return "contains a NUL character (\\u0000)"
	}
	if !utf8.ValidString(s) {
		for i := 0; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				return fmt.Sprintf("is not valid UTF-8 (byte 0x%02x at offset %d)", s[i], i)
			}
			i += n
		}
	}
	return ""
}

// Describe renders a field name for an error message: NUL and invalid bytes
// become Go escapes so that the name itself is safe to show.
func Describe(field string) string {
	if Problem(field) == "" {
		return field
	}
	q := fmt.Sprintf("%q", field)
	return q[1 : len(q)-1]
}
