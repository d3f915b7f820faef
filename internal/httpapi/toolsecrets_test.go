package httpapi_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/docsecret"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/store"
)

// TestToolSecretsWriteOnly: an assistant's webhook_secret and its tools'
// server.secret, and a tool template's secret, never come back in a
// response (only *_set markers), are sealed to the row, are kept by a PATCH
// that does not send them (also one that echoes a GET back) and cleared by
// null or "".
func TestToolSecretsWriteOnly(t *testing.T) {
	const hook, toolA, toolB, tmpl = "whsec-assistant-1111", "tool-secret-aaaa-2222", "tool-secret-bbbb-3333", "template-secret-4444"
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		noSecret := func(r resp, what string) {
			t.Helper()
			for _, s := range []string{hook, toolA, toolB, tmpl} {
				if strings.Contains(string(r.Raw), s) {
					t.Fatalf("%s: response carries secret %q: %s", what, s, r.Raw)
				}
			}
		}
		opened := func(k store.Kind, id string) docsecret.Secrets {
			t.Helper()
			d, err := e.db.GetDoc(ctx, k, e.orgA, id)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{hook, toolA, toolB, tmpl} {
				if strings.Contains(string(d.Body), s) {
					t.Fatalf("stored body carries secret %q: %s", s, d.Body)
				}
			}
			s, err := docsecret.Open(e.keys, d)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		tools := []any{
			map[string]any{"type": "function", "function": map[string]any{"name": "book"}, "server": map[string]any{"url": "https://tools.example.com/book", "secret": toolA}},
			map[string]any{"name": "cancel", "description": "d", "url": "https://tools.example.com/cancel", "server": map[string]any{"secret": toolB}},
			map[string]any{"name": "plain", "description": "d", "url": "https://tools.example.com/plain"},
		}
		r := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Sealed", "webhook_url": "https://hooks.example.com/a", "webhook_secret": hook,
			"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4", "tools": tools}})
		noSecret(r, "create")
		a := r.obj(t, "assistant")
		id := a["id"].(string)
		markers := func(a map[string]any) string {
			out := []string{}
			if v, ok := a["webhook_secret_set"].(bool); ok {
				out = append(out, "hook="+map[bool]string{true: "set", false: "unset"}[v])
			}
			if _, ok := a["webhook_secret"]; ok {
				out = append(out, "webhook_secret present")
			}
			lc, _ := a["llm_config"].(map[string]any)
			list, _ := lc["tools"].([]any)
			for _, x := range list {
				srv, _ := x.(map[string]any)["server"].(map[string]any)
				v, ok := srv["secret_set"].(bool)
				out = append(out, map[bool]string{true: "set", false: "unset"}[v && ok])
				if _, ok := srv["secret"]; ok {
					out = append(out, "secret present")
				}
			}
			return strings.Join(out, ",")
		}
		if got := markers(a); got != "hook=set,set,set,unset" {
			t.Fatalf("markers after create = %s: %s", got, r.Raw)
		}
		want := docsecret.Secrets{"webhook_secret": hook, "tools.book": toolA, "tools.cancel": toolB}
		if s := opened(store.Assistants, id); !equal(s, want) {
			t.Fatalf("sealed = %v, want %v", s, want)
		}
		g := e.must(200, "GET", "/api/v1/assistants/"+id, nil)
		noSecret(g, "get")
		l := e.must(200, "GET", "/api/v1/assistants", nil)
		noSecret(l, "list")
		if got := markers(g.obj(t, "assistant")); got != "hook=set,set,set,unset" {
			t.Fatalf("markers on GET = %s", got)
		}

		// PATCH without the secrets keeps them; so does sending the tools
		// again without their secrets, and echoing the GET body back.
		noSecret(e.must(200, "PATCH", "/api/v1/assistants/"+id, map[string]any{"first_message": "Hi"}), "patch")
		lc := g.obj(t, "assistant")["llm_config"]
		noSecret(e.must(200, "PATCH", "/api/v1/assistants/"+id, map[string]any{"llm_config": lc}), "patch llm_config")
		echo := g.obj(t, "assistant")
		for _, k := range []string{"id", "org_id", "created_at", "updated_at"} {
			delete(echo, k)
		}
		noSecret(e.must(200, "PATCH", "/api/v1/assistants/"+id, echo), "patch echo")
		if s := opened(store.Assistants, id); !equal(s, want) {
			t.Fatalf("sealed after PATCHes without secrets = %v, want %v", s, want)
		}
		// A new value replaces; null or "" clears.
		tools[0].(map[string]any)["server"].(map[string]any)["secret"] = nil
		tools[1].(map[string]any)["server"].(map[string]any)["secret"] = "tool-secret-bbbb-rotated"
		r = e.must(200, "PATCH", "/api/v1/assistants/"+id, map[string]any{"webhook_secret": "", "llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4", "tools": tools}})
		if got := markers(r.obj(t, "assistant")); got != "hook=unset,unset,set,unset" {
			t.Fatalf("markers after clearing = %s: %s", got, r.Raw)
		}
		if s := opened(store.Assistants, id); !equal(s, docsecret.Secrets{"tools.cancel": "tool-secret-bbbb-rotated"}) {
			t.Fatalf("sealed after clearing = %v", s)
		}
		e.do("PATCH", "/api/v1/assistants/"+id, e.keyA, map[string]any{"webhook_secret": 5}).wantError(t, 400, "", "webhook_secret")

		// Tool templates: SDK-OLD's server_secret and tool_config.secret.
		r = e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "lookup", "function_definition": map[string]any{"name": "lookup", "description": "d"},
			"server_url": "https://tools.example.com/lookup", "server_secret": tmpl})
		noSecret(r, "template create")
		tt := r.obj(t, "tool_template")
		tid := tt["id"].(string)
		if cfg := tt["tool_config"].(map[string]any); cfg["secret_set"] != true || cfg["secret"] != nil {
			t.Fatalf("template = %s", r.Raw)
		}
		noSecret(e.must(200, "GET", "/api/v1/tool-templates/"+tid, nil), "template get")
		noSecret(e.must(200, "GET", "/api/v1/tool-templates", nil), "template list")
		noSecret(e.must(200, "PATCH", "/api/v1/tool-templates/"+tid, map[string]any{"description": "new"}), "template patch")
		if s := opened(store.ToolTemplates, tid); !equal(s, docsecret.Secrets{"tool_config": tmpl}) {
			t.Fatalf("template sealed = %v", s)
		}
		r = e.must(200, "PATCH", "/api/v1/tool-templates/"+tid, map[string]any{"server_secret": nil})
		if cfg := r.obj(t, "tool_template")["tool_config"].(map[string]any); cfg["secret_set"] != false {
			t.Fatalf("template after clearing = %s", r.Raw)
		}
		if s := opened(store.ToolTemplates, tid); len(s) != 0 {
			t.Fatalf("template sealed after clearing = %v", s)
		}
		r = e.must(200, "PATCH", "/api/v1/tool-templates/"+tid, map[string]any{"tool_config": map[string]any{"url": "https://tools.example.com/v2", "secret": tmpl}})
		if s := opened(store.ToolTemplates, tid); !equal(s, docsecret.Secrets{"tool_config": tmpl}) || r.obj(t, "tool_template")["tool_config"].(map[string]any)["secret_set"] != true {
			t.Fatalf("template sealed after setting again = %v: %s", s, r.Raw)
		}
		// Workflows: the tools of conversation nodes.
		flow := func(secret any) map[string]any {
			srv := map[string]any{"url": "https://tools.example.com/wf"}
			if secret != nil {
				srv["secret"] = secret
			}
			return map[string]any{"version": 1, "entry_node": "greet",
				"nodes": []any{
					map[string]any{"id": "greet", "type": "conversation", "instructions": "Hi.", "tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "lookup"}, "server": srv}}},
					map[string]any{"id": "bye", "type": "end"},
				},
				"edges": []any{map[string]any{"from": "greet", "to": "bye", "description": "when done"}}}
		}
		r = e.must(201, "POST", "/api/v1/workflows", map[string]any{"name": "wf", "definition": flow(toolA)})
		noSecret(r, "workflow create")
		if !strings.Contains(string(r.Raw), `"secret_set":true`) {
			t.Fatalf("workflow = %s", r.Raw)
		}
		wid := r.obj(t, "workflow")["id"].(string)
		noSecret(e.must(200, "GET", "/api/v1/workflows/"+wid, nil), "workflow get")
		e.must(200, "PATCH", "/api/v1/workflows/"+wid, map[string]any{"name": "wf2"})
		e.must(200, "PATCH", "/api/v1/workflows/"+wid, map[string]any{"definition": flow(nil)}) // tools sent again without the secret
		if s := opened(store.Workflows, wid); !equal(s, docsecret.Secrets{"nodes.greet.tools.lookup": toolA}) {
			t.Fatalf("workflow sealed = %v", s)
		}
		e.must(200, "PATCH", "/api/v1/workflows/"+wid, map[string]any{"definition": flow("")})
		if s := opened(store.Workflows, wid); len(s) != 0 {
			t.Fatalf("workflow sealed after clearing = %v", s)
		}

		// Sealed to its row: the value does not open as another row's.
		d, _ := e.db.GetDoc(ctx, store.ToolTemplates, e.orgA, tid)
		d.ID = id
		if _, err := docsecret.Open(e.keys, d); err == nil {
			t.Fatal("a template's sealed secrets opened with another row's binding")
		}
	})
}

func equal(a, b docsecret.Secrets) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
