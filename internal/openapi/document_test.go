package openapi

import (
	"bytes"
	"encoding/json"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// parsed returns the document decoded into generic JSON values.
func parsed(t *testing.T) map[string]any {
	t.Helper()
	raw, err := Document("1.2.3-test")
	if err != nil {
		t.Fatalf("Document: %v", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("document is not JSON: %v", err)
	}
	return doc
}

func obj(t *testing.T, v any, what string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s is %T, want an object", what, v)
	}
	return m
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// walkOperations calls fn for every operation found under paths.
func walkOperations(t *testing.T, doc map[string]any, fn func(path, method string, item, op map[string]any)) {
	t.Helper()
	for path, v := range obj(t, doc["paths"], "paths") {
		item := obj(t, v, path)
		for _, m := range httpMethods {
			if o, ok := item[m]; ok {
				fn(path, m, item, obj(t, o, m+" "+path))
			}
		}
	}
}

// resolve follows a local JSON pointer ("#/a/b") through doc.
func resolve(doc map[string]any, ref string) (any, bool) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, false
	}
	var cur any = doc
	for _, part := range strings.Split(ref[2:], "/") {
		part = strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// deref resolves v when it is a reference object.
func deref(t *testing.T, doc map[string]any, v any) map[string]any {
	t.Helper()
	m := obj(t, v, "value")
	if r, ok := m["$ref"].(string); ok {
		target, found := resolve(doc, r)
		if !found {
			t.Fatalf("unresolved $ref %q", r)
		}
		return obj(t, target, r)
	}
	return m
}

// walk calls fn for every object in v with its JSON path.
func walk(v any, path string, fn func(path string, m map[string]any)) {
	switch x := v.(type) {
	case map[string]any:
		fn(path, x)
		for k, child := range x {
			walk(child, path+"/"+k, fn)
		}
	case []any:
		for i, child := range x {
			walk(child, path+"/"+strconv.Itoa(i), fn)
		}
	}
}

func TestDocumentBasics(t *testing.T) {
	doc := parsed(t)
	if doc["openapi"] != "3.1.0" {
		t.Errorf("openapi = %v, want 3.1.0", doc["openapi"])
	}
	info := obj(t, doc["info"], "info")
	if info["version"] != "1.2.3-test" || info["title"] == "" {
		t.Errorf("info = %v", info)
	}
	servers, _ := doc["servers"].([]any)
	if len(servers) != 1 || obj(t, servers[0], "server")["url"] != "/" {
		t.Errorf("servers = %v, want one entry for /", doc["servers"])
	}
	scheme := obj(t, obj(t, obj(t, doc["components"], "components")["securitySchemes"], "securitySchemes")["bearerAuth"], "bearerAuth")
	if scheme["type"] != "http" || scheme["scheme"] != "bearer" {
		t.Errorf("bearerAuth = %v", scheme)
	}
	sec, _ := doc["security"].([]any)
	if len(sec) != 1 || obj(t, sec[0], "security")["bearerAuth"] == nil {
		t.Errorf("global security = %v, want bearerAuth", doc["security"])
	}
}

func TestDocumentIsDeterministic(t *testing.T) {
	a, errA := Document("v")
	b, errB := Document("v")
	if errA != nil || errB != nil || !bytes.Equal(a, b) {
		t.Fatal("two calls of Document returned different documents")
	}
	if !json.Valid(a) || !bytes.Contains(a, []byte("\n  \"")) {
		t.Error("document is not indented JSON")
	}
}

func TestRefsResolve(t *testing.T) {
	doc := parsed(t)
	n := 0
	walk(doc, "#", func(path string, m map[string]any) {
		if r, ok := m["$ref"]; ok {
			n++
			s, _ := r.(string)
			if _, found := resolve(doc, s); !found {
				t.Errorf("%s: $ref %v does not resolve", path, r)
			}
		}
		if d, ok := m["discriminator"].(map[string]any); ok {
			mapping, _ := d["mapping"].(map[string]any)
			for k, target := range mapping {
				s, _ := target.(string)
				if _, found := resolve(doc, s); !found {
					t.Errorf("%s: discriminator mapping %s → %v does not resolve", path, k, target)
				}
			}
		}
	})
	if n < 100 {
		t.Errorf("only %d $refs found; the walk is broken", n)
	}
}

// TestDiscriminators checks that every discriminated oneOf names a property
// each alternative requires, and that each mapping value's alternative
// accepts its tag value.
func TestDiscriminators(t *testing.T) {
	doc := parsed(t)
	schemas := obj(t, obj(t, doc["components"], "components")["schemas"], "schemas")
	for name, v := range schemas {
		s := obj(t, v, name)
		d, ok := s["discriminator"].(map[string]any)
		if !ok {
			continue
		}
		prop, _ := d["propertyName"].(string)
		alts, _ := s["oneOf"].([]any)
		if len(alts) == 0 {
			t.Errorf("%s: discriminator without oneOf", name)
		}
		for _, a := range alts {
			alt := deref(t, doc, a)
			req, _ := alt["required"].([]any)
			if !slices.Contains(req, any(prop)) {
				t.Errorf("%s: alternative %v does not require %q", name, a, prop)
			}
		}
		for tagValue, target := range obj(t, d["mapping"], name+" mapping") {
			alt := deref(t, doc, map[string]any{"$ref": target})
			p := obj(t, obj(t, alt["properties"], "properties")[prop], prop)
			values, _ := p["enum"].([]any)
			if p["const"] != tagValue && !slices.Contains(values, any(tagValue)) {
				t.Errorf("%s: mapping %q → %v, whose %s does not accept it", name, tagValue, target, prop)
			}
		}
	}
}

// TestRequiredPropertiesExist catches typos in required lists.
func TestRequiredPropertiesExist(t *testing.T) {
	walk(parsed(t), "#", func(path string, m map[string]any) {
		p, ok := m["properties"].(map[string]any)
		if !ok {
			return
		}
		req, _ := m["required"].([]any)
		for _, r := range req {
			if _, ok := p[r.(string)]; !ok {
				t.Errorf("%s: required %q is not a property", path, r)
			}
		}
		for _, key := range []string{"anyOf", "oneOf"} {
			alts, _ := m[key].([]any)
			for _, a := range alts {
				am, _ := a.(map[string]any)
				if _, own := am["properties"]; own || am == nil {
					continue
				}
				req, _ := am["required"].([]any)
				for _, r := range req {
					if _, ok := p[r.(string)]; !ok {
						t.Errorf("%s/%s: required %q is not a property", path, key, r)
					}
				}
			}
		}
	})
}

// TestNullableStyle checks that nullability is written 2020-12 style.
func TestNullableStyle(t *testing.T) {
	nullable := 0
	walk(parsed(t), "#", func(path string, m map[string]any) {
		if _, ok := m["nullable"]; ok && !strings.HasSuffix(path, "/properties") {
			t.Errorf("%s: OpenAPI 3.0 keyword nullable", path)
		}
		if types, ok := m["type"].([]any); ok {
			if len(types) != 2 || types[1] != "null" {
				t.Errorf("%s: type %v", path, types)
			}
			nullable++
			if values, ok := m["enum"].([]any); ok && !slices.Contains(values, nil) {
				t.Errorf("%s: nullable enum without null", path)
			}
		}
	})
	if nullable < 50 {
		t.Errorf("only %d nullable types found", nullable)
	}
}

func TestOperationMetadata(t *testing.T) {
	doc := parsed(t)
	declared := map[string]bool{}
	for _, tg := range doc["tags"].([]any) {
		declared[obj(t, tg, "tag")["name"].(string)] = true
	}
	camel := regexp.MustCompile(`^[a-z]+([A-Z][a-z]*)*$`)
	ids := map[string]string{}
	walkOperations(t, doc, func(path, method string, _, op map[string]any) {
		where := strings.ToUpper(method) + " " + path
		id, _ := op["operationId"].(string)
		if !camel.MatchString(id) {
			t.Errorf("%s: operationId %q is not camelCase", where, id)
		}
		if prev, dup := ids[id]; dup {
			t.Errorf("operationId %q used by %s and %s", id, prev, where)
		}
		ids[id] = where
		if s, _ := op["summary"].(string); s == "" {
			t.Errorf("%s: no summary", where)
		}
		tags, _ := op["tags"].([]any)
		if len(tags) == 0 {
			t.Errorf("%s: no tags", where)
		}
		for _, tg := range tags {
			if !declared[tg.(string)] {
				t.Errorf("%s: tag %v is not declared at the top level", where, tg)
			}
		}
		ok2xx := false
		for code := range obj(t, op["responses"], "responses") {
			ok2xx = ok2xx || strings.HasPrefix(code, "2")
		}
		if !ok2xx {
			t.Errorf("%s: no success response", where)
		}
		wantDeprecated := strings.HasPrefix(path, "/api/v1/agents") || path == "/api/v1/account"
		if wantDeprecated != (op["deprecated"] == true) {
			t.Errorf("%s: deprecated = %v", where, op["deprecated"])
		}
	})
	for _, id := range []string{"listAssistants", "createAssistant", "getCall", "addCampaignLead", "listAgents", "deleteAgent"} {
		if _, ok := ids[id]; !ok {
			t.Errorf("operationId %s missing", id)
		}
	}
}

// TestSecurityAndErrors checks authentication, the shared error responses
// and the rate-limit headers.
func TestSecurityAndErrors(t *testing.T) {
	doc := parsed(t)
	public := map[string]bool{"GET /api/v1/health": true, "GET /api/openapi.json": true}
	walkOperations(t, doc, func(path, method string, _, op map[string]any) {
		where := strings.ToUpper(method) + " " + path
		responses := obj(t, op["responses"], "responses")
		sec, hasSec := op["security"]
		if public[where] {
			if list, ok := sec.([]any); !hasSec || !ok || len(list) != 0 {
				t.Errorf("%s: security = %v, want []", where, sec)
			}
			return
		}
		if hasSec {
			t.Errorf("%s: overrides the global security", where)
		}
		for _, code := range []string{"401", "429"} {
			if responses[code] == nil {
				t.Errorf("%s: no %s response", where, code)
			}
		}
		if op["requestBody"] != nil && (responses["400"] == nil || responses["413"] == nil) {
			t.Errorf("%s: has a body but no 400/413", where)
		}
		if strings.Contains(path, "{") && responses["404"] == nil {
			t.Errorf("%s: no 404", where)
		}
		for code, r := range responses {
			if !strings.HasPrefix(code, "2") {
				continue
			}
			headers, _ := deref(t, doc, r)["headers"].(map[string]any)
			for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} {
				if headers[h] == nil {
					t.Errorf("%s %s: no %s header", where, code, h)
				}
			}
		}
	})
	responses := obj(t, obj(t, doc["components"], "components")["responses"], "responses")
	for _, name := range []string{"BadRequest", "Unauthorized", "NotFound", "Conflict", "PayloadTooLarge", "TooManyRequests"} {
		if responses[name] == nil {
			t.Errorf("components.responses.%s missing", name)
		}
	}
	headers := obj(t, obj(t, responses["TooManyRequests"], "429")["headers"], "429 headers")
	for _, h := range []string{"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset", "Retry-After"} {
		if headers[h] == nil {
			t.Errorf("429 response: no %s header", h)
		}
	}
	errSchema := obj(t, obj(t, obj(t, doc["components"], "components")["schemas"], "schemas")["Error"], "Error")
	if req, _ := errSchema["required"].([]any); len(req) != 1 || req[0] != "error" {
		t.Errorf("Error.required = %v, want [error]", errSchema["required"])
	}
}

var pathParamRE = regexp.MustCompile(`\{([^}]+)\}`)

func TestPathParametersDeclared(t *testing.T) {
	doc := parsed(t)
	walkOperations(t, doc, func(path, method string, item, op map[string]any) {
		where := strings.ToUpper(method) + " " + path
		var want []string
		for _, m := range pathParamRE.FindAllStringSubmatch(path, -1) {
			want = append(want, m[1])
		}
		var got []string
		for _, list := range []any{item["parameters"], op["parameters"]} {
			params, _ := list.([]any)
			for _, p := range params {
				param := deref(t, doc, p)
				if param["in"] != "path" {
					continue
				}
				if param["required"] != true {
					t.Errorf("%s: path parameter %v is not required", where, param["name"])
				}
				got = append(got, param["name"].(string))
			}
		}
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: path parameters declared %v, template has %v", where, got, want)
		}
	})
}

func TestOperationsMatchDocument(t *testing.T) {
	var found []Operation
	walkOperations(t, parsed(t), func(path, method string, _, _ map[string]any) {
		found = append(found, Operation{Method: strings.ToUpper(method), Path: path})
	})
	sort.Slice(found, func(i, j int) bool {
		if found[i].Path != found[j].Path {
			return found[i].Path < found[j].Path
		}
		return found[i].Method < found[j].Method
	})
	if got := Operations(); !slices.Equal(got, found) {
		t.Errorf("Operations() = %v\nwant (from the document's paths) %v", got, found)
	}
}

// wantOperations is the route list the server serves (2 + 10 + 5 + 5 + 4 +
// 1 + 4 + 1 + 5 + 5 + 4 + 8 + 6 + 5 + 2 = 67).
func wantOperations() []Operation {
	var out []Operation
	add := func(path string, methods ...string) {
		for _, m := range methods {
			out = append(out, Operation{Method: m, Path: path})
		}
	}
	crud := func(base string) {
		add("/api/v1"+base, "GET", "POST")
		add("/api/v1"+base+"/{id}", "GET", "PATCH", "DELETE")
	}
	add("/api/v1/health", "GET")               // 1
	add("/api/openapi.json", "GET")            // 1
	crud("/assistants")                        // 5
	crud("/agents")                            // 5
	crud("/tool-templates")                    // 5
	crud("/numbers")                           // 5
	add("/api/v1/calls", "GET")                // 1
	add("/api/v1/calls/outbound", "POST")      // 1
	add("/api/v1/calls/{id}", "GET")           // 1
	add("/api/v1/calls/{id}/control", "POST")  // 1
	add("/api/v1/calls/{id}/recording", "GET") // 1
	add("/api/v1/usage", "GET")                // 1
	add("/api/v1/sip-trunks", "GET", "POST")
	add("/api/v1/sip-trunks/{id}", "GET", "DELETE") // 4
	add("/api/v1/voices", "GET")                    // 1
	add("/api/v1/byok", "GET", "POST", "DELETE")
	add("/api/v1/byok/config", "GET", "POST") // 5
	add("/api/v1/domains", "GET", "POST", "DELETE")
	add("/api/v1/domains/sync", "GET", "POST")
	add("/api/v1/domains/verify", "POST")
	add("/api/v1/domains/refresh", "POST") // 7
	crud("/analysis-templates")            // 5
	add("/api/v1/organizations", "GET", "POST", "PATCH")
	add("/api/v1/account", "GET") // 4
	crud("/campaigns")
	add("/api/v1/campaigns/{id}/leads", "GET", "POST")
	add("/api/v1/campaigns/{id}/leads/{leadId}", "DELETE") // 8
	crud("/mcp-servers")
	add("/api/v1/mcp-servers/{id}/test", "POST") // 6
	crud("/workflows")                           // 5
	add("/api/v1/webhook-deliveries", "GET")
	add("/api/v1/webhook-events", "GET") // 2
	sort.Slice(out, func(i, j int) bool {
		if out[i].Path != out[j].Path {
			return out[i].Path < out[j].Path
		}
		return out[i].Method < out[j].Method
	})
	return out
}

func TestOperationCount(t *testing.T) {
	const want = 75
	ops := Operations()
	if len(ops) != want {
		t.Errorf("%d operations, want %d", len(ops), want)
	}
	if exp := wantOperations(); len(exp) != want || !slices.Equal(ops, exp) {
		t.Errorf("Operations() = %v\nwant %v", ops, exp)
	}
	if !sort.SliceIsSorted(ops, func(i, j int) bool {
		return ops[i].Path < ops[j].Path || ops[i].Path == ops[j].Path && ops[i].Method < ops[j].Method
	}) {
		t.Error("Operations() is not sorted by path, then method")
	}
}

// TestSchemaDetails spot-checks values the spec pins down.
func TestSchemaDetails(t *testing.T) {
	doc := parsed(t)
	schemas := obj(t, obj(t, doc["components"], "components")["schemas"], "schemas")
	schema := func(name string) map[string]any { return obj(t, schemas[name], name) }
	prop := func(s map[string]any, name string) map[string]any {
		return obj(t, obj(t, s["properties"], "properties")[name], name)
	}

	byok := schema("BYOKKeys")
	if n := len(obj(t, byok["properties"], "properties")); n != 10 {
		t.Errorf("BYOKKeys has %d providers, want 10", n)
	}
	if req, _ := schema("AssistantCreate")["required"].([]any); len(req) != 1 || req[0] != "name" {
		t.Errorf("AssistantCreate.required = %v, want [name]", req)
	}
	if _, ok := schema("AssistantUpdate")["required"]; ok {
		t.Error("AssistantUpdate has required members")
	}
	if vals, _ := schema("CallStatus")["enum"].([]any); len(vals) != 10 {
		t.Errorf("CallStatus has %d values, want 10", len(vals))
	}
	if prop(schema("SipTrunkCreate"), "auth_password")["writeOnly"] != true {
		t.Error("SipTrunkCreate.auth_password is not writeOnly")
	}
	if prop(schema("McpServerCreate"), "headers")["writeOnly"] != true {
		t.Error("McpServerCreate.headers is not writeOnly")
	}
	local := schema("LocalSTTConfig")
	if vals, _ := prop(local, "model")["enum"].([]any); !slices.Equal(vals, []any{"pocketsphinx"}) {
		t.Errorf("local STT models = %v", vals)
	}
	if vals, _ := prop(schema("LocalTTSConfig"), "model")["enum"].([]any); !slices.Equal(vals, []any{"espeak-ng"}) {
		t.Errorf("local TTS models = %v", vals)
	}
	if vals, _ := schema("STTLanguage")["enum"].([]any); len(vals) != 28 {
		t.Errorf("STTLanguage has %d values, want 28", len(vals))
	}
	for name, n := range map[string]int{"GoogleVoice": 30, "XAIVoice": 26, "OpenAILiveVoice": 5} {
		if vals, _ := schema(name)["enum"].([]any); len(vals) != n {
			t.Errorf("%s has %d voices, want %d", name, len(vals), n)
		}
	}
	for _, name := range []string{"STTConfig", "LLMConfig", "TTSConfig", "WorkflowNode"} {
		if schema(name)["discriminator"] == nil {
			t.Errorf("%s is not discriminated", name)
		}
	}
	if got := len(schema("WorkflowNode")["oneOf"].([]any)); got != 4 {
		t.Errorf("WorkflowNode has %d node types, want 4", got)
	}
	if got := len(schema("CallControlCommand")["oneOf"].([]any)); got != 4 || schema("CallControlCommand")["discriminator"] == nil {
		t.Errorf("CallControlCommand has %d discriminated variants, want 4", got)
	}
	if req, _ := schema("OutboundCallRequest")["required"].([]any); !slices.Equal(req, []any{"destination"}) {
		t.Errorf("OutboundCallRequest.required = %v, want [destination]", req)
	}
	if prop(schema("OrganizationUpdate"), "webhook_secret")["writeOnly"] != true {
		t.Error("OrganizationUpdate.webhook_secret is not writeOnly")
	}
	if _, ok := obj(t, schema("Organization")["properties"], "properties")["webhook_secret"]; ok {
		t.Error("Organization exposes webhook_secret")
	}
	// Tool and assistant webhook secrets are write-only; a marker says one is set.
	for _, c := range []struct{ schema, secret, marker string }{
		{"ToolServer", "secret", "secret_set"}, {"ToolFunctionConfig", "secret", "secret_set"}, {"Assistant", "webhook_secret", "webhook_secret_set"},
	} {
		if prop(schema(c.schema), c.secret)["writeOnly"] != true || prop(schema(c.schema), c.marker)["readOnly"] != true {
			t.Errorf("%s.%s is not writeOnly or %s not readOnly", c.schema, c.secret, c.marker)
		}
	}
	if vals, _ := prop(schema("WebhookEvent"), "status")["enum"].([]any); !slices.Equal(vals, []any{"pending", "delivered", "failed"}) {
		t.Errorf("WebhookEvent.status = %v", vals)
	}
	retention := prop(schema("OrganizationUpdate"), "metadata_retention_days")
	if vals, _ := deref(t, doc, retention)["enum"].([]any); len(vals) != 5 {
		t.Errorf("metadata retention values = %v", vals)
	}
}
