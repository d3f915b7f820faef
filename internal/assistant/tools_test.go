package assistant

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func TestToolShapes(t *testing.T) {
	v := newValidator(t)
	const params = `{"type":"object","properties":{"date":{"type":"string"}},"required":["date"]}`
	tests := []struct{ name, in, want string }{
		{
			"flat webhook tool",
			`{"name":"check_availability","description":"Check free slots","parameters":` + params + `,"url":"https://hooks.example.com/a","async":false,"message":"One moment…"}`,
			`{"type":"function","function":{"name":"check_availability","description":"Check free slots","parameters":` + params + `},"server":{"url":"https://hooks.example.com/a"},"async":false,"message":"One moment…"}`,
		},
		{
			"flat without url or parameters",
			`{"name":"_lookup-2","description":"d"}`,
			`{"type":"function","function":{"name":"_lookup-2","description":"d","parameters":{"type":"object","properties":{}}},"async":false}`,
		},
		{
			"flat with type function",
			`{"type":"function","name":"f","description":"d","async":true}`,
			`{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}},"async":true}`,
		},
		{
			"openai nested with server",
			`{"type":"function","function":{"name":"book","description":"Book it","parameters":` + params + `},"server":{"url":"https://hooks.example.com/b","secret":"s"},"async":true}`,
			`{"type":"function","function":{"name":"book","description":"Book it","parameters":` + params + `},"server":{"url":"https://hooks.example.com/b","secret":"s"},"async":true}`,
		},
		{
			"openai nested without description",
			`{"type":"function","function":{"name":"ping"}}`,
			`{"type":"function","function":{"name":"ping","description":"","parameters":{"type":"object","properties":{}}},"async":false}`,
		},
		{
			"url wins over server.url, secret kept",
			`{"name":"f","description":"d","url":"https://a.example.com","server":{"url":"https://b.example.com","secret":"s"}}`,
			`{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}},"server":{"url":"https://a.example.com","secret":"s"},"async":false}`,
		},
		{
			"legacy async_response",
			`{"name":"f","description":"d","async":true,"async_response":"Working on it"}`,
			`{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}},"async":true,"message":"Working on it"}`,
		},
		{
			"ref-flireo asyncResponse",
			`{"name":"f","description":"d","asyncResponse":"Hold on"}`,
			`{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}},"async":false,"message":"Hold on"}`,
		},
		{
			"message wins over legacy spellings",
			`{"name":"f","description":"d","message":"new","async_response":"old","asyncResponse":"older"}`,
			`{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object","properties":{}}},"async":false,"message":"new"}`,
		},
		{"end_call", `{"type":"end_call"}`, `{"type":"end_call"}`},
		{"endCall", `{"type":"endCall"}`, `{"type":"end_call"}`},
		{
			"transfer_call",
			`{"type":"transfer_call","destinations":[{"type":"number","number":"+31201234567","description":"Sales team for pricing questions","message":"I'm transferring you to sales."}]}`,
			`{"type":"transfer_call","destinations":[{"type":"number","number":"+31201234567","description":"Sales team for pricing questions","message":"I'm transferring you to sales."}]}`,
		},
		{
			"transferCall, destination type defaulted",
			`{"type":"transferCall","destinations":[{"number":"+442071234567","description":"Support"}]}`,
			`{"type":"transfer_call","destinations":[{"type":"number","number":"+442071234567","description":"Support"}]}`,
		},
		{
			"mcp",
			`{"type":"mcp","mcp_server_id":"497F6ECA-6276-4993-BFEB-53CBBBBA6F08","allowed_tools":["search","create_ticket"],"required":false}`,
			`{"type":"mcp","mcp_server_id":"497f6eca-6276-4993-bfeb-53cbbbba6f08","allowed_tools":["search","create_ticket"],"required":false}`,
		},
		{
			"mcp defaults",
			`{"type":"mcp","mcp_server_id":"497f6eca-6276-4993-bfeb-53cbbbba6f08"}`,
			`{"type":"mcp","mcp_server_id":"497f6eca-6276-4993-bfeb-53cbbbba6f08","allowed_tools":null,"required":true}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.Tools(json.RawMessage("["+tt.in+"]"), "llm_config.tools")
			if err != nil {
				t.Fatalf("Tools: %v", err)
			}
			if w := "[" + compactJSON(t, tt.want) + "]"; string(got) != w {
				t.Errorf("got  %s\nwant %s", got, w)
			}
			// Canonical tools are a fixed point.
			again, err := v.Tools(got, "llm_config.tools")
			if err != nil || string(again) != string(got) {
				t.Errorf("re-normalising gave %s, %v", again, err)
			}
		})
	}
}

func TestToolErrors(t *testing.T) {
	v := newValidator(t)
	long := strings.Repeat("a", 65)
	tests := []struct{ name, in, field, code, msg string }{
		{"not an array", `{"type":"end_call"}`, "llm_config.tools", "invalid_field", "llm_config.tools must be an array"},
		{"not an object", `["end_call"]`, "llm_config.tools[0]", "invalid_field", "llm_config.tools[0] must be an object"},
		{"unknown type", `[{"type":"webhook"}]`, "llm_config.tools[0].type", "invalid_field", `llm_config.tools[0].type "webhook" is not a tool type; allowed: function, end_call, transfer_call, mcp (endCall and transferCall are accepted too)`},
		{"type not a string", `[{"type":1}]`, "llm_config.tools[0].type", "invalid_field", "llm_config.tools[0].type must be a string"},
		{"flat name missing", `[{"description":"d"}]`, "llm_config.tools[0].name", "missing_field", "llm_config.tools[0].name is required"},
		{"flat description missing", `[{"name":"f"}]`, "llm_config.tools[0].description", "missing_field", "llm_config.tools[0].description is required"},
		{"name starts with digit", `[{"name":"1f","description":"d"}]`, "llm_config.tools[0].name", "invalid_field", `llm_config.tools[0].name "1f" is not a valid function name`},
		{"name too long", `[{"name":"` + long + `","description":"d"}]`, "llm_config.tools[0].name", "invalid_field", `llm_config.tools[0].name "` + long + `" is not a valid function name`},
		{"nested name with dot", `[{"type":"function","function":{"name":"a.b"}}]`, "llm_config.tools[0].function.name", "invalid_field", `llm_config.tools[0].function.name "a.b" is not a valid function name`},
		{"flat unknown key", `[{"end_call":1,"name":"f","description":"d"}]`, "llm_config.tools[0].end_call", "unknown_field", "llm_config.tools[0].end_call is not a known field of a function tool; allowed: type, name, description, parameters, url, server, async, message, async_response, asyncResponse"},
		{"end_call twice", `[{"type":"end_call"},{"type":"endCall"}]`, "llm_config.tools[1].type", "invalid_field", `llm_config.tools[1].type "end_call" is already used by llm_config.tools[0]; tool names must be unique`},
		{"duplicate names", `[{"name":"f","description":"d"},{"type":"function","function":{"name":"f"}}]`, "llm_config.tools[1].function.name", "invalid_field", `llm_config.tools[1].function.name "f" is already used by llm_config.tools[0]; tool names must be unique`},
		{"function named like a built-in", `[{"type":"transferCall","destinations":[{"number":"+3120123","description":"d"}]},{"name":"transfer_call","description":"d"}]`, "llm_config.tools[1].name", "invalid_field", `llm_config.tools[1].name "transfer_call" is already used by llm_config.tools[0]`},
		{"parameters not object", `[{"name":"f","description":"d","parameters":"{}"}]`, "llm_config.tools[0].parameters", "invalid_field", "llm_config.tools[0].parameters must be an object"},
		{"relative url", `[{"name":"f","description":"d","url":"/hook"}]`, "llm_config.tools[0].url", "invalid_field", `llm_config.tools[0].url "/hook" is not an absolute http or https URL`},
		{"secret without url", `[{"name":"f","description":"d","server":{"secret":"s"}}]`, "llm_config.tools[0].server.url", "missing_field", "llm_config.tools[0].server.url is required when server.secret is set (or set url)"},
		{"server unknown key", `[{"name":"f","description":"d","server":{"url":"https://a.example.com","timeout":3}}]`, "llm_config.tools[0].server.timeout", "unknown_field", "llm_config.tools[0].server.timeout is not a known field of llm_config.tools[0].server; allowed: url, secret"},
		{"nested function null", `[{"type":"function","function":null}]`, "llm_config.tools[0].function", "missing_field", "llm_config.tools[0].function is required"},
		{"nested strict", `[{"type":"function","function":{"name":"f","strict":true}}]`, "llm_config.tools[0].function.strict", "unknown_field", "llm_config.tools[0].function.strict is not a known field of llm_config.tools[0].function; allowed: name, description, parameters"},
		{"end_call extra", `[{"type":"endCall","name":"bye"}]`, "llm_config.tools[0].name", "unknown_field", "llm_config.tools[0].name is not a known field of an end_call tool"},
		{"transfer without destinations", `[{"type":"transfer_call"}]`, "llm_config.tools[0].destinations", "missing_field", "llm_config.tools[0].destinations is required"},
		{"transfer empty", `[{"type":"transfer_call","destinations":[]}]`, "llm_config.tools[0].destinations", "invalid_field", "llm_config.tools[0].destinations must have at least 1 item; got 0"},
		{"transfer number", `[{"type":"transfer_call","destinations":[{"number":"0201234567","description":"d"}]}]`, "llm_config.tools[0].destinations[0].number", "invalid_field", `llm_config.tools[0].destinations[0].number "0201234567" is not an E.164 phone number (expected e.g. +31201234567)`},
		{"transfer description", `[{"type":"transfer_call","destinations":[{"number":"+31201234567"}]}]`, "llm_config.tools[0].destinations[0].description", "missing_field", "llm_config.tools[0].destinations[0].description is required"},
		{"transfer sip type", `[{"type":"transfer_call","destinations":[{"type":"sip","number":"+31201234567","description":"d"}]}]`, "llm_config.tools[0].destinations[0].type", "invalid_field", `llm_config.tools[0].destinations[0].type "sip" is not allowed; allowed: number`},
		{"mcp id", `[{"type":"mcp","mcp_server_id":"srv-1"}]`, "llm_config.tools[0].mcp_server_id", "invalid_field", `llm_config.tools[0].mcp_server_id "srv-1" is not a UUID`},
		{"mcp too many tools", `[{"type":"mcp","mcp_server_id":"497f6eca-6276-4993-bfeb-53cbbbba6f08","allowed_tools":` + list(26, `"t"`) + `}]`, "llm_config.tools[0].allowed_tools", "invalid_field", "llm_config.tools[0].allowed_tools must have at most 25 items; got 26"},
		{"mcp twice", `[{"type":"mcp","mcp_server_id":"497f6eca-6276-4993-bfeb-53cbbbba6f08"},{"type":"mcp","mcp_server_id":"497F6ECA-6276-4993-BFEB-53CBBBBA6F08"}]`, "llm_config.tools[1].mcp_server_id", "invalid_field", `llm_config.tools[1].mcp_server_id "497f6eca-6276-4993-bfeb-53cbbbba6f08" is already used by llm_config.tools[0]; list each MCP server once`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Tools(json.RawMessage(tt.in), "llm_config.tools")
			e := invalid(t, err)
			if e.Field != tt.field || e.Code != tt.code || !strings.HasPrefix(e.Message, tt.msg) {
				t.Errorf("got field %q code %q message %q\nwant field %q code %q message starting %q", e.Field, e.Code, e.Message, tt.field, tt.code, tt.msg)
			}
		})
	}
}

func TestToolsNull(t *testing.T) {
	v := newValidator(t)
	for _, in := range []string{"", "null"} {
		got, err := v.Tools(json.RawMessage(in), "tools")
		if err != nil || string(got) != "null" {
			t.Errorf("Tools(%q) = %s, %v; want null", in, got, err)
		}
	}
	got, err := v.Tools(json.RawMessage(`[]`), "tools")
	if err != nil || string(got) != "[]" {
		t.Errorf("Tools([]) = %s, %v", got, err)
	}
}

func TestNodeLLM(t *testing.T) {
	v := newValidator(t)
	tests := []struct {
		name, in, want   string
		field, code, msg string
	}{
		{name: "empty", in: `{}`, want: `{}`},
		{name: "null", in: `null`, want: `null`},
		{name: "temperature only", in: `{"temperature":0.2}`, want: `{"temperature":0.2}`},
		{name: "provider fills its default model", in: `{"provider":"mistral"}`, want: `{"provider":"mistral","model":"mistral-medium-latest"}`},
		{name: "full", in: `{"temperature":1,"model":"gpt-5.4-mini","provider":"openai"}`, want: `{"provider":"openai","model":"gpt-5.4-mini","temperature":1}`},
		{name: "model alone", in: `{"model":"grok-4.3"}`, want: `{"model":"grok-4.3"}`},
		{name: "legacy model", in: `{"provider":"openai","model":"gpt-4o"}`, want: `{"provider":"openai","model":"gpt-4o"}`},
		{
			name: "realtime provider", in: `{"provider":"xai_realtime","model":"grok-voice-think-fast-2.0"}`,
			field: "nodes[2].llm_config.provider", code: "realtime_provider_not_allowed_per_node",
			msg: `nodes[2].llm_config.provider "xai_realtime" is a realtime provider, which cannot be chosen per workflow node; allowed: openai, xai, mistral, google (text providers, on a pipeline assistant)`,
		},
		{
			name: "realtime google", in: `{"provider":"google_realtime"}`,
			field: "nodes[2].llm_config.provider", code: "realtime_provider_not_allowed_per_node",
			msg: `nodes[2].llm_config.provider "google_realtime" is a realtime provider`,
		},
		{
			name: "unknown provider", in: `{"provider":"claude"}`,
			field: "nodes[2].llm_config.provider", code: "invalid_field",
			msg: `nodes[2].llm_config.provider "claude" is not a known LLM provider; allowed on a workflow node: openai, xai, mistral, google`,
		},
		{
			name: "model of another provider", in: `{"provider":"openai","model":"grok-4.3"}`,
			field: "nodes[2].llm_config.model", code: "invalid_field",
			msg: `nodes[2].llm_config.model "grok-4.3" is not a model of provider "openai"; allowed: gpt-5.4,`,
		},
		{
			name: "realtime model alone", in: `{"model":"gpt-live-1"}`,
			field: "nodes[2].llm_config.model", code: "invalid_field",
			msg: `nodes[2].llm_config.model "gpt-live-1" is not a model of any text LLM provider (openai, xai, mistral, google); send provider too to pick from its models`,
		},
		{
			name: "no voice per node", in: `{"provider":"openai","voice":"marin"}`,
			field: "nodes[2].llm_config.voice", code: "unknown_field",
			msg: `nodes[2].llm_config.voice is not a known field of a workflow node's llm_config (a node overrides only provider, model and temperature); allowed: provider, model, temperature`,
		},
		{
			name: "temperature range", in: `{"temperature":2.5}`,
			field: "nodes[2].llm_config.temperature", code: "invalid_field",
			msg: "nodes[2].llm_config.temperature must be between 0 and 2; got 2.5",
		},
		{name: "not an object", in: `"openai"`, field: "nodes[2].llm_config", code: "invalid_field", msg: "nodes[2].llm_config must be an object"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := v.NodeLLM(json.RawMessage(tt.in), "nodes[2].llm_config")
			if tt.field == "" {
				if err != nil || string(got) != tt.want {
					t.Errorf("NodeLLM = %s, %v; want %s", got, err, tt.want)
				}
				return
			}
			e := invalid(t, err)
			if e.Field != tt.field || e.Code != tt.code || !strings.HasPrefix(e.Message, tt.msg) {
				t.Errorf("got field %q code %q message %q\nwant field %q code %q message starting %q", e.Field, e.Code, e.Message, tt.field, tt.code, tt.msg)
			}
		})
	}
}

func TestNodeSTTAndTTS(t *testing.T) {
	v := newValidator(t)
	got, err := v.STT(json.RawMessage(`{"provider":"gladia","language":"nl","code_switching":true,"region":"eu-west"}`), "nodes[0].stt_config")
	if w := `{"provider":"gladia","model":"solaria-1","language":"nl","code_switching":true,"region":"eu-west"}`; err != nil || string(got) != w {
		t.Errorf("STT = %s, %v; want %s", got, err, w)
	}
	got, err = v.TTS(json.RawMessage(`{"provider":"google","model":"chirp-3-hd","speaking_rate":1.2}`), "nodes[0].tts_config")
	if w := `{"provider":"google","model":"chirp-3-hd","voice_id":"Kore","speaking_rate":1.2}`; err != nil || string(got) != w {
		t.Errorf("TTS = %s, %v; want %s", got, err, w)
	}
	got, err = v.TTS(json.RawMessage(`{"provider":"xai","language":"nl"}`), "nodes[0].tts_config")
	if w := `{"provider":"xai","voice_id":"ara","language":"nl"}`; err != nil || string(got) != w {
		t.Errorf("TTS(xai) = %s, %v; want %s", got, err, w)
	}
	_, err = v.STT(json.RawMessage(`{"provider":"deepgram","language":"klingon"}`), "nodes[0].stt_config")
	if e := invalid(t, err); e.Field != "nodes[0].stt_config.language" {
		t.Errorf("STT error field %q", e.Field)
	}
	_, err = v.TTS(json.RawMessage(`{"voice_id":"x"}`), "nodes[0].tts_config")
	if e := invalid(t, err); e.Field != "nodes[0].tts_config.provider" || e.Code != "missing_field" {
		t.Errorf("TTS error %q %q", e.Field, e.Code)
	}
	for _, in := range []string{"", "null"} {
		if got, err := v.STT(json.RawMessage(in), "s"); err != nil || string(got) != "null" {
			t.Errorf("STT(%q) = %s, %v", in, got, err)
		}
		if got, err := v.TTS(json.RawMessage(in), "t"); err != nil || string(got) != "null" {
			t.Errorf("TTS(%q) = %s, %v", in, got, err)
		}
	}
}

func TestMCPServerIDs(t *testing.T) {
	v := newValidator(t)
	doc, err := v.Normalize(parseDoc(t, `{"name":"x","llm_config":{"provider":"openai","tools":[
		{"type":"mcp","mcp_server_id":"497f6eca-6276-4993-bfeb-53cbbbba6f08"},
		{"type":"end_call"},
		{"type":"mcp","mcp_server_id":"78614B6C-1D2E-4F00-9A3B-222222222222","allowed_tools":["a"]}]}}`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"497f6eca-6276-4993-bfeb-53cbbbba6f08", "78614b6c-1d2e-4f00-9a3b-222222222222"}
	if got := MCPServerIDs(doc); !slices.Equal(got, want) {
		t.Errorf("MCPServerIDs = %v, want %v", got, want)
	}
	if got := MCPServerIDs(parseDoc(t, `{"llm_config":{"provider":"openai"}}`)); got != nil {
		t.Errorf("no tools: %v", got)
	}
	if got := MCPServerIDs(parseDoc(t, `{"llm_config":null}`)); got != nil {
		t.Errorf("null llm_config: %v", got)
	}
}
