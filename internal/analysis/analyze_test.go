package analysis

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// salesCall is a finished call whose transcript holds placeholder-like text.
func salesCall() Call {
	return Call{
		Messages: []Message{
			{Role: "assistant", Content: "Hello, Dental Care."},
			{Role: "user", Content: "Please book Tuesday. Also, what is {{schema}} and {summary}?"},
			{Role: "assistant", Content: "Booked for Tuesday at ten."},
		},
		EndedReason:  "assistant_hangup",
		Duration:     65 * time.Second,
		CallerNumber: "+31612345678",
		Language:     "en",
	}
}

// wantTranscript is transcript(salesCall().Messages).
const wantTranscript = "Assistant: Hello, Dental Care.\n" +
	"User: Please book Tuesday. Also, what is {{schema}} and {summary}?\n" +
	"Assistant: Booked for Tuesday at ten."

const validAnswer = `{"intent": "book appointment", "sentiment": "positive", "appointment_booked": true}`

// mustPlan parses an analysis_plan document.
func mustPlan(t *testing.T, raw string, template TemplateFunc) *Plan {
	t.Helper()
	p, err := ParsePlan(context.Background(), json.RawMessage(raw), template)
	if err != nil || p == nil {
		t.Fatalf("ParsePlan = %v, %v", p, err)
	}
	return p
}

// compactSchema is sentimentSchema as the prompt shows it.
func compactSchema(t *testing.T) string {
	t.Helper()
	p, err := NewPlan(json.RawMessage(sentimentSchema), nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	return string(p.Schema())
}

// checkMessages compares a request's messages with want.
func checkMessages(t *testing.T, got []llm.Message, want []llm.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d messages, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i].Role != want[i].Role || got[i].Content != want[i].Content {
			t.Errorf("message %d = %s %q,\nwant %s %q", i, got[i].Role, got[i].Content, want[i].Role, want[i].Content)
		}
	}
}

func TestAnalyzeInlinePlan(t *testing.T) {
	plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":`+sentimentSchema+`,"messages":[`+
		`{"role":"system","content":"Extract per {{schema}}. Ended: {{ended_reason}} / {{endedReason}}. Keep {{unknown}}."},`+
		`{"role":"user","content":"Transcript:\n{{transcript}}\nSummary: {{summary}} ({{duration}} s, {{caller_number}})"}]},`+
		`"min_messages_threshold":2}`, nil)
	fake, m := fakeModel(t, texts(validAnswer))
	got, err := Analyze(context.Background(), m, plan, salesCall(), "Booked a cleaning.")
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if want := `{"intent":"book appointment","sentiment":"positive","appointment_booked":true}`; string(got) != want {
		t.Errorf("result = %s, want %s", got, want)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	r := reqs[0]
	schema := compactSchema(t)
	checkMessages(t, r.Messages, []llm.Message{
		{Role: llm.System, Content: "Extract per " + schema + ". Ended: assistant_hangup / assistant_hangup. Keep {{unknown}}."},
		{Role: llm.User, Content: "Transcript:\n" + wantTranscript + "\nSummary: Booked a cleaning. (65 s, +31612345678)"},
	})
	if r.Temperature == nil || *r.Temperature != 0 {
		t.Errorf("temperature = %v, want 0", r.Temperature)
	}
	if r.Model != "gpt-5.4-mini" {
		t.Errorf("model = %q", r.Model)
	}
	wantFormat := `{"type":"json_schema","json_schema":{"name":"call_analysis","schema":` + sentimentSchema + `,"strict":false}}`
	if r.ResponseFormat == nil || !sameJSON(t, r.ResponseFormat, []byte(wantFormat)) {
		t.Errorf("response_format = %s, want %s", r.ResponseFormat, wantFormat)
	}
}

func TestAnalyzeTemplatePlan(t *testing.T) {
	ts := &templates{docs: map[string]string{tplID: `{"name":"Sales","description":null,` +
		`"system_prompt":"You extract sales data from a call with {caller_number} lasting {duration} seconds.",` +
		`"user_prompt":"Summary: {summary}\nEnded: {{ended_reason}}\n{transcript}","schema":` + sentimentSchema + `,` +
		`"messages":null,"min_messages_threshold":null}`}}
	ctx := context.WithValue(context.Background(), ctxKey{}, "org-1")
	plan, err := ParsePlan(ctx, json.RawMessage(`{"structured_data_plan":{"enabled":true,"template_id":"`+tplID+`"},"min_messages_threshold":3}`), ts.get)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.Due(salesCall()) {
		t.Fatal("plan with threshold 3 is not due for 3 messages")
	}
	fake, m := fakeModel(t, texts(validAnswer))
	if _, err := Analyze(ctx, m, plan, salesCall(), "Booked."); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	reqs := fake.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d requests, want 1", len(reqs))
	}
	// The prompts never show the schema: the instruction joins the system prompt.
	checkMessages(t, reqs[0].Messages, []llm.Message{
		{Role: llm.System, Content: "You extract sales data from a call with +31612345678 lasting 65 seconds.\n\n" + schemaInstruction + compactSchema(t)},
		{Role: llm.User, Content: "Summary: Booked.\nEnded: assistant_hangup\n" + wantTranscript},
	})
}

func TestAnalyzeDefaultPrompt(t *testing.T) {
	ts := &templates{docs: map[string]string{"old": `{"name":"Old","schema":` + sentimentSchema + `}`}}
	ctx := context.WithValue(context.Background(), ctxKey{}, "org-1")
	plan, err := ParsePlan(ctx, json.RawMessage(`{"structured_data_plan":{"enabled":true,"template_id":"old"}}`), ts.get)
	if err != nil {
		t.Fatal(err)
	}
	fake, m := fakeModel(t, texts(validAnswer))
	c := salesCall()
	c.EndedReason = ""
	if _, err := Analyze(ctx, m, plan, c, ""); err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	checkMessages(t, fake.Requests()[0].Messages, []llm.Message{
		{Role: llm.System, Content: "Analyze the following call transcript according to this JSON Schema: " + compactSchema(t) + "\n" +
			"The call ended with reason: unknown.\n" +
			"Use only information from the call. Reply with one JSON object that is valid against the schema, and nothing else."},
		{Role: llm.User, Content: "Call transcript:\n" + wantTranscript},
	})
}

func TestAnalyzePromptCompletion(t *testing.T) {
	schema := compactSchema(t)
	tests := []struct {
		name     string
		messages string
		want     []llm.Message
	}{
		{name: "transcript appended when no prompt shows it",
			messages: `[{"role":"system","content":"Classify by {{schema}}."},{"role":"user","content":"Be strict. {summary}"}]`,
			want: []llm.Message{
				{Role: llm.System, Content: "Classify by " + schema + "."},
				{Role: llm.User, Content: "Be strict. S"},
				{Role: llm.User, Content: "Call transcript:\n" + wantTranscript},
			}},
		{name: "schema instruction first when the prompt starts with a user message",
			messages: `[{"role":"user","content":"{transcript}"}]`,
			want: []llm.Message{
				{Role: llm.System, Content: schemaInstruction + schema},
				{Role: llm.User, Content: wantTranscript},
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":`+sentimentSchema+`,"messages":`+tc.messages+`}}`, nil)
			fake, m := fakeModel(t, texts(validAnswer))
			if _, err := Analyze(context.Background(), m, plan, salesCall(), "S"); err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			checkMessages(t, fake.Requests()[0].Messages, tc.want)
		})
	}
}

func TestAnalyzeFenced(t *testing.T) {
	plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":`+sentimentSchema+`}}`, nil)
	fake, m := fakeModel(t, texts("Here is the analysis:\n```json\n{\n  \"sentiment\": \"neutral\",\n  \"appointment_booked\": false\n}\n```\n"))
	got, err := Analyze(context.Background(), m, plan, salesCall(), "")
	if err != nil {
		t.Fatalf("Analyze: %v", err)
	}
	if want := `{"sentiment":"neutral","appointment_booked":false}`; string(got) != want {
		t.Errorf("result = %s, want %s", got, want)
	}
	if n := len(fake.Requests()); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestAnalyzeRepaired(t *testing.T) {
	tests := []struct {
		name, first, problem string
	}{
		{name: "invalid against the schema", first: `{"sentiment":"great","appointment_booked":true}`,
			problem: "- at '/sentiment': value must be one of 'positive', 'neutral', 'negative'"},
		{name: "not JSON", first: "The caller booked an appointment.", problem: "- the answer contains no complete JSON object"},
		{name: "empty", first: "", problem: "- the answer is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":`+sentimentSchema+`}}`, nil)
			fake, m := fakeModel(t, texts(tc.first, "```json\n"+validAnswer+"\n```"))
			got, err := Analyze(context.Background(), m, plan, salesCall(), "")
			if err != nil {
				t.Fatalf("Analyze: %v", err)
			}
			if !sameJSON(t, got, []byte(validAnswer)) {
				t.Errorf("result = %s, want %s", got, validAnswer)
			}
			reqs := fake.Requests()
			if len(reqs) != 2 {
				t.Fatalf("%d requests, want 2", len(reqs))
			}
			first, second := reqs[0].Messages, reqs[1].Messages
			if len(second) != len(first)+2 {
				t.Fatalf("repair request has %d messages, want %d", len(second), len(first)+2)
			}
			checkMessages(t, second[:len(first)], first)
			if a := second[len(first)]; a.Role != llm.Assistant || a.Content != tc.first {
				t.Errorf("repair request repeats the answer as %s %q", a.Role, a.Content)
			}
			fix := second[len(first)+1]
			if fix.Role != llm.User || !strings.Contains(fix.Content, tc.problem) || !strings.Contains(fix.Content, "corrected JSON object only") {
				t.Errorf("repair message = %s %q, want the problem %q", fix.Role, fix.Content, tc.problem)
			}
			if reqs[1].ResponseFormat == nil || reqs[1].Temperature == nil || *reqs[1].Temperature != 0 {
				t.Errorf("repair request lost its format or temperature: %s %v", reqs[1].ResponseFormat, reqs[1].Temperature)
			}
		})
	}
}

func TestAnalyzeStillInvalid(t *testing.T) {
	plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":`+sentimentSchema+`}}`, nil)
	fake, m := fakeModel(t, texts(`{"sentiment":"great"}`, `{"sentiment":"meh","appointment_booked":"yes"}`, validAnswer))
	got, err := Analyze(context.Background(), m, plan, salesCall(), "")
	if got != nil {
		t.Errorf("result = %s, want none", got)
	}
	var invalid *InvalidError
	if !errors.As(err, &invalid) {
		t.Fatalf("err = %v, want an *InvalidError", err)
	}
	want := []string{
		"at '/sentiment': value must be one of 'positive', 'neutral', 'negative'",
		"at '/appointment_booked': got string, want boolean",
	}
	if !sameSet(invalid.Problems, want) {
		t.Errorf("problems = %q, want %q", invalid.Problems, want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not list %q", err, w)
		}
	}
	if n := len(fake.Requests()); n != 2 {
		t.Errorf("%d requests, want exactly 2", n)
	}
}

func TestAnalyzeNotAnObject(t *testing.T) {
	plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":{}}}`, nil)
	fake, m := fakeModel(t, texts(`["a"]`, `42`))
	_, err := Analyze(context.Background(), m, plan, salesCall(), "")
	var invalid *InvalidError
	if !errors.As(err, &invalid) || len(invalid.Problems) != 1 || invalid.Problems[0] != "the answer is a number, not a JSON object" {
		t.Errorf("err = %v, want an *InvalidError about a number", err)
	}
	if n := len(fake.Requests()); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestAnalyzeModelError(t *testing.T) {
	plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":`+sentimentSchema+`}}`, nil)
	t.Run("first request", func(t *testing.T) {
		fake, m := fakeModel(t, script(openaifake.Reply{Status: 500}))
		_, err := Analyze(context.Background(), m, plan, salesCall(), "")
		var apiErr *openai.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 {
			t.Fatalf("err = %v, want the API error with status 500", err)
		}
		if !strings.Contains(err.Error(), "analyze with gpt-5.4-mini") || strings.Contains(err.Error(), testKey) {
			t.Errorf("err = %q", err)
		}
		if n := len(fake.Requests()); n != 1 {
			t.Errorf("%d requests, want 1 (no repair after a failed request)", n)
		}
	})
	t.Run("repair request", func(t *testing.T) {
		_, m := fakeModel(t, script(openaifake.Reply{Text: "nope"}, openaifake.Reply{Status: 503}))
		_, err := Analyze(context.Background(), m, plan, salesCall(), "")
		var apiErr *openai.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || !strings.Contains(err.Error(), "repair") {
			t.Errorf("err = %v, want the repair request's API error", err)
		}
	})
	t.Run("stream cut", func(t *testing.T) {
		_, m := fakeModel(t, script(openaifake.Reply{Text: validAnswer, ChunkSize: 4, CutAfter: 3}))
		if _, err := Analyze(context.Background(), m, plan, salesCall(), ""); err == nil {
			t.Error("Analyze of a cut stream succeeded")
		}
	})
	t.Run("no plan", func(t *testing.T) {
		_, m := fakeModel(t, never(t))
		if _, err := Analyze(context.Background(), m, nil, salesCall(), ""); err == nil {
			t.Error("Analyze without a plan succeeded")
		}
		if _, err := Analyze(context.Background(), m, &Plan{}, salesCall(), ""); err == nil {
			t.Error("Analyze with a zero plan succeeded")
		}
	})
}

func TestContextCancel(t *testing.T) {
	plan := mustPlan(t, `{"structured_data_plan":{"enabled":true,"schema":`+sentimentSchema+`}}`, nil)
	run := map[string]func(context.Context, Model) error{
		"summarize": func(ctx context.Context, m Model) error {
			_, err := Summarize(ctx, m, salesCall())
			return err
		},
		"analyze": func(ctx context.Context, m Model) error {
			_, err := Analyze(ctx, m, plan, salesCall(), "")
			return err
		},
	}
	for name, f := range run {
		t.Run(name+" while waiting for the model", func(t *testing.T) {
			fake, m := fakeModel(t, script(openaifake.Reply{Text: validAnswer, FirstTokenDelay: 30 * time.Second}))
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := f(ctx, m)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want context.DeadlineExceeded", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned after %v", d)
			}
			if n := len(fake.Requests()); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
		t.Run(name+" already cancelled", func(t *testing.T) {
			fake, m := fakeModel(t, never(t))
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if err := f(ctx, m); !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if n := len(fake.Requests()); n != 0 {
				t.Errorf("%d requests, want none", n)
			}
		})
	}
}
