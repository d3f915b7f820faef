// Package realtime is the contract between a call and a speech-to-speech
// model (xAI Grok voice agents, OpenAI Realtime, Gemini Live). The caller's
// audio goes in; the model's audio, transcripts and tool calls come out; the
// service itself decides when the caller's turn ends and when they
// interrupt. Adapters live in internal/provider/<vendor> and vendor wire
// types never cross this boundary; internal/live runs a call's conversation
// on a Session the way internal/pipeline runs one on STT, LLM and TTS.
//
// Audio crosses the contract as 16-bit mono PCM at SampleRate, the call's
// own rate. Each adapter converts once, at its edge, to what its service
// takes: G.711 µ-law where the service accepts it (no resampling at all),
// otherwise PCM at the service's rate through audio.Resampler.
package realtime

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/llm"
)

// SampleRate is the rate of the audio exchanged through a Session.
const SampleRate = 8000

// Provider opens realtime sessions.
type Provider interface {
	// Connect opens a session configured by cfg. It returns once the
	// service has accepted the configuration, so a bad key, model or
	// voice fails here rather than mid-call. The session lives until
	// Close or until ctx ends.
	Connect(ctx context.Context, cfg Config) (Session, error)
}

// Config is one session's settings, taken from the assistant's llm_config.
type Config struct {
	Model string
	// APIKey is the organization's (BYOK) or the server's key. For Google
	// it is an AI Studio key or a service-account JSON (Vertex AI).
	APIKey string
	// Instructions is the system prompt (llm_config.messages).
	Instructions string
	Voice        string
	Temperature  *float64
	// MaxOutputTokens caps one response; 0 is the service's default.
	MaxOutputTokens int
	// Tools are the function tools the model may call, the conversation's
	// built-ins (end_call, transfer_call, send_dtmf) included.
	Tools []llm.ToolSpec
	// Turn tunes the service's turn detection.
	Turn TurnDetection
	// Language is a BCP-47 hint for transcription; empty lets the service
	// detect it.
	Language string
	// Keyterms are words and names transcription should favour.
	Keyterms []string
	// ReasoningEffort is "none" or "high" where the model reasons (xAI);
	// empty is the service's default.
	ReasoningEffort string
	// Speed scales the speaking rate; 0 is the service's default.
	Speed float64
	// ServerTools are tools the service runs itself (xAI web_search,
	// x_search, file_search).
	ServerTools []ServerTool
	// Delegation hands reasoning and tool calls to a text model (OpenAI
	// GPT-Live); nil keeps them in the voice model.
	Delegation *Delegation
	// Location is the Vertex AI region for a service-account key (Google);
	// empty is the adapter's default.
	Location string
	// Logger receives the adapter's diagnostics (the call's logger).
	Logger *slog.Logger
}

// TurnDetection is the service's voice-activity detection. Zero fields
// keep the service's defaults.
type TurnDetection struct {
	// Threshold is the activation level, 0–1; higher ignores more noise.
	Threshold float64
	// PrefixPadding is audio kept from before speech was detected.
	PrefixPadding time.Duration
	// Silence is the pause that ends the caller's turn.
	Silence time.Duration
	// IdleTimeout makes the assistant speak up after this long without
	// speech from either side; 0 is off.
	IdleTimeout time.Duration
}

// ServerTool is a tool the service runs by itself.
type ServerTool struct {
	Type            string // web_search, x_search, file_search
	AllowedXHandles []string
	VectorStoreIDs  []string
	MaxResults      int
}

// Delegation names the text model that reasons for a voice model.
type Delegation struct {
	Model string
	// Instructions for the text model; empty gives it Config.Instructions.
	Instructions string
}

// Session is one live connection to a speech-to-speech model. Recv is
// called from one goroutine; the other methods may be called from another
// one (the conversation's) while Recv blocks.
type Session interface {
	// SendAudio sends a piece of the caller's audio and takes ownership of
	// pcm. It must not block on the network: adapters queue, and drop the
	// oldest audio when the queue is full. It returns an error once the
	// session has ended.
	SendAudio(pcm []int16) error
	// Recv returns the next event. After Close it returns io.EOF; when the
	// service or the network ended the session it returns that error.
	Recv() (Event, error)
	// AddMessage adds text to the conversation without asking for a
	// response. role is llm.User or llm.System.
	AddMessage(ctx context.Context, role llm.Role, text string) error
	// Respond asks for a response now. instructions, when not empty, steer
	// this response only (say this, answer that).
	Respond(ctx context.Context, instructions string) error
	// ToolResults answers the calls of one ToolCalls event, all of them,
	// and lets the model go on.
	ToolResults(ctx context.Context, results []ToolResult) error
	// Truncate tells the service that the caller heard only the first
	// heard of the item's audio, after they interrupted it, so the model's
	// context holds only what was said. Services that cut the context by
	// themselves return nil.
	Truncate(ctx context.Context, itemID string, heard time.Duration) error
	// Cancel stops the response being generated; nil when there is none.
	Cancel(ctx context.Context) error
	// Close ends the session. It is idempotent.
	Close() error
}

// ToolResult is the output of one tool call.
type ToolResult struct {
	CallID string
	Name   string
	// Output is what the model reads: JSON or plain text.
	Output string
}

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	// SpeechStarted: the service heard the caller start speaking. Audio
	// still playing is stopped (a barge-in); the service has cancelled
	// its response.
	SpeechStarted EventType = iota + 1
	// SpeechStopped: the caller's turn ended; a response follows.
	SpeechStopped
	// UserTranscript: Text is the transcript of one of the caller's
	// turns. It may arrive after the response to that turn has started.
	UserTranscript
	// Audio: Audio is a piece of the model's speech in item ItemID.
	Audio
	// ResponseDone: the response ended. Text is the transcript of what
	// the model said in it (all of it, whether or not it was heard);
	// Cancelled is set when the caller interrupted it.
	ResponseDone
	// ToolCalls: the model calls Calls; answer with ToolResults. It ends
	// the response that made the calls, like ResponseDone (Text is what
	// the model said in it first), and no ResponseDone follows for that
	// response: the model goes on in a new one after ToolResults.
	ToolCalls
	// Warning: the service reported a problem it recovers from (Text);
	// the session goes on.
	Warning
)

var eventNames = [...]string{"", "speech_started", "speech_stopped", "user_transcript", "audio", "response_done", "tool_calls", "warning"}

func (t EventType) String() string {
	if int(t) < len(eventNames) {
		return eventNames[t]
	}
	return "unknown"
}

// Event is one thing the service reports.
type Event struct {
	Type      EventType
	ItemID    string
	Audio     []int16
	Text      string
	Calls     []llm.ToolCall
	Cancelled bool
}

// Verbatim is the instruction a conversation gives with Respond to have
// the model say text word for word (a first message, a control say). The
// services have no other way to speak fixed text in the model's voice.
func Verbatim(text string) string {
	return verbatimPrefix + strconv.Quote(text)
}

// verbatimPrefix starts every Verbatim instruction; fakes look for it.
const verbatimPrefix = "Say exactly the following text, word for word, and nothing else: "

// ParseVerbatim returns the text of a Verbatim instruction; ok is false for
// any other instruction. Fakes use it to speak what they were asked to.
func ParseVerbatim(instructions string) (text string, ok bool) {
	q, found := strings.CutPrefix(instructions, verbatimPrefix)
	if !found {
		return "", false
	}
	t, err := strconv.Unquote(q)
	return t, err == nil
}
