package analysis

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/parley-voice/parley/internal/llm"
)

// FormatName names the response format of analysis requests.
const FormatName = "call_analysis"

// defaultPrompt is the prompt of a plan without messages; the transcript
// follows as a user message.
const defaultPrompt = "Analyze the following call transcript according to this JSON Schema: {{schema}}\n" +
	"The call ended with reason: {{ended_reason}}.\n" +
	"Use only information from the call. Reply with one JSON object that is valid against the schema, and nothing else."

// schemaInstruction is added to prompts that never show the schema.
const schemaInstruction = "Reply with one JSON object that is valid against this JSON Schema, and nothing else: "

// transcriptHeading starts the user message that carries the transcript
// when the prompts do not place it themselves.
const transcriptHeading = "Call transcript:\n"

// maxProblems bounds the validation problems reported.
const maxProblems = 20

// InvalidError is the error of an analysis whose answer was still not a
// valid JSON object after the repair request.
type InvalidError struct {
	// Problems are the last answer's problems, e.g. "at '/sentiment':
	// value must be one of 'positive', 'neutral', 'negative'".
	Problems []string
}

func (e *InvalidError) Error() string {
	return "analysis: the model's answer is not valid against the analysis schema after a repair request: " +
		strings.Join(e.Problems, "; ")
}

// Analyze runs plan p on call c and returns a JSON object (compact) valid
// against p's schema.
//
// Placeholders in the prompt messages, each replaced in one pass (a value
// is never expanded again; unknown placeholders stay as written):
// {{schema}} the compact schema; {{transcript}} and {transcript} the
// "User: …"/"Assistant: …" lines; {{ended_reason}} and {{endedReason}} the
// end reason ("unknown" when empty); {{summary}} and {summary} the given
// summary ("(no summary)" when empty); {{duration}} and {duration} whole
// seconds; {{caller_number}} and {caller_number} the caller's number
// ("unknown" when empty). A plan without messages uses a default system
// prompt. When no message shows the schema, an instruction with it joins
// the first system message (or becomes one); when none shows the
// transcript, it follows as a last user message.
//
// The model is asked at m.Temperature or AnalysisTemperature, with a
// json_schema response format. Its answer may be bare JSON, a ```json
// fenced block, or text around one object. When the answer cannot be read
// or is not valid, the model is asked exactly once more, with the first
// conversation, its answer and the problems; if that answer is not valid
// either, the error is an *InvalidError. A failed request is an error
// wrapping the provider's. Analyze does not check p.Due.
func Analyze(ctx context.Context, m Model, p *Plan, c Call, summary string) (json.RawMessage, error) {
	if p == nil || p.compiled == nil {
		return nil, errors.New("analysis: analyze: no plan (make one with ParsePlan or NewPlan)")
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("analysis: analyze: %w", err)
	}
	msgs := p.prompt(c, summary)
	req := llm.Request{
		Model:          m.Name,
		APIKey:         m.APIKey,
		Messages:       msgs,
		Temperature:    m.temperature(AnalysisTemperature),
		ResponseFormat: &llm.ResponseFormat{Name: FormatName, Schema: p.Schema()},
	}
	answer, err := complete(ctx, m.Provider, req)
	if err != nil {
		return nil, fmt.Errorf("analysis: analyze with %s: %w", m.Name, err)
	}
	out, problems := p.check(answer)
	if problems == nil {
		return out, nil
	}

	req.Messages = append(slices.Clip(msgs),
		llm.Message{Role: llm.Assistant, Content: answer},
		llm.Message{Role: llm.User, Content: repairPrompt(problems)})
	answer, err = complete(ctx, m.Provider, req)
	if err != nil {
		return nil, fmt.Errorf("analysis: repair the analysis with %s: %w", m.Name, err)
	}
	out, problems = p.check(answer)
	if problems == nil {
		return out, nil
	}
	return nil, &InvalidError{Problems: problems}
}

// repairPrompt asks for a corrected answer.
func repairPrompt(problems []string) string {
	var b strings.Builder
	b.WriteString("Your answer is not a JSON object valid against the JSON Schema. Problems:\n")
	for _, p := range problems {
		b.WriteString("- ")
		b.WriteString(p)
		b.WriteByte('\n')
	}
	b.WriteString("Reply with the corrected JSON object only: no explanation, no code fence.")
	return b.String()
}

// prompt is the conversation of an analysis request: the plan's messages
// (or the default prompt) with placeholders expanded, the schema
// instruction when no message shows the schema, and the transcript as a
// last user message when no message shows it.
func (p *Plan) prompt(c Call, summary string) []llm.Message {
	tr := transcript(c.Messages)
	if strings.TrimSpace(summary) == "" {
		summary = "(no summary)"
	}
	values := map[string]string{
		phSchema:       string(p.schema),
		phTranscript:   tr,
		phEndedReason:  orUnknown(c.EndedReason),
		phSummary:      summary,
		phDuration:     seconds(c.Duration),
		phCallerNumber: orUnknown(c.CallerNumber),
	}
	configured := p.messages
	if len(configured) == 0 {
		configured = []Message{{Role: "system", Content: defaultPrompt}}
	}
	out := make([]llm.Message, 0, len(configured)+2)
	seen := map[string]bool{}
	for _, m := range configured {
		text, used := expand(m.Content, values)
		for k := range used {
			seen[k] = true
		}
		out = append(out, llm.Message{Role: llm.Role(m.Role), Content: text})
	}
	if !seen[phSchema] {
		instruction := schemaInstruction + string(p.schema)
		if out[0].Role == llm.System {
			out[0].Content += "\n\n" + instruction
		} else {
			out = slices.Insert(out, 0, llm.Message{Role: llm.System, Content: instruction})
		}
	}
	if !seen[phTranscript] {
		out = append(out, llm.Message{Role: llm.User, Content: transcriptHeading + tr})
	}
	return out
}

// check reads answer as the analysis result: the JSON object it holds,
// compacted, or the problems that make it unusable.
func (p *Plan) check(answer string) (json.RawMessage, []string) {
	text, problem := extractJSON(answer)
	if problem != "" {
		return nil, []string{problem}
	}
	v, err := jsonschema.UnmarshalJSON(strings.NewReader(text))
	if err != nil {
		return nil, []string{"the answer is not valid JSON: " + err.Error()}
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, []string{"the answer is " + jsonKind(v) + ", not a JSON object"}
	}
	if err := p.compiled.Validate(v); err != nil {
		return nil, problemsOf(err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, []byte(text)); err != nil { // cannot fail: text was decoded above
		return nil, []string{"the answer is not valid JSON: " + err.Error()}
	}
	return b.Bytes(), nil
}

// problemsOf lists a validation error's leaf problems ("at '/path':
// message"), without duplicates, at most maxProblems.
func problemsOf(err error) []string {
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return []string{err.Error()}
	}
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(out) >= maxProblems {
			return
		}
		if len(e.Causes) == 0 {
			if s := strings.TrimSpace(e.Error()); !slices.Contains(out, s) {
				out = append(out, s)
			}
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	if len(out) == 0 {
		out = []string{ve.Error()}
	}
	return out
}

// maxScan bounds the '{' positions tried when looking for an object in
// prose.
const maxScan = 100

// extractJSON finds the JSON in a model's answer: the whole answer when it
// is JSON, else the content of the first ``` fenced block when that is
// JSON, else the first complete JSON object in the text. problem says why
// none was found.
func extractJSON(answer string) (text, problem string) {
	t := strings.TrimSpace(answer)
	if t == "" {
		return "", "the answer is empty"
	}
	if json.Valid([]byte(t)) {
		return t, ""
	}
	if body, ok := fenced(t); ok && json.Valid([]byte(body)) {
		return body, ""
	}
	rest, offset := t, 0
	for tries := 0; tries < maxScan; tries++ {
		i := strings.IndexByte(rest[offset:], '{')
		if i < 0 {
			break
		}
		offset += i
		var raw json.RawMessage
		if json.NewDecoder(strings.NewReader(rest[offset:])).Decode(&raw) == nil {
			return string(raw), ""
		}
		offset++
	}
	return "", "the answer contains no complete JSON object"
}

// fenced is the trimmed content of the first ``` fenced block of s (its
// language tag, e.g. "json", dropped). An unclosed fence runs to the end.
func fenced(s string) (string, bool) {
	_, after, ok := strings.Cut(s, "```")
	if !ok {
		return "", false
	}
	// The opening line may name a language.
	if nl := strings.IndexByte(after, '\n'); nl >= 0 && !strings.ContainsAny(after[:nl], "{[\"") {
		after = after[nl+1:]
	}
	body, _, _ := strings.Cut(after, "```")
	return strings.TrimSpace(body), true
}
