package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/deepgram"
	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/elevenlabs"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// This file tests live call control (Control), keypad input (DTMF) and
// tool calls, on the rig of conversation_test.go. The fake TTS speaks
// 60 ms (three 20 ms frames) of tone per character, as fast as it can.

// framesFor is how many 20 ms frames the fake TTS makes for text.
func framesFor(text string) int { return 3 * len([]rune(text)) }

// llmRecorder wraps the model provider to keep the requests as the pipeline
// built them: openaifake only keeps tool names, not their parameters.
type llmRecorder struct {
	llm.Provider
	mu   sync.Mutex
	reqs []llm.Request
	at   []time.Time
}

func (p *llmRecorder) Stream(ctx context.Context, req llm.Request) (llm.Stream, error) {
	p.mu.Lock()
	req.Messages = slices.Clone(req.Messages)
	req.Tools = slices.Clone(req.Tools)
	p.reqs = append(p.reqs, req)
	p.at = append(p.at, time.Now())
	p.mu.Unlock()
	return p.Provider.Stream(ctx, req)
}

func (p *llmRecorder) requests() ([]llm.Request, []time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs), slices.Clone(p.at)
}

// newControlRig is newRig with Deps.Tools and Deps.Keypad from extra and
// the model requests recorded.
func newControlRig(t *testing.T, cfg Config, transcripts []string, chat openaifake.Config, extra Deps) (*rig, *llmRecorder) {
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
	lr := &llmRecorder{Provider: openai.NewChat(openai.Config{BaseURL: srv.URL + "/v1"})}
	rec := &memRecorder{}
	conv := New(cfg, Deps{
		Providers: Providers{
			STT: deepgram.New(deepgram.Config{BaseURL: srv.URL}),
			LLM: lr,
			TTS: elevenlabs.NewTTS(elevenlabs.Config{BaseURL: srv.URL}),
		},
		Recorder: rec,
		Tools:    extra.Tools,
		Keypad:   extra.Keypad,
	})
	return &rig{t: t, conv: conv, rec: rec, oa: oa, el: el}, lr
}

// running is a rig's Run in the background.
type running struct {
	cancel  context.CancelFunc
	done    chan struct{}
	reason  call.EndReason
	err     error
	endedAt time.Time
}

// start runs the conversation in the background for at most limit. The
// test's cleanup hangs up and waits for it, before the fakes close.
func (r *rig) start(t *testing.T, limit time.Duration) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rn := &running{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rn.done)
		rn.reason, rn.err = r.run(ctx, limit)
		rn.endedAt = time.Now()
	}()
	t.Cleanup(rn.stop)
	return rn
}

// stop hangs up and waits for Run to return.
func (rn *running) stop() {
	rn.cancel()
	<-rn.done
}

// wait waits up to d for Run to return by itself.
func (rn *running) wait(t *testing.T, d time.Duration) (call.EndReason, error) {
	t.Helper()
	select {
	case <-rn.done:
		return rn.reason, rn.err
	case <-time.After(d):
		t.Fatalf("Run did not return within %s", d)
		return "", nil
	}
}

// returned reports whether Run has returned.
func (rn *running) returned() bool {
	select {
	case <-rn.done:
		return true
	default:
		return false
	}
}

// waitFor polls cond every 5 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// control sends a command with a bounded context.
func control(r *rig, cmd call.Command) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	return r.conv.Control(ctx, cmd)
}

// firstAudioAfter is the first tick after from that sent audio.
func (r *rig) firstAudioAfter(from time.Time) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, tk := range r.out {
		if tk.audio && tk.at.After(from) {
			return tk.at, true
		}
	}
	return time.Time{}, false
}

// audioTicks counts the ticks after from that sent audio.
func (r *rig) audioTicks(from time.Time) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, tk := range r.out {
		if tk.audio && tk.at.After(from) {
			n++
		}
	}
	return n
}

// lastAudio is the last tick that sent audio.
func (r *rig) lastAudio() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := len(r.out) - 1; i >= 0; i-- {
		if r.out[i].audio {
			return r.out[i].at
		}
	}
	return time.Time{}
}

// transcript renders the recorded messages as "role: content" lines.
func (r *rig) transcript() []string {
	var out []string
	for _, m := range r.rec.messages() {
		out = append(out, string(m.Role)+": "+m.Content)
	}
	return out
}

// transcriptMarked is transcript with interrupted entries marked.
func (r *rig) transcriptMarked() []string {
	var out []string
	for _, m := range r.rec.messages() {
		line := string(m.Role) + ": " + m.Content
		if m.Interrupted {
			line += " [interrupted]"
		}
		out = append(out, line)
	}
	return out
}

// hasLine reports whether the transcript holds line.
func (r *rig) hasLine(line string) bool { return slices.Contains(r.transcript(), line) }

// ttsTexts is every text the fake TTS generated, over all connections.
func (r *rig) ttsTexts() []string {
	var out []string
	for _, texts := range r.el.Texts() {
		out = append(out, texts...)
	}
	return out
}

// lastMessage is the last message of a model request.
func lastMessage(req openaifake.Request) llm.Message {
	if len(req.Messages) == 0 {
		return llm.Message{}
	}
	return req.Messages[len(req.Messages)-1]
}

// toolFunc is a ToolRunner.
type toolFunc func(ctx context.Context, tc llm.ToolCall) string

func (f toolFunc) Run(ctx context.Context, tc llm.ToolCall) string { return f(ctx, tc) }

// fakeKeypad records the digits sent.
type fakeKeypad struct {
	mu     sync.Mutex
	digits []string
}

func (k *fakeKeypad) SendDTMF(_ context.Context, digits string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.digits = append(k.digits, digits)
	return nil
}

func (k *fakeKeypad) sent() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.digits)
}

// toolThenText scripts the model: the calls when the last message is not a
// tool result, else text.
func toolThenText(calls []llm.ToolCall, text string) openaifake.Config {
	return openaifake.Config{Respond: func(req openaifake.Request) openaifake.Reply {
		if lastMessage(req).Role == llm.Tool {
			return openaifake.Reply{Text: text}
		}
		return openaifake.Reply{ToolCalls: calls}
	}}
}

var lookupOrder = llm.ToolSpec{
	Name:        "lookup_order",
	Description: "Look up an order by its number.",
	Parameters:  json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}},"required":["id"]}`),
}

// TestSayPreemptsFirstMessage runs without t.Parallel so that its latency
// figure is not disturbed by the other tests.
func TestSayPreemptsFirstMessage(t *testing.T) {
	first := "Hello and welcome to the dental office. How can I help you today?"
	r := newRig(t, Config{FirstMessage: first}, nil, openaifake.Config{})
	rn := r.start(t, 15*time.Second)
	waitFor(t, 5*time.Second, "the first message to play", func() bool {
		_, ok := r.firstAudioAfter(time.Time{})
		return ok
	})
	time.Sleep(700 * time.Millisecond) // part of it has been heard

	const code = "Your code is 4 2 7."
	called := time.Now()
	if err := control(r, call.Command{Type: call.CmdSay, Content: code}); err != nil {
		t.Fatalf("Control(say) = %v", err)
	}
	returned := time.Now()
	waitFor(t, 3*time.Second, "the say reply's audio", func() bool {
		_, ok := r.firstAudioAfter(returned)
		return ok
	})
	at, _ := r.firstAudioAfter(returned)
	t.Logf("say: Control took %s; first audio tick %s after the call, %s after it returned",
		returned.Sub(called), at.Sub(called), at.Sub(returned))
	if d := at.Sub(returned); d > 150*time.Millisecond {
		t.Errorf("the say reply's first audio came %s after Control returned, want ≤ 150ms", d)
	}
	waitFor(t, 5*time.Second, "the say reply to be recorded", func() bool { return len(r.rec.messages()) >= 2 })
	time.Sleep(100 * time.Millisecond)
	rn.stop()

	msgs := r.rec.messages()
	if len(msgs) != 2 {
		t.Fatalf("transcript: %q", r.transcript())
	}
	cut := msgs[0]
	if cut.Role != llm.Assistant || !cut.Interrupted || cut.Content == "" || cut.Content == first || !strings.HasPrefix(first, cut.Content) {
		t.Errorf("first message recorded as %+v; want an interrupted proper prefix of %q", cut, first)
	}
	if m := msgs[1]; m.Role != llm.Assistant || m.Content != code || m.Interrupted {
		t.Errorf("say recorded as %+v; want assistant %q, not interrupted", m, code)
	}
	if texts := r.ttsTexts(); !slices.Contains(texts, code) {
		t.Errorf("TTS texts %q lack %q", texts, code)
	}
	// After the command only the say text played (in full), nothing more of
	// the first message.
	if n, want := r.audioTicks(returned), framesFor(code); n < want-2 || n > want+2 {
		t.Errorf("%d frames of audio after the command, want %d (the say text alone)", n, want)
	}
	if n := len(r.oa.Requests()); n != 0 {
		t.Errorf("%d model requests; say must not call the model", n)
	}
}

func TestSayEndAfterIsNotInterruptible(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{}, []string{"hang on a second please"}, openaifake.Config{})
	rn := r.start(t, 15*time.Second)
	text := "Your appointment is confirmed for Tuesday. Goodbye."
	if err := control(r, call.Command{Type: call.CmdSay, Content: text, EndAfter: true}); err != nil {
		t.Fatalf("Control(say end_after) = %v", err)
	}
	waitFor(t, 3*time.Second, "the text to play", func() bool {
		_, ok := r.firstAudioAfter(time.Time{})
		return ok
	})
	time.Sleep(200 * time.Millisecond)
	r.say(1200*time.Millisecond, 0) // the caller talks over it, with words

	reason, err := rn.wait(t, 10*time.Second)
	if reason != call.EndAPIRequest || err != nil {
		t.Fatalf("Run = %q, %v; want api_request", reason, err)
	}
	msgs := r.rec.messages()
	if len(msgs) != 1 || msgs[0].Role != llm.Assistant || msgs[0].Content != text || msgs[0].Interrupted {
		t.Fatalf("transcript %+v; want only the text, not interrupted", msgs)
	}
	if n, want := r.audioTicks(time.Time{}), framesFor(text); n < want-2 || n > want+2 {
		t.Errorf("%d frames played, want %d: the text was not played in full", n, want)
	}
	if last := r.lastAudio(); rn.endedAt.Before(last) {
		t.Errorf("Run returned at %s, before the last audio at %s", rn.endedAt, last)
	}
	if n := len(r.oa.Requests()); n != 0 {
		t.Errorf("%d model requests", n)
	}
}

func TestInjectContextWithoutTrigger(t *testing.T) {
	t.Parallel()
	chat := openaifake.Config{Replies: []openaifake.Reply{{Text: "We open at nine."}}}
	r := newRig(t, Config{
		System:       []llm.Message{{Role: llm.System, Content: "You are a receptionist."}},
		FirstMessage: "Hello.",
	}, []string{"what are your hours"}, chat)
	rn := r.start(t, 15*time.Second)
	waitFor(t, 5*time.Second, "the first message to play", func() bool { return r.hasLine("assistant: Hello.") })

	const vip = "The caller is a VIP customer."
	if err := control(r, call.Command{Type: call.CmdInjectContext, Content: vip}); err != nil {
		t.Fatalf("Control(inject-context) = %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(r.oa.Requests()); n != 0 {
		t.Fatalf("%d model requests after inject-context without trigger_response", n)
	}
	r.say(700*time.Millisecond, 0)
	waitFor(t, 8*time.Second, "the answer", func() bool { return r.hasLine("assistant: We open at nine.") })
	rn.stop()

	reqs := r.oa.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests, want 1", len(reqs))
	}
	want := []llm.Message{
		{Role: llm.System, Content: "You are a receptionist."},
		{Role: llm.Assistant, Content: "Hello."},
		{Role: llm.System, Content: vip},
		{Role: llm.User, Content: "what are your hours"},
	}
	if got := reqs[0].Messages; !slices.EqualFunc(got, want, sameMessage) {
		t.Errorf("model messages:\n%+v\nwant\n%+v", got, want)
	}
	wantT := []string{"assistant: Hello.", "system: " + vip, "user: what are your hours", "assistant: We open at nine."}
	if got := r.transcript(); !slices.Equal(got, wantT) {
		t.Errorf("transcript:\n%q\nwant\n%q", got, wantT)
	}
}

func sameMessage(a, b llm.Message) bool {
	return a.Role == b.Role && a.Content == b.Content && a.ToolCallID == b.ToolCallID && len(a.ToolCalls) == len(b.ToolCalls)
}

func TestInjectContextTriggerWhileIdle(t *testing.T) {
	t.Parallel()
	chat := openaifake.Config{Replies: []openaifake.Reply{{Text: "Welcome back, Anna."}}}
	r := newRig(t, Config{System: []llm.Message{{Role: llm.System, Content: "You are a receptionist."}}}, nil, chat)
	rn := r.start(t, 10*time.Second)
	time.Sleep(300 * time.Millisecond) // the call is up and idle
	const who = "Caller identified as Anna Jansen."
	sent := time.Now()
	if err := control(r, call.Command{Type: call.CmdInjectContext, Content: who, TriggerResponse: true}); err != nil {
		t.Fatalf("Control(inject-context) = %v", err)
	}
	waitFor(t, time.Second, "a model request", func() bool { return len(r.oa.Requests()) > 0 })
	t.Logf("model request %s after the command", time.Since(sent))
	waitFor(t, 5*time.Second, "the reply", func() bool { return r.hasLine("assistant: Welcome back, Anna.") })
	rn.stop()

	reqs := r.oa.Requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests, want 1", len(reqs))
	}
	want := []llm.Message{{Role: llm.System, Content: "You are a receptionist."}, {Role: llm.System, Content: who}}
	if got := reqs[0].Messages; !slices.EqualFunc(got, want, sameMessage) {
		t.Errorf("model messages %+v, want %+v", got, want)
	}
	if got, want := r.transcript(), []string{"system: " + who, "assistant: Welcome back, Anna."}; !slices.Equal(got, want) {
		t.Errorf("transcript %q, want %q", got, want)
	}
}

func TestInjectContextTriggerWaitsForCurrentReply(t *testing.T) {
	t.Parallel()
	first := "Hello, this is the front desk."
	chat := openaifake.Config{Replies: []openaifake.Reply{{Text: "I see you booked for Friday."}}}
	r := newRig(t, Config{FirstMessage: first}, nil, chat)
	rn := r.start(t, 10*time.Second)
	waitFor(t, 5*time.Second, "the first message to play", func() bool {
		_, ok := r.firstAudioAfter(time.Time{})
		return ok
	})
	const ctxt = "The caller has a booking on Friday."
	if err := control(r, call.Command{Type: call.CmdInjectContext, Content: ctxt, TriggerResponse: true}); err != nil {
		t.Fatalf("Control(inject-context) = %v", err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(r.oa.Requests()); n != 0 {
		t.Fatalf("%d model requests while the first message still plays", n)
	}
	waitFor(t, 5*time.Second, "the triggered reply", func() bool { return r.hasLine("assistant: I see you booked for Friday.") })
	rn.stop()

	msgs := r.rec.messages()
	if len(msgs) != 3 || msgs[1].Content != first || msgs[1].Interrupted {
		t.Fatalf("transcript %+v; the first message must play in full before the triggered reply", msgs)
	}
	reqs := r.oa.Requests()
	want := []llm.Message{{Role: llm.System, Content: ctxt}, {Role: llm.Assistant, Content: first}}
	if len(reqs) != 1 || !slices.EqualFunc(reqs[0].Messages, want, sameMessage) {
		t.Fatalf("model requests %+v, want one with %+v", reqs, want)
	}
}

func TestEndCallCommandWithoutMessage(t *testing.T) {
	t.Parallel()
	first := "Hello and welcome to the dental office. How can I help you today?"
	r := newRig(t, Config{FirstMessage: first}, nil, openaifake.Config{})
	rn := r.start(t, 10*time.Second)
	waitFor(t, 5*time.Second, "the first message to play", func() bool {
		_, ok := r.firstAudioAfter(time.Time{})
		return ok
	})
	time.Sleep(300 * time.Millisecond)
	sent := time.Now()
	if err := control(r, call.Command{Type: call.CmdEndCall}); err != nil {
		t.Fatalf("Control(end-call) = %v", err)
	}
	reason, err := rn.wait(t, time.Second)
	if reason != call.EndAPIRequest || err != nil {
		t.Fatalf("Run = %q, %v; want api_request", reason, err)
	}
	t.Logf("Run returned %s after the command", rn.endedAt.Sub(sent))
	msgs := r.rec.messages()
	if len(msgs) != 1 || !msgs[0].Interrupted || !strings.HasPrefix(first, msgs[0].Content) || msgs[0].Content == first {
		t.Errorf("transcript %+v; want the first message cut short", msgs)
	}
}

func TestEndCallCommandWithMessage(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{}, nil, openaifake.Config{})
	rn := r.start(t, 10*time.Second)
	const bye = "Thanks for calling, goodbye."
	if err := control(r, call.Command{Type: call.CmdEndCall, Message: bye}); err != nil {
		t.Fatalf("Control(end-call) = %v", err)
	}
	for _, cmd := range []call.Command{
		{Type: call.CmdSay, Content: "One more thing."},
		{Type: call.CmdInjectContext, Content: "ignored", TriggerResponse: true},
		{Type: call.CmdEndCall},
		{Type: call.CmdTransfer, Destination: "+31201234567"},
	} {
		if err := control(r, cmd); !errors.Is(err, ErrEnding) {
			t.Errorf("Control(%s) while closing = %v, want ErrEnding", cmd.Type, err)
		}
	}
	r.conv.DTMF('5')
	r.conv.DTMF('#')
	reason, err := rn.wait(t, 8*time.Second)
	if reason != call.EndAPIRequest || err != nil || r.end.TransferTo != "" {
		t.Fatalf("Run = %+v, %v; want api_request", r.end, err)
	}
	if got, want := r.transcript(), []string{"assistant: " + bye}; !slices.Equal(got, want) {
		t.Errorf("transcript %q, want %q", got, want)
	}
	if msgs := r.rec.messages(); len(msgs) == 1 && msgs[0].Interrupted {
		t.Errorf("closing message recorded as interrupted")
	}
	if texts := r.ttsTexts(); !slices.Equal(texts, []string{bye}) {
		t.Errorf("TTS texts %q, want only %q", texts, bye)
	}
	if n, want := r.audioTicks(time.Time{}), framesFor(bye); n < want-2 || n > want+2 {
		t.Errorf("%d frames played, want %d", n, want)
	}
	if n := len(r.oa.Requests()); n != 0 {
		t.Errorf("%d model requests", n)
	}
}

// TestEndCallToolGoodbyeRefusesCommands: once the model has hung up and the
// end_call_message (a closing, uninterruptible reply) plays, the call is
// ending: commands are refused and keys ignored, and the call ends.
func TestEndCallToolGoodbyeRefusesCommands(t *testing.T) {
	t.Parallel()
	const bye = "Thank you for calling. Have a lovely day, goodbye."
	for _, tc := range []struct {
		name string
		act  func(t *testing.T, r *rig)
	}{
		{"say", func(t *testing.T, r *rig) {
			if err := control(r, call.Command{Type: call.CmdSay, Content: "Wait, one more thing."}); !errors.Is(err, ErrEnding) {
				t.Errorf("Control(say) during the goodbye = %v, want ErrEnding", err)
			}
		}},
		{"keypad", func(t *testing.T, r *rig) {
			r.conv.DTMF('1')
			r.conv.DTMF('#')
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			chat := openaifake.Config{Replies: []openaifake.Reply{
				{Text: "Alright.", ToolCalls: []llm.ToolCall{{Name: "end_call", Arguments: "{}"}}},
				{Text: "Anything else?"},
			}}
			r := newRig(t, Config{EndCallTool: true, EndCallMessage: bye}, []string{"that is all thanks"}, chat)
			rn := r.start(t, 15*time.Second)
			r.say(700*time.Millisecond, 0)
			waitFor(t, 8*time.Second, "the goodbye to start", func() bool { return slices.Contains(r.ttsTexts(), bye) })
			time.Sleep(300 * time.Millisecond)
			tc.act(t, r)
			select {
			case <-rn.done:
				if rn.reason != call.EndAssistantHangup || rn.err != nil {
					t.Errorf("Run = %q, %v; want assistant_hangup", rn.reason, rn.err)
				}
			case <-time.After(6 * time.Second):
				t.Errorf("the call did not end after the goodbye (6s)")
				rn.stop()
			}
			msgs := r.rec.messages()
			if len(msgs) == 0 || msgs[len(msgs)-1].Content != bye || msgs[len(msgs)-1].Interrupted {
				t.Errorf("transcript %q; want it to end with the whole goodbye, not interrupted", r.transcriptMarked())
			}
			if n := len(r.oa.Requests()); n != 1 {
				t.Errorf("%d model requests, want 1", n)
			}
		})
	}
}

// TestHangUpOrTransferReplyNotInterruptible: once the model's reply is
// known to end the call (end_call) or hand it on (transfer_call), the
// caller talking over the rest of it does not cut it short and so drop the
// hang-up or transfer: the reply plays in full and the call ends as the
// model decided.
func TestHangUpOrTransferReplyNotInterruptible(t *testing.T) {
	t.Parallel()
	const goodbye = "Thank you so much for calling the clinic today, it was a pleasure. Goodbye and take care."
	for _, tc := range []struct {
		name string
		cfg  Config
		tool llm.ToolCall
		want Ending
		said string
	}{
		{"end_call", Config{EndCallTool: true}, llm.ToolCall{Name: "end_call", Arguments: "{}"},
			Ending{Reason: call.EndAssistantHangup}, goodbye},
		{"transfer_call", Config{Transfers: []TransferDestination{{Number: "+31201234567", Description: "the front desk", Message: "Connecting you now."}}},
			llm.ToolCall{Name: "transfer_call", Arguments: `{"destination":"+31201234567"}`},
			Ending{Reason: call.EndTransferred, TransferTo: "+31201234567"}, goodbye + " Connecting you now."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := tc.cfg
			cfg.Turn = DefaultTurnTaking()
			cfg.Turn.EndpointingMinDelay = 100 * time.Millisecond
			cfg.Turn.InterruptionMinWords = 1
			chat := openaifake.Config{Replies: []openaifake.Reply{{Text: goodbye, ToolCalls: []llm.ToolCall{tc.tool}}, {Text: "Yes?"}}}
			r := newRig(t, cfg, []string{"that is all thanks", "wait one more thing"}, chat)
			rn := r.start(t, 20*time.Second)
			r.say(700*time.Millisecond, 0)
			waitFor(t, 8*time.Second, "the goodbye to play", func() bool {
				return r.audioTicks(time.Time{}) > 10 // no first message: this is the goodbye
			})
			r.say(1200*time.Millisecond, 0) // talk over it
			if _, err := rn.wait(t, 15*time.Second); err != nil {
				t.Fatalf("Run error %v", err)
			}
			if r.end != tc.want {
				t.Fatalf("Run = %+v, want %+v", r.end, tc.want)
			}
			msgs := r.rec.messages()
			last := msgs[len(msgs)-1]
			if last.Role != llm.Assistant || last.Content != tc.said || last.Interrupted {
				t.Fatalf("transcript %q; want it to end with the whole reply, not interrupted", r.transcriptMarked())
			}
			if n := len(r.oa.Requests()); n != 1 {
				t.Errorf("%d model requests, want 1", n)
			}
		})
	}
}

func TestTransferCommand(t *testing.T) {
	t.Parallel()
	t.Run("with message", func(t *testing.T) {
		t.Parallel()
		r := newRig(t, Config{}, nil, openaifake.Config{})
		rn := r.start(t, 10*time.Second)
		const msg = "Transferring you to our sales team now."
		if err := control(r, call.Command{Type: call.CmdTransfer, Destination: "+31201234567", Message: msg}); err != nil {
			t.Fatalf("Control(transfer) = %v", err)
		}
		if err := control(r, call.Command{Type: call.CmdSay, Content: "x"}); !errors.Is(err, ErrEnding) {
			t.Errorf("Control(say) during the announcement = %v, want ErrEnding", err)
		}
		if _, err := rn.wait(t, 8*time.Second); err != nil {
			t.Fatalf("Run error %v", err)
		}
		if want := (Ending{Reason: call.EndTransferred, TransferTo: "+31201234567"}); r.end != want {
			t.Fatalf("Run = %+v, want %+v", r.end, want)
		}
		if got := r.transcript(); !slices.Equal(got, []string{"assistant: " + msg}) {
			t.Errorf("transcript %q", got)
		}
		if texts := r.ttsTexts(); !slices.Contains(texts, msg) {
			t.Errorf("TTS texts %q lack the announcement", texts)
		}
		if n, want := r.audioTicks(time.Time{}), framesFor(msg); n < want-2 {
			t.Errorf("%d frames played before the transfer, want %d", n, want)
		}
	})
	t.Run("SIP URI at once", func(t *testing.T) {
		t.Parallel()
		first := "Hello and welcome to the dental office. How can I help you today?"
		r := newRig(t, Config{FirstMessage: first}, nil, openaifake.Config{})
		rn := r.start(t, 10*time.Second)
		waitFor(t, 5*time.Second, "the first message to play", func() bool {
			_, ok := r.firstAudioAfter(time.Time{})
			return ok
		})
		const dest = "sip:support@example.com"
		sent := time.Now()
		if err := control(r, call.Command{Type: call.CmdTransfer, Destination: dest}); err != nil {
			t.Fatalf("Control(transfer) = %v", err)
		}
		if _, err := rn.wait(t, time.Second); err != nil {
			t.Fatalf("Run error %v", err)
		}
		if want := (Ending{Reason: call.EndTransferred, TransferTo: dest}); r.end != want {
			t.Fatalf("Run = %+v, want %+v", r.end, want)
		}
		t.Logf("transfer without message ended the call %s after the command", rn.endedAt.Sub(sent))
	})
}

func TestTransferCallTool(t *testing.T) {
	t.Parallel()
	transfers := []TransferDestination{
		{Number: "+31201234567", Description: "sales and new orders", Message: "Connecting you to sales."},
		{Number: "+31201234568", Description: "technical support", Message: "Connecting you to support now."},
	}
	chat := openaifake.Config{Replies: []openaifake.Reply{{
		Text:      "Sure.",
		ToolCalls: []llm.ToolCall{{Name: "transfer_call", Arguments: `{"destination":"+31201234568"}`}},
	}}}
	r, lr := newControlRig(t, Config{Transfers: transfers}, []string{"my internet is down"}, chat, Deps{})
	rn := r.start(t, 12*time.Second)
	r.say(700*time.Millisecond, 0)
	if _, err := rn.wait(t, 10*time.Second); err != nil {
		t.Fatalf("Run error %v", err)
	}
	if want := (Ending{Reason: call.EndTransferred, TransferTo: "+31201234568"}); r.end != want {
		t.Fatalf("Run = %+v, want %+v", r.end, want)
	}
	texts := r.ttsTexts()
	if !slices.Contains(texts, "Connecting you to support now.") || slices.Contains(texts, "Connecting you to sales.") {
		t.Errorf("TTS texts %q; want the support message only", texts)
	}
	want := []string{"user: my internet is down", "assistant: Sure. Connecting you to support now."}
	if got := r.transcript(); !slices.Equal(got, want) {
		t.Errorf("transcript %q, want %q", got, want)
	}
	reqs, _ := lr.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d model requests, want 1 (no round after a transfer)", len(reqs))
	}
	var spec *llm.ToolSpec
	for i := range reqs[0].Tools {
		if reqs[0].Tools[i].Name == "transfer_call" {
			spec = &reqs[0].Tools[i]
		}
	}
	if spec == nil {
		t.Fatalf("tools %+v lack transfer_call", reqs[0].Tools)
	}
	var params struct {
		Properties struct {
			Destination struct {
				Type string   `json:"type"`
				Enum []string `json:"enum"`
			} `json:"destination"`
		} `json:"properties"`
		Required []string `json:"required"`
	}
	if err := json.Unmarshal(spec.Parameters, &params); err != nil {
		t.Fatalf("transfer_call parameters %s: %v", spec.Parameters, err)
	}
	if got := params.Properties.Destination.Enum; !slices.Equal(got, []string{"+31201234567", "+31201234568"}) {
		t.Errorf("destination enum %q", got)
	}
	if !slices.Contains(params.Required, "destination") {
		t.Errorf("destination not required: %s", spec.Parameters)
	}
	for _, d := range transfers {
		if !strings.Contains(spec.Description, d.Number) || !strings.Contains(spec.Description, d.Description) {
			t.Errorf("description %q does not describe %s", spec.Description, d.Number)
		}
	}
	if tools := r.oa.Requests()[0].Tools; slices.Contains(tools, "send_dtmf") || slices.Contains(tools, "end_call") {
		t.Errorf("tools %q offered without a keypad / end_call_tool", tools)
	}
}

func TestKeypadInput(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{DTMFDigitTimeout: 300 * time.Millisecond}, nil, openaifake.Config{})
	rn := r.start(t, 12*time.Second)
	time.Sleep(200 * time.Millisecond)
	for _, d := range "123#" {
		r.conv.DTMF(d)
		time.Sleep(50 * time.Millisecond)
	}
	waitFor(t, 2*time.Second, "the keypad entry", func() bool { return r.hasLine("user: [keypad] 123#") })
	waitFor(t, 5*time.Second, "the answer to the keys", func() bool { return r.hasLine("assistant: You said: [keypad] 123#") })

	r.conv.DTMF('4')
	time.Sleep(100 * time.Millisecond)
	r.conv.DTMF('5')
	last := time.Now()
	waitFor(t, 2*time.Second, "the keys without # to be committed", func() bool { return r.hasLine("user: [keypad] 45") })
	waitFor(t, 5*time.Second, "the second answer", func() bool { return r.hasLine("assistant: You said: [keypad] 45") })
	rn.stop()

	var committed time.Time
	for _, m := range r.rec.messages() {
		if m.Content == "[keypad] 45" {
			committed = m.At
		}
	}
	wait := committed.Sub(last)
	t.Logf("digits committed %s after the last key (timeout 300ms)", wait)
	if wait < 250*time.Millisecond || wait > time.Second {
		t.Errorf("digits committed %s after the last key, want about 300ms", wait)
	}
	want := []string{"user: [keypad] 123#", "assistant: You said: [keypad] 123#", "user: [keypad] 45", "assistant: You said: [keypad] 45"}
	if got := r.transcript(); !slices.Equal(got, want) {
		t.Errorf("transcript %q, want %q", got, want)
	}
	reqs := r.oa.Requests()
	if len(reqs) != 2 || !sameMessage(lastMessage(reqs[0]), llm.Message{Role: llm.User, Content: "[keypad] 123#"}) ||
		!sameMessage(lastMessage(reqs[1]), llm.Message{Role: llm.User, Content: "[keypad] 45"}) {
		t.Errorf("model requests %+v", reqs)
	}
}

func TestToolSendDTMF(t *testing.T) {
	t.Parallel()
	kp := &fakeKeypad{}
	chat := toolThenText([]llm.ToolCall{{ID: "call_keys", Name: "send_dtmf", Arguments: `{"digits":"1#"}`}}, "I pressed one and pound.")
	r, lr := newControlRig(t, Config{}, []string{"press one then pound"}, chat, Deps{Keypad: kp})
	rn := r.start(t, 12*time.Second)
	r.say(700*time.Millisecond, 0)
	waitFor(t, 10*time.Second, "the reply", func() bool { return r.hasLine("assistant: I pressed one and pound.") })
	rn.stop()

	if got := kp.sent(); !slices.Equal(got, []string{"1#"}) {
		t.Errorf("keypad got %q, want [1#]", got)
	}
	reqs := r.oa.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests, want 2", len(reqs))
	}
	if !slices.Contains(reqs[0].Tools, "send_dtmf") {
		t.Errorf("tools %q lack send_dtmf", reqs[0].Tools)
	}
	msgs := reqs[1].Messages
	if len(msgs) < 2 {
		t.Fatalf("second request messages %+v", msgs)
	}
	callMsg, res := msgs[len(msgs)-2], msgs[len(msgs)-1]
	if callMsg.Role != llm.Assistant || len(callMsg.ToolCalls) != 1 || callMsg.ToolCalls[0].ID != "call_keys" || callMsg.ToolCalls[0].Name != "send_dtmf" {
		t.Errorf("tool call message %+v", callMsg)
	}
	var out map[string]string
	if res.Role != llm.Tool || res.ToolCallID != "call_keys" || json.Unmarshal([]byte(res.Content), &out) != nil || out["sent"] != "1#" || len(out) != 1 {
		t.Errorf("tool result %+v, want {\"sent\":\"1#\"} for call_keys", res)
	}
	all, _ := lr.requests()
	for _, spec := range all[0].Tools {
		if spec.Name == "send_dtmf" && !strings.Contains(string(spec.Parameters), `"digits"`) {
			t.Errorf("send_dtmf parameters %s", spec.Parameters)
		}
	}
}

func TestToolSync(t *testing.T) {
	t.Parallel()
	ask := llm.ToolCall{Name: "lookup_order", Arguments: `{"id":"42"}`}

	t.Run("result round trip", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var got []llm.ToolCall
		runner := toolFunc(func(_ context.Context, tc llm.ToolCall) string {
			mu.Lock()
			got = append(got, tc)
			mu.Unlock()
			return `{"status":"shipped"}`
		})
		chat := toolThenText([]llm.ToolCall{ask}, "Your order has shipped.")
		r, _ := newControlRig(t, Config{Tools: []Tool{{Spec: lookupOrder}}}, []string{"where is order 42"}, chat, Deps{Tools: runner})
		rn := r.start(t, 12*time.Second)
		r.say(700*time.Millisecond, 0)
		waitFor(t, 10*time.Second, "the reply", func() bool { return r.hasLine("assistant: Your order has shipped.") })
		rn.stop()

		mu.Lock()
		defer mu.Unlock()
		if len(got) != 1 || got[0].Name != "lookup_order" || got[0].Arguments != `{"id":"42"}` || got[0].ID == "" {
			t.Fatalf("runner got %+v", got)
		}
		reqs := r.oa.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d model requests, want 2", len(reqs))
		}
		if !slices.Equal(reqs[0].Tools, []string{"lookup_order"}) {
			t.Errorf("tools offered %q", reqs[0].Tools)
		}
		msgs := reqs[1].Messages
		callMsg, res := msgs[len(msgs)-2], msgs[len(msgs)-1]
		if callMsg.Role != llm.Assistant || len(callMsg.ToolCalls) != 1 || callMsg.ToolCalls[0].ID != got[0].ID {
			t.Errorf("tool call message %+v", callMsg)
		}
		if res.Role != llm.Tool || res.ToolCallID != got[0].ID || res.Content != `{"status":"shipped"}` {
			t.Errorf("tool result message %+v, want the runner's result for %s", res, got[0].ID)
		}
		if texts := r.ttsTexts(); !slices.Contains(texts, "Your order has shipped.") {
			t.Errorf("TTS texts %q", texts)
		}
		if got := r.transcript(); !slices.Equal(got, []string{"user: where is order 42", "assistant: Your order has shipped."}) {
			t.Errorf("transcript %q", got)
		}
	})

	t.Run("message while it runs", func(t *testing.T) {
		t.Parallel()
		const hold = "One moment please."
		var r *rig
		var mu sync.Mutex
		var began, ended time.Time
		var textsAtReturn []string
		runner := toolFunc(func(ctx context.Context, _ llm.ToolCall) string {
			mu.Lock()
			began = time.Now()
			mu.Unlock()
			select {
			case <-time.After(1500 * time.Millisecond):
			case <-ctx.Done():
				return `{"error":"cancelled"}`
			}
			texts := r.ttsTexts()
			mu.Lock()
			ended, textsAtReturn = time.Now(), texts
			mu.Unlock()
			return `{"status":"shipped"}`
		})
		chat := toolThenText([]llm.ToolCall{ask}, "Your order has shipped.")
		var lr *llmRecorder
		r, lr = newControlRig(t, Config{Tools: []Tool{{Spec: lookupOrder, Message: hold}}}, []string{"where is order 42"}, chat, Deps{Tools: runner})
		rn := r.start(t, 12*time.Second)
		r.say(700*time.Millisecond, 0)
		waitFor(t, 10*time.Second, "the reply to be recorded", func() bool { return len(r.rec.messages()) >= 2 })
		rn.stop()

		// The transcript holds what was said: the tool's message, then the
		// model's answer, as separate sentences.
		want := []string{"user: where is order 42", "assistant: " + hold + " Your order has shipped."}
		if got := r.transcript(); !slices.Equal(got, want) {
			t.Errorf("transcript %q, want %q", got, want)
		}

		mu.Lock()
		defer mu.Unlock()
		if !slices.Contains(textsAtReturn, hold) {
			t.Errorf("TTS texts when the tool returned: %q; want %q already sent", textsAtReturn, hold)
		}
		if at, ok := r.firstAudioAfter(began.Add(-time.Second)); !ok || at.After(began.Add(300*time.Millisecond)) {
			t.Errorf("no audio within 300ms of the tool starting (first audio %v, tool began %v)", at, began)
		}
		if !r.audioBetween(began.Add(500*time.Millisecond), began.Add(time.Second)) {
			t.Errorf("dead air while the tool ran")
		}
		_, at := lr.requests()
		if len(at) != 2 || at[1].Before(ended) {
			t.Errorf("model requests at %v; the second must follow the tool's result at %v", at, ended)
		}
	})

	t.Run("deadline and cancellation", func(t *testing.T) {
		t.Parallel()
		type seen struct {
			left   time.Duration
			hasDL  bool
			err    error
			called time.Time
		}
		got := make(chan seen, 1)
		done := make(chan seen, 1)
		runner := toolFunc(func(ctx context.Context, _ llm.ToolCall) string {
			dl, ok := ctx.Deadline()
			s := seen{left: time.Until(dl), hasDL: ok, called: time.Now()}
			got <- s
			<-ctx.Done() // a tool that never answers
			s.err = ctx.Err()
			done <- s
			return `{"error":"timeout"}`
		})
		chat := toolThenText([]llm.ToolCall{ask}, "unused")
		r, _ := newControlRig(t, Config{Tools: []Tool{{Spec: lookupOrder}}}, []string{"where is order 42"}, chat, Deps{Tools: runner})
		rn := r.start(t, 12*time.Second)
		r.say(700*time.Millisecond, 0)
		var s seen
		select {
		case s = <-got:
		case <-time.After(8 * time.Second):
			t.Fatal("the runner was not called")
		}
		if !s.hasDL || s.left > ToolTimeout || s.left < ToolTimeout-2*time.Second {
			t.Errorf("runner ctx deadline: %v, %s away; want ≤ %s", s.hasDL, s.left, ToolTimeout)
		}
		// Hanging up cancels the tool and Run does not wait for its timeout.
		time.Sleep(200 * time.Millisecond)
		hung := time.Now()
		rn.stop()
		if d := time.Since(hung); d > 2*time.Second {
			t.Errorf("Run returned %s after the hang-up with a tool blocked", d)
		}
		select {
		case s = <-done:
			if s.err == nil {
				t.Errorf("runner ctx not cancelled")
			}
		case <-time.After(time.Second):
			t.Error("the runner's ctx was not cancelled at hang-up")
		}
	})

	t.Run("error result", func(t *testing.T) {
		t.Parallel()
		runner := toolFunc(func(context.Context, llm.ToolCall) string { return `{"error":"boom"}` })
		chat := toolThenText([]llm.ToolCall{{ID: "call_42", Name: "lookup_order", Arguments: `{"id":"42"}`}}, "Sorry, I could not look that up.")
		r, _ := newControlRig(t, Config{Tools: []Tool{{Spec: lookupOrder}}}, []string{"where is order 42"}, chat, Deps{Tools: runner})
		rn := r.start(t, 12*time.Second)
		r.say(700*time.Millisecond, 0)
		waitFor(t, 10*time.Second, "the reply", func() bool { return r.hasLine("assistant: Sorry, I could not look that up.") })
		rn.stop()
		reqs := r.oa.Requests()
		if len(reqs) != 2 {
			t.Fatalf("%d model requests, want 2", len(reqs))
		}
		if res := lastMessage(reqs[1]); res.Role != llm.Tool || res.ToolCallID != "call_42" || res.Content != `{"error":"boom"}` {
			t.Errorf("tool result %+v, want the runner's error", res)
		}
	})
}

func TestToolAsync(t *testing.T) {
	t.Parallel()
	const sentMsg = "I've sent that."
	called := make(chan llm.ToolCall, 4)
	runner := toolFunc(func(ctx context.Context, tc llm.ToolCall) string {
		select {
		case <-time.After(200 * time.Millisecond): // slower than the reply
		case <-ctx.Done():
		}
		called <- tc
		return `{"status":"sent"}`
	})
	sms := llm.ToolSpec{Name: "send_sms", Description: "Text the caller.", Parameters: json.RawMessage(`{"type":"object","properties":{"to":{"type":"string"}}}`)}
	chat := openaifake.Config{Respond: func(req openaifake.Request) openaifake.Reply {
		if lastMessage(req).Role == llm.Tool {
			return openaifake.Reply{Text: "This should not be asked for."}
		}
		return openaifake.Reply{Text: "Sure.", ToolCalls: []llm.ToolCall{{Name: "send_sms", Arguments: `{"to":"+31612345678"}`}}}
	}}
	r, _ := newControlRig(t, Config{Tools: []Tool{{Spec: sms, Message: sentMsg, Async: true}}}, []string{"text me the address"}, chat, Deps{Tools: runner})
	rn := r.start(t, 12*time.Second)
	r.say(700*time.Millisecond, 0)
	waitFor(t, 10*time.Second, "the reply", func() bool { return r.hasLine("assistant: Sure. " + sentMsg) })
	select {
	case tc := <-called:
		if tc.Name != "send_sms" || tc.Arguments != `{"to":"+31612345678"}` {
			t.Errorf("runner got %+v", tc)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the async tool was never run")
	}
	time.Sleep(300 * time.Millisecond)
	rn.stop()
	if n := len(r.oa.Requests()); n != 1 {
		t.Errorf("%d model requests, want 1: an async tool with a message ends the reply", n)
	}
	if texts := r.ttsTexts(); !slices.Contains(texts, sentMsg) {
		t.Errorf("TTS texts %q lack %q", texts, sentMsg)
	}
	if got := r.transcript(); !slices.Equal(got, []string{"user: text me the address", "assistant: Sure. " + sentMsg}) {
		t.Errorf("transcript %q", got)
	}
}

// TestToolAsyncOutlivesTheCall: hanging up while an asynchronous tool runs
// neither cancels it nor holds up the end of the call; Background waits
// for it.
func TestToolAsyncOutlivesTheCall(t *testing.T) {
	t.Parallel()
	started, release := make(chan struct{}), make(chan struct{})
	var ctxErr error
	runner := toolFunc(func(ctx context.Context, tc llm.ToolCall) string {
		close(started)
		select {
		case <-release:
		case <-ctx.Done():
		}
		ctxErr = ctx.Err()
		return `{"status":"sent"}`
	})
	sms := llm.ToolSpec{Name: "send_sms", Description: "Text the caller.", Parameters: json.RawMessage(`{"type":"object"}`)}
	chat := openaifake.Config{Replies: []openaifake.Reply{{Text: "Sure.", ToolCalls: []llm.ToolCall{{Name: "send_sms", Arguments: `{}`}}}}}
	r, _ := newControlRig(t, Config{Tools: []Tool{{Spec: sms, Message: "Sending it now.", Async: true}}}, []string{"text me the address"}, chat, Deps{Tools: runner})
	rn := r.start(t, 12*time.Second)
	r.say(700*time.Millisecond, 0)
	select {
	case <-started:
	case <-time.After(8 * time.Second):
		t.Fatal("the async tool was never run")
	}
	hung := time.Now()
	rn.stop()
	if d := time.Since(hung); d > time.Second {
		t.Errorf("Run returned %s after the hang-up: it waited for the async tool", d)
	}
	waited := make(chan struct{})
	go func() { r.conv.Background(); close(waited) }()
	select {
	case <-waited:
		t.Fatal("Background returned while the tool was still running")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	select {
	case <-waited:
	case <-time.After(5 * time.Second):
		t.Fatal("Background did not return after the tool finished")
	}
	if ctxErr != nil {
		t.Errorf("the hang-up cancelled the async tool: %v", ctxErr)
	}
}

// TestToolsAlongsideEndCallStillRun: the model books and hangs up in one
// reply. The call ends as the model decided, without a further model round
// and without waiting for the booking, which still runs (detached).
func TestToolsAlongsideEndCallStillRun(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	called := make(chan llm.ToolCall, 4)
	runner := toolFunc(func(ctx context.Context, tc llm.ToolCall) string {
		called <- tc
		select {
		case <-release:
		case <-ctx.Done():
		}
		return `{"status":"booked"}`
	})
	book := llm.ToolSpec{Name: "book_appointment", Description: "Book a visit.", Parameters: json.RawMessage(`{"type":"object"}`)}
	chat := openaifake.Config{Replies: []openaifake.Reply{{Text: "You are booked for Tuesday. Goodbye.", ToolCalls: []llm.ToolCall{
		{Name: "book_appointment", Arguments: `{"day":"tuesday"}`}, {Name: "end_call", Arguments: `{}`},
	}}}}
	r, _ := newControlRig(t, Config{EndCallTool: true, Tools: []Tool{{Spec: book}}}, []string{"book me for tuesday"}, chat, Deps{Tools: runner})
	rn := r.start(t, 12*time.Second)
	r.say(700*time.Millisecond, 0)
	if _, err := rn.wait(t, 10*time.Second); err != nil {
		t.Fatalf("Run error %v", err)
	}
	if r.end.Reason != call.EndAssistantHangup {
		t.Fatalf("Run = %+v, want assistant_hangup", r.end)
	}
	select {
	case tc := <-called:
		if tc.Name != "book_appointment" || tc.Arguments != `{"day":"tuesday"}` {
			t.Errorf("runner got %+v", tc)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the booking called alongside end_call was dropped")
	}
	if n := len(r.oa.Requests()); n != 1 {
		t.Errorf("%d model requests, want 1", n)
	}
	close(release)
	r.conv.Background()
}

func TestToolNotAvailable(t *testing.T) {
	t.Parallel()
	calls := 0
	var mu sync.Mutex
	runner := toolFunc(func(context.Context, llm.ToolCall) string {
		mu.Lock()
		calls++
		mu.Unlock()
		return `{}`
	})
	chat := toolThenText([]llm.ToolCall{{ID: "call_rockets", Name: "launch_rockets", Arguments: `{}`}}, "Sorry, I can't do that.")
	r, _ := newControlRig(t, Config{Tools: []Tool{{Spec: lookupOrder}}}, []string{"launch the rockets"}, chat, Deps{Tools: runner})
	rn := r.start(t, 12*time.Second)
	r.say(700*time.Millisecond, 0)
	waitFor(t, 10*time.Second, "the reply", func() bool { return r.hasLine("assistant: Sorry, I can't do that.") })
	rn.stop()
	reqs := r.oa.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d model requests, want 2", len(reqs))
	}
	res := lastMessage(reqs[1])
	var out map[string]string
	if res.Role != llm.Tool || res.ToolCallID != "call_rockets" || json.Unmarshal([]byte(res.Content), &out) != nil || !strings.Contains(out["error"], "not available") {
		t.Errorf("tool result %+v, want an error saying the tool is not available", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if calls != 0 {
		t.Errorf("the runner was called %d times for an unknown tool", calls)
	}
}

func TestControlUnknownCommand(t *testing.T) {
	t.Parallel()
	r := newRig(t, Config{}, nil, openaifake.Config{})
	rn := r.start(t, 5*time.Second)
	err := control(r, call.Command{Type: "dance"})
	if err == nil || errors.Is(err, ErrEnding) {
		t.Fatalf("Control(dance) = %v, want an unknown-command error", err)
	}
	time.Sleep(200 * time.Millisecond)
	if rn.returned() {
		t.Fatalf("Run returned %q after an unknown command", rn.reason)
	}
	// The call still takes commands.
	if err := control(r, call.Command{Type: call.CmdEndCall}); err != nil {
		t.Fatalf("Control(end-call) = %v", err)
	}
	if reason, _ := rn.wait(t, time.Second); reason != call.EndAPIRequest {
		t.Fatalf("Run = %q", reason)
	}
}
