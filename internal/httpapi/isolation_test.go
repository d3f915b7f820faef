package httpapi_test

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/store"
)

// TestForeignIDsAnswer404 walks the router: every route with an id in its path
// is called with organization B's key on organization A's resources and must
// answer 404 — the same as an unknown id — and leave the resource untouched.
func TestForeignIDsAnswer404(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ids := e.fixtures(t)
		var checked int
		for _, rt := range e.srv.Routes() {
			if !strings.Contains(rt.Pattern, "{") {
				continue
			}
			parts := strings.Split(rt.Pattern, "/")
			unknownParts := append([]string(nil), parts...)
			for i, p := range parts {
				if !strings.HasPrefix(p, "{") {
					continue
				}
				id, ok := ids[parts[i-1]]
				if !ok {
					t.Fatalf("no fixture for %s %s: add one for %q to fixtures()", rt.Method, rt.Pattern, parts[i-1])
				}
				parts[i] = url.PathEscape(id)
				unknownParts[i] = "00000000-0000-4000-8000-000000000000"
			}
			path, unknown := strings.Join(parts, "/"), strings.Join(unknownParts, "/")
			body := any(nil)
			if rt.Method == "POST" || rt.Method == "PATCH" {
				body = map[string]any{}
			}
			r := e.do(rt.Method, path, e.keyB, body)
			if r.Status != 404 || r.Body["code"] != "not_found" {
				t.Errorf("%s %s with another organization's key = %d %s, want 404 not_found", rt.Method, rt.Pattern, r.Status, r.Raw)
			}
			if u := e.do(rt.Method, unknown, e.keyA, body); u.Status != 404 {
				t.Errorf("%s %s with an unknown id = %d, want 404", rt.Method, unknown, u.Status)
			}
			checked++
		}
		if checked < 25 {
			t.Fatalf("only %d id-bearing routes checked", checked)
		}
		// Nothing of A's was changed or deleted by B's attempts.
		for kind, path := range map[string]string{"assistants": "assistant", "numbers": "number", "campaigns": "campaign", "workflows": "workflow"} {
			if r := e.do("GET", "/api/v1/"+kind+"/"+ids[kind], e.keyA, nil); r.Status != 200 {
				t.Errorf("%s of A after B's attempts: %d", path, r.Status)
			}
		}
		if r := e.do("GET", "/api/v1/calls/"+url.PathEscape(ids["calls"]), e.keyA, nil); r.Status != 200 {
			t.Errorf("call of A after B's attempts: %d", r.Status)
		}
	})
}

// fixtures creates one resource of every kind in organization A and returns
// their ids keyed by the path segment that precedes the id.
func (e *env) fixtures(t *testing.T) map[string]string {
	ids := map[string]string{}
	asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "A"}).obj(t, "assistant")["id"].(string)
	ids["assistants"], ids["agents"] = asst, asst
	ids["tool-templates"] = e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "hang_up", "tool_type": "end_call", "tool_config": map[string]any{}}).obj(t, "tool_template")["id"].(string)
	ids["analysis-templates"] = e.must(201, "POST", "/api/v1/analysis-templates", map[string]any{"name": "x", "system_prompt": "s", "user_prompt": "u", "schema": map[string]any{"type": "object"}}).obj(t, "analysis_template")["id"].(string)
	ids["sip-trunks"] = e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "t", "provider": "p", "address": "sip.example.com"}).obj(t, "trunk")["id"].(string)
	ids["numbers"] = e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234567"}).obj(t, "number")["id"].(string)
	ids["mcp-servers"] = e.must(201, "POST", "/api/v1/mcp-servers", map[string]any{"name": "m", "url": "https://mcp.example.com/mcp"}).obj(t, "mcp_server")["id"].(string)
	ids["workflows"] = e.must(201, "POST", "/api/v1/workflows", map[string]any{"name": "w", "definition": validWorkflow}).obj(t, "workflow")["id"].(string)
	ids["campaigns"] = e.must(201, "POST", "/api/v1/campaigns", map[string]any{"name": "c", "agent_id": asst}).obj(t, "campaign")["id"].(string)
	ids["leads"] = e.must(201, "POST", "/api/v1/campaigns/"+ids["campaigns"]+"/leads", map[string]any{"phone_number": "+31612345678"}).obj(t, "lead")["id"].(string)
	c := &store.Call{ID: "call-_+31623731537_Isolation01", OrgID: e.orgA, Status: call.StatusEnded}
	if err := e.db.CreateCall(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	ids["calls"] = c.ID
	return ids
}
