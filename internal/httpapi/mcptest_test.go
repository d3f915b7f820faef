package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/httpapi"
)

// fakeTester is an MCP client that records what it was asked to connect to.
type fakeTester struct {
	mu        sync.Mutex
	url       string
	transport string
	headers   map[string]string
	timeout   time.Duration
	calls     int
	err       error
}

func (f *fakeTester) test(_ context.Context, url, transport string, headers map[string]string, timeout time.Duration) ([]httpapi.MCPTool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.url, f.transport, f.headers, f.timeout = url, transport, maps.Clone(headers), timeout
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	desc := "Looks up a customer"
	return []httpapi.MCPTool{
		{Name: "lookup_customer", Description: &desc, InputSchema: json.RawMessage(`{"type":"object","properties":{"phone":{"type":"string"}}}`)},
		{Name: "ping"},
	}, nil
}

func TestMCPServerTest(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		id := e.must(201, "POST", "/api/v1/mcp-servers", map[string]any{"name": "crm", "url": "https://mcp.example.com/mcp", "transport": "sse", "timeout_seconds": 30,
			"headers": map[string]any{"Authorization": "Bearer stored-token", "X-Tenant": "acme"}}).obj(t, "mcp_server")["id"].(string)
		path := "/api/v1/mcp-servers/" + id + "/test"

		// No MCP client configured: 503 for a known server, 404 otherwise.
		e.do("POST", path, e.keyA, nil).wantError(t, 503, "mcp_test_unavailable", "")
		e.do("POST", path, e.keyB, nil).wantError(t, 404, "not_found", "")

		ft := &fakeTester{}
		e.with(func(d *httpapi.Deps) { d.TestMCP = ft.test })
		r := e.must(200, "POST", path, nil)
		tools := r.list(t, "tools")
		if r.Body["ok"] != true || len(tools) != 2 || r.Body["error"] != nil {
			t.Fatalf("test result = %s", r.Raw)
		}
		if _, ok := r.Body["duration_ms"].(float64); !ok {
			t.Fatalf("duration_ms missing: %s", r.Raw)
		}
		first, second := tools[0].(map[string]any), tools[1].(map[string]any)
		if first["name"] != "lookup_customer" || first["description"] != "Looks up a customer" || dig(first, "input_schema.properties.phone.type") != "string" {
			t.Fatalf("tool = %v", first)
		}
		if v, ok := second["description"]; !ok || v != nil || dig(second, "input_schema.type") != "object" {
			t.Fatalf("tool without description or schema = %v", second)
		}
		stored := map[string]string{"Authorization": "Bearer stored-token", "X-Tenant": "acme"}
		if ft.url != "https://mcp.example.com/mcp" || ft.transport != "sse" || ft.timeout != 30*time.Second || !maps.Equal(ft.headers, stored) {
			t.Fatalf("tester got url=%s transport=%s timeout=%v headers=%v", ft.url, ft.transport, ft.timeout, ft.headers)
		}

		// Headers sent are laid over the stored ones, for this test only.
		e.must(200, "POST", path, map[string]any{"headers": map[string]any{"authorization": "Bearer trial-token", "X-Extra": "1"}})
		want := map[string]string{"authorization": "Bearer trial-token", "X-Tenant": "acme", "X-Extra": "1"}
		if !maps.Equal(ft.headers, want) {
			t.Fatalf("merged headers = %v, want %v", ft.headers, want)
		}
		e.must(200, "POST", path, map[string]any{"headers": nil})
		if !maps.Equal(ft.headers, stored) {
			t.Fatalf("override was stored: %v", ft.headers)
		}
		if m := e.must(200, "GET", "/api/v1/mcp-servers/"+id, nil).obj(t, "mcp_server"); len(m["header_names"].([]any)) != 2 {
			t.Fatalf("server changed by the test: %v", m)
		}

		// A failing server is a 200 with ok false.
		ft.err = errors.New("connect to mcp.example.com: connection refused")
		r = e.must(200, "POST", path, map[string]any{})
		if r.Body["ok"] != false || r.Body["error"] != "connect to mcp.example.com: connection refused" || r.Body["tools"] != nil {
			t.Fatalf("failed test = %s", r.Raw)
		}
		if _, ok := r.Body["duration_ms"].(float64); !ok {
			t.Fatalf("duration_ms missing: %s", r.Raw)
		}

		calls := ft.calls
		e.do("POST", path, e.keyA, map[string]any{"headers": map[string]any{"Host": "evil"}}).wantError(t, 400, "", "headers.Host")
		e.do("POST", path, e.keyA, map[string]any{"headers": []any{"x"}}).wantError(t, 400, "", "headers")
		e.do("POST", path, e.keyA, map[string]any{"url": "https://other.example.com"}).wantError(t, 400, "unknown_field", "url")
		e.do("POST", path, e.keyB, map[string]any{}).wantError(t, 404, "not_found", "")
		e.do("POST", "/api/v1/mcp-servers/00000000-0000-4000-8000-000000000000/test", e.keyA, nil).wantError(t, 404, "not_found", "")
		e.do("POST", "/api/v1/mcp-servers/not-a-uuid/test", e.keyA, nil).wantError(t, 404, "not_found", "")
		if ft.calls != calls {
			t.Fatal("refused requests reached the tester")
		}
	})
}
