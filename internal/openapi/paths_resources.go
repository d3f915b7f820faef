package openapi

// This file declares calls, usage, SIP trunks, voices, BYOK keys and
// analysis templates.

func callPaths(ps pathSet) {
	ps.add(apiBase+"/calls", nil, get(op("listCalls", "Calls", "List calls").
		desc("Newest first.").
		query("Limit", "Offset").
		queryParam("status", "Only calls with this status.", ref("CallStatus")).
		query("StartDate", "EndDate").
		reply("200", "A page of calls.", object(props{
			"calls":      array(ref("Call")),
			"pagination": ref("Pagination"),
		}, "calls", "pagination"))))
	ps.add(apiBase+"/calls/{id}", []*parameter{pathParam("CallID")}, get(op("getCall", "Calls", "Get a call").
		desc("Returns the bare call object (no wrapper). Call ids may contain `+`: percent-encode the id (`+` as `%2B`); a literal `+` is never read as a space.").
		reply("200", "The call.", ref("Call"))))
	recOp := op("getCallRecording", "Calls", "Download a call's recording").
		desc("Parley extension. The call's recording as a two-channel WAV (16-bit PCM, 8 kHz): the caller on the left channel, "+
			"the assistant on the right as the caller heard it. Range requests are supported. "+
			"Authenticate with an API key, or use the call's `recording_url` as given: it is signed (`org`, `expires`, `signature`) "+
			"and works without a key until it expires (24 hours by default); an expired or altered link answers 401. "+
			"404 when the call has no recording (not recorded, still being stored, or deleted by retention).").
		queryParam("org", "Signed links only: the organization.", str()).
		queryParam("expires", "Signed links only: Unix time the link stops working.", integer()).
		queryParam("signature", "Signed links only: the link's signature.", str())
	recOp.Responses["200"] = &response{Description: "The recording.", Content: map[string]*mediaType{"audio/wav": {Schema: &schema{Type: "string", Format: "binary"}}}}
	recOp.Responses["206"] = &response{Description: "Part of the recording (a Range request).", Content: map[string]*mediaType{"audio/wav": {Schema: &schema{Type: "string", Format: "binary"}}}}
	ps.add(apiBase+"/calls/{id}/recording", []*parameter{pathParam("CallID")}, get(recOp))
	ps.add(apiBase+"/usage", nil, get(op("getUsage", "Usage", "Get usage logs").
		desc("Usage logs, newest first, with totals over every log matching the date filter.").
		query("Limit", "Offset", "StartDate", "EndDate").
		reply("200", "A page of usage logs and the totals.", object(props{
			"logs":       array(ref("UsageLog")),
			"pagination": ref("Pagination"),
			"summary":    ref("UsageSummary"),
		}, "logs", "pagination", "summary"))))
}

func trunkPaths(ps pathSet) {
	const tag = "SIP Trunks"
	item := func() *schema { return wrapped("trunk", ref("SipTrunk")) }
	created := object(props{
		"trunk":     ref("SipTrunk"),
		"sip_trunk": ref("SipTrunk").d("The same trunk, for clients of the documented create example."),
	}, "trunk", "sip_trunk")
	ps.add(apiBase+"/sip-trunks", nil,
		get(op("listSipTrunks", tag, "List SIP trunks").query("Limit", "Offset").
			reply("200", "A page of the organization's SIP trunks, oldest first.", paged("trunks", "SipTrunk"))),
		post(op("createSipTrunk", tag, "Create a SIP trunk").body("SipTrunkCreate").
			desc("Trunks cannot be changed afterwards (there is no PATCH); assign one to a number with PATCH /numbers/{id} {\"transfer_trunk_id\": …}.").
			reply("201", "The created trunk, under both `trunk` and `sip_trunk`.", created)))
	ps.add(apiBase+"/sip-trunks/{id}", []*parameter{pathParam("ID")},
		get(op("getSipTrunk", tag, "Get a SIP trunk").reply("200", "The trunk.", item())),
		del(op("deleteSipTrunk", tag, "Delete a SIP trunk").reply("200", "The trunk was deleted.", ref("SuccessResponse"))))
}

func voicePaths(ps pathSet) {
	ps.add(apiBase+"/voices", nil, get(op("listVoices", "Voices", "List voices").
		desc("The local voices installed on this server (provider `local`), then the closed voice lists of Google Gemini, xAI and OpenAI GPT-Live. ElevenLabs and Inworld take any voice id of theirs and are not listed.").
		reply("200", "The voices.", list("voices", "Voice"))))
}

func byokPaths(ps pathSet) {
	const tag = "BYOK"
	ps.add(apiBase+"/byok", nil,
		get(op("getByokKeys", tag, "Get stored provider keys").
			desc("Shows which providers have a key stored; the keys themselves are never returned.").
			reply("200", "The stored keys.", wrapped("byok_keys", ref("BYOKKeys")))),
		post(op("setByokKey", tag, "Store a provider key").body("BYOKKeyCreate").
			desc("Adds or replaces the organization's key for a provider; calls then use it instead of the platform's key.").
			reply("200", "The stored keys after the change.", ref("BYOKKeysResponse"))),
		del(op("deleteByokKey", tag, "Delete a provider key").body("BYOKKeyDelete").
			desc("The provider is named in the JSON body. Calls fall back to the platform's key.").
			reply("200", "The stored keys after the change.", ref("BYOKKeysResponse"))))
	ps.add(apiBase+"/byok/config", nil,
		get(op("getByokConfig", tag, "Get provider settings").
			reply("200", "Settings keyed by provider.", ref("BYOKConfigs"))),
		post(op("updateByokConfig", tag, "Update provider settings").body("BYOKConfigUpdate").
			desc("Merges `config` into the provider's stored settings. A key for the provider must already be stored (400 otherwise).").
			reply("200", "The merged settings.", ref("BYOKConfigResponse"))))
}

func analysisTemplatePaths(ps pathSet) {
	c := newCRUD(resource{
		path: "/analysis-templates", tag: "Analysis Templates", one: "AnalysisTemplate", many: "AnalysisTemplates",
		noun: "analysis template", key: "analysis_template", listKey: "analysis_templates",
		schema: "AnalysisTemplate", create: "AnalysisTemplateCreate", update: "AnalysisTemplateUpdate",
	})
	c.list.Parameters = nil // the spec's own page size
	c.list.queryParam("limit", "Page size.", integer().between(1, 100).def(50)).query("Offset").
		desc("A page of templates, given both as `analysis_templates` and as `data` with `total`, `limit` and `offset`.").
		reply("200", "A page of analysis templates.", ref("AnalysisTemplateList"))
	c.create.desc("Accepts `system_prompt`/`user_prompt` with `schema`, or the older `messages` with `min_messages_threshold`.")
	c.add(ps)
}
