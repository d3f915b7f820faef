package inworld

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/coder/websocket"
)

// clientMessage is any message to the service: exactly one of the payload
// fields is set. Empty structs marshal as {}.
type clientMessage struct {
	ContextID    string         `json:"contextId"`
	Create       *createContext `json:"create,omitempty"`
	SendText     *sendText      `json:"send_text,omitempty"`
	FlushContext *struct{}      `json:"flush_context,omitempty"`
	CloseContext *struct{}      `json:"close_context,omitempty"`
}

// createContext opens a synthesis context.
type createContext struct {
	VoiceID                string      `json:"voiceId"`
	ModelID                string      `json:"modelId"`
	AudioConfig            audioConfig `json:"audioConfig"`
	Language               string      `json:"language,omitempty"`
	Temperature            *float64    `json:"temperature,omitempty"`
	DeliveryMode           string      `json:"deliveryMode,omitempty"`
	ApplyTextNormalization string      `json:"applyTextNormalization,omitempty"`
}

type audioConfig struct {
	AudioEncoding   string  `json:"audioEncoding"`
	SampleRateHertz int     `json:"sampleRateHertz"`
	SpeakingRate    float64 `json:"speakingRate,omitempty"`
}

type sendText struct {
	Text string `json:"text"`
}

// serverMessage is any message from the service. Timestamps are not
// decoded: the pipeline does not use them.
type serverMessage struct {
	Result *result    `json:"result"`
	Error  *rpcStatus `json:"error"`
}

type result struct {
	ContextID      string          `json:"contextId"`
	Status         *rpcStatus      `json:"status"`
	ContextCreated json.RawMessage `json:"contextCreated"`
	AudioChunk     *audioChunk     `json:"audioChunk"`
	FlushCompleted json.RawMessage `json:"flushCompleted"`
	ContextClosed  json.RawMessage `json:"contextClosed"`
}

type audioChunk struct {
	AudioContent string `json:"audioContent"`
}

// rpcStatus is a gRPC-style status: code 0 is OK.
type rpcStatus struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// gRPC status codes the service uses.
const (
	codeInvalidArgument   = 3
	codeNotFound          = 5
	codePermissionDenied  = 7
	codeResourceExhausted = 8
	codeInternal          = 13
	codeUnavailable       = 14
	codeUnauthenticated   = 16
)

// codeName names a gRPC status code.
func codeName(code int) string {
	switch code {
	case codeInvalidArgument:
		return "INVALID_ARGUMENT"
	case codeNotFound:
		return "NOT_FOUND"
	case codePermissionDenied:
		return "PERMISSION_DENIED"
	case codeResourceExhausted:
		return "RESOURCE_EXHAUSTED"
	case codeInternal:
		return "INTERNAL"
	case codeUnavailable:
		return "UNAVAILABLE"
	case codeUnauthenticated:
		return "UNAUTHENTICATED"
	default:
		return fmt.Sprintf("code %d", code)
	}
}

// ServerError is a failure the service reported: a refused websocket
// upgrade, an error message on the stream, or an abnormal close.
type ServerError struct {
	// HTTPStatus is the upgrade response's status when the upgrade was
	// refused (401 for a bad key, 429 over quota), else 0.
	HTTPStatus int
	// CloseStatus is the websocket close code when the service closed the
	// stream abnormally, else 0.
	CloseStatus int
	// Code is the gRPC-style status code of an error message or body
	// (16 unauthenticated, 3 invalid argument, 8 resource exhausted), else 0.
	Code int
	// Message is the human-readable explanation.
	Message string
}

// Unauthenticated reports a missing or wrong API key.
func (e *ServerError) Unauthenticated() bool {
	return e.HTTPStatus == http.StatusUnauthorized || e.Code == codeUnauthenticated
}

// RateLimited reports a quota or rate limit.
func (e *ServerError) RateLimited() bool {
	return e.HTTPStatus == http.StatusTooManyRequests || e.Code == codeResourceExhausted
}

// Temporary reports a failure worth retrying later: rate limits and 5xx or
// unavailable/internal statuses.
func (e *ServerError) Temporary() bool {
	return e.RateLimited() || e.HTTPStatus >= 500 || e.Code == codeUnavailable || e.Code == codeInternal
}

// Error describes the failure; it never contains the API key.
func (e *ServerError) Error() string {
	var b strings.Builder
	b.WriteString("inworld: ")
	switch {
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, "websocket upgrade refused: HTTP %d %s", e.HTTPStatus, http.StatusText(e.HTTPStatus))
	case e.CloseStatus != 0:
		fmt.Fprintf(&b, "stream closed by the service with status %d (%s)", e.CloseStatus, websocket.StatusCode(e.CloseStatus))
	default:
		b.WriteString("service error")
	}
	if e.Code != 0 {
		fmt.Fprintf(&b, " [%s]", codeName(e.Code))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Unauthenticated() {
		b.WriteString(" (check the Inworld API key)")
	}
	return b.String()
}
