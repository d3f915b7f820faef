// Package realtimefake is the conversation the realtime protocol fakes
// (xAI and OpenAI Realtime, Gemini Live) hold with a client: an Ear that
// hears the caller's utterances in the audio it is sent, the way a
// service's server-side VAD does, and a Script that says what the caller
// "said" and how the model answers: text, a function call, or fixed text
// it was asked to say. Time is counted from the samples received, never
// from the wall clock, so a fake answers the same however fast audio
// arrives. The wire protocols stay in each vendor's fake package.
package realtimefake

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/provider/fakespeech"
	"github.com/parley-voice/parley/internal/realtime"
)

// Defaults of the Ear.
const (
	DefaultThreshold = 500
	DefaultSilence   = 500 * time.Millisecond
	// Onset is how long audio must stay loud before speech has started.
	Onset = 60 * time.Millisecond
	// DefaultTranscript is what the caller said when Script.Transcripts is
	// empty.
	DefaultTranscript = "hello"
)

// HeardKind is what the Ear noticed.
type HeardKind uint8

// What the Ear notices.
const (
	SpeechStarted HeardKind = iota + 1
	SpeechStopped
)

// Heard is one observation, At being the offset in the audio received.
type Heard struct {
	Kind HeardKind
	At   time.Duration
}

// Ear is an energy detector over 20 ms windows. It is fed samples and says
// when speech started and stopped. It is not safe for concurrent use.
type Ear struct {
	rate, window int
	threshold    float64
	silence      time.Duration

	sum      float64
	filled   int
	pos      int64 // samples consumed
	loudFrom int64 // first sample of the current loud run; -1 = none
	speaking bool
	lastLoud int64
}

// NewEar returns an Ear for audio at rate; zero threshold and silence take
// the defaults.
func NewEar(rate int, threshold float64, silence time.Duration) *Ear {
	if threshold <= 0 {
		threshold = DefaultThreshold
	}
	if silence <= 0 {
		silence = DefaultSilence
	}
	return &Ear{rate: rate, window: max(rate/50, 1), threshold: threshold, silence: silence, loudFrom: -1}
}

// Hear consumes pcm and returns what happened in it.
func (e *Ear) Hear(pcm []int16) []Heard {
	var out []Heard
	for _, s := range pcm {
		v := float64(s)
		e.sum += v * v
		e.filled++
		e.pos++
		if e.filled < e.window {
			continue
		}
		loud := math.Sqrt(e.sum/float64(e.filled)) >= e.threshold
		e.sum, e.filled = 0, 0
		switch {
		case loud && !e.speaking:
			if e.loudFrom < 0 {
				e.loudFrom = e.pos - int64(e.window)
			}
			if e.at(e.pos-e.loudFrom) >= Onset {
				e.speaking, e.lastLoud = true, e.pos
				out = append(out, Heard{SpeechStarted, e.at(e.loudFrom)})
			}
		case loud:
			e.lastLoud = e.pos
		case e.speaking:
			if e.at(e.pos-e.lastLoud) >= e.silence {
				e.speaking, e.loudFrom = false, -1
				out = append(out, Heard{SpeechStopped, e.at(e.pos)})
			}
		default:
			e.loudFrom = -1
		}
	}
	return out
}

// Speaking reports whether the Ear is inside an utterance.
func (e *Ear) Speaking() bool { return e.speaking }

// Position is how much audio the Ear has consumed.
func (e *Ear) Position() time.Duration { return e.at(e.pos) }

func (e *Ear) at(samples int64) time.Duration {
	return time.Duration(samples) * time.Second / time.Duration(e.rate)
}

// ToolTrigger makes the model call a tool when the caller's transcript
// contains Trigger (case-insensitive).
type ToolTrigger struct {
	Trigger   string
	Name      string
	Arguments string // JSON; empty is {}
}

// Script is what the fake model knows. The zero Script answers every
// utterance "hello" with "You said: hello."
type Script struct {
	// Transcripts are what the caller said, one per utterance in turn; the
	// last one repeats.
	Transcripts []string
	// Replies answer transcripts: the reply to a transcript containing a
	// key (case-insensitive) is its value. Others get "You said: <t>."
	Replies map[string]string
	// Tools are calls the model makes instead of answering.
	Tools []ToolTrigger
	// Greeting answers a response asked for without instructions and
	// without a new utterance (after a context injection, an idle prompt);
	// empty is "How can I help?".
	Greeting string
}

// Transcript is what the caller said in their n-th utterance (from 0).
func (s *Script) Transcript(n int) string {
	if len(s.Transcripts) == 0 {
		return DefaultTranscript
	}
	return s.Transcripts[min(n, len(s.Transcripts)-1)]
}

// Answer is how the model responds.
type Answer struct {
	// Text is spoken (empty when Call is set).
	Text string
	// Call is the tool the model calls, nil when it speaks.
	Call *ToolTrigger
}

// Answer is the model's response to the caller's transcript.
func (s *Script) Answer(transcript string) Answer {
	low := strings.ToLower(transcript)
	for i := range s.Tools {
		if t := &s.Tools[i]; t.Trigger != "" && strings.Contains(low, strings.ToLower(t.Trigger)) {
			return Answer{Call: t}
		}
	}
	for k, v := range s.Replies {
		if strings.Contains(low, strings.ToLower(k)) {
			return Answer{Text: v}
		}
	}
	return Answer{Text: "You said: " + transcript + "."}
}

// Instructed is the model's response to a request with instructions: the
// text of a realtime.Verbatim instruction, else the greeting.
func (s *Script) Instructed(instructions string) string {
	if t, ok := realtime.ParseVerbatim(instructions); ok {
		return t
	}
	return s.greeting()
}

// AfterTool is what the model says once a tool answered.
func (s *Script) AfterTool(name, output string) string {
	return "The " + name + " tool says " + output + "."
}

func (s *Script) greeting() string {
	if s.Greeting != "" {
		return s.Greeting
	}
	return "How can I help?"
}

// Synth is the fake's voice, the tone every speech fake speaks with
// (fakespeech.Tone at 440 Hz: 60 ms per character, at least 200 ms).
func Synth(text string, rate int) []int16 { return fakespeech.Tone(text, rate, 440) }

// SynthDuration is how long Synth speaks text.
func SynthDuration(text string) time.Duration {
	return max(time.Duration(utf8.RuneCountInString(text))*60*time.Millisecond, 200*time.Millisecond)
}
