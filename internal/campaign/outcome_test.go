package campaign

import (
	"testing"
	"time"
)

// TestDecide has a row per rule of Decide's table (and its edges).
func TestDecide(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	p := Policy{MaxAttempts: 3, RetryDelay: time.Hour}
	vm := Policy{MaxAttempts: 3, RetryDelay: time.Hour, LeaveVoicemail: true}
	later := now.Add(time.Hour)
	pending := func(outcome string) Decision {
		return Decision{Status: LeadPending, RetryAt: later, Outcome: outcome}
	}
	failed := func(outcome string) Decision { return Decision{Status: LeadFailed, Outcome: outcome} }
	tests := []struct {
		name string
		a    Attempt
		p    Policy
		want Decision
	}{
		{"voicemail left", Attempt{EndReason: "voicemail", Answered: true, Attempts: 1}, vm, Decision{Status: LeadCompleted, Outcome: "voicemail"}},
		{"voicemail left, last attempt", Attempt{EndReason: "voicemail", Attempts: 3}, vm, Decision{Status: LeadCompleted, Outcome: "voicemail"}},
		{"voicemail not left", Attempt{EndReason: "voicemail", Answered: true, Attempts: 1}, p, pending("voicemail")},
		{"voicemail not left, last", Attempt{EndReason: "voicemail", Answered: true, Attempts: 3}, p, failed("voicemail")},
		{"answered, hangup", Attempt{EndReason: "user_hangup", Answered: true, Attempts: 1}, p, Decision{Status: LeadCompleted, Outcome: "answered"}},
		{"answered, then error", Attempt{EndReason: "llm_error", Answered: true, Attempts: 1}, p, Decision{Status: LeadCompleted, Outcome: "answered"}},
		{"answered, then shutdown", Attempt{EndReason: "server_shutdown", Answered: true, Attempts: 3}, p, Decision{Status: LeadCompleted, Outcome: "answered"}},
		{"busy", Attempt{EndReason: "busy", Attempts: 1}, p, pending("busy")},
		{"busy, last", Attempt{EndReason: "busy", Attempts: 3}, p, failed("busy")},
		{"no_answer", Attempt{EndReason: "no_answer", Attempts: 2}, p, pending("no_answer")},
		{"no_answer, over", Attempt{EndReason: "no_answer", Attempts: 4}, p, failed("no_answer")},
		{"no_ack", Attempt{EndReason: "no_ack", Attempts: 1}, p, pending("no_ack")},
		{"caller_cancelled", Attempt{EndReason: "caller_cancelled", Attempts: 1}, p, pending("caller_cancelled")},
		{"error", Attempt{EndReason: "error", Attempts: 1}, p, pending("failed")},
		{"stt_error", Attempt{EndReason: "stt_error", Attempts: 1}, p, pending("failed")},
		{"llm_error", Attempt{EndReason: "llm_error", Attempts: 2}, p, pending("failed")},
		{"tts_error, last", Attempt{EndReason: "tts_error", Attempts: 3}, p, failed("failed")},
		{"declined", Attempt{EndReason: "declined", Attempts: 1}, p, failed("declined")},
		{"not_found", Attempt{EndReason: "not_found", Attempts: 1}, p, failed("not_found")},
		{"trunk_congested", Attempt{EndReason: "trunk_congested", Attempts: 3}, p, Decision{Status: LeadFailed, Backoff: true, Outcome: "trunk_congested"}},
		{"unreachable", Attempt{EndReason: "unreachable", Attempts: 1}, p, Decision{Status: LeadPending, RetryAt: now.Add(p.RetryDelay), Backoff: true, Outcome: "unreachable"}},
		{"server_shutdown", Attempt{EndReason: "server_shutdown", Attempts: 3}, p, Decision{Status: LeadFailed, Outcome: "server_error"}},
		{"server lost", Attempt{EndReason: "server_stopped_unexpectedly", Attempts: 1}, p, Decision{Status: LeadPending, RetryAt: now.Add(p.RetryDelay), Outcome: "server_error"}},
		{"trunk_auth_failed", Attempt{EndReason: "trunk_auth_failed", Attempts: 1}, p, Decision{Status: LeadPending, RetryAt: now, Uncounted: true, Pause: PauseTrunkAuth, Outcome: "trunk_auth_failed"}},
		{"insufficient-credits", Attempt{EndReason: "insufficient-credits", Attempts: 1}, p, Decision{Status: LeadPending, RetryAt: now, Uncounted: true, Pause: PauseCredits, Outcome: "insufficient_credits"}},
		{"unknown", Attempt{EndReason: "something_new", Attempts: 1}, p, pending("failed")},
		{"empty, last", Attempt{Attempts: 3}, p, failed("failed")},
		{"zero policy: defaults", Attempt{EndReason: "busy", Attempts: 2}, Policy{}, Decision{Status: LeadPending, RetryAt: now.Add(DefaultRetryDelay), Outcome: "busy"}},
		{"zero policy, last", Attempt{EndReason: "busy", Attempts: DefaultMaxAttempts}, Policy{}, failed("busy")},
		{"one attempt allowed", Attempt{EndReason: "no_answer", Attempts: 1}, Policy{MaxAttempts: 1, RetryDelay: time.Hour}, failed("no_answer")},
	}
	for _, tc := range tests {
		if got := Decide(tc.a, tc.p, now); got != tc.want {
			t.Errorf("%s: Decide(%+v) = %+v, want %+v", tc.name, tc.a, got, tc.want)
		}
	}
}
