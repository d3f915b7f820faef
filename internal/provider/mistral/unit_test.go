package mistral

import (
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

func TestRealtimeURL(t *testing.T) {
	for _, tc := range []struct {
		base string
		sc   stt.Config
		want string
	}{
		{"", stt.Config{}, "wss://api.mistral.ai/v1/audio/transcriptions/realtime?model=voxtral-mini-transcribe-realtime-2602"},
		{"https://api.mistral.ai/v1/", stt.Config{Language: "fr"}, "wss://api.mistral.ai/v1/audio/transcriptions/realtime?language=fr&model=voxtral-mini-transcribe-realtime-2602"},
		{"http://127.0.0.1:8080/proxy/v1", stt.Config{Model: "voxtral-mini-transcribe-realtime-3", Language: "multi"}, "ws://127.0.0.1:8080/proxy/v1/audio/transcriptions/realtime?model=voxtral-mini-transcribe-realtime-3"},
		{"wss://eu.example/v1", stt.Config{Model: "voxtral-mini-latest", Language: " de "}, "wss://eu.example/v1/audio/transcriptions/realtime?language=de&model=voxtral-mini-transcribe-realtime-2602"},
	} {
		got, err := realtimeURL(tc.base, tc.sc)
		if err != nil || got != tc.want {
			t.Errorf("realtimeURL(%q, %+v) = %q, %v; want %q", tc.base, tc.sc, got, err, tc.want)
		}
	}
	for _, base := range []string{"ftp://x/v1", "https:///v1", "://"} {
		if _, err := realtimeURL(base, stt.Config{}); err == nil {
			t.Errorf("realtimeURL(%q) succeeded, want an error", base)
		}
	}
}

func TestNewEncoder(t *testing.T) {
	for _, tc := range []struct {
		rate     int
		encoding string
		outRate  int
		bytes    int // encoded size of 20 ms after warm-up
	}{
		{8000, "pcm_mulaw", 8000, 160},
		{16000, "pcm_s16le", 16000, 640},
		{48000, "pcm_s16le", 16000, 640},
	} {
		e, err := newEncoder(tc.rate)
		if err != nil {
			t.Fatalf("newEncoder(%d): %v", tc.rate, err)
		}
		if f := e.format(); f.Encoding != tc.encoding || f.SampleRate != tc.outRate {
			t.Errorf("rate %d: format %+v, want %s at %d", tc.rate, f, tc.encoding, tc.outRate)
		}
		frame := make([]int16, tc.rate/50)
		e.encode(frame) // fills the resampler's delay line
		if n := len(e.encode(frame)); n != tc.bytes {
			t.Errorf("rate %d: 20 ms encoded to %d bytes, want %d", tc.rate, n, tc.bytes)
		}
	}
}

func TestVADConfig(t *testing.T) {
	for _, tc := range []struct {
		endpointing time.Duration
		frames      int
	}{{0, 20}, {300 * time.Millisecond, 15}, {10 * time.Millisecond, 1}, {time.Second, 50}} {
		if got := vadConfig(tc.endpointing).EndFrames; got != tc.frames {
			t.Errorf("endpointing %s: %d end frames, want %d", tc.endpointing, got, tc.frames)
		}
	}
}

func TestParseServerMsg(t *testing.T) {
	m, err := parseServerMsg([]byte(`{"type":"transcription.text.delta","text":" hi"}`))
	if err != nil || m.Type != typeTextDelta || m.Text != " hi" {
		t.Errorf("delta: %+v, %v", m, err)
	}
	for _, bad := range []string{`{"type":`, `[]`, `{"text":"x"}`, `"error"`} {
		if _, err := parseServerMsg([]byte(bad)); err == nil {
			t.Errorf("parseServerMsg(%s) succeeded, want an error", bad)
		}
	}
	for _, tc := range []struct{ raw, want string }{
		{`{"message":"bad audio","code":1}`, "bad audio"},
		{`{"message":{"detail":"nested"}}`, "nested"},
		{`"plain"`, "plain"},
		{`{"code":7}`, `{"code":7}`},
	} {
		if got := errorText(json.RawMessage(tc.raw)); got != tc.want {
			t.Errorf("errorText(%s) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}

// TestOnDone: which text a transcription.done turns into a Final, and
// when it ends the session.
func TestOnDone(t *testing.T) {
	for _, tc := range []struct {
		name      string
		utterance string // deltas since the last Final
		finalized string
		timedOut  bool
		awaiting  int
		endSent   bool
		done      string
		want      string // "" = no Final
		over      bool
	}{
		{name: "deltas win", utterance: " hello there", done: "hello there.", awaiting: 1, want: "hello there"},
		{name: "done text without deltas", done: "hello", awaiting: 1, want: "hello"},
		{name: "cumulative done", finalized: "first part", done: "first part second part", awaiting: 1, want: "second part"},
		{name: "already reported by timeout", timedOut: true, done: "hello", want: ""},
		{name: "end answered", endSent: true, done: "", want: "", over: true},
		{name: "flush answered after end", endSent: true, awaiting: 1, utterance: "late", want: "late"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Stream{log: slog.New(slog.DiscardHandler),
				utterance: tc.utterance, finalized: tc.finalized, timedOut: tc.timedOut, awaiting: tc.awaiting, endSent: tc.endSent}
			over := s.onDone(tc.done)
			events := drain(&s.events)
			var got string
			if len(events) == 1 {
				if ev := events[0]; ev.Type == stt.Final && ev.SpeechFinal {
					got = ev.Text
				}
			}
			if got != tc.want || over != tc.over || len(events) > 1 {
				t.Errorf("final %q over %v (events %v), want %q over %v", got, over, events, tc.want, tc.over)
			}
			if tc.endSent && tc.awaiting > 0 && !s.lingering {
				t.Error("a flush's done after input_audio.end should leave the stream lingering for the end's")
			}
		})
	}
}

// drain finishes q and returns the events queued in it.
func drain(q *stt.Queue) []stt.Event {
	q.Finish(io.EOF)
	var evs []stt.Event
	for {
		ev, err := q.Recv()
		if err != nil {
			return evs
		}
		evs = append(evs, ev)
	}
}
