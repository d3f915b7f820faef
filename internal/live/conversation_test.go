package live

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/silence"
)

func TestFirstMessageAndTurn(t *testing.T) {
	r := newRig(t, Config{FirstMessage: "Hello, Parley here."}, Deps{})
	if got := r.s.waitRequest(t, "respond:"); got != "respond:"+realtime.Verbatim("Hello, Parley here.") {
		t.Fatalf("first request %q, want the first message verbatim", got)
	}
	r.s.speak("first", 400*time.Millisecond, "Hello, Parley here.")
	r.rec.waitMessage(t, llm.Assistant, "Parley here")

	// The caller's turn, then the model's answer.
	r.s.emit(realtime.Event{Type: realtime.SpeechStarted})
	r.s.emit(realtime.Event{Type: realtime.SpeechStopped})
	r.s.emit(realtime.Event{Type: realtime.UserTranscript, Text: "what are your hours"})
	time.Sleep(30 * time.Millisecond)
	r.s.speak("a1", 300*time.Millisecond, "Nine to five.")
	r.rec.waitMessage(t, llm.Assistant, "Nine to five.")
	msgs := r.rec.messages()
	if len(msgs) != 3 || msgs[1].Role != llm.User || msgs[1].Content != "what are your hours" || msgs[2].Interrupted {
		t.Fatalf("transcript %+v", msgs)
	}
	r.rec.mu.Lock()
	turns := append([]pipeline.TurnMetrics(nil), r.rec.turns...)
	r.rec.mu.Unlock()
	if len(turns) != 1 {
		t.Fatalf("turn metrics %+v, want one (the first message is no turn)", turns)
	}
	m := turns[0]
	if m.Turn != 1 || m.LLMFirstToken < 25*time.Millisecond || m.FirstPacket < m.LLMFirstToken || m.FinalToFirstPacket <= 0 || m.FinalToFirstPacket > 200*time.Millisecond {
		t.Errorf("turn metrics %+v: want provider latency ≥ 25ms, first packet after it, platform latency > 0", m)
	}
	if len(r.p.config().Tools) != 0 {
		t.Errorf("tools offered %+v, want none", r.p.config().Tools)
	}
}

func TestBargeInTruncatesAtTheHeardPosition(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	r.s.emit(realtime.Event{Type: realtime.SpeechStopped})
	r.s.speak("long", 3*time.Second, "one two three four five six seven eight nine ten")
	r.waitFrames(25) // 500 ms heard
	r.s.emit(realtime.Event{Type: realtime.SpeechStarted})
	got := r.s.waitRequest(t, "truncate:")
	parts := strings.Split(got, ":")
	ms, _ := strconv.Atoi(parts[2])
	if parts[1] != "long" || ms < 500 || ms > 700 {
		t.Fatalf("%q: want item long truncated at about 500 ms", got)
	}
	m := r.rec.waitMessage(t, llm.Assistant, "one")
	if !m.Interrupted || strings.Contains(m.Content, "ten") {
		t.Errorf("assistant message %+v: want interrupted, only what was heard", m)
	}
	before := r.frames()
	time.Sleep(100 * time.Millisecond)
	if after := r.frames(); after > before+1 {
		t.Errorf("audio went on after the barge-in: %d more frames", after-before)
	}
	for _, req := range r.s.all() {
		if req == "cancel" {
			t.Error("cancelled a response that had ended")
		}
	}
}

func TestBargeInDuringAnOpenResponse(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	for range 10 { // 1 s of audio, response still open
		r.s.emit(realtime.Event{Type: realtime.Audio, ItemID: "x", Audio: make([]int16, 800)})
	}
	r.waitFrames(10)
	r.s.emit(realtime.Event{Type: realtime.SpeechStarted})
	r.s.waitRequest(t, "cancel")
	// Audio of the cancelled item still in flight is not played.
	played := r.frames()
	r.s.emit(realtime.Event{Type: realtime.Audio, ItemID: "x", Audio: make([]int16, 8000)})
	r.s.emit(realtime.Event{Type: realtime.ResponseDone, Text: "alpha beta gamma delta epsilon zeta eta theta", Cancelled: true})
	m := r.rec.waitMessage(t, llm.Assistant, "alpha")
	if !m.Interrupted || strings.Contains(m.Content, "theta") {
		t.Errorf("assistant message %+v: want the heard part only", m)
	}
	time.Sleep(100 * time.Millisecond)
	if r.frames() > played+1 {
		t.Errorf("the cancelled item's late audio was played")
	}
}

func TestToolRoundTrip(t *testing.T) {
	run := &runner{}
	book := pipeline.Tool{Spec: llm.ToolSpec{Name: "book", Parameters: []byte(`{"type":"object"}`)}}
	r := newRig(t, Config{Tools: []pipeline.Tool{book}, EndCallTool: true}, Deps{Tools: run})
	r.s.emit(realtime.Event{Type: realtime.SpeechStopped})
	r.s.emit(realtime.Event{Type: realtime.ToolCalls, Text: "Let me book that.", Calls: []llm.ToolCall{{ID: "c1", Name: "book", Arguments: `{"day":"tue"}`}}})
	if got := r.s.waitRequest(t, "results:"); got != `results:book={"booked":true}` {
		t.Fatalf("tool results %q", got)
	}
	r.s.speak("after", 200*time.Millisecond, "You are booked.")
	m := r.rec.waitMessage(t, llm.Assistant, "booked")
	if m.Content != "Let me book that. You are booked." {
		t.Errorf("assistant message %q: want both responses as one reply", m.Content)
	}
	names := []string{}
	for _, s := range r.p.config().Tools {
		names = append(names, s.Name)
	}
	if strings.Join(names, ",") != "book,end_call" {
		t.Errorf("tools offered %v, want book and end_call", names)
	}
}

func TestEndCallToolHangsUpAfterTheGoodbye(t *testing.T) {
	r := newRig(t, Config{EndCallTool: true}, Deps{})
	r.s.emit(realtime.Event{Type: realtime.Audio, ItemID: "bye", Audio: make([]int16, 2400)})
	r.s.emit(realtime.Event{Type: realtime.ToolCalls, Text: "Goodbye!", Calls: []llm.ToolCall{{ID: "c", Name: "end_call", Arguments: "{}"}}})
	end, err := r.wait()
	if end.Reason != call.EndAssistantHangup || err != nil {
		t.Fatalf("ending %+v, %v", end, err)
	}
	if r.frames() < 14 {
		t.Errorf("hung up after %d frames, before the 300 ms goodbye played", r.frames())
	}
}

func TestTransferToolSaysItsMessage(t *testing.T) {
	cfg := Config{Transfers: []pipeline.TransferDestination{{Number: "+3120", Description: "sales", Message: "Connecting you to sales."}}}
	r := newRig(t, cfg, Deps{})
	r.s.emit(realtime.Event{Type: realtime.ToolCalls, Calls: []llm.ToolCall{{ID: "c", Name: "transfer_call", Arguments: `{"destination":"+3120"}`}}})
	if got := r.s.waitRequest(t, "respond:"); got != "respond:"+realtime.Verbatim("Connecting you to sales.") {
		t.Fatalf("request %q", got)
	}
	r.s.emit(realtime.Event{Type: realtime.SpeechStarted}) // not interruptible now
	r.s.speak("t", 200*time.Millisecond, "Connecting you to sales.")
	end, _ := r.wait()
	if end.Reason != call.EndTransferred || end.TransferTo != "+3120" {
		t.Fatalf("ending %+v", end)
	}
}

func TestControl(t *testing.T) {
	ctx := context.Background()
	t.Run("say preempts and speaks verbatim", func(t *testing.T) {
		r := newRig(t, Config{}, Deps{})
		for range 20 {
			r.s.emit(realtime.Event{Type: realtime.Audio, ItemID: "a", Audio: make([]int16, 800)})
		}
		r.waitFrames(5)
		start := time.Now()
		if err := r.conv.Control(ctx, call.Command{Type: call.CmdSay, Content: "Please hold."}); err != nil {
			t.Fatal(err)
		}
		r.s.waitRequest(t, "respond:"+realtime.Verbatim("Please hold."))
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Errorf("say reached the service after %v", d)
		}
		r.s.waitRequest(t, "truncate:a:")
		r.s.waitRequest(t, "cancel")
	})
	t.Run("inject context with a response", func(t *testing.T) {
		r := newRig(t, Config{}, Deps{})
		if err := r.conv.Control(ctx, call.Command{Type: call.CmdInjectContext, Content: "VIP caller", TriggerResponse: true}); err != nil {
			t.Fatal(err)
		}
		r.s.waitRequest(t, "add:system:VIP caller")
		r.s.waitRequest(t, "respond:")
		r.rec.waitMessage(t, llm.System, "VIP caller")
	})
	t.Run("end-call with a message", func(t *testing.T) {
		r := newRig(t, Config{}, Deps{})
		if err := r.conv.Control(ctx, call.Command{Type: call.CmdEndCall, Message: "Bye now."}); err != nil {
			t.Fatal(err)
		}
		r.s.waitRequest(t, "respond:"+realtime.Verbatim("Bye now."))
		if err := r.conv.Control(ctx, call.Command{Type: call.CmdSay, Content: "x"}); !errors.Is(err, pipeline.ErrEnding) {
			t.Errorf("a command while ending: %v, want ErrEnding", err)
		}
		r.s.speak("b", 200*time.Millisecond, "Bye now.")
		if end, _ := r.wait(); end.Reason != call.EndAPIRequest {
			t.Fatalf("ending %+v", end)
		}
	})
	t.Run("a goodbye the model never says is bounded", func(t *testing.T) {
		r := newRig(t, Config{CloseWait: 300 * time.Millisecond}, Deps{})
		if err := r.conv.Control(ctx, call.Command{Type: call.CmdTransfer, Destination: "+3199", Message: "One moment."}); err != nil {
			t.Fatal(err)
		}
		end, _ := r.wait()
		if end.Reason != call.EndTransferred || end.TransferTo != "+3199" {
			t.Fatalf("ending %+v", end)
		}
	})
}

func TestSessionFailureApologises(t *testing.T) {
	voice := &fakeTTS{}
	r := newRig(t, Config{Apology: "Sorry, goodbye."}, Deps{Apology: voice})
	r.s.emit(realtime.Event{Type: realtime.Audio, ItemID: "a", Audio: make([]int16, 8000)})
	r.waitFrames(3)
	r.s.fail <- errors.New("websocket closed: 1011 internal error")
	end, err := r.wait()
	if end.Reason != call.EndLLMError || err == nil || !strings.Contains(err.Error(), "1011") {
		t.Fatalf("ending %+v, %v", end, err)
	}
	if len(voice.said) != 1 || voice.said[0] != "Sorry, goodbye." {
		t.Errorf("apology spoken: %q", voice.said)
	}
	if r.frames() < 3+30 {
		t.Errorf("only %d frames played: the apology (0.75 s) was not heard", r.frames())
	}
	r.rec.waitMessage(t, llm.Assistant, "Sorry, goodbye.")
}

func TestConnectFailure(t *testing.T) {
	voice := &fakeTTS{}
	p := &fakeProvider{err: errors.New("realtime: 401 invalid key")}
	r := newRig(t, Config{}, Deps{Provider: p, Apology: voice})
	end, err := r.wait()
	if end.Reason != call.EndLLMError || err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("ending %+v, %v", end, err)
	}
	if len(voice.said) != 1 {
		t.Errorf("apology spoken %q", voice.said)
	}
}

func TestKeypad(t *testing.T) {
	r := newRig(t, Config{}, Deps{})
	for _, d := range "12#" {
		r.conv.DTMF(d)
	}
	r.s.waitRequest(t, "add:user:[keypad] 12#")
	r.s.waitRequest(t, "respond:")
	r.rec.waitMessage(t, llm.User, "[keypad] 12#")
}

func TestSilence(t *testing.T) {
	cfg := Config{Silence: &silence.Config{FirstCheck: 100 * time.Millisecond, Interval: 100 * time.Millisecond, MaxAttempts: 2}}
	r := newRig(t, cfg, Deps{})
	if got := r.s.waitRequest(t, "respond:"); got != "respond:"+pipeline.SilenceCheckPrompt {
		t.Fatalf("first silence request %q", got)
	}
	r.s.speak("c", 200*time.Millisecond, "Are you there?")
	r.rec.waitMessage(t, llm.Assistant, "Are you there?")
	r.s.waitRequest(t, "respond:"+pipeline.SilenceFinalPrompt)
	r.s.speak("f", 200*time.Millisecond, "Goodbye.")
	if end, _ := r.wait(); end.Reason != call.EndSilenceTimedOut {
		t.Fatalf("ending %+v", end)
	}
}

func TestMaxDuration(t *testing.T) {
	r := newRig(t, Config{MaxDuration: 150 * time.Millisecond}, Deps{})
	if end, _ := r.wait(); end.Reason != call.EndMaxDuration {
		t.Fatalf("ending %+v", end)
	}
	r.s.mu.Lock()
	defer r.s.mu.Unlock()
	if r.s.audio == 0 {
		t.Error("the caller's audio never reached the session")
	}
}

func TestConnectFailureWithoutAVoice(t *testing.T) {
	p := &fakeProvider{err: errors.New("realtime: 401 invalid key")}
	r := newRig(t, Config{}, Deps{Provider: p})
	end, err := r.wait()
	if end.Reason != call.EndLLMError || err == nil {
		t.Fatalf("ending %+v, %v: want llm_error at once", end, err)
	}
}

func TestInterruptedBeforeItsFirstAudio(t *testing.T) {
	r := newRig(t, Config{FirstMessage: "Welcome to the longest greeting."}, Deps{})
	r.s.waitRequest(t, "respond:")
	r.s.emit(realtime.Event{Type: realtime.SpeechStarted}) // the caller talks first
	r.s.waitRequest(t, "cancel")
	// The cancelled response's audio still arrives, then its end.
	r.s.speak("g", 500*time.Millisecond, "Welcome to the")
	time.Sleep(150 * time.Millisecond)
	if n := r.frames(); n != 0 {
		t.Fatalf("%d frames of the cancelled greeting were played", n)
	}
	// The answer to the caller plays as usual.
	r.s.emit(realtime.Event{Type: realtime.SpeechStopped})
	r.s.speak("a", 300*time.Millisecond, "Yes?")
	r.rec.waitMessage(t, llm.Assistant, "Yes?")
	if n := r.frames(); n < 14 {
		t.Errorf("the answer played %d frames, want its 300 ms", n)
	}
	for _, m := range r.rec.messages() {
		if strings.Contains(m.Content, "Welcome") {
			t.Errorf("the unheard greeting is in the transcript: %+v", m)
		}
	}
}

func TestInterruptedResponseEndingInToolCalls(t *testing.T) {
	run := &runner{}
	book := pipeline.Tool{Spec: llm.ToolSpec{Name: "book"}}
	r := newRig(t, Config{Tools: []pipeline.Tool{book}}, Deps{Tools: run})
	for range 10 {
		r.s.emit(realtime.Event{Type: realtime.Audio, ItemID: "x", Audio: make([]int16, 800)})
	}
	r.waitFrames(5)
	r.s.emit(realtime.Event{Type: realtime.SpeechStarted})
	r.s.emit(realtime.Event{Type: realtime.ToolCalls, Text: "Checking your booking now.", Calls: []llm.ToolCall{{ID: "c", Name: "book"}}})
	m := r.rec.waitMessage(t, llm.Assistant, "Checking")
	if !m.Interrupted {
		t.Errorf("%+v: want the interrupted reply", m)
	}
	r.s.emit(realtime.Event{Type: realtime.SpeechStopped})
	r.s.speak("n", 200*time.Millisecond, "Next answer.")
	if got := r.rec.waitMessage(t, llm.Assistant, "Next answer."); got.Content != "Next answer." || got.Interrupted {
		t.Errorf("next answer recorded as %+v", got)
	}
	time.Sleep(50 * time.Millisecond)
	run.mu.Lock()
	defer run.mu.Unlock()
	if len(run.calls) != 0 {
		t.Errorf("the interrupted response's tool calls ran: %+v", run.calls)
	}
}

func TestClosingPlaysNoNewAnswer(t *testing.T) {
	r := newRig(t, Config{EndCallTool: true}, Deps{})
	r.s.emit(realtime.Event{Type: realtime.Audio, ItemID: "bye", Audio: make([]int16, 4000)})
	r.s.emit(realtime.Event{Type: realtime.ToolCalls, Text: "Goodbye!", Calls: []llm.ToolCall{{ID: "c", Name: "end_call"}}})
	r.s.emit(realtime.Event{Type: realtime.SpeechStarted}) // "thanks", over the goodbye
	r.s.emit(realtime.Event{Type: realtime.SpeechStopped})
	r.s.speak("answer", 2*time.Second, "You're welcome, anything else?")
	end, _ := r.wait()
	if end.Reason != call.EndAssistantHangup {
		t.Fatalf("ending %+v", end)
	}
	if n := r.frames(); n > 30 {
		t.Errorf("%d frames played, want the 500 ms goodbye only", n)
	}
}

func TestCommandsWhileConnecting(t *testing.T) {
	s := newFakeSession()
	p := &fakeProvider{s: s, delay: 1500 * time.Millisecond}
	r := newRig(t, Config{FirstMessage: "Hello."}, Deps{Provider: p})
	// Within the connect: a command is taken, not timed out.
	if err := r.conv.Control(context.Background(), call.Command{Type: call.CmdInjectContext, Content: "note"}); err != nil {
		t.Fatalf("control while connecting: %v", err)
	}
	s.waitRequest(t, "add:system:note")
	if reqs := s.all(); len(reqs) != 2 || reqs[0] != "respond:"+realtime.Verbatim("Hello.") || reqs[1] != "add:system:note" {
		t.Errorf("requests %q: want the first message, then the command, in order", reqs)
	}
}

func TestFirstMessageEnds(t *testing.T) {
	r := newRig(t, Config{FirstMessage: "We are closed today.", FirstMessageEnds: true}, Deps{})
	if got := r.s.waitRequest(t, "respond:"); got != "respond:"+realtime.Verbatim("We are closed today.") {
		t.Fatalf("first request %q", got)
	}
	if err := r.conv.Control(context.Background(), call.Command{Type: call.CmdSay, Content: "x"}); !errors.Is(err, pipeline.ErrEnding) {
		t.Errorf("a command during the refusal: %v, want ErrEnding", err)
	}
	r.s.speak("c", 200*time.Millisecond, "We are closed today.")
	if end, _ := r.wait(); end.Reason != call.EndAssistantHangup {
		t.Fatalf("ending %+v, want the call ended after the first message", end)
	}
	if r.frames() < 9 {
		t.Errorf("%d frames played, want the whole message", r.frames())
	}
}
