package pipeline

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/silence"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/tts"
)

// This file tests silence handling (silence.go) inside a synctest bubble
// with in-memory providers, so its timings are exact and never flake.

// memSTT hands out streams that report only what the test sends on events.
type memSTT struct{ events chan stt.Event }

func (p *memSTT) Open(ctx context.Context, _ stt.Config) (stt.Stream, error) {
	return &memSTTStream{events: p.events, done: make(chan struct{})}, nil
}

type memSTTStream struct {
	events chan stt.Event
	done   chan struct{}
	once   sync.Once
}

func (s *memSTTStream) Write([]int16) error { return nil }
func (s *memSTTStream) Close() error        { s.once.Do(func() { close(s.done) }); return nil }
func (s *memSTTStream) Recv() (stt.Event, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.done:
		return stt.Event{}, io.EOF
	}
}

// memLLM answers each request with the next of its replies and keeps the
// requests.
type memLLM struct {
	mu      sync.Mutex
	replies []string
	reqs    [][]llm.Message
}

func (p *memLLM) Stream(_ context.Context, req llm.Request) (llm.Stream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, slices.Clone(req.Messages))
	text := "Okay."
	if len(p.replies) > 0 {
		text, p.replies = p.replies[0], p.replies[1:]
	}
	return &memLLMStream{deltas: []llm.Delta{{Text: text}, {FinishReason: "stop"}}}, nil
}

func (p *memLLM) requests() [][]llm.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

type memLLMStream struct{ deltas []llm.Delta }

func (s *memLLMStream) Recv() (llm.Delta, error) {
	if len(s.deltas) == 0 {
		return llm.Delta{}, io.EOF
	}
	d := s.deltas[0]
	s.deltas = s.deltas[1:]
	return d, nil
}
func (s *memLLMStream) Close() error { return nil }

// memTTS speaks one 20 ms frame of a constant tone per character, at once.
type memTTS struct{}

func (memTTS) Open(context.Context, tts.Config) (tts.Stream, error) {
	return &memTTSStream{chunks: make(chan tts.Chunk, 64), done: make(chan struct{})}, nil
}

type memTTSStream struct {
	chunks    chan tts.Chunk
	done      chan struct{}
	flushOnce sync.Once
	closeOnce sync.Once
}

func (s *memTTSStream) Send(text string) error {
	pcm := make([]int16, FrameSamples*len([]rune(text)))
	for i := range pcm {
		pcm[i] = 1000
	}
	select {
	case s.chunks <- tts.Chunk{PCM: pcm}:
		return nil
	case <-s.done:
		return errors.New("closed")
	}
}
func (s *memTTSStream) Flush() error { s.flushOnce.Do(func() { close(s.chunks) }); return nil }
func (s *memTTSStream) Close() error { s.closeOnce.Do(func() { close(s.done) }); return nil }
func (s *memTTSStream) Recv() (tts.Chunk, error) {
	select {
	case ch, ok := <-s.chunks:
		if !ok {
			return tts.Chunk{}, io.EOF
		}
		return ch, nil
	case <-s.done:
		return tts.Chunk{}, errors.New("closed")
	}
}

// segment is one stretch of reply audio, as offsets from the call's start.
type segment struct{ start, end time.Duration }

// silenceRun runs a conversation in the bubble with a 20 ms frame clock
// until it ends (or limit passes); at each offset in keys it presses that
// key, at each offset in words STT reports an interim transcript.
type silenceRun struct {
	reason   call.EndReason
	segments []segment
	ended    time.Duration
	msgs     []Message
	llm      *memLLM
}

func runSilence(t *testing.T, cfg Config, replies []string, keys map[time.Duration]rune, words map[time.Duration]string, limit time.Duration) silenceRun {
	t.Helper()
	cfg.Turn = DefaultTurnTaking()
	model := &memLLM{replies: replies}
	sttP := &memSTT{events: make(chan stt.Event, 8)}
	rec := &memRecorder{}
	conv := New(cfg, Deps{Providers: Providers{STT: sttP, LLM: model, TTS: memTTS{}}, Recorder: rec})
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(t.Context(), limit)
	defer cancel()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		segs []segment
	)
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		in := make([]int16, FrameSamples)
		out := make([]int16, FrameSamples)
		playing := false
		for {
			select {
			case <-done:
				return
			case now := <-tk.C:
				off := now.Sub(t0)
				for at, k := range keys {
					if off >= at && off < at+20*time.Millisecond {
						conv.DTMF(k)
					}
				}
				for at, w := range words {
					if off >= at && off < at+20*time.Millisecond {
						sttP.events <- stt.Event{Type: stt.Interim, Text: w}
					}
				}
				conv.WriteFrame(in)
				a := conv.ReadFrame(out)
				mu.Lock()
				switch {
				case a && !playing:
					segs = append(segs, segment{start: off, end: off + 20*time.Millisecond})
				case a:
					segs[len(segs)-1].end = off + 20*time.Millisecond
				}
				mu.Unlock()
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
	return silenceRun{reason: end.Reason, segments: segs, ended: ended, msgs: rec.messages(), llm: model}
}

// near reports whether got is within a frame or two of want (the frame
// clock quantises playout to 20 ms).
func near(got, want time.Duration) bool {
	d := got - want
	return d >= 0 && d <= 40*time.Millisecond
}

func assistantLines(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		if m.Role == llm.Assistant {
			out = append(out, m.Content)
		}
	}
	return out
}

func TestSilenceChecksThenHangsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{
			FirstMessage: "Hi.",
			Silence: &silence.Config{
				Messages:     []string{"Are you still there?", "I'm still here."},
				FinalMessage: "Goodbye.",
				FirstCheck:   3 * time.Second, Interval: 12 * time.Second, MaxAttempts: 3,
			},
		}
		r := runSilence(t, cfg, nil, nil, nil, 2*time.Minute)
		if r.reason != call.EndSilenceTimedOut {
			t.Fatalf("end reason %q, want %q", r.reason, call.EndSilenceTimedOut)
		}
		t.Logf("segments %v, ended at %v", r.segments, r.ended)
		if len(r.segments) != 4 {
			t.Fatalf("want 4 stretches of audio (first message, 2 checks, goodbye), got %v", r.segments)
		}
		gaps := []time.Duration{3 * time.Second, 12 * time.Second, 12 * time.Second}
		for i, want := range gaps {
			if got := r.segments[i+1].start - r.segments[i].end; !near(got, want) {
				t.Errorf("silence before attempt %d: %v, want %v", i+1, got, want)
			}
		}
		// Each prompt plays in full: one frame per character.
		for i, text := range []string{"Hi.", "Are you still there?", "I'm still here.", "Goodbye."} {
			if got, want := r.segments[i].end-r.segments[i].start, time.Duration(len(text))*20*time.Millisecond; got != want {
				t.Errorf("%q played %v, want %v", text, got, want)
			}
		}
		if last := r.segments[3].end; r.ended < last || r.ended > last+60*time.Millisecond {
			t.Errorf("call ended at %v, goodbye finished at %v", r.ended, last)
		}
		want := []string{"Hi.", "Are you still there?", "I'm still here.", "Goodbye."}
		if got := assistantLines(r.msgs); !slices.Equal(got, want) {
			t.Errorf("transcript %q, want %q", got, want)
		}
		if n := len(r.llm.requests()); n != 0 {
			t.Errorf("configured messages called the model %d times", n)
		}
	})
}

func TestSilenceModelWritesPrompts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{
			System:  []llm.Message{{Role: llm.System, Content: "You are a helpful receptionist."}},
			Silence: &silence.Config{FirstCheck: 2 * time.Second, Interval: 5 * time.Second, MaxAttempts: 2},
		}
		r := runSilence(t, cfg, []string{"Hello, are you there?", "Bye for now."}, nil, nil, time.Minute)
		if r.reason != call.EndSilenceTimedOut {
			t.Fatalf("end reason %q", r.reason)
		}
		t.Logf("segments %v", r.segments)
		if len(r.segments) != 2 || !near(r.segments[0].start, 2*time.Second) || !near(r.segments[1].start-r.segments[0].end, 5*time.Second) {
			t.Fatalf("segments %v: want a check at 2 s and a goodbye 5 s after it", r.segments)
		}
		reqs := r.llm.requests()
		if len(reqs) != 2 {
			t.Fatalf("%d model requests, want 2", len(reqs))
		}
		for i, want := range []string{SilenceCheckPrompt, SilenceFinalPrompt} {
			last := reqs[i][len(reqs[i])-1]
			if last.Role != llm.System || last.Content != want {
				t.Errorf("request %d ends with %+v, want the instruction %q", i, last, want)
			}
			if reqs[i][0].Content != "You are a helpful receptionist." {
				t.Errorf("request %d lost the conversation's context: %+v", i, reqs[i][0])
			}
		}
		// The first instruction is not kept; the check it produced is.
		if got := reqs[1][1:]; len(got) != 2 || got[0].Role != llm.Assistant || got[0].Content != "Hello, are you there?" {
			t.Errorf("second request's history %+v", got)
		}
		if got, want := assistantLines(r.msgs), []string{"Hello, are you there?", "Bye for now."}; !slices.Equal(got, want) {
			t.Errorf("transcript %q, want %q", got, want)
		}
	})
}

func TestSilenceResetByCallerWordsAndKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := Config{
			DTMFDigitTimeout: 4 * time.Second, // longer than the first check
			Silence: &silence.Config{
				Messages: []string{"Still there?"}, FinalMessage: "Bye.",
				FirstCheck: 3 * time.Second, Interval: 4 * time.Second, MaxAttempts: 2,
			},
		}
		// Words at 2 s: the first check moves to 5 s. After it (12
		// frames), a key at 6 s resets the count again; the entry pending
		// keeps the line busy until its turn is committed 4 s later, the
		// model answers "Okay." (5 frames), and the clock starts over with
		// a first check, not the goodbye.
		words := map[time.Duration]string{2 * time.Second: "hmm"}
		keys := map[time.Duration]rune{6 * time.Second: '5'}
		r := runSilence(t, cfg, []string{"Okay."}, keys, words, time.Minute)
		t.Logf("segments %v", r.segments)
		if r.reason != call.EndSilenceTimedOut {
			t.Fatalf("end reason %q", r.reason)
		}
		want := []string{"Still there?", "Okay.", "Still there?", "Bye."}
		if got := assistantLines(r.msgs); !slices.Equal(got, want) {
			t.Fatalf("transcript %q, want %q", got, want)
		}
		if !near(r.segments[0].start, 5*time.Second) {
			t.Errorf("first check at %v, want 5 s (3 s after the words at 2 s)", r.segments[0].start)
		}
		if got := r.segments[2].start - r.segments[1].end; !near(got, 3*time.Second) {
			t.Errorf("check after the key's answer came %v after it, want the first check's 3 s", got)
		}
		if got := r.segments[3].start - r.segments[2].end; !near(got, 4*time.Second) {
			t.Errorf("goodbye %v after the check, want 4 s", got)
		}
	})
}

func TestSilenceOffByDefault(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := runSilence(t, Config{}, nil, nil, nil, 5*time.Minute)
		if r.reason != "" || len(r.segments) != 0 {
			t.Fatalf("without silence config: reason %q, audio %v", r.reason, r.segments)
		}
	})
}
