package resend

import (
	"net/http"
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		status        int
		name, message string
		want          Kind
	}{
		{400, "validation_error", "The `name` field is required.", KindInvalid},
		{400, "invalid_idempotency_key", "The key must be between 1-256 chars.", KindInvalid},
		{400, "validation_error", "API key is invalid", KindAuth},
		{401, "missing_api_key", "Missing API key in the authorization header.", KindAuth},
		{401, "restricted_api_key", "This API key is restricted to only send emails.", KindAuth},
		{401, "validation_error", "API key is invalid", KindAuth},
		{403, "invalid_api_key", "API key is invalid.", KindAuth},
		{403, "validation_error", "The example.com domain is not verified.", KindInvalid},
		{403, "", "Forbidden", KindAuth},
		{404, "not_found", "Domain not found", KindNotFound},
		{405, "method_not_allowed", "Method is not allowed", KindInvalid},
		{409, "invalid_idempotent_request", "Same idempotency key used with a different request payload.", KindConflict},
		{422, "invalid_region", "Region must be …", KindInvalid},
		{422, "missing_required_field", "Missing `name` field.", KindInvalid},
		{429, "rate_limit_exceeded", "Too many requests.", KindRateLimited},
		{429, "daily_quota_exceeded", "You have reached your daily email sending quota.", KindRateLimited},
		{500, "application_error", "Something went wrong.", KindUnavailable},
		{503, "", "Service Unavailable", KindUnavailable},
		{302, "", "Found", KindUnknown},
	} {
		if got := classify(tc.status, tc.name, tc.message); got != tc.want {
			t.Errorf("classify(%d, %q, %q) = %v, want %v", tc.status, tc.name, tc.message, got, tc.want)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 18, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{"Retry-After": {"7"}}, 7 * time.Second},
		{http.Header{"Retry-After": {"0.5"}}, 500 * time.Millisecond},
		{http.Header{"Retry-After": {now.Add(90 * time.Second).Format(http.TimeFormat)}}, 90 * time.Second},
		{http.Header{"Ratelimit-Reset": {"3"}}, 3 * time.Second},
		{http.Header{"Retry-After": {"soon"}, "Ratelimit-Reset": {"2"}}, 2 * time.Second},
		{http.Header{"Retry-After": {"-4"}}, 0},
		{http.Header{}, 0},
	} {
		if got := retryAfter(tc.h, now); got != tc.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tc.h, got, tc.want)
		}
	}
}
