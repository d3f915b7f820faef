package pipeline

import (
	"context"
	"math"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/stt"
)

// This file tests voicemail detection (voicemail.go) in a synctest bubble:
// the far end's audio is synthetic (a harmonic buzz for speech, a 1 kHz
// beep), its transcripts come from an in-memory STT at fixed offsets.

// farAudio renders the far end: stretches of "talk", "beep" or "quiet".
func farAudio(parts ...any) [][]int16 {
	var out [][]int16
	var ph float64
	for i := 0; i < len(parts); i += 2 {
		kind, d := parts[i].(string), parts[i+1].(time.Duration)
		for range int(d / (20 * time.Millisecond)) {
			f := make([]int16, FrameSamples)
			for j := range f {
				switch kind {
				case "talk":
					var s float64
					for h := 1; h <= 10; h++ {
						s += math.Sin(float64(h)*ph) / float64(h)
					}
					f[j] = int16(2500 * s)
					ph += 2 * math.Pi * 140 / SampleRate
				case "beep":
					f[j] = int16(8000 * math.Sin(ph))
					ph += 2 * math.Pi * 1000 / SampleRate
				}
			}
			out = append(out, f)
		}
	}
	return out
}

type vmRun struct {
	reason call.EndReason
	audio  []segment // our reply audio, offsets from the start
	ended  time.Duration
	msgs   []Message
	llm    *memLLM
}

// runVoicemail plays far to the conversation frame by frame (quiet after
// it) and sends each transcript at its offset, until the conversation ends
// or limit passes.
func runVoicemail(t *testing.T, cfg Config, far [][]int16, words map[time.Duration]stt.Event, limit time.Duration) vmRun {
	t.Helper()
	cfg.Turn = DefaultTurnTaking()
	model := &memLLM{}
	sttP := &memSTT{events: make(chan stt.Event, 8)}
	rec := &memRecorder{}
	conv := New(cfg, Deps{Providers: Providers{STT: sttP, LLM: model, TTS: memTTS{}}, Recorder: rec})
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	var (
		wg   sync.WaitGroup
		segs []segment
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		quiet := make([]int16, FrameSamples)
		out := make([]int16, FrameSamples)
		playing := false
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case now := <-tk.C:
				off := now.Sub(t0)
				for at, ev := range words {
					if off >= at && off < at+20*time.Millisecond {
						sttP.events <- ev
					}
				}
				in := quiet
				if i < len(far) {
					in = far[i]
				}
				conv.WriteFrame(in)
				a := conv.ReadFrame(out)
				switch {
				case a && !playing:
					segs = append(segs, segment{start: off, end: off + 20*time.Millisecond})
				case a:
					segs[len(segs)-1].end = off + 20*time.Millisecond
				}
				playing = a
			}
		}
	}()
	end, err := conv.Run(ctx)
	ended := time.Since(t0)
	close(done)
	wg.Wait()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return vmRun{reason: end.Reason, audio: segs, ended: ended, msgs: rec.messages(), llm: model}
}

const ms = time.Millisecond

func TestVoicemailMachineLeavesMessageAfterBeep(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{
			FirstMessage: "Hi, this is Anna from Acme.",
			Voicemail:    &Voicemail{Message: "Please call Acme back."},
		}
		far := farAudio("quiet", 200*ms, "talk", 1400*ms, "quiet", 300*ms, "talk", 1500*ms, "quiet", 400*ms, "beep", 400*ms)
		beepEnd := 4200 * ms
		words := map[time.Duration]stt.Event{
			1200 * ms: {Type: stt.Interim, Text: "Hi, you've reached Jan"},
			3600 * ms: {Type: stt.Final, Text: "Hi, you've reached Jan, please leave a message."},
		}
		r := runVoicemail(t, cfg, far, words, 30*time.Second)
		t.Logf("audio %v, ended at %v", r.audio, r.ended)
		if r.reason != call.EndVoicemail {
			t.Fatalf("end reason %q, want voicemail", r.reason)
		}
		if len(r.audio) != 1 {
			t.Fatalf("want one stretch of audio (the message), got %v", r.audio)
		}
		// The beep ends at 4.2 s; the detector sees it one frame later.
		if got := r.audio[0].start; got < beepEnd || got > beepEnd+100*ms {
			t.Errorf("message started at %v, want just after the beep (%v)", got, beepEnd)
		}
		if got, want := r.audio[0].end-r.audio[0].start, time.Duration(len(cfg.Voicemail.Message))*20*ms; got != want {
			t.Errorf("message played %v, want %v (in full)", got, want)
		}
		if got := assistantLines(r.msgs); !slices.Equal(got, []string{cfg.Voicemail.Message}) {
			t.Errorf("assistant said %q, want only the voicemail message", got)
		}
		if n := len(r.llm.requests()); n != 0 {
			t.Errorf("the model was called %d times", n)
		}
		if !slices.ContainsFunc(r.msgs, func(m Message) bool { return m.Role == llm.User && m.Content == words[3600*ms].Text }) {
			t.Errorf("the greeting is not in the transcript: %+v", r.msgs)
		}
	})
}

func TestVoicemailMachineWithoutMessageHangsUpSilently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{FirstMessage: "Hi.", Voicemail: &Voicemail{}}
		// No transcript: the greeting's length decides, the beep ends it.
		far := farAudio("talk", 4500*ms, "quiet", 300*ms, "beep", 500*ms)
		r := runVoicemail(t, cfg, far, nil, 30*time.Second)
		if r.reason != call.EndVoicemail {
			t.Fatalf("end reason %q, want voicemail", r.reason)
		}
		if len(r.audio) != 0 {
			t.Errorf("audio played on a silent hang-up: %v", r.audio)
		}
		if r.ended < 5300*ms || r.ended > 5400*ms {
			t.Errorf("ended at %v, want just after the beep (5.3 s)", r.ended)
		}
	})
}

func TestVoicemailPersonGetsFirstMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{FirstMessage: "Hi, this is Anna.", Voicemail: &Voicemail{Message: "Call us."}}
		far := farAudio("quiet", 300*ms, "talk", 500*ms)
		words := map[time.Duration]stt.Event{1000 * ms: {Type: stt.Final, Text: "Hello?", SpeechFinal: true}}
		r := runVoicemail(t, cfg, far, words, 6*time.Second)
		t.Logf("audio %v", r.audio)
		if r.reason != "" {
			t.Fatalf("the conversation ended by itself: %q", r.reason)
		}
		if len(r.audio) != 1 {
			t.Fatalf("want the first message, got %v", r.audio)
		}
		// Held back while "hello?" is heard and classified; spoken within
		// a second of its end (0.8 s).
		if got := r.audio[0].start; got < 1000*ms || got > 1800*ms {
			t.Errorf("first message at %v, want within (1 s, 1.8 s]", got)
		}
		var roles []string
		for _, m := range r.msgs {
			roles = append(roles, string(m.Role)+":"+m.Content)
		}
		if want := []string{"user:Hello?", "assistant:Hi, this is Anna."}; !slices.Equal(roles, want) {
			t.Errorf("transcript %q, want %q", roles, want)
		}
		if n := len(r.llm.requests()); n != 0 {
			t.Errorf("the model answered \"hello?\" instead of the first message (%d requests)", n)
		}
	})
}

func TestVoicemailQuietLineTimesOutToPerson(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{FirstMessage: "Hi.", Voicemail: &Voicemail{Message: "Call us."}}
		r := runVoicemail(t, cfg, nil, nil, 6*time.Second)
		if len(r.audio) != 1 {
			t.Fatalf("want the first message, got %v", r.audio)
		}
		if got := r.audio[0].start; got < 3000*ms || got > 3100*ms {
			t.Errorf("first message at %v, want at the 3 s bound", got)
		}
	})
}

func TestVoicemailOffSpeaksAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runVoicemail(t, Config{FirstMessage: "Hi."}, nil, nil, 2*time.Second)
		if len(r.audio) != 1 || r.audio[0].start > 100*ms {
			t.Fatalf("first message %v, want at once", r.audio)
		}
	})
}
