package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// sentimentSchema is the schema most tests use.
const sentimentSchema = `{"type":"object","properties":{"intent":{"type":"string"},` +
	`"sentiment":{"type":"string","enum":["positive","neutral","negative"]},"appointment_booked":{"type":"boolean"}},` +
	`"required":["sentiment","appointment_booked"]}`

// templates serves analysis template documents by id and records the ids
// asked for.
type templates struct {
	docs  map[string]string
	asked []string
}

type ctxKey struct{}

func (ts *templates) get(ctx context.Context, id string) (json.RawMessage, error) {
	if ctx.Value(ctxKey{}) != "org-1" {
		return nil, errors.New("context not passed through")
	}
	ts.asked = append(ts.asked, id)
	doc, ok := ts.docs[id]
	if !ok {
		return nil, errNotFound
	}
	return json.RawMessage(doc), nil
}

var errNotFound = errors.New("analysis template not found")

// tplID is a template id in the canonical UUID form.
const tplID = "6f1c2b8e-4a51-4d7e-9a0b-1c2d3e4f5a6b"

func TestParsePlanNone(t *testing.T) {
	for _, raw := range []string{``, `null`, ` {} `, `{"min_messages_threshold":2}`, `{"structured_data_plan":null,"min_messages_threshold":2}`,
		`{"structured_data_plan":{"enabled":false,"schema":{"type":"object"}},"min_messages_threshold":2}`,
		`{"structured_data_plan":{"enabled":false,"template_id":"` + tplID + `"}}`,
		`{"structured_data_plan":{"schema":{"type":"object"}}}`} {
		p, err := ParsePlan(context.Background(), json.RawMessage(raw), func(context.Context, string) (json.RawMessage, error) {
			t.Errorf("%s: template looked up", raw)
			return nil, errNotFound
		})
		if p != nil || err != nil {
			t.Errorf("ParsePlan(%s) = %v, %v; want nil, nil", raw, p, err)
		}
	}
}

func TestParsePlan(t *testing.T) {
	sdkNew := `{"name":"Sentiment","description":null,"system_prompt":"You extract data. Caller {caller_number}.","user_prompt":"Summary: {summary}\n{transcript}",` +
		`"schema":` + sentimentSchema + `,"messages":null,"min_messages_threshold":null}`
	docsNew := `{"name":"Docs","description":"d","system_prompt":null,"user_prompt":null,"schema":{"type":"object","properties":{"topic":{"type":"string"}}},` +
		`"messages":[{"role":"system","content":"Schema {{schema}}"},{"role":"user","content":"{{transcript}}"}],"min_messages_threshold":4}`
	both := `{"name":"Both","system_prompt":"SP","user_prompt":"UP","schema":{"type":"object"},"messages":[{"role":"system","content":"M"}]}`
	sdkOld := `{"name":"Old","schema":{"type":"object","properties":{"x":{"type":"integer"}}}}`
	camel := `{"name":"Camel","schema":{"type":"object"},"messages":[{"role":"user","content":"go"}],"minMessagesThreshold":7}`
	ts := &templates{docs: map[string]string{"sdk-new": sdkNew, "docs-new": docsNew, "both": both, "sdk-old": sdkOld, "camel": camel}}

	tests := []struct {
		name      string
		raw       string
		schema    string
		messages  []Message
		threshold int
		asked     string
	}{
		{name: "inline",
			raw: `{"structured_data_plan":{"enabled":true,"schema":` + sentimentSchema + `,` +
				`"messages":[{"role":"system","content":"Analyze: {{schema}}"}]},"min_messages_threshold":5}`,
			schema: sentimentSchema, messages: []Message{{"system", "Analyze: {{schema}}"}}, threshold: 5},
		{name: "inline without messages, REF-FLIREO threshold",
			raw:    `{"structured_data_plan":{"enabled":true,"schema":{"type":"object"}},"minMessagesThreshold":3}`,
			schema: `{"type":"object"}`, threshold: 3},
		{name: "canonical spelling wins over the alias",
			raw:    `{"structured_data_plan":{"enabled":true,"schema":{"type":"object"}},"min_messages_threshold":1,"minMessagesThreshold":3}`,
			schema: `{"type":"object"}`, threshold: 1},
		{name: "default threshold",
			raw:    `{"structured_data_plan":{"enabled":true,"schema":{"type":"object"},"messages":[]}}`,
			schema: `{"type":"object"}`, threshold: DefaultMinMessages},
		{name: "SDK-NEW template: system_prompt and user_prompt",
			raw:    `{"structured_data_plan":{"enabled":true,"template_id":"sdk-new"},"min_messages_threshold":2}`,
			schema: sentimentSchema, messages: []Message{{"system", "You extract data. Caller {caller_number}."}, {"user", "Summary: {summary}\n{transcript}"}},
			threshold: 2, asked: "sdk-new"},
		{name: "DOCS-NEW template: messages and its threshold",
			raw:    `{"structured_data_plan":{"enabled":true,"template_id":"docs-new"}}`,
			schema: `{"type":"object","properties":{"topic":{"type":"string"}}}`, messages: []Message{{"system", "Schema {{schema}}"}, {"user", "{{transcript}}"}},
			threshold: 4, asked: "docs-new"},
		{name: "plan threshold overrides the template's",
			raw:    `{"structured_data_plan":{"enabled":true,"template_id":"docs-new"},"min_messages_threshold":0}`,
			schema: `{"type":"object","properties":{"topic":{"type":"string"}}}`, messages: []Message{{"system", "Schema {{schema}}"}, {"user", "{{transcript}}"}},
			threshold: 0, asked: "docs-new"},
		{name: "template with both prompt forms: system_prompt and user_prompt win",
			raw:    `{"structured_data_plan":{"enabled":true,"template_id":"both"}}`,
			schema: `{"type":"object"}`, messages: []Message{{"system", "SP"}, {"user", "UP"}}, threshold: 2, asked: "both"},
		{name: "SDK-OLD template: schema only",
			raw:    `{"structured_data_plan":{"enabled":true,"template_id":"sdk-old"}}`,
			schema: `{"type":"object","properties":{"x":{"type":"integer"}}}`, threshold: 2, asked: "sdk-old"},
		{name: "template threshold in camelCase",
			raw:    `{"structured_data_plan":{"enabled":true,"template_id":"camel"}}`,
			schema: `{"type":"object"}`, messages: []Message{{"user", "go"}}, threshold: 7, asked: "camel"},
		{name: "inline schema and messages override the template's",
			raw: `{"structured_data_plan":{"enabled":true,"template_id":"sdk-new","schema":{"type":"object","required":["a"]},` +
				`"messages":[{"role":"user","content":"mine {{transcript}}"}]},"min_messages_threshold":3}`,
			schema: `{"type":"object","required":["a"]}`, messages: []Message{{"user", "mine {{transcript}}"}}, threshold: 3, asked: "sdk-new"},
		{name: "inline messages override, template schema used",
			raw:    `{"structured_data_plan":{"enabled":true,"template_id":"sdk-new","messages":[{"role":"system","content":"own"}]}}`,
			schema: sentimentSchema, messages: []Message{{"system", "own"}}, threshold: 2, asked: "sdk-new"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts.asked = nil
			ctx := context.WithValue(context.Background(), ctxKey{}, "org-1")
			p, err := ParsePlan(ctx, json.RawMessage(tc.raw), ts.get)
			if err != nil {
				t.Fatalf("ParsePlan: %v", err)
			}
			if p == nil {
				t.Fatal("ParsePlan returned no plan")
			}
			if !sameJSON(t, p.Schema(), []byte(tc.schema)) {
				t.Errorf("schema = %s, want %s", p.Schema(), tc.schema)
			}
			if got := p.Messages(); !reflect.DeepEqual(got, tc.messages) && (len(got) != 0 || len(tc.messages) != 0) {
				t.Errorf("messages = %+v, want %+v", got, tc.messages)
			}
			if p.MinMessages() != tc.threshold {
				t.Errorf("threshold = %d, want %d", p.MinMessages(), tc.threshold)
			}
			var wantAsked []string
			if tc.asked != "" {
				wantAsked = []string{tc.asked}
			}
			if !reflect.DeepEqual(ts.asked, wantAsked) {
				t.Errorf("templates asked for = %v, want %v", ts.asked, wantAsked)
			}
		})
	}
}

func TestParsePlanErrors(t *testing.T) {
	ts := &templates{docs: map[string]string{
		"no-schema":  `{"name":"x","system_prompt":"a","user_prompt":"b","schema":null}`,
		"not-json":   `{"name":`,
		"bad-schema": `{"name":"x","schema":{"type":"object","properties":{"a":{"type":"strin"}}},"messages":[{"role":"user","content":"x"}]}`,
	}}
	failing := func(context.Context, string) (json.RawMessage, error) { return nil, errNotFound }
	tests := []struct {
		name     string
		raw      string
		template TemplateFunc
		want     []string
		is       error
	}{
		{name: "not JSON", raw: `{"structured_data_plan":`, want: []string{"read analysis_plan"}},
		{name: "plan not an object", raw: `{"structured_data_plan":[1]}`, want: []string{"structured_data_plan"}},
		{name: "enabled without schema or template", raw: `{"structured_data_plan":{"enabled":true}}`, want: []string{"has no schema"}},
		{name: "template lookup fails", raw: `{"structured_data_plan":{"enabled":true,"template_id":"gone"}}`, template: failing,
			want: []string{"load analysis template gone"}, is: errNotFound},
		{name: "template id without a lookup", raw: `{"structured_data_plan":{"enabled":true,"template_id":"x"}}`,
			want: []string{"no template lookup"}},
		{name: "template without schema", raw: `{"structured_data_plan":{"enabled":true,"template_id":"no-schema"}}`, template: ts.get,
			want: []string{"has no schema"}},
		{name: "template not JSON", raw: `{"structured_data_plan":{"enabled":true,"template_id":"not-json"}}`, template: ts.get,
			want: []string{"read analysis template not-json"}},
		{name: "template schema does not compile", raw: `{"structured_data_plan":{"enabled":true,"template_id":"bad-schema"}}`, template: ts.get,
			want: []string{"compile the analysis schema", "not a valid JSON Schema", "/properties/a/type"}},
		{name: "schema does not compile",
			raw:  `{"structured_data_plan":{"enabled":true,"schema":{"type":"object","properties":{"p":{"type":"string","pattern":"("}}}}}`,
			want: []string{"not a valid JSON Schema", "/properties/p/pattern", "regex"}},
		{name: "schema for an array", raw: `{"structured_data_plan":{"enabled":true,"schema":{"type":"array"}}}`,
			want: []string{"does not allow a JSON object"}},
		{name: "schema not an object", raw: `{"structured_data_plan":{"enabled":true,"schema":true}}`,
			want: []string{"schema is a boolean, not a JSON object"}},
		{name: "external reference refused", raw: `{"structured_data_plan":{"enabled":true,"schema":{"$ref":"file:///etc/passwd"}}}`,
			want: []string{"external schema reference", "not allowed"}},
		{name: "remote metaschema refused", raw: `{"structured_data_plan":{"enabled":true,"schema":{"$schema":"https://example.com/meta","type":"object"}}}`,
			want: []string{"compile the analysis schema"}},
		{name: "negative threshold", raw: `{"structured_data_plan":{"enabled":true,"schema":{}},"min_messages_threshold":-1}`,
			want: []string{"min_messages_threshold is -1"}},
		{name: "fractional threshold", raw: `{"structured_data_plan":{"enabled":true,"schema":{}},"minMessagesThreshold":2.5}`,
			want: []string{"minMessagesThreshold is 2.5"}},
		{name: "threshold not a number", raw: `{"structured_data_plan":{"enabled":true,"schema":{}},"min_messages_threshold":"x"}`,
			want: []string{"min_messages_threshold is not a number"}},
		{name: "assistant prompt message", raw: `{"structured_data_plan":{"enabled":true,"schema":{},"messages":[{"role":"assistant","content":"x"}]}}`,
			want: []string{`role "assistant"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.WithValue(context.Background(), ctxKey{}, "org-1")
			p, err := ParsePlan(ctx, json.RawMessage(tc.raw), tc.template)
			if err == nil {
				t.Fatalf("ParsePlan = %+v, want an error", p)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "analysis: ") {
				t.Errorf("error %q is not prefixed with the package", err)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v does not wrap %v", err, tc.is)
			}
		})
	}
}

func TestNewPlanCopies(t *testing.T) {
	msgs := []Message{{"system", "a"}}
	schema := json.RawMessage(`{ "type" : "object" }`)
	p, err := NewPlan(schema, msgs, 1)
	if err != nil {
		t.Fatal(err)
	}
	msgs[0].Content = "changed"
	if p.Messages()[0].Content != "a" {
		t.Error("NewPlan kept the caller's slice")
	}
	p.Messages()[0].Content = "changed"
	p.Schema()[0] = 'x'
	if p.Messages()[0].Content != "a" || string(p.Schema()) != `{"type":"object"}` {
		t.Errorf("accessors expose the plan: %+v %s", p.Messages(), p.Schema())
	}
}

func TestDue(t *testing.T) {
	turns := func(roles ...string) Call {
		var c Call
		for _, r := range roles {
			c.Messages = append(c.Messages, Message{Role: r, Content: "text"})
		}
		return c
	}
	tests := []struct {
		name      string
		threshold int
		call      Call
		want      bool
	}{
		{name: "threshold 0, empty call", threshold: 0, call: Call{}, want: true},
		{name: "default 2, one user message", threshold: 2, call: turns("user"), want: false},
		{name: "default 2, system does not count", threshold: 2, call: turns("system", "user", "system"), want: false},
		{name: "default 2, user and assistant", threshold: 2, call: turns("assistant", "user"), want: true},
		{name: "5, four turns", threshold: 5, call: turns("assistant", "user", "assistant", "user"), want: false},
		{name: "5, five turns", threshold: 5, call: turns("assistant", "user", "assistant", "user", "assistant"), want: true},
		{name: "blank messages do not count", threshold: 2,
			call: Call{Messages: []Message{{"user", "hi"}, {"assistant", " "}, {"user", ""}}}, want: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(json.RawMessage(`{"type":"object"}`), nil, tc.threshold)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Due(tc.call); got != tc.want {
				t.Errorf("Due = %v, want %v", got, tc.want)
			}
		})
	}
	t.Run("nil plan", func(t *testing.T) {
		var p *Plan
		if p.Due(turns("user", "assistant", "user")) {
			t.Error("a nil plan is due")
		}
	})
}

func TestCheck(t *testing.T) {
	p, err := NewPlan(json.RawMessage(sentimentSchema), nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	big, err := NewPlan(json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}}}`), nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		plan     *Plan
		answer   string
		want     string
		problems []string
	}{
		{name: "valid", plan: p, answer: "{\n  \"sentiment\": \"positive\",\n  \"appointment_booked\": true\n}",
			want: `{"sentiment":"positive","appointment_booked":true}`},
		{name: "valid in prose", plan: p, answer: `Result: {"sentiment":"neutral","appointment_booked":false,"intent":"info"} done`,
			want: `{"sentiment":"neutral","appointment_booked":false,"intent":"info"}`},
		{name: "big integer kept exactly", plan: big, answer: `{"n":123456789012345678901234567890}`,
			want: `{"n":123456789012345678901234567890}`},
		{name: "wrong enum and missing field", plan: p, answer: `{"sentiment":"great"}`,
			problems: []string{"at '': missing property 'appointment_booked'", "at '/sentiment': value must be one of 'positive', 'neutral', 'negative'"}},
		{name: "wrong type", plan: p, answer: `{"sentiment":"positive","appointment_booked":"yes"}`,
			problems: []string{"at '/appointment_booked': got string, want boolean"}},
		{name: "array", plan: p, answer: `[{"sentiment":"positive","appointment_booked":true}]`,
			problems: []string{"the answer is an array, not a JSON object"}},
		{name: "string", plan: p, answer: `"positive"`, problems: []string{"the answer is a string, not a JSON object"}},
		{name: "empty", plan: p, answer: "", problems: []string{"the answer is empty"}},
		{name: "prose", plan: p, answer: "The caller was happy.", problems: []string{"the answer contains no complete JSON object"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, problems := tc.plan.check(tc.answer)
			if string(out) != tc.want {
				t.Errorf("out = %s, want %s", out, tc.want)
			}
			if !sameSet(problems, tc.problems) {
				t.Errorf("problems = %q, want %q", problems, tc.problems)
			}
		})
	}
}
