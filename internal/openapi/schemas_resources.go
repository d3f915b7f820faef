package openapi

// This file describes phone numbers, calls, usage, SIP trunks, voices, BYOK
// keys and analysis templates (spec §7.4–§7.13, §8.10–§8.18).

import "github.com/parley-voice/parley/internal/catalog"

func resourceSchemas(c map[string]*schema, cat *catalog.Catalog) {
	numberSchemas(c)
	callSchemas(c)
	trunkSchemas(c)
	byokSchemas(c, cat)
	analysisTemplateSchemas(c)
	c["Voice"] = object(props{
		"id":          str().d("Voice id to use as tts_config.voice_id.").ex("nl_NL-pim-medium"),
		"name":        str(),
		"provider":    str().d("TTS provider that speaks this voice.").ex("local"),
		"language":    str().d("Language or locale the voice speaks."),
		"description": stringMap().d("Description keyed by language, e.g. `{\"en\": \"…\", \"nl\": \"…\"}`."),
		"style":       str().d("Character of the voice, e.g. `Warm, friendly`."),
	}, "id", "name", "provider").d("A text-to-speech voice hosted by this server.")
}

func numberSchemas(c map[string]*schema) {
	c["PhoneNumber"] = object(merge(stamped(), props{
		"phone_number":        e164(),
		"name":                str().nullable().d("Display name."),
		"assistant_id":        uuid().nullable().d("Assistant that answers calls; null = calls are not handled."),
		"agent_id":            uuid().nullable().d("Same as assistant_id (older name)."),
		"agent_name":          str().nullable().d("Name of the assistant."),
		"business_name":       str().nullable().d("The assistant's business_name."),
		"transfer_trunk_id":   uuid().nullable().d("SIP trunk used for transfers and outbound dialing."),
		"transfer_trunk_name": str().nullable(),
		"workflow_id":         uuid().nullable().d("Workflow run on calls to this number instead of the bare assistant."),
		"workflow_name":       str().nullable(),
		"source":              str().nullable().d("Where the number came from."),
		"is_active":           boolean(),
	}), "id", "org_id", "phone_number", "assistant_id", "agent_id", "transfer_trunk_id", "workflow_id", "is_active", "created_at", "updated_at").
		d("A phone number registered with the platform (forwarded to it over SIP).")
	links := func() props {
		return props{
			"name":              str().nullable().d("Display name."),
			"assistant_id":      uuid().nullable().d("Assistant that answers calls; null unassigns it."),
			"agent_id":          uuid().nullable().d("Deprecated alias of assistant_id.").deprecated(),
			"transfer_trunk_id": uuid().nullable().d("SIP trunk for transfers and outbound dialing; null removes it."),
			"workflow_id":       uuid().nullable().d("Workflow to run; null detaches it."),
			"is_active":         boolean(),
		}
	}
	create := object(merge(links(), props{
		"phone_number": e164().d("The number in E.164 form."),
		"number":       e164().d("Alias of phone_number.").deprecated(),
	}))
	create.AnyOf = []*schema{{Required: []string{"phone_number"}}, {Required: []string{"number"}}}
	c["PhoneNumberCreate"] = create.d("Register a number. `phone_number` (or its alias `number`) is required; `is_active` defaults to true.")
	c["PhoneNumberUpdate"] = object(links()).d("Partial update: only the members sent change; null clears a link.")
}

func callSchemas(c map[string]*schema) {
	c["CallStatus"] = enum(callStatuses()...).
		d("`dialing` is the status right after POST /calls/outbound; `rejected` is an inbound call refused (e.g. no credits).")
	c["Call"] = object(props{
		"id": str().d("Opaque id; inbound ids look like `call-_+31623731537_XqaQxRRgAzYc` and contain `+`.").
			ex("call-_+31623731537_XqaQxRRgAzYc"),
		"org_id":           uuid(),
		"caller_phone":     str().nullable().d("Caller's E.164 number; null on web calls and after metadata retention expires."),
		"assistant_phone":  str().nullable().d("The platform number called or dialled from; null on web calls."),
		"agent_phone":      str().nullable().d("Same as assistant_phone."),
		"status":           ref("CallStatus"),
		"direction":        enum(callDirections()...).nullable(),
		"end_reason":       str().nullable().d("Why the call ended, e.g. `user_hangup`, `max_duration`."),
		"error":            str().nullable().d("Error message of a failed call."),
		"started_at":       timestamp().nullable().d("When the call was answered."),
		"ended_at":         timestamp().nullable(),
		"duration_seconds": integer().atLeast(0).nullable(),
		"summary":          str().nullable().d("AI summary in the call's language."),
		"analysis_result":  freeObject().nullable().d("Result of the assistant's analysis plan."),
		"messages":         array(ref("Message")).nullable().d("Transcript."),
		"room_name":        str().nullable().d("Media room of the call."),
		"recording_url": uri().nullable().d("Signed link to the call's two-channel WAV (GET /calls/{id}/recording), valid for 24 hours by default without an API key; " +
			"each read of the call gives a fresh one. Null when the call was not recorded (`recording_enabled`, `recording_consent`) or the recording is still being stored."),
		"analysis_error": str().nullable().d("Parley extension: why the structured analysis (analysis_plan) produced no result, e.g. the model's answer still did not match the schema after one repair."),
		"consent":        enum("agreed", "declined", "no_answer").nullable().d("Parley extension: the caller's answer to the recording-consent prompt, when it was played."),
		"metrics":        array(ref("TurnMetrics")).nullable().d("Parley extension: latency figures of each assistant reply, written as each turn completes."),
		"agent_id":       uuid().nullable().d("Assistant that handled the call."),
		"assistant_id":   uuid().nullable().d("Same as agent_id."),
		"number_id":      uuid().nullable().d("Platform phone number of the call."),
		"agent_name":     str().nullable().d("Name of the assistant."),
		"assistant_name": str().nullable().d("Same as agent_name."),
		"business_name":  str().nullable(),
		"phone_number":   str().nullable().d("The platform number in E.164 form."),
		"created_at":     timestamp(),
		"updated_at":     timestamp(),
	}, "id", "status", "direction", "created_at", "updated_at").d("A call record.")

	c["TurnMetrics"] = object(props{
		"turn":                         integer().atLeast(1),
		"endpointing_ms":               integer().d("Caller's last voiced frame → end of the turn."),
		"llm_first_token_ms":           integer().d("Model request → first token."),
		"tts_first_audio_ms":           integer().d("First text sent to TTS → first audio."),
		"first_packet_ms":              integer().d("End of the turn → first RTP packet of the reply."),
		"stt_final_to_first_packet_ms": integer().d("Final transcript received → first RTP packet of the reply."),
		"interrupted":                  boolean(),
		"false_interruption":           boolean(),
	}, "turn").d("One reply's latency figures.")

	c["UsageLog"] = object(props{
		"id":               uuid(),
		"call_id":          str().nullable().d("The call billed."),
		"duration_sec":     integer().atLeast(0),
		"duration_seconds": integer().atLeast(0).d("duration_sec again, as the older usage guide spells it."),
		"call_type":        enum(usageTypes()...),
		"byok_stt":         boolean().d("The organization's own STT key was used."),
		"byok_llm":         boolean().d("The organization's own LLM key was used."),
		"byok_tts":         boolean().d("The organization's own TTS key was used."),
		"phone_number":     str().nullable(),
		"agent_name":       str().nullable(),
		"business_name":    str().nullable(),
		"created_at":       timestamp(),
		"minutes_used":     number().atLeast(0).d("What the call cost: calls are billed per second, so duration_sec / 60, shown to four decimal places."),
		"billed_org_id":    str().nullable().d("The organization whose minutes_balance paid: this one, or its parent for a child organization."),
	}, "id", "duration_sec", "duration_seconds", "call_type", "byok_stt", "byok_llm", "byok_tts", "created_at", "minutes_used")
	c["UsageSummary"] = object(props{
		"total_calls":            integer().atLeast(0),
		"total_duration_seconds": integer().atLeast(0),
		"total_duration_minutes": number().atLeast(0),
		"total_minutes_used":     number().atLeast(0).d("Minutes billed for these calls (per second; four decimal places)."),
		"total_minutes":          number().atLeast(0).d("total_minutes_used again, as the older usage guide spells it."),
	}, "total_calls", "total_duration_seconds", "total_duration_minutes", "total_minutes_used", "total_minutes").d("Totals over every log matching the filter, not just this page.")
}

func trunkSchemas(c map[string]*schema) {
	transport := func() *schema { return enum("udp", "tcp", "tls") }
	mediaEncryption := func() *schema {
		return enum("none", "srtp").d("`srtp`: calls over this trunk use SDES-SRTP (RFC 4568): outbound calls offer only RTP/SAVP and fail when the answer is not SRTP; inbound calls to a number using the trunk without SRTP get 488. SDES keys travel in the SDP, so `srtp` needs `transport: tls` (the server setting PARLEY_SIP_SDES_WITHOUT_TLS allows it over udp/tcp for development).")
	}
	c["SipTrunk"] = object(merge(stamped(), props{
		"name":                 str(),
		"provider":             str().nullable().d("SIP provider name."),
		"address":              str().d("SIP host, optionally with port, e.g. `sip.example.com`."),
		"transport":            transport().nullable(),
		"media_encryption":     mediaEncryption(),
		"auth_username":        str().nullable(),
		"inbound_addresses":    array(str()).d("Addresses calls from this trunk come from: IPs, CIDR prefixes (`203.0.113.0/24`) and host names (resolved and refreshed every minute). Calls to the trunk's numbers from elsewhere get 403."),
		"inbound_auth":         enum("addresses", "digest").d("Parley extension. `addresses`: calls are admitted from `inbound_addresses` only. `digest`: also from wherever the trunk registered from (REGISTER with its `auth_username`/`auth_password`) and from calls carrying valid digest credentials (MD5 or SHA-256, qop=auth); others are challenged with 401."),
		"outbound_number":      str().nullable().d("Caller id for calls dialled over the trunk."),
		"max_concurrent_calls": integer().between(1, 10000).nullable().d("Parley extension: the trunk's channel limit. Outbound calls (API, campaigns) over it are not started: the API answers 503 trunk_at_limit, campaigns wait. Null: no limit."),
		"is_active":            boolean(),
		"outbound_address":     str().d("The address again, as SDK-OLD reads it."),
		"host":                 str().d("The address's host, as the docs generation reads it."),
		"port":                 integer().between(1, 65535).d("The address's port; without one, 5060 (5061 for tls)."),
		"username":             str().nullable().d("auth_username, as the docs generation reads it."),
	}), "id", "org_id", "name", "address", "is_active", "outbound_address", "host", "port", "created_at", "updated_at").
		d("A SIP trunk. The password is stored encrypted and never returned.")
	create := object(props{
		"name":                 str().length(1, -1),
		"provider":             str().d("SIP provider name."),
		"address":              str().d("SIP host with optional port, e.g. `sip.example.com:5060`. Required unless `host` is given."),
		"host":                 str().d("Older spelling: host name or IP; combined with `port` into address.").deprecated(),
		"outbound_address":     str().d("Older alias of address.").deprecated(),
		"port":                 integer().between(1, 65535).def(5060).d("Used with `host`.").deprecated(),
		"transport":            transport().def("udp"),
		"media_encryption":     mediaEncryption().def("none"),
		"auth_username":        str(),
		"username":             str().d("Alias of auth_username.").deprecated(),
		"auth_password":        str().writeOnly().d("Stored encrypted; never returned."),
		"password":             str().writeOnly().d("Alias of auth_password.").deprecated(),
		"inbound_addresses":    array(str()).d("IPs, CIDR prefixes or host names (an optional `sip:` prefix and `:port` are ignored)."),
		"inbound_auth":         enum("addresses", "digest").def("addresses").d("Parley extension. `digest` needs `auth_username` and `auth_password`."),
		"outbound_number":      str(),
		"max_concurrent_calls": integer().between(1, 10000).nullable().d("Parley extension: the trunk's channel limit; null for none."),
		"is_active":            boolean().def(true),
	}, "name")
	create.AnyOf = []*schema{{Required: []string{"address"}}, {Required: []string{"host"}}, {Required: []string{"outbound_address"}}}
	c["SipTrunkCreate"] = create.d("New SIP trunk. Accepts the current fields and the documented `host`/`port`/`username`/`password` generation.")
}

func byokSchemas(c map[string]*schema, cat *catalog.Catalog) {
	keys := props{}
	var names []string
	for _, p := range cat.BYOKProviders() {
		name := p + "_secret_id"
		keys[name] = str().nullable().d("Set when a " + p + " key is stored.")
		names = append(names, name)
	}
	c["BYOKKeys"] = object(keys, names...).d("Which provider keys the organization has stored: a non-null id means configured. Keys themselves are never returned.")
	c["BYOKKeyCreate"] = object(props{
		"provider": ref("BYOKProvider"),
		"api_key": str().length(1, 4096).pattern(`^\s*[!-~]+\s*$`).writeOnly().
			d("The provider secret; stored encrypted. Visible ASCII only (it is sent in HTTP headers): no spaces, control characters or non-ASCII; surrounding whitespace is trimmed."),
	}, "provider", "api_key")
	c["BYOKKeyDelete"] = object(props{"provider": ref("BYOKProvider")}, "provider")
	c["BYOKKeysResponse"] = object(props{
		"success":   (&schema{Type: "boolean", Const: true}),
		"byok_keys": ref("BYOKKeys"),
	}, "success", "byok_keys")
	c["BYOKConfigs"] = (&schema{Type: "object", PropertyNames: ref("BYOKProvider"), AdditionalProperties: freeObject()}).
		d("Provider-specific settings keyed by provider.")
	c["BYOKConfigUpdate"] = object(props{
		"provider": ref("BYOKProvider"),
		"config":   freeObject().d("Merged into the stored settings."),
	}, "provider", "config").d("A key for the provider must already be stored.")
	c["BYOKConfigResponse"] = object(props{
		"success":  (&schema{Type: "boolean", Const: true}),
		"provider": ref("BYOKProvider"),
		"config":   freeObject().d("The merged settings."),
	}, "success", "provider", "config")
}

func analysisTemplateSchemas(c map[string]*schema) {
	fields := func() props {
		return props{
			"name":                   str().length(1, -1),
			"description":            str().nullable(),
			"system_prompt":          str().length(1, -1).nullable().d("System prompt of the analysis run."),
			"user_prompt":            str().length(1, -1).nullable().d("May use `{transcript}`, `{summary}`, `{duration}`, `{caller_number}` (or `{{…}}`)."),
			"schema":                 freeObject().d("JSON Schema of the data to extract."),
			"messages":               array(ref("AnalysisMessage")).count(1, -1).nullable().d("Older form of the prompts."),
			"min_messages_threshold": integer().atLeast(0).nullable().d("Minimum conversation messages before analysis runs."),
		}
	}
	c["AnalysisTemplateCreate"] = object(fields(), "name", "schema").d("New analysis template: only `name` and `schema` are required (SDK-OLD sends nothing else). " +
		"The prompt may be given as system_prompt and/or user_prompt, as messages, or not at all: when the template is applied its prompts are used, else its messages, else the default analysis prompt; " +
		"the schema and the transcript are added when no prompt shows them. `minMessagesThreshold` is accepted for min_messages_threshold.")
	c["AnalysisTemplateUpdate"] = object(fields()).d("Partial update.")
	c["AnalysisTemplate"] = object(merge(fields(), stamped()),
		"id", "org_id", "name", "description", "schema", "created_at", "updated_at").
		d("Reusable post-call extraction; applying it copies it into an assistant's analysis_plan.")
	c["AnalysisTemplateList"] = object(props{
		"analysis_templates": array(ref("AnalysisTemplate")),
		"data":               array(ref("AnalysisTemplate")).d("The same page, for clients of the paginated format."),
		"total":              integer().atLeast(0),
		"limit":              integer().atLeast(1),
		"offset":             integer().atLeast(0),
	}, "analysis_templates", "data", "total", "limit", "offset")
}
