package httpapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/store/sqlite"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// TestNoSecretInDatabase creates API keys, BYOK keys, trunk passwords, MCP
// header values, the organization webhook secret, assistants' webhook and
// tool secrets, tool templates' and workflow tools' secrets, then dumps every row of
// every table (and, on SQLite, the raw database and WAL files) and looks for
// each secret in clear text.
func TestNoSecretInDatabase(t *testing.T) {
	engines := map[string]func(t testing.TB) (*store.DB, func() string){
		"sqlite": func(t testing.TB) (*store.DB, func() string) {
			path := filepath.Join(t.TempDir(), "parley.db")
			db, err := sqlite.Open(context.Background(), sqlite.Config{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			if _, err := db.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			return db, func() string {
				var raw strings.Builder
				for _, f := range []string{path, path + "-wal"} {
					b, _ := os.ReadFile(f)
					raw.Write(b)
				}
				return raw.String() + dumpDB(t, db)
			}
		},
	}
	if storetest.PostgresURL(t) != "" {
		engines["postgres"] = func(t testing.TB) (*store.DB, func() string) {
			db := storetest.OpenPostgres(t)
			return db, func() string { return dumpDB(t, db) }
		}
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			db, dump := open(t)
			e := newEnv(t, name, func(testing.TB) *store.DB { return db }, httpapi.Config{})
			secrets := []string{e.keyA, e.keyB}
			child := e.must(201, "POST", "/api/v1/organizations", map[string]any{"name": "Child"})
			secrets = append(secrets, child.Body["api_key"].(string))
			for i, p := range []string{"openai", "deepgram", "elevenlabs"} {
				k := fmt.Sprintf("sk-%s-byok-secret-%d-abcdefghijkl", p, i)
				e.must(200, "POST", "/api/v1/byok", map[string]any{"provider": p, "api_key": k})
				secrets = append(secrets, k)
			}
			e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "t", "provider": "p", "address": "sip.example.com", "auth_username": "user", "auth_password": "trunk-password-XYZ-123"})
			e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "docs", "host": "pbx.example.com", "password": "docs-generation-pass-987"})
			e.must(201, "POST", "/api/v1/mcp-servers", map[string]any{"name": "m", "url": "https://mcp.example.com", "headers": map[string]any{"X-Api-Key": "mcp-header-secret-555"}})
			e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"webhook_url": "https://hooks.example.com/parley", "webhook_secret": "org-webhook-secret-777"})
			secrets = append(secrets, "trunk-password-XYZ-123", "docs-generation-pass-987", "mcp-header-secret-555", "org-webhook-secret-777")
			// Assistants' webhook and tool secrets, tool templates' secrets,
			// on create and on PATCH.
			a := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "a", "webhook_url": "https://hooks.example.com/a", "webhook_secret": "assistant-hook-secret-888",
				"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4", "tools": []any{
					map[string]any{"type": "function", "function": map[string]any{"name": "book"}, "server": map[string]any{"url": "https://tools.example.com/book", "secret": "tool-server-secret-999"}},
					map[string]any{"name": "flat", "description": "d", "url": "https://tools.example.com/flat", "server": map[string]any{"secret": "flat-tool-secret-aaa"}},
				}}}).obj(t, "assistant")
			e.must(200, "PATCH", "/api/v1/assistants/"+a["id"].(string), map[string]any{"webhook_secret": "assistant-hook-rotated-bbb"})
			tt := e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "old", "function_definition": map[string]any{"name": "old", "description": "d"},
				"server_url": "https://tools.example.com/old", "server_secret": "template-server-secret-ccc"}).obj(t, "tool_template")
			e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "new", "tool_type": "function", "tool_config": map[string]any{"url": "https://tools.example.com/new", "secret": "template-config-secret-ddd"}})
			e.must(200, "PATCH", "/api/v1/tool-templates/"+tt["id"].(string), map[string]any{"server_secret": "template-rotated-secret-eee"})
			e.must(201, "POST", "/api/v1/workflows", map[string]any{"name": "wf", "definition": map[string]any{"version": 1, "entry_node": "greet",
				"nodes": []any{
					map[string]any{"id": "greet", "type": "conversation", "instructions": "Hi.", "tools": []any{map[string]any{"name": "lookup", "description": "d", "url": "https://tools.example.com/wf", "server": map[string]any{"secret": "workflow-tool-secret-fff"}}}},
					map[string]any{"id": "bye", "type": "end"},
				},
				"edges": []any{map[string]any{"from": "greet", "to": "bye", "description": "when done"}}}})
			secrets = append(secrets, "workflow-tool-secret-fff", "assistant-hook-secret-888", "tool-server-secret-999", "flat-tool-secret-aaa", "assistant-hook-rotated-bbb",
				"template-server-secret-ccc", "template-config-secret-ddd", "template-rotated-secret-eee")
			text := dump()
			if !strings.Contains(text, "sip.example.com") || !strings.Contains(text, "mcp.example.com") || !strings.Contains(text, "tools.example.com/book") || !strings.Contains(text, "tools.example.com/new") {
				t.Fatal("dump does not contain the rows it should (sanity check failed)")
			}
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("secret %q found in clear text in the database", s)
				}
			}
		})
	}
}

func dumpDB(t testing.TB, db *store.DB) string {
	t.Helper()
	text, err := db.Dump(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return text
}
