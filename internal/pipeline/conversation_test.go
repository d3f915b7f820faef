package pipeline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/deepgram"
	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// rig is a conversation wired to the three fake providers over real
// websockets and HTTP, with a 20 ms clock standing in for the media session.
type rig struct {
	t    *testing.T
	conv *Conversation
	rec  *memRecorder
	// caller is the audio the caller "says", consumed a frame per tick.
	mu     sync.Mutex
	caller []int16
	// out records, per tick, whether the conversation sent audio.
	out []tick
	oa  *openaifake.Server
	el  *elevenlabsfake.Server
	end Ending
}

type tick struct {
	at    time.Time
	audio bool
}

type memRecorder struct {
	mu    sync.Mutex
	msgs  []Message
	turns []TurnMetrics
}

func (r *memRecorder) Message(m Message)  { r.mu.Lock(); r.msgs = append(r.msgs, m); r.mu.Unlock() }
func (r *memRecorder) Turn(m TurnMetrics) { r.mu.Lock(); r.turns = append(r.turns, m); r.mu.Unlock() }
func (r *memRecorder) messages() []Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Message(nil), r.msgs...)
}

func newRig(t *testing.T, cfg Config, transcripts []string, chat openaifake.Config) *rig {
	t.Helper()
	dg := deepgramfake.New(deepgramfake.Config{Transcripts: transcripts, Interim: true})
	oa := openaifake.New(chat)
	el := elevenlabsfake.New(elevenlabsfake.Config{})
	mux := http.NewServeMux()
	mux.Handle("/v1/listen", dg)
	mux.Handle("/v1/chat/completions", oa)
	mux.Handle(elevenlabsfake.Path, el)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { el.Close(); srv.Close() })
	cfg.STT.SampleRate, cfg.TTS.SampleRate = SampleRate, SampleRate
	if cfg.TTS.Voice == "" {
		cfg.TTS.Voice = "test-voice"
	}
	if cfg.LLM.Model == "" {
		cfg.LLM.Model = "gpt-test"
	}
	if cfg.Turn == (TurnTaking{}) {
		cfg.Turn = DefaultTurnTaking()
		cfg.Turn.EndpointingMinDelay = 100 * time.Millisecond
	}
	rec := &memRecorder{}
	conv := New(cfg, Deps{Providers: Providers{
		STT: deepgram.New(deepgram.Config{BaseURL: srv.URL}),
		LLM: openai.NewChat(openai.Config{BaseURL: srv.URL + "/v1"}),
		TTS: elevenlabs.NewTTS(elevenlabs.Config{BaseURL: srv.URL}),
	}, Recorder: rec})
	return &rig{t: t, conv: conv, rec: rec, oa: oa, el: el}
}

// say queues caller speech: a 300 Hz tone of d, then silence of gap.
func (r *rig) say(d, gap time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.caller = append(r.caller, audio.Tone(300, SampleRate, int(d.Seconds()*SampleRate), 8000)...)
	r.caller = append(r.caller, make([]int16, int(gap.Seconds()*SampleRate))...)
}

// run drives the conversation until it returns or limit passes.
func (r *rig) run(ctx context.Context, limit time.Duration) (call.EndReason, error) {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		in := make([]int16, FrameSamples)
		out := make([]int16, FrameSamples)
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				r.mu.Lock()
				clear(in)
				n := copy(in, r.caller)
				r.caller = r.caller[n:]
				r.mu.Unlock()
				r.conv.WriteFrame(in)
				a := r.conv.ReadFrame(out)
				r.mu.Lock()
				r.out = append(r.out, tick{now, a})
				r.mu.Unlock()
			}
		}
	}()
	end, err := r.conv.Run(ctx)
	close(done)
	wg.Wait()
	r.end = end
	return end.Reason, err
}

// audioUntil is the time of the last tick with audio at or before t, and
// whether audio played in (from, to].
func (r *rig) audioBetween(from, to time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tk := range r.out {
		if tk.audio && tk.at.After(from) && !tk.at.After(to) {
			return true
		}
	}
	return false
}

func TestConversationTurns(t *testing.T) {
	chat := openaifake.Config{Replies: []openaifake.Reply{{Text: "Sure. Which day suits you?"}, {Text: "Done, see you then.", ToolCalls: []llm.ToolCall{{Name: "end_call", Arguments: "{}"}}}}}
	r := newRig(t, Config{
		System:         []llm.Message{{Role: llm.System, Content: "You are a receptionist."}},
		FirstMessage:   "Hello, dental office.",
		EndCallMessage: "Goodbye.",
		EndCallTool:    true,
		Pronunciation:  []Replacement{{From: "dental", To: "DEN-tal"}},
	}, []string{"I need an appointment", "Tuesday"}, chat)
	go func() {
		time.Sleep(2500 * time.Millisecond) // after the first message
		r.say(800*time.Millisecond, 4*time.Second)
		time.Sleep(5 * time.Second)
		r.say(600*time.Millisecond, 5*time.Second)
	}()
	reason, err := r.run(context.Background(), 20*time.Second)
	if err != nil || reason != call.EndAssistantHangup {
		t.Fatalf("Run = %q, %v; want assistant_hangup", reason, err)
	}
	var got []string
	for _, m := range r.rec.messages() {
		got = append(got, string(m.Role)+": "+m.Content)
	}
	want := []string{
		"assistant: Hello, dental office.",
		"user: I need an appointment",
		"assistant: Sure. Which day suits you?",
		"user: Tuesday",
		"assistant: Done, see you then.",
		"assistant: Goodbye.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The model saw the system prompt and the history; TTS got the pronunciation.
	reqs := r.oa.Requests()
	if len(reqs) != 2 || reqs[1].Messages[0].Content != "You are a receptionist." || len(reqs[1].Messages) != 5 {
		t.Fatalf("model requests: %+v", reqs)
	}
	if texts := r.el.Texts(); len(texts) == 0 || texts[0][0] != "Hello, DEN-tal office." {
		t.Fatalf("TTS texts: %v", texts)
	}
	if len(r.rec.turns) != 2 || r.rec.turns[0].FirstPacket <= 0 || r.rec.turns[0].LLMFirstToken <= 0 {
		t.Fatalf("turn metrics: %+v", r.rec.turns)
	}
	t.Logf("turn metrics: %+v", r.rec.turns)
}

func TestBargeInStopsPlaybackAndDropsStaleReply(t *testing.T) {
	long := "This is a long answer that goes on and on. It has several sentences. Each one takes a while to say. Nobody wants to hear all of it."
	chat := openaifake.Config{Replies: []openaifake.Reply{{Text: long}, {Text: "Of course, tell me."}}}
	cfg := Config{}
	cfg.Turn = DefaultTurnTaking()
	cfg.Turn.EndpointingMinDelay = 100 * time.Millisecond
	cfg.Turn.InterruptionMinWords = 1
	r := newRig(t, cfg, []string{"tell me everything", "wait stop please"}, chat)
	var interruptAt time.Time
	go func() {
		r.say(800*time.Millisecond, 2500*time.Millisecond) // ask; the long reply starts
		time.Sleep(3 * time.Second)
		interruptAt = time.Now()
		r.say(1200*time.Millisecond, 3*time.Second) // talk over it
	}()
	_, _ = r.run(context.Background(), 9*time.Second)
	msgs := r.rec.messages()
	if len(msgs) < 3 {
		t.Fatalf("transcript: %+v", msgs)
	}
	cut := msgs[1]
	if cut.Role != llm.Assistant || !cut.Interrupted || cut.Content == "" || cut.Content == long || !strings.HasPrefix(long, cut.Content) {
		t.Fatalf("interrupted reply recorded as %+v", cut)
	}
	if msgs[2].Role != llm.User || msgs[2].Content != "wait stop please" {
		t.Fatalf("next turn: %+v", msgs[2])
	}
	// Playback stopped within one frame of the interruption being decided
	// (the recorder hears of it at that moment), and the rest never played:
	// the only later audio is the answer to the new turn.
	decided := cut.At
	if r.audioBetween(decided.Add(40*time.Millisecond), decided.Add(500*time.Millisecond)) {
		t.Fatalf("audio still playing more than a frame after the interruption at %s", decided.Sub(interruptAt))
	}
	if len(msgs) < 4 || msgs[3].Content != "Of course, tell me." {
		t.Fatalf("no fresh answer after the interruption: %+v", msgs)
	}
	for _, texts := range r.el.Texts() {
		for _, s := range texts {
			if strings.Contains(s, "Nobody wants") && strings.Contains(cut.Content, "Nobody") {
				t.Fatalf("stale text was played: %q", cut.Content)
			}
		}
	}
	t.Logf("interruption decided %s after the caller started; heard %q", decided.Sub(interruptAt), cut.Content)
}

func TestProviderFailureApologisesAndEnds(t *testing.T) {
	chat := openaifake.Config{Replies: []openaifake.Reply{{Status: 500}}}
	r := newRig(t, Config{Apology: "Sorry, something broke."}, []string{"hello"}, chat)
	r.say(700*time.Millisecond, 5*time.Second)
	reason, err := r.run(context.Background(), 10*time.Second)
	if reason != call.EndLLMError || err == nil {
		t.Fatalf("Run = %q, %v; want llm_error and the cause", reason, err)
	}
	msgs := r.rec.messages()
	if last := msgs[len(msgs)-1]; last.Role != llm.Assistant || last.Content != "Sorry, something broke." {
		t.Fatalf("no apology: %+v", msgs)
	}
}

func TestMaxDuration(t *testing.T) {
	r := newRig(t, Config{MaxDuration: 500 * time.Millisecond}, nil, openaifake.Config{})
	start := time.Now()
	reason, _ := r.run(context.Background(), 5*time.Second)
	if reason != call.EndMaxDuration || time.Since(start) > 2*time.Second {
		t.Fatalf("Run = %q after %s", reason, time.Since(start))
	}
}
