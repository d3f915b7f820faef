package realtimefake

import (
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/realtime"
)

func TestEarHearsUtterances(t *testing.T) {
	const rate = 16000
	e := NewEar(rate, 0, 300*time.Millisecond)
	silence := make([]int16, rate/2)
	var got []Heard
	got = append(got, e.Hear(silence)...)
	got = append(got, e.Hear(Synth("one two three", rate))...) // 780 ms of tone
	got = append(got, e.Hear(silence)...)
	got = append(got, e.Hear(make([]int16, 30))...)
	if len(got) != 2 || got[0].Kind != SpeechStarted || got[1].Kind != SpeechStopped {
		t.Fatalf("heard %+v, want a start and a stop", got)
	}
	// The tone fades in over 20 ms, so the first loud window is the second.
	if d := got[0].At - 520*time.Millisecond; d < -20*time.Millisecond || d > 20*time.Millisecond {
		t.Errorf("speech started at %v, want about 520ms", got[0].At)
	}
	if d := got[1].At - (500*time.Millisecond + 780*time.Millisecond + 300*time.Millisecond); d < -40*time.Millisecond || d > 40*time.Millisecond {
		t.Errorf("speech stopped at %v, want about 1.58s", got[1].At)
	}
	if e.Speaking() {
		t.Error("still speaking after the stop")
	}
}

func TestEarIgnoresClicks(t *testing.T) {
	e := NewEar(8000, 0, 0)
	click := Synth("x", 8000)[:320] // 40 ms: shorter than the onset
	in := append(append(make([]int16, 800), click...), make([]int16, 8000)...)
	if got := e.Hear(in); len(got) != 0 {
		t.Fatalf("a 40 ms click was heard as %+v", got)
	}
}

func TestScript(t *testing.T) {
	s := Script{
		Transcripts: []string{"book me a table", "thanks"},
		Replies:     map[string]string{"thanks": "Goodbye."},
		Tools:       []ToolTrigger{{Trigger: "BOOK", Name: "book", Arguments: `{"n":2}`}},
	}
	if got := s.Transcript(5); got != "thanks" {
		t.Errorf("Transcript(5) = %q, want the last one repeated", got)
	}
	if a := s.Answer(s.Transcript(0)); a.Call == nil || a.Call.Name != "book" {
		t.Errorf("Answer(book...) = %+v, want the book tool", a)
	}
	if a := s.Answer("thanks a lot"); a.Text != "Goodbye." {
		t.Errorf("Answer(thanks) = %+v", a)
	}
	if a := s.Answer("what"); a.Text != "You said: what." {
		t.Errorf("Answer(what) = %+v", a)
	}
	if got := s.Instructed(realtime.Verbatim(`He said "hi"`)); got != `He said "hi"` {
		t.Errorf("Instructed(Verbatim) = %q", got)
	}
	if got := s.Instructed("Ask whether the caller is still there."); got != "How can I help?" {
		t.Errorf("Instructed(other) = %q", got)
	}
	if d := SynthDuration("abc"); d != 200*time.Millisecond {
		t.Errorf("SynthDuration(abc) = %v", d)
	}
	if n := len(Synth("abcdefghij", 8000)); n != 4800 {
		t.Errorf("Synth of 10 characters has %d samples, want 4800", n)
	}
}
