package workflow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/parley-voice/parley/internal/fault"
)

// checker holds the problems found so far. Helpers record a problem and
// return ok=false; they never stop validation.
type checker struct {
	cfg      NodeConfigs
	fs       fault.Fields
	internal error // first failure of cfg that is not a validation problem
}

// object is a JSON object split into members. Keys keep document order so
// problems are reported in the order a person reads them.
type object struct {
	path string
	keys []string
	vals map[string]json.RawMessage
}

func (o *object) get(key string) (json.RawMessage, bool) {
	raw, ok := o.vals[key]
	return raw, ok
}

func (o *object) field(key string) string { return o.path + "." + key }

// kindOf names the JSON type of raw, which must be valid JSON ("" when empty).
func kindOf(raw json.RawMessage) string {
	b := bytes.TrimLeft(raw, " \t\r\n")
	if len(b) == 0 {
		return ""
	}
	switch b[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// compactJSON returns raw (valid JSON) without insignificant whitespace.
func compactJSON(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}

// splitObject decodes raw (valid JSON) as an object, reporting a non-object
// and keys given more than once. allowed, when not nil, is the complete key
// set; other keys are reported with the suffix what (e.g. " of an end node").
func (c *checker) splitObject(path string, raw json.RawMessage, allowed []string, what string) (*object, bool) {
	if k := kindOf(raw); k != "object" {
		c.fs.Invalidf(path, "must be a JSON object (got %s)", k)
		return nil, false
	}
	o := &object{path: path, vals: map[string]json.RawMessage{}}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // '{'
		c.fs.Invalidf(path, "must be a JSON object")
		return nil, false
	}
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		var val json.RawMessage
		if err == nil && isKey {
			err = dec.Decode(&val)
		}
		if err != nil || !isKey {
			c.fs.Invalidf(path, "must be a JSON object")
			return nil, false
		}
		if _, dup := o.vals[key]; dup {
			c.fs.Invalidf(o.field(key), "appears more than once")
		} else {
			o.keys = append(o.keys, key)
		}
		o.vals[key] = val // the last one wins, as in encoding/json
	}
	if allowed != nil {
		for _, k := range o.keys {
			if !slices.Contains(allowed, k) {
				c.fs.Invalidf(o.field(k), "is not a known field%s", what)
			}
		}
	}
	return o, true
}

// str reads an optional string (required when req). ok reports a string was read.
func (c *checker) str(o *object, key string, req bool) (string, bool) {
	raw, present := o.get(key)
	if !present {
		if req {
			c.fs.Missing(o.field(key))
		}
		return "", false
	}
	if k := kindOf(raw); k != "string" {
		c.fs.Invalidf(o.field(key), "must be a string (got %s)", k)
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		c.fs.Invalidf(o.field(key), "must be a string")
		return "", false
	}
	return s, true
}

// text reads a required string that must not be blank.
func (c *checker) text(o *object, key string) (string, bool) {
	s, ok := c.str(o, key, true)
	if ok && strings.TrimSpace(s) == "" {
		c.fs.Invalidf(o.field(key), "must not be empty")
		return "", false
	}
	return s, ok
}

// optStr reads an optional, non-nullable string; nil when absent or invalid.
func (c *checker) optStr(o *object, key string) *string {
	if s, ok := c.str(o, key, false); ok {
		return &s
	}
	return nil
}

// nullStr reads an optional string that may be null; null is the same as
// absent and yields nil.
func (c *checker) nullStr(o *object, key string) *string {
	raw, present := o.get(key)
	if !present || kindOf(raw) == "null" {
		return nil
	}
	if k := kindOf(raw); k != "string" {
		c.fs.Invalidf(o.field(key), "must be a string or null (got %s)", k)
		return nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		c.fs.Invalidf(o.field(key), "must be a string or null")
		return nil
	}
	return &s
}

// boolean reads an optional boolean; false when absent or invalid.
func (c *checker) boolean(o *object, key string) bool {
	raw, present := o.get(key)
	if !present {
		return false
	}
	if k := kindOf(raw); k != "boolean" {
		c.fs.Invalidf(o.field(key), "must be a boolean (got %s)", k)
		return false
	}
	return bytes.Equal(bytes.TrimSpace(raw), []byte("true"))
}

// array decodes raw (valid JSON) as an array, reporting anything else.
func (c *checker) array(path string, raw json.RawMessage) ([]json.RawMessage, bool) {
	if k := kindOf(raw); k != "array" {
		c.fs.Invalidf(path, "must be an array (got %s)", k)
		return nil, false
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		c.fs.Invalidf(path, "must be an array")
		return nil, false
	}
	return items, true
}

// isOne reports whether raw is a JSON number equal to 1.
func isOne(raw json.RawMessage) bool {
	if kindOf(raw) != "number" {
		return false
	}
	f, err := strconv.ParseFloat(string(bytes.TrimSpace(raw)), 64)
	return err == nil && f == 1
}

// providerCheck is one method of NodeConfigs, as a method expression.
type providerCheck func(NodeConfigs, json.RawMessage, string) (json.RawMessage, error)

// provider hands o[key] to NodeConfigs after checking its JSON type (want)
// and returns what NodeConfigs made of it; nil when absent or invalid.
func (c *checker) provider(o *object, key, want string, check providerCheck) json.RawMessage {
	raw, present := o.get(key)
	if !present {
		return nil
	}
	field := o.field(key)
	if k := kindOf(raw); k != want {
		c.fs.Invalidf(field, "must be %s %s (got %s)", article(want), want, k)
		return nil
	}
	if c.cfg == nil {
		c.fail(fmt.Errorf("workflow: no NodeConfigs to validate %s", field))
		return nil
	}
	out, err := check(c.cfg, raw, field)
	if err != nil {
		c.merge(field, err)
		return nil
	}
	if len(bytes.TrimSpace(out)) == 0 {
		return compactJSON(raw)
	}
	if !json.Valid(out) {
		c.fail(fmt.Errorf("workflow: NodeConfigs returned invalid JSON for %s", field))
		return nil
	}
	return compactJSON(out)
}

// merge records the validation problems in err. Anything else (a broken
// catalogue, a bug) is not the client's fault: it is kept aside and returned
// by Validate instead of a 400.
func (c *checker) merge(field string, err error) {
	fe, ok := fault.As(err)
	if !ok || fe.Kind != fault.Invalid {
		c.fail(fmt.Errorf("workflow: validating %s: %w", field, err))
		return
	}
	c.fs.Merge(err)
}

func (c *checker) fail(err error) {
	if c.internal == nil {
		c.internal = err
	}
}

func article(word string) string {
	if word != "" && strings.ContainsRune("aeiou", rune(word[0])) {
		return "an"
	}
	return "a"
}
