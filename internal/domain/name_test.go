package domain

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/provider/resend"
)

func TestName(t *testing.T) {
	for _, tc := range []struct{ in, want, problem string }{
		{"mail.example.com", "mail.example.com", ""},
		{"  Mail.Example.COM.  ", "mail.example.com", ""},
		{"bücher.example", "xn--bcher-kva.example", ""},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", ""},
		{"a-b.c0.io", "a-b.c0.io", ""},
		{"", "", "must be a domain name"},
		{".", "", "must be a domain name"},
		{"localhost", "", "at least two labels"},
		{"192.168.1.10", "", "not an IP address"},
		{"mail..example.com", "", "not a valid domain name"},
		{"-mail.example.com", "", "not a valid domain name"},
		{"mail-.example.com", "", "not a valid domain name"},
		{"under_score.example.com", "", "not a valid domain name"},
		{"*.example.com", "", "not a valid domain name"},
		{"a b.example.com", "", "not a valid domain name"},
		{"user@example.com", "", "not a valid domain name"},
		{"https://example.com", "", "not a valid domain name"},
		{strings.Repeat("a", 64) + ".example.com", "", "not a valid domain name"},
		{strings.Repeat(strings.Repeat("a", 60)+".", 5) + "com", "", "at most 253"},
	} {
		got, err := Name("domain_name", tc.in)
		if tc.problem == "" {
			if err != nil || got != tc.want {
				t.Errorf("Name(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
			continue
		}
		e, ok := fault.As(err)
		if !ok || e.Kind != fault.Invalid || e.Field != "domain_name" || !strings.Contains(e.Message, tc.problem) || !strings.HasPrefix(e.Message, "domain_name ") {
			t.Errorf("Name(%q) = %q, %v; want a 400 naming domain_name saying %q", tc.in, got, err, tc.problem)
		}
	}
}

func TestStatusOf(t *testing.T) {
	for in, want := range map[string]Status{
		"not_started": StatusNotStarted, "pending": StatusPending, "verified": StatusVerified, "failed": StatusFailed,
		"partially_verified": StatusPending, "partially_failed": StatusFailed, "temporary_failure": StatusPending, "something_new": StatusPending,
	} {
		if got := statusOf(in); got != want {
			t.Errorf("statusOf(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResendError(t *testing.T) {
	for _, tc := range []struct {
		err   error
		kind  fault.Kind
		code  string
		field string
		say   string
	}{
		{&resend.Error{Kind: resend.KindInvalid, Status: 422, Name: "validation_error", Message: "Invalid domain name."}, fault.Invalid, "resend_refused", "domain_name", "domain_name: Resend refused to create the domain: Invalid domain name."},
		{&resend.Error{Kind: resend.KindAuth, Status: 401, Name: "restricted_api_key", Message: "This API key is restricted to only send emails."}, fault.Invalid, "resend_key_refused", "", "full-access key"},
		{&resend.Error{Kind: resend.KindNotFound, Status: 404}, fault.Conflict, "resend_domain_gone", "", "no longer exists"},
		{&resend.Error{Kind: resend.KindConflict, Status: 409, Message: "in progress"}, fault.Conflict, "resend_conflict", "", "in progress"},
		{&resend.Error{Kind: resend.KindRateLimited, Status: 429, Message: "Too many requests.", RetryAfter: 3 * time.Second}, fault.RateLimited, "resend_rate_limited", "", "Too many requests."},
		{&resend.Error{Kind: resend.KindUnavailable, Status: 500, Name: "application_error", Message: "Something went wrong."}, fault.Unavailable, "resend_unavailable", "", "try again later"},
		{&resend.Error{Kind: resend.KindUnavailable, Message: "no answer from Resend", Err: errors.New("connection refused")}, fault.Unavailable, "resend_unavailable", "", "no answer from Resend"},
	} {
		err := resendError("create the domain", "domain_name", tc.err)
		if tc.kind != fault.Invalid || tc.code != "resend_refused" {
			err = resendError("create the domain", "", tc.err)
		}
		e, ok := fault.As(err)
		if !ok || e.Kind != tc.kind || e.Code != tc.code || e.Field != tc.field || !strings.Contains(e.Message, tc.say) || !errors.Is(err, tc.err) {
			t.Errorf("resendError(%v) = %+v", tc.err, e)
		}
	}
	if d, ok := RetryAfter(resendError("x", "", &resend.Error{Kind: resend.KindRateLimited, RetryAfter: 3 * time.Second})); !ok || d != 3*time.Second {
		t.Errorf("RetryAfter = %v, %v", d, ok)
	}
	if _, ok := RetryAfter(errors.New("x")); ok {
		t.Error("RetryAfter of a plain error")
	}
	if _, ok := fault.As(resendError("x", "", errors.New("plain"))); ok {
		t.Error("a plain error became a fault error")
	}
}
