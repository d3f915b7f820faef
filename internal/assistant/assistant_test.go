package assistant

import (
	"encoding/json"
	"strings"
	"testing"
)

const defaultsDoc = `{
	"name": "x",
	"business_name": null, "notification_email": null, "notification_emails": null,
	"recording_consent": null, "first_message": null, "is_active": true,
	"max_duration_seconds": null, "autonomous_silence_handling": false,
	"silence_timeout_seconds": 8, "voicemail_detection": false, "voicemail_message": null,
	"gdpr_mode": false, "recording_enabled": false, "webhook_url": null, "webhook_secret": null, "webhook_events": null,
	"analysis_plan": null,
	"stt_config": {"provider":"deepgram","model":"nova-3","language":"en"},
	"llm_config": {"provider":"openai","model":"gpt-5.4","temperature":0.7,"messages":[]},
	"tts_config": {"provider":"elevenlabs","model":"eleven_flash_v2_5","voice_id":"21m00Tcm4TlvDq8ikWAM"},
	"speech_config": null
}`

func TestNormalizeDefaults(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		name string
		in   string
		opts Options
		want string
	}{
		{"name only", `{"name":"x"}`, Options{}, defaultsDoc},
		{
			// A stored document comes back on PATCH with server keys and nulls.
			"nulls fall back to defaults, server keys dropped",
			`{"id":"5c4d030f-43e3-4e65-899e-8148521e660f","org_id":"o","created_at":"2025-12-13T10:00:00.000Z","updated_at":"t",
			  "name":"x","is_active":null,"silence_timeout_seconds":null,"voicemail_detection":null,"gdpr_mode":null,
			  "autonomous_silence_handling":null,"business_name":null,"stt_config":null,"llm_config":null,"tts_config":null,
			  "speech_config":null,"analysis_plan":null,"webhook_events":null}`,
			Options{}, defaultsDoc,
		},
		{
			"transient without name",
			`{"metadata":{"lead":42,"tags":["a"]}}`,
			Options{Transient: true},
			strings.Replace(defaultsDoc, `"name": "x",`, `"metadata": {"lead":42,"tags":["a"]},`, 1),
		},
		{
			"transient with name, null metadata",
			`{"name":"x","metadata":null}`,
			Options{Transient: true}, defaultsDoc,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Normalize(parseDoc(t, tt.in), tt.opts)
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			if g, w := canon(t, got), want(t, tt.want); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func TestNormalizeKeepsValues(t *testing.T) {
	v := newValidator(t)
	in := `{"name":"Front desk","business_name":"Acme","notification_email":"ops@example.com",
		"notification_emails":["a@example.com","b@example.nl"],"recording_consent":{"enabled":true,"message":"Press 1 & agree"},
		"first_message":"Hi <there>","is_active":false,"max_duration_seconds":300,"autonomous_silence_handling":true,
		"silence_timeout_seconds":20,"voicemail_detection":true,"voicemail_message":"Call us back","gdpr_mode":true,
		"webhook_url":"https://hooks.example.com/hms?x=1","webhook_secret":"s3cret","webhook_events":["end-of-call-report","tool-calls"]}`
	got, err := v.Normalize(parseDoc(t, in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for key, w := range map[string]string{
		"notification_emails":  `["a@example.com","b@example.nl"]`,
		"recording_consent":    `{"enabled":true,"message":"Press 1 & agree"}`,
		"first_message":        `"Hi <there>"`,
		"is_active":            `false`,
		"max_duration_seconds": `300`,
		"webhook_url":          `"https://hooks.example.com/hms?x=1"`,
		"webhook_events":       `["end-of-call-report","tool-calls"]`,
	} {
		if string(got[key]) != w {
			t.Errorf("%s = %s, want %s", key, got[key], w)
		}
	}
}

// TestNormalizeGolden runs complete documents through Normalize and compares
// them with reviewed canonical outputs.
func TestNormalizeGolden(t *testing.T) {
	v := newValidator(t)
	for _, name := range []string{"pipeline", "realtime_xai", "realtime_google", "realtime_openai_live", "local"} {
		t.Run(name, func(t *testing.T) {
			got, err := v.Normalize(readTestdata(t, name+".in.json"), Options{})
			if err != nil {
				t.Fatalf("Normalize: %v", err)
			}
			golden(t, name+".golden.json", canon(t, got))
			// Canonical output is a fixed point.
			again, err := v.Normalize(got, Options{})
			if err != nil {
				t.Fatalf("Normalize(canonical): %v", err)
			}
			if canon(t, again) != canon(t, got) {
				t.Errorf("normalising the canonical document changed it:\n%s\n%s", canon(t, again), canon(t, got))
			}
		})
	}
}

func TestElevenLabsAlias(t *testing.T) {
	v := newValidator(t)
	got, err := v.Normalize(parseDoc(t, `{"name":"x","tts_config":{"provider":"11labs","voice_id":"ukiwGs47sHyibruHJ1vg","stability":0.5}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := `{"provider":"elevenlabs","model":"eleven_flash_v2_5","voice_id":"ukiwGs47sHyibruHJ1vg","stability":0.5}`
	if string(got["tts_config"]) != w {
		t.Errorf("tts_config = %s, want %s", got["tts_config"], w)
	}
	raw, err := v.TTS(json.RawMessage(`{"provider":"11labs","model":"eleven_v3","voice_id":"v"}`), "nodes[0].tts_config")
	if err != nil || string(raw) != `{"provider":"elevenlabs","model":"eleven_v3","voice_id":"v"}` {
		t.Errorf("TTS(11labs) = %s, %v", raw, err)
	}
}

func TestRealtimeRules(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		name          string
		in            string
		stt, tts      string // expected canonical values
		wantErrField  string
		wantErrSubstr string
	}{
		{
			name: "defaults not added",
			in:   `{"name":"x","llm_config":{"provider":"xai_realtime"}}`,
			stt:  `null`, tts: `null`,
		},
		{
			name: "explicit nulls",
			in:   `{"name":"x","llm_config":{"provider":"google_realtime"},"stt_config":null,"tts_config":null}`,
			stt:  `null`, tts: `null`,
		},
		{
			name: "stt kept when sent",
			in:   `{"name":"x","llm_config":{"provider":"openai_live"},"stt_config":{"provider":"deepgram","language":"nl"}}`,
			stt:  `{"provider":"deepgram","model":"nova-3","language":"nl"}`, tts: `null`,
		},
		{
			name:         "tts forbidden",
			in:           `{"name":"x","llm_config":{"provider":"xai_realtime"},"tts_config":{"provider":"elevenlabs","voice_id":"v"}}`,
			wantErrField: "tts_config", wantErrSubstr: `tts_config must be null for a realtime assistant: llm_config.provider "xai_realtime" speaks by itself`,
		},
		{
			name:         "tts forbidden even when malformed",
			in:           `{"name":"x","llm_config":{"provider":"xai_realtime"},"tts_config":"elevenlabs"}`,
			wantErrField: "tts_config", wantErrSubstr: "must be null for a realtime assistant",
		},
		{
			name:         "stt still validated",
			in:           `{"name":"x","llm_config":{"provider":"xai_realtime"},"stt_config":{"provider":"deepgram","language":"xx"}}`,
			wantErrField: "stt_config.language", wantErrSubstr: `"xx" is not a language of provider "deepgram"`,
		},
		{
			// Switching a stored pipeline assistant to realtime must clear tts_config explicitly.
			name:         "patch to realtime keeps stored tts",
			in:           `{"name":"x","llm_config":{"provider":"xai_realtime"},"tts_config":{"provider":"elevenlabs","model":"eleven_flash_v2_5","voice_id":"v"},"stt_config":{"provider":"deepgram","model":"nova-3","language":"en"}}`,
			wantErrField: "tts_config", wantErrSubstr: `send "tts_config": null`,
		},
		{
			// Switching back: the stored nulls become the pipeline defaults.
			name: "patch to pipeline fills stt and tts",
			in:   `{"name":"x","llm_config":{"provider":"mistral"},"tts_config":null,"stt_config":null}`,
			stt:  `{"provider":"deepgram","model":"nova-3","language":"en"}`,
			tts:  `{"provider":"elevenlabs","model":"eleven_flash_v2_5","voice_id":"21m00Tcm4TlvDq8ikWAM"}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Normalize(parseDoc(t, tt.in), Options{})
			if tt.wantErrField != "" {
				e := invalid(t, err)
				if e.Field != tt.wantErrField || !strings.Contains(e.Message, tt.wantErrSubstr) {
					t.Errorf("error field %q message %q, want field %q containing %q", e.Field, e.Message, tt.wantErrField, tt.wantErrSubstr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got["stt_config"]) != tt.stt || string(got["tts_config"]) != tt.tts {
				t.Errorf("stt_config %s, tts_config %s; want %s, %s", got["stt_config"], got["tts_config"], tt.stt, tt.tts)
			}
		})
	}
}

func TestMultipleErrors(t *testing.T) {
	v := newValidator(t)
	in := `{"nmae":"typo","is_active":"yes","webhook_url":"/hooks","webhook_events":["status-update","call-started","status-update"],
		"notification_emails":["ok@example.com","nope"],
		"stt_config":{"provider":"whisper"},
		"llm_config":{"provider":"openai","model":"gpt-9","temperature":2.5,"top_p":1,
			"messages":[{"role":"bot","content":"hi"}],
			"tools":[{"type":"end_call"},{"type":"function","function":{"name":"ok"}},{"type":"function","function":{"name":"9lives","description":"d"}}]},
		"tts_config":{"provider":"google","voice_id":"kore","speaking_rate":3},
		"speech_config":{"turn_taking":{"endpointing_min_delay":1,"endpointing_max_delay":0.5},"silence":{"max_attempts":11}}}`
	e := invalid(t, mustFail(v.Normalize(parseDoc(t, in), Options{})))
	wantDetails := []string{
		"nmae is not a known field of an assistant; allowed: name, business_name, notification_email, notification_emails, recording_consent, first_message, is_active, max_duration_seconds, autonomous_silence_handling, silence_timeout_seconds, voicemail_detection, voicemail_message, gdpr_mode, recording_enabled, webhook_url, webhook_secret, webhook_events, analysis_plan, stt_config, llm_config, tts_config, speech_config",
		"name is required",
		"notification_emails[1] \"nope\" is not a valid email address (expected e.g. ops@example.com)",
		"is_active must be a boolean (true or false)",
		"webhook_url \"/hooks\" is not an absolute http or https URL",
		"webhook_events[1] \"call-started\" is not allowed; allowed: assistant-request, tool-calls, status-update, end-of-call-report",
		"webhook_events[2] repeats webhook_events[0]; each value may appear once",
		"stt_config.provider \"whisper\" is not a known speech-to-text provider; allowed: deepgram, elevenlabs, gladia, mistral, google, local",
		"llm_config.top_p is not a known field of an llm_config with provider \"openai\"; allowed: provider, model, temperature, messages, tools, max_completion_tokens",
		"llm_config.model \"gpt-9\" is not a model of provider \"openai\"; allowed: gpt-5.4, gpt-5.4-mini, gpt-5.4-nano, gpt-5.2, gpt-5.1, gpt-5, gpt-5-mini, gpt-5-nano, gpt-4.1, gpt-4.1-mini, gpt-4.1-nano, gpt-5.6-luna, gpt-5.6-terra, gpt-5.6-sol",
		"llm_config.temperature must be between 0 and 2; got 2.5",
		"llm_config.messages[0].role \"bot\" is not allowed; allowed: system, user, assistant",
		"llm_config.tools[2].function.name \"9lives\" is not a valid function name: it must start with a letter or _, contain only letters, digits, _ and -, and be at most 64 characters",
		"tts_config.voice_id \"kore\" is not one of the Google Gemini voices (voice ids are case-sensitive: did you mean \"Kore\"?); allowed: Puck, Achernar, Achird, Algenib, Algieba, Alnilam, Aoede, Autonoe, Callirrhoe, Charon, Despina, Enceladus, Erinome, Fenrir, Gacrux, Iapetus, Kore, Laomedeia, Leda, Orus, Pulcherrima, Rasalgethi, Sadachbia, Sadaltager, Schedar, Sulafat, Umbriel, Vindemiatrix, Zephyr, Zubenelgenubi",
		"tts_config.speaking_rate must be between 0.25 and 2; got 3",
		"speech_config.turn_taking.endpointing_max_delay must be at least endpointing_min_delay (1); got 0.5",
		"speech_config.silence.max_attempts must be between 1 and 10; got 11",
	}
	if !equalDetails(e.Details, wantDetails) {
		t.Errorf("details:\n%s\nwant:\n%s", strings.Join(e.Details, "\n"), strings.Join(wantDetails, "\n"))
	}
	if e.Field != "nmae" || e.Code != "unknown_field" {
		t.Errorf("first problem: field %q code %q", e.Field, e.Code)
	}
	if !strings.HasPrefix(e.Message, wantDetails[0]+" (and 16 more: name is required; ") {
		t.Errorf("message = %q", e.Message)
	}
}

func mustFail(_ map[string]json.RawMessage, err error) error { return err }

func TestFieldErrors(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		name, in, field, code, msg string
	}{
		{"name not a string", `{"name":5}`, "name", "invalid_field", "name must be a string"},
		{"empty name", `{"name":""}`, "name", "invalid_field", "name must not be empty"},
		{"null name", `{"name":null}`, "name", "missing_field", "name is required"},
		{"metadata needs transient", `{"name":"x","metadata":{}}`, "metadata", "unknown_field", "metadata is not a known field of an assistant; allowed: name,"},
		{"five emails max", `{"name":"x","notification_emails":["a@b.co","a@b.co","a@b.co","a@b.co","a@b.co","a@b.co"]}`, "notification_emails", "invalid_field", "notification_emails must have at most 5 items; got 6"},
		{"email", `{"name":"x","notification_email":"Ops <ops@example.com>"}`, "notification_email", "invalid_field", `notification_email "Ops <ops@example.com>" is not a valid email address`},
		{"consent message required", `{"name":"x","recording_consent":{"enabled":true}}`, "recording_consent.message", "missing_field", "recording_consent.message is required"},
		{"consent unknown key", `{"name":"x","recording_consent":{"enabled":true,"message":"m","dtmf":1}}`, "recording_consent.dtmf", "unknown_field", "recording_consent.dtmf is not a known field of recording_consent; allowed: enabled, message"},
		{"webhook ftp", `{"name":"x","webhook_url":"ftp://example.com/x"}`, "webhook_url", "invalid_field", `webhook_url "ftp://example.com/x" is not an absolute http or https URL`},
		{"max duration whole", `{"name":"x","max_duration_seconds":30.5}`, "max_duration_seconds", "invalid_field", "max_duration_seconds must be a whole number"},
		{"llm_config type", `{"name":"x","llm_config":"openai"}`, "llm_config", "invalid_field", "llm_config must be an object"},
		{"llm provider missing", `{"name":"x","llm_config":{"model":"gpt-5.4"}}`, "llm_config.provider", "missing_field", "llm_config.provider is required"},
		{"llm provider", `{"name":"x","llm_config":{"provider":"anthropic"}}`, "llm_config.provider", "invalid_field", `llm_config.provider "anthropic" is not a known LLM provider; allowed: openai, xai, mistral, google, google_realtime, xai_realtime, openai_live`},
		{"messages content", `{"name":"x","llm_config":{"provider":"openai","messages":[{"role":"system"}]}}`, "llm_config.messages[0].content", "missing_field", "llm_config.messages[0].content is required"},
		{"tts provider", `{"name":"x","tts_config":{"provider":"azure","voice_id":"alloy"}}`, "tts_config.provider", "invalid_field", `tts_config.provider "azure" is not a known text-to-speech provider; allowed: elevenlabs, inworld, google, xai, openai, local`},
		{"tts voice required", `{"name":"x","tts_config":{"provider":"inworld"}}`, "tts_config.voice_id", "missing_field", "tts_config.voice_id is required"},
		{"xai tts has no model", `{"name":"x","tts_config":{"provider":"xai","model":"grok-tts"}}`, "tts_config.model", "unknown_field", `tts_config.model is not supported: provider "xai" has no model choice; leave model out`},
		{"xai voice", `{"name":"x","tts_config":{"provider":"xai","voice_id":"nova"}}`, "tts_config.voice_id", "invalid_field", `tts_config.voice_id "nova" is not one of the xAI Grok voices; allowed: ara, eve, leo`},
		{"openai live voice", `{"name":"x","llm_config":{"provider":"openai_live","voice":"alloy"}}`, "llm_config.voice", "invalid_field", `llm_config.voice "alloy" is not one of the OpenAI GPT-Live voices; allowed: marin, beacon, cinder, stone, vesper`},
		{"tts model", `{"name":"x","tts_config":{"provider":"inworld","voice_id":"v","model":"tts-1"}}`, "tts_config.model", "invalid_field", `tts_config.model "tts-1" is not a model of provider "inworld"; allowed: inworld-tts-2, inworld-tts-2-flash`},
		{"stt model", `{"name":"x","stt_config":{"provider":"gladia","model":"nova-3"}}`, "stt_config.model", "invalid_field", `stt_config.model "nova-3" is not a model of provider "gladia"; allowed: solaria-1`},
		{"local stt is english only", `{"name":"x","stt_config":{"provider":"local","language":"nl"}}`, "stt_config.language", "invalid_field", `stt_config.language "nl" is not a language of provider "local"; allowed: en`},
		{"stt language type", `{"name":"x","stt_config":{"provider":"deepgram","language":["en"]}}`, "stt_config.language", "invalid_field", "stt_config.language must be a string"},
		{"deepgram option on gladia", `{"name":"x","stt_config":{"provider":"gladia","smart_format":true}}`, "stt_config.smart_format", "unknown_field", `stt_config.smart_format is not a known field of an stt_config with provider "gladia"`},
		{"gladia region", `{"name":"x","stt_config":{"provider":"gladia","region":"ap-south"}}`, "stt_config.region", "invalid_field", `stt_config.region "ap-south" is not allowed; allowed: eu-west, us-west`},
		{"elevenlabs sample rate", `{"name":"x","stt_config":{"provider":"elevenlabs","sample_rate":44100}}`, "stt_config.sample_rate", "invalid_field", "stt_config.sample_rate must be one of 16000, 8000; got 44100"},
		{"xai provider tool", `{"name":"x","llm_config":{"provider":"xai_realtime","provider_tools":[{"type":"file_search"}]}}`, "llm_config.provider_tools[0].vector_store_ids", "missing_field", "llm_config.provider_tools[0].vector_store_ids is required"},
		{"xai provider tool type", `{"name":"x","llm_config":{"provider":"xai_realtime","provider_tools":[{"type":"code"}]}}`, "llm_config.provider_tools[0].type", "invalid_field", `llm_config.provider_tools[0].type "code" is not allowed; allowed: web_search, x_search, file_search`},
		{"delegation model", `{"name":"x","llm_config":{"provider":"openai_live","delegation":{"model":"gpt-5.4"}}}`, "llm_config.delegation.model", "invalid_field", `llm_config.delegation.model "gpt-5.4" is not allowed; allowed: gpt-5.6-luna`},
		{"analysis plan schema", `{"name":"x","analysis_plan":{"structured_data_plan":{"enabled":true}}}`, "analysis_plan.structured_data_plan.schema", "missing_field", "analysis_plan.structured_data_plan.schema is required when enabled is true"},
		{"analysis plan threshold", `{"name":"x","analysis_plan":{"minMessagesThreshold":-1}}`, "analysis_plan.minMessagesThreshold", "invalid_field", "analysis_plan.minMessagesThreshold must be at least 0; got -1"},
		{"analysis plan template id", `{"name":"x","analysis_plan":{"structured_data_plan":{"enabled":true,"template_id":"abc"}}}`, "analysis_plan.structured_data_plan.template_id", "invalid_field", `analysis_plan.structured_data_plan.template_id "abc" is not a UUID`},
		{"speech part", `{"name":"x","speech_config":{"turn_taking":{"min_delay":1}}}`, "speech_config.turn_taking.min_delay", "unknown_field", "speech_config.turn_taking.min_delay is not a known field of speech_config.turn_taking; allowed: endpointing_min_delay, endpointing_max_delay"},
		{"speech clip", `{"name":"x","speech_config":{"background_audio":{"clip":"beach"}}}`, "speech_config.background_audio.clip", "invalid_field", `speech_config.background_audio.clip "beach" is not allowed; allowed: office, city, forest, crowded_room`},
		{"max above default", `{"name":"x","speech_config":{"turn_taking":{"endpointing_min_delay":3}}}`, "speech_config.turn_taking.endpointing_min_delay", "invalid_field", "speech_config.turn_taking.endpointing_min_delay must not be above endpointing_max_delay (2, its default); got 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Normalize(parseDoc(t, tt.in), Options{})
			e := invalid(t, err)
			if e.Field != tt.field || e.Code != tt.code || !strings.HasPrefix(e.Message, tt.msg) {
				t.Errorf("got field %q code %q message %q\nwant field %q code %q message starting %q", e.Field, e.Code, e.Message, tt.field, tt.code, tt.msg)
			}
			if len(e.Details) != 1 {
				t.Errorf("want exactly one problem, got %q", e.Details)
			}
		})
	}
}

func TestAnalysisPlan(t *testing.T) {
	v := newValidator(t)
	tests := []struct{ name, in, want string }{
		{
			"sdk-new",
			`{"structured_data_plan":{"enabled":true,"schema":{"type":"object","properties":{"intent":{"type":"string"}}},
			  "messages":[{"role":"system","content":"Schema: {{schema}} Transcript: {{transcript}}"}]},"min_messages_threshold":5}`,
			`{"structured_data_plan":{"enabled":true,"schema":{"type":"object","properties":{"intent":{"type":"string"}}},"messages":[{"role":"system","content":"Schema: {{schema}} Transcript: {{transcript}}"}]},"min_messages_threshold":5}`,
		},
		{
			"ref-flireo camelCase threshold",
			`{"structured_data_plan":{"enabled":false},"minMessagesThreshold":3}`,
			`{"structured_data_plan":{"enabled":false},"min_messages_threshold":3}`,
		},
		{
			"snake wins over camel",
			`{"min_messages_threshold":4,"minMessagesThreshold":3}`,
			`{"min_messages_threshold":4}`,
		},
		{
			"sdk-old template reference, default threshold",
			`{"structured_data_plan":{"enabled":true,"template_id":"3F2504E0-4F89-11D3-9A0C-0305E82C3301"}}`,
			`{"structured_data_plan":{"enabled":true,"template_id":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"},"min_messages_threshold":2}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Normalize(parseDoc(t, `{"name":"x","analysis_plan":`+tt.in+`}`), Options{})
			if err != nil {
				t.Fatal(err)
			}
			if string(got["analysis_plan"]) != compactJSON(t, tt.want) {
				t.Errorf("analysis_plan = %s\nwant %s", got["analysis_plan"], compactJSON(t, tt.want))
			}
		})
	}
}
