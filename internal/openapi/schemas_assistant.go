package openapi

// This file describes assistants (spec §8.5–§8.8).

import "github.com/parley-voice/parley/internal/catalog"

// assistantFields are the settable members of an assistant. In requests
// every member is optional except name on create; nullable members accept
// null to clear them.
func assistantFields() props {
	return props{
		"name":                 str().length(1, -1).d("Display name."),
		"business_name":        str().nullable().d("Shown in calls and usage logs as `business_name`."),
		"notification_email":   email().nullable().d("Receives the end-of-call report email."),
		"notification_emails":  array(email()).count(0, 5).nullable().d("Up to 5 addresses that receive the end-of-call report email."),
		"recording_consent":    ref("RecordingConsent").nullable(),
		"first_message":        str().nullable().d("Opening line for inbound calls (outbound calls fall back to it)."),
		"is_active":            boolean().def(true),
		"max_duration_seconds": integer().between(10, 43200).nullable().d("Hard cap on call length in seconds; null = no cap.").ex(300),
		"autonomous_silence_handling": boolean().def(false).
			d("Prompt a silent caller and hang up after the attempts in speech_config.silence; adds the end-call tool."),
		"silence_timeout_seconds": integer().between(1, 600).def(8).d("Older single silence timer, in seconds."),
		"voicemail_detection":     boolean().nullable().def(false).d("Outbound calls only."),
		"voicemail_message":       str().nullable().d("Left on voicemail; null hangs up silently."),
		"gdpr_mode": boolean().def(false).
			d("No recording; transcript, summary and analysis kept only for the organization's content retention (30 days when unset); the caller's number masked in logs and call ids."),
		"recording_enabled": boolean().def(false).
			d("Parley: record the call as a two-channel WAV (caller left, assistant right), linked from the call's `recording_url`. Calls whose caller agrees to `recording_consent` are recorded too; `gdpr_mode` turns recording off."),
		"webhook_url": uri().nullable().d("Receives the webhook events below. https and a public address (checked like the delivery guard: " +
			"every numeric spelling, IPv4-mapped, NAT64); PARLEY_ALLOW_PRIVATE_URLS admits http and loopback/private addresses."),
		"webhook_secret": str().nullable().writeOnly().d("HMAC secret used to sign webhook deliveries. Write-only: sealed at rest, never returned " +
			"(see `webhook_secret_set`); omitted on PATCH keeps it, null or \"\" removes it."),
		"webhook_secret_set": boolean().readOnly().d("Whether a webhook signing secret is stored; the secret itself is never returned."),
		"webhook_events":     array(ref("WebhookEventType")).uniqueItems().nullable(),
		"analysis_plan":      ref("AnalysisPlan").nullable(),
		"stt_config":         ref("STTConfig").nullable().d("Null (or omitted) for realtime (speech-to-speech) assistants."),
		"llm_config":         ref("LLMConfig"),
		"tts_config":         ref("TTSConfig").nullable().d("Null for realtime (speech-to-speech) assistants."),
		"speech_config":      ref("SpeechConfig").nullable(),
	}
}

func (s *schema) uniqueItems() *schema { s.UniqueItems = true; return s }

// stamped are the server-owned members of a stored resource.
func stamped() props {
	return props{
		"id":         uuid().readOnly(),
		"org_id":     uuid().readOnly(),
		"created_at": timestamp().readOnly(),
		"updated_at": timestamp().readOnly(),
	}
}

func assistantSchemas(c map[string]*schema, cat *catalog.Catalog) {
	c["WebhookEventType"] = enum(webhookEvents()...)
	c["RecordingConsent"] = object(props{
		"enabled": boolean(),
		"message": str().length(1, -1).d("Announcement played before the call, in the assistant's voice: the caller presses 1 to agree (the call is recorded and the conversation starts) or 2 to decline (the call ends); without a key for 10 s it is said once more, then the call ends."),
	}, "enabled", "message").d("Recording consent prompt for inbound phone calls.")

	c["AnalysisMessage"] = object(props{
		"role":    enum("system", "user"),
		"content": str().length(1, -1).d("May use the placeholders `{{schema}}`, `{{transcript}}` and `{{ended_reason}}`."),
	}, "role", "content")
	c["AnalysisPlan"] = object(props{
		"structured_data_plan": object(props{
			"enabled":     boolean(),
			"schema":      freeObject().d("JSON Schema of the data to extract; required when enabled, unless template_id is given."),
			"messages":    array(ref("AnalysisMessage")),
			"template_id": uuid().d("Analysis template to use instead of schema and messages (older clients).").deprecated(),
		}, "enabled"),
		"min_messages_threshold": integer().atLeast(0).def(2).d("Minimum conversation messages before analysis runs."),
	}).d("Post-call structured extraction; the result is the call's `analysis_result`.").
		ex(map[string]any{
			"structured_data_plan": map[string]any{
				"enabled": true,
				"schema":  map[string]any{"type": "object", "properties": map[string]any{"intent": map[string]any{"type": "string"}}},
				"messages": []any{map[string]any{"role": "system",
					"content": "Analyze the following call transcript according to this schema: {{schema}}"}},
			},
			"min_messages_threshold": 5,
		})

	c["SpeechConfig"] = object(props{
		"turn_taking": object(props{
			"endpointing_min_delay":      number().between(0.1, 5).def(0.4).d("Shortest pause in seconds before answering."),
			"endpointing_max_delay":      number().between(0.1, 5).def(2).d("Longest wait in seconds; at least endpointing_min_delay."),
			"interruption_min_duration":  number().between(0.05, 2).def(0.3).d("Seconds the caller must talk to interrupt."),
			"interruption_min_words":     integer().between(0, 10).def(0).d("Words the caller must say to interrupt; 0 = off."),
			"false_interruption_timeout": number().between(0.2, 5).nullable().def(1.5).d("Resume after a non-speech interruption after this many seconds; null = off."),
		}).d("Pipeline assistants only."),
		"pronunciation": array(object(props{
			"from": str().length(1, 64),
			"to":   str().length(0, 128),
		}, "from", "to")).count(0, 50).d("Literal replacements applied before text-to-speech; pipeline assistants only."),
		"background_audio": object(props{
			"enabled": boolean().def(false),
			"clip":    enum(fieldValues(cat.Speech(), "background_audio", "clip")...).def("office"),
			"volume":  number().between(0.05, 1).def(0.3),
		}),
		"silence": object(props{
			"messages":            array(str().length(1, 300)).count(0, 5).d("Spoken on successive attempts."),
			"final_message":       str().length(0, 300).nullable().d("Spoken on the last attempt before hanging up."),
			"first_check_seconds": number().between(1, 60).def(3),
			"interval_seconds":    number().between(3, 120).def(12),
			"max_attempts":        integer().between(1, 10).def(3),
		}).d("Used when autonomous_silence_handling is on."),
		"end_call_message":       str().length(0, 300).nullable().d("Spoken before the assistant ends the call itself; pipeline assistants only."),
		"first_message_outbound": str().length(0, 300).nullable().d("Opening line for outbound calls; falls back to first_message."),
	}).d("Speech behaviour. Every part is optional; omitted parts use the defaults shown.")

	create := object(assistantFields(), "name").
		d("New assistant. Only `name` is required; every other setting takes its default.")
	create.Examples = []any{map[string]any{
		"name":          "Reception",
		"first_message": "Hello, how can I help you?",
		"stt_config":    map[string]any{"provider": "deepgram", "model": "nova-3", "language": "nl"},
		"llm_config": map[string]any{"provider": "openai", "model": "gpt-5.4",
			"messages": []any{map[string]any{"role": "system", "content": "You are a friendly receptionist."}}},
		"tts_config": map[string]any{"provider": "elevenlabs", "voice_id": "ukiwGs47sHyibruHJ1vg"},
	}}
	c["AssistantCreate"] = create
	c["AssistantUpdate"] = object(assistantFields()).
		d("Partial update: only the members sent change; null clears a nullable member. A config object sent replaces the stored one.")
	c["Assistant"] = object(merge(assistantFields(), stamped()),
		"id", "org_id", "name", "is_active", "llm_config", "tts_config", "created_at", "updated_at").
		d("A voice assistant (deprecated name: agent).")
}
