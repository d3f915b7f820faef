// Package live runs one call's conversation with a realtime
// speech-to-speech model: the caller's audio streams to a realtime.Session
// and the model's audio streams back through a playout queue, while the
// service decides when the caller's turn ends and when they interrupt. It
// is the realtime counterpart of internal/pipeline and offers the call
// handler the same surface (media Source and Sink, DTMF sink, Run,
// Control, Background), the same built-in tools, transcript and per-turn
// metrics, silence handling and apology on failure, so a call is handled
// the same whichever kind of assistant answers it.
package live

import (
	"log/slog"
	"time"

	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/silence"
	"github.com/parley-voice/parley/internal/tts"
)

// SampleRate is the rate of the frames the conversation exchanges.
const SampleRate = realtime.SampleRate

// Config is one call's conversation settings, taken from its assistant.
type Config struct {
	// Session configures the realtime session. Its Tools are replaced by
	// the assistant's Tools and the built-ins.
	Session realtime.Config
	// FirstMessage is spoken on answer; empty waits for the caller.
	FirstMessage string
	// FirstMessageEnds makes the first message a goodbye: the call ends
	// once it has played (a refusal the caller is told of).
	FirstMessageEnds bool
	// EndCallMessage is spoken before the assistant hangs up by itself.
	EndCallMessage string
	// EndCallTool offers the model the end_call tool.
	EndCallTool bool
	// Tools are the function tools the model may call besides the
	// built-ins; Deps.Tools runs them.
	Tools []pipeline.Tool
	// Transfers are the transfer_call tool's destinations.
	Transfers []pipeline.TransferDestination
	// MaxDuration ends the call after this long (0 = no cap).
	MaxDuration time.Duration
	// Silence checks on a quiet caller (spec §12.1); nil = off.
	Silence *silence.Config
	// Apology is spoken, by Deps.Apology, when the session fails.
	Apology string
	// ApologyVoice is the text-to-speech voice of the apology.
	ApologyVoice tts.Config
	// DTMFDigitTimeout ends a keypad entry this long after the last key
	// (default 2 s); # ends it at once.
	DTMFDigitTimeout time.Duration
	// CloseWait bounds a goodbye the model was asked to say before the
	// call ends (a say with end_after, an end-call or transfer message):
	// the call ends when it has played or after this long (default 15 s).
	CloseWait time.Duration
}

// Deps are the conversation's collaborators.
type Deps struct {
	Provider realtime.Provider
	// Apology speaks Config.Apology when the session has failed and the
	// model cannot; nil ends such calls without a word.
	Apology  tts.Provider
	Recorder pipeline.Recorder
	// Tools runs Config.Tools; nil answers every call with an error.
	Tools pipeline.ToolRunner
	// Keypad, when set, offers the model the send_dtmf tool.
	Keypad pipeline.Keypad
	Logger *slog.Logger
}

// defaults fills the zero settings.
func (c *Config) defaults() {
	if c.Apology == "" {
		c.Apology = pipeline.DefaultApology
	}
	if c.DTMFDigitTimeout <= 0 {
		c.DTMFDigitTimeout = 2 * time.Second
	}
	if c.CloseWait <= 0 {
		c.CloseWait = 15 * time.Second
	}
}
