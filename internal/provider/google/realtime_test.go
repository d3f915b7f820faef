package google

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/google/googlefake"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/realtime/realtimefake"
)

const studioKey = "AIza-studio"

// liveEnv is a Realtime pointed at a Live fake whose Vertex tokens come
// from a googlefake.Server trusting acct.
type liveEnv struct {
	p    *Realtime
	live *googlefake.Live
	acct *googlefake.Account
	// shutdown stops the fakes (also at the test's end).
	shutdown func()
}

func liveFixture(t *testing.T, script realtimefake.Script, opts ...func(*googlefake.LiveConfig)) *liveEnv {
	t.Helper()
	acct := account(t)
	tokenFake := googlefake.New(googlefake.Config{Account: acct, StudioKey: studioKey})
	tokenSrv := httptest.NewServer(tokenFake)
	cfg := googlefake.LiveConfig{Server: tokenFake, StudioKey: studioKey, Script: script}
	for _, o := range opts {
		o(&cfg)
	}
	live := googlefake.NewLive(cfg)
	liveSrv := httptest.NewServer(live)
	shutdown := sync.OnceFunc(func() {
		live.Close()
		liveSrv.Close()
		tokenSrv.Close()
	})
	t.Cleanup(shutdown)
	ws := "ws" + strings.TrimPrefix(liveSrv.URL, "http")
	p := NewRealtime(RealtimeConfig{StudioURL: ws, VertexURL: ws, TokenURL: tokenSrv.URL + googlefake.TokenPath, HTTPClient: tokenSrv.Client()})
	return &liveEnv{p: p, live: live, acct: acct, shutdown: shutdown}
}

// keys are the two kinds of key with a model each serves.
func (e *liveEnv) keys() []struct{ name, key, model, service string } {
	return []struct{ name, key, model, service string }{
		{"ai studio key", studioKey, LiveModelStudio31, "studio"},
		{"vertex service account", e.acct.JSON, LiveModelVertex, "vertex"},
	}
}

func (e *liveEnv) connect(t *testing.T, cfg realtime.Config) realtime.Session {
	t.Helper()
	s, err := e.p.Connect(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// line plays the caller's side of a call: 20 ms frames of 8 kHz audio,
// silence unless something was said, five times faster than real time.
type line struct {
	s     realtime.Session
	mu    sync.Mutex
	queue []int16
	stop  chan struct{}
	done  chan struct{}
}

func dial(t *testing.T, s realtime.Session) *line {
	l := &line{s: s, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		frame := realtime.SampleRate / 50
		tick := time.NewTicker(4 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-tick.C:
			}
			l.mu.Lock()
			pcm := make([]int16, frame)
			n := copy(pcm, l.queue)
			l.queue = l.queue[n:]
			l.mu.Unlock()
			if s.SendAudio(pcm) != nil {
				return
			}
		}
	}()
	t.Cleanup(l.hangUp)
	return l
}

// say queues an utterance lasting as long as text takes to speak.
func (l *line) say(text string) {
	l.mu.Lock()
	l.queue = append(l.queue, realtimefake.Synth(text, realtime.SampleRate)...)
	l.mu.Unlock()
}

func (l *line) hangUp() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	<-l.done
}

// events collects a session's events until Recv fails.
type events struct {
	ch  chan realtime.Event
	err chan error
}

func collect(s realtime.Session) *events {
	e := &events{ch: make(chan realtime.Event, 1024), err: make(chan error, 1)}
	go func() {
		for {
			ev, err := s.Recv()
			if err != nil {
				e.err <- err
				close(e.ch)
				return
			}
			e.ch <- ev
		}
	}()
	return e
}

// until returns the events up to and including the first of type typ.
func (e *events) until(t *testing.T, typ realtime.EventType) []realtime.Event {
	t.Helper()
	var got []realtime.Event
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-e.ch:
			if !ok {
				t.Fatalf("session ended before %v (%v); got %s", typ, <-e.err, summary(got))
			}
			got = append(got, ev)
			if ev.Type == typ {
				return got
			}
		case <-timeout:
			t.Fatalf("no %v within 15s; got %s", typ, summary(got))
		}
	}
}

// failure waits for Recv to fail.
func (e *events) failure(t *testing.T) error {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case _, ok := <-e.ch:
			if !ok {
				return <-e.err
			}
		case <-timeout:
			t.Fatal("the session did not fail within 15s")
		}
	}
}

func summary(evs []realtime.Event) string {
	var b strings.Builder
	for _, ev := range evs {
		b.WriteString(ev.Type.String())
		if ev.Text != "" {
			b.WriteString("(" + ev.Text + ")")
		}
		b.WriteString(" ")
	}
	return b.String()
}

// audioOf sums the Audio events of item.
func audioOf(evs []realtime.Event, item string) int {
	n := 0
	for _, ev := range evs {
		if ev.Type == realtime.Audio && ev.ItemID == item {
			n += len(ev.Audio)
		}
	}
	return n
}

func last(evs []realtime.Event) realtime.Event { return evs[len(evs)-1] }

// The setup on the wire for both keys: model path, voice, prompt, tools,
// VAD and transcription; URL path and auth per service.
func TestLiveSetup(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{})
	temp := 0.6
	params := json.RawMessage(`{"type":"object","properties":{"reason":{"type":"string"}}}`)
	for _, k := range e.keys() {
		t.Run(k.name, func(t *testing.T) {
			n := len(e.live.Sessions())
			s := e.connect(t, realtime.Config{Model: k.model, APIKey: k.key, Instructions: "Be brief.", Voice: "Kore",
				Temperature: &temp, MaxOutputTokens: 500,
				Tools: []llm.ToolSpec{{Name: "end_call", Description: "Hang up.", Parameters: params}, {Name: "ping"}},
				Turn:  realtime.TurnDetection{Threshold: 0.8, PrefixPadding: 300 * time.Millisecond, Silence: 400 * time.Millisecond}})
			s.Close()
			got := e.live.Sessions()[n]
			wantModel, wantPath := "models/"+k.model, LiveStudioPath
			if k.service == "vertex" {
				wantModel, wantPath = "projects/eu-voice-project/locations/"+DefaultLocation+"/publishers/google/models/"+k.model, LiveVertexPath
			}
			st := got.Setup
			switch {
			case got.Service != k.service || got.Path != wantPath:
				t.Errorf("service %q path %q, want %q %q", got.Service, got.Path, k.service, wantPath)
			case st.Model != wantModel:
				t.Errorf("model %q, want %q", st.Model, wantModel)
			case st.Voice != "Kore" || st.SystemInstruction != "Be brief." || len(st.Modalities) != 1 || st.Modalities[0] != "AUDIO":
				t.Errorf("voice %q, instruction %q, modalities %v", st.Voice, st.SystemInstruction, st.Modalities)
			case st.Temperature == nil || *st.Temperature != 0.6 || st.MaxOutputTokens != 500:
				t.Errorf("temperature %v, max tokens %d", st.Temperature, st.MaxOutputTokens)
			case len(st.Tools) != 2 || st.Tools[0].Name != "end_call" || st.Tools[0].Description != "Hang up." || st.Tools[0].Parameters != string(params) || st.Tools[1].Parameters != "":
				t.Errorf("tools %+v", st.Tools)
			case st.StartSensitivity != "START_SENSITIVITY_LOW" || st.EndSensitivity != "" || st.PrefixPaddingMs != 300 || st.SilenceDurationMs != 400:
				t.Errorf("vad %q %q %d %d", st.StartSensitivity, st.EndSensitivity, st.PrefixPaddingMs, st.SilenceDurationMs)
			case !st.InputTranscription || !st.OutputTranscription:
				t.Errorf("transcriptions %v %v", st.InputTranscription, st.OutputTranscription)
			case strings.Contains(got.SetupJSON, "mediaChunks"):
				t.Errorf("setup %s", got.SetupJSON)
			}
		})
	}
	t.Run("defaults and location", func(t *testing.T) {
		n := len(e.live.Sessions())
		e.connect(t, realtime.Config{APIKey: e.acct.JSON, Location: "europe-west1"}).Close()
		st := e.live.Sessions()[n].Setup
		if st.Model != "projects/eu-voice-project/locations/europe-west1/publishers/google/models/"+LiveModelVertex || st.Voice != DefaultLiveVoice {
			t.Errorf("model %q voice %q", st.Model, st.Voice)
		}
		if st.Temperature != nil || st.MaxOutputTokens != 0 || st.StartSensitivity != "" || st.SilenceDurationMs != 0 || len(st.Tools) != 0 {
			t.Errorf("unset fields were sent: %s", e.live.Sessions()[n].SetupJSON)
		}
	})
}

// A spoken turn: the transcript, then the answer's audio at 8 kHz under
// "turn-1", then ResponseDone with its text. The caller's audio goes in
// batches of at least 40 ms.
func TestLiveSpokenTurn(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{Transcripts: []string{"what time is it"}, Replies: map[string]string{"time": "It is noon."}})
	for _, k := range e.keys() {
		t.Run(k.name, func(t *testing.T) {
			n := len(e.live.Sessions())
			s := e.connect(t, realtime.Config{Model: k.model, APIKey: k.key, Turn: realtime.TurnDetection{Silence: 300 * time.Millisecond}})
			evs := collect(s)
			l := dial(t, s)
			l.say("what time is it")
			got := evs.until(t, realtime.ResponseDone)
			if got[0].Type != realtime.UserTranscript || got[0].Text != "what time is it" {
				t.Fatalf("first event %v %q, want the caller's transcript; got %s", got[0].Type, got[0].Text, summary(got))
			}
			done := last(got)
			if done.ItemID != "turn-1" || done.Text != "It is noon." || done.Cancelled {
				t.Errorf("ResponseDone %+v", done)
			}
			want := int(realtimefake.SynthDuration("It is noon.") * realtime.SampleRate / time.Second)
			if got := audioOf(got, "turn-1"); got < want-8 || got > want+8 {
				t.Errorf("%d samples of audio at 8 kHz, want %d", got, want)
			}
			pcm := make([]int16, 0, want)
			for _, ev := range got {
				if ev.Type == realtime.Audio {
					pcm = append(pcm, ev.Audio...)
				}
			}
			if rms := audio.RMS(pcm[len(pcm)/4 : 3*len(pcm)/4]); rms < 3000 {
				t.Errorf("the answer's audio has RMS %.0f, want the tone's (about 4200)", rms)
			}
			l.hangUp()
			rec := e.live.Sessions()[n]
			if rec.AudioMessages == 0 || rec.Audio/time.Duration(rec.AudioMessages) < 40*time.Millisecond {
				t.Errorf("%v of audio in %d messages, want batches of 40 ms or more", rec.Audio, rec.AudioMessages)
			}
		})
	}
}

// The caller speaks during the answer: SpeechStarted, the turn ends
// cancelled with all its text, and the next utterance is answered.
func TestLiveBargeIn(t *testing.T) {
	story := "Once upon a time there was a very long story that nobody wanted to hear to the end."
	e := liveFixture(t, realtimefake.Script{Transcripts: []string{"tell me a story", "stop"}, Replies: map[string]string{"story": story}})
	for _, k := range e.keys() {
		t.Run(k.name, func(t *testing.T) {
			n := len(e.live.Sessions())
			s := e.connect(t, realtime.Config{Model: k.model, APIKey: k.key, Turn: realtime.TurnDetection{Silence: 300 * time.Millisecond}})
			evs := collect(s)
			l := dial(t, s)
			l.say("tell me a story")
			evs.until(t, realtime.Audio)
			l.say("stop it")
			got := evs.until(t, realtime.ResponseDone)
			if len(got) < 2 || got[len(got)-2].Type != realtime.SpeechStarted {
				t.Fatalf("want SpeechStarted before ResponseDone; got %s", summary(got))
			}
			if done := last(got); done.ItemID != "turn-1" || !done.Cancelled || done.Text != story {
				t.Errorf("ResponseDone %+v, want turn-1 cancelled with the whole story", done)
			}
			got = evs.until(t, realtime.ResponseDone)
			if got[0].Type != realtime.UserTranscript || got[0].Text != "stop" {
				t.Errorf("after the barge-in: %s", summary(got))
			}
			if done := last(got); done.ItemID != "turn-2" || done.Cancelled || done.Text != "You said: stop." {
				t.Errorf("second ResponseDone %+v", done)
			}
			if rec := e.live.Sessions()[n]; rec.Interrupted != 1 {
				t.Errorf("the fake was interrupted %d times", rec.Interrupted)
			}
		})
	}
}

// A tool call and its result; Gemini speaks on the result by itself.
func TestLiveToolRoundTrip(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{Transcripts: []string{"book a table for two"},
		Tools: []realtimefake.ToolTrigger{{Trigger: "book", Name: "book_table", Arguments: `{"people":2}`}}})
	for _, k := range e.keys() {
		t.Run(k.name, func(t *testing.T) {
			n := len(e.live.Sessions())
			s := e.connect(t, realtime.Config{Model: k.model, APIKey: k.key, Tools: []llm.ToolSpec{{Name: "book_table"}},
				Turn: realtime.TurnDetection{Silence: 300 * time.Millisecond}})
			evs := collect(s)
			l := dial(t, s)
			l.say("book a table for two")
			got := evs.until(t, realtime.ToolCalls)
			if got[0].Type != realtime.UserTranscript || got[0].Text != "book a table for two" {
				t.Errorf("before the call: %s", summary(got))
			}
			calls := last(got).Calls
			if len(calls) != 1 || calls[0].ID != "fc-1" || calls[0].Name != "book_table" || calls[0].Arguments != `{"people":2}` {
				t.Fatalf("calls %+v", calls)
			}
			if err := s.ToolResults(context.Background(), []realtime.ToolResult{{CallID: "fc-1", Name: "book_table", Output: `{"ok":true}`}}); err != nil {
				t.Fatal(err)
			}
			done := last(evs.until(t, realtime.ResponseDone))
			if done.Text != `The book_table tool says {"ok":true}.` || done.Cancelled {
				t.Errorf("ResponseDone %+v", done)
			}
			rec := e.live.Sessions()[n]
			if len(rec.ToolResponses) != 1 || rec.ToolResponses[0] != (googlefake.LiveFunctionResponse{ID: "fc-1", Name: "book_table", Output: `{"ok":true}`}) {
				t.Errorf("tool responses %+v", rec.ToolResponses)
			}
		})
	}
}

// Respond with a Verbatim instruction: a complete user turn carrying it,
// and the model says the text.
func TestLiveRespondVerbatim(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{})
	for _, k := range e.keys() {
		t.Run(k.name, func(t *testing.T) {
			n := len(e.live.Sessions())
			s := e.connect(t, realtime.Config{Model: k.model, APIKey: k.key})
			evs := collect(s)
			dial(t, s)
			instr := realtime.Verbatim("Welcome to Parley.")
			if err := s.Respond(context.Background(), instr); err != nil {
				t.Fatal(err)
			}
			got := evs.until(t, realtime.ResponseDone)
			if done := last(got); done.Text != "Welcome to Parley." || done.ItemID != "turn-1" {
				t.Errorf("ResponseDone %+v", done)
			}
			want := int(realtimefake.SynthDuration("Welcome to Parley.") * realtime.SampleRate / time.Second)
			if n := audioOf(got, "turn-1"); n < want-8 || n > want+8 {
				t.Errorf("%d samples, want %d", n, want)
			}
			cc := e.live.Sessions()[n].ClientContent
			if len(cc) != 1 || !cc[0].TurnComplete || len(cc[0].Turns) != 1 || cc[0].Turns[0] != (googlefake.LiveTurn{Role: "user", Text: instr}) {
				t.Errorf("client content %+v", cc)
			}
		})
	}
}

// AddMessage adds user turns without asking for a response; system text is
// marked as context; Respond without instructions gets the greeting.
func TestLiveAddMessage(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{Greeting: "Hello Ada."})
	s := e.connect(t, realtime.Config{Model: LiveModelStudio31, APIKey: studioKey})
	evs := collect(s)
	dial(t, s)
	ctx := context.Background()
	if err := s.AddMessage(ctx, llm.User, "My name is Ada."); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMessage(ctx, llm.System, "The caller is a VIP."); err != nil {
		t.Fatal(err)
	}
	if err := s.AddMessage(ctx, llm.Assistant, "Hi."); err == nil {
		t.Error("an assistant message was accepted")
	}
	if err := s.Respond(ctx, ""); err != nil {
		t.Fatal(err)
	}
	if done := last(evs.until(t, realtime.ResponseDone)); done.Text != "Hello Ada." {
		t.Errorf("ResponseDone %+v", done)
	}
	cc := e.live.Sessions()[0].ClientContent
	want := []googlefake.LiveClientContent{
		{Turns: []googlefake.LiveTurn{{Role: "user", Text: "My name is Ada."}}},
		{Turns: []googlefake.LiveTurn{{Role: "user", Text: systemPrefix + "The caller is a VIP."}}},
		{Turns: []googlefake.LiveTurn{{Role: "user", Text: respondPrompt}}, TurnComplete: true},
	}
	if len(cc) != len(want) {
		t.Fatalf("client content %+v", cc)
	}
	for i := range want {
		if cc[i].TurnComplete != want[i].TurnComplete || len(cc[i].Turns) != 1 || cc[i].Turns[0] != want[i].Turns[0] {
			t.Errorf("client content %d: %+v, want %+v", i, cc[i], want[i])
		}
	}
	if err := s.Truncate(ctx, "turn-1", time.Second); err != nil {
		t.Errorf("Truncate: %v", err)
	}
	if err := s.Cancel(ctx); err != nil {
		t.Errorf("Cancel: %v", err)
	}
}

// A catalog model with the other kind of key fails before dialling.
func TestLiveWrongKeyKind(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{})
	for _, tt := range []struct{ model, key, want string }{
		{LiveModelVertex, studioKey, "needs a service-account key (google_vertex_secret_id)"},
		{LiveModelStudio25, e.acct.JSON, "needs an AI Studio API key (google_secret_id)"},
		{LiveModelStudio31, e.acct.JSON, "needs an AI Studio API key"},
	} {
		_, err := e.p.Connect(context.Background(), realtime.Config{Model: tt.model, APIKey: tt.key})
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.model) {
			t.Errorf("%s: err = %v, want one saying %q", tt.model, err, tt.want)
		}
	}
	if n := len(e.live.Sessions()); n != 0 {
		t.Errorf("%d sessions reached the service", n)
	}
}

// A bad AI Studio key is closed with 1007 after the setup; an access token
// the service does not know is refused with 401. Neither error quotes the
// secret.
func TestLiveBadKey(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{})
	_, err := e.p.Connect(context.Background(), realtime.Config{Model: LiveModelStudio31, APIKey: "AIza-wrong"})
	var le *LiveError
	if !errors.As(err, &le) || le.CloseCode != 1007 || !le.Setup || !strings.Contains(err.Error(), "API key not valid") || strings.Contains(err.Error(), "AIza-wrong") {
		t.Errorf("bad API key: %v", err)
	}

	// Tokens from one token endpoint, a Live fake trusting another's.
	other := googlefake.New(googlefake.Config{Account: e.acct})
	live := googlefake.NewLive(googlefake.LiveConfig{Server: other})
	liveSrv := httptest.NewServer(live)
	defer liveSrv.Close()
	defer live.Close()
	p := NewRealtime(RealtimeConfig{VertexURL: "ws" + strings.TrimPrefix(liveSrv.URL, "http"), TokenURL: e.p.cfg.TokenURL, HTTPClient: e.p.cfg.HTTPClient})
	_, err = p.Connect(context.Background(), realtime.Config{Model: LiveModelVertex, APIKey: e.acct.JSON})
	if !errors.As(err, &le) || le.StatusCode != 401 || !strings.Contains(err.Error(), "check the Google key") || strings.Contains(err.Error(), "ya29.") {
		t.Errorf("unknown token: %v", err)
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error quotes the private key: %v", err)
	}
}

// A model of the other service's family (not in the catalog, so not caught
// before dialling) is closed with 1008, its reason surfaced.
func TestLiveWrongModelFamily(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{})
	for _, tt := range []struct{ model, key, reason string }{
		{"gemini-live-2.0-flash", studioKey, "not found for API version v1beta"},
		{"gemini-2.5-flash", e.acct.JSON, "was not found"},
	} {
		_, err := e.p.Connect(context.Background(), realtime.Config{Model: tt.model, APIKey: tt.key})
		var le *LiveError
		if !errors.As(err, &le) || le.CloseCode != 1008 || le.Retryable() || !strings.Contains(err.Error(), "1008") || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: %v", tt.model, err)
		}
	}
}

// Failures mid-call end Recv with an error saying what happened; a goAway
// is a warning.
func TestLiveFailures(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{})
	tests := []struct {
		name   string
		inject func()
		check  func(error) bool
	}{
		{"malformed message", e.live.Malformed, func(err error) bool { return strings.Contains(err.Error(), "not JSON") }},
		{"disconnect", e.live.Disconnect, func(err error) bool {
			var le *LiveError
			return !errors.As(err, &le) && !errors.Is(err, io.EOF) && strings.Contains(err.Error(), "Gemini Live")
		}},
		{"close 1011", func() { e.live.CloseSessions(websocket.StatusInternalError, "Internal error encountered.") }, func(err error) bool {
			var le *LiveError
			return errors.As(err, &le) && le.CloseCode == 1011 && le.Retryable() && !le.Setup &&
				strings.Contains(err.Error(), "close 1011") && strings.Contains(err.Error(), "Internal error encountered.")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := e.connect(t, realtime.Config{Model: LiveModelStudio31, APIKey: studioKey})
			evs := collect(s)
			tt.inject()
			err := evs.failure(t)
			if !tt.check(err) {
				t.Errorf("Recv error: %v", err)
			}
			if strings.Contains(err.Error(), studioKey) {
				t.Errorf("error quotes the key: %v", err)
			}
			if err := s.SendAudio(make([]int16, 160)); err == nil {
				t.Error("SendAudio after the failure returned nil")
			}
			if err := s.Respond(context.Background(), ""); err == nil {
				t.Error("Respond after the failure returned nil")
			}
			s.Close()
		})
	}
	t.Run("go away without a handle", func(t *testing.T) {
		e := liveFixture(t, realtimefake.Script{}, func(c *googlefake.LiveConfig) { c.NoResumption = true })
		s := e.connect(t, realtime.Config{Model: LiveModelStudio31, APIKey: studioKey})
		evs := collect(s)
		e.live.GoAway(10 * time.Second)
		w := last(evs.until(t, realtime.Warning))
		if !strings.Contains(w.Text, "goAway") || !strings.Contains(w.Text, "10s") {
			t.Errorf("warning %q", w.Text)
		}
	})
	t.Run("context ends", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		s, err := e.p.Connect(ctx, realtime.Config{Model: LiveModelStudio31, APIKey: studioKey})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		evs := collect(s)
		cancel()
		if err := evs.failure(t); !errors.Is(err, context.Canceled) {
			t.Errorf("Recv error %v, want context.Canceled", err)
		}
	})
}

// Close is idempotent, makes Recv return io.EOF and leaves no goroutine.
func TestLiveClose(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e := liveFixture(t, realtimefake.Script{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := e.p.Connect(ctx, realtime.Config{Model: LiveModelVertex, APIKey: e.acct.JSON})
	if err != nil {
		t.Fatal(err)
	}
	evs := collect(s)
	l := dial(t, s)
	l.say("hello")
	time.Sleep(50 * time.Millisecond)
	l.hangUp()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := evs.failure(t); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after Close: %v", err)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after Close: %v", err)
	}
	if err := s.SendAudio(make([]int16, 160)); !errors.Is(err, ErrLiveClosed) {
		t.Errorf("SendAudio after Close: %v", err)
	}
	// The fixture's servers go before the leak check.
	e.shutdown()
}

// SendAudio never blocks: past the queue's bound the oldest audio goes.
func TestLiveAudioQueueDropsOldest(t *testing.T) {
	up, err := audio.NewResampler(realtime.SampleRate, liveInRate)
	if err != nil {
		t.Fatal(err)
	}
	s := &liveSession{up: up, maxQueued: 1600, wake: make(chan struct{}, 1), done: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	pcm := make([]int16, realtime.SampleRate) // 1 s
	for i := range pcm {
		pcm[i] = int16(i % 30000)
	}
	for range 3 {
		if err := s.SendAudio(pcm); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.queued) != 1600 || s.dropped == 0 {
		t.Fatalf("queued %d, dropped %d", len(s.queued), s.dropped)
	}
	// The newest audio stays: the queue ends near the ramp's end.
	if v := s.queued[len(s.queued)-100]; v < 7000 {
		t.Errorf("the queue ends with %d, want the newest samples", v)
	}
}

// Chat.Realtime shares the Chat's access tokens: one grant for chat and
// two Live sessions.
func TestLiveSharesTokensWithChat(t *testing.T) {
	acct := account(t)
	c, fake := fixture(t, acct, time.Hour)
	if _, err := reply(t, c, acct.JSON, "gemini-2.5-flash"); err != nil {
		t.Fatal(err)
	}
	live := googlefake.NewLive(googlefake.LiveConfig{Server: fake})
	liveSrv := httptest.NewServer(live)
	defer liveSrv.Close()
	defer live.Close()
	p := c.Realtime(RealtimeConfig{VertexURL: "ws" + strings.TrimPrefix(liveSrv.URL, "http"), HTTPClient: c.cfg.HTTPClient})
	for range 2 {
		s, err := p.Connect(context.Background(), realtime.Config{Model: LiveModelVertex, APIKey: acct.JSON})
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
	if g := fake.Grants(); g != 1 {
		t.Errorf("%d token grants, want 1", g)
	}
}

// After a goAway the session resumes on a new connection with the last
// handle: at once when the model is quiet, after its turn when it speaks.
// The conversation goes on where it was.
func TestLiveGoAwayResumes(t *testing.T) {
	e := liveFixture(t, realtimefake.Script{Transcripts: []string{"first", "second", "third"}})
	for _, k := range e.keys() {
		t.Run(k.name, func(t *testing.T) {
			n := len(e.live.Sessions())
			s := e.connect(t, realtime.Config{Model: k.model, APIKey: k.key, Turn: realtime.TurnDetection{Silence: 300 * time.Millisecond}})
			evs := collect(s)
			l := dial(t, s)
			l.say("first")
			if done := last(evs.until(t, realtime.ResponseDone)); done.Text != "You said: first." {
				t.Fatalf("ResponseDone %+v", done)
			}
			e.live.GoAway(10 * time.Second)
			if w := last(evs.until(t, realtime.Warning)); !strings.Contains(w.Text, "resumed on a new connection") {
				t.Fatalf("warning %q", w.Text)
			}
			l.say("second")
			evs.until(t, realtime.Audio)
			e.live.GoAway(5 * time.Second) // mid-turn: the move waits for its end
			got := evs.until(t, realtime.ResponseDone)
			if done := last(got); done.Text != "You said: second." || done.Cancelled || done.ItemID != "turn-2" {
				t.Errorf("ResponseDone %+v; got %s", done, summary(got))
			}
			if w := last(evs.until(t, realtime.Warning)); !strings.Contains(w.Text, "resumed on a new connection") {
				t.Fatalf("warning %q", w.Text)
			}
			l.say("third")
			got = evs.until(t, realtime.ResponseDone)
			if got[0].Type != realtime.UserTranscript || got[0].Text != "third" || last(got).Text != "You said: third." {
				t.Errorf("after the second move: %s", summary(got))
			}
			recs := e.live.Sessions()[n:]
			if len(recs) != 3 {
				t.Fatalf("%d connections, want 3", len(recs))
			}
			for i := 1; i < 3; i++ {
				prev := recs[i-1].Handles
				if len(prev) == 0 || recs[i].ResumedFrom != prev[len(prev)-1] || !recs[i].Setup.Resumption || recs[i].Audio == 0 {
					t.Errorf("connection %d resumed from %q (handles before %v), heard %v", i, recs[i].ResumedFrom, prev, recs[i].Audio)
				}
			}
			if recs[0].Service != k.service || recs[2].Service != k.service || recs[2].Setup.Model != recs[0].Setup.Model {
				t.Errorf("the resumed setups differ: %+v", recs[2].Setup)
			}
		})
	}
}

// A connection that ends after a goAway, before the answer finished: the
// answer ends cancelled and the session resumes all the same.
func TestLiveGoAwayThenDrop(t *testing.T) {
	long := strings.Repeat("This answer goes on. ", 4)
	e := liveFixture(t, realtimefake.Script{Transcripts: []string{"tell me", "again"}, Replies: map[string]string{"tell": long}})
	s := e.connect(t, realtime.Config{Model: LiveModelStudio31, APIKey: studioKey, Turn: realtime.TurnDetection{Silence: 300 * time.Millisecond}})
	evs := collect(s)
	l := dial(t, s)
	l.say("tell me")
	evs.until(t, realtime.Audio)
	e.live.GoAway(time.Second)
	time.Sleep(100 * time.Millisecond) // the goAway is read before the drop
	e.live.Disconnect()
	got := evs.until(t, realtime.Warning)
	if len(got) < 2 || got[len(got)-2].Type != realtime.ResponseDone || !got[len(got)-2].Cancelled {
		t.Fatalf("want a cancelled ResponseDone, then the warning; got %s", summary(got))
	}
	if w := last(got); !strings.Contains(w.Text, "resumed on a new connection") || !strings.Contains(w.Text, "lost") {
		t.Errorf("warning %q", w.Text)
	}
	// The handle predates the lost answer, so the fake's Script replays
	// from the first utterance: the session works, the turn count goes on.
	l.say("again")
	if got := evs.until(t, realtime.ResponseDone); got[0].Type != realtime.UserTranscript || last(got).ItemID != "turn-2" || last(got).Cancelled {
		t.Errorf("after resuming: %s", summary(got))
	}
	if n := len(e.live.Sessions()); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}
