package workflow

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// Identifier rules (spec §7.17 and §11).
var (
	nodeIDPattern   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	functionPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_-]*$`)
	e164Pattern     = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

const (
	maxNodeIDLength   = 41
	maxToolNameLength = 64
)

// Keys each node type accepts; commonKeys apply to every type.
var (
	commonKeys = []string{"id", "type", "first_line", "ui"}
	typeKeys   = map[NodeType][]string{
		Conversation: {"instructions", "global", "global_description", "llm_config", "voice", "tts_config", "stt_config", "tools"},
		Tool:         {"tool_name", "url", "arguments"},
		Transfer:     {"destination"},
		End:          {},
	}
)

// nodeInfo is what the graph checks need to know about a node.
type nodeInfo struct {
	index  int
	typ    NodeType // Unknown when the node's type is missing or invalid
	global bool
}

// node checks definition.nodes[i] and returns what could be read of it. The
// id is "" when it is missing or not a string.
func (c *checker) node(i int, raw json.RawMessage) (Node, bool) {
	path := fmt.Sprintf("definition.nodes[%d]", i)
	o, ok := c.splitObject(path, raw, nil, "")
	if !ok {
		return Node{}, false
	}
	var n Node
	if id, ok := c.str(o, "id", true); ok {
		n.ID = id
		if !nodeIDPattern.MatchString(id) {
			c.fs.Invalidf(o.field("id"), "must match %s (got %q)", nodeIDPattern, id)
		}
		if l := utf8.RuneCountInString(id); l > maxNodeIDLength {
			c.fs.Invalidf(o.field("id"), "must be at most %d characters (got %d)", maxNodeIDLength, l)
		}
	}
	if name, ok := c.str(o, "type", true); ok {
		if n.Type, ok = ParseNodeType(name); !ok {
			c.fs.Invalidf(o.field("type"), "must be one of %s (got %q)", "conversation, tool, transfer, end", name)
		}
	}
	if n.Type == Unknown {
		// Without a type there is no key set to hold the other fields to.
		return n, true
	}
	what := fmt.Sprintf(" of %s %s node", article(n.Type.String()), n.Type)
	for _, k := range o.keys {
		if !slices.Contains(commonKeys, k) && !slices.Contains(typeKeys[n.Type], k) {
			c.fs.Invalidf(o.field(k), "is not a known field%s", what)
		}
	}
	switch n.Type {
	case Conversation:
		c.conversation(o, &n)
	case Tool:
		c.tool(o, &n)
	case Transfer:
		if dest, ok := c.str(o, "destination", true); ok {
			if !e164Pattern.MatchString(dest) {
				c.fs.Invalidf(o.field("destination"), "must be an E.164 phone number matching %s (got %q)", e164Pattern, dest)
			} else {
				n.Destination = dest
			}
		}
	}
	n.FirstLine = c.optStr(o, "first_line")
	n.UI = c.ui(o)
	return n, true
}

func (c *checker) conversation(o *object, n *Node) {
	n.Instructions, _ = c.text(o, "instructions")
	n.Global = c.boolean(o, "global")
	desc, hasDesc := c.str(o, "global_description", false)
	if n.Global {
		switch {
		case !hasDesc && !present(o, "global_description"):
			c.fs.Add(o.field("global_description"), "missing_field", "is required when global is true")
		case hasDesc && strings.TrimSpace(desc) == "":
			c.fs.Invalidf(o.field("global_description"), "must not be empty when global is true")
		}
	}
	n.GlobalDescription = desc
	n.LLMConfig = c.provider(o, "llm_config", "object", NodeConfigs.NodeLLM)
	if voice, ok := c.str(o, "voice", false); ok {
		if strings.TrimSpace(voice) == "" {
			c.fs.Invalidf(o.field("voice"), "must not be empty")
		}
		n.Voice = voice
	}
	n.TTSConfig = c.provider(o, "tts_config", "object", NodeConfigs.TTS)
	if present(o, "voice") && present(o, "tts_config") {
		c.fs.Invalidf(o.field("voice"), "must not be set together with tts_config")
	}
	n.STTConfig = c.provider(o, "stt_config", "object", NodeConfigs.STT)
	n.Tools = c.provider(o, "tools", "array", NodeConfigs.Tools)
}

// urlChecker is implemented by NodeConfigs that vet the URLs Parley will
// call (assistant.Validator with the API's netguard.URLCheck).
type urlChecker interface {
	CheckURL(raw string) error
}

func (c *checker) tool(o *object, n *Node) {
	if name, ok := c.str(o, "tool_name", true); ok {
		if !functionPattern.MatchString(name) {
			c.fs.Invalidf(o.field("tool_name"), "must match %s (got %q)", functionPattern, name)
		}
		if l := utf8.RuneCountInString(name); l > maxToolNameLength {
			c.fs.Invalidf(o.field("tool_name"), "must be at most %d characters (got %d)", maxToolNameLength, l)
		}
		n.ToolName = name
	}
	if u := c.nullStr(o, "url"); u != nil {
		if !isHTTPURL(*u) {
			c.fs.Invalidf(o.field("url"), "must be an absolute http(s) URL (got %q)", *u)
		} else if uc, ok := c.cfg.(urlChecker); ok {
			if err := uc.CheckURL(*u); err != nil {
				c.fs.Invalidf(o.field("url"), "%v", err)
			}
		}
		n.URL = *u
	}
	if raw, ok := o.get("arguments"); ok {
		switch k := kindOf(raw); k {
		case "null": // same as absent
		case "object":
			if _, ok := c.splitObject(o.field("arguments"), raw, nil, ""); ok {
				n.Arguments = compactJSON(raw)
			}
		default:
			c.fs.Invalidf(o.field("arguments"), "must be an object or null (got %s)", k)
		}
	}
}

// ui checks the builder canvas position: an object whose x and y, when
// present, are numbers. Other keys are canvas state the engine ignores and
// are kept as given.
func (c *checker) ui(o *object) json.RawMessage {
	raw, ok := o.get("ui")
	if !ok {
		return nil
	}
	u, ok := c.splitObject(o.field("ui"), raw, nil, "")
	if !ok {
		return nil
	}
	valid := true
	for _, axis := range []string{"x", "y"} {
		if v, ok := u.get(axis); ok && kindOf(v) != "number" {
			c.fs.Invalidf(u.field(axis), "must be a number (got %s)", kindOf(v))
			valid = false
		}
	}
	if !valid {
		return nil
	}
	return compactJSON(raw)
}

func isHTTPURL(s string) bool {
	if strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && u.Hostname() != ""
}

func present(o *object, key string) bool {
	_, ok := o.get(key)
	return ok
}
