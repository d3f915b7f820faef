package assistant

import (
	"encoding/json"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// analysisMessages are prompt messages of an analysis: system or user only.
var analysisMessages = &catalog.Field{Name: "messages", Type: catalog.List, Items: &catalog.Field{
	Type: catalog.Object, Fields: []*catalog.Field{
		{Name: "role", Type: catalog.Enum, Required: true, Values: []string{"system", "user"}},
		{Name: "content", Type: catalog.String, Required: true, MinLen: count(1)},
	},
}}

// structuredDataPlan is analysis_plan.structured_data_plan (spec §8.6);
// template_id is the SDK-OLD reference to an analysis template.
var structuredDataPlan = &catalog.Field{Name: "structured_data_plan", Type: catalog.Object, Fields: []*catalog.Field{
	{Name: "enabled", Type: catalog.Bool, Required: true},
	{Name: "schema", Type: catalog.JSONObject},
	analysisMessages,
	{Name: "template_id", Type: catalog.String, Format: catalog.FormatUUID},
}}

// planThreshold is analysis_plan.min_messages_threshold (default 2, §15 row 16).
var planThreshold = &catalog.Field{Name: "min_messages_threshold", Type: catalog.Int, Min: num(0), Default: json.RawMessage("2"), Fill: true}

// thresholdAlias is the REF-FLIREO spelling of min_messages_threshold.
const thresholdAlias = "minMessagesThreshold"

// analysisPlan validates analysis_plan; the canonical form is
// {structured_data_plan?: {enabled, schema?, messages?, template_id?}, min_messages_threshold}.
func (v *Validator) analysisPlan(f *fault.Fields, path string, raw json.RawMessage) *obj {
	in, ok := asObject(f, path, raw)
	if !ok {
		return nil
	}
	before := f.Len()
	unknownKeys(f, path, in, []string{"structured_data_plan", "min_messages_threshold", thresholdAlias}, nil, "")
	out := newObj()
	if raw := in["structured_data_plan"]; given(raw) {
		sp := at(path, "structured_data_plan")
		if val, ok := v.value(f, sp, structuredDataPlan, raw); ok {
			plan := val.(*obj)
			if on, _ := plan.get("enabled"); on == true && !plan.has("schema") && !plan.has("template_id") {
				f.Add(at(sp, "schema"), "missing_field", "is required when enabled is true (or give template_id to use an analysis template)")
			}
			out.set("structured_data_plan", plan)
		}
	}
	v.aliased(f, path, in, planThreshold, thresholdAlias, out)
	if f.Len() != before {
		return nil
	}
	return out
}

// aliased validates member s, read from its older spelling alias when only
// that was sent (the newest spelling wins when both are).
func (v *Validator) aliased(f *fault.Fields, path string, in map[string]json.RawMessage, s *catalog.Field, alias string, out *obj) {
	if !given(in[s.Name]) && given(in[alias]) {
		if val, ok := v.value(f, at(path, alias), s, in[alias]); ok {
			out.set(s.Name, val)
		}
		return
	}
	v.members(f, path, in, []*catalog.Field{s}, out)
}

func nullableString(name string) *catalog.Field {
	return &catalog.Field{Name: name, Type: catalog.String, MinLen: count(1), Nullable: true, Default: jsonNull, Fill: true}
}

// analysisTemplateFields is the canonical superset of the analysis template
// generations (spec §7.13, §15 row 14).
var analysisTemplateFields = []*catalog.Field{
	{Name: "name", Type: catalog.String, Required: true, MinLen: count(1)},
	{Name: "description", Type: catalog.String, Nullable: true, Default: jsonNull, Fill: true},
	nullableString("system_prompt"),
	nullableString("user_prompt"),
	{Name: "schema", Type: catalog.JSONObject, Required: true},
	{Name: "messages", Type: catalog.List, MinItems: count(1), Items: analysisMessages.Items, Nullable: true, Default: jsonNull, Fill: true},
}

var templateThreshold = &catalog.Field{Name: "min_messages_threshold", Type: catalog.Int, Min: num(0), Nullable: true, Default: jsonNull, Fill: true}

// NormalizeAnalysisTemplate validates a complete analysis template (on PATCH:
// the stored canonical template with the client's fields laid over it) and
// returns the canonical superset {name, description, system_prompt,
// user_prompt, schema, messages, min_messages_threshold}, unset ones null.
// Only name and schema are required (SDK-OLD sends {name, description?,
// schema}); the prompt may be given as system_prompt and/or user_prompt
// (SDK-NEW), as messages (DOCS-NEW), both, or not at all: when a template is
// applied (internal/analysis) its prompts, if any, are used, else its
// messages, else the default analysis prompt, and the schema and
// transcript are added when no prompt shows them. minMessagesThreshold is accepted for
// min_messages_threshold; id, org_id, created_at and updated_at are dropped.
func NormalizeAnalysisTemplate(doc map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	var f fault.Fields
	v := &Validator{} // the template fields need no catalog
	allowed := append(names(analysisTemplateFields), templateThreshold.Name, thresholdAlias)
	unknownKeys(&f, "", doc, allowed, ignoredKeys, "an analysis template")
	out := newObj()
	v.members(&f, "", doc, analysisTemplateFields, out)
	v.aliased(&f, "", doc, templateThreshold, thresholdAlias, out)

	if err := f.Err(); err != nil {
		return nil, err
	}
	return out.rawMap()
}
