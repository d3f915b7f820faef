package httpapi_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/httpapi"
)

// TestURLFieldsUseTheGuardClassifier sends every URL field Parley calls
// later through the same table of refused spellings: each answer is a 400
// whose message names the field; a public https URL is accepted.
func TestURLFieldsUseTheGuardClassifier(t *testing.T) {
	refused := []struct{ url, why string }{
		{"https://127.1/hook", "127.0.0.1, a loopback address"},
		{"https://0177.1/hook", "127.0.0.1, a loopback address"},
		{"https://2130706433/hook", "127.0.0.1, a loopback address"},
		{"https://0x7f000001/hook", "127.0.0.1, a loopback address"},
		{"https://[::ffff:127.0.0.1]/hook", "loopback"},
		{"https://[64:ff9b::7f00:1]/hook", "reserved"},
		{"https://[64:ff9b::a9fe:a9fe]/hook", "reserved"},
		{"https://0xa9fea9fe/latest/meta-data", "cloud metadata"},
		{"https://10.0.0.1/hook", "private"},
		{"https://localhost/hook", "loopback name"},
		{"https://crm.internal/hook", "can only be internal"},
		{"http://hooks.example.com/hook", "must use https"},
	}
	const good = "https://hooks.example.com/parley"
	llm := func(tool map[string]any) map[string]any {
		return map[string]any{"provider": "openai", "model": "gpt-5.4", "tools": []any{tool}}
	}
	fields := []struct {
		field  string // as named in the error
		method string
		path   string
		want   int // status of the accepted request
		body   func(u string) map[string]any
	}{
		{"webhook_url", "POST", "/api/v1/assistants", 201, func(u string) map[string]any {
			return map[string]any{"name": "a", "webhook_url": u}
		}},
		{"llm_config.tools[0].url", "POST", "/api/v1/assistants", 201, func(u string) map[string]any {
			return map[string]any{"name": "a", "llm_config": llm(map[string]any{"name": "lookup", "description": "d", "url": u})}
		}},
		{"llm_config.tools[0].server.url", "POST", "/api/v1/assistants", 201, func(u string) map[string]any {
			return map[string]any{"name": "a", "llm_config": llm(map[string]any{"type": "function", "function": map[string]any{"name": "lookup"}, "server": map[string]any{"url": u}})}
		}},
		{"tool_config.url", "POST", "/api/v1/tool-templates", 201, func(u string) map[string]any {
			return map[string]any{"name": "lookup", "tool_type": "function", "tool_config": map[string]any{"url": u}}
		}},
		{"server_url", "POST", "/api/v1/tool-templates", 201, func(u string) map[string]any {
			return map[string]any{"name": "lookup", "function_definition": map[string]any{"name": "lookup", "description": "d"}, "server_url": u}
		}},
		{"url", "POST", "/api/v1/tool-templates", 201, func(u string) map[string]any {
			return map[string]any{"name": "lookup", "type": "function", "url": u}
		}},
		{"url", "POST", "/api/v1/mcp-servers", 201, func(u string) map[string]any {
			return map[string]any{"name": "m", "url": u}
		}},
		{"definition.nodes[1].url", "POST", "/api/v1/workflows", 201, func(u string) map[string]any {
			return map[string]any{"name": "flow", "definition": map[string]any{"version": 1, "entry_node": "greet",
				"nodes": []any{
					map[string]any{"id": "greet", "type": "conversation", "instructions": "Greet the caller."},
					map[string]any{"id": "look", "type": "tool", "tool_name": "lookup", "url": u},
					map[string]any{"id": "bye", "type": "end"},
				},
				"edges": []any{map[string]any{"from": "greet", "to": "look", "description": "when asked"}, map[string]any{"from": "look", "to": "bye"}}}}
		}},
		{"definition.nodes[0].tools[0].url", "POST", "/api/v1/workflows", 201, func(u string) map[string]any {
			return map[string]any{"name": "flow", "definition": map[string]any{"version": 1, "entry_node": "greet",
				"nodes": []any{
					map[string]any{"id": "greet", "type": "conversation", "instructions": "Greet the caller.", "tools": []any{map[string]any{"name": "lookup", "description": "d", "url": u}}},
					map[string]any{"id": "bye", "type": "end"},
				},
				"edges": []any{map[string]any{"from": "greet", "to": "bye", "description": "when done"}}}}
		}},
		{"webhook_url", "PATCH", "/api/v1/organizations", 200, func(u string) map[string]any {
			return map[string]any{"webhook_url": u}
		}},
	}
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		for i, f := range fields {
			for _, bad := range refused {
				r := e.do(f.method, f.path, e.keyA, f.body(bad.url))
				msg, _ := r.Body["error"].(string)
				if r.Status != 400 || !strings.Contains(msg, f.field+" ") || !strings.Contains(msg, bad.why) {
					t.Errorf("%s %s %s = %s: %d %s; want 400 naming %s and %q", f.method, f.path, f.field, bad.url, r.Status, r.Raw, f.field, bad.why)
				}
			}
			body := f.body(good)
			if n, ok := body["name"].(string); ok {
				body["name"] = fmt.Sprintf("%s-%d", n, i) // names are unique per kind
			}
			if r := e.do(f.method, f.path, e.keyA, body); r.Status != f.want {
				t.Errorf("%s %s %s = %s: %d %s", f.method, f.path, f.field, good, r.Status, r.Raw)
			}
		}
		// A PATCH cannot store what a create refuses.
		id := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "patched"}).obj(t, "assistant")["id"].(string)
		e.do("PATCH", "/api/v1/assistants/"+id, e.keyA, map[string]any{"webhook_url": "https://0x7f.1/"}).wantError(t, 400, "", "webhook_url")
	})
	// Development (PARLEY_ALLOW_PRIVATE_URLS): loopback, private and http
	// pass; metadata and NAT64 of loopback still do not.
	forEachEngine(t, httpapi.Config{AllowPrivateURLs: true}, func(t *testing.T, e *env) {
		e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "dev", "webhook_url": "http://127.1:9000/hook",
			"llm_config": llm(map[string]any{"name": "lookup", "description": "d", "url": "http://10.0.0.1/tool"})})
		e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "lookup", "type": "function", "url": "http://crm.internal/x"})
		e.do("POST", "/api/v1/assistants", e.keyA, map[string]any{"name": "x", "webhook_url": "https://169.254.169.254/"}).wantError(t, 400, "", "webhook_url")
		e.do("POST", "/api/v1/tool-templates", e.keyA, map[string]any{"name": "y", "type": "function", "url": "https://[64:ff9b::7f00:1]/"}).wantError(t, 400, "", "url")
	})
}
