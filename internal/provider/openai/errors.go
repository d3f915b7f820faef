package openai

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/provider/redact"
)

// ErrClosed is returned by Recv on a stream that was closed.
var ErrClosed = errors.New("openai: stream closed")

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 64 << 10

// maxErrorMessage bounds the length of a message taken from a plain-text body.
const maxErrorMessage = 1024

// APIError is an error reported by the server: a non-2xx answer, or an error
// event inside a stream.
type APIError struct {
	// StatusCode is the HTTP status; 0 when the error arrived as an event
	// inside a stream that had started with a success status.
	StatusCode int
	// Type, Code and Param are the fields of an OpenAI error object
	// ("invalid_request_error", "rate_limit_exceeded", "messages", ...);
	// empty when the server did not send them.
	Type, Code, Param string
	// Message is the server's explanation (any API key in it is redacted).
	Message string
	// RetryAfter is how long the server asked the client to wait, from the
	// retry-after-ms or Retry-After headers; 0 if it did not say.
	RetryAfter time.Duration

	fromJSON bool // the body was a recognised JSON error
}

// Error names the status and the server's message.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("openai: ")
	if e.StatusCode != 0 {
		b.WriteString(strconv.Itoa(e.StatusCode))
		if t := http.StatusText(e.StatusCode); t != "" {
			b.WriteByte(' ')
			b.WriteString(t)
		}
	} else {
		b.WriteString("error event in stream")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Type != "" || e.Code != "" {
		b.WriteString(" (")
		if e.Type != "" {
			b.WriteString("type ")
			b.WriteString(e.Type)
		}
		if e.Code != "" {
			if e.Type != "" {
				b.WriteString(", ")
			}
			b.WriteString("code ")
			b.WriteString(e.Code)
		}
		b.WriteByte(')')
	}
	if e.RetryAfter > 0 {
		b.WriteString("; retry after ")
		b.WriteString(e.RetryAfter.String())
	}
	return b.String()
}

// Retryable reports whether sending the same request again later may
// succeed: timeouts, conflicts, rate limits (but not an exhausted quota) and
// server errors.
func (e *APIError) Retryable() bool {
	if e.Code == "insufficient_quota" {
		return false
	}
	switch {
	case e.StatusCode == 0:
		return e.Type == "server_error" || e.Type == "" // an interrupted generation
	case e.StatusCode == http.StatusRequestTimeout, e.StatusCode == http.StatusConflict,
		e.StatusCode == http.StatusTooManyRequests, e.StatusCode >= 500:
		return true
	}
	return false
}

// readAPIError reads a non-2xx response into an *APIError.
func readAPIError(resp *http.Response, key string) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody)) // a partial body still explains something
	e := parseErrorBody(resp.StatusCode, body)
	e.RetryAfter = parseRetryAfter(resp.Header, time.Now())
	e.Message = redact.Key(e.Message, key)
	return e
}

// errorEnvelope covers the error bodies seen in the wild: OpenAI's
// {"error":{...}}, {"error":"text"}, vLLM's older top-level
// {"object":"error","message":...} and FastAPI's {"detail":...}.
type errorEnvelope struct {
	Error   json.RawMessage `json:"error"`
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
	Param   json.RawMessage `json:"param"`
	Detail  json.RawMessage `json:"detail"`
}

// errorObject is the OpenAI error object; Status is Google's spelling of the type.
type errorObject struct {
	Message string          `json:"message"`
	Type    string          `json:"type"`
	Status  string          `json:"status"`
	Code    json.RawMessage `json:"code"`
	Param   json.RawMessage `json:"param"`
}

// parseErrorBody makes an *APIError from an error response body, JSON in one
// of the known shapes or plain text.
func parseErrorBody(status int, body []byte) *APIError {
	e := &APIError{StatusCode: status}
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' { // Google wraps the envelope in an array
		var list []json.RawMessage
		if json.Unmarshal(body, &list) == nil && len(list) > 0 {
			body = list[0]
		}
	}
	var env errorEnvelope
	if len(body) > 0 && body[0] == '{' && json.Unmarshal(body, &env) == nil {
		switch {
		case fillErrorValue(e, env.Error):
			e.fromJSON = true
			return e
		case env.Message != "":
			e.Message, e.Type = env.Message, env.Type
			e.Code, e.Param = scalarText(env.Code), scalarText(env.Param)
			e.fromJSON = true
			return e
		case len(env.Detail) > 0:
			e.Message = clip(scalarText(env.Detail))
			e.fromJSON = true
			return e
		}
	}
	e.Message = clip(string(body))
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// fillErrorValue fills e from the value of an "error" field, an object or a
// string, and reports whether there was one.
func fillErrorValue(e *APIError, raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return false
	}
	switch raw[0] {
	case '"':
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return false
		}
		e.Message = clip(s)
		return true
	case '{':
		var o errorObject
		if json.Unmarshal(raw, &o) != nil {
			return false
		}
		e.Message, e.Type = o.Message, o.Type
		if e.Type == "" {
			e.Type = o.Status
		}
		e.Code, e.Param = scalarText(o.Code), scalarText(o.Param)
		return true
	}
	e.Message = clip(string(raw))
	return true
}

// scalarText renders a JSON string, number or other value as text; null is "".
func scalarText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
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

// parseRetryAfter reads how long the server asked to wait: OpenAI's
// retry-after-ms (milliseconds), else Retry-After (seconds or an HTTP date,
// measured from now). It returns 0 when neither is present and valid.
func parseRetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if ms, err := strconv.ParseFloat(v, 64); err == nil && ms > 0 && ms < 1e10 {
			return time.Duration(ms * float64(time.Millisecond))
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs > 0 && secs < 1e7 {
			return time.Duration(secs * float64(time.Second))
		}
		return 0
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
