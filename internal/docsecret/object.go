package docsecret

import (
	"bytes"
	"encoding/json"
)

// member is one member of a JSON object.
type member struct {
	key string
	val json.RawMessage
}

// object is a JSON object that keeps its members' order, so that editing
// one member of a canonical document leaves the rest of it as it was.
type object []member

// objectOf parses raw as a JSON object.
func objectOf(raw json.RawMessage) (object, bool) {
	o, err := parseObject(raw)
	return o, err == nil
}

func parseObject(raw json.RawMessage) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errNotObject
	}
	o := object{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, ok := tok.(string)
		if !ok {
			return nil, errNotObject
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		o = append(o, member{key, v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	return o, nil
}

func (o object) get(k string) (json.RawMessage, bool) {
	for _, m := range o {
		if m.key == k {
			return m.val, true
		}
	}
	return nil, false
}

// object returns member k parsed as an object.
func (o object) object(k string) (object, bool) {
	raw, ok := o.get(k)
	if !ok {
		return nil, false
	}
	return objectOf(raw)
}

func (o *object) set(k string, v json.RawMessage) {
	for i := range *o {
		if (*o)[i].key == k {
			(*o)[i].val = v
			return
		}
	}
	*o = append(*o, member{k, v})
}

func (o *object) del(k string) {
	for i := range *o {
		if (*o)[i].key == k {
			*o = append((*o)[:i], (*o)[i+1:]...)
			return
		}
	}
}

// raw encodes o, members in order.
func (o object) raw() json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(m.val)
	}
	b.WriteByte('}')
	return b.Bytes()
}

// mapObject gives a document's top level (a map) the object methods.
type mapObject map[string]json.RawMessage

func (m mapObject) get(k string) (json.RawMessage, bool) {
	v, ok := m[k]
	return v, ok
}

func (m mapObject) set(k string, v json.RawMessage) { m[k] = v }
func (m mapObject) del(k string)                    { delete(m, k) }
