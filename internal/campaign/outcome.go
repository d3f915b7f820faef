package campaign

import "time"

// Attempt is one finished call to a lead.
type Attempt struct {
	EndReason string // the call's end_reason (internal/call/endreason.go, and "trunk_congested": a SIP 503 from the trunk)
	Answered  bool   // the far end answered (the call connected)
	Attempts  int    // attempts made, this one included
}

// Policy is what a campaign allows for its leads.
type Policy struct {
	MaxAttempts    int           // ≤ 0: DefaultMaxAttempts
	RetryDelay     time.Duration // ≤ 0: DefaultRetryDelay
	LeaveVoicemail bool          // the assistant leaves a voicemail message (voicemail_detection on and voicemail_message set)
}

// Decision is what an attempt means for its lead and its campaign.
type Decision struct {
	Status    LeadStatus // LeadPending (retry), LeadCompleted or LeadFailed
	RetryAt   time.Time  // set when Status is LeadPending
	Uncounted bool       // the attempt does not count (our or the trunk's fault: the lead goes back to pending, attempts is decremented by the caller)
	Backoff   bool       // the trunk or server is congested: the campaign waits before dialing again
	Pause     string     // non-empty: the campaign must be paused with this reason (a configuration problem every lead would hit)
	Outcome   string     // short machine-readable outcome stored on the lead
}

// Pause reasons Decide gives.
const (
	PauseTrunkAuth = "the SIP trunk refused our credentials (trunk_auth_failed): fix the trunk, then set the campaign to scheduled"
	PauseCredits   = "insufficient_credits: the organization has no minutes left: add credit, then set the campaign to scheduled"
)

// Decide applies the rules, first match wins ("retry" means: Pending at
// now+RetryDelay while Attempts < MaxAttempts, else Failed):
//
//	end reason                              answered  status     outcome               other
//	voicemail, LeaveVoicemail               any       Completed  voicemail
//	voicemail, no LeaveVoicemail            any       retry      voicemail
//	anything else                           yes       Completed  answered              (never retried)
//	busy, no_answer                         no        retry      busy, no_answer
//	no_ack, caller_cancelled                no        retry      no_ack, caller_cancelled
//	error, stt_error, llm_error, tts_error  no        retry      failed
//	declined (603, 404 …)                   no        Failed     declined
//	not_found                               no        Failed     not_found
//	trunk_congested, unreachable            no        retry      trunk_congested,      Backoff (the campaign pauses its
//	                                                             unreachable           dials; only the leads in flight
//	                                                                                   spend an attempt, and a number the
//	                                                                                   trunk always refuses still ends)
//	server_shutdown,                        no        retry      server_error          (the INVITE may have reached
//	server_stopped_unexpectedly                                                          the callee: the attempt counts)
//	trunk_auth_failed                       no        Pending    trunk_auth_failed     Uncounted, RetryAt now, Pause PauseTrunkAuth
//	insufficient-credits                    no        Pending    insufficient_credits  Uncounted, RetryAt now, Pause PauseCredits
//	any other (unknown, empty)              no        retry      failed
func Decide(a Attempt, p Policy, now time.Time) Decision {
	if a.EndReason == "voicemail" {
		if p.LeaveVoicemail {
			return Decision{Status: LeadCompleted, Outcome: "voicemail"}
		}
		return retry(a, p, now, "voicemail")
	}
	if a.Answered {
		return Decision{Status: LeadCompleted, Outcome: "answered"}
	}
	again := Decision{Status: LeadPending, RetryAt: now, Uncounted: true}
	switch a.EndReason {
	case "busy", "no_answer", "no_ack", "caller_cancelled":
		return retry(a, p, now, a.EndReason)
	case "declined", "not_found":
		return Decision{Status: LeadFailed, Outcome: a.EndReason}
	case "trunk_congested", "unreachable":
		d := retry(a, p, now, a.EndReason)
		d.Backoff = true
		return d
	case "server_shutdown", "server_stopped_unexpectedly":
		// Our side stopped while dialling; the callee's phone may have
		// rung, so this is an attempt like no_answer, never a silent redial.
		return retry(a, p, now, "server_error")
	case "trunk_auth_failed":
		again.Pause, again.Outcome = PauseTrunkAuth, a.EndReason
	case "insufficient-credits":
		again.Pause, again.Outcome = PauseCredits, "insufficient_credits"
	default: // error, stt_error, llm_error, tts_error and anything unknown
		return retry(a, p, now, "failed")
	}
	return again
}

// retry counts the attempt: Pending again after the delay, or Failed when
// the lead has had its attempts.
func retry(a Attempt, p Policy, now time.Time, outcome string) Decision {
	maxAttempts, delay := p.MaxAttempts, p.RetryDelay
	if maxAttempts <= 0 {
		maxAttempts = DefaultMaxAttempts
	}
	if delay <= 0 {
		delay = DefaultRetryDelay
	}
	if a.Attempts >= maxAttempts {
		return Decision{Status: LeadFailed, Outcome: outcome}
	}
	return Decision{Status: LeadPending, RetryAt: now.Add(delay), Outcome: outcome}
}
