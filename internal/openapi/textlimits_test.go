package openapi

import (
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/textrule"
)

// TestTextLimitsPublished checks that every string a request body can carry
// is documented with the maxLength the server enforces (textrule), and that
// free-form objects bound their member names.
func TestTextLimitsPublished(t *testing.T) {
	doc := parsed(t)
	schemas := obj(t, obj(t, doc["components"], "components")["schemas"], "schemas")
	prop := func(schema, name string) map[string]any {
		return obj(t, obj(t, obj(t, schemas[schema], schema)["properties"], schema+".properties")[name], schema+"."+name)
	}
	for _, tc := range []struct {
		schema, field string
		want          int
	}{
		{"AssistantCreate", "name", textrule.NameMax},
		{"AssistantUpdate", "first_message", textrule.TextMax},
		{"Message", "content", textrule.PromptMax},
		{"ConversationNode", "instructions", textrule.PromptMax},
		{"CampaignCreate", "system_message_template", textrule.PromptMax},
		{"WorkflowCreate", "name", textrule.NameMax},
		{"BYOKKeyCreate", "api_key", 4096}, // its own, smaller limit wins
	} {
		if got, _ := prop(tc.schema, tc.field)["maxLength"].(float64); int(got) != tc.want {
			t.Errorf("%s.%s maxLength = %v, want %d", tc.schema, tc.field, got, tc.want)
		}
	}
	if got := obj(t, prop("CampaignLeadCreate", "variables")["propertyNames"], "propertyNames")["maxLength"]; got != float64(textrule.KeyMax) {
		t.Errorf("CampaignLeadCreate.variables propertyNames maxLength = %v", got)
	}

	// Every string reachable from a request body is bounded.
	seen := map[string]bool{}
	var check func(at string, v any)
	check = func(at string, v any) {
		m, ok := v.(map[string]any)
		if !ok {
			return
		}
		if r, ok := m["$ref"].(string); ok {
			if seen[r] {
				return
			}
			seen[r] = true
			target, _ := resolve(doc, r)
			check(r, target)
		}
		typ := m["type"]
		isString := typ == "string"
		if l, ok := typ.([]any); ok {
			for _, x := range l {
				isString = isString || x == "string"
			}
		}
		if isString && m["enum"] == nil && m["const"] == nil && m["maxLength"] == nil {
			t.Errorf("%s: string without maxLength", at)
		}
		for k, p := range mapOf(m["properties"]) {
			check(at+"."+k, p)
		}
		check(at+"[]", m["items"])
		check(at+".*", m["additionalProperties"])
		for _, key := range []string{"oneOf", "anyOf"} {
			alts, _ := m[key].([]any)
			for _, a := range alts {
				check(at, a)
			}
		}
	}
	walkOperations(t, doc, func(path, method string, _, op map[string]any) {
		if rb, ok := op["requestBody"].(map[string]any); ok {
			for ct, mt := range mapOf(rb["content"]) {
				check(strings.ToUpper(method)+" "+path+" "+ct, mapOf(mt)["schema"])
			}
		}
	})
	if len(seen) < 20 {
		t.Fatalf("walked only %d component schemas", len(seen))
	}
}

func mapOf(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// TestFreeFormMembers keeps textrule.FreeForm in step with the document:
// a request member is free-form (its member names are client data) exactly
// when its schema is a map or an object without declared properties.
func TestFreeFormMembers(t *testing.T) {
	comps := schemas(testCatalog(t))
	deref := func(s *schema) *schema {
		for s != nil && s.Ref != "" {
			s = comps[strings.TrimPrefix(s.Ref, schemaRef)]
		}
		return s
	}
	isFree := func(s *schema) bool {
		for _, alt := range append([]*schema{s}, s.OneOf...) {
			alt = deref(alt)
			if alt != nil && hasType(alt, "object") && (alt.AdditionalProperties != nil || alt.Properties == nil) {
				return true
			}
		}
		return false
	}
	seen := map[*schema]bool{}
	checked := 0
	var walk func(s *schema)
	walk = func(s *schema) {
		s = deref(s)
		if s == nil || seen[s] {
			return
		}
		seen[s] = true
		for name, p := range s.Properties {
			checked++
			if free := isFree(p); free != textrule.FreeForm(name) {
				t.Errorf("member %q: free-form in the document = %v, textrule.FreeForm = %v", name, free, textrule.FreeForm(name))
			}
			if !textrule.FreeForm(name) {
				walk(p)
			}
		}
		walk(s.Items)
		for _, alt := range slices.Concat(s.OneOf, s.AnyOf) {
			walk(alt)
		}
	}
	for _, item := range paths() {
		for _, m := range item.methods() {
			if m.op.RequestBody != nil {
				walk(m.op.RequestBody.Content["application/json"].Schema)
			}
		}
	}
	if checked < 100 {
		t.Fatalf("checked only %d members", checked)
	}
}
