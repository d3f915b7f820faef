package assistant

import (
	"strings"
	"testing"
)

const availabilityParams = `{"type":"object","properties":{"date":{"type":"string"}}}`

// canonicalAvailability is what every generation of the same function template becomes.
const canonicalAvailability = `{"name":"check_availability","description":"Check free slots","tool_type":"function",
	"tool_config":{"name":"check_availability","description":"Check free slots","parameters":` + availabilityParams + `,"url":"https://hooks.example.com/avail","async":false}}`

func TestToolTemplateGenerations(t *testing.T) {
	v := newValidator(t)
	tests := []struct{ name, in, want string }{
		{
			"1 sdk-new",
			`{"name":"check_availability","description":"Check free slots","tool_type":"function",
			  "tool_config":{"name":"check_availability","description":"Check free slots","parameters":` + availabilityParams + `,"url":"https://hooks.example.com/avail","async":false}}`,
			canonicalAvailability,
		},
		{
			"1 sdk-new, names and description from the template",
			`{"name":"check_availability","description":"Check free slots","tool_type":"function",
			  "tool_config":{"parameters":` + availabilityParams + `,"url":"https://hooks.example.com/avail"}}`,
			canonicalAvailability,
		},
		{
			"2 api-ref response echoed back",
			`{"tool_template_id":null}`, // replaced below
			canonicalAvailability,
		},
		{
			"3 docs-new flat",
			`{"name":"check_availability","description":"Check free slots","type":"function","url":"https://hooks.example.com/avail","async":false,"parameters":` + availabilityParams + `}`,
			canonicalAvailability,
		},
		{
			"4 ref-flireo camelCase",
			`{"name":"check_availability","description":"Check free slots","tool_type":"function",
			  "tool_config":{"name":"check_availability","description":"Check free slots","url":"https://hooks.example.com/avail","parameters":` + availabilityParams + `}}`,
			canonicalAvailability,
		},
		{
			"5 sdk-old",
			`{"name":"check_availability","description":"Check free slots",
			  "function_definition":{"name":"check_availability","description":"Check free slots","parameters":` + availabilityParams + `},
			  "server_url":"https://hooks.example.com/avail","async":false}`,
			canonicalAvailability,
		},
		{
			"4 ref-flireo asyncResponse becomes message",
			`{"name":"notify","tool_type":"function","tool_config":{"name":"notify_team","description":"Tell the team","parameters":{},"async":true,"asyncResponse":"I've let them know"}}`,
			`{"name":"notify","description":null,"tool_type":"function","tool_config":{"name":"notify_team","description":"Tell the team","parameters":{},"async":true,"message":"I've let them know"}}`,
		},
		{
			"5 sdk-old server_secret kept",
			`{"name":"lookup","function_definition":{"name":"lookup_order"},"server_url":"https://hooks.example.com/o","server_secret":"s3"}`,
			`{"name":"lookup","description":null,"tool_type":"function","tool_config":{"name":"lookup_order","url":"https://hooks.example.com/o","secret":"s3","async":false}}`,
		},
		{
			"1 end_call",
			`{"name":"Hang up","tool_type":"end_call","tool_config":{}}`,
			`{"name":"Hang up","description":null,"tool_type":"end_call","tool_config":{}}`,
		},
		{
			"2 endCall without tool_config",
			`{"name":"Hang up","description":"Ends the call","tool_type":"endCall"}`,
			`{"name":"Hang up","description":"Ends the call","tool_type":"end_call","tool_config":{}}`,
		},
		{
			"3 flat end_call",
			`{"name":"Hang up","description":null,"type":"end_call","url":null,"async":false,"parameters":null}`,
			`{"name":"Hang up","description":null,"tool_type":"end_call","tool_config":{}}`,
		},
		{
			"2 transferCall",
			`{"name":"To sales","tool_type":"transferCall","tool_config":{"destinations":[{"type":"number","number":"+31201234567","description":"Sales","message":"Connecting you"}]}}`,
			`{"name":"To sales","description":null,"tool_type":"transfer_call","tool_config":{"destinations":[{"type":"number","number":"+31201234567","description":"Sales","message":"Connecting you"}]}}`,
		},
		{
			"1 transfer_call",
			`{"name":"To sales","tool_type":"transfer_call","tool_config":{"destinations":[{"number":"+31201234567","description":"Sales"}]}}`,
			`{"name":"To sales","description":null,"tool_type":"transfer_call","tool_config":{"destinations":[{"type":"number","number":"+31201234567","description":"Sales"}]}}`,
		},
		{
			// PATCH {"url": ...} in the flat generation over a stored canonical template.
			"patch with a flat url",
			`{"name":"check_availability","description":"Check free slots","tool_type":"function",
			  "tool_config":{"name":"check_availability","description":"Check free slots","parameters":` + availabilityParams + `,"url":"https://old.example.com","async":false},
			  "url":"https://hooks.example.com/avail"}`,
			canonicalAvailability,
		},
		{
			// PATCH {"type":"end_call"} over a stored function template discards its config.
			"patch changing type with the flat key",
			`{"name":"check_availability","description":"Check free slots","tool_type":"function",
			  "tool_config":{"name":"check_availability","url":"https://old.example.com","async":false},"type":"endCall"}`,
			`{"name":"check_availability","description":"Check free slots","tool_type":"end_call","tool_config":{}}`,
		},
	}
	tests[2].in = `{"id":"497f6eca-6276-4993-bfeb-53cbbbba6f08","org_id":"78614b6c-1d2e-4f00-9a3b-222222222222",
		"created_at":"2019-08-24T14:15:22Z","updated_at":"2019-08-24T14:15:22Z",` + strings.TrimPrefix(tests[0].in, "{")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.NormalizeToolTemplate(parseDoc(t, tt.in))
			if err != nil {
				t.Fatalf("NormalizeToolTemplate: %v", err)
			}
			if g, w := canon(t, got), want(t, tt.want); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
			again, err := v.NormalizeToolTemplate(got)
			if err != nil || canon(t, again) != canon(t, got) {
				t.Errorf("canonical template is not a fixed point: %s, %v", canon(t, again), err)
			}
		})
	}
}

func TestToolTemplateErrors(t *testing.T) {
	v := newValidator(t)
	tests := []struct{ name, in, field, code, msg string }{
		{"name required", `{"tool_type":"end_call","tool_config":{}}`, "name", "missing_field", "name is required"},
		{"type required", `{"name":"x","tool_config":{}}`, "tool_type", "missing_field", "tool_type is required"},
		{"unknown type", `{"name":"x","tool_type":"webhook","tool_config":{}}`, "tool_type", "invalid_field", `tool_type "webhook" is not a tool template type; allowed: function, end_call, transfer_call (endCall and transferCall are accepted too)`},
		{"unknown top-level key", `{"name":"x","tool_type":"end_call","toolType":"end_call"}`, "toolType", "unknown_field", "toolType is not a known field of a tool template; allowed: name, description, tool_type, tool_config, type, url, async, parameters, function_definition, server_url, server_secret"},
		{
			"template name used as function name",
			`{"name":"Check availability","tool_type":"function","tool_config":{"description":"d"}}`,
			"name", "invalid_field",
			`name "Check availability" is not a valid function name: it must start with a letter or _, contain only letters, digits, _ and -, and be at most 64 characters; it is the function name because tool_config.name is not set (set tool_config.name to keep this display name)`,
		},
		{"bad tool_config name", `{"name":"x","tool_type":"function","tool_config":{"name":"2fast"}}`, "tool_config.name", "invalid_field", `tool_config.name "2fast" is not a valid function name`},
		{"sdk-old name", `{"name":"x","function_definition":{"name":"a b"}}`, "function_definition.name", "invalid_field", `function_definition.name "a b" is not a valid function name`},
		{"sdk-old url", `{"name":"x","function_definition":{"name":"f"},"server_url":"hooks"}`, "server_url", "invalid_field", `server_url "hooks" is not an absolute http or https URL`},
		{"flat url", `{"name":"x","type":"function","url":"hooks"}`, "url", "invalid_field", `url "hooks" is not an absolute http or https URL`},
		{"end_call config", `{"name":"x","tool_type":"end_call","tool_config":{"name":"bye"}}`, "tool_config.name", "unknown_field", `tool_config.name is not a known field of an end_call tool_config, which has nothing to configure (send "tool_config": {}); allowed: none`},
		{"flat url on end_call", `{"name":"x","type":"end_call","url":"https://a.example.com"}`, "url", "invalid_field", "url only fits a function template, not end_call"},
		{"function config key", `{"name":"x","tool_type":"function","tool_config":{"server":{"url":"https://a.example.com"}}}`, "tool_config.server", "unknown_field", "tool_config.server is not a known field of a function tool_config; allowed: name, description, parameters, url, secret, async, message, async_response, asyncResponse"},
		{"transfer destinations", `{"name":"x","tool_type":"transfer_call","tool_config":{}}`, "tool_config.destinations", "missing_field", "tool_config.destinations is required"},
		{"transfer number", `{"name":"x","tool_type":"transferCall","tool_config":{"destinations":[{"number":"112","description":"d"}]}}`, "tool_config.destinations[0].number", "invalid_field", `tool_config.destinations[0].number "112" is not an E.164 phone number`},
		{"sdk-old with end_call", `{"name":"x","type":"end_call","function_definition":{"name":"f"}}`, "function_definition.name", "invalid_field", "function_definition.name only fits a function template, not end_call"},
		{"tool_config not object", `{"name":"x","tool_type":"function","tool_config":[]}`, "tool_config", "invalid_field", "tool_config must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.NormalizeToolTemplate(parseDoc(t, tt.in))
			e := invalid(t, err)
			if e.Field != tt.field || e.Code != tt.code || !strings.HasPrefix(e.Message, tt.msg) {
				t.Errorf("got field %q code %q message %q\nwant field %q code %q message starting %q", e.Field, e.Code, e.Message, tt.field, tt.code, tt.msg)
			}
		})
	}
}

func TestAnalysisTemplates(t *testing.T) {
	const schema = `{"type":"object","properties":{"intent":{"type":"string"}}}`
	tests := []struct{ name, in, want string }{
		{
			"sdk-new prompts",
			`{"name":"Intent","description":"Caller intent","system_prompt":"You analyse calls.","user_prompt":"Transcript: {transcript} ({duration}s)","schema":` + schema + `}`,
			`{"name":"Intent","description":"Caller intent","system_prompt":"You analyse calls.","user_prompt":"Transcript: {transcript} ({duration}s)","schema":` + schema + `,"messages":null,"min_messages_threshold":null}`,
		},
		{
			"docs-new messages",
			`{"name":"Intent","description":null,"schema":` + schema + `,"messages":[{"role":"system","content":"Use {{schema}}"},{"role":"user","content":"{{transcript}}"}],"min_messages_threshold":3}`,
			`{"name":"Intent","description":null,"system_prompt":null,"user_prompt":null,"schema":` + schema + `,"messages":[{"role":"system","content":"Use {{schema}}"},{"role":"user","content":"{{transcript}}"}],"min_messages_threshold":3}`,
		},
		{
			"ref-flireo camelCase threshold, both prompt forms, server keys dropped",
			`{"id":"x","org_id":"y","created_at":"z","updated_at":"w","name":"Intent","system_prompt":"s","user_prompt":"{{transcript}}","schema":` + schema + `,"messages":[{"role":"user","content":"u"}],"minMessagesThreshold":0}`,
			`{"name":"Intent","description":null,"system_prompt":"s","user_prompt":"{{transcript}}","schema":` + schema + `,"messages":[{"role":"user","content":"u"}],"min_messages_threshold":0}`,
		},
		{
			// SDK-OLD sends no prompt at all; the default analysis prompt is used when applied.
			"sdk-old schema only",
			`{"name":"Intent","description":"d","schema":` + schema + `}`,
			`{"name":"Intent","description":"d","system_prompt":null,"user_prompt":null,"schema":` + schema + `,"messages":null,"min_messages_threshold":null}`,
		},
		{
			"system prompt alone",
			`{"name":"Intent","schema":` + schema + `,"system_prompt":"s"}`,
			`{"name":"Intent","description":null,"system_prompt":"s","user_prompt":null,"schema":` + schema + `,"messages":null,"min_messages_threshold":null}`,
		},
		{
			"user prompt alone",
			`{"name":"Intent","schema":` + schema + `,"user_prompt":"u","messages":null}`,
			`{"name":"Intent","description":null,"system_prompt":null,"user_prompt":"u","schema":` + schema + `,"messages":null,"min_messages_threshold":null}`,
		},
		{
			// PATCH {"messages": null, "system_prompt": "a", "user_prompt": "b"} over a DOCS-NEW template.
			"patch switching to prompts",
			`{"name":"Intent","description":null,"system_prompt":"a","user_prompt":"b","schema":` + schema + `,"messages":null,"min_messages_threshold":3}`,
			`{"name":"Intent","description":null,"system_prompt":"a","user_prompt":"b","schema":` + schema + `,"messages":null,"min_messages_threshold":3}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := NormalizeAnalysisTemplate(parseDoc(t, tt.in))
			if err != nil {
				t.Fatalf("NormalizeAnalysisTemplate: %v", err)
			}
			if g, w := canon(t, got), want(t, tt.want); g != w {
				t.Errorf("got  %s\nwant %s", g, w)
			}
		})
	}
}

func TestAnalysisTemplateErrors(t *testing.T) {
	const schema = `"schema":{"type":"object"}`
	tests := []struct {
		name, in, field, code string
		details               []string
	}{
		{
			"name and schema missing", `{"messages":[{"role":"system","content":"c"}]}`, "name", "missing_field",
			[]string{"name is required", "schema is required"},
		},
		{
			"bad values", `{"name":"x","schema":"{}","messages":[{"role":"assistant","content":""}],"min_messages_threshold":-1,"prompt":"p"}`,
			"prompt", "unknown_field",
			[]string{
				"prompt is not a known field of an analysis template; allowed: name, description, system_prompt, user_prompt, schema, messages, min_messages_threshold, minMessagesThreshold",
				"schema must be an object",
				`messages[0].role "assistant" is not allowed; allowed: system, user`,
				"messages[0].content must not be empty",
				"min_messages_threshold must be at least 0; got -1",
			},
		},
		{
			"empty messages", `{"name":"x",` + schema + `,"messages":[]}`, "messages", "invalid_field",
			[]string{"messages must have at least 1 item; got 0"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NormalizeAnalysisTemplate(parseDoc(t, tt.in))
			e := invalid(t, err)
			if e.Field != tt.field || e.Code != tt.code || !equalDetails(e.Details, tt.details) {
				t.Errorf("got field %q code %q details\n%s\nwant field %q code %q details\n%s",
					e.Field, e.Code, strings.Join(e.Details, "\n"), tt.field, tt.code, strings.Join(tt.details, "\n"))
			}
		})
	}
}
