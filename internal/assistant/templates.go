package assistant

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// Tool templates come in five generations (spec §7.3, §15 row 12):
//
//  1. SDK-NEW:    {name, description, tool_type: function|end_call|transfer_call, tool_config}
//  2. API-REF:    the same with tool_type endCall|transferCall
//  3. DOCS-NEW:   flat {name, description, type, url, async, parameters}
//  4. REF-FLIREO: generation 2 with tool_config.asyncResponse
//  5. SDK-OLD:    {name, description, function_definition: {name, description, parameters}, server_url, server_secret, async}
//
// All normalise to generation 1. A stored template is always canonical, so
// the keys of generations 3 and 5 in a merged PATCH document can only have
// come from the client: they are laid over tool_config, and when they change
// the tool type the stored tool_config is discarded.

var templateHead = []*catalog.Field{
	{Name: "name", Type: catalog.String, Required: true, MinLen: count(1)},
	{Name: "description", Type: catalog.String, Nullable: true, Default: jsonNull, Fill: true},
}

// templateFunction is the canonical tool_config of a function template.
// secret is a Parley addition that keeps SDK-OLD's server_secret.
var templateFunction = []*catalog.Field{
	{Name: "name", Type: catalog.String, Format: catalog.FormatFunctionName},
	{Name: "description", Type: catalog.String},
	{Name: "parameters", Type: catalog.JSONObject},
	{Name: "url", Type: catalog.String, Format: catalog.FormatURL},
	{Name: "secret", Type: catalog.String},
	{Name: "async", Type: catalog.Bool, Default: jsonFalse, Fill: true},
	{Name: "message", Type: catalog.String},
	{Name: "async_response", Type: catalog.String},
	{Name: "asyncResponse", Type: catalog.String},
}

var (
	templateTypes = map[string]string{
		"function": "function", "end_call": "end_call", "endCall": "end_call",
		"transfer_call": "transfer_call", "transferCall": "transfer_call",
	}
	flatKeys   = []string{"type", "url", "async", "parameters"}
	sdkOldKeys = []string{"function_definition", "server_url", "server_secret"}
	// templateOutputKeys are members a tool template response carries that
	// are not input (a client may send a template it read back): the row's
	// identity and SDK-OLD's has_server_secret.
	templateOutputKeys = append(slices.Clone(ignoredKeys), "has_server_secret")
)

// NormalizeToolTemplate validates a complete tool template (on PATCH: the
// stored canonical template with the client's fields laid over it) of any
// generation and returns {name, description, tool_type, tool_config} with
// tool_type function, end_call or transfer_call. A function tool_config is
// {name, description?, parameters?, url?, secret?, async, message?}: name
// defaults to the template name (which must then be a valid function name)
// and description to the template description. id, org_id, created_at and
// updated_at are dropped.
func (v *Validator) NormalizeToolTemplate(doc map[string]json.RawMessage) (map[string]json.RawMessage, error) {
	var f fault.Fields
	allowed := append(append(names(templateHead), "tool_type", "tool_config"), flatKeys...)
	unknownKeys(&f, "", doc, append(allowed, sdkOldKeys...), templateOutputKeys, "a tool template")
	out := newObj()
	v.members(&f, "", doc, templateHead, out)

	stored := templateType(&f, doc, "tool_type")
	legacy := templateType(&f, doc, "type")
	sdkOld := given(doc["function_definition"]) || given(doc["server_url"]) || given(doc["server_secret"])
	typ := stored
	switch {
	case legacy != "":
		typ = legacy
	case sdkOld:
		typ = "function"
	}
	if typ == "" {
		if !given(doc["tool_type"]) && !given(doc["type"]) {
			f.Missing("tool_type")
		}
		return nil, f.Err()
	}

	// cfg collects tool_config members with the path the client sent each at.
	cfg := map[string]json.RawMessage{}
	paths := map[string]string{}
	if raw := doc["tool_config"]; given(raw) && (stored == "" || stored == typ) {
		if m, ok := asObject(&f, "tool_config", raw); ok {
			for k, r := range m {
				cfg[k], paths[k] = r, "tool_config."+k
			}
			v.templateUnknown(&f, m, typ)
		}
	}
	overlay := func(key, from string, raw json.RawMessage) {
		if given(raw) {
			cfg[key], paths[key] = raw, from
		}
	}
	if raw := doc["function_definition"]; given(raw) {
		if def, ok := asObject(&f, "function_definition", raw); ok {
			unknownKeys(&f, "function_definition", def, names(functionDef), nil, "")
			for _, k := range names(functionDef) {
				overlay(k, "function_definition."+k, def[k])
			}
		}
	}
	overlay("url", "server_url", doc["server_url"])
	overlay("secret", "server_secret", doc["server_secret"])
	for _, k := range flatKeys[1:] { // a flat url wins over server_url
		overlay(k, k, doc[k])
	}

	var config *obj
	switch typ {
	case "function":
		config = v.templateFunction(&f, cfg, paths, out, doc["description"])
	case "end_call", "transfer_call":
		config = newObj()
		for _, k := range slices.Sorted(maps.Keys(cfg)) {
			legacyOnly := !strings.HasPrefix(paths[k], "tool_config.")
			if legacyOnly && !(k == "async" && string(compact(cfg[k])) == "false") {
				f.Invalidf(paths[k], "only fits a function template, not %s", typ)
			}
		}
		if typ == "transfer_call" {
			v.membersAt(&f, func(n string) string { return "tool_config." + n }, cfg, []*catalog.Field{transferDestinations}, config)
		}
	}
	out.set("tool_type", typ)
	out.set("tool_config", config)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return out.rawMap()
}

// templateType reads a tool type from doc[key], camelCase accepted.
func templateType(f *fault.Fields, doc map[string]json.RawMessage, key string) string {
	raw := doc[key]
	if !given(raw) {
		return ""
	}
	s, ok := asString(f, key, raw)
	if !ok {
		return ""
	}
	if t, ok := templateTypes[s]; ok {
		return t
	}
	f.Invalidf(key, "%q is not a tool template type; allowed: function, end_call, transfer_call (endCall and transferCall are accepted too)", s)
	return ""
}

// templateUnknown reports tool_config keys that do not fit the tool type.
func (v *Validator) templateUnknown(f *fault.Fields, m map[string]json.RawMessage, typ string) {
	switch typ {
	case "function":
		unknownKeys(f, "tool_config", m, names(templateFunction), nil, "a function tool_config")
	case "end_call":
		unknownKeys(f, "tool_config", m, nil, nil, `an end_call tool_config, which has nothing to configure (send "tool_config": {})`)
	case "transfer_call":
		unknownKeys(f, "tool_config", m, []string{"destinations"}, nil, "a transfer_call tool_config")
	}
}

// templateFunction builds a function tool_config from the collected members.
func (v *Validator) templateFunction(f *fault.Fields, cfg map[string]json.RawMessage, paths map[string]string, head *obj, description json.RawMessage) *obj {
	if !given(cfg["description"]) && kindOf(description) == jString {
		cfg["description"], paths["description"] = description, "description"
	}
	pathOf := func(n string) string {
		if p, ok := paths[n]; ok {
			return p
		}
		return "tool_config." + n
	}
	got := newObj()
	v.membersAt(f, pathOf, cfg, templateFunction, got)

	out := newObj()
	switch name := str(head, "name"); {
	case got.has("name"):
		out.set("name", str(got, "name"))
	case given(cfg["name"]) || name == "":
		// invalid tool_config.name or template name: already reported
	case badFormat(catalog.FormatFunctionName, name) != "":
		f.Invalidf("name", "%s; it is the function name because tool_config.name is not set (set tool_config.name to keep this display name)",
			badFormat(catalog.FormatFunctionName, name))
	default:
		out.set("name", name)
	}
	for _, k := range []string{"description", "parameters", "url", "secret", "async"} {
		if val, ok := got.get(k); ok {
			out.set(k, val)
		}
	}
	if msg, ok := firstOf(got, "message", "async_response", "asyncResponse"); ok {
		out.set("message", msg)
	}
	return out
}
