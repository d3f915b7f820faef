package httpapi_test

import (
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/httpapi"
)

// TestErrorTypes checks that every error body carries the class SDK-OLD
// reads as err.type beside the code (spec §4.1), one per HTTP status.
func TestErrorTypes(t *testing.T) {
	forEachEngine(t, httpapi.Config{RateLimit: 40, MaxBodyBytes: 4096}, func(t *testing.T, e *env) {
		child := e.must(201, "POST", "/api/v1/organizations", map[string]any{"name": "Child"}).Body["api_key"].(string)
		wf := e.must(201, "POST", "/api/v1/workflows", map[string]any{"name": "Flow", "definition": validWorkflow}).obj(t, "workflow")["id"].(string)
		e.must(201, "POST", "/api/v1/numbers", map[string]any{"phone_number": "+31201234567", "workflow_id": wf})
		tests := []struct {
			name, method, path, key string
			body                    any
			status                  int
			typ                     string
		}{
			{"invalid", "POST", "/api/v1/assistants", e.keyA, map[string]any{}, 400, "invalid_request_error"},
			{"method", "PUT", "/api/v1/assistants", e.keyA, nil, 405, "invalid_request_error"},
			{"no key", "GET", "/api/v1/assistants", "", nil, 401, "authentication_error"},
			{"forbidden", "POST", "/api/v1/organizations", child, map[string]any{"name": "Grandchild"}, 403, "permission_error"},
			{"not found", "GET", "/api/v1/campaigns/00000000-0000-4000-8000-000000000000", e.keyA, nil, 404, "not_found_error"},
			{"conflict", "DELETE", "/api/v1/workflows/" + wf, e.keyA, nil, 409, "conflict_error"},
			{"too large", "POST", "/api/v1/assistants", e.keyA, `{"name":"` + strings.Repeat("x", 5000) + `"}`, 413, "invalid_request_error"},
		}
		for _, tt := range tests {
			r := e.do(tt.method, tt.path, tt.key, tt.body)
			if r.Status != tt.status || r.Body["type"] != tt.typ || r.Body["code"] == nil || r.Body["error"] == nil {
				t.Errorf("%s: %d %s, want %d with type %q", tt.name, r.Status, r.Raw, tt.status, tt.typ)
			}
		}
		var last resp
		for range 50 {
			if last = e.do("GET", "/api/v1/assistants", e.keyB, nil); last.Status == 429 {
				break
			}
		}
		if last.Status != 429 || last.Body["type"] != "rate_limit_error" || last.Body["code"] != "rate_limit_exceeded" {
			t.Errorf("rate limited: %d %s", last.Status, last.Raw)
		}
	})
}

// TestOneProblemHasDetails checks that a validation error with a single
// problem lists it in details[] as one with several does (issue 14 point 6).
func TestOneProblemHasDetails(t *testing.T) {
	forEachEngine(t, httpapi.Config{}, func(t *testing.T, e *env) {
		one := map[string]any{"version": 1, "entry_node": "greet", "nodes": []any{map[string]any{"id": "greet", "type": "conversation"}}}
		r := e.do("POST", "/api/v1/workflows", e.keyA, map[string]any{"name": "One", "definition": one})
		r.wantError(t, 400, "invalid_workflow_definition", "")
		d, _ := r.Body["details"].([]any)
		if len(d) != 1 || d[0] != r.Body["error"] {
			t.Fatalf("one problem: details = %v, want [error]: %s", d, r.Raw)
		}
		r = e.do("POST", "/api/v1/workflows", e.keyA, map[string]any{"definition": validWorkflow})
		r.wantError(t, 400, "missing_field", "name")
		if d, _ := r.Body["details"].([]any); len(d) != 1 {
			t.Fatalf("missing name: details = %v: %s", d, r.Raw)
		}
	})
}
