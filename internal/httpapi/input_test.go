package httpapi_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/textrule"
)

// notLists are the collection GETs that answer one object, not a list.
// Every other GET without a trailing {param} is a list and must page.
var notLists = map[string]bool{
	"/api/v1/health": true, "/api/openapi.json": true, "/api/v1/byok": true, "/api/v1/byok/config": true,
	"/api/v1/organizations": true, "/api/v1/account": true,
	"/api/v1/domains": true, "/api/v1/domains/sync": true, // one domain per organization; a Resend account's domains
	"/api/v1/voices":               true, // the server's voices and the providers' catalogs, not stored rows
	"/api/v1/calls/{id}/recording": true, // a WAV file
}

// listMax is the largest page of the lists whose size the HMS reference
// fixes; every other list allows 1000.
var listMax = map[string]int{"/api/v1/campaigns/{id}/leads": 10000, "/api/v1/analysis-templates": 100}

// TestInputRefusals sends what an attacker would to every route, on every
// engine: NUL, broken UTF-8 and lone surrogates in bodies, path parameters
// and query values; over-long values; invalid pagination. No response may be
// a 5xx, and every refusal is a 400 whose param names the field.
func TestInputRefusals(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		ids := e.fixtures(t)
		live := &store.Call{ID: "call-_+31623731537_Live01", OrgID: e.orgA, Status: call.StatusInProgress}
		if err := e.db.CreateCall(context.Background(), live); err != nil {
			t.Fatal(err)
		}
		e.with(func(d *httpapi.Deps) {
			d.Calls = &fakeCalls{}
			d.TestMCP = (&fakeTester{}).test
		})
		statuses := map[int]int{}
		send := func(method, path string, body any) resp {
			t.Helper()
			r := e.do(method, path, e.keyA, body)
			statuses[r.Status]++
			if r.Status >= 500 {
				t.Errorf("%s %.120s: %d %s", method, path, r.Status, r.Raw)
			}
			return r
		}
		refused := func(r resp, what, code, param string) {
			t.Helper()
			if r.Status != 400 || r.Body["param"] != param || (code != "" && r.Body["code"] != code) {
				t.Errorf("%s = %d code %v param %q, want 400 %s naming %q: %.300s", what, r.Status, r.Body["code"], r.Body["param"], code, param, r.Raw)
			}
		}
		// fill puts real ids into a route pattern; bad replaces the named parameter.
		fill := func(pattern, param, bad string) string {
			segs := strings.Split(pattern, "/")
			for i, s := range segs {
				if !strings.HasPrefix(s, "{") {
					continue
				}
				name := strings.Trim(s, "{}")
				switch {
				case name == param:
					segs[i] = bad
				case name == "leadId":
					segs[i] = ids["leads"]
				case segs[i-1] == "calls" && strings.HasSuffix(pattern, "/control"):
					segs[i] = url.PathEscape(live.ID)
				default:
					segs[i] = url.PathEscape(ids[segs[i-1]])
				}
			}
			return strings.Join(segs, "/")
		}

		badText := map[string]string{"nul": "a%00b", "invalid UTF-8": "a%FFb", "encoded surrogate": "%ED%A0%80"}
		for _, rt := range e.srv.Routes() {
			what := rt.Method + " " + rt.Pattern
			// Path parameters.
			for _, s := range strings.Split(rt.Pattern, "/") {
				if !strings.HasPrefix(s, "{") {
					continue
				}
				name := strings.Trim(s, "{}")
				for kind, bad := range badText {
					refused(send(rt.Method, fill(rt.Pattern, name, bad), nil), what+" "+name+" with "+kind, "invalid_text", name)
				}
				refused(send(rt.Method, fill(rt.Pattern, name, strings.Repeat("x", textrule.ParamMax+1)), nil), what+" long "+name, "too_long", name)
			}
			// Query values and names, on every route.
			path := fill(rt.Pattern, "", "")
			refused(send(rt.Method, path+"?limit=%00", nil), what+" ?limit=NUL", "invalid_text", "limit")
			refused(send(rt.Method, path+"?status=ok%C3", nil), what+" ?status=broken", "invalid_text", "status")
			refused(send(rt.Method, path+"?q%FFx=1", nil), what+" broken query name", "invalid_text", `q\xffx`)
			refused(send(rt.Method, path+"?call_id="+strings.Repeat("x", textrule.ParamMax+1), nil), what+" long query value", "too_long", "call_id")
			if rt.Pattern == "/api/v1/calls" {
				var q strings.Builder
				for i := range 5000 {
					fmt.Fprintf(&q, "a%%00%d=1&", i)
				}
				r := send("GET", path+"?"+q.String(), nil)
				if d, _ := r.Body["details"].([]any); r.Status != 400 || len(d) != 10 {
					t.Errorf("5000 bad query names = %d with %d details", r.Status, len(d))
				}
			}

			// Bodies.
			if rt.Method == "POST" || rt.Method == "PATCH" || (rt.Method == "DELETE" && strings.HasSuffix(rt.Pattern, "/byok")) {
				for _, tc := range []struct{ kind, body, code, param string }{
					{"NUL escape", `{"name":"a\u0000b"}`, "invalid_text", "name"},
					{"lone surrogate", `{"name":"x\ud800"}`, "invalid_text", "name"},
					{"invalid UTF-8", "{\"name\":\"a\xffb\"}", "invalid_text", "name"},
					{"900 KB name", `{"name":"` + strings.Repeat("n", 900_000) + `"}`, "too_long", "name"},
					{"nested NUL", `{"llm_config":{"messages":[{"role":"system","content":"ok"},{"role":"user","content":"\u0000"}]}}`, "invalid_text", "llm_config.messages[1].content"},
					{"NUL member name", `{"variables":{"a\u0000":"b"}}`, "invalid_text", `variables.a\x00`},
					{"long description", `{"description":"` + strings.Repeat("d", textrule.TextMax+1) + `"}`, "too_long", "description"},
					{"long prompt", `{"system_prompt":"` + strings.Repeat("p", textrule.PromptMax+1) + `"}`, "too_long", "system_prompt"},
				} {
					refused(send(rt.Method, path, tc.body), what+" body with "+tc.kind, tc.code, tc.param)
				}
			}

			// Pagination, on every list.
			if rt.Method != "GET" || strings.HasSuffix(rt.Pattern, "}") || notLists[rt.Pattern] {
				continue
			}
			most := listMax[rt.Pattern]
			if most == 0 {
				most = 1000
			}
			for _, q := range []struct{ query, param string }{
				{"limit=0", "limit"}, {"limit=-1", "limit"}, {"limit=abc", "limit"}, {"limit=1.5", "limit"},
				{fmt.Sprintf("limit=%d", most+1), "limit"}, {"offset=-1", "offset"}, {"offset=x", "offset"},
				{"offset=99999999999999999999", "offset"}, {"limit=1&offset=%2D1", "offset"},
			} {
				refused(send("GET", path+"?"+q.query, nil), what+"?"+q.query, "invalid_field", q.param)
			}
			r := send("GET", path+fmt.Sprintf("?limit=%d&offset=9223372036854775807", most), nil)
			if r.Status != 200 {
				t.Errorf("%s with the largest offset = %d: %s", what, r.Status, r.Raw)
			}
			r = send("GET", path+"?limit=1&offset=0", nil)
			pg, _ := r.Body["pagination"].(map[string]any)
			if pg == nil && rt.Pattern == "/api/v1/analysis-templates" {
				pg = r.Body
			}
			if r.Status != 200 || pg == nil || pg["limit"] != float64(1) || pg["offset"] != float64(0) || pg["total"] == nil {
				t.Errorf("%s?limit=1 = %d without the pagination asked for: %.300s", what, r.Status, r.Raw)
			}
			for k, v := range r.Body {
				if l, ok := v.([]any); ok && len(l) > 1 {
					t.Errorf("%s?limit=1: %s has %d items", what, k, len(l))
				}
			}
		}
		t.Logf("%s: %d requests, statuses %v", e.engine, sum(statuses), statuses)
	})
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// TestBYOKKeyCharacters: a provider key is sent in HTTP headers on every
// call, so only visible ASCII is stored; anything else is a 400 naming
// api_key and leaves the stored key alone.
func TestBYOKKeyCharacters(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		e.must(200, "POST", "/api/v1/byok", map[string]any{"provider": "openai", "api_key": "  sk-proj_AZaz09-._~+/=:\n"})
		stored := func() string {
			keys, err := e.db.BYOKKeys(context.Background(), e.orgA)
			if err != nil || len(keys) != 1 {
				t.Fatalf("stored keys = %v, %v", keys, err)
			}
			plain, err := e.keys.Open(keys[0].Sealed, secret.Binding{OrgID: e.orgA, Table: "byok_keys", Field: "openai"})
			if err != nil {
				t.Fatal(err)
			}
			return string(plain)
		}
		before := stored()
		if before != "sk-proj_AZaz09-._~+/=:" {
			t.Fatalf("stored key = %q, want it trimmed", before)
		}
		for name, key := range map[string]string{
			"NUL":          "sk-a\x00b",
			"inner space":  "sk-a b",
			"tab":          "sk-a\tb",
			"CR LF":        "sk-a\r\nX-Injected: 1",
			"DEL":          "sk-a\x7fb",
			"non-ASCII":    "sk-é",
			"no-break":     "sk-a\u00a0b",
			"zero width":   "sk-a\u200bb",
			"over 4096":    "sk-" + strings.Repeat("k", 4094),
			"only spaces":  "   ",
			"bell control": "sk-\u0007",
		} {
			r := e.do("POST", "/api/v1/byok", e.keyA, map[string]any{"provider": "openai", "api_key": key})
			if r.Status != 400 || r.Body["param"] != "api_key" {
				t.Errorf("api_key with %s = %d %s, want 400 naming api_key", name, r.Status, r.Raw)
			}
		}
		if after := stored(); after != before {
			t.Fatalf("a refused key replaced the stored one")
		}
		e.must(200, "POST", "/api/v1/byok", map[string]any{"provider": "openai", "api_key": "sk-" + strings.Repeat("k", 4093)})
	})
}

// TestTextLimitsAccepted: values at the limits are stored and read back
// intact; one character more is refused naming the field, on create and on
// PATCH, and the stored document is unchanged.
func TestTextLimitsAccepted(t *testing.T) {
	forEachEngine(t, httpapi.Config{MaxBodyBytes: 2 << 20}, func(t *testing.T, e *env) {
		name := strings.Repeat("é", textrule.NameMax)     // characters, not bytes
		prompt := strings.Repeat("😀", textrule.PromptMax) // 400 KB of 4-byte characters
		a := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": name, "first_message": strings.Repeat("f", textrule.TextMax),
			"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4", "messages": []any{map[string]any{"role": "system", "content": prompt}}}}).obj(t, "assistant")
		id := a["id"].(string)
		got := e.must(200, "GET", "/api/v1/assistants/"+id, nil).obj(t, "assistant")
		msgs := got["llm_config"].(map[string]any)["messages"].([]any)
		if got["name"] != name || msgs[0].(map[string]any)["content"] != prompt {
			t.Fatalf("values at the limits did not round-trip")
		}
		e.do("PATCH", "/api/v1/assistants/"+id, e.keyA, map[string]any{"name": name + "x"}).wantError(t, 400, "too_long", "name")
		e.do("PATCH", "/api/v1/assistants/"+id, e.keyA, map[string]any{"first_message": strings.Repeat("f", textrule.TextMax+1)}).wantError(t, 400, "too_long", "first_message")
		e.do("PATCH", "/api/v1/assistants/"+id, e.keyA, map[string]any{"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4",
			"messages": []any{map[string]any{"role": "system", "content": prompt + "x"}}}}).wantError(t, 400, "too_long", "llm_config.messages[0].content")
		if again := e.must(200, "GET", "/api/v1/assistants/"+id, nil).obj(t, "assistant"); again["name"] != name || again["updated_at"] != got["updated_at"] {
			t.Fatalf("a refused PATCH changed the assistant")
		}
		// Other escapes still decode: tab, newline, quotes, a surrogate pair.
		r := e.must(201, "POST", "/api/v1/assistants", `{"name":"tab\there \"q\" \ud83d\ude00"}`).obj(t, "assistant")
		if r["name"] != "tab\there \"q\" 😀" {
			t.Fatalf("name = %q", r["name"])
		}
	})
}

// TestListPages walks every paged configuration list two items at a time
// and checks the pages join up to the whole list, in creation order.
func TestListPages(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		e.fixtures(t)
		e.fixtures2(t)
		for _, l := range []struct{ path, key string }{
			{"/api/v1/assistants", "assistants"}, {"/api/v1/agents", "assistants"}, {"/api/v1/tool-templates", "tool_templates"},
			{"/api/v1/analysis-templates", "analysis_templates"}, {"/api/v1/sip-trunks", "trunks"}, {"/api/v1/numbers", "numbers"},
			{"/api/v1/mcp-servers", "mcp_servers"}, {"/api/v1/workflows", "workflows"}, {"/api/v1/campaigns", "campaigns"},
		} {
			whole := e.must(200, "GET", l.path, nil)
			all := whole.list(t, l.key)
			if len(all) < 2 {
				t.Fatalf("%s: only %d items to page through", l.path, len(all))
			}
			var joined []any
			for off := 0; off < len(all)+2; off += 2 {
				joined = append(joined, e.must(200, "GET", fmt.Sprintf("%s?limit=2&offset=%d", l.path, off), nil).list(t, l.key)...)
			}
			if fmt.Sprint(joined) != fmt.Sprint(all) {
				t.Errorf("%s: pages of 2 differ from the whole list", l.path)
			}
			total := whole.Body["total"]
			if pg, ok := whole.Body["pagination"].(map[string]any); ok {
				total = pg["total"]
			}
			if total != float64(len(all)) {
				t.Errorf("%s: total %v for %d items", l.path, total, len(all))
			}
		}
		// Child organizations page inside the organization object.
		for _, name := range []string{"C1", "C2", "C3"} {
			e.must(201, "POST", "/api/v1/organizations", map[string]any{"name": name})
		}
		var kids []any
		for off := 0; off < 4; off += 2 {
			r := e.must(200, "GET", fmt.Sprintf("/api/v1/organizations?include_children=true&limit=2&offset=%d", off), nil)
			kids = append(kids, r.list(t, "children")...)
			if pg := r.obj(t, "children_pagination"); pg["total"] != float64(3) || pg["limit"] != float64(2) {
				t.Errorf("children_pagination = %v", pg)
			}
		}
		// Rows created in the same millisecond are ordered by id: compare
		// with the whole list rather than with the creation order.
		all := e.must(200, "GET", "/api/v1/organizations?include_children=true", nil).list(t, "children")
		if len(kids) != 3 || fmt.Sprint(kids) != fmt.Sprint(all) {
			t.Errorf("children pages = %v, whole list %v", kids, all)
		}
		e.do("GET", "/api/v1/organizations?include_children=true&limit=1001", e.keyA, nil).wantError(t, 400, "invalid_field", "limit")
	})
}

// fixtures2 adds a second resource of every paged kind to organization A.
func (e *env) fixtures2(t *testing.T) {
	asst := e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "A2"}).obj(t, "assistant")["id"].(string)
	e.must(201, "POST", "/api/v1/assistants", map[string]any{"name": "A3"})
	e.must(201, "POST", "/api/v1/tool-templates", map[string]any{"name": "hang_up_2", "tool_type": "end_call", "tool_config": map[string]any{}})
	e.must(201, "POST", "/api/v1/analysis-templates", map[string]any{"name": "y", "system_prompt": "s", "user_prompt": "u", "schema": map[string]any{"type": "object"}})
	e.must(201, "POST", "/api/v1/sip-trunks", map[string]any{"name": "t2", "provider": "p", "address": "sip2.example.com"})
	e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234568"})
	e.must(201, "POST", "/api/v1/mcp-servers", map[string]any{"name": "m2", "url": "https://mcp2.example.com/mcp"})
	e.must(201, "POST", "/api/v1/workflows", map[string]any{"name": "w2", "definition": validWorkflow})
	e.must(201, "POST", "/api/v1/campaigns", map[string]any{"name": "c2", "agent_id": asst})
}
