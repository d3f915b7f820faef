// Package llm is the contract between a call's conversation pipeline and a
// chat model that streams its reply. Adapters live in internal/provider/<vendor>.
package llm

import (
	"context"
	"encoding/json"
)

// Role is who wrote a message.
type Role string

// Roles, as spelled by OpenAI-compatible APIs.
const (
	System    Role = "system"
	User      Role = "user"
	Assistant Role = "assistant"
	Tool      Role = "tool"
)

// ToolCall is one function call the model asked for.
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON text as the model wrote it
}

// Message is one entry of the conversation sent to the model.
type Message struct {
	Role       Role
	Content    string
	ToolCalls  []ToolCall // assistant messages that called tools
	ToolCallID string     // tool messages: the call this answers
}

// ToolSpec describes a function the model may call.
type ToolSpec struct {
	Name        string
	Description string
	Parameters  json.RawMessage // JSON Schema object; nil means no parameters
}

// Request is one streamed completion.
type Request struct {
	Model       string
	APIKey      string // the organization's own (BYOK) or the server's; may be empty for self-hosted servers
	Messages    []Message
	Tools       []ToolSpec
	Temperature *float64
	MaxTokens   int // 0 = provider default
	// ResponseFormat, when set, asks for the reply as JSON text constrained
	// by a JSON Schema; nil means free text. Providers that cannot constrain
	// their output may ignore it, so callers still validate the reply.
	ResponseFormat *ResponseFormat
}

// ResponseFormat asks for a JSON reply.
type ResponseFormat struct {
	// Name names the format for the provider (letters, digits, _ and -,
	// at most 64); "" lets the adapter choose one.
	Name string
	// Schema is the JSON Schema the reply must satisfy. Nil asks for any
	// JSON object.
	Schema json.RawMessage
}

// Provider streams completions.
type Provider interface {
	// Stream sends req and returns the reply as it is generated. Cancelling
	// ctx aborts the request.
	Stream(ctx context.Context, req Request) (Stream, error)
}

// Stream is one reply being generated.
type Stream interface {
	// Recv returns the next piece of the reply and io.EOF after the last.
	Recv() (Delta, error)
	// Close abandons the reply.
	Close() error
}

// Delta is a piece of a reply.
type Delta struct {
	Text string
	// ToolCalls are complete calls (all their arguments received), delivered
	// once, in the order the model made them.
	ToolCalls    []ToolCall
	FinishReason string // "stop", "tool_calls", "length", ... on the last piece
	Usage        *Usage
}

// Usage is the token count of a reply.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}
