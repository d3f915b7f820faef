package openapi

// This file declares the health check, this document, assistants (and their
// deprecated /agents alias), tool templates and phone numbers.

func metaPaths(ps pathSet) {
	ps.add(apiBase+"/health", nil, get(op("getHealth", "Health", "Check server health").public().
		desc("Reports whether the server and its database work. Needs no API key.").
		reply("200", "The server and its database are healthy.", ref("HealthResponse")).
		reply("503", "The database is unreachable; same shape with a failure status.", ref("HealthResponse"))))
	ps.add("/api/openapi.json", nil, get(op("getOpenApiDocument", "Meta", "Get the OpenAPI document").public().
		desc("This OpenAPI 3.1.0 document. Needs no API key.").
		reply("200", "The OpenAPI document.", freeObject())))
}

func assistantPaths(ps pathSet) {
	r := resource{
		path: "/assistants", tag: "Assistants", one: "Assistant", many: "Assistants", noun: "assistant",
		key: "assistant", listKey: "assistants", schema: "Assistant", create: "AssistantCreate", update: "AssistantUpdate",
	}
	c := newCRUD(r)
	c.create.desc("Only `name` is required; every other setting takes its default. Providers, models, voices and languages are validated against the provider catalog.")
	c.add(ps)

	// The deprecated alias: same bodies, same behaviour.
	a := r
	a.path, a.tag, a.one, a.many, a.noun = "/agents", "Agents", "Agent", "Agents", "agent"
	aliases := newCRUD(a)
	for _, o := range aliases.all() {
		o.deprecate().desc("Deprecated alias of the same operation on /assistants; the bodies keep the `assistant`/`assistants` keys.")
	}
	aliases.add(ps)
}

func toolTemplatePaths(ps pathSet) {
	c := newCRUD(resource{
		path: "/tool-templates", tag: "Tool Templates", one: "ToolTemplate", many: "ToolTemplates", noun: "tool template",
		key: "tool_template", listKey: "tool_templates", schema: "ToolTemplate", create: "ToolTemplateCreate", update: "ToolTemplateUpdate",
	})
	older := "Documents the newest body shape (`tool_type` + `tool_config`). Older generations are accepted and normalised: " +
		"`tool_type` `endCall`/`transferCall`; flat `{name, description, type, url, async, parameters}`; " +
		"`{name, description, function_definition, server_url, server_secret, async}`. Responses always use the newest shape."
	c.create.desc(older)
	c.upd.desc("Partial update; tool_config is replaced as a whole. " + older)
	c.add(ps)
}

func numberPaths(ps pathSet) {
	c := newCRUD(resource{
		path: "/numbers", tag: "Phone Numbers", one: "Number", many: "Numbers", noun: "phone number",
		key: "number", listKey: "numbers", schema: "PhoneNumber", create: "PhoneNumberCreate", update: "PhoneNumberUpdate",
	})
	c.create.Summary = "Register a phone number"
	c.create.desc("Register a number forwarded to this server over SIP, and optionally choose the assistant (or workflow) that answers it. `number` is accepted for `phone_number` and `agent_id` for `assistant_id`.").
		conflict("The number is already registered.")
	c.upd.desc("Partial update. `assistant_id: null` unassigns the assistant (calls are then not handled), `workflow_id: null` detaches the workflow, `transfer_trunk_id: null` removes the trunk.")
	c.add(ps)
}
