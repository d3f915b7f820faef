// Package workflow validates and models workflow definitions (contract v1,
// spec §7.17): graphs of conversation, tool, transfer and end nodes joined by
// edges, which drive calls on the phone numbers a workflow is attached to.
//
// Validate checks a definition sent to POST /workflows or PATCH /workflows/{id},
// reporting every problem at once as an Invalid *fault.Error whose Details are
// full sentences with dotted paths ("definition.nodes[2].id must match …").
// On success it returns the canonical definition to store and return to
// clients. Decode turns a stored canonical definition into the typed model a
// call engine executes.
//
// Provider configuration on conversation nodes (llm_config, stt_config,
// tts_config, tools) is not validated here but by a NodeConfigs, which the
// assistant package implements; this package only places its answers.
package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ContractVersion is the only definition version this package accepts.
const ContractVersion = 1

// NodeType is the kind of a node. The zero value, Unknown, never appears in a
// valid definition.
type NodeType uint8

// The node types of contract v1.
const (
	Unknown      NodeType = iota
	Conversation          // the assistant talks with the caller under the node's instructions
	Tool                  // the platform calls a webhook tool, then follows the single outgoing edge
	Transfer              // the call is handed to a phone number; terminal
	End                   // the call ends after an optional goodbye; terminal
)

var nodeTypeNames = [...]string{"unknown", "conversation", "tool", "transfer", "end"}

func (t NodeType) String() string {
	if int(t) < len(nodeTypeNames) {
		return nodeTypeNames[t]
	}
	return fmt.Sprintf("NodeType(%d)", uint8(t))
}

// ParseNodeType returns the node type named s ("conversation", "tool",
// "transfer" or "end"), or Unknown and false.
func ParseNodeType(s string) (NodeType, bool) {
	for t := Conversation; t <= End; t++ {
		if nodeTypeNames[t] == s {
			return t, true
		}
	}
	return Unknown, false
}

// Terminal reports whether nodes of this type end the workflow (no outgoing edges).
func (t NodeType) Terminal() bool { return t == Transfer || t == End }

// MarshalText encodes a known node type as its name.
func (t NodeType) MarshalText() ([]byte, error) {
	if t == Unknown || int(t) >= len(nodeTypeNames) {
		return nil, fmt.Errorf("workflow: cannot encode node type %v", t)
	}
	return []byte(t.String()), nil
}

// UnmarshalText decodes a node type name; unknown names are an error.
func (t *NodeType) UnmarshalText(b []byte) error {
	v, ok := ParseNodeType(string(b))
	if !ok {
		return fmt.Errorf("workflow: unknown node type %q", b)
	}
	*t = v
	return nil
}

// Definition is a workflow graph in canonical form. Its JSON encoding (field
// order, omitted optionals, "edges" always present) is the canonical
// definition that Validate returns and the API stores.
type Definition struct {
	Version      int     `json:"version"`
	EntryNode    string  `json:"entry_node"`
	GlobalPrompt *string `json:"global_prompt,omitempty"` // prepended to every conversation node's instructions
	Nodes        []Node  `json:"nodes"`
	Edges        []Edge  `json:"edges"`
}

// Node is one step of a workflow. Which fields may be set depends on Type;
// the others are always zero.
type Node struct {
	ID   string   `json:"id"`
	Type NodeType `json:"type"`

	// Conversation: the node's system prompt (required).
	Instructions string `json:"instructions,omitempty"`

	// Tool: the name sent in the tool-calls webhook, an optional webhook URL
	// override and optional static arguments (a JSON object).
	ToolName  string          `json:"tool_name,omitempty"`
	URL       string          `json:"url,omitempty"`
	Arguments json.RawMessage `json:"arguments,omitempty"`

	// Transfer: the E.164 number to transfer to.
	Destination string `json:"destination,omitempty"`

	// Any type: the line spoken on entering the node (conversation: opening
	// line; tool: hold line; transfer: announcement; end: goodbye). Nil means
	// not set, so the engine's default applies; an empty string was set
	// explicitly.
	FirstLine *string `json:"first_line,omitempty"`

	// Conversation: a global node is reachable from every conversation node
	// without edges; GlobalDescription tells the model when to go there.
	Global            bool   `json:"global,omitempty"`
	GlobalDescription string `json:"global_description,omitempty"`

	// Conversation: per-node overrides, as canonicalised by NodeConfigs.
	// Voice and TTSConfig are mutually exclusive.
	LLMConfig json.RawMessage `json:"llm_config,omitempty"`
	Voice     string          `json:"voice,omitempty"`
	TTSConfig json.RawMessage `json:"tts_config,omitempty"`
	STTConfig json.RawMessage `json:"stt_config,omitempty"`
	Tools     json.RawMessage `json:"tools,omitempty"`

	// Any type: builder canvas position ({x?, y?}), kept as given and ignored
	// by the engine.
	UI json.RawMessage `json:"ui,omitempty"`
}

// Edge is a transition between two nodes.
type Edge struct {
	From string `json:"from"`
	To   string `json:"to"`
	// When to take the transition; empty only on edges leaving a tool node.
	Description string `json:"description,omitempty"`
	// Line spoken during the transition. Nil means not set (the engine's
	// default hand-off line); an empty string was set explicitly.
	Message *string `json:"message,omitempty"`
}

// Node returns the node with the given id.
func (d *Definition) Node(id string) (*Node, bool) {
	for i := range d.Nodes {
		if d.Nodes[i].ID == id {
			return &d.Nodes[i], true
		}
	}
	return nil, false
}

// Outgoing returns the edges leaving the node with the given id, in definition order.
func (d *Definition) Outgoing(id string) []Edge {
	var out []Edge
	for _, e := range d.Edges {
		if e.From == id {
			out = append(out, e)
		}
	}
	return out
}

// Globals returns the global conversation nodes, in definition order.
func (d *Definition) Globals() []*Node {
	var out []*Node
	for i := range d.Nodes {
		if d.Nodes[i].Type == Conversation && d.Nodes[i].Global {
			out = append(out, &d.Nodes[i])
		}
	}
	return out
}

// Decode parses a canonical definition, as returned by Validate and stored.
// It rejects unknown fields and checks the structure the engine relies on
// (version, known node types, an entry conversation node, edges between
// existing nodes) but not the content rules Validate enforces. Its errors
// are plain errors: a stored definition that fails to decode is a bug or
// corruption, not a client mistake.
func Decode(raw json.RawMessage) (*Definition, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var d Definition
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("workflow: decode definition: %w", err)
	}
	if dec.More() {
		return nil, errors.New("workflow: decode definition: trailing data after the definition")
	}
	if d.Version != ContractVersion {
		return nil, fmt.Errorf("workflow: decode definition: unsupported version %d", d.Version)
	}
	ids := make(map[string]NodeType, len(d.Nodes))
	for i, n := range d.Nodes {
		if n.Type == Unknown {
			return nil, fmt.Errorf("workflow: decode definition: node %d (%q) has no type", i, n.ID)
		}
		if _, dup := ids[n.ID]; dup {
			return nil, fmt.Errorf("workflow: decode definition: duplicate node id %q", n.ID)
		}
		ids[n.ID] = n.Type
	}
	if t, ok := ids[d.EntryNode]; !ok || t != Conversation {
		return nil, fmt.Errorf("workflow: decode definition: entry node %q is not a conversation node", d.EntryNode)
	}
	for i, e := range d.Edges {
		_, fromOK := ids[e.From]
		_, toOK := ids[e.To]
		if !fromOK || !toOK {
			return nil, fmt.Errorf("workflow: decode definition: edge %d (%q -> %q) references an unknown node", i, e.From, e.To)
		}
	}
	if d.Edges == nil {
		d.Edges = []Edge{}
	}
	return &d, nil
}

// encode renders d in canonical form: struct field order, compact, and
// without HTML escaping so that instructions keep their "<", ">" and "&".
func encode(d *Definition) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("workflow: encode definition: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}
