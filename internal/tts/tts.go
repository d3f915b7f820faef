// Package tts is the contract between a call's conversation pipeline and a
// text-to-speech provider that streams audio. Adapters live in
// internal/provider/<vendor>.
package tts

import "context"

// Config is what one synthesis stream needs.
type Config struct {
	Voice    string
	Model    string
	Language string
	// SampleRate is the rate of the mono 16-bit PCM the stream must return
	// (8000 on phone calls). Providers resample when they cannot produce it.
	SampleRate int
	APIKey     string  // the organization's own (BYOK) or the server's
	Speed      float64 // 0 = provider default
	// Options carries the remaining provider-specific tts_config fields
	// (stability, similarity_boost, ...) as decoded JSON values.
	Options map[string]any
}

// Provider opens synthesis streams. One stream speaks one assistant reply.
type Provider interface {
	Open(ctx context.Context, cfg Config) (Stream, error)
}

// Stream turns text, sent piece by piece while the model writes it, into audio.
type Stream interface {
	// Send queues text to speak, normally one sentence or clause.
	Send(text string) error
	// Flush says no more text follows: the provider speaks what it holds and
	// Recv returns io.EOF after the last audio.
	Flush() error
	// Recv returns the next chunk of audio.
	Recv() (Chunk, error)
	// Close abandons the stream at once (barge-in, hang-up).
	Close() error
}

// Chunk is a piece of synthesised speech: mono 16-bit PCM at Config.SampleRate.
type Chunk struct {
	PCM []int16
}
