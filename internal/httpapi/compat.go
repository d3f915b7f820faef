package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"
	"strings"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Older generations of the API read fields the newest shape no longer has
// (spec §7.3, §8.15, §7.14, §15). Responses carry the newest shape plus
// those fields, derived from the stored document; docs/compatibility.md
// lists every spelling accepted and answered.

// member is one JSON object member to add to a response object.
type member struct {
	key string
	val any
}

// withMembers returns obj (a JSON object) with ms appended, in order.
func withMembers(obj json.RawMessage, ms ...member) (json.RawMessage, error) {
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[len(obj)-1] != '}' {
		return obj, nil
	}
	out := append(make([]byte, 0, len(obj)+64*len(ms)), obj[:len(obj)-1]...)
	for _, m := range ms {
		v, err := json.Marshal(m.val)
		if err != nil {
			return nil, err
		}
		if out[len(out)-1] != '{' {
			out = append(out, ',')
		}
		out = strconv.AppendQuote(out, m.key)
		out = append(out, ':')
		out = append(out, v...)
	}
	return append(out, '}'), nil
}

// toolTemplateObject renders a tool template in the newest shape
// ({name, description, tool_type, tool_config}) plus the members of the
// older generations: SDK-OLD's function_definition {name, description,
// parameters}, server_url, async and has_server_secret (the secret itself
// is sealed, see docsecret, and never answered), and DOCS-NEW's flat type,
// url and parameters. For end_call and transfer_call templates, which the
// older function-only generations cannot describe, they are null/false.
func toolTemplateObject(d *store.Doc) any {
	var b struct {
		Name     string `json:"name"`
		ToolType string `json:"tool_type"`
		Config   struct {
			Name        *string         `json:"name"`
			Description *string         `json:"description"`
			Parameters  json.RawMessage `json:"parameters"`
			URL         *string         `json:"url"`
			Async       bool            `json:"async"`
			SecretSet   bool            `json:"secret_set"`
		} `json:"tool_config"`
	}
	base := docObject(d)
	if err := json.Unmarshal(d.Body, &b); err != nil {
		return base
	}
	cfg := b.Config
	params := cfg.Parameters
	if len(params) == 0 {
		params = jsonNull
	}
	var def any
	if b.ToolType == "function" {
		def = map[string]any{"name": cfg.Name, "description": cfg.Description, "parameters": params}
	}
	out, err := withMembers(base,
		member{"function_definition", def},
		member{"server_url", cfg.URL},
		member{"async", cfg.Async},
		member{"has_server_secret", cfg.SecretSet},
		member{"type", b.ToolType},
		member{"url", cfg.URL},
		member{"parameters", params},
	)
	if err != nil {
		return base
	}
	return out
}

// toolTemplateSpellings are, per member of the newest tool template, the
// older spellings of it a request may carry (spec §7.3): DOCS-NEW's flat
// members and SDK-OLD's.
var toolTemplateSpellings = []struct {
	newest string   // dotted path in the newest shape
	older  []string // dotted paths of the older spellings
}{
	{"tool_type", []string{"type"}},
	{"tool_config.name", []string{"function_definition.name"}},
	{"tool_config.description", []string{"function_definition.description"}},
	{"tool_config.parameters", []string{"parameters", "function_definition.parameters"}},
	{"tool_config.url", []string{"url", "server_url"}},
	{"tool_config.secret", []string{"server_secret"}},
	{"tool_config.async", []string{"async"}},
}

// toolTypeNames maps the camelCase tool types to the newest spelling.
var toolTypeNames = map[string]string{`"endCall"`: `"end_call"`, `"transferCall"`: `"transfer_call"`}

// checkToolTemplateSpellings refuses a request that gives one member of a
// tool template in two spellings with different values, naming both. Sent
// together with the same value (a template read back and sent again, whose
// answer carries every spelling) they are fine. Only the request is looked
// at: on PATCH an older spelling is meant to change the stored member.
func checkToolTemplateSpellings(sent object) error {
	var f fault.Fields
	for _, sp := range toolTemplateSpellings {
		names := append([]string{sp.newest}, sp.older...)
		var first string
		var firstVal []byte
		for _, name := range names {
			v, ok := memberAt(sent, name)
			if !ok {
				continue
			}
			if t, ok := toolTypeNames[string(v)]; ok {
				v = []byte(t)
			}
			if first == "" {
				first, firstVal = name, v
			} else if !bytes.Equal(v, firstVal) {
				f.Invalidf(name, "and %s are the same member of a tool template with different values; send one of them", first)
			}
		}
	}
	return f.Err()
}

// memberAt returns the compacted value at a dotted path of obj; ok is false
// when it is absent or null.
func memberAt(obj object, path string) ([]byte, bool) {
	cur := obj
	for {
		head, rest, nested := strings.Cut(path, ".")
		raw, ok := cur[head]
		if !ok || isNull(raw) {
			return nil, false
		}
		if !nested {
			var buf bytes.Buffer
			if json.Compact(&buf, raw) != nil {
				return raw, true
			}
			return buf.Bytes(), true
		}
		var next object
		if json.Unmarshal(raw, &next) != nil {
			return nil, false
		}
		cur, path = next, rest
	}
}

// trunkObject renders a SIP trunk in the newest shape plus SDK-OLD's
// outbound_address (the address) and the docs generation's host, port and
// username (spec §8.15).
func trunkObject(d *store.Doc) any {
	var b struct {
		Address      string  `json:"address"`
		Transport    string  `json:"transport"`
		AuthUsername *string `json:"auth_username"`
	}
	base := docObject(d)
	if err := json.Unmarshal(d.Body, &b); err != nil {
		return base
	}
	host, port := splitSIPAddress(b.Address, b.Transport)
	out, err := withMembers(base,
		member{"outbound_address", b.Address},
		member{"host", host},
		member{"port", port},
		member{"username", b.AuthUsername},
	)
	if err != nil {
		return base
	}
	return out
}

// splitSIPAddress splits a stored trunk address (host or host:port, IPv6
// in brackets) into host and port; without a port it is SIP's default for
// the transport (5061 for TLS, 5060 otherwise).
func splitSIPAddress(addr, transport string) (string, int) {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if n, err := strconv.Atoi(p); err == nil {
			return h, n
		}
	}
	if transport == "tls" {
		return addr, 5061
	}
	host := addr
	if len(host) > 1 && host[0] == '[' && host[len(host)-1] == ']' {
		host = host[1 : len(host)-1]
	}
	return host, 5060
}
