// Package stt is the contract between a call's conversation pipeline and a
// speech-to-text provider. Adapters live in internal/provider/<vendor>; vendor
// wire types never cross this boundary.
package stt

import (
	"context"
	"time"
)

// Config is what one recognition stream needs. The pipeline fills it from the
// assistant's stt_config and the organization's keys.
type Config struct {
	Model    string
	Language string
	// SampleRate is the rate of the mono 16-bit PCM the caller writes
	// (8000 on phone calls). Providers that need another rate resample.
	SampleRate int
	// APIKey is the key for this call: the organization's own (BYOK) or the
	// server's. Empty when the provider needs none.
	APIKey string
	// Endpointing is the provider-side silence that finalises an utterance;
	// zero means the provider's default.
	Endpointing time.Duration
	// UtteranceEnd is the gap after the last word that ends an utterance even
	// when endpointing did not fire (Deepgram utterance_end_ms); zero = off.
	UtteranceEnd time.Duration
	// Keyterms are words and names to boost. The local provider treats them
	// as the complete list of phrases it can recognise (a grammar).
	Keyterms []string
	// Options carries the remaining provider-specific stt_config fields
	// (smart_format, numerals, ...) as decoded JSON values.
	Options map[string]any
}

// Provider opens recognition streams.
type Provider interface {
	// Open starts a stream that lives until Close is called or ctx ends.
	Open(ctx context.Context, cfg Config) (Stream, error)
}

// Stream is one live recognition session.
type Stream interface {
	// Write queues mono 16-bit PCM at Config.SampleRate. It copies pcm and
	// never blocks on the network: a provider that falls behind drops audio
	// (and reports it through its error or logs) rather than stall the call.
	Write(pcm []int16) error
	// Recv blocks for the next event. After Close it returns the remaining
	// events and then io.EOF; it returns the error that broke the stream
	// otherwise.
	Recv() (Event, error)
	// Close flushes what was written and ends the stream.
	Close() error
}

// EventType says what an Event reports.
type EventType uint8

// Event types.
const (
	// Interim is a provisional transcript of the words being spoken now; a
	// later Interim or Final replaces it.
	Interim EventType = iota + 1
	// Final is a settled transcript segment. Segments of one utterance are
	// concatenated in order.
	Final
	// UtteranceEnd says the caller stopped talking: the utterance's Finals are
	// complete.
	UtteranceEnd
	// SpeechStarted says the provider heard speech begin.
	SpeechStarted
)

func (t EventType) String() string {
	switch t {
	case Interim:
		return "interim"
	case Final:
		return "final"
	case UtteranceEnd:
		return "utterance_end"
	case SpeechStarted:
		return "speech_started"
	}
	return "unknown"
}

// Event is one message from the provider.
type Event struct {
	Type EventType
	// Text is the segment's transcript (Interim and Final).
	Text string
	// SpeechFinal marks a Final that also ends the utterance (Deepgram's
	// speech_final), so no UtteranceEnd needs to be awaited.
	SpeechFinal bool
	// Start and End are the segment's audio offsets from the start of the
	// stream, when the provider reports them.
	Start, End time.Duration
	Confidence float64
}
