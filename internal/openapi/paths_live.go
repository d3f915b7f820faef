package openapi

// This file declares the operations on live calls (outbound calls and call
// control), the MCP server test and the webhook delivery log.

func livePaths(ps pathSet) {
	const calls = "Calls"
	ps.add(apiBase+"/calls/outbound", nil, post(op("createOutboundCall", calls, "Start an outbound call").body("OutboundCallRequest").
		desc("Dials `destination` from one of the organization's numbers with a SIP trunk and returns at once; the call typically connects in 2–5 seconds. "+
			"Name the assistant in one of three modes: `assistant_id` (reference: a saved assistant), `assistant_id` with `assistant_override` "+
			"(hybrid: the override's top-level members replace the saved ones for this call), or `assistant` (transient: a one-off configuration, not saved). "+
			"A realtime `llm_config.provider` takes no `stt_config` or `tts_config`; a transient assistant with a pipeline provider needs both. "+
			"`first_message` replaces the assistant's opening line (and its speech_config.first_message_outbound). "+
			"Without `number_id` the oldest active number with a SIP trunk is used. "+
			"Deprecated aliases: `agent_id`, `agent`, `agent_config`, `agent_override`.").
		reply("200", "The call is being dialled; follow it with GET /calls/{id} or webhooks.", ref("OutboundCallResponse")).
		fails("402", "PaymentRequired", "The organization has no credits left (`insufficient_credits`).").
		fails("404", "NotFound", "`assistant_id` or `number_id` names nothing in the organization.").
		fails("503", "ServiceUnavailable", "The voice engine is off on this server.")))
	ps.add(apiBase+"/calls/{id}/control", []*parameter{pathParam("CallID")}, post(op("controlCall", calls, "Control a call in progress").body("CallControlCommand").
		desc("Sends one command to a call whose status is `in-progress` (400 otherwise). Each call takes at most 10 commands a minute; "+
			"the X-RateLimit-* headers then describe whichever limit is closer, the call's or the API key's. "+
			"On realtime (speech-to-speech) models `end-call` and `transfer` are reliable; `inject-context` and `say` may not be.").
		reply("200", "The engine accepted the command.", ref("CallControlResponse")).
		fails("429", "TooManyRequests", "More than 10 commands a minute for this call, or the API key's limit.").
		fails("503", "ServiceUnavailable", "The voice engine is off on this server.")))

	test := op("testMcpServer", "MCP Servers", "Test an MCP server").body("McpServerTestRequest").
		desc("Connects to the server with its stored settings and lists its tools. `headers` are laid over the stored headers for this test only "+
			"(names compared case-insensitively) and never stored. A server that cannot be reached or refuses the request still answers 200, with `ok` false and the reason.").
		reply("200", "The outcome of the test.", ref("McpServerTestResult")).
		fails("503", "ServiceUnavailable", "This server has no MCP client.")
	test.RequestBody.Required = false
	ps.add(apiBase+"/mcp-servers/{id}/test", []*parameter{pathParam("ID")}, post(test))

	const hooks = "Webhooks"
	ps.add(apiBase+"/webhook-deliveries", nil, get(op("listWebhookDeliveries", hooks, "List webhook delivery attempts").
		desc("Parley extension. Every attempt to deliver a webhook event, newest first.").
		query("Limit", "Offset").
		queryParam("event_id", "Only attempts for this event.", str()).
		queryParam("call_id", "Only attempts for events of this call.", str()).
		reply("200", "A page of delivery attempts.", object(props{
			"deliveries": array(ref("WebhookDelivery")),
			"pagination": ref("Pagination"),
		}, "deliveries", "pagination"))))
	ps.add(apiBase+"/webhook-events", nil, get(op("listWebhookEvents", hooks, "List webhook events").
		desc("Parley extension. Webhook events with their delivery state, newest first; payloads are not included.").
		query("Limit", "Offset").
		queryParam("call_id", "Only events of this call.", str()).
		queryParam("event_type", "Only events of this type.", ref("WebhookEventType")).
		reply("200", "A page of webhook events.", object(props{
			"events":     array(ref("WebhookEvent")),
			"pagination": ref("Pagination"),
		}, "events", "pagination"))))
}

// fails documents an error response with the reusable response name.
func (o *operation) fails(code, name, when string) *operation {
	o.Responses[code] = &response{Ref: responseRef + name, Description: when}
	return o
}
