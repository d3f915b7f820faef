package openai

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

const rtKey = "sk-test-realtime-key"

// rtServe starts the fake behind an httptest.Server and returns the
// websocket URL of a path below it.
func rtServe(t *testing.T, cfg openaifake.RealtimeConfig) (*openaifake.RealtimeServer, string) {
	t.Helper()
	fake := openaifake.NewRealtime(cfg)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { _ = fake.Close() })
	return fake, "ws" + strings.TrimPrefix(srv.URL, "http") + "/v1/realtime"
}

// rtPump reads a session's events in the background.
type rtPump struct {
	ch   chan realtime.Event
	err  error
	done chan struct{}
}

func rtConnect(t *testing.T, url string, cfg realtime.Config) (realtime.Session, *rtPump) {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = rtKey
	}
	s, err := NewRealtime(RealtimeConfig{URL: url, DialTimeout: 5 * time.Second}).Connect(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	p := &rtPump{ch: make(chan realtime.Event, 1024), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		for {
			ev, err := s.Recv()
			if err != nil {
				p.err = err
				close(p.ch)
				return
			}
			p.ch <- ev
		}
	}()
	t.Cleanup(func() {
		_ = s.Close()
		<-p.done
	})
	return s, p
}

// until returns the first event of type typ and the events before it.
func (p *rtPump) until(t *testing.T, typ realtime.EventType) (realtime.Event, []realtime.Event) {
	t.Helper()
	var seen []realtime.Event
	timeout := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-p.ch:
			if !ok {
				t.Fatalf("session ended waiting for %v: %v (seen %v)", typ, p.err, types(seen))
			}
			if ev.Type == typ {
				return ev, seen
			}
			seen = append(seen, ev)
		case <-timeout:
			t.Fatalf("no %v within 10s (seen %v)", typ, types(seen))
		}
	}
}

// end waits for the session to end and returns Recv's error.
func (p *rtPump) end(t *testing.T, within time.Duration) error {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case _, ok := <-p.ch:
			if !ok {
				return p.err
			}
		case <-timeout:
			t.Fatalf("the session did not end within %v", within)
		}
	}
}

func types(evs []realtime.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Type.String()
	}
	return out
}

// rtSpeak sends an utterance: silence, Synth's tone for text, silence
// long enough to end the turn, in 20 ms frames.
func rtSpeak(t *testing.T, s realtime.Session, text string) {
	t.Helper()
	pcm := append(make([]int16, 1600), realtimefake.Synth(text, 8000)...)
	pcm = append(pcm, make([]int16, 6400)...)
	for len(pcm) > 0 {
		n := min(160, len(pcm))
		if err := s.SendAudio(pcm[:n]); err != nil {
			t.Fatalf("SendAudio: %v", err)
		}
		pcm = pcm[n:]
	}
}

// rtEventually polls f for up to 5 s.
func rtEventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if f() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

func rms(pcm []int16) float64 {
	var sum float64
	for _, s := range pcm {
		sum += float64(s) * float64(s)
	}
	return math.Sqrt(sum / float64(max(len(pcm), 1)))
}

func TestRealtimeSessionConfig(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{APIKey: rtKey})
	temp := 0.6
	rtConnect(t, url, realtime.Config{
		Model:           "gpt-live-1",
		Instructions:    "Be brief.",
		Voice:           "cinder",
		Temperature:     &temp,
		MaxOutputTokens: 500,
		Speed:           1.2,
		Language:        "de",
		Keyterms:        []string{"Parley"},
		Tools:           []llm.ToolSpec{{Name: "end_call", Description: "Hang up."}},
		Turn:            realtime.TurnDetection{Threshold: 0.7, PrefixPadding: 300 * time.Millisecond, Silence: 400 * time.Millisecond, IdleTimeout: 8 * time.Second},
		Delegation:      &realtime.Delegation{Model: "gpt-5.6-luna"},
	})
	recs := fake.Sessions()
	if len(recs) != 1 || recs[0].Updates != 1 || recs[0].Rejected != 0 {
		t.Fatalf("sessions = %+v", recs)
	}
	if m := recs[0].Query.Get("model"); m != "gpt-live-1" || recs[0].Path != "/v1/realtime" {
		t.Errorf("dialled %s?model=%s", recs[0].Path, m)
	}
	var got struct {
		Type             string
		Model            string
		Instructions     string
		OutputModalities []string `json:"output_modalities"`
		Audio            struct {
			Input struct {
				Format        struct{ Type string }
				TurnDetection map[string]any `json:"turn_detection"`
				Transcription struct{ Model, Language, Prompt string }
			}
			Output struct {
				Format struct{ Type string }
				Voice  string
				Speed  float64
			}
		}
		Tools           []map[string]any
		ToolChoice      string   `json:"tool_choice"`
		Temperature     *float64 `json:"temperature"`
		MaxOutputTokens int      `json:"max_output_tokens"`
		Delegation      struct {
			Type      string
			Responses struct{ Model string }
		}
	}
	if err := json.Unmarshal(recs[0].Session, &got); err != nil {
		t.Fatal(err)
	}
	in, out := got.Audio.Input, got.Audio.Output
	if got.Type != "realtime" || got.Model != "gpt-live-1" || got.Instructions != "Be brief." || len(got.OutputModalities) != 1 {
		t.Errorf("session = %s", recs[0].Session)
	}
	if in.Format.Type != "audio/pcmu" || out.Format.Type != "audio/pcmu" || out.Voice != "cinder" || out.Speed != 1.2 {
		t.Errorf("audio = %+v", got.Audio)
	}
	td := in.TurnDetection
	if td["type"] != "server_vad" || td["threshold"] != 0.7 || td["prefix_padding_ms"] != 300.0 || td["silence_duration_ms"] != 400.0 ||
		td["idle_timeout_ms"] != 8000.0 || td["create_response"] != true || td["interrupt_response"] != true {
		t.Errorf("turn_detection = %v", td)
	}
	if in.Transcription.Model != RealtimeTranscriptionModel || in.Transcription.Language != "de" || !strings.Contains(in.Transcription.Prompt, "Parley") {
		t.Errorf("transcription = %+v", in.Transcription)
	}
	if len(got.Tools) != 1 || got.Tools[0]["type"] != "function" || got.Tools[0]["name"] != "end_call" || got.Tools[0]["parameters"] == nil || got.ToolChoice != "auto" {
		t.Errorf("tools = %v, tool_choice %q", got.Tools, got.ToolChoice)
	}
	if got.Temperature == nil || *got.Temperature != 0.6 || got.MaxOutputTokens != 500 {
		t.Errorf("temperature %v, max_output_tokens %d", got.Temperature, got.MaxOutputTokens)
	}
	if got.Delegation.Type != "responses" || got.Delegation.Responses.Model != "gpt-5.6-luna" {
		t.Errorf("delegation = %+v", got.Delegation)
	}
}

func TestRealtimeSpokenTurn(t *testing.T) {
	script := realtimefake.Script{Transcripts: []string{"what are your hours"}, Replies: map[string]string{"hours": "We open at nine."}}
	_, url := rtServe(t, openaifake.RealtimeConfig{Script: script})
	s, p := rtConnect(t, url, realtime.Config{})
	rtSpeak(t, s, "what are your hours")
	p.until(t, realtime.SpeechStarted)
	p.until(t, realtime.SpeechStopped)
	if ev, _ := p.until(t, realtime.UserTranscript); ev.Text != "what are your hours" {
		t.Errorf("user transcript %q", ev.Text)
	}
	done, before := p.until(t, realtime.ResponseDone)
	var pcm []int16
	var item string
	for _, ev := range before {
		if ev.Type == realtime.Audio {
			pcm = append(pcm, ev.Audio...)
			if ev.ItemID == "" || (item != "" && ev.ItemID != item) {
				t.Errorf("audio item ids %q, %q", item, ev.ItemID)
			}
			item = ev.ItemID
		}
	}
	if want := int(realtimefake.SynthDuration("We open at nine.").Seconds() * 8000); len(pcm) != want || rms(pcm) < 2000 {
		t.Errorf("audio: %d samples (want %d), rms %.0f", len(pcm), want, rms(pcm))
	}
	if done.Text != "We open at nine." || done.Cancelled {
		t.Errorf("response done %+v", done)
	}
}

func TestRealtimeBargeIn(t *testing.T) {
	reply := strings.Repeat("This is a long answer. ", 4)
	fake, url := rtServe(t, openaifake.RealtimeConfig{ChunkInterval: 20 * time.Millisecond,
		Script: realtimefake.Script{Transcripts: []string{"first", "stop"}, Replies: map[string]string{"first": reply}}})
	s, p := rtConnect(t, url, realtime.Config{})
	rtSpeak(t, s, "first turn")
	audio, _ := p.until(t, realtime.Audio)
	rtSpeak(t, s, "stop")
	p.until(t, realtime.SpeechStarted)
	done, _ := p.until(t, realtime.ResponseDone)
	if !done.Cancelled || done.Text != strings.TrimSpace(reply) {
		t.Errorf("response done %+v, want cancelled with the whole transcript", done)
	}
	if err := s.Truncate(context.Background(), audio.ItemID, 1234*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	rtEventually(t, "the truncate", func() bool { return len(fake.Sessions()[0].Truncates) == 1 })
	if tr := fake.Sessions()[0].Truncates[0]; tr != (openaifake.RealtimeTruncate{ItemID: audio.ItemID, AudioEndMs: 1234}) {
		t.Errorf("truncate = %+v", tr)
	}
	// The second utterance gets its answer.
	if ev, _ := p.until(t, realtime.UserTranscript); ev.Text != "stop" {
		t.Errorf("transcript %q", ev.Text)
	}
	if done, _ := p.until(t, realtime.ResponseDone); done.Cancelled || done.Text != "You said: stop." {
		t.Errorf("second response %+v", done)
	}
	if rec := fake.Sessions()[0]; rec.Cancelled != 1 || rec.Responses != 2 {
		t.Errorf("fake saw %d responses, %d cancelled", rec.Responses, rec.Cancelled)
	}
}

func TestRealtimeToolRoundTrip(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{Script: realtimefake.Script{
		Transcripts: []string{"weather in Paris"},
		Tools:       []realtimefake.ToolTrigger{{Trigger: "weather", Name: "get_weather", Arguments: `{"city":"Paris"}`}},
	}})
	s, p := rtConnect(t, url, realtime.Config{Tools: []llm.ToolSpec{{Name: "get_weather"}}})
	rtSpeak(t, s, "weather in Paris")
	ev, _ := p.until(t, realtime.ToolCalls)
	if len(ev.Calls) != 1 || ev.Calls[0].Name != "get_weather" || ev.Calls[0].Arguments != `{"city":"Paris"}` || ev.Calls[0].ID == "" {
		t.Fatalf("calls = %+v", ev.Calls)
	}
	// The calls end their response: no ResponseDone of its own follows
	// (the next one is the answer after the results).
	err := s.ToolResults(context.Background(), []realtime.ToolResult{{CallID: ev.Calls[0].ID, Name: "get_weather", Output: `{"sky":"sunny"}`}})
	if err != nil {
		t.Fatal(err)
	}
	done, _ := p.until(t, realtime.ResponseDone)
	if want := (&realtimefake.Script{}).AfterTool("get_weather", `{"sky":"sunny"}`); done.Text != want {
		t.Errorf("after the tool: %q, want %q", done.Text, want)
	}
	rec := fake.Sessions()[0]
	if len(rec.ToolOutputs) != 1 || rec.ToolOutputs[0].CallID != ev.Calls[0].ID || len(rec.ResponseCreates) != 1 || rec.ResponseCreates[0] != "" {
		t.Errorf("fake got outputs %+v, response.create %q", rec.ToolOutputs, rec.ResponseCreates)
	}
}

func TestRealtimeRespondVerbatimAndAddMessage(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{})
	s, p := rtConnect(t, url, realtime.Config{})
	ctx := context.Background()
	if err := s.AddMessage(ctx, llm.User, "My name is Ada."); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMessage(ctx, llm.System, "The caller is a VIP."); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMessage(ctx, llm.Assistant, "x"); err == nil {
		t.Error("AddMessage(assistant) succeeded")
	}
	if err := s.Respond(ctx, realtime.Verbatim("Welcome to Parley.")); err != nil {
		t.Fatal(err)
	}
	done, before := p.until(t, realtime.ResponseDone)
	if done.Text != "Welcome to Parley." || len(before) == 0 || before[0].Type != realtime.Audio {
		t.Errorf("response %+v after %v", done, types(before))
	}
	if err := s.Respond(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if done, _ := p.until(t, realtime.ResponseDone); done.Text != "How can I help?" {
		t.Errorf("greeting %q", done.Text)
	}
	rec := fake.Sessions()[0]
	want := []openaifake.RealtimeMessage{{Role: "user", Text: "My name is Ada."}, {Role: "system", Text: "The caller is a VIP."}}
	if len(rec.Messages) != 2 || rec.Messages[0] != want[0] || rec.Messages[1] != want[1] {
		t.Errorf("messages = %+v", rec.Messages)
	}
	if len(rec.ResponseCreates) != 2 || rec.ResponseCreates[0] != realtime.Verbatim("Welcome to Parley.") {
		t.Errorf("response.create instructions %q", rec.ResponseCreates)
	}
}

func TestRealtimeCancel(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{ChunkInterval: 20 * time.Millisecond})
	s, p := rtConnect(t, url, realtime.Config{})
	ctx := context.Background()
	if err := s.Cancel(ctx); err != nil {
		t.Fatalf("Cancel with no response: %v", err)
	}
	if err := s.Respond(ctx, realtime.Verbatim(strings.Repeat("long ", 20))); err != nil {
		t.Fatal(err)
	}
	p.until(t, realtime.Audio)
	if err := s.Cancel(ctx); err != nil {
		t.Fatal(err)
	}
	if done, _ := p.until(t, realtime.ResponseDone); !done.Cancelled {
		t.Errorf("response done %+v", done)
	}
	if rec := fake.Sessions()[0]; rec.Cancels != 1 {
		t.Errorf("fake got %d cancels", rec.Cancels)
	}
}

func TestRealtimeBetaEventNames(t *testing.T) {
	_, url := rtServe(t, openaifake.RealtimeConfig{BetaNames: true})
	s, p := rtConnect(t, url, realtime.Config{})
	if err := s.Respond(context.Background(), realtime.Verbatim("Hi.")); err != nil {
		t.Fatal(err)
	}
	done, before := p.until(t, realtime.ResponseDone)
	if done.Text != "Hi." || len(before) == 0 {
		t.Errorf("response %+v after %v", done, types(before))
	}
}

func TestRealtimeConnectRefused(t *testing.T) {
	_, url := rtServe(t, openaifake.RealtimeConfig{APIKey: rtKey})
	p := NewRealtime(RealtimeConfig{URL: url})
	ctx := context.Background()
	_, err := p.Connect(ctx, realtime.Config{APIKey: "sk-wrong-key"})
	var re *RealtimeError
	if !errors.As(err, &re) || !re.Unauthorized() || strings.Contains(err.Error(), "sk-wrong-key") || !strings.Contains(err.Error(), "OpenAI API key was rejected") {
		t.Errorf("bad key: %v", err)
	}
	if _, err := p.Connect(ctx, realtime.Config{}); err == nil || !strings.Contains(err.Error(), "no OpenAI API key") {
		t.Errorf("no key: %v", err)
	}
	_, err = p.Connect(ctx, realtime.Config{APIKey: rtKey, Voice: "nosuch"})
	if !errors.As(err, &re) || re.Param != "voice" || !strings.Contains(err.Error(), "configuring the session") {
		t.Errorf("bad voice: %v", err)
	}
	if _, err := NewRealtime(RealtimeConfig{URL: "ftp://x"}).Connect(ctx, realtime.Config{APIKey: rtKey}); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestRealtimeFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault openaifake.RealtimeFault
		check func(error) bool
	}{
		{"malformed", openaifake.FaultMalformed, func(err error) bool { return strings.Contains(err.Error(), "malformed server event") }},
		{"disconnect", openaifake.FaultDisconnect, func(err error) bool { return strings.Contains(err.Error(), "connection lost") }},
		{"close", openaifake.FaultClose, func(err error) bool {
			var re *RealtimeError
			return errors.As(err, &re) && re.CloseCode == 4000 && re.Message == "going away" && strings.Contains(err.Error(), "4000")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, url := rtServe(t, openaifake.RealtimeConfig{Fault: tc.fault, FaultAfter: 1, CloseCode: 4000, CloseReason: "going away", ChunkInterval: 10 * time.Millisecond})
			s, p := rtConnect(t, url, realtime.Config{})
			ctx := context.Background()
			if err := s.Respond(ctx, realtime.Verbatim("one")); err != nil {
				t.Fatal(err)
			}
			p.until(t, realtime.ResponseDone)
			if err := s.Respond(ctx, realtime.Verbatim("two, which breaks")); err != nil {
				t.Fatal(err)
			}
			err := p.end(t, 3*time.Second)
			if err == nil || errors.Is(err, io.EOF) || !tc.check(err) {
				t.Fatalf("Recv ended with %v", err)
			}
			if err := s.SendAudio(make([]int16, 160)); err == nil {
				t.Error("SendAudio after the end succeeded")
			}
			if err := s.Respond(ctx, ""); err == nil {
				t.Error("Respond after the end succeeded")
			}
		})
	}
}

func TestRealtimeErrorEventIsWarning(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{})
	s, p := rtConnect(t, url, realtime.Config{})
	fake.Strike(openaifake.FaultErrorEvent)
	if ev, _ := p.until(t, realtime.Warning); !strings.Contains(ev.Text, "fake failure") || !strings.Contains(ev.Text, "fake_failure") {
		t.Errorf("warning %q", ev.Text)
	}
	if err := s.Respond(context.Background(), realtime.Verbatim("still here")); err != nil {
		t.Fatal(err)
	}
	if done, _ := p.until(t, realtime.ResponseDone); done.Text != "still here" {
		t.Errorf("response %+v", done)
	}
}

func TestRealtimeClose(t *testing.T) {
	fake, url := rtServe(t, openaifake.RealtimeConfig{})
	s, err := NewRealtime(RealtimeConfig{URL: url}).Connect(context.Background(), realtime.Config{APIKey: rtKey})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SendAudio(make([]int16, 800)); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	_ = s.Close()
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after Close: %v", err)
	}
	if err := s.SendAudio(make([]int16, 160)); err == nil {
		t.Error("SendAudio after Close succeeded")
	}
	rtEventually(t, "the fake to see the close", func() bool { return fake.Sessions()[0].Closed })
}

func TestRealtimeContextEndsSession(t *testing.T) {
	_, url := rtServe(t, openaifake.RealtimeConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewRealtime(RealtimeConfig{URL: url}).Connect(ctx, realtime.Config{APIKey: rtKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after cancel: %v", err)
	}
}

func TestRealtimeSetupClosed(t *testing.T) {
	srv := httptest.NewServer(websocketCloser{})
	defer srv.Close()
	_, err := NewRealtime(RealtimeConfig{URL: "ws" + strings.TrimPrefix(srv.URL, "http")}).Connect(context.Background(), realtime.Config{APIKey: rtKey})
	var re *RealtimeError
	if !errors.As(err, &re) || re.CloseCode != 4001 || !strings.Contains(err.Error(), "configuring the session") {
		t.Errorf("Connect = %v", err)
	}
}

// websocketCloser accepts and closes at once with 4001.
type websocketCloser struct{}

func (websocketCloser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	_ = c.Close(4001, "no session for you")
}

func TestRealtimeSetupTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			if _, _, err := c.Read(r.Context()); err != nil {
				return // never answers session.update
			}
		}
	}))
	defer srv.Close()
	start := time.Now()
	_, err := NewRealtime(RealtimeConfig{URL: srv.URL, DialTimeout: 200 * time.Millisecond}).Connect(context.Background(), realtime.Config{APIKey: rtKey})
	if err == nil || !strings.Contains(err.Error(), "waiting for session.updated: timed out") {
		t.Errorf("Connect = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestRealtimeAudioQueueDropsOldest(t *testing.T) {
	s := &rtSession{d: &RealtimeDialect{Name: "openai"}, log: slog.New(slog.DiscardHandler), wake: make(chan struct{}, 1), over: make(chan struct{})}
	pcm := make([]int16, rtQueueSamples+500)
	for i := range pcm {
		pcm[i] = int16(i % 30000)
	}
	if err := s.SendAudio(pcm[:1000]); err != nil {
		t.Fatal(err)
	}
	if err := s.SendAudio(pcm[1000:]); err != nil {
		t.Fatal(err)
	}
	if s.queued() != rtQueueSamples || s.dropped != 500 {
		t.Fatalf("queued %d, dropped %d", s.queued(), s.dropped)
	}
	got := s.take(rtMaxAppend)
	if len(got) != rtMaxAppend || got[0] != pcm[500] {
		t.Errorf("took %d samples starting with %d, want %d", len(got), got[0], pcm[500])
	}
	s.closed.Store(true)
	if err := s.SendAudio(pcm[:10]); err == nil {
		t.Error("SendAudio after close succeeded")
	}
}
