package workflow

import (
	"encoding/json"
	"strings"
	"testing"
)

// def builds a definition whose entry node is nodes[0], conversation "start";
// more is appended to the node list (start it with a comma) and edges is the
// body of the edge list.
func def(more, edges string) string {
	return `{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi"}` +
		more + `],"edges":[` + edges + `]}`
}

// start builds a definition with a single conversation node whose members are given.
func start(members string) string {
	return `{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation"` + members + `}]}`
}

// One row per rule of §7.17, each with the exact detail it must produce.
func TestValidateRules(t *testing.T) {
	const (
		tool     = `,{"id":"lookup","type":"tool","tool_name":"lookup"}`
		toolEdge = `{"from":"lookup","to":"start"}`
		bye      = `,{"id":"bye","type":"end"}`
		handoff  = `,{"id":"handoff","type":"transfer","destination":"+31201234567"}`
	)
	tests := []struct {
		name string
		raw  string
		want []string // nil: the definition is valid
	}{
		// The document.
		{"absent", ``, []string{`definition is required`}},
		{"not JSON", `{"version":1,`, []string{`definition must be valid JSON`}},
		{"not an object", `[]`, []string{`definition must be a JSON object (got array)`}},
		{"null", `null`, []string{`definition must be a JSON object (got null)`}},
		{"unknown key", `{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi"}],"name":"x"}`,
			[]string{`definition.name is not a known field`}},
		{"duplicate key", `{"version":1,"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi"}]}`,
			[]string{`definition.version appears more than once`}},
		{"version absent", `{"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi"}]}`,
			[]string{`definition.version is required`}},
		{"version 2", strings.Replace(def("", ""), `"version":1`, `"version":2`, 1), []string{`definition.version must be 1 (got 2)`}},
		{"version string", strings.Replace(def("", ""), `"version":1`, `"version":"1"`, 1), []string{`definition.version must be 1 (got "1")`}},
		{"version 1.0", strings.Replace(def("", ""), `"version":1`, `"version":1.0`, 1), nil},
		{"entry absent", `{"version":1,"nodes":[{"id":"start","type":"conversation","instructions":"Hi"}]}`,
			[]string{`definition.entry_node is required`}},
		{"entry not a string", strings.Replace(def("", ""), `"entry_node":"start"`, `"entry_node":7`, 1),
			[]string{`definition.entry_node must be a string (got number)`}},
		{"entry unknown", strings.Replace(def("", ""), `"entry_node":"start"`, `"entry_node":"nope"`, 1),
			[]string{`definition.entry_node references unknown node "nope"`}},
		{"entry not conversation", strings.Replace(def(bye, ""), `"entry_node":"start"`, `"entry_node":"bye"`, 1),
			[]string{`definition.entry_node must reference a conversation node ("bye" is an end node)`}},
		{"entry is a tool", strings.Replace(def(tool, toolEdge), `"entry_node":"start"`, `"entry_node":"lookup"`, 1),
			[]string{`definition.entry_node must reference a conversation node ("lookup" is a tool node)`}},
		{"global_prompt string", strings.Replace(def("", ""), `"version":1`, `"version":1,"global_prompt":"Be brief."`, 1), nil},
		{"global_prompt null", strings.Replace(def("", ""), `"version":1`, `"version":1,"global_prompt":null`, 1), nil},
		{"global_prompt number", strings.Replace(def("", ""), `"version":1`, `"version":1,"global_prompt":3`, 1),
			[]string{`definition.global_prompt must be a string or null (got number)`}},
		{"nodes absent", `{"version":1,"entry_node":"start"}`, []string{`definition.nodes is required`}},
		{"nodes not an array", `{"version":1,"entry_node":"start","nodes":{}}`, []string{`definition.nodes must be an array (got object)`}},
		{"nodes empty", `{"version":1,"entry_node":"start","nodes":[]}`, []string{`definition.nodes must contain at least one node`}},

		// Every node.
		{"node not an object", def(`,"bye"`, ""), []string{`definition.nodes[1] must be a JSON object (got string)`}},
		{"id absent", def(`,{"type":"end"}`, ""), []string{`definition.nodes[1].id is required`}},
		{"id not a string", def(`,{"id":1,"type":"end"}`, ""), []string{`definition.nodes[1].id must be a string (got number)`}},
		{"id pattern", def(`,{"id":"Start","type":"end"}`, ""), []string{`definition.nodes[1].id must match ^[a-z][a-z0-9_]*$ (got "Start")`}},
		{"id leading digit", def(`,{"id":"2nd","type":"end"}`, ""), []string{`definition.nodes[1].id must match ^[a-z][a-z0-9_]*$ (got "2nd")`}},
		{"id 41 chars", def(`,{"id":"`+strings.Repeat("a", 41)+`","type":"end"}`, ""), nil},
		{"id 42 chars", def(`,{"id":"`+strings.Repeat("a", 42)+`","type":"end"}`, ""), []string{`definition.nodes[1].id must be at most 41 characters (got 42)`}},
		{"id duplicate", def(`,{"id":"start","type":"end"}`, ""), []string{`definition.nodes[1].id "start" is already used by definition.nodes[0]`}},
		{"type absent", def(`,{"id":"bye"}`, ""), []string{`definition.nodes[1].type is required`}},
		{"type unknown", def(`,{"id":"menu","type":"menu","options":[]}`, ""),
			[]string{`definition.nodes[1].type must be one of conversation, tool, transfer, end (got "menu")`}},
		{"node unknown key", def(`,{"id":"bye","type":"end","colour":"red"}`, ""), []string{`definition.nodes[1].colour is not a known field of an end node`}},
		{"key of another type", def(`,{"id":"handoff","type":"transfer","destination":"+31201234567","instructions":"x"}`, ""),
			[]string{`definition.nodes[1].instructions is not a known field of a transfer node`}},
		{"node duplicate key", def(`,{"id":"bye","type":"end","id":"bye"}`, ""), []string{`definition.nodes[1].id appears more than once`}},
		{"first_line not a string", def(`,{"id":"bye","type":"end","first_line":null}`, ""), []string{`definition.nodes[1].first_line must be a string (got null)`}},
		{"ui not an object", def(`,{"id":"bye","type":"end","ui":[1,2]}`, ""), []string{`definition.nodes[1].ui must be a JSON object (got array)`}},
		{"ui coordinate", def(`,{"id":"bye","type":"end","ui":{"x":"10","y":null}}`, ""),
			[]string{`definition.nodes[1].ui.x must be a number (got string)`, `definition.nodes[1].ui.y must be a number (got null)`}},

		// Conversation nodes.
		{"instructions absent", start(``), []string{`definition.nodes[0].instructions is required`}},
		{"instructions blank", start(`,"instructions":"  "`), []string{`definition.nodes[0].instructions must not be empty`}},
		{"instructions not a string", start(`,"instructions":["a"]`), []string{`definition.nodes[0].instructions must be a string (got array)`}},
		{"global not a boolean", start(`,"instructions":"Hi","global":"yes"`), []string{`definition.nodes[0].global must be a boolean (got string)`}},
		{"global without description", start(`,"instructions":"Hi","global":true`),
			[]string{`definition.nodes[0].global_description is required when global is true`}},
		{"global with blank description", start(`,"instructions":"Hi","global":true,"global_description":""`),
			[]string{`definition.nodes[0].global_description must not be empty when global is true`}},
		{"voice and tts_config", start(`,"instructions":"Hi","voice":"nova","tts_config":{"provider":"elevenlabs"}`),
			[]string{`definition.nodes[0].voice must not be set together with tts_config`}},
		{"voice not a string", start(`,"instructions":"Hi","voice":5`), []string{`definition.nodes[0].voice must be a string (got number)`}},
		{"voice empty", start(`,"instructions":"Hi","voice":""`), []string{`definition.nodes[0].voice must not be empty`}},
		{"llm_config not an object", start(`,"instructions":"Hi","llm_config":"openai"`), []string{`definition.nodes[0].llm_config must be an object (got string)`}},
		{"tts_config null", start(`,"instructions":"Hi","tts_config":null`), []string{`definition.nodes[0].tts_config must be an object (got null)`}},
		{"stt_config from NodeConfigs", start(`,"instructions":"Hi","stt_config":{"language":"en"}`), []string{`definition.nodes[0].stt_config.provider is required`}},
		{"tools not an array", start(`,"instructions":"Hi","tools":{}`), []string{`definition.nodes[0].tools must be an array (got object)`}},
		{"tools from NodeConfigs", start(`,"instructions":"Hi","tools":[{"description":"x"}]`), []string{`definition.nodes[0].tools[0].name is required`}},

		// Tool nodes.
		{"tool_name absent", def(`,{"id":"lookup","type":"tool"}`, toolEdge), []string{`definition.nodes[1].tool_name is required`}},
		{"tool_name pattern", def(`,{"id":"lookup","type":"tool","tool_name":"9lives"}`, toolEdge),
			[]string{`definition.nodes[1].tool_name must match ^[A-Za-z_][A-Za-z0-9_-]*$ (got "9lives")`}},
		{"tool_name allowed characters", def(`,{"id":"lookup","type":"tool","tool_name":"_Get-Order_2"}`, toolEdge), nil},
		{"tool_name 65 chars", def(`,{"id":"lookup","type":"tool","tool_name":"`+strings.Repeat("t", 65)+`"}`, toolEdge),
			[]string{`definition.nodes[1].tool_name must be at most 64 characters (got 65)`}},
		{"url relative", def(`,{"id":"lookup","type":"tool","tool_name":"lookup","url":"/hooks/x"}`, toolEdge),
			[]string{`definition.nodes[1].url must be an absolute http(s) URL (got "/hooks/x")`}},
		{"url scheme", def(`,{"id":"lookup","type":"tool","tool_name":"lookup","url":"ftp://example.com/x"}`, toolEdge),
			[]string{`definition.nodes[1].url must be an absolute http(s) URL (got "ftp://example.com/x")`}},
		{"url null", def(`,{"id":"lookup","type":"tool","tool_name":"lookup","url":null,"arguments":null}`, toolEdge), nil},
		{"arguments not an object", def(`,{"id":"lookup","type":"tool","tool_name":"lookup","arguments":[1]}`, toolEdge),
			[]string{`definition.nodes[1].arguments must be an object or null (got array)`}},

		// Transfer nodes.
		{"destination absent", def(`,{"id":"handoff","type":"transfer"}`, ""), []string{`definition.nodes[1].destination is required`}},
		{"destination not E.164", def(`,{"id":"handoff","type":"transfer","destination":"0201234567"}`, ""),
			[]string{`definition.nodes[1].destination must be an E.164 phone number matching ^\+[1-9][0-9]{6,14}$ (got "0201234567")`}},

		// Edges.
		{"edges empty", def(bye, ""), nil},
		{"edges null", strings.Replace(def("", ""), `"edges":[]`, `"edges":null`, 1), nil},
		{"edges not an array", strings.Replace(def("", ""), `"edges":[]`, `"edges":{}`, 1), []string{`definition.edges must be an array (got object)`}},
		{"edge not an object", def(bye, `3`), []string{`definition.edges[0] must be a JSON object (got number)`}},
		{"edge unknown key", def(bye, `{"from":"start","to":"bye","description":"done","label":"x"}`), []string{`definition.edges[0].label is not a known field`}},
		{"from absent", def(bye, `{"to":"bye","description":"done"}`), []string{`definition.edges[0].from is required`}},
		{"to absent", def(bye, `{"from":"start","description":"done"}`), []string{`definition.edges[0].to is required`}},
		{"from unknown", def(bye, `{"from":"ghost","to":"bye","description":"done"}`), []string{`definition.edges[0].from references unknown node "ghost"`}},
		{"to unknown", def(bye, `{"from":"start","to":"missing","description":"done"}`), []string{`definition.edges[0].to references unknown node "missing"`}},
		{"description absent", def(bye, `{"from":"start","to":"bye"}`), []string{`definition.edges[0].description is required on edges leaving a conversation node`}},
		{"description blank", def(bye, `{"from":"start","to":"bye","description":" "}`), []string{`definition.edges[0].description must not be empty`}},
		{"description optional after a tool", def(tool, toolEdge+`,{"from":"start","to":"lookup","description":"look it up"}`), nil},
		{"message string or null", def(bye+handoff, `{"from":"start","to":"bye","description":"done","message":null},{"from":"start","to":"handoff","description":"human","message":"Hold on."}`), nil},
		{"message number", def(bye, `{"from":"start","to":"bye","description":"done","message":1}`), []string{`definition.edges[0].message must be a string or null (got number)`}},
		{"from transfer", def(handoff, `{"from":"handoff","to":"start","description":"back"}`),
			[]string{`definition.edges[0].from references transfer node "handoff", which is terminal and cannot have outgoing edges`}},
		{"from end", def(bye, `{"from":"bye","to":"start","description":"again"}`),
			[]string{`definition.edges[0].from references end node "bye", which is terminal and cannot have outgoing edges`}},
		{"self-loop", def("", `{"from":"start","to":"start","description":"again"}`), []string{`definition.edges[0] must not loop from "start" back to itself`}},
		{"duplicate pair", def(bye, `{"from":"start","to":"bye","description":"done"},{"from":"start","to":"bye","description":"finished"}`),
			[]string{`definition.edges[1] duplicates definition.edges[0] ("start" -> "bye")`}},
		{"reverse pair is not a duplicate", def(`,{"id":"faq","type":"conversation","instructions":"FAQ"}`,
			`{"from":"start","to":"faq","description":"question"},{"from":"faq","to":"start","description":"done"}`), nil},
		{"tool without edge", def(tool, ""), []string{`definition.nodes[1] (tool node "lookup") must have exactly one outgoing edge (has 0)`}},
		{"tool with two edges", def(tool+bye, toolEdge+`,{"from":"lookup","to":"bye"}`),
			[]string{`definition.nodes[1] (tool node "lookup") must have exactly one outgoing edge (has 2)`}},
		{"edge into a global node", def(`,{"id":"help","type":"conversation","instructions":"Help","global":true,"global_description":"needs help"}`,
			`{"from":"start","to":"help","description":"asks for help"}`), nil},

		// Reachability.
		{"unreachable conversation", def(`,{"id":"orphan","type":"conversation","instructions":"Lost"}`, ""),
			[]string{`definition.nodes[1] (conversation node "orphan") is not reachable from entry node "start"`}},
		{"reachable through a tool", def(tool+`,{"id":"after","type":"conversation","instructions":"Next"}`,
			`{"from":"start","to":"lookup","description":"look up"},{"from":"lookup","to":"after"}`), nil},
		{"reachable through a global node", def(`,{"id":"help","type":"conversation","instructions":"Help","global":true,"global_description":"needs help"},{"id":"deep","type":"conversation","instructions":"Deep"}`,
			`{"from":"help","to":"deep","description":"details"}`), nil},
		{"only edges from unreachable nodes", def(`,{"id":"a","type":"conversation","instructions":"A"},{"id":"b","type":"conversation","instructions":"B"}`,
			`{"from":"a","to":"b","description":"go"}`), []string{
			`definition.nodes[1] (conversation node "a") is not reachable from entry node "start"`,
			`definition.nodes[2] (conversation node "b") is not reachable from entry node "start"`,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Validate(json.RawMessage(tc.raw), &fakeConfigs{})
			if tc.want == nil {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				if len(res.Definition) == 0 || res.EntryNode != "start" {
					t.Errorf("result = %+v", res)
				}
				return
			}
			if err == nil {
				t.Fatalf("want %q, got a valid definition: %s", tc.want, res.Definition)
			}
			wantFault(t, err, CodeInvalidDefinition, tc.want)
		})
	}
}

// Canonical details beyond the golden file: nulls and defaults dropped,
// explicit empty strings kept, edges always present.
func TestValidateCanonicalForm(t *testing.T) {
	tests := []struct{ name, raw, want string }{
		{"edges absent", `{"nodes":[{"instructions":"Hi","type":"conversation","id":"start"}],"entry_node":"start","version":1.0}`,
			`{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi"}],"edges":[]}`},
		{"nulls dropped", strings.Replace(def(`,{"id":"lookup","type":"tool","tool_name":"t","url":null,"arguments":null,"first_line":""}`,
			`{"from":"start","to":"lookup","description":"go","message":null},{"from":"lookup","to":"start","message":""}`), `"version":1`, `"version":1,"global_prompt":null`, 1),
			`{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi"},{"id":"lookup","type":"tool","tool_name":"t","first_line":""}],` +
				`"edges":[{"from":"start","to":"lookup","description":"go"},{"from":"lookup","to":"start","message":""}]}`},
		{"no HTML escaping", start(`,"instructions":"a < b & c > d","ui":{ "x" : 1.50 }`),
			`{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"a < b & c > d","ui":{"x":1.50}}],"edges":[]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Validate(json.RawMessage(tc.raw), nil)
			if err != nil {
				t.Fatal(err)
			}
			if string(res.Definition) != tc.want {
				t.Errorf("canonical =\n%s\nwant\n%s", res.Definition, tc.want)
			}
		})
	}
}
