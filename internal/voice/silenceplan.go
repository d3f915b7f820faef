package voice

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/silence"
)

// Silence handling (spec §12.1, §8.5 speech_config.silence), as read here:
//
//   - It is on only when autonomous_silence_handling is true (§8.5:
//     "silence is used only when autonomous_silence_handling is true").
//     speech_config.silence alone does nothing, and neither does
//     silence_timeout_seconds alone: every stored assistant carries it
//     (default 8), so reading it as a hang-up timer would cut calls of
//     assistants that never asked for one.
//   - With speech_config.silence present, its fields rule, absent ones
//     taking the catalog's defaults: first check 3 s, interval 12 s, 3
//     attempts (§15 conflict 17: catalog defaults when silence is present).
//   - Without it (assistants older than speech_config), the feature page's
//     timing applies — a first check, then one every 12 s, 3 attempts —
//     with the first check after silence_timeout_seconds, the older single
//     silence timer (default 8 s; the feature page's 7 s when it is
//     missing altogether). The model writes every prompt.
//   - max_attempts counts every attempt: attempts 1 … n-1 check on the
//     caller, attempt n says final_message (spoken "on the last attempt
//     before hang-up") and ends the call with silence_timed_out. With the
//     defaults: checks at 3 s and 15 s, the goodbye at 27 s
//     (notes/turn-taking.md), each later attempt counted from the end of
//     the previous prompt's playout.
//   - messages[] are used in order, the last repeated when there are more
//     checks than messages; none, or no final_message: the model writes the
//     prompt in the conversation's context.

// Defaults of the two timing models.
const (
	silenceFirstCheck       = 3 * time.Second  // speech_config.silence.first_check_seconds
	silenceInterval         = 12 * time.Second // interval_seconds (both models)
	silenceAttempts         = 3                // max_attempts (both models)
	silenceLegacyFirstCheck = 7 * time.Second  // feature page, without silence_timeout_seconds
)

// silenceDoc is the part of an assistant silence handling reads.
type silenceDoc struct {
	Autonomous bool `json:"autonomous_silence_handling"`
	Timeout    *int `json:"silence_timeout_seconds"`
	Speech     *struct {
		Silence *silenceFields `json:"silence"`
	} `json:"speech_config"`
}

// silenceFields is speech_config.silence.
type silenceFields struct {
	Messages     []string `json:"messages"`
	FinalMessage *string  `json:"final_message"`
	FirstCheck   *float64 `json:"first_check_seconds"`
	Interval     *float64 `json:"interval_seconds"`
	MaxAttempts  *int     `json:"max_attempts"`
}

// planSilence reads an assistant document's silence handling; nil: off.
func planSilence(doc []byte) *silence.Config {
	var d silenceDoc
	if json.Unmarshal(doc, &d) != nil || !d.Autonomous {
		return nil
	}
	cfg := &silence.Config{FirstCheck: silenceFirstCheck, Interval: silenceInterval, MaxAttempts: silenceAttempts}
	var s *silenceFields
	if d.Speech != nil {
		s = d.Speech.Silence
	}
	if s == nil {
		cfg.FirstCheck = silenceLegacyFirstCheck
		if d.Timeout != nil && *d.Timeout > 0 {
			cfg.FirstCheck = time.Duration(*d.Timeout) * time.Second
		}
		return cfg
	}
	for _, m := range s.Messages {
		if m = strings.TrimSpace(m); m != "" {
			cfg.Messages = append(cfg.Messages, m)
		}
	}
	if s.FinalMessage != nil {
		cfg.FinalMessage = strings.TrimSpace(*s.FinalMessage)
	}
	if s.FirstCheck != nil && *s.FirstCheck > 0 {
		setSeconds(&cfg.FirstCheck, s.FirstCheck)
	}
	if s.Interval != nil && *s.Interval > 0 {
		setSeconds(&cfg.Interval, s.Interval)
	}
	if s.MaxAttempts != nil && *s.MaxAttempts > 0 {
		cfg.MaxAttempts = *s.MaxAttempts
	}
	return cfg
}

// DefaultMaxCallDuration caps calls whose assistant sets no
// max_duration_seconds when Config.MaxCallDuration is zero.
const DefaultMaxCallDuration = time.Hour

// maxCallDuration is the server-wide cap for assistants without their own
// (0: none).
func (e *Engine) maxCallDuration() time.Duration {
	switch d := e.cfg.MaxCallDuration; {
	case d < 0:
		return 0
	case d == 0:
		return DefaultMaxCallDuration
	default:
		return d
	}
}
