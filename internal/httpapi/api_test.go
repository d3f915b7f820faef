package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/apikey"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/store"
)

func TestHealth(t *testing.T) {
	forEachEngine(t, httpapi.Config{Version: "9.9.9"}, func(t *testing.T, e *env) {
		r := e.do("GET", "/api/v1/health", "", nil)
		if r.Status != 200 || r.Body["status"] != "ok" || r.Body["version"] != "9.9.9" {
			t.Fatalf("health = %d %s", r.Status, r.Raw)
		}
		db := r.obj(t, "checks")["database"].(map[string]any)
		if db["status"] != "ok" {
			t.Fatalf("database check = %v", db)
		}
		if _, err := time.Parse(time.RFC3339, r.Body["timestamp"].(string)); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAuth(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		e.do("GET", "/api/v1/assistants", "", nil).wantError(t, 401, "unauthorized", "")
		e.do("GET", "/api/v1/assistants", "fl_live_notarealkeyatall0000", nil).wantError(t, 401, "unauthorized", "")
		r := e.do("GET", "/api/v1/assistants", "", nil)
		if r.Body["error"] != "Invalid or missing API key" || r.Header.Get("WWW-Authenticate") == "" {
			t.Fatalf("401 body = %s", r.Raw)
		}
		if err := e.db.RevokeAPIKey(context.Background(), apikey.Derive(e.keys, e.keyB).ID); err != nil {
			t.Fatal(err)
		}
		e.do("GET", "/api/v1/assistants", e.keyB, nil).wantError(t, 401, "api_key_revoked", "")
		e.must(200, "GET", "/api/v1/assistants", nil)
	})
}

func TestRateLimit(t *testing.T) {
	forEachEngine(t, httpapi.Config{RateLimit: 3}, func(t *testing.T, e *env) {
		for i := 0; i < 3; i++ {
			r := e.must(200, "GET", "/api/v1/assistants", nil)
			if r.Header.Get("X-RateLimit-Limit") != "3" || r.Header.Get("X-RateLimit-Remaining") != fmt.Sprint(2-i) || r.Header.Get("X-RateLimit-Reset") == "" {
				t.Fatalf("request %d headers = %v", i, r.Header)
			}
		}
		r := e.do("GET", "/api/v1/assistants", e.keyA, nil)
		r.wantError(t, 429, "rate_limit_exceeded", "")
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After = %q", ra)
		}
		// Another key has its own budget.
		if r := e.do("GET", "/api/v1/assistants", e.keyB, nil); r.Status != 200 {
			t.Fatalf("org B limited by org A's use: %d", r.Status)
		}
	})
}

func TestBodyErrors(t *testing.T) {
	forEachEngine(t, httpapi.Config{MaxBodyBytes: 2048}, func(t *testing.T, e *env) {
		big := `{"name":"` + strings.Repeat("x", 4096) + `"}`
		e.do("POST", "/api/v1/assistants", e.keyA, big).wantError(t, 413, "body_too_large", "")
		e.do("POST", "/api/v1/assistants", e.keyA, `{"name":`).wantError(t, 400, "invalid_json", "")
		e.do("POST", "/api/v1/assistants", e.keyA, `[1,2]`).wantError(t, 400, "invalid_json", "object")
		e.do("POST", "/api/v1/assistants", e.keyA, `null`).wantError(t, 400, "invalid_json", "")
		e.do("POST", "/api/v1/assistants", e.keyA, ``).wantError(t, 400, "invalid_request", "")
		e.do("POST", "/api/v1/assistants", e.keyA, `{"name": 5}`).wantError(t, 400, "", "name")
		e.do("POST", "/api/v1/numbers", e.keyA, `{"phone_number": true}`).wantError(t, 400, "", "phone_number")
		e.do("POST", "/api/v1/numbers", e.keyA, `{"phone_number": "+31201234567", "colour": "red"}`).wantError(t, 400, "unknown_field", "colour")
		e.do("GET", "/api/v1/nope", e.keyA, nil).wantError(t, 404, "route_not_found", "")
		r := e.do("PUT", "/api/v1/assistants", e.keyA, `{}`)
		r.wantError(t, 405, "method_not_allowed", "")
		if r.Header.Get("Allow") != "GET, POST" {
			t.Fatalf("Allow = %q", r.Header.Get("Allow"))
		}
		// Nothing was stored by the failed requests.
		if l := e.must(200, "GET", "/api/v1/assistants", nil).list(t, "assistants"); len(l) != 0 {
			t.Fatalf("failed creates stored %d assistants", len(l))
		}
	})
}

func TestAssistants(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		r := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Receptionist", "id": "ignored", "org_id": "ignored", "created_at": "2001-01-01T00:00:00Z"})
		a := r.obj(t, "assistant")
		id := a["id"].(string)
		if id == "ignored" || a["org_id"] != e.orgA || a["is_active"] != true || a["name"] != "Receptionist" || strings.HasPrefix(a["created_at"].(string), "2001") {
			t.Fatalf("created assistant = %s", r.Raw)
		}
		if a["llm_config"].(map[string]any)["provider"] != "openai" || a["tts_config"].(map[string]any)["provider"] != "elevenlabs" || a["stt_config"].(map[string]any)["provider"] != "deepgram" {
			t.Fatalf("defaults not applied: %s", r.Raw)
		}
		// PATCH changes only what is sent; null clears a nullable field.
		e.must(200, "PATCH", "/api/v1/assistants/"+id, map[string]any{"first_message": "Hello!", "business_name": "Acme"})
		r = e.must(200, "PATCH", "/api/v1/assistants/"+id, map[string]any{"business_name": nil, "tts_config": map[string]any{"provider": "11labs", "voice_id": "ukiwGs47sHyibruHJ1vg"}})
		a = r.obj(t, "assistant")
		if a["first_message"] != "Hello!" || a["business_name"] != nil || a["name"] != "Receptionist" || a["tts_config"].(map[string]any)["provider"] != "elevenlabs" {
			t.Fatalf("after PATCH = %s", r.Raw)
		}
		// The /agents alias is the same resource.
		if got := e.must(200, "GET", "/api/v1/agents/"+id, nil).obj(t, "assistant"); got["first_message"] != "Hello!" {
			t.Fatalf("agents alias = %v", got)
		}
		if l := e.must(200, "GET", "/api/v1/agents", nil).list(t, "assistants"); len(l) != 1 {
			t.Fatalf("agents list = %v", l)
		}
		// Validation: several problems, each named.
		r = e.do("PATCH", "/api/v1/assistants/"+id, e.keyA, map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-9", "temperature": 3}})
		r.wantError(t, 400, "", "llm_config.model")
		if d, _ := r.Body["details"].([]any); len(d) < 2 || !strings.Contains(fmt.Sprint(d), "llm_config.temperature") {
			t.Fatalf("details = %s", r.Raw)
		}
		e.do("POST", "/api/v1/assistants", e.keyA, map[string]any{}).wantError(t, 400, "missing_field", "name")
		e.do("POST", "/api/v1/assistants", e.keyA, map[string]any{"name": "x", "llm_config": map[string]any{"provider": "xai_realtime", "model": "grok-voice-think-fast-2.0"}, "tts_config": map[string]any{"provider": "elevenlabs", "voice_id": "v"}}).wantError(t, 400, "", "tts_config")
		rt := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Realtime", "llm_config": map[string]any{"provider": "xai_realtime", "model": "grok-voice-think-fast-2.0"}}).obj(t, "assistant")
		if rt["tts_config"] != nil {
			t.Fatalf("realtime assistant got tts_config %v", rt["tts_config"])
		}
		// MCP tools must reference a server of the organization.
		e.do("POST", "/api/v1/assistants", e.keyA, map[string]any{"name": "x", "llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4",
			"tools": []any{map[string]any{"type": "mcp", "mcp_server_id": "4f4c3c57-7a0e-4d3c-9d3c-6f0d5f1c2b3a"}}}}).wantError(t, 400, "invalid_reference", "llm_config.tools")
		e.must(200, "DELETE", "/api/v1/assistants/"+id, nil)
		e.do("GET", "/api/v1/assistants/"+id, e.keyA, nil).wantError(t, 404, "not_found", "")
		e.do("GET", "/api/v1/assistants/not-a-uuid", e.keyA, nil).wantError(t, 404, "not_found", "")
	})
}

func TestToolAndAnalysisTemplates(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		// The flat docs generation is stored in the newest shape.
		r := e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "check_availability", "description": "Checks", "type": "function",
			"url": "https://crm.example.com/tools", "async": false, "parameters": map[string]any{"type": "object"}})
		tt := r.obj(t, "tool_template")
		if tt["tool_type"] != "function" || tt["tool_config"].(map[string]any)["url"] != "https://crm.example.com/tools" {
			t.Fatalf("tool template = %s", r.Raw)
		}
		id := tt["id"].(string)
		r = e.must(200, "PATCH", "/api/v1/tool-templates/"+id, map[string]any{"description": nil})
		if r.obj(t, "tool_template")["description"] != nil || r.obj(t, "tool_template")["name"] != "check_availability" {
			t.Fatalf("PATCH = %s", r.Raw)
		}
		ct := e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "Hang up", "tool_type": "endCall", "tool_config": map[string]any{}}).obj(t, "tool_template")
		if ct["tool_type"] != "end_call" {
			t.Fatalf("camelCase tool type stored as %v", ct["tool_type"])
		}
		if l := e.must(200, "GET", "/api/v1/tool-templates", nil).list(t, "tool_templates"); len(l) != 2 {
			t.Fatalf("list = %v", l)
		}
		e.do("POST", "/api/v1/tool-templates", e.keyA, map[string]any{"name": "x", "tool_type": "teleport", "tool_config": map[string]any{}}).wantError(t, 400, "", "tool_type")

		at := e.must(201, "POST", "/api/v1/analysis-templates", map[string]any{"name": "Sentiment", "system_prompt": "Analyse.", "user_prompt": "{transcript}",
			"schema": map[string]any{"type": "object"}}).obj(t, "analysis_template")
		for i := 0; i < 2; i++ {
			e.must(201, "POST", "/api/v1/analysis-templates", map[string]any{"name": fmt.Sprint("T", i), "schema": map[string]any{"type": "object"},
				"messages": []any{map[string]any{"role": "system", "content": "x"}}, "min_messages_threshold": 3})
		}
		r = e.must(200, "GET", "/api/v1/analysis-templates?limit=2&offset=1", nil)
		if len(r.list(t, "data")) != 2 || len(r.list(t, "analysis_templates")) != 2 || r.Body["total"] != float64(3) || r.Body["limit"] != float64(2) {
			t.Fatalf("analysis list = %s", r.Raw)
		}
		e.do("GET", "/api/v1/analysis-templates?limit=101", e.keyA, nil).wantError(t, 400, "", "limit")
		e.do("POST", "/api/v1/analysis-templates", e.keyA, map[string]any{"name": "x"}).wantError(t, 400, "", "schema")
		e.must(200, "DELETE", "/api/v1/analysis-templates/"+at["id"].(string), nil)
	})
}

func TestNumbersAndTrunks(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Sales", "business_name": "Acme"}).obj(t, "assistant")["id"].(string)
		tr := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "PBX", "host": "pbx.example.com", "port": 5080, "username": "u", "password": "trunk-pass-123"})
		if tr.obj(t, "trunk")["address"] != "pbx.example.com:5080" || tr.obj(t, "sip_trunk")["id"] != tr.obj(t, "trunk")["id"] {
			t.Fatalf("trunk = %s", tr.Raw)
		}
		if strings.Contains(string(tr.Raw), "trunk-pass-123") || strings.Contains(string(tr.Raw), "password") {
			t.Fatalf("trunk response leaks the password: %s", tr.Raw)
		}
		trunk := tr.obj(t, "trunk")["id"].(string)
		t2 := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "Carrier", "provider": "telnyx", "address": "sip.telnyx.com", "transport": "tls", "media_encryption": "SRTP", "auth_username": "a", "auth_password": "b"}).obj(t, "trunk")
		if t2["transport"] != "tls" || t2["provider"] != "telnyx" || t2["auth_username"] != "a" || t2["media_encryption"] != "srtp" {
			t.Fatalf("trunk 2 = %v", t2)
		}
		if m := tr.obj(t, "trunk")["media_encryption"]; m != "none" {
			t.Fatalf("default media_encryption = %v, want none", m)
		}
		e.do("POST", "/api/v1/sip-trunks", e.keyA, map[string]any{"name": "x", "address": "h.example.com", "media_encryption": "zrtp"}).wantError(t, 400, "", "media_encryption")
		if a := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "Port", "address": "sip.example.com", "port": 5070}).obj(t, "trunk")["address"]; a != "sip.example.com:5070" {
			t.Fatalf("address+port = %v", a)
		}
		e.do("POST", "/api/v1/sip-trunks", e.keyA, map[string]any{"name": "x", "address": "sip.example.com:5060", "port": 5070}).wantError(t, 400, "", "port")
		e.do("POST", "/api/v1/sip-trunks", e.keyA, map[string]any{"name": "x", "address": "not a host!"}).wantError(t, 400, "", "address")
		e.do("POST", "/api/v1/sip-trunks", e.keyA, map[string]any{"name": "x", "address": "h.example.com", "transport": "sctp"}).wantError(t, 400, "", "transport")
		if l := e.must(200, "GET", "/api/v1/sip-trunks", nil).list(t, "trunks"); len(l) != 3 {
			t.Fatalf("trunks = %v", l)
		}

		r := e.must(201, "POST", "/api/v1/numbers", map[string]any{"number": "+31 20 123 4567", "name": "Main", "agent_id": asst, "transfer_trunk_id": trunk})
		n := r.obj(t, "number")
		if n["phone_number"] != "+31201234567" || n["assistant_id"] != asst || n["agent_id"] != asst || n["agent_name"] != "Sales" || n["business_name"] != "Acme" || n["transfer_trunk_name"] != "PBX" || n["is_active"] != true {
			t.Fatalf("number = %s", r.Raw)
		}
		id := n["id"].(string)
		e.do("POST", "/api/v1/numbers", e.keyA, map[string]any{"phone_number": "+31201234567"}).wantError(t, 409, "number_exists", "phone_number")
		e.do("POST", "/api/v1/numbers", e.keyA, map[string]any{"phone_number": "0201234567"}).wantError(t, 400, "", "phone_number")
		e.do("POST", "/api/v1/numbers", e.keyA, map[string]any{"phone_number": "+31201234568", "assistant_id": asst, "agent_id": trunk}).wantError(t, 400, "", "agent_id")
		// Another organization's assistant cannot be attached.
		foreign := e.do("POST", "/api/v1/assistants", e.keyB, map[string]any{"name": "B"}).obj(t, "assistant")["id"].(string)
		e.do("PATCH", "/api/v1/numbers/"+id, e.keyA, map[string]any{"assistant_id": foreign}).wantError(t, 400, "invalid_reference", "assistant_id")
		r = e.must(200, "PATCH", "/api/v1/numbers/"+id, map[string]any{"assistant_id": nil})
		if n := r.obj(t, "number"); n["assistant_id"] != nil || n["name"] != "Main" || n["transfer_trunk_id"] != trunk {
			t.Fatalf("after unassign = %s", r.Raw)
		}
		e.must(200, "DELETE", "/api/v1/sip-trunks/"+trunk, nil)
		if n := e.must(200, "GET", "/api/v1/numbers/"+id, nil).obj(t, "number"); n["transfer_trunk_id"] != nil {
			t.Fatalf("deleted trunk still on number: %v", n)
		}
		e.must(200, "DELETE", "/api/v1/numbers/"+id, nil)
		if l := e.must(200, "GET", "/api/v1/numbers", nil).list(t, "numbers"); len(l) != 0 {
			t.Fatalf("numbers = %v", l)
		}
	})
}

func TestVoices(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		r := e.must(200, "GET", "/api/v1/voices", nil)
		byProvider := map[string]int{}
		for _, v := range r.list(t, "voices") {
			byProvider[v.(map[string]any)["provider"].(string)]++
		}
		if byProvider["local"] != 1 || byProvider["xai"] != 26 || byProvider["openai_live"] != 5 || byProvider["google"] != 30 {
			t.Fatalf("voices by provider = %v", byProvider)
		}
	})
}

func TestBYOK(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		r := e.must(200, "GET", "/api/v1/byok", nil)
		keys := r.obj(t, "byok_keys")
		if len(keys) != 10 || keys["openai_secret_id"] != nil {
			t.Fatalf("byok = %s", r.Raw)
		}
		r = e.must(200, "POST", "/api/v1/byok", map[string]any{"provider": "openai", "api_key": "sk-live-secret-value-1"})
		if r.Body["success"] != true || r.obj(t, "byok_keys")["openai_secret_id"] == nil || strings.Contains(string(r.Raw), "sk-live") {
			t.Fatalf("POST /byok = %s", r.Raw)
		}
		e.do("POST", "/api/v1/byok", e.keyA, map[string]any{"provider": "acme", "api_key": "x"}).wantError(t, 400, "", "provider")
		e.do("POST", "/api/v1/byok", e.keyA, map[string]any{"provider": "openai"}).wantError(t, 400, "missing_field", "api_key")
		if e.do("GET", "/api/v1/byok", e.keyB, nil).obj(t, "byok_keys")["openai_secret_id"] != nil {
			t.Fatal("org B sees org A's key")
		}
		e.do("POST", "/api/v1/byok/config", e.keyA, map[string]any{"provider": "deepgram", "config": map[string]any{"x": 1}}).wantError(t, 400, "", "provider")
		e.must(200, "POST", "/api/v1/byok/config", map[string]any{"provider": "openai", "config": map[string]any{"base_url": "http://vllm:8000/v1", "organization": "o1"}})
		r = e.must(200, "POST", "/api/v1/byok/config", map[string]any{"provider": "openai", "config": map[string]any{"organization": nil, "project": "p"}})
		if c := r.obj(t, "config"); c["base_url"] != "http://vllm:8000/v1" || c["project"] != "p" || c["organization"] != nil {
			t.Fatalf("merged config = %s", r.Raw)
		}
		if g := e.must(200, "GET", "/api/v1/byok/config", nil); g.obj(t, "openai")["project"] != "p" {
			t.Fatalf("GET config = %s", g.Raw)
		}
		e.do("POST", "/api/v1/byok/config", e.keyA, map[string]any{"provider": "openai", "config": map[string]any{"api_key": "sk"}}).wantError(t, 400, "", "config.api_key")
		r = e.must(200, "DELETE", "/api/v1/byok", map[string]any{"provider": "openai"})
		if r.obj(t, "byok_keys")["openai_secret_id"] != nil {
			t.Fatalf("after delete = %s", r.Raw)
		}
		e.do("DELETE", "/api/v1/byok?provider=openai", e.keyA, nil).wantError(t, 404, "not_found", "")
	})
}

func TestOrganizations(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "A"})
		r := e.must(200, "GET", "/api/v1/organizations", nil)
		if r.Body["id"] != e.orgA || r.Body["minutes_balance"] != float64(100) || r.Body["active_agents"] != float64(1) || r.Body["children"] != nil {
			t.Fatalf("org = %s", r.Raw)
		}
		c := e.must(201, "POST", "/api/v1/organizations", map[string]any{"name": "Client BV"})
		key, _ := c.Body["api_key"].(string)
		if !strings.HasPrefix(key, "fl_live_") || c.Body["parent_org_id"] != e.orgA {
			t.Fatalf("created org = %s", c.Raw)
		}
		child := e.do("GET", "/api/v1/organizations", key, nil)
		if child.Body["id"] != c.Body["id"] || child.Body["parent_org_id"] != e.orgA {
			t.Fatalf("child's own view = %s", child.Raw)
		}
		// A child cannot create grandchildren; a parent id other than your own is refused.
		e.do("POST", "/api/v1/organizations", key, map[string]any{"name": "Grandchild"}).wantError(t, 403, "forbidden", "")
		e.do("POST", "/api/v1/organizations", e.keyA, map[string]any{"name": "x", "parent_org_id": e.orgB}).wantError(t, 400, "", "parent_org_id")
		r = e.must(200, "GET", "/api/v1/organizations?include_children=true", nil)
		if kids := r.list(t, "children"); len(kids) != 1 || kids[0].(map[string]any)["name"] != "Client BV" {
			t.Fatalf("children = %s", r.Raw)
		}
		e.do("GET", "/api/v1/organizations?include_children=maybe", e.keyA, nil).wantError(t, 400, "", "include_children")
		r = e.must(200, "PATCH", "/api/v1/organizations", map[string]any{"content_retention_days": 90, "metadata_retention_days": 365})
		if r.Body["content_retention_days"] != float64(90) || r.Body["metadata_retention_days"] != float64(365) {
			t.Fatalf("retention = %s", r.Raw)
		}
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"content_retention_days": 365, "metadata_retention_days": 90}).wantError(t, 400, "", "content_retention_days")
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"content_retention_days": 45, "metadata_retention_days": 90}).wantError(t, 400, "", "content_retention_days")
		e.do("PATCH", "/api/v1/organizations", e.keyA, map[string]any{"content_retention_days": 30}).wantError(t, 400, "missing_field", "metadata_retention_days")
		acct := e.must(200, "GET", "/api/v1/account", nil)
		if acct.Body["company_name"] != "Org A" || acct.Header.Get("Deprecation") != "true" {
			t.Fatalf("account = %s", acct.Raw)
		}
	})
}

func TestCampaigns(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Caller"}).obj(t, "assistant")["id"].(string)
		r := e.must(201, "POST", "/api/v1/campaigns", map[string]any{"name": "Q4", "agent_id": asst, "system_message_template": "You are calling {{name}}.",
			"leads": []any{map[string]any{"phone_number": "+31612345678", "variables": map[string]any{"name": "John"}}}})
		c := r.obj(t, "campaign")
		if c["status"] != "draft" || c["schedule_start_time"] != "09:00:00" || c["schedule_end_time"] != "17:00:00" || c["timezone"] != "Europe/Amsterdam" || c["total_leads"] != float64(1) {
			t.Fatalf("campaign = %s", r.Raw)
		}
		id := c["id"].(string)
		e.do("POST", "/api/v1/campaigns", e.keyA, map[string]any{"name": "x", "agent_id": asst, "timezone": "Mars/Olympus"}).wantError(t, 400, "", "timezone")
		e.do("POST", "/api/v1/campaigns", e.keyA, map[string]any{"name": "x", "agent_id": asst, "schedule_start_time": "9am"}).wantError(t, 400, "", "schedule_start_time")
		e.do("POST", "/api/v1/campaigns", e.keyA, map[string]any{"name": "x"}).wantError(t, 400, "missing_field", "agent_id")
		e.do("POST", "/api/v1/campaigns", e.keyA, map[string]any{"name": "x", "agent_id": nil}).wantError(t, 400, "missing_field", "agent_id")
		e.do("POST", "/api/v1/campaigns", e.keyA, map[string]any{"name": "x", "assistant_id": "nope"}).wantError(t, 400, "", "agent_id")
		e.do("POST", "/api/v1/campaigns", e.keyA, map[string]any{"name": "x", "agent_id": asst, "leads": []any{map[string]any{"phone_number": "12"}}}).wantError(t, 400, "", "leads[0].phone_number")
		// Scheduling needs a number with a SIP trunk.
		e.do("PATCH", "/api/v1/campaigns/"+id, e.keyA, map[string]any{"status": "scheduled"}).wantError(t, 400, "", "SIP trunk")
		trunk := e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "T", "provider": "p", "address": "sip.example.com"}).obj(t, "trunk")["id"].(string)
		e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234567", "transfer_trunk_id": trunk})
		if st := e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"status": "scheduled"}).obj(t, "campaign")["status"]; st != "scheduled" {
			t.Fatalf("status = %v", st)
		}
		e.do("PATCH", "/api/v1/campaigns/"+id, e.keyA, map[string]any{"status": "completed"}).wantError(t, 400, "", "status")
		lead := e.must(201, "POST", "/api/v1/campaigns/"+id+"/leads", map[string]any{"phone_number": "+31612345679", "variables": map[string]any{"name": "Jan"}}).obj(t, "lead")
		if lead["status"] != "pending" || lead["attempts"] != float64(0) || lead["campaign_id"] != id {
			t.Fatalf("lead = %v", lead)
		}
		r = e.must(200, "GET", "/api/v1/campaigns/"+id+"/leads", nil)
		leads := r.list(t, "leads")
		if len(leads) != 2 || leads[0].(map[string]any)["phone_number"] != "+31612345678" || r.obj(t, "pagination")["total"] != float64(2) {
			t.Fatalf("leads = %s", r.Raw)
		}
		if err := e.db.SetLeadStatus(context.Background(), e.orgA, lead["id"].(string), 2 /* calling */, nil); err != nil {
			t.Fatal(err)
		}
		e.do("DELETE", "/api/v1/campaigns/"+id+"/leads/"+lead["id"].(string), e.keyA, nil).wantError(t, 409, "lead_calling", "")
		e.must(200, "DELETE", "/api/v1/campaigns/"+id+"/leads/"+leads[0].(map[string]any)["id"].(string), nil)
		e.must(200, "PATCH", "/api/v1/campaigns/"+id, map[string]any{"status": "cancelled"})
		e.do("PATCH", "/api/v1/campaigns/"+id, e.keyA, map[string]any{"name": "again"}).wantError(t, 409, "campaign_final", "")
		e.do("POST", "/api/v1/campaigns/"+id+"/leads", e.keyA, map[string]any{"phone_number": "+31612345670"}).wantError(t, 409, "campaign_final", "")
		if l := e.must(200, "GET", "/api/v1/campaigns", nil).list(t, "campaigns"); len(l) != 1 {
			t.Fatalf("campaigns = %v", l)
		}
	})
}

func TestMCPServers(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		r := e.must(201, "POST", "/api/v1/mcp-servers", map[string]any{"name": "crm", "url": "HTTPS://MCP.Example.com:443/mcp", "headers": map[string]any{"Authorization": "Bearer mcp-secret-token"}})
		m := r.obj(t, "mcp_server")
		if m["url"] != "https://mcp.example.com/mcp" || m["transport"] != "streamable_http" || m["timeout_seconds"] != float64(20) || fmt.Sprint(m["header_names"]) != "[Authorization]" || strings.Contains(string(r.Raw), "mcp-secret-token") {
			t.Fatalf("mcp server = %s", r.Raw)
		}
		id := m["id"].(string)
		e.do("POST", "/api/v1/mcp-servers", e.keyA, map[string]any{"name": "crm", "url": "https://other.example.com"}).wantError(t, 409, "duplicate_name", "")
		for _, bad := range []string{"http://mcp.example.com", "https://127.0.0.1/mcp", "https://10.0.0.8", "https://localhost:8443", "https://user:pw@mcp.example.com", "https://169.254.169.254/latest"} {
			e.do("POST", "/api/v1/mcp-servers", e.keyA, map[string]any{"name": "x", "url": bad}).wantError(t, 400, "", "url")
		}
		e.do("POST", "/api/v1/mcp-servers", e.keyA, map[string]any{"name": "x", "url": "https://a.example.com", "timeout_seconds": 61}).wantError(t, 400, "", "timeout_seconds")
		// Moving to another host without re-sending headers is refused.
		e.do("PATCH", "/api/v1/mcp-servers/"+id, e.keyA, map[string]any{"url": "https://evil.example.net/mcp"}).wantError(t, 400, "headers_required", "headers")
		r = e.must(200, "PATCH", "/api/v1/mcp-servers/"+id, map[string]any{"timeout_seconds": 30})
		if m := r.obj(t, "mcp_server"); m["timeout_seconds"] != float64(30) || fmt.Sprint(m["header_names"]) != "[Authorization]" {
			t.Fatalf("after PATCH = %s", r.Raw)
		}
		// In use by an assistant: 409 until the tool is removed.
		asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "Uses", "llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4",
			"tools": []any{map[string]any{"type": "mcp", "mcp_server_id": id}}}}).obj(t, "assistant")["id"].(string)
		e.do("DELETE", "/api/v1/mcp-servers/"+id, e.keyA, nil).wantError(t, 409, "mcp_server_in_use", "")
		e.must(200, "PATCH", "/api/v1/assistants/"+asst, map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4"}})
		r = e.must(200, "PATCH", "/api/v1/mcp-servers/"+id, map[string]any{"headers": map[string]any{}})
		if fmt.Sprint(r.obj(t, "mcp_server")["header_names"]) != "[]" {
			t.Fatalf("headers not removed: %s", r.Raw)
		}
		e.must(200, "DELETE", "/api/v1/mcp-servers/"+id, nil)
	})
}

var validWorkflow = map[string]any{
	"version": 1, "entry_node": "greet",
	"nodes": []any{
		map[string]any{"id": "greet", "type": "conversation", "instructions": "Greet the caller."},
		map[string]any{"id": "bye", "type": "end", "first_line": "Goodbye!"},
	},
	"edges": []any{map[string]any{"from": "greet", "to": "bye", "description": "when done"}},
}

func TestWorkflows(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		r := e.must(201, "POST", "/api/v1/workflows", map[string]any{"name": "Flow", "definition": validWorkflow})
		w := r.obj(t, "workflow")
		id := w["id"].(string)
		if w["is_active"] != true || w["definition"].(map[string]any)["entry_node"] != "greet" {
			t.Fatalf("workflow = %s", r.Raw)
		}
		l := e.must(200, "GET", "/api/v1/workflows", nil).list(t, "workflows")
		if s := l[0].(map[string]any); s["node_count"] != float64(2) || s["edge_count"] != float64(1) || s["entry_node"] != "greet" || s["definition"] != nil {
			t.Fatalf("summary = %v", s)
		}
		bad := map[string]any{"version": 1, "entry_node": "nope", "nodes": []any{map[string]any{"id": "Start", "type": "conversation"}}}
		r = e.do("POST", "/api/v1/workflows", e.keyA, map[string]any{"name": "Bad", "definition": bad})
		r.wantError(t, 400, "invalid_workflow_definition", "")
		if d, _ := r.Body["details"].([]any); len(d) < 3 {
			t.Fatalf("details = %s", r.Raw)
		}
		rt := map[string]any{"version": 1, "entry_node": "a", "nodes": []any{map[string]any{"id": "a", "type": "conversation", "instructions": "x", "llm_config": map[string]any{"provider": "xai_realtime"}}}}
		e.do("POST", "/api/v1/workflows", e.keyA, map[string]any{"name": "RT", "definition": rt}).wantError(t, 400, "realtime_provider_not_allowed_per_node", "")
		e.must(200, "PATCH", "/api/v1/workflows/"+id, map[string]any{"is_active": false})
		n := e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234567", "workflow_id": id}).obj(t, "number")
		if n["workflow_name"] != "Flow" {
			t.Fatalf("number = %v", n)
		}
		e.do("DELETE", "/api/v1/workflows/"+id, e.keyA, nil).wantError(t, 409, "workflow_in_use", "")
		e.must(200, "PATCH", "/api/v1/numbers/"+n["id"].(string), map[string]any{"workflow_id": nil})
		e.must(200, "DELETE", "/api/v1/workflows/"+id, nil)
	})
}

func TestCallsAndUsage(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ctx := context.Background()
		base := time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC)
		plus := "call-_+31623731537_XqaQxRRgAzYc"
		for i, st := range []call.Status{call.StatusEnded, call.StatusInProgress, call.StatusFailed} {
			c := &store.Call{OrgID: e.orgA, Status: st, Direction: call.Inbound, CreatedAt: base.Add(time.Duration(i) * time.Hour), CallerPhone: ptr("+31623731537")}
			if i == 0 {
				c.ID, c.Messages, c.AgentName = plus, json.RawMessage(`[{"role":"assistant","content":"Hello"}]`), ptr("Sales")
			}
			if err := e.db.CreateCall(ctx, c); err != nil {
				t.Fatal(err)
			}
			if err := e.db.CreateUsageLog(ctx, &store.UsageLog{OrgID: e.orgA, CallID: &c.ID, DurationSec: 90, CallType: "phone", CreatedAt: c.CreatedAt}); err != nil {
				t.Fatal(err)
			}
		}
		r := e.must(200, "GET", "/api/v1/calls/"+url.PathEscape(plus), nil)
		if r.Body["id"] != plus || r.Body["agent_name"] != "Sales" || r.Body["assistant_name"] != "Sales" || r.Body["direction"] != "inbound" {
			t.Fatalf("call = %s", r.Raw)
		}
		if r := e.must(200, "GET", "/api/v1/calls/call-_%2B31623731537_XqaQxRRgAzYc", nil); r.Body["id"] != plus {
			t.Fatalf("%%2B id = %s", r.Raw)
		}
		e.do("GET", "/api/v1/calls/"+url.PathEscape(plus), e.keyB, nil).wantError(t, 404, "not_found", "")
		r = e.must(200, "GET", "/api/v1/calls?status=ended", nil)
		if len(r.list(t, "calls")) != 1 || r.obj(t, "pagination")["total"] != float64(1) {
			t.Fatalf("ended calls = %s", r.Raw)
		}
		r = e.must(200, "GET", "/api/v1/calls?limit=1&offset=1&start_date=2026-11-01T00:00:00Z&end_date=2026-11-01", nil)
		if p := r.obj(t, "pagination"); p["total"] != float64(3) || p["limit"] != float64(1) || p["offset"] != float64(1) || len(r.list(t, "calls")) != 1 {
			t.Fatalf("paged calls = %s", r.Raw)
		}
		e.do("GET", "/api/v1/calls?status=exploded", e.keyA, nil).wantError(t, 400, "", "status")
		e.do("GET", "/api/v1/calls?limit=1001", e.keyA, nil).wantError(t, 400, "", "limit")
		e.do("GET", "/api/v1/calls?start_date=yesterday", e.keyA, nil).wantError(t, 400, "", "start_date")
		r = e.must(200, "GET", "/api/v1/usage?limit=2", nil)
		s := r.obj(t, "summary")
		if len(r.list(t, "logs")) != 2 || s["total_calls"] != float64(3) || s["total_duration_seconds"] != float64(270) || s["total_duration_minutes"] != 4.5 {
			t.Fatalf("usage = %s", r.Raw)
		}
		if l := e.do("GET", "/api/v1/usage", e.keyB, nil).list(t, "logs"); len(l) != 0 {
			t.Fatalf("org B sees usage: %v", l)
		}
	})
}

func ptr[T any](v T) *T { return &v }

var _ = http.MethodGet
