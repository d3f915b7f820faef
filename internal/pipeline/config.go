// Package pipeline runs one call's conversation: it listens to the caller
// through a voice-activity detector and a streaming speech-to-text provider,
// decides when the caller's turn ends and when they interrupt, streams the
// model's reply into text-to-speech sentence by sentence while the model is
// still writing, and plays the audio out frame by frame. It sees audio as
// 20 ms frames of 8 kHz PCM (it is a media Source and Sink) and talks to
// providers only through the stt, llm and tts contracts.
package pipeline

import (
	"context"
	"log/slog"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/silence"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/tts"
)

// SampleRate is the rate of the frames the pipeline exchanges.
const SampleRate = 8000

// FrameSamples is one 20 ms frame.
const FrameSamples = 160

// TurnTaking holds speech_config.turn_taking (spec §8.5).
type TurnTaking struct {
	EndpointingMinDelay   time.Duration // 0.4 s
	EndpointingMaxDelay   time.Duration // 2 s
	InterruptionMinDur    time.Duration // 0.3 s
	InterruptionMinWords  int           // 0 = off
	FalseInterruptTimeout time.Duration // 1.5 s; 0 = off (an interruption is real at once)
}

// DefaultTurnTaking is the catalog's defaults.
func DefaultTurnTaking() TurnTaking {
	return TurnTaking{
		EndpointingMinDelay:   400 * time.Millisecond,
		EndpointingMaxDelay:   2 * time.Second,
		InterruptionMinDur:    300 * time.Millisecond,
		FalseInterruptTimeout: 1500 * time.Millisecond,
	}
}

// Replacement is one pronunciation rule: From is replaced by To, literally,
// in what is sent to TTS (the transcript keeps the original words).
type Replacement struct{ From, To string }

// Config is one call's conversation settings, taken from its assistant.
type Config struct {
	// System is the start of the model context (llm_config.messages).
	System []llm.Message
	// FirstMessage is spoken on answer; empty waits for the caller.
	FirstMessage string
	// EndCallMessage is spoken before the assistant hangs up by itself.
	EndCallMessage string
	// LLM is the request template (model, key, temperature, tools); the
	// pipeline fills Messages and adds the built-in end_call tool.
	LLM llm.Request
	// EndCallTool offers the model the end_call tool.
	EndCallTool bool
	STT         stt.Config
	TTS         tts.Config
	Turn        TurnTaking
	// Pronunciation rules applied before TTS.
	Pronunciation []Replacement
	// MaxDuration ends the call after this long (0 = no cap).
	MaxDuration time.Duration
	// Silence checks on a quiet caller and hangs up with
	// silence_timed_out (spec §12.1); nil = off.
	Silence *silence.Config
	// Voicemail detects an answering machine on an outbound call and
	// leaves a message on it (spec §12.2; voicemail.go); nil = off.
	Voicemail *Voicemail
	// Apology is spoken when a provider fails mid-call, before hanging up.
	Apology string
	// Tools are the function tools the model may call besides the
	// built-ins; Deps.Tools runs them.
	Tools []Tool
	// Transfers are the transfer_call tool's destinations (none: no tool).
	Transfers []TransferDestination
	// DTMFDigitTimeout ends a keypad entry this long after the last key
	// (default 2 s); # ends it at once.
	DTMFDigitTimeout time.Duration
}

// Tool is a function tool the model may call.
type Tool struct {
	Spec llm.ToolSpec
	// Message is spoken while the tool runs (sync) or instead of waiting
	// for its result (async), so the caller never hears dead air.
	Message string
	// Async tools are started and not waited for.
	Async bool
}

// TransferDestination is one place transfer_call can send the caller.
type TransferDestination struct {
	Number      string // E.164 or SIP URI
	Description string // tells the model when to pick it
	Message     string // spoken before the transfer
}

// ToolRunner runs tool calls. Run must honour ctx and return the text the
// model reads (JSON or plain; failures as {"error": "..."}).
type ToolRunner interface {
	Run(ctx context.Context, call llm.ToolCall) string
}

// Keypad sends DTMF digits to the far end (IVR navigation).
type Keypad interface {
	SendDTMF(ctx context.Context, digits string) error
}

// Ending is how a conversation ended, when it ended the call itself.
type Ending struct {
	Reason call.EndReason
	// TransferTo is set when Reason is call.EndTransferred: the caller is
	// to be handed to this destination now.
	TransferTo string
}

// Providers are the three engines a pipeline call uses.
type Providers struct {
	STT stt.Provider
	LLM llm.Provider
	TTS tts.Provider
}

// Message is one settled transcript entry.
type Message struct {
	Role        llm.Role // user, assistant, or system (injected context)
	Content     string
	Interrupted bool // assistant: cut short by the caller; Content is what was heard
	At          time.Time
}

// TurnMetrics are one assistant reply's latency figures.
type TurnMetrics struct {
	Turn int
	// Endpointing is from the caller's last voiced frame to the turn's end.
	Endpointing time.Duration
	// LLMFirstToken is from the model request to its first text.
	LLMFirstToken time.Duration
	// TTSFirstAudio is from the first text sent to TTS to its first audio.
	TTSFirstAudio time.Duration
	// FirstPacket is from the turn's end to the reply's first RTP frame.
	FirstPacket time.Duration
	// FinalToFirstPacket is from the STT final that completed the turn to
	// the first RTP frame, the figure the platform is responsible for
	// besides the providers' own latency.
	FinalToFirstPacket time.Duration
	Interrupted        bool
	FalseInterruption  bool
}

// Recorder receives what the conversation settles. Calls come from the
// conversation's goroutine and must not block: implementations queue.
type Recorder interface {
	Message(m Message)
	Turn(m TurnMetrics)
}

// Deps are the conversation's collaborators.
type Deps struct {
	Providers Providers
	Recorder  Recorder
	// Tools runs Config.Tools; nil answers every call with an error.
	Tools ToolRunner
	// Keypad, when set, offers the model the send_dtmf tool.
	Keypad Keypad
	// VAD tells the caller's speech from silence for turn-taking; nil: the
	// energy VAD (audio.NewVAD with its defaults). The conversation owns it
	// for the call but does not close it.
	VAD    VAD
	Logger *slog.Logger
}

// VAD is a voice-activity detector fed the caller's 20 ms frames, one at a
// time, from the media receive goroutine.
type VAD interface {
	Process(frame []int16) audio.VADResult
	// Delays says how many frames late SpeechStart and SpeechEnd come, so
	// the events can be dated back to the speech itself.
	Delays() (start, end int)
}
