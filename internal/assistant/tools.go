package assistant

import (
	"encoding/json"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/fault"
)

// Tool shapes of llm_config.tools (spec §8.9).
var (
	// functionDef is the definition of a function tool: the members of a
	// flat tool, or of the "function" object of the OpenAI nested shape.
	functionDef = []*catalog.Field{
		{Name: "name", Type: catalog.String, Required: true, Format: catalog.FormatFunctionName},
		{Name: "description", Type: catalog.String, Required: true},
		{Name: "parameters", Type: catalog.JSONObject},
	}
	nestedFunction = &catalog.Field{Name: "function", Type: catalog.Object, Required: true, Fields: []*catalog.Field{
		functionDef[0],
		{Name: "description", Type: catalog.String}, // optional in the OpenAI shape
		functionDef[2],
	}}
	// functionExtras are the webhook settings both function shapes share.
	functionExtras = []*catalog.Field{
		{Name: "url", Type: catalog.String, Format: catalog.FormatURL},
		{Name: "server", Type: catalog.Object, Fields: []*catalog.Field{
			{Name: "url", Type: catalog.String, Format: catalog.FormatURL},
			{Name: "secret", Type: catalog.String},
		}},
		{Name: "async", Type: catalog.Bool, Default: jsonFalse, Fill: true},
		{Name: "message", Type: catalog.String},
		{Name: "async_response", Type: catalog.String}, // legacy spelling of message
		{Name: "asyncResponse", Type: catalog.String},  // REF-FLIREO spelling of message
	}
	// transferDestinations are the destinations of a transfer_call tool.
	transferDestinations = &catalog.Field{Name: "destinations", Type: catalog.List, Required: true, MinItems: count(1),
		Items: &catalog.Field{Type: catalog.Object, Fields: []*catalog.Field{
			{Name: "type", Type: catalog.Enum, Values: []string{"number"}, Default: json.RawMessage(`"number"`), Fill: true},
			{Name: "number", Type: catalog.String, Required: true, Format: catalog.FormatE164},
			{Name: "description", Type: catalog.String, Required: true, MinLen: count(1)},
			{Name: "message", Type: catalog.String},
		}}}
	mcpFields = []*catalog.Field{
		{Name: "mcp_server_id", Type: catalog.String, Required: true, Format: catalog.FormatUUID},
		{Name: "allowed_tools", Type: catalog.List, MaxItems: count(25), Unique: true,
			Items:    &catalog.Field{Type: catalog.String, MinLen: count(1), MaxLen: count(128)},
			Nullable: true, Default: jsonNull, Fill: true},
		{Name: "required", Type: catalog.Bool, Default: jsonTrue, Fill: true},
	}
)

// defaultParameters is the JSON Schema of a function that takes no arguments.
var defaultParameters = json.RawMessage(`{"type":"object","properties":{}}`)

const toolTypesHelp = "allowed: function, end_call, transfer_call, mcp (endCall and transferCall are accepted too)"

// Tools normalises an llm_config.tools array (spec §8.9). It accepts the flat
// webhook tool, the OpenAI nested shape, end_call/endCall,
// transfer_call/transferCall and mcp tool sets, and returns canonical tools:
//
//	{"type":"function","function":{"name","description","parameters"},"server":{"url","secret"?},"async","message"?}
//	{"type":"end_call"}
//	{"type":"transfer_call","destinations":[{"type":"number","number","description","message"?}]}
//	{"type":"mcp","mcp_server_id","allowed_tools","required"}
//
// server appears only when a url is set (a flat url wins over server.url);
// message is also read from async_response and asyncResponse. Tool names
// (built-ins count as "end_call" and "transfer_call") and MCP servers must
// be unique. allowed_tools is null when not sent, meaning every tool of the
// server. field is the path used in error messages, e.g.
// "llm_config.tools". A null or empty raw returns JSON null and no error.
func (v *Validator) Tools(raw json.RawMessage, field string) (json.RawMessage, error) {
	if !given(raw) {
		return jsonNull, nil
	}
	var f fault.Fields
	list := v.tools(&f, field, raw)
	if err := f.Err(); err != nil {
		return nil, err
	}
	return marshal(list)
}

// toolKey identifies a tool for the uniqueness check.
type toolKey struct {
	key, path, value, what string
}

func (v *Validator) tools(f *fault.Fields, path string, raw json.RawMessage) []any {
	items, ok := asArray(f, path, raw)
	if !ok {
		return nil
	}
	before := f.Len()
	out := make([]any, 0, len(items))
	first := map[string]string{}
	for i, item := range items {
		p := idx(path, i)
		in, ok := asObject(f, p, item)
		if !ok {
			continue
		}
		tool, k := v.tool(f, p, in)
		if tool == nil {
			continue
		}
		if k.key != "" {
			if prev, dup := first[k.key]; dup {
				f.Invalidf(k.path, "%q is already used by %s; %s", k.value, prev, k.what)
			} else {
				first[k.key] = p
			}
		}
		out = append(out, tool)
	}
	if f.Len() != before {
		return nil
	}
	return out
}

func (v *Validator) tool(f *fault.Fields, p string, in map[string]json.RawMessage) (*obj, toolKey) {
	typ := ""
	if raw := in["type"]; given(raw) {
		s, ok := asString(f, at(p, "type"), raw)
		if !ok {
			return nil, toolKey{}
		}
		typ = s
	}
	const unique = "tool names must be unique"
	switch typ {
	case "", "function":
		_, nested := in["function"]
		return v.functionTool(f, p, in, typ == "function" && nested)
	case "end_call", "endCall":
		unknownKeys(f, p, in, []string{"type"}, nil, "an end_call tool (the platform supplies its name, description and handler)")
		out := newObj()
		out.set("type", "end_call")
		return out, toolKey{"end_call", at(p, "type"), "end_call", unique}
	case "transfer_call", "transferCall":
		unknownKeys(f, p, in, []string{"type", "destinations"}, nil, "a transfer_call tool")
		out := newObj()
		out.set("type", "transfer_call")
		v.members(f, p, in, []*catalog.Field{transferDestinations}, out)
		return out, toolKey{"transfer_call", at(p, "type"), "transfer_call", unique}
	case "mcp":
		unknownKeys(f, p, in, append([]string{"type"}, names(mcpFields)...), nil, "an mcp tool")
		out := newObj()
		out.set("type", "mcp")
		v.members(f, p, in, mcpFields, out)
		id, _ := out.get("mcp_server_id")
		s, _ := id.(string)
		if s == "" {
			return out, toolKey{}
		}
		return out, toolKey{"mcp:" + s, at(p, "mcp_server_id"), s, "list each MCP server once"}
	}
	f.Invalidf(at(p, "type"), "%q is not a tool type; %s", typ, toolTypesHelp)
	return nil, toolKey{}
}

// functionTool normalises a flat or OpenAI-nested function tool.
func (v *Validator) functionTool(f *fault.Fields, p string, in map[string]json.RawMessage, nested bool) (*obj, toolKey) {
	scratch := newObj()
	var def *obj
	defPath := p
	if nested {
		unknownKeys(f, p, in, append([]string{"type", "function"}, names(functionExtras)...), nil, "a function tool")
		v.members(f, p, in, []*catalog.Field{nestedFunction}, scratch)
		d, _ := scratch.get("function")
		def, _ = d.(*obj)
		defPath = at(p, "function")
	} else {
		allowed := append([]string{"type"}, names(functionDef)...)
		unknownKeys(f, p, in, append(allowed, names(functionExtras)...), nil, "a function tool")
		v.members(f, p, in, functionDef, scratch)
		def = scratch
	}
	v.members(f, p, in, functionExtras, scratch)
	if def == nil {
		return nil, toolKey{}
	}

	name, _ := def.get("name")
	description, ok := def.get("description")
	if !ok {
		description = ""
	}
	parameters, ok := def.get("parameters")
	if !ok {
		parameters = defaultParameters
	}
	fn := newObj()
	fn.set("name", name)
	fn.set("description", description)
	fn.set("parameters", parameters)
	out := newObj()
	out.set("type", "function")
	out.set("function", fn)

	url := str(scratch, "url")
	var secret string
	if s, ok := scratch.get("server"); ok {
		server := s.(*obj)
		if url == "" {
			url = str(server, "url")
		}
		secret = str(server, "secret")
	}
	switch {
	case url != "":
		server := newObj()
		server.set("url", url)
		if secret != "" {
			server.set("secret", secret)
		}
		out.set("server", server)
	case secret != "":
		f.Add(at(p, "server.url"), "missing_field", "is required when server.secret is set (or set url)")
	}
	if async, ok := scratch.get("async"); ok {
		out.set("async", async)
	}
	if msg, ok := firstOf(scratch, "message", "async_response", "asyncResponse"); ok {
		out.set("message", msg)
	}
	n, _ := name.(string)
	if n == "" {
		return out, toolKey{}
	}
	return out, toolKey{n, at(defPath, "name"), n, "tool names must be unique"}
}

// str returns member k of o when it is a string.
func str(o *obj, k string) string {
	v, _ := o.get(k)
	s, _ := v.(string)
	return s
}

// firstOf returns the first member of o among keys (newest spelling first).
func firstOf(o *obj, keys ...string) (any, bool) {
	for _, k := range keys {
		if v, ok := o.get(k); ok {
			return v, true
		}
	}
	return nil, false
}
