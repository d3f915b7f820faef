package httpapi_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/httpapi"
	"github.com/parley-voice/parley/internal/openapi"
	"github.com/parley-voice/parley/internal/store/storetest"
)

// TestOpenAPIMatchesRoutes fails when the router serves an operation the
// OpenAPI document does not describe, or the document describes one the
// server does not serve (checked both against the route table and by
// sending each documented request to the server).
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, "sqlite", storetest.OpenSQLite, httpapi.Config{})
	var served, documented []string
	for _, r := range e.srv.Routes() {
		served = append(served, r.Method+" "+r.Pattern)
	}
	for _, op := range openapi.Operations() {
		documented = append(documented, op.Method+" "+op.Path)
	}
	for _, s := range served {
		if !slices.Contains(documented, s) {
			t.Errorf("served but missing from the OpenAPI document: %s", s)
		}
	}
	for _, d := range documented {
		if !slices.Contains(served, d) {
			t.Errorf("in the OpenAPI document but not served: %s", d)
		}
	}
	// Every documented operation reaches a handler (not the router's 404/405).
	for _, op := range openapi.Operations() {
		path := strings.NewReplacer("{id}", "00000000-0000-4000-8000-000000000000", "{leadId}", "00000000-0000-4000-8000-000000000001").Replace(op.Path)
		var body any
		if op.Method == "POST" || op.Method == "PATCH" || op.Method == "DELETE" {
			body = map[string]any{}
		}
		r := e.do(op.Method, path, e.keyA, body)
		if code := r.Body["code"]; code == "route_not_found" || code == "method_not_allowed" {
			t.Errorf("%s %s is documented but the router answers %v", op.Method, op.Path, code)
		}
	}
	// The document is served and parses.
	r := e.do("GET", "/api/openapi.json", "", nil)
	var doc map[string]any
	if r.Status != 200 || json.Unmarshal(r.Raw, &doc) != nil || doc["openapi"] != "3.1.0" {
		t.Fatalf("GET /api/openapi.json = %d %.200s", r.Status, r.Raw)
	}
}
