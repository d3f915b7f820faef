package pipeline

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/tts"
)

// Scripted-caller tests of turn-taking (docs/turn-taking.md). Each runs in
// a synctest bubble: the clock is fake, the providers are in-memory fakes,
// and one driver goroutine stands in for the media session, writing the
// caller's frame and reading the reply's frame every 20 ms. Between the two
// it waits for the conversation to settle (synctest.Wait), so a decision
// taken on a caller frame is visible to the reply frame of the same tick.

const frame = 20 * time.Millisecond

// samplesPerChar makes the fake TTS speak 15 characters a second.
const samplesPerChar = SampleRate / 15

// longReply takes about 9 s to say.
const longReply = "Our opening hours are from nine to five on weekdays. On Saturdays we open at ten. We are closed on Sundays and on public holidays."

// scriptedSTT is an stt.Provider whose one stream emits what the driver
// pushes.
type scriptedSTT struct{ events chan stt.Event }

func (p *scriptedSTT) Open(context.Context, stt.Config) (stt.Stream, error) {
	return &scriptedStream{events: p.events, done: make(chan struct{})}, nil
}

type scriptedStream struct {
	events chan stt.Event
	done   chan struct{}
	once   sync.Once
}

func (s *scriptedStream) Write([]int16) error { return nil }
func (s *scriptedStream) Close() error        { s.once.Do(func() { close(s.done) }); return nil }
func (s *scriptedStream) Recv() (stt.Event, error) {
	select {
	case ev := <-s.events:
		return ev, nil
	case <-s.done:
		return stt.Event{}, io.EOF
	}
}

// cannedLLM answers each request with the next text, then "Okay.".
type cannedLLM struct {
	mu      sync.Mutex
	replies []string
	asked   int
}

func (p *cannedLLM) Stream(context.Context, llm.Request) (llm.Stream, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked++
	text := "Okay."
	if len(p.replies) > 0 {
		text, p.replies = p.replies[0], p.replies[1:]
	}
	return &cannedStream{text: text}, nil
}

func (p *cannedLLM) requests() int { p.mu.Lock(); defer p.mu.Unlock(); return p.asked }

type cannedStream struct {
	text string
	sent bool
}

func (s *cannedStream) Recv() (llm.Delta, error) {
	if s.sent {
		return llm.Delta{}, io.EOF
	}
	s.sent = true
	return llm.Delta{Text: s.text}, nil
}
func (s *cannedStream) Close() error { return nil }

// toneTTS speaks every text at once as samplesPerChar samples a character
// (a quiet tone, so that the played frames are not silent).
type toneTTS struct {
	mu     sync.Mutex
	queued []int // samples produced per stream, in order
}

func (p *toneTTS) Open(context.Context, tts.Config) (tts.Stream, error) {
	p.mu.Lock()
	p.queued = append(p.queued, 0)
	n := len(p.queued) - 1
	p.mu.Unlock()
	return &toneStream{p: p, n: n, audio: make(chan []int16, 64), done: make(chan struct{})}, nil
}

// samples is how much audio stream n produced.
func (p *toneTTS) samples(n int) int { p.mu.Lock(); defer p.mu.Unlock(); return p.queued[n] }

type toneStream struct {
	p     *toneTTS
	n     int
	audio chan []int16
	done  chan struct{}
	once  sync.Once
}

func (s *toneStream) Send(text string) error {
	pcm := audio.Tone(440, SampleRate, len(text)*samplesPerChar, 1000)
	s.p.mu.Lock()
	s.p.queued[s.n] += len(pcm)
	s.p.mu.Unlock()
	s.audio <- pcm
	return nil
}
func (s *toneStream) Flush() error { close(s.audio); return nil }
func (s *toneStream) Close() error { s.once.Do(func() { close(s.done) }); return nil }
func (s *toneStream) Recv() (tts.Chunk, error) {
	select {
	case pcm, ok := <-s.audio:
		if !ok {
			return tts.Chunk{}, io.EOF
		}
		return tts.Chunk{PCM: pcm}, nil
	case <-s.done:
		return tts.Chunk{}, errors.New("tts stream closed")
	}
}

// cue is something the scripted caller does: speak (voiced frames) from
// at for dur, or have the STT emit ev at at.
type cue struct {
	at  time.Duration
	dur time.Duration // voiced frames from at to at+dur
	ev  *stt.Event
}

func voice(at, dur time.Duration) cue         { return cue{at: at, dur: dur} }
func hear(at time.Duration, ev stt.Event) cue { return cue{at: at, ev: &ev} }
func interim(text string) stt.Event           { return stt.Event{Type: stt.Interim, Text: text} }
func final(text string) stt.Event             { return stt.Event{Type: stt.Final, Text: text, SpeechFinal: true} }

// scene is a scripted call. ask runs from the start of the call; over runs
// from the first frame of the assistant's first reply (talking over it).
type scene struct {
	turn  TurnTaking
	ask   []cue
	over  []cue
	reply []string // the model's replies in order
	limit time.Duration
}

// played is one 20 ms tick of the driver.
type played struct {
	at     time.Time
	voiced bool // the caller's frame
	audio  bool // the conversation sent a reply frame
}

type take struct {
	start   time.Time
	replyAt time.Time // first frame of the first reply
	ticks   []played
	rec     *memRecorder
	llm     *cannedLLM
	tts     *toneTTS
}

// act runs the scene inside the current synctest bubble.
func (s scene) act(t *testing.T) *take {
	t.Helper()
	events := make(chan stt.Event, 64)
	tk := &take{rec: &memRecorder{}, llm: &cannedLLM{replies: s.reply}, tts: &toneTTS{}}
	cfg := Config{Turn: s.turn}
	cfg.STT.SampleRate, cfg.TTS.SampleRate = SampleRate, SampleRate
	conv := New(cfg, Deps{Providers: Providers{STT: &scriptedSTT{events}, LLM: tk.llm, TTS: tk.tts}, Recorder: tk.rec})
	ctx, cancel := context.WithTimeout(t.Context(), s.limit)
	defer cancel()
	tk.start = time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tone := audio.Tone(300, SampleRate, FrameSamples, 8000)
		quiet := make([]int16, FrameSamples)
		out := make([]int16, FrameSamples)
		pending := [2][]cue{s.ask, s.over}
		ticker := time.NewTicker(frame)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-ticker.C:
				voiced := false
				for phase, base := range []time.Time{tk.start, tk.replyAt} {
					if base.IsZero() {
						continue
					}
					el := now.Sub(base)
					var left []cue
					for _, c := range pending[phase] {
						switch {
						case c.ev != nil && el >= c.at:
							events <- *c.ev
						case c.ev != nil:
							left = append(left, c)
						case el >= c.at && el < c.at+c.dur:
							voiced = true
							left = append(left, c)
						case el < c.at+c.dur:
							left = append(left, c)
						}
					}
					pending[phase] = left
				}
				if voiced {
					conv.WriteFrame(tone)
				} else {
					conv.WriteFrame(quiet)
				}
				synctest.Wait()
				a := conv.ReadFrame(out)
				if a && tk.replyAt.IsZero() {
					tk.replyAt = now
				}
				tk.ticks = append(tk.ticks, played{at: now, voiced: voiced, audio: a})
			}
		}
	})
	if _, err := conv.Run(ctx); err != nil {
		t.Errorf("Run: %v", err)
	}
	close(done)
	wg.Wait()
	return tk
}

// at is a time of the scene as an offset from its start, for messages.
func (tk *take) at(t time.Time) time.Duration { return t.Sub(tk.start) }

// audioFrames counts the reply frames sent in [from, to).
func (tk *take) audioFrames(from, to time.Time) int {
	n := 0
	for _, p := range tk.ticks {
		if p.audio && !p.at.Before(from) && p.at.Before(to) {
			n++
		}
	}
	return n
}

// lastVoiced is the last tick the caller's frame was voiced.
func (tk *take) lastVoiced() time.Time {
	var last time.Time
	for _, p := range tk.ticks {
		if p.voiced {
			last = p.at
		}
	}
	return last
}

// gaps are the silent stretches inside the first reply: [from, to) where
// to is the tick audio came back. Silence after the last frame is no gap.
func (tk *take) gaps() [][2]time.Time {
	var out [][2]time.Time
	var from time.Time
	started := false
	for _, p := range tk.ticks {
		switch {
		case p.audio && !from.IsZero():
			out = append(out, [2]time.Time{from, p.at})
			from = time.Time{}
		case p.audio:
			started = true
		case started && from.IsZero():
			from = p.at
		}
	}
	return out
}

// stopped is the first tick after the first reply began without audio.
func (tk *take) stopped() time.Time {
	for _, p := range tk.ticks {
		if !p.audio && p.at.After(tk.replyAt) {
			return p.at
		}
	}
	return time.Time{}
}

// the opening question every reply scene starts with: 600 ms of speech and
// a final, answered at the 400 ms endpointing minimum.
var question = []cue{voice(200*time.Millisecond, 600*time.Millisecond), hear(900*time.Millisecond, final("What are your opening hours?"))}

func assistantMessages(tk *take) []Message {
	var out []Message
	for _, m := range tk.rec.messages() {
		if m.Role == llm.Assistant {
			out = append(out, m)
		}
	}
	return out
}

func userMessages(tk *take) []string {
	var out []string
	for _, m := range tk.rec.messages() {
		if m.Role == llm.User {
			out = append(out, m.Content)
		}
	}
	return out
}

// turnAt is when the caller's turn n (from 0) ended, or far in the future.
func turnAt(tk *take, n int) time.Time {
	for _, m := range tk.rec.messages() {
		if m.Role == llm.User {
			if n == 0 {
				return m.At
			}
			n--
		}
	}
	return tk.start.Add(time.Hour)
}

func turns(tk *take) []TurnMetrics {
	tk.rec.mu.Lock()
	defer tk.rec.mu.Unlock()
	return append([]TurnMetrics(nil), tk.rec.turns...)
}

// TestTurnBackchannelKeepsTalking: with interruption_min_words 2, a
// one-word "uh-huh" that is long enough to pass interruption_min_duration
// neither stops nor pauses the reply, and never becomes a caller turn.
func TestTurnBackchannelKeepsTalking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		turn := DefaultTurnTaking()
		turn.InterruptionMinWords = 2
		tk := scene{
			turn:  turn,
			ask:   question,
			over:  []cue{voice(time.Second, 500*time.Millisecond), hear(1200*time.Millisecond, interim("uh-huh")), hear(1700*time.Millisecond, final("uh-huh"))},
			reply: []string{longReply},
			limit: 15 * time.Second,
		}.act(t)
		if g := tk.gaps(); len(g) != 0 {
			t.Fatalf("the reply paused or stopped at %s (gaps %v)", tk.at(g[0][0]), g)
		}
		as := assistantMessages(tk)
		if len(as) != 1 || as[0].Content != longReply || as[0].Interrupted {
			t.Fatalf("assistant messages %+v; want the whole reply, not interrupted", as)
		}
		if u := userMessages(tk); len(u) != 1 || tk.llm.requests() != 1 {
			t.Fatalf("user turns %q, %d model requests; the backchannel must not become a turn", u, tk.llm.requests())
		}
		if ts := turns(tk); len(ts) != 1 || ts[0].Interrupted || ts[0].FalseInterruption {
			t.Fatalf("turn metrics %+v", ts)
		}
	})
}

// TestTurnRealInterruptionStopsAtOnce: speech with words that lasts
// interruption_min_duration stops playback within one frame of the
// decision, and the reply is recorded as cut off where the caller stopped
// hearing it; the caller's words become the next turn.
func TestTurnRealInterruptionStopsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		onset := 2 * time.Second
		tk := scene{
			turn: DefaultTurnTaking(),
			ask:  question,
			over: []cue{
				voice(onset, 1200*time.Millisecond),
				hear(onset+100*time.Millisecond, interim("wait")),
				hear(onset+200*time.Millisecond, interim("wait stop")),
				hear(onset+1300*time.Millisecond, final("wait stop please")),
			},
			reply: []string{longReply, "Of course."},
			limit: 12 * time.Second,
		}.act(t)
		as := assistantMessages(tk)
		if len(as) < 1 || !as[0].Interrupted {
			t.Fatalf("assistant messages %+v; want the first interrupted", as)
		}
		cut := as[0]
		// Decided once 300 ms of the caller's speech were voiced: the
		// 15th voiced frame.
		want := tk.replyAt.Add(onset + 14*frame)
		if d := cut.At.Sub(want); d < -frame || d > frame {
			t.Fatalf("interruption decided at %s, want %s ±20 ms", tk.at(cut.At), tk.at(want))
		}
		if n := tk.audioFrames(cut.At.Add(frame+time.Millisecond), turnAt(tk, 1)); n != 0 {
			t.Fatalf("%d reply frames more than one frame after the interruption at %s", n, tk.at(cut.At))
		}
		heard := tk.audioFrames(tk.replyAt, cut.At.Add(frame+time.Millisecond)) * FrameSamples
		if w := SpokenPrefix(longReply, float64(heard)/float64(tk.tts.samples(0))); cut.Content != w || w == "" || w == longReply {
			t.Fatalf("recorded %q; the caller heard %d samples: %q", cut.Content, heard, w)
		}
		if u := userMessages(tk); len(u) != 2 || u[1] != "wait stop please" {
			t.Fatalf("user turns %q", u)
		}
		if len(as) != 2 || as[1].Content != "Of course." {
			t.Fatalf("assistant messages %+v; want a fresh answer", as)
		}
		if ts := turns(tk); len(ts) < 1 || !ts[0].Interrupted || ts[0].FalseInterruption {
			t.Fatalf("turn metrics %+v; want interrupted, not a false interruption", ts)
		}
	})
}

// TestTurnNoiseResumesAfterTimeout: 400 ms of voiced noise with no words
// pauses the reply; false_interruption_timeout after the noise's last
// voiced frame the reply resumes where it paused and plays to the end.
func TestTurnNoiseResumesAfterTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		onset := 2 * time.Second
		tk := scene{
			turn:  DefaultTurnTaking(),
			ask:   question,
			over:  []cue{voice(onset, 400*time.Millisecond)},
			reply: []string{longReply},
			limit: 16 * time.Second,
		}.act(t)
		g := tk.gaps()
		if len(g) != 1 {
			t.Fatalf("gaps %v; want one pause that ends", g)
		}
		if want := tk.replyAt.Add(onset + 14*frame); g[0][0].Sub(want).Abs() > frame {
			t.Fatalf("paused at %s, want %s ±20 ms", tk.at(g[0][0]), tk.at(want))
		}
		want := tk.lastVoiced().Add(DefaultTurnTaking().FalseInterruptTimeout)
		if d := g[0][1].Sub(want); d.Abs() > frame {
			t.Fatalf("resumed at %s, want %s (last voiced frame + timeout) ±20 ms", tk.at(g[0][1]), tk.at(want))
		}
		// Nothing was skipped: every sample of the reply played.
		if n := tk.audioFrames(tk.replyAt, tk.start.Add(time.Hour)); n != (tk.tts.samples(0)+FrameSamples-1)/FrameSamples {
			t.Fatalf("%d frames played of %d samples", n, tk.tts.samples(0))
		}
		as := assistantMessages(tk)
		if len(as) != 1 || as[0].Content != longReply || as[0].Interrupted {
			t.Fatalf("assistant messages %+v", as)
		}
		if ts := turns(tk); len(ts) != 1 || ts[0].Interrupted || !ts[0].FalseInterruption {
			t.Fatalf("turn metrics %+v; want a false interruption only", ts)
		}
	})
}

// TestTurnLateWordsNoResumeWhileSpeaking is the reported bug: the caller
// talks over the reply for 3 s and, as local STT does, the words arrive
// only after they stop. The reply pauses and must stay paused while the
// caller's VAD reports speech, past false_interruption_timeout; the late
// words make it a real interruption, recorded as interrupted only and cut
// where it paused.
func TestTurnLateWordsNoResumeWhileSpeaking(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		onset := 2 * time.Second
		tk := scene{
			turn: DefaultTurnTaking(),
			ask:  question,
			over: []cue{
				voice(onset, 3*time.Second),
				hear(onset+3500*time.Millisecond, final("no I wanted to ask about Sunday")),
			},
			reply: []string{longReply, "We are closed on Sundays."},
			limit: 14 * time.Second,
		}.act(t)
		pausedAt := tk.replyAt.Add(onset + 14*frame)
		for _, p := range tk.ticks {
			if p.audio && p.at.After(pausedAt.Add(frame)) && p.at.Before(turnAt(tk, 1)) {
				t.Fatalf("reply audio at %s while the caller was speaking (from %s to %s) or before their words arrived",
					tk.at(p.at), tk.at(tk.replyAt.Add(onset)), tk.at(tk.replyAt.Add(onset+3*time.Second)))
			}
		}
		as := assistantMessages(tk)
		if len(as) != 2 || !as[0].Interrupted || as[1].Content != "We are closed on Sundays." {
			t.Fatalf("assistant messages %+v; want the first interrupted and a fresh answer", as)
		}
		heard := tk.audioFrames(tk.replyAt, pausedAt.Add(frame+time.Millisecond)) * FrameSamples
		if w := SpokenPrefix(longReply, float64(heard)/float64(tk.tts.samples(0))); as[0].Content != w {
			t.Fatalf("recorded %q; heard up to the pause: %q", as[0].Content, w)
		}
		if u := userMessages(tk); len(u) != 2 || u[1] != "no I wanted to ask about Sunday" {
			t.Fatalf("user turns %q", u)
		}
		if ts := turns(tk); len(ts) < 1 || !ts[0].Interrupted || ts[0].FalseInterruption {
			t.Fatalf("turn metrics %+v; want interrupted only, not a false interruption", ts)
		}
	})
}

// TestTurnEndpointingDelays: the caller's turn ends endpointing_min_delay
// after their last voiced frame when the transcript is complete, and
// endpointing_max_delay after it when it sounds unfinished or no final
// ended the utterance, to ±20 ms.
func TestTurnEndpointingDelays(t *testing.T) {
	turn := DefaultTurnTaking()
	turn.EndpointingMinDelay = 500 * time.Millisecond
	turn.EndpointingMaxDelay = 1700 * time.Millisecond
	for _, tc := range []struct {
		name string
		ev   stt.Event
		want time.Duration
	}{
		{"complete", final("I would like to book a table."), turn.EndpointingMinDelay},
		{"trailing and", final("I would like to book a table and"), turn.EndpointingMaxDelay},
		{"no end of utterance", stt.Event{Type: stt.Final, Text: "I would like to book a table."}, turn.EndpointingMaxDelay},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				tk := scene{
					turn:  turn,
					ask:   []cue{voice(200*time.Millisecond, time.Second), hear(1300*time.Millisecond, tc.ev)},
					limit: 5 * time.Second,
				}.act(t)
				var ended time.Time
				for _, m := range tk.rec.messages() {
					if m.Role == llm.User {
						ended = m.At
						break
					}
				}
				if ended.IsZero() {
					t.Fatal("the turn never ended")
				}
				if got := ended.Sub(tk.lastVoiced()); (got - tc.want).Abs() > frame {
					t.Fatalf("turn ended %s after the last voiced frame, want %s ±20 ms", got, tc.want)
				}
			})
		})
	}
}

// TestTurnMinWordsScenario: interruption_min_words through the pipeline:
// the reply is cut exactly when the interim transcript reaches the minimum
// (speech long enough already), not before.
func TestTurnMinWordsScenario(t *testing.T) {
	for _, minWords := range []int{1, 3} {
		t.Run(strings.Repeat("w", minWords), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				turn := DefaultTurnTaking()
				turn.InterruptionMinWords = minWords
				onset := 2 * time.Second
				tk := scene{
					turn: turn,
					ask:  question,
					over: []cue{
						voice(onset, 2*time.Second),
						hear(onset+600*time.Millisecond, interim("hold")),
						hear(onset+1000*time.Millisecond, interim("hold on a")),
						hear(onset+2300*time.Millisecond, final("hold on a second")),
					},
					reply: []string{longReply},
					limit: 12 * time.Second,
				}.act(t)
				as := assistantMessages(tk)
				if len(as) < 1 || !as[0].Interrupted {
					t.Fatalf("assistant messages %+v", as)
				}
				want := tk.replyAt.Add(onset + 600*time.Millisecond) // "hold": one word
				if minWords == 3 {
					want = tk.replyAt.Add(onset + time.Second)
				}
				if d := as[0].At.Sub(want); d.Abs() > frame {
					t.Fatalf("min words %d: interrupted at %s, want %s ±20 ms", minWords, tk.at(as[0].At), tk.at(want))
				}
				if s := tk.stopped(); s.Sub(want).Abs() > frame {
					t.Fatalf("min words %d: playback stopped at %s, want at %s", minWords, tk.at(s), tk.at(want))
				}
			})
		})
	}
}

// TestJudgeBargeInMinWords unit-tests interruption_min_words (and the
// other two settings the barge-in decision reads).
func TestJudgeBargeInMinWords(t *testing.T) {
	def := DefaultTurnTaking()
	words := func(n int, timeout time.Duration) TurnTaking {
		t := def
		t.InterruptionMinWords, t.FalseInterruptTimeout = n, timeout
		return t
	}
	for _, tc := range []struct {
		name   string
		turn   TurnTaking
		enough bool
		words  int
		want   bargeIn
	}{
		{"too short, words or not", words(0, def.FalseInterruptTimeout), false, 5, bargeNone},
		{"min words off, no words: hold", words(0, def.FalseInterruptTimeout), true, 0, bargeHold},
		{"min words off, one word: cut", words(0, def.FalseInterruptTimeout), true, 1, bargeCut},
		{"min words off, false timeout off: cut at once", words(0, 0), true, 0, bargeCut},
		{"min 1, no words yet: nothing", words(1, def.FalseInterruptTimeout), true, 0, bargeNone},
		{"min 1, one word: cut", words(1, def.FalseInterruptTimeout), true, 1, bargeCut},
		{"min 2, backchannel: nothing", words(2, def.FalseInterruptTimeout), true, 1, bargeNone},
		{"min 2, two words: cut", words(2, def.FalseInterruptTimeout), true, 2, bargeCut},
		{"min 2, more words: cut", words(2, def.FalseInterruptTimeout), true, 7, bargeCut},
		{"min 2, false timeout off, one word: nothing", words(2, 0), true, 1, bargeNone},
		{"min 3, two words: nothing", words(3, def.FalseInterruptTimeout), true, 2, bargeNone},
		{"min 3, too short with three words: nothing", words(3, def.FalseInterruptTimeout), false, 3, bargeNone},
	} {
		if got := judgeBargeIn(tc.turn, tc.enough, tc.words); got != tc.want {
			t.Errorf("%s: judgeBargeIn(min words %d, enough %v, words %d) = %d, want %d", tc.name, tc.turn.InterruptionMinWords, tc.enough, tc.words, got, tc.want)
		}
	}
}

// TestVoiceMeterCountsVoicedFramesOnly: interruption_min_duration counts
// voiced frames, not the unvoiced gaps a speech segment spans.
func TestVoiceMeterCountsVoicedFramesOnly(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern string // one VAD frame each: v voiced, . unvoiced
		minDur  time.Duration
		want    int // the frame (from 0) that reaches minDur; -1 none
	}{
		{"steady speech", strings.Repeat("v", 30), 300 * time.Millisecond, 14},
		{"gaps do not count", "vvvvv....vvvvv....vvvvv....vvvvv", 300 * time.Millisecond, 22},
		{"clicks inside one segment never reach it", "vvvvv.........vvv.........vv..........", 300 * time.Millisecond, -1},
		{"zero: at speech start", "vvvvvvv", 0, 4},
		{"not again in the same segment", strings.Repeat("v", 60), 300 * time.Millisecond, 14},
		{"a new segment starts over", "vvvvvvvvvv" + strings.Repeat(".", 10) + "vvvvvvvvvv", 300 * time.Millisecond, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vad := audio.NewVAD(audio.DefaultVADConfig())
			m := newVoiceMeter(tc.minDur)
			tone := audio.Tone(300, SampleRate, FrameSamples, 8000)
			quiet := make([]int16, FrameSamples)
			got := -1
			for i, f := range tc.pattern {
				in := quiet
				if f == 'v' {
					in = tone
				}
				if m.frame(vad.Process(in), vad.Config().StartFrames) {
					if got >= 0 {
						t.Fatalf("reached twice: frames %d and %d", got, i)
					}
					got = i
				}
			}
			if got != tc.want {
				t.Fatalf("reached at frame %d, want %d", got, tc.want)
			}
		})
	}
}
