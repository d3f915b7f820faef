package httpapi

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"

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
