package openapi

// This file describes the tools in llm_config.tools (spec §8.9) and tool
// templates (spec §7.3).

const functionNamePattern = `^[A-Za-z_][A-Za-z0-9_-]{0,63}$`

func functionName() *schema {
	return str().pattern(functionNamePattern).d("What the model calls: a letter or `_`, then letters, digits, `_` or `-`; at most 64 characters.")
}

func toolSchemas(c map[string]*schema) {
	c["TransferDestination"] = object(props{
		"type":        enum("number").def("number"),
		"number":      e164().d("E.164 number to transfer to."),
		"description": str().length(1, -1).d("Tells the model when to pick this destination."),
		"message":     str().d("Spoken before the transfer."),
	}, "number", "description")

	c["FlatTool"] = object(props{
		"type":           constant("function").d("Optional in this shape."),
		"name":           functionName(),
		"description":    str().d("When the model should call the tool."),
		"parameters":     freeObject().d("JSON Schema of the arguments."),
		"url":            uri().d("Webhook for this tool; overrides server.url and the assistant's webhook."),
		"server":         ref("ToolServer"),
		"async":          boolean().def(false).d("Fire and forget: the model continues without the result."),
		"message":        str().d("Spoken while the tool runs (for async tools instead of the result)."),
		"async_response": str().d("Legacy spelling of `message`.").deprecated(),
		"asyncResponse":  str().d("Older camelCase spelling of `message`.").deprecated(),
	}, "name", "description").titled("Webhook tool (flat)").
		d("Platform format: the function's members at the top level, `type` optional. Stored in the OpenAI nested form.")

	c["ToolServer"] = object(props{
		"url": uri().d("https and a public address, checked like `webhook_url`."),
		"secret": str().nullable().writeOnly().d("Signs the tool-calls webhook. Write-only: sealed at rest, never returned (see `secret_set`); " +
			"omitted on PATCH keeps the stored secret of the tool with the same function name, null or \"\" removes it."),
		"secret_set": boolean().readOnly().d("Whether the tool has its own signing secret."),
	}, "url").d("Webhook that executes the tool.")
	c["FunctionTool"] = object(props{
		"type": constant("function"),
		"function": object(props{
			"name":        functionName(),
			"description": str(),
			"parameters":  freeObject().d("JSON Schema of the arguments."),
		}, "name"),
		"server":         ref("ToolServer"),
		"async":          boolean().def(false),
		"url":            uri().d("Webhook for this tool; wins over server.url."),
		"message":        str().d("Spoken while the tool runs."),
		"async_response": str().d("Legacy spelling of `message`.").deprecated(),
		"asyncResponse":  str().d("Older camelCase spelling of `message`.").deprecated(),
	}, "type", "function").titled("Function tool (OpenAI style)").d("ToolDefinition in the OpenAI nested format.")
	c["EndCallTool"] = object(props{
		"type": enum("end_call", "endCall"),
	}, "type").titled("End call").d("Built-in tool that lets the assistant hang up. Added automatically with autonomous_silence_handling.")
	c["TransferCallTool"] = object(props{
		"type":         enum("transfer_call", "transferCall"),
		"destinations": array(ref("TransferDestination")).count(1, -1),
	}, "type", "destinations").titled("Transfer call").d("Built-in tool that transfers the call to one of the destinations.")
	c["McpTool"] = object(props{
		"type":          constant("mcp"),
		"mcp_server_id": uuid().d("A registered MCP server (see /mcp-servers)."),
		"allowed_tools": array(str().length(1, 128)).count(0, 25).uniqueItems().nullable().d("Tool names the assistant may use; null or omitted = every tool of the server."),
		"required":      boolean().def(true).d("Reject the call when the server is unreachable."),
	}, "type", "mcp_server_id").titled("MCP tool set")
	c["ToolDefinition"] = oneOf(ref("FlatTool"), ref("FunctionTool"), ref("EndCallTool"), ref("TransferCallTool"), ref("McpTool")).
		d("A tool the model may call: a flat webhook tool (no `type`) or one chosen by `type` (`function`, `end_call`/`endCall`, `transfer_call`/`transferCall`, `mcp`).")

	// Tool templates, newest generation.
	c["ToolFunctionConfig"] = object(props{
		"name":        functionName().d("Function name the model calls; defaults to the template name, which must then follow the same rule."),
		"description": str(),
		"parameters":  freeObject().d("JSON Schema of the arguments."),
		"url":         uri().d("Webhook that executes the function; https and a public address, checked like `webhook_url`."),
		"secret": str().nullable().writeOnly().d("Signs the tool-calls webhook (the older `server_secret`). Write-only: sealed at rest, never returned " +
			"(see `secret_set`); omitted on PATCH keeps it, null or \"\" removes it."),
		"secret_set": boolean().readOnly().d("Whether the template has a signing secret."),
		"async":      boolean().def(false),
		"message":    str().d("Spoken while the function runs (older spellings `async_response`, `asyncResponse`)."),
	}).titled("function").d("tool_config of a `function` template.")
	c["ToolEndCallConfig"] = object(props{}).titled("end_call").d("tool_config of an `end_call` template: nothing to configure.")
	c["ToolTransferConfig"] = object(props{
		"destinations": array(ref("TransferDestination")).count(1, -1),
	}, "destinations").titled("transfer_call").d("tool_config of a `transfer_call` template.")
	toolConfig := func() *schema {
		return &schema{
			AnyOf:       []*schema{ref("ToolFunctionConfig"), ref("ToolEndCallConfig"), ref("ToolTransferConfig")},
			Description: "Shape follows tool_type: function → ToolFunctionConfig, end_call → {}, transfer_call → ToolTransferConfig.",
		}
	}
	toolType := func() *schema { return enum("function", "end_call", "transfer_call") }
	older := " Older request generations are accepted too and normalised: `tool_type` spelled `endCall`/`transferCall`; " +
		"the flat form `{name, description, type, url, async, parameters}`; and `{name, description, function_definition: {name, description, parameters}, server_url, server_secret, async}`."
	legacyIn := func(p props) props {
		return merge(p, props{
			"type":                enum("function", "end_call", "transfer_call", "endCall", "transferCall").d("DOCS-NEW flat form: the tool type."),
			"url":                 uri().d("DOCS-NEW flat form: tool_config.url."),
			"async":               boolean().d("DOCS-NEW and SDK-OLD: tool_config.async."),
			"parameters":          freeObject().d("DOCS-NEW flat form: tool_config.parameters."),
			"function_definition": ref("FunctionDefinition").d("SDK-OLD: tool_config name, description, parameters."),
			"server_url":          uri().d("SDK-OLD: tool_config.url."),
			"server_secret":       str().nullable().writeOnly().d("SDK-OLD: tool_config.secret; write-only."),
		})
	}
	c["FunctionDefinition"] = object(props{
		"name":        functionName(),
		"description": str().nullable(),
		"parameters":  freeObject().nullable(),
	}).d("SDK-OLD's function_definition.")
	create := object(legacyIn(props{
		"name":        str().length(1, -1),
		"description": str().nullable(),
		"tool_type":   toolType(),
		"tool_config": toolConfig(),
	}), "name")
	create.AnyOf = []*schema{{Required: []string{"tool_type"}}, {Required: []string{"type"}}, {Required: []string{"function_definition"}}, {Required: []string{"server_url"}}}
	c["ToolTemplateCreate"] = create.d("New tool template: `name` and the tool type (`tool_type`, or the older `type`; SDK-OLD's `function_definition`/`server_url` make a function template)." + older)
	c["ToolTemplateUpdate"] = object(legacyIn(props{
		"name":        str().length(1, -1),
		"description": str().nullable(),
		"tool_type":   toolType(),
		"tool_config": toolConfig().d("Replaces the stored config; shape follows tool_type."),
	})).d("Partial update." + older)
	c["ToolTemplate"] = object(merge(props{
		"name":                str(),
		"description":         str().nullable(),
		"tool_type":           toolType(),
		"tool_config":         toolConfig(),
		"function_definition": ref("FunctionDefinition").nullable().d("SDK-OLD view of a function template; null for other types."),
		"server_url":          uri().nullable().d("SDK-OLD view: tool_config.url."),
		"async":               boolean().d("tool_config.async (false for other types)."),
		"has_server_secret":   boolean().d("SDK-OLD view: whether a signing secret is set; the secret is never returned."),
		"type":                toolType().d("DOCS-NEW view: tool_type."),
		"url":                 uri().nullable().d("DOCS-NEW view: tool_config.url."),
		"parameters":          freeObject().nullable().d("DOCS-NEW view: tool_config.parameters."),
	}, stamped()), "id", "org_id", "name", "description", "tool_type", "tool_config", "function_definition", "server_url", "async", "has_server_secret",
		"type", "url", "parameters", "created_at", "updated_at").
		d("Reusable tool definition, in the newest shape plus the members older clients read. Attaching it to an assistant copies tool_config into llm_config.tools; later edits do not propagate.")
}
