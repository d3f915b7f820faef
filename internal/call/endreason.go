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
	EndSTTError        EndReason = "stt_error"
	EndLLMError        EndReason = "llm_error"
	EndTTSError        EndReason = "tts_error"
	EndCallerCancelled EndReason = "caller_cancelled"
	EndError           EndReason = "error"
)

// ProviderFailure reports whether the call ended because a provider failed,
// which makes its status ended-with-error.
func (r EndReason) ProviderFailure() bool {
	switch r {
	case EndSTTError, EndLLMError, EndTTSError, EndError:
		return true
	}
	return false
}
