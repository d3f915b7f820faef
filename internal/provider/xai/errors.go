package xai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/parley-voice/parley/internal/provider/redact"
)

// maxErrorBody bounds how much of a refused upgrade's body is read (the
// websocket library keeps at most the first 1 KiB anyway).
const maxErrorBody = 4 << 10

// maxErrorMessage bounds a message taken from a body or a close reason.
const maxErrorMessage = 300

// APIError is a failure the service reported: a refused websocket upgrade
// (StatusCode), an {"type":"error"} message on the stream, or an abnormal
// close (CloseStatus). It never contains the API key.
type APIError struct {
	// StatusCode is the upgrade response's HTTP status (401 for a bad key,
	// 429 for too many sessions), else 0.
	StatusCode int
	// CloseStatus is the websocket close code of an abnormal close, else 0.
	CloseStatus int
	// Code is the body's "code" field when it has one.
	Code string
	// Message is the service's explanation.
	Message string
}

// Error names the provider, what failed and the service's explanation; a
// rejected key says so.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("xai: ")
	switch {
	case e.Unauthorized():
		fmt.Fprintf(&b, "the xAI API key was rejected (HTTP %d %s)", e.StatusCode, http.StatusText(e.StatusCode))
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "websocket upgrade refused: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	case e.CloseStatus != 0:
		fmt.Fprintf(&b, "stream closed by the service with status %d", e.CloseStatus)
	default:
		b.WriteString("service error")
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unauthorized reports a missing, wrong or revoked key (401 or 403).
func (e *APIError) Unauthorized() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// Retryable reports whether opening a stream again later may succeed: rate
// limits (429) and service failures (5xx).
func (e *APIError) Retryable() bool {
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// dialError turns a failed upgrade into an *APIError with the HTTP status
// and the body's message, or a plain connection error when there was no
// answer.
func dialError(err error, resp *http.Response, key string) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("xai: connecting: %s", redact.Key(err.Error(), key))
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // a partial body still explains
	}
	code, msg := bodyMessage(body)
	return &APIError{StatusCode: resp.StatusCode, Code: redact.Key(code, key), Message: redact.Key(msg, key)}
}

// bodyMessage extracts the explanation from an error body: xAI's
// {"code":…,"error":"…"}, OpenAI's {"error":{"message":…,"code":…}},
// {"message":…} or plain text.
func bodyMessage(body []byte) (code, msg string) {
	body = bytes.TrimSpace(body)
	var v struct {
		Code    json.RawMessage `json:"code"`
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if len(body) > 0 && body[0] == '{' && json.Unmarshal(body, &v) == nil {
		var obj struct {
			Message string          `json:"message"`
			Code    json.RawMessage `json:"code"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Error, &s) == nil && s != "":
			return rawText(v.Code), clip(s)
		case json.Unmarshal(v.Error, &obj) == nil && obj.Message != "":
			return rawText(obj.Code), clip(obj.Message)
		case v.Message != "":
			return rawText(v.Code), clip(v.Message)
		}
	}
	return "", clip(string(body))
}

// rawText renders a JSON string or number; null and absent are "".
func rawText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// clip trims s and shortens it to maxErrorMessage bytes of valid UTF-8.
func clip(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxErrorMessage {
		s = strings.ToValidUTF8(s[:maxErrorMessage], "") + "…"
	}
	return s
}
