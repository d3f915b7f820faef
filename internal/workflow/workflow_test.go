package workflow

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parley-voice/parley/internal/fault"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestValidateValidDefinition(t *testing.T) {
	cfg := &fakeConfigs{}
	res, err := Validate(readFile(t, "valid.json"), cfg)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if res.EntryNode != "greet" || res.NodeCount != 6 || res.EdgeCount != 5 {
		t.Errorf("got entry %q, %d nodes, %d edges; want greet, 6, 5", res.EntryNode, res.NodeCount, res.EdgeCount)
	}
	wantCalls := []string{
		"definition.nodes[0].llm_config", "definition.nodes[0].tools",
		"definition.nodes[2].stt_config", "definition.nodes[5].tts_config",
	}
	if !slices.Equal(cfg.calls, wantCalls) {
		t.Errorf("NodeConfigs calls = %q, want %q", cfg.calls, wantCalls)
	}

	var pretty bytes.Buffer
	if err := json.Indent(&pretty, res.Definition, "", "  "); err != nil {
		t.Fatalf("canonical definition is not JSON: %v\n%s", err, res.Definition)
	}
	pretty.WriteByte('\n')
	golden := filepath.Join("testdata", "valid.golden.json")
	if *update {
		if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want := readFile(t, "valid.golden.json"); !bytes.Equal(pretty.Bytes(), want) {
		t.Errorf("canonical definition differs from %s (run with -update to rewrite)\ngot:\n%s", golden, pretty.Bytes())
	}

	// The canonical form is a fixed point and decodes into the typed model.
	again, err := Validate(res.Definition, &fakeConfigs{})
	if err != nil {
		t.Fatalf("re-validating the canonical form: %v", err)
	}
	if !strings.Contains(string(again.Definition), `"checked":"definition.nodes[0].llm_config"`) {
		t.Errorf("re-validated form lost the NodeConfigs answer: %s", again.Definition)
	}
	def, err := Decode(res.Definition)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	out, err := encode(def)
	if err != nil || !bytes.Equal(out, res.Definition) {
		t.Errorf("Decode+encode is not the identity (err %v)\ngot  %s\nwant %s", err, out, res.Definition)
	}
}

func TestDecodeModel(t *testing.T) {
	res, err := Validate(readFile(t, "valid.json"), &fakeConfigs{})
	if err != nil {
		t.Fatal(err)
	}
	def, err := Decode(res.Definition)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, n := range def.Nodes {
		types = append(types, n.ID+":"+n.Type.String())
	}
	want := []string{"greet:conversation", "lookup:tool", "answer:conversation", "handoff:transfer", "bye:end", "help:conversation"}
	if !slices.Equal(types, want) {
		t.Errorf("nodes = %q, want %q", types, want)
	}
	lookup, ok := def.Node("lookup")
	if !ok || lookup.ToolName != "lookup_order" || lookup.URL != "https://hooks.example.com/orders" ||
		string(lookup.Arguments) != `{"source":"phone","limit":1}` || lookup.FirstLine == nil || *lookup.FirstLine != "One moment please..." {
		t.Errorf("lookup node = %+v", lookup)
	}
	if out := def.Outgoing("answer"); len(out) != 2 || out[0].To != "handoff" || *out[0].Message != "Connecting you now." || out[1].Message != nil {
		t.Errorf("Outgoing(answer) = %+v", out)
	}
	if e := def.Outgoing("help"); len(e) != 1 || e[0].Message == nil || *e[0].Message != "" {
		t.Errorf("an explicit empty message must survive: %+v", e)
	}
	if g := def.Globals(); len(g) != 1 || g[0].ID != "help" || g[0].GlobalDescription != "The caller asks what you can do" {
		t.Errorf("Globals() = %+v", g)
	}
	if bye, _ := def.Node("bye"); bye.FirstLine != nil {
		t.Errorf("absent first_line must stay nil, got %q", *bye.FirstLine)
	}
}

func TestDecodeRejects(t *testing.T) {
	for _, tc := range []struct{ name, raw, want string }{
		{"version", `{"version":2,"entry_node":"a","nodes":[{"id":"a","type":"conversation","instructions":"x"}],"edges":[]}`, "unsupported version 2"},
		{"unknown field", `{"version":1,"entry_node":"a","nodes":[{"id":"a","type":"conversation","instructions":"x","colour":"red"}],"edges":[]}`, `unknown field "colour"`},
		{"node type", `{"version":1,"entry_node":"a","nodes":[{"id":"a","type":"menu"}],"edges":[]}`, `unknown node type "menu"`},
		{"entry", `{"version":1,"entry_node":"b","nodes":[{"id":"a","type":"conversation","instructions":"x"}],"edges":[]}`, `entry node "b" is not a conversation node`},
		{"edge", `{"version":1,"entry_node":"a","nodes":[{"id":"a","type":"conversation","instructions":"x"}],"edges":[{"from":"a","to":"z"}]}`, `edge 0 ("a" -> "z") references an unknown node`},
		{"trailing", `{"version":1,"entry_node":"a","nodes":[{"id":"a","type":"conversation","instructions":"x"}]} {}`, "trailing data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Decode error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	def, err := Decode(json.RawMessage(`{"version":1,"entry_node":"a","nodes":[{"id":"a","type":"conversation","instructions":"x"}]}`))
	if err != nil || def.Edges == nil {
		t.Errorf("absent edges must decode as an empty list: %v %#v", err, def)
	}
}

func TestNodeType(t *testing.T) {
	for typ, want := range map[NodeType]string{Unknown: "unknown", Conversation: "conversation", Tool: "tool", Transfer: "transfer", End: "end", NodeType(9): "NodeType(9)"} {
		if got := typ.String(); got != want {
			t.Errorf("NodeType(%d).String() = %q, want %q", uint8(typ), got, want)
		}
	}
	if _, err := json.Marshal(Node{ID: "a"}); err == nil {
		t.Error("encoding a node of Unknown type must fail")
	}
	if !Transfer.Terminal() || !End.Terminal() || Tool.Terminal() || Conversation.Terminal() {
		t.Error("only transfer and end nodes are terminal")
	}
}

func TestValidateCollectsEveryProblem(t *testing.T) {
	raw := `{"version":2,"entry_node":"start","nodes":[
		{"id":"start","type":"conversation","instructions":"","voice":"nova","tts_config":{"provider":"x"}},
		{"id":"Lookup","type":"tool"},
		{"id":"start","type":"end","destination":"+31201234567"}
	],"edges":[{"from":"start","to":"nowhere"}],"name":"x"}`
	want := []string{
		`definition.name is not a known field`,
		`definition.version must be 1 (got 2)`,
		`definition.nodes[0].instructions must not be empty`,
		`definition.nodes[0].voice must not be set together with tts_config`,
		`definition.nodes[1].id must match ^[a-z][a-z0-9_]*$ (got "Lookup")`,
		`definition.nodes[1].tool_name is required`,
		`definition.nodes[2].destination is not a known field of an end node`,
		`definition.nodes[2].id "start" is already used by definition.nodes[0]`,
		`definition.edges[0].to references unknown node "nowhere"`,
		`definition.edges[0].description is required on edges leaving a conversation node`,
		`definition.nodes[1] (tool node "Lookup") must have exactly one outgoing edge (has 0)`,
	}
	_, err := Validate(json.RawMessage(raw), &fakeConfigs{})
	fe := wantFault(t, err, CodeInvalidDefinition, want)
	wantMsg := want[0] + " (and 10 more: " + strings.Join(want[1:], "; ") + ")"
	if fe.Message != wantMsg {
		t.Errorf("Message =\n%s\nwant\n%s", fe.Message, wantMsg)
	}
	if !errors.Is(err, &fault.Error{Kind: fault.Invalid, Code: CodeInvalidDefinition}) {
		t.Error("errors.Is must match Kind Invalid and the code")
	}
}

func TestValidateRealtimeCode(t *testing.T) {
	raw := def(`,{"id":"sales","type":"conversation","instructions":"Sell.","llm_config":{"provider":"xai_realtime"}}`,
		`{"from":"start","to":"sales","description":"wants to buy"},{"from":"sales","to":"start"}`)
	_, err := Validate(json.RawMessage(raw), &fakeConfigs{})
	wantFault(t, err, CodeRealtimeNotAllowed, []string{
		`definition.nodes[1].llm_config.provider "xai_realtime" is a realtime provider, which a workflow node cannot switch to`,
		`definition.edges[1].description is required on edges leaving a conversation node`,
	})

	// Alone, and behind another problem: the code still says realtime.
	raw = `{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi","llm_config":{"provider":"openai_live"}}]}`
	_, err = Validate(json.RawMessage(raw), &fakeConfigs{})
	fe := wantFault(t, err, CodeRealtimeNotAllowed, []string{
		`definition.nodes[0].llm_config.provider "openai_live" is a realtime provider, which a workflow node cannot switch to`,
	})
	if fe.Field != "definition.nodes[0].llm_config.provider" {
		t.Errorf("Field = %q", fe.Field)
	}
}

func TestValidateInternalErrorFromConfigs(t *testing.T) {
	raw := `{"version":1,"entry_node":"start","nodes":[{"id":"Start","type":"conversation","instructions":"Hi","llm_config":{"provider":"boom"}}]}`
	_, err := Validate(json.RawMessage(raw), &fakeConfigs{})
	if !errors.Is(err, errCatalog) {
		t.Fatalf("err = %v, want it to wrap %v", err, errCatalog)
	}
	if fault.KindOf(err) != fault.Internal {
		t.Errorf("kind = %v, want internal", fault.KindOf(err))
	}
	if !strings.Contains(err.Error(), "definition.nodes[0].llm_config") {
		t.Errorf("error should name the field: %v", err)
	}
}

func TestValidateNilConfigs(t *testing.T) {
	res, err := Validate(json.RawMessage(def("", "")), nil)
	if err != nil || res.NodeCount != 1 || res.EdgeCount != 0 {
		t.Fatalf("Validate without provider configs and nil cfg: %+v, %v", res, err)
	}
	_, err = Validate(json.RawMessage(`{"version":1,"entry_node":"start","nodes":[{"id":"start","type":"conversation","instructions":"Hi","tools":[]}]}`), nil)
	if err == nil || fault.KindOf(err) != fault.Internal {
		t.Errorf("a node with tools and no NodeConfigs must be an internal error, got %v", err)
	}
}

// wantFault asserts err is an Invalid *fault.Error with the code and details.
func wantFault(t *testing.T, err error, code string, details []string) *fault.Error {
	t.Helper()
	fe, ok := fault.As(err)
	if !ok {
		t.Fatalf("err = %v (%T), want *fault.Error", err, err)
	}
	if fe.Kind != fault.Invalid || fe.Code != code {
		t.Errorf("kind/code = %v/%q, want invalid/%q", fe.Kind, fe.Code, code)
	}
	if !slices.Equal(fe.Details, details) {
		t.Errorf("details:\n  %s\nwant:\n  %s", strings.Join(fe.Details, "\n  "), strings.Join(details, "\n  "))
	}
	if len(details) > 0 && !strings.HasPrefix(fe.Message, details[0]) {
		t.Errorf("Message %q does not start with the first problem", fe.Message)
	}
	return fe
}
