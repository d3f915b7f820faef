// Package docsecret keeps the secrets inside configuration documents sealed
// at rest and write-only: an assistant's webhook_secret and its function
// tools' server.secret, a tool template's tool_config.secret (SDK-OLD's
// server_secret), and the server.secret of the tools of a workflow's
// conversation nodes.
//
// The stored body keeps only markers saying whether each secret is set
// (webhook_secret_set on the assistant, secret_set on a tool's server and on
// a function template's tool_config); the values travel together as one
// JSON object sealed with internal/secret into the row's secret column,
// bound to organization, table, field "secrets" and row id. The API renders
// the stored body as it is, so no response carries a secret. The voice
// engine calls Reveal to get the body back with the secrets in clear.
//
// Rows written before sealing existed keep their secrets in the body; Seal
// Stored, run at startup after the SQL migrations (which cannot seal: they
// do not have the master key), moves them into the sealed column.
package docsecret

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// Keys seals and opens values (*secret.Keyring satisfies it).
type Keys interface {
	Seal(plaintext []byte, b secret.Binding) string
	Open(sealed string, b secret.Binding) ([]byte, error)
}

var _ Keys = (*secret.Keyring)(nil)

// Secrets are a document's secrets in clear, by slot: "webhook_secret",
// "tools.<function name>" (an assistant's function tool), "tool_config" (a
// tool template) or "nodes.<node id>.tools.<function name>" (a tool of a
// workflow's conversation node).
type Secrets map[string]string

const (
	slotWebhook  = "webhook_secret"
	slotTemplate = "tool_config"
	toolPrefix   = "tools."

	markWebhook = "webhook_secret_set"
	markSecret  = "secret_set"
)

// Kinds are the document kinds whose secrets this package keeps.
var Kinds = []store.Kind{store.Assistants, store.ToolTemplates, store.Workflows}

// Has reports whether documents of kind k have secrets kept here.
func Has(k store.Kind) bool {
	return k == store.Assistants || k == store.ToolTemplates || k == store.Workflows
}

// Binding is where the sealed secrets of row id live.
func Binding(k store.Kind, orgID, id string) secret.Binding {
	return secret.Binding{OrgID: orgID, Table: k.String(), Field: "secrets", RowID: id}
}

// Seal returns s sealed for row id, or nil when s is empty.
func Seal(keys Keys, k store.Kind, orgID, id string, s Secrets) (*string, error) {
	if len(s) == 0 {
		return nil, nil
	}
	plain, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode %s secrets: %w", k.Noun(), err)
	}
	sealed := keys.Seal(plain, Binding(k, orgID, id))
	return &sealed, nil
}

// Open returns the sealed secrets of d (none when its secret column is empty).
func Open(keys Keys, d *store.Doc) (Secrets, error) {
	s := Secrets{}
	if d.Secret == nil || !Has(d.Kind) {
		return s, nil
	}
	plain, err := keys.Open(*d.Secret, Binding(d.Kind, d.OrgID, d.ID))
	if err != nil {
		return nil, fmt.Errorf("open the secrets of %s %s: %w", d.Kind.Noun(), d.ID, err)
	}
	if err := json.Unmarshal(plain, &s); err != nil {
		return nil, fmt.Errorf("read the secrets of %s %s: %w", d.Kind.Noun(), d.ID, err)
	}
	return s, nil
}

// Clean prepares a document the client sent (on PATCH: laid over the stored
// one) for validation: it drops the markers, which are output only, and the
// secrets sent as null or "", which clear them. It returns the slots cleared.
func Clean(k store.Kind, doc map[string]json.RawMessage) map[string]bool {
	cleared := map[string]bool{}
	if k == store.Assistants {
		delete(doc, markWebhook)
		if raw, ok := doc[slotWebhook]; ok && empty(raw) {
			doc[slotWebhook] = json.RawMessage("null")
			cleared[slotWebhook] = true
		}
	}
	switch k {
	case store.Assistants, store.Workflows:
		forServers(k, doc, func(slot string, srv *object) {
			srv.del(markSecret)
			if raw, ok := srv.get("secret"); ok && empty(raw) {
				srv.del("secret")
				cleared[slot] = true
			}
		})
	case store.ToolTemplates:
		if raw, ok := doc["server_secret"]; ok && empty(raw) {
			delete(doc, "server_secret")
			cleared[slotTemplate] = true
		}
		if cfg, ok := objectOf(doc["tool_config"]); ok {
			cfg.del(markSecret)
			if raw, ok := cfg.get("secret"); ok && empty(raw) {
				cfg.del("secret")
				cleared[slotTemplate] = true
			}
			doc["tool_config"] = cfg.raw()
		}
	}
	return cleared
}

// Keep puts the stored secrets back into a validated canonical document
// wherever the slot still exists (the assistant; a function tool of the
// same name with a server; a function template with a url), the client sent
// no new value and did not clear it: a PATCH that does not send a secret
// keeps it.
func Keep(k store.Kind, canon map[string]json.RawMessage, stored Secrets, cleared map[string]bool) {
	keep := func(slot string, cur json.RawMessage, has bool) (json.RawMessage, bool) {
		v, ok := stored[slot]
		if !ok || cleared[slot] || (has && !empty(cur)) {
			return nil, false
		}
		b, _ := json.Marshal(v)
		return b, true
	}
	if k == store.Assistants {
		if v, ok := keep(slotWebhook, canon[slotWebhook], true); ok {
			canon[slotWebhook] = v
		}
	}
	switch k {
	case store.Assistants, store.Workflows:
		forServers(k, canon, func(slot string, srv *object) {
			cur, has := srv.get("secret")
			if v, ok := keep(slot, cur, has); ok {
				srv.set("secret", v)
			}
		})
	case store.ToolTemplates:
		cfg, ok := objectOf(canon["tool_config"])
		if !ok || string(canon["tool_type"]) != `"function"` {
			return
		}
		if _, hasURL := cfg.get("url"); !hasURL {
			return
		}
		cur, has := cfg.get("secret")
		if v, ok := keep(slotTemplate, cur, has); ok {
			cfg.set("secret", v)
			canon["tool_config"] = cfg.raw()
		}
	}
}

// Extract takes the secrets out of a canonical document, in place, and
// marks each slot with whether a secret is set. A slot already marked and
// without a secret keeps its marker, so Extract of an extracted document
// changes nothing: changed reports whether it took a secret out or added a
// marker.
func Extract(k store.Kind, doc map[string]json.RawMessage) (s Secrets, changed bool) {
	s = Secrets{}
	// take moves the secret out of the container's key into s[slot] and
	// sets the marker.
	take := func(slot, key, mark string, get func(string) (json.RawMessage, bool), set func(string, json.RawMessage), del func(string)) {
		raw, has := get(key)
		_, marked := get(mark)
		if !has && marked {
			return
		}
		var v string
		if has {
			_ = json.Unmarshal(raw, &v)
			del(key)
		}
		if v != "" {
			s[slot] = v
		}
		set(mark, jsonBool(v != ""))
		changed = true
	}
	if k == store.Assistants {
		m := mapObject(doc)
		take(slotWebhook, slotWebhook, markWebhook, m.get, m.set, m.del)
	}
	switch k {
	case store.Assistants, store.Workflows:
		forServers(k, doc, func(slot string, srv *object) {
			take(slot, "secret", markSecret, srv.get, srv.set, srv.del)
		})
	case store.ToolTemplates:
		cfg, ok := objectOf(doc["tool_config"])
		if !ok || string(doc["tool_type"]) != `"function"` {
			return s, false
		}
		take(slotTemplate, "secret", markSecret, cfg.get, cfg.set, cfg.del)
		doc["tool_config"] = cfg.raw()
	}
	return s, changed
}

// Reveal returns d's body with its sealed secrets back in place and no
// markers: the document as the client wrote it, for the voice engine and for
// validating it again as a transient assistant. Secrets still in the body
// (a row not sealed yet) stay as they are.
func Reveal(keys Keys, d *store.Doc) (json.RawMessage, error) {
	if !Has(d.Kind) {
		return d.Body, nil
	}
	s, err := Open(keys, d)
	if err != nil {
		return nil, err
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(d.Body, &doc); err != nil {
		return nil, fmt.Errorf("decode %s %s: %w", d.Kind.Noun(), d.ID, err)
	}
	Clean(d.Kind, doc)
	Keep(d.Kind, doc, s, nil)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", d.Kind.Noun(), d.ID, err)
	}
	return bytes.TrimSpace(buf.Bytes()), nil
}

// forTools calls fn on every function tool (one with a name) of a document
// with its slot: an assistant's llm_config.tools, or the tools of each node
// of a workflow's definition. It writes the tools fn changed back into doc.
// Anything that is not the expected shape is left alone: the validator
// reports it.
func forTools(k store.Kind, doc map[string]json.RawMessage, fn func(slot string, tool *object)) {
	switch k {
	case store.Assistants:
		if cfg, ok := objectOf(doc["llm_config"]); ok {
			if raw, ok := cfg.get("tools"); ok {
				cfg.set("tools", eachTool(raw, func(name string, tool *object) { fn(toolPrefix+name, tool) }))
				doc["llm_config"] = cfg.raw()
			}
		}
	case store.Workflows:
		def, ok := objectOf(doc["definition"])
		if !ok {
			return
		}
		nodesRaw, _ := def.get("nodes")
		var nodes []json.RawMessage
		if json.Unmarshal(nodesRaw, &nodes) != nil {
			return
		}
		for i, n := range nodes {
			node, ok := objectOf(n)
			if !ok {
				continue
			}
			var id string
			idRaw, _ := node.get("id")
			raw, hasTools := node.get("tools")
			if json.Unmarshal(idRaw, &id) != nil || id == "" || !hasTools {
				continue
			}
			node.set("tools", eachTool(raw, func(name string, tool *object) { fn("nodes."+id+"."+toolPrefix+name, tool) }))
			nodes[i] = node.raw()
		}
		if b, err := json.Marshal(nodes); err == nil {
			def.set("nodes", b)
			doc["definition"] = def.raw()
		}
	}
}

// forServers calls fn on the server object of every function tool of doc
// that has one (see forTools), and writes what fn made of it back.
func forServers(k store.Kind, doc map[string]json.RawMessage, fn func(slot string, srv *object)) {
	forTools(k, doc, func(slot string, tool *object) {
		srv, ok := tool.object("server")
		if !ok {
			return
		}
		fn(slot, &srv)
		tool.set("server", srv.raw())
	})
}

// eachTool calls fn on every tool object that has a function name in a
// tools array, and returns the array with the tools fn changed.
func eachTool(raw json.RawMessage, fn func(name string, tool *object)) json.RawMessage {
	var tools []json.RawMessage
	if json.Unmarshal(raw, &tools) != nil || tools == nil {
		return raw
	}
	for i, t := range tools {
		tool, ok := objectOf(t)
		if !ok {
			continue
		}
		name := toolName(tool)
		if name == "" {
			continue
		}
		fn(name, &tool)
		tools[i] = tool.raw()
	}
	b, err := json.Marshal(tools)
	if err != nil {
		return raw
	}
	return b
}

// toolName is a function tool's name in the flat or the nested shape.
func toolName(tool object) string {
	var name string
	if raw, ok := tool.get("name"); ok && json.Unmarshal(raw, &name) == nil && name != "" {
		return name
	}
	if fn, ok := tool.object("function"); ok {
		if raw, ok := fn.get("name"); ok {
			_ = json.Unmarshal(raw, &name)
		}
	}
	return name
}

// empty reports whether raw is null or "".
func empty(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null" || string(raw) == `""`
}

func jsonBool(b bool) json.RawMessage {
	if b {
		return json.RawMessage("true")
	}
	return json.RawMessage("false")
}

// errNotObject is returned by parseObject for anything but a JSON object.
var errNotObject = errors.New("not a JSON object")
