package docsecret

import (
	"encoding/json"
	"testing"

	"github.com/parley-voice/parley/internal/store"
)

func TestCleanKeepExtract(t *testing.T) {
	for _, tc := range []struct {
		name        string
		kind        store.Kind
		doc         string // as sent or merged, before validation
		stored      Secrets
		wantCleared []string
		wantBody    string // after Clean, Keep and Extract (top-level keys sorted)
		wantSecrets Secrets
	}{{
		name:        "assistant: new secrets taken out, markers set",
		kind:        store.Assistants,
		doc:         `{"webhook_secret":"h","llm_config":{"tools":[{"type":"function","function":{"name":"a"},"server":{"url":"u","secret":"s"}},{"type":"end_call"}]}}`,
		wantBody:    `{"llm_config":{"tools":[{"type":"function","function":{"name":"a"},"server":{"url":"u","secret_set":true}},{"type":"end_call"}]},"webhook_secret_set":true}`,
		wantSecrets: Secrets{"webhook_secret": "h", "tools.a": "s"},
	}, {
		name:        "assistant: markers echoed back, nothing sent: stored secrets kept",
		kind:        store.Assistants,
		doc:         `{"webhook_secret_set":true,"llm_config":{"tools":[{"type":"function","function":{"name":"a"},"server":{"url":"u","secret_set":true}}]}}`,
		stored:      Secrets{"webhook_secret": "h", "tools.a": "s", "tools.gone": "x"},
		wantBody:    `{"llm_config":{"tools":[{"type":"function","function":{"name":"a"},"server":{"url":"u","secret_set":true}}]},"webhook_secret_set":true}`,
		wantSecrets: Secrets{"webhook_secret": "h", "tools.a": "s"},
	}, {
		name:        "assistant: null and empty clear",
		kind:        store.Assistants,
		doc:         `{"webhook_secret":null,"llm_config":{"tools":[{"name":"a","url":"u","server":{"secret":""}}]}}`,
		stored:      Secrets{"webhook_secret": "h", "tools.a": "s"},
		wantCleared: []string{"tools.a", "webhook_secret"},
		wantBody:    `{"llm_config":{"tools":[{"name":"a","url":"u","server":{"secret_set":false}}]},"webhook_secret_set":false}`,
		wantSecrets: Secrets{},
	}, {
		name:        "assistant: a new value replaces the stored one",
		kind:        store.Assistants,
		doc:         `{"webhook_secret":"new","llm_config":{"tools":[{"type":"function","function":{"name":"a"},"server":{"url":"u","secret":"new-s"}}]}}`,
		stored:      Secrets{"webhook_secret": "h", "tools.a": "s"},
		wantBody:    `{"llm_config":{"tools":[{"type":"function","function":{"name":"a"},"server":{"url":"u","secret_set":true}}]},"webhook_secret_set":true}`,
		wantSecrets: Secrets{"webhook_secret": "new", "tools.a": "new-s"},
	}, {
		name:        "template: server_secret null clears",
		kind:        store.ToolTemplates,
		doc:         `{"tool_type":"function","server_secret":null,"tool_config":{"url":"u","secret_set":true}}`,
		stored:      Secrets{"tool_config": "t"},
		wantCleared: []string{"tool_config"},
		wantBody:    `{"tool_config":{"url":"u","secret_set":false},"tool_type":"function"}`,
		wantSecrets: Secrets{},
	}, {
		name:        "template: kept while it has a url",
		kind:        store.ToolTemplates,
		doc:         `{"tool_type":"function","tool_config":{"url":"u","secret_set":true}}`,
		stored:      Secrets{"tool_config": "t"},
		wantBody:    `{"tool_config":{"url":"u","secret_set":true},"tool_type":"function"}`,
		wantSecrets: Secrets{"tool_config": "t"},
	}, {
		name:        "template: dropped without a url, none on end_call",
		kind:        store.ToolTemplates,
		doc:         `{"tool_type":"end_call","tool_config":{}}`,
		stored:      Secrets{"tool_config": "t"},
		wantBody:    `{"tool_config":{},"tool_type":"end_call"}`,
		wantSecrets: Secrets{},
	}, {
		name:        "workflow: by node and tool name",
		kind:        store.Workflows,
		doc:         `{"definition":{"nodes":[{"id":"n1","tools":[{"name":"a","url":"u","server":{"secret_set":true}}]},{"id":"n2","tools":[{"name":"a","url":"u","server":{"secret":"fresh"}}]},{"id":"end"}]}}`,
		stored:      Secrets{"nodes.n1.tools.a": "s1", "nodes.n2.tools.a": "s2"},
		wantBody:    `{"definition":{"nodes":[{"id":"n1","tools":[{"name":"a","url":"u","server":{"secret_set":true}}]},{"id":"n2","tools":[{"name":"a","url":"u","server":{"secret_set":true}}]},{"id":"end"}]}}`,
		wantSecrets: Secrets{"nodes.n1.tools.a": "s1", "nodes.n2.tools.a": "fresh"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var doc map[string]json.RawMessage
			if err := json.Unmarshal([]byte(tc.doc), &doc); err != nil {
				t.Fatal(err)
			}
			cleared := Clean(tc.kind, doc)
			if len(cleared) != len(tc.wantCleared) {
				t.Errorf("cleared = %v, want %v", cleared, tc.wantCleared)
			}
			for _, c := range tc.wantCleared {
				if !cleared[c] {
					t.Errorf("cleared = %v, want %v", cleared, tc.wantCleared)
				}
			}
			// (validation would run here)
			Keep(tc.kind, doc, tc.stored, cleared)
			got, _ := Extract(tc.kind, doc)
			body, _ := json.Marshal(doc)
			if string(body) != tc.wantBody {
				t.Errorf("body = %s\nwant   %s", body, tc.wantBody)
			}
			a, _ := json.Marshal(got)
			b, _ := json.Marshal(tc.wantSecrets)
			if string(a) != string(b) {
				t.Errorf("secrets = %s, want %s", a, b)
			}
			// Extract of an extracted document changes nothing.
			if s, changed := Extract(tc.kind, doc); changed || len(s) != 0 {
				t.Errorf("second Extract changed the document (%v)", s)
			}
		})
	}
}
