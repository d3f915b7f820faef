package openapi

// This file describes outbound calls (spec §7.5, §8.13), call control
// commands (§7.6, §8.12), the MCP server test (§7.16) and the webhook
// delivery log (a Parley extension).

// maxCommandText caps a command's content and message, in characters.
const maxCommandText = 4000

func liveSchemas(c map[string]*schema) {
	metadata := props{"metadata": freeObject().d("Free-form object echoed into webhooks as part of `assistant`.")}
	c["TransientAssistant"] = object(merge(assistantFields(), metadata), "llm_config").
		d("A one-off assistant for one call, not saved. `name` is optional. A realtime `llm_config.provider` takes no `stt_config` or `tts_config`; a pipeline provider needs both.")
	c["AssistantConfigOverride"] = object(merge(assistantFields(), metadata)).
		d("Members that replace the saved assistant's for one call. The merge is shallow: a config object sent (e.g. `llm_config`) replaces the saved one whole. The result is validated like a transient assistant.")

	c["OutboundCallRequest"] = object(props{
		"destination":        e164().d("Number to call."),
		"assistant_id":       uuid().d("Reference mode: the saved assistant to use (it must be active)."),
		"assistant":          ref("TransientAssistant").d("Transient mode: a one-off assistant. Not with assistant_id."),
		"assistant_override": ref("AssistantConfigOverride").d("Hybrid mode, with assistant_id: members that replace the saved assistant's for this call."),
		"number_id":          uuid().d("Number to call from; it must be active and have a SIP trunk (transfer_trunk_id). Default: the oldest such number."),
		"first_message":      str().d("Opening line for this call; replaces the assistant's first_message and speech_config.first_message_outbound."),
		"agent_id":           uuid().d("Deprecated alias of assistant_id.").deprecated(),
		"agent":              ref("TransientAssistant").d("Deprecated alias of assistant.").deprecated(),
		"agent_config":       ref("TransientAssistant").d("Deprecated alias of assistant.").deprecated(),
		"agent_override":     ref("AssistantConfigOverride").d("Deprecated alias of assistant_override.").deprecated(),
	}, "destination").d("Exactly one of `assistant_id` and `assistant` (or their aliases) is required.").
		ex(map[string]any{"destination": "+31612345678", "assistant_id": "4f4c3c57-7a0e-4d3c-9d3c-6f0d5f1c2b3a",
			"assistant_override": map[string]any{"first_message": "Hi, this is Acme calling about your order."}})
	c["OutboundCallResponse"] = object(props{
		"success": &schema{Type: "boolean", Const: true},
		"call_id": str().d("Id of the new call.").ex("call-outbound-abc123"),
		"status":  constant("dialing"),
	}, "success", "call_id", "status")

	text := func(desc string) *schema { return str().length(1, maxCommandText).d(desc) }
	optText := func(desc string) *schema { return str().length(0, maxCommandText).d(desc) }
	c["InjectContextCommand"] = object(props{
		"type":             constant("inject-context"),
		"content":          text("Text added silently to the assistant's context."),
		"trigger_response": boolean().def(false).d("Make the assistant answer at once (pipeline models)."),
	}, "type", "content")
	c["SayCommand"] = object(props{
		"type":      constant("say"),
		"content":   text("Spoken verbatim by the assistant."),
		"end_after": boolean().def(false).d("End the call once the text is spoken (pipeline models)."),
	}, "type", "content")
	c["EndCallCommand"] = object(props{
		"type":    constant("end-call"),
		"message": optText("Final sentence before hanging up."),
	}, "type")
	c["TransferCommand"] = object(props{
		"type": constant("transfer"),
		"destination": str().d("E.164 number or SIP URI (`sip:` or `sips:` with a host). Uses the number's transfer_trunk_id SIP trunk.").
			ex("+31201234567").ex("sip:desk@pbx.example.com"),
		"message": optText("Announcement before the transfer."),
	}, "type", "destination")
	c["CallControlCommand"] = tagged("type", map[string]string{
		"inject-context": "InjectContextCommand", "say": "SayCommand", "end-call": "EndCallCommand", "transfer": "TransferCommand",
	}, "InjectContextCommand", "SayCommand", "EndCallCommand", "TransferCommand").
		d("One command for a call in progress, chosen by `type`. Members of other types are refused.")
	c["CallControlResponse"] = object(props{
		"success": &schema{Type: "boolean", Const: true},
		"message": str().ex("Command sent successfully"),
	}, "success")

	headers := stringMap().writeOnly().d("Headers laid over the stored ones for this test only; never stored.")
	ten := 10
	headers.MaxProperties = &ten
	c["McpServerTestRequest"] = object(props{"headers": headers}).d("Optional; an empty body tests the stored settings.")
	c["McpTool"] = object(props{
		"name":         str(),
		"description":  str().nullable(),
		"input_schema": freeObject().d("JSON Schema of the tool's arguments."),
	}, "name", "description", "input_schema")
	c["McpServerTestResult"] = oneOf(
		object(props{
			"ok":          &schema{Type: "boolean", Const: true},
			"duration_ms": integer().atLeast(0),
			"tools":       array(ref("McpTool")),
		}, "ok", "duration_ms", "tools").titled("McpServerTestSuccess"),
		object(props{
			"ok":          &schema{Type: "boolean", Const: false},
			"duration_ms": integer().atLeast(0),
			"error":       str().d("Why the server could not be used."),
		}, "ok", "duration_ms", "error").titled("McpServerTestFailure"),
	).d("`ok` true with the server's tools, or `ok` false with the reason.")

	c["WebhookDelivery"] = object(props{
		"id":          uuid(),
		"event_id":    str().d("The event delivered (see GET /webhook-events)."),
		"event_type":  ref("WebhookEventType"),
		"call_id":     str().nullable(),
		"url":         uri(),
		"attempt":     integer().atLeast(1),
		"status_code": integer().nullable().d("HTTP status the receiver answered; null when no response arrived."),
		"error":       str().nullable().d("Why the attempt failed; null on success."),
		"duration_ms": integer().atLeast(0),
		"created_at":  timestamp(),
	}, "id", "event_id", "event_type", "call_id", "url", "attempt", "status_code", "error", "duration_ms", "created_at").
		d("One attempt to deliver a webhook event.")
	c["WebhookEvent"] = object(props{
		"id":              str().d("Stable event id, the same on every attempt."),
		"event_type":      ref("WebhookEventType"),
		"call_id":         str().nullable(),
		"seq":             integer().atLeast(0).d("Order of the call's events (1, 2, …); 0 for events of no call."),
		"url":             uri(),
		"attempts":        integer().atLeast(0),
		"status":          enum("pending", "delivered", "failed").d("`failed`: delivery was given up."),
		"next_attempt_at": timestamp().nullable().d("When the next attempt is due; null once delivered or failed."),
		"delivered_at":    timestamp().nullable(),
		"last_error":      str().nullable(),
		"created_at":      timestamp(),
	}, "id", "event_type", "call_id", "seq", "url", "attempts", "status", "next_attempt_at", "delivered_at", "last_error", "created_at").
		d("A webhook event and its delivery state (the payload is not included).")
}
