package assistant

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"

	"github.com/parley-voice/parley/internal/fault"
)

// jkind is the JSON type of a raw value, read from its first byte.
type jkind uint8

const (
	jAbsent jkind = iota // empty raw message: the key was not sent
	jNull
	jBool
	jNumber
	jString
	jArray
	jObject
	jInvalid
)

func kindOf(raw json.RawMessage) jkind {
	for _, b := range raw {
		switch b {
		case ' ', '\t', '\n', '\r':
			continue
		case 'n':
			return jNull
		case 't', 'f':
			return jBool
		case '"':
			return jString
		case '[':
			return jArray
		case '{':
			return jObject
		case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
			return jNumber
		}
		return jInvalid
	}
	return jAbsent
}

// given reports whether a member was sent with a non-null value.
func given(raw json.RawMessage) bool {
	k := kindOf(raw)
	return k != jAbsent && k != jNull
}

func asObject(f *fault.Fields, path string, raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if kindOf(raw) != jObject || json.Unmarshal(raw, &m) != nil {
		f.Invalidf(path, "must be an object")
		return nil, false
	}
	return m, true
}

func asArray(f *fault.Fields, path string, raw json.RawMessage) ([]json.RawMessage, bool) {
	var a []json.RawMessage
	if kindOf(raw) != jArray || json.Unmarshal(raw, &a) != nil {
		f.Invalidf(path, "must be an array")
		return nil, false
	}
	return a, true
}

func asString(f *fault.Fields, path string, raw json.RawMessage) (string, bool) {
	var s string
	if kindOf(raw) != jString || json.Unmarshal(raw, &s) != nil {
		f.Invalidf(path, "must be a string")
		return "", false
	}
	return s, true
}

func asBool(f *fault.Fields, path string, raw json.RawMessage) (bool, bool) {
	var b bool
	if kindOf(raw) != jBool || json.Unmarshal(raw, &b) != nil {
		f.Invalidf(path, "must be a boolean (true or false)")
		return false, false
	}
	return b, true
}

func asNumber(f *fault.Fields, path string, raw json.RawMessage) (float64, bool) {
	var x float64
	if kindOf(raw) != jNumber || json.Unmarshal(raw, &x) != nil {
		f.Invalidf(path, "must be a number")
		return 0, false
	}
	return x, true
}

// asInt accepts whole numbers, including ones written as 5.0.
func asInt(f *fault.Fields, path string, raw json.RawMessage) (int64, bool) {
	var x float64
	if kindOf(raw) != jNumber || json.Unmarshal(raw, &x) != nil || x != math.Trunc(x) {
		f.Invalidf(path, "must be a whole number")
		return 0, false
	}
	if math.Abs(x) > 1<<53 {
		f.Invalidf(path, "is too large; got %s", formatNum(x))
		return 0, false
	}
	return int64(x), true
}

// decodeString reads a string without reporting anything.
func decodeString(raw json.RawMessage) (string, bool) {
	var s string
	if kindOf(raw) != jString || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// decodeObject reads an object without reporting anything.
func decodeObject(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var m map[string]json.RawMessage
	if kindOf(raw) != jObject || json.Unmarshal(raw, &m) != nil {
		return nil, false
	}
	return m, true
}

func formatNum(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// at and idx build dotted field paths: at("llm_config", "model"), idx("tools", 2).
func at(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func idx(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// obj is a JSON object that marshals its members in insertion order, so
// canonical documents read provider, model, ... in a stable, natural order.
// Values are nil, bool, int64, float64, string, json.RawMessage, []any or *obj.
type obj struct {
	keys []string
	vals map[string]any
}

func newObj() *obj { return &obj{vals: map[string]any{}} }

func (o *obj) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *obj) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

func (o *obj) has(k string) bool { _, ok := o.vals[k]; return ok }

// MarshalJSON writes the members in insertion order.
func (o *obj) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, err := marshal(k)
		if err != nil {
			return nil, err
		}
		vb, err := marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// rawMap turns a top-level object into the map form documents travel in.
func (o *obj) rawMap() (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(o.keys))
	for _, k := range o.keys {
		b, err := marshal(o.vals[k])
		if err != nil {
			return nil, err
		}
		out[k] = b
	}
	return out, nil
}

// marshal is json.Marshal without HTML escaping, so prompts keep their & and <.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// compact returns raw without insignificant whitespace.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}
