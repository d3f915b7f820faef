package openai

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseErrorBody(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   APIError
	}{
		{"OpenAI object", 400, `{"error":{"message":"Invalid 'messages[1].content'","type":"invalid_request_error","param":"messages[1].content","code":"invalid_value"}}`,
			APIError{Type: "invalid_request_error", Param: "messages[1].content", Code: "invalid_value", Message: "Invalid 'messages[1].content'"}},
		{"nulls", 500, `{"error":{"message":"boom","type":"server_error","param":null,"code":null}}`,
			APIError{Type: "server_error", Message: "boom"}},
		{"numeric code", 429, `{"error":{"message":"slow down","code":429}}`,
			APIError{Code: "429", Message: "slow down"}},
		{"error string", 404, `{"error":"model not found"}`,
			APIError{Message: "model not found"}},
		{"vLLM top level", 400, `{"object":"error","message":"max_tokens too large","type":"BadRequestError","param":null,"code":400}`,
			APIError{Type: "BadRequestError", Code: "400", Message: "max_tokens too large"}},
		{"Google array", 429, `[{"error":{"code":429,"message":"Resource has been exhausted","status":"RESOURCE_EXHAUSTED"}}]`,
			APIError{Type: "RESOURCE_EXHAUSTED", Code: "429", Message: "Resource has been exhausted"}},
		{"FastAPI detail", 422, `{"detail":"Field required"}`,
			APIError{Message: "Field required"}},
		{"plain text", 502, "  Bad gateway from upstream \n", APIError{Message: "Bad gateway from upstream"}},
		{"HTML", 503, "<html><body>down</body></html>", APIError{Message: "<html><body>down</body></html>"}},
		{"JSON without an error", 500, `{"ok":false}`, APIError{Message: `{"ok":false}`}},
		{"empty", 504, "", APIError{Message: "Gateway Timeout"}},
		{"long text is clipped", 500, strings.Repeat("é", 600), APIError{Message: strings.Repeat("é", 512) + "…"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := *parseErrorBody(tc.status, []byte(tc.body))
			got.fromJSON = false
			tc.want.StatusCode = tc.status
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "20"}, 20 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"milliseconds win", map[string]string{"Retry-After": "1", "retry-after-ms": "250"}, 250 * time.Millisecond},
		{"bad milliseconds fall back", map[string]string{"Retry-After": "3", "retry-after-ms": "soon"}, 3 * time.Second},
		{"HTTP date", map[string]string{"Retry-After": "Sun, 01 Mar 2026 12:00:30 GMT"}, 30 * time.Second},
		{"date in the past", map[string]string{"Retry-After": "Sun, 01 Mar 2026 11:00:00 GMT"}, 0},
		{"negative", map[string]string{"Retry-After": "-5"}, 0},
		{"garbage", map[string]string{"Retry-After": "later"}, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tc.headers {
				h.Set(k, v)
			}
			if got := parseRetryAfter(h, now); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAPIErrorText(t *testing.T) {
	tests := []struct {
		err       APIError
		want      string
		retryable bool
	}{
		{APIError{StatusCode: 401, Type: "invalid_request_error", Code: "invalid_api_key", Message: "Incorrect API key provided."},
			"openai: 401 Unauthorized: Incorrect API key provided. (type invalid_request_error, code invalid_api_key)", false},
		{APIError{StatusCode: 429, Code: "rate_limit_exceeded", Message: "Slow down", RetryAfter: 1500 * time.Millisecond},
			"openai: 429 Too Many Requests: Slow down (code rate_limit_exceeded); retry after 1.5s", true},
		{APIError{StatusCode: 429, Type: "insufficient_quota", Code: "insufficient_quota"},
			"openai: 429 Too Many Requests (type insufficient_quota, code insufficient_quota)", false},
		{APIError{StatusCode: 500, Type: "server_error"}, "openai: 500 Internal Server Error (type server_error)", true},
		{APIError{StatusCode: 408}, "openai: 408 Request Timeout", true},
		{APIError{StatusCode: 599, Message: "odd"}, "openai: 599: odd", true},
		{APIError{Message: "overloaded"}, "openai: error event in stream: overloaded", true},
		{APIError{Type: "invalid_request_error", Message: "bad"}, "openai: error event in stream: bad (type invalid_request_error)", false},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
			if got := tc.err.Retryable(); got != tc.retryable {
				t.Errorf("Retryable() = %v, want %v", got, tc.retryable)
			}
		})
	}
}
