// Package openai streams chat completions over the OpenAI Chat Completions
// protocol, spoken by OpenAI itself and by most other hosted and self-hosted
// model servers (Mistral, Groq, xAI, Google's compatible endpoint, vLLM,
// Ollama, llama.cpp, ...). Chat implements llm.Provider; TTS implements
// tts.Provider over OpenAI's text-to-speech endpoint (POST /audio/speech).
package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/redact"
)

// DefaultBaseURL is the API root used when Config.BaseURL is empty.
const DefaultBaseURL = "https://api.openai.com/v1"

// Names of the request field that caps the reply length. OpenAI itself takes
// MaxCompletionTokens; most compatible servers only know MaxTokens.
const (
	MaxCompletionTokens = "max_completion_tokens"
	MaxTokens           = "max_tokens"
)

// Config configures a Chat. The zero value talks to OpenAI.
type Config struct {
	// BaseURL is the API root, the part before /chat/completions, e.g.
	// "http://localhost:11434/v1". Empty means DefaultBaseURL.
	BaseURL string
	// HTTPClient sends the requests. Nil means a client with no overall
	// timeout: replies stream for as long as the model talks, so bound a
	// call with its context instead. A Timeout set here covers the whole
	// stream, not only the wait for the first byte.
	HTTPClient *http.Client
	// Logger receives debug records about requests (model, status, timings,
	// token counts; never keys or message contents). Nil discards them.
	Logger *slog.Logger
	// MaxTokensField names the field that carries Request.MaxTokens:
	// MaxCompletionTokens (the default) or MaxTokens for compatible servers.
	MaxTokensField string
	// Headers are added to every request, e.g. for gateways. They cannot
	// replace Content-Type or Accept; an Authorization given here is sent
	// only when the request has no API key.
	Headers map[string]string
}

// Chat is an llm.Provider for OpenAI-compatible chat completion endpoints.
// It is safe for concurrent use.
type Chat struct {
	endpoint     string
	client       *http.Client
	log          *slog.Logger
	maxTokensKey []byte // `,"max_completion_tokens":`, ready to splice into the body
	headers      http.Header
}

var _ llm.Provider = (*Chat)(nil)

// NewChat returns a Chat configured by cfg.
func NewChat(cfg Config) *Chat {
	base, client, log, headers := cfg.defaults()
	field := cfg.MaxTokensField
	if field == "" {
		field = MaxCompletionTokens
	}
	key, _ := json.Marshal(field) // marshalling a string cannot fail
	return &Chat{
		endpoint:     base + "/chat/completions",
		client:       client,
		log:          log,
		maxTokensKey: append(append([]byte{','}, key...), ':'),
		headers:      headers,
	}
}

// defaults returns the API root without a trailing slash, the HTTP client,
// the logger and the extra headers cfg gives, with the defaults filled in.
func (cfg *Config) defaults() (base string, client *http.Client, log *slog.Logger, headers http.Header) {
	base = strings.TrimRight(cfg.BaseURL, "/")
	if base == "" {
		base = DefaultBaseURL
	}
	client = cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	log = cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	headers = make(http.Header, len(cfg.Headers))
	for k, v := range cfg.Headers {
		headers.Set(k, v)
	}
	return base, client, log, headers
}

// Stream sends req and returns once the response headers have arrived, so
// that the wait for the first byte can be measured apart from the wait for
// the first token. A non-2xx answer is returned as an *APIError; a failure
// to connect is wrapped.
//
// The stream's Recv returns text as it arrives; the finish reason together
// with the complete tool calls (in index order); usage when the server sends
// it, in the finish Delta or in a Delta of its own just after; then io.EOF.
// A stream that breaks before both [DONE] and a finish reason returns an
// error wrapping io.ErrUnexpectedEOF, an error event an *APIError, a
// cancelled ctx its error, and Recv after Close ErrClosed. Recv must be
// called from one goroutine at a time; Close may be called from any, and
// aborts the body at once. The caller must Close the stream.
func (c *Chat) Stream(ctx context.Context, req llm.Request) (llm.Stream, error) {
	if req.Model == "" {
		return nil, fmt.Errorf("openai: request has no model")
	}
	body, err := c.encode(&req)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	hreq, err := http.NewRequestWithContext(sctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		cancel()
		return nil, fmt.Errorf("openai: build request: %w", err)
	}
	hreq.Header = c.headers.Clone()
	if req.APIKey != "" {
		hreq.Header.Set("Authorization", "Bearer "+req.APIKey)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "text/event-stream")

	start := time.Now()
	resp, err := c.client.Do(hreq)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("openai: send request: %w", err)
	}
	ttfb := time.Since(start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := readAPIError(resp, req.APIKey)
		_ = resp.Body.Close()
		cancel()
		c.log.LogAttrs(ctx, slog.LevelDebug, "openai: request refused",
			slog.String("model", req.Model), slog.Int("status", resp.StatusCode),
			slog.String("type", apiErr.Type), slog.String("code", apiErr.Code),
			slog.Duration("ttfb", ttfb))
		return nil, apiErr
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "application/json" {
		// A server that ignored stream:true, or a gateway that answers
		// errors with 200.
		err := notAStream(resp, req.APIKey)
		_ = resp.Body.Close()
		cancel()
		return nil, err
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "openai: stream started",
		slog.String("model", req.Model), slog.Int("status", resp.StatusCode),
		slog.Int("messages", len(req.Messages)), slog.Int("tools", len(req.Tools)),
		slog.Duration("ttfb", ttfb))
	s := newStream(ctx, cancel, resp.Body, req.APIKey)
	s.log, s.model, s.start = c.log, req.Model, start
	return s, nil
}

// notAStream turns a 2xx JSON answer into an error: the API error it
// carries, or a complaint that no event stream came.
func notAStream(resp *http.Response, key string) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("openai: read non-streaming response: %w", err)
	}
	if e := parseErrorBody(resp.StatusCode, body); e.fromJSON {
		e.Message = redact.Key(e.Message, key)
		return e
	}
	return fmt.Errorf("openai: server answered %d with application/json instead of an event stream (does it support stream=true?)", resp.StatusCode)
}

// Wire shapes of the request body.
type (
	wireRequest struct {
		Model         string             `json:"model"`
		Messages      []wireMessage      `json:"messages"`
		Tools         []wireTool         `json:"tools,omitempty"`
		ToolChoice    string             `json:"tool_choice,omitempty"`
		Stream        bool               `json:"stream"`
		StreamOptions *wireStreamOptions `json:"stream_options,omitempty"`
		Temperature   *float64           `json:"temperature,omitempty"`
		// ResponseFormat is sent only when the request asks for JSON.
		ResponseFormat *wireResponseFormat `json:"response_format,omitempty"`
	}
	wireResponseFormat struct {
		Type       string          `json:"type"` // "json_schema" or "json_object"
		JSONSchema *wireJSONSchema `json:"json_schema,omitempty"`
	}
	wireJSONSchema struct {
		Name   string          `json:"name"`
		Schema json.RawMessage `json:"schema"`
		// Strict is false: strict mode accepts only a subset of JSON
		// Schema (every property required, no additionalProperties), and
		// callers validate the reply themselves.
		Strict bool `json:"strict"`
	}
	wireStreamOptions struct {
		IncludeUsage bool `json:"include_usage"`
	}
	wireMessage struct {
		Role       string         `json:"role"`
		Content    *string        `json:"content"` // null on assistant messages that only call tools
		ToolCalls  []wireToolCall `json:"tool_calls,omitempty"`
		ToolCallID string         `json:"tool_call_id,omitempty"`
	}
	wireToolCall struct {
		ID       string       `json:"id"`
		Type     string       `json:"type"`
		Function wireFunction `json:"function"`
	}
	wireFunction struct {
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	wireTool struct {
		Type     string       `json:"type"`
		Function wireToolSpec `json:"function"`
	}
	wireToolSpec struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters"`
	}
)

// emptyParameters is the schema sent for a tool that takes no parameters.
const emptyParameters = `{"type":"object","properties":{}}`

// defaultFormatName names a response format given without a name.
const defaultFormatName = "response"

// responseFormat is the wire form of rf: json_schema with a schema,
// json_object without one, nothing for nil.
func responseFormat(rf *llm.ResponseFormat) *wireResponseFormat {
	if rf == nil {
		return nil
	}
	if len(bytes.TrimSpace(rf.Schema)) == 0 || string(bytes.TrimSpace(rf.Schema)) == "null" {
		return &wireResponseFormat{Type: "json_object"}
	}
	name := rf.Name
	if name == "" {
		name = defaultFormatName
	}
	return &wireResponseFormat{Type: "json_schema", JSONSchema: &wireJSONSchema{Name: name, Schema: rf.Schema}}
}

// encode builds the JSON body for req.
func (c *Chat) encode(req *llm.Request) ([]byte, error) {
	wr := wireRequest{
		Model:          req.Model,
		Messages:       make([]wireMessage, len(req.Messages)),
		Stream:         true,
		StreamOptions:  &wireStreamOptions{IncludeUsage: true},
		Temperature:    req.Temperature,
		ResponseFormat: responseFormat(req.ResponseFormat),
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		wm := wireMessage{Role: string(m.Role), ToolCallID: m.ToolCallID}
		if len(m.ToolCalls) == 0 || m.Content != "" {
			wm.Content = &m.Content
		}
		if len(m.ToolCalls) > 0 {
			wm.ToolCalls = make([]wireToolCall, len(m.ToolCalls))
			for j, tc := range m.ToolCalls {
				args := tc.Arguments
				if args == "" {
					args = "{}"
				}
				wm.ToolCalls[j] = wireToolCall{ID: tc.ID, Type: "function", Function: wireFunction{Name: tc.Name, Arguments: args}}
			}
		}
		wr.Messages[i] = wm
	}
	if len(req.Tools) > 0 {
		wr.Tools = make([]wireTool, len(req.Tools))
		for i, t := range req.Tools {
			params := t.Parameters
			if len(bytes.TrimSpace(params)) == 0 || string(params) == "null" {
				params = json.RawMessage(emptyParameters)
			}
			wr.Tools[i] = wireTool{Type: "function", Function: wireToolSpec{Name: t.Name, Description: t.Description, Parameters: params}}
		}
		wr.ToolChoice = "auto"
	}
	b, err := json.Marshal(&wr)
	if err != nil {
		return nil, fmt.Errorf("openai: encode request: %w", err)
	}
	if req.MaxTokens > 0 {
		// The field's name is configurable, so splice it in by hand.
		b = append(b[:len(b)-1], c.maxTokensKey...)
		b = strconv.AppendInt(b, int64(req.MaxTokens), 10)
		b = append(b, '}')
	}
	return b, nil
}
