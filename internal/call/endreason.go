package call

// EndReason says why a call ended. The zero value means "not ended".
type EndReason string

// End reasons, as stored in calls.end_reason and sent in webhooks.
const (
	EndUserHangup      EndReason = "user_hangup"
	EndAssistantHangup EndReason = "assistant_hangup"
	EndMaxDuration     EndReason = "max_duration"
	EndMediaTimeout    EndReason = "media_timeout"
	EndNoACK           EndReason = "no_ack"
	EndShutdown        EndReason = "server_shutdown"
	// The process running the call died (a crash, a kill, a lost machine);
	// another life of the server ended the call (package recovery).
	EndServerLost      EndReason = "server_stopped_unexpectedly"
	EndSTTError        EndReason = "stt_error"
	EndLLMError        EndReason = "llm_error"
	EndTTSError        EndReason = "tts_error"
	EndCallerCancelled EndReason = "caller_cancelled"
	EndError           EndReason = "error"

	// Ended by POST /calls/{id}/control (end-call, or say with end_after).
	EndAPIRequest EndReason = "api_request"
	// Handed to another party (status transferred).
	EndTransferred EndReason = "transferred"
	// A transfer was attempted and failed; the call could not continue.
	EndTransferFailed EndReason = "transfer_failed"
	// Rejected by the assistant-request webhook's error.
	EndWebhookRejected EndReason = "assistant_request_rejected"

	// Inbound calls Parley could not answer (status rejected).
	EndNumberInactive         EndReason = "number_inactive"
	EndNoAssistant            EndReason = "no_assistant"
	EndAssistantInactive      EndReason = "assistant_inactive"
	EndAssistantUnavailable   EndReason = "assistant_unavailable"
	EndAssistantRequestFailed EndReason = "assistant_request_failed"

	// The paying organization had no minutes left (spec §12.11): the caller
	// heard a short message and no model was used.
	EndInsufficientCredits EndReason = "insufficient-credits"
	// Recording consent (spec §12.8): the caller pressed 2, or no key at all.
	EndConsentDeclined EndReason = "consent_declined"
	EndConsentTimeout  EndReason = "consent_timeout"

	// The caller stayed silent through every silence check (spec §12.1).
	EndSilenceTimedOut EndReason = "silence_timed_out"

	// An answering machine took the call (voicemail detection).
	EndVoicemail EndReason = "voicemail"

	// Outbound calls that were never answered.
	EndBusy        EndReason = "busy"
	EndNoAnswer    EndReason = "no_answer"
	EndDeclined    EndReason = "declined"
	EndUnreachable EndReason = "unreachable"
	EndTrunkAuth   EndReason = "trunk_auth_failed"
	// The trunk answered 503 Service Unavailable: it (or the network behind
	// it) has no room for the call now; nothing reached the callee.
	EndTrunkCongested EndReason = "trunk_congested"

	// The other party hung up, or the media timeout fired, and not one RTP
	// packet had arrived from it during the call: a softphone without a
	// working sound device, or media lost to NAT or a wrong address in its
	// SDP. Otherwise these end as user_hangup and media_timeout.
	EndNoAudio EndReason = "no_audio_received"
)

// ProviderFailure reports whether the call ended because a provider failed,
// which makes its status ended-with-error.
func (r EndReason) ProviderFailure() bool {
	switch r {
	case EndSTTError, EndLLMError, EndTTSError, EndError, EndTransferFailed:
		return true
	}
	return false
}
