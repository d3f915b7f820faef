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
)

// DefaultMinMessages is min_messages_threshold when neither the plan nor
// its template gives one (spec §15 row 16).
const DefaultMinMessages = 2

// Plan is a resolved structured-data plan: the compiled JSON Schema, the
// prompt messages and the message threshold. Make one with ParsePlan or
// NewPlan; it is immutable and safe for concurrent use.
type Plan struct {
	schema      json.RawMessage // compact
	compiled    *jsonschema.Schema
	messages    []Message
	minMessages int
}

// Schema is the plan's JSON Schema (compact JSON).
func (p *Plan) Schema() json.RawMessage { return slices.Clone(p.schema) }

// Messages are the configured prompt messages, placeholders unexpanded;
// none means the default prompt.
func (p *Plan) Messages() []Message { return slices.Clone(p.messages) }

// MinMessages is min_messages_threshold.
func (p *Plan) MinMessages() int { return p.minMessages }

// Due reports whether the plan runs for c: p is not nil (a nil Plan is "no
// structured analysis") and c has at least MinMessages user and assistant
// messages with text.
func (p *Plan) Due(c Call) bool {
	return p != nil && conversational(c.Messages) >= p.minMessages
}

// NewPlan makes a Plan from a JSON Schema, prompt messages (role "system"
// or "user"; none for the default prompt) and a threshold. The schema must
// be a JSON object that compiles, and may not reference other documents.
func NewPlan(schema json.RawMessage, messages []Message, minMessages int) (*Plan, error) {
	if minMessages < 0 {
		return nil, fmt.Errorf("analysis: min_messages_threshold %d is negative", minMessages)
	}
	for i, m := range messages {
		if m.Role != "system" && m.Role != "user" {
			return nil, fmt.Errorf("analysis: prompt message %d has role %q, want system or user", i, m.Role)
		}
	}
	compiled, compact, err := compileSchema(schema)
	if err != nil {
		return nil, fmt.Errorf("analysis: compile the analysis schema: %w", err)
	}
	return &Plan{schema: compact, compiled: compiled, messages: slices.Clone(messages), minMessages: minMessages}, nil
}

// schemaURL names the plan's schema inside its compiler.
const schemaURL = "urn:parley:analysis:schema"

// noLoader refuses every external reference: a schema comes from a
// customer and must not make the server read files or URLs.
type noLoader struct{}

func (noLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("external schema reference %q is not allowed", url)
}

// compileSchema compiles raw, which must be a JSON object whose root
// admits objects, and returns it compacted.
func compileSchema(raw json.RawMessage) (*jsonschema.Schema, json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil, errors.New("no schema")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("schema is %s, not a JSON object", jsonKind(doc))
	}
	if !admitsObject(obj["type"]) {
		return nil, nil, fmt.Errorf("schema type %v does not allow a JSON object, but the analysis result is one", obj["type"])
	}
	c := jsonschema.NewCompiler()
	c.UseLoader(noLoader{})
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, nil, err
	}
	compiled, err := c.Compile(schemaURL)
	if err != nil {
		var invalid *jsonschema.SchemaValidationError
		if errors.As(err, &invalid) {
			// One line naming each problem, instead of the metaschema's tree.
			return nil, nil, fmt.Errorf("not a valid JSON Schema: %s", strings.Join(problemsOf(invalid.Err), "; "))
		}
		return nil, nil, err
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, raw); err != nil {
		return nil, nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	return compiled, compact.Bytes(), nil
}

// admitsObject reports whether a schema's type keyword (absent, a name or
// a list of names) allows an object.
func admitsObject(t any) bool {
	switch t := t.(type) {
	case nil:
		return true
	case string:
		return t == "object"
	case []any:
		return slices.Contains(t, any("object"))
	}
	return true // malformed: the compiler names the problem
}

// jsonKind names the JSON type of a decoded value.
func jsonKind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// TemplateFunc returns an analysis template's stored document (the
// canonical {name, description, system_prompt, user_prompt, schema,
// messages, min_messages_threshold}, see assistant.NormalizeAnalysisTemplate).
type TemplateFunc func(ctx context.Context, id string) (json.RawMessage, error)

// thresholdKeys are the spellings of min_messages_threshold, newest first.
var thresholdKeys = []string{"min_messages_threshold", "minMessagesThreshold"}

// ParsePlan reads an assistant's canonical analysis_plan document
// ({structured_data_plan?: {enabled, schema?, messages?, template_id?},
// min_messages_threshold}). It returns nil and no error when raw is empty or
// null, has no structured_data_plan, or the plan is not enabled.
//
// A plan naming template_id gets the template's document from template:
// the plan's own schema and messages, when given, override the template's;
// without plan messages the template's system_prompt and user_prompt
// (SDK-NEW, the newest form) are the prompt when either is set, else its
// messages (DOCS-NEW). The threshold is the plan's min_messages_threshold
// (or minMessagesThreshold), else the template's, else DefaultMinMessages;
// note the assistant validator always fills the plan's (default 2), so a
// template's threshold only counts for documents stored without one.
//
// The schema is compiled here; a plan without a schema, with one that does
// not compile, or naming a template that cannot be loaded is an error.
func ParsePlan(ctx context.Context, raw json.RawMessage, template TemplateFunc) (*Plan, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("analysis: read analysis_plan: %w", err)
	}
	sdp := bytes.TrimSpace(doc["structured_data_plan"])
	if len(sdp) == 0 || string(sdp) == "null" {
		return nil, nil
	}
	var inline struct {
		Enabled    *bool           `json:"enabled"`
		Schema     json.RawMessage `json:"schema"`
		Messages   []Message       `json:"messages"`
		TemplateID *string         `json:"template_id"`
	}
	if err := json.Unmarshal(sdp, &inline); err != nil {
		return nil, fmt.Errorf("analysis: read analysis_plan.structured_data_plan: %w", err)
	}
	if inline.Enabled == nil || !*inline.Enabled {
		return nil, nil
	}
	threshold, found, err := readThreshold(doc)
	if err != nil {
		return nil, fmt.Errorf("analysis: read analysis_plan: %w", err)
	}
	schema, messages := inline.Schema, inline.Messages
	if isNull(schema) {
		schema = nil
	}

	if inline.TemplateID != nil && *inline.TemplateID != "" {
		id := *inline.TemplateID
		if template == nil {
			return nil, fmt.Errorf("analysis: analysis_plan names analysis template %s, but no template lookup was given", id)
		}
		t, err := loadTemplate(ctx, template, id)
		if err != nil {
			return nil, err
		}
		if schema == nil {
			schema = t.schema
		}
		if len(messages) == 0 {
			messages = t.messages
		}
		if !found && t.hasThreshold {
			threshold, found = t.threshold, true
		}
	}
	if !found {
		threshold = DefaultMinMessages
	}
	if schema == nil {
		return nil, errors.New("analysis: analysis_plan.structured_data_plan is enabled but has no schema (inline or from a template)")
	}
	return NewPlan(schema, messages, threshold)
}

// template is what a Plan takes from an analysis template.
type template struct {
	schema       json.RawMessage
	messages     []Message
	threshold    int
	hasThreshold bool
}

// loadTemplate fetches and reads analysis template id.
func loadTemplate(ctx context.Context, fetch TemplateFunc, id string) (*template, error) {
	raw, err := fetch(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("analysis: load analysis template %s: %w", id, err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("analysis: read analysis template %s: %w", id, err)
	}
	var fields struct {
		SystemPrompt *string   `json:"system_prompt"`
		UserPrompt   *string   `json:"user_prompt"`
		Messages     []Message `json:"messages"`
	}
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, fmt.Errorf("analysis: read analysis template %s: %w", id, err)
	}
	t := &template{}
	if s := doc["schema"]; !isNull(s) {
		t.schema = s
	}
	if fields.SystemPrompt != nil && strings.TrimSpace(*fields.SystemPrompt) != "" {
		t.messages = append(t.messages, Message{Role: "system", Content: *fields.SystemPrompt})
	}
	if fields.UserPrompt != nil && strings.TrimSpace(*fields.UserPrompt) != "" {
		t.messages = append(t.messages, Message{Role: "user", Content: *fields.UserPrompt})
	}
	if len(t.messages) == 0 {
		t.messages = fields.Messages
	}
	if t.threshold, t.hasThreshold, err = readThreshold(doc); err != nil {
		return nil, fmt.Errorf("analysis: read analysis template %s: %w", id, err)
	}
	return t, nil
}

// readThreshold reads min_messages_threshold in either spelling; found is
// false when neither is set (or both are null).
func readThreshold(doc map[string]json.RawMessage) (n int, found bool, err error) {
	for _, k := range thresholdKeys {
		raw := doc[k]
		if isNull(raw) {
			continue
		}
		var v json.Number
		if err := json.Unmarshal(raw, &v); err != nil {
			return 0, false, fmt.Errorf("%s is not a number: %s", k, raw)
		}
		i, err := v.Int64()
		if err != nil || i < 0 || i > 1<<31-1 {
			return 0, false, fmt.Errorf("%s is %s, want a non-negative integer", k, v)
		}
		return int(i), true, nil
	}
	return 0, false, nil
}

// isNull reports an absent or null JSON value.
func isNull(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) == 0 || string(raw) == "null"
}
