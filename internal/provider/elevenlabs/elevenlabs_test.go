package elevenlabs

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/providertest"
	"github.com/parley-voice/parley/internal/tts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newFake serves a fake ElevenLabs on a test server and returns a provider
// pointed at it (through an http:// base URL, mapped to ws://).
func newFake(t *testing.T, cfg elevenlabsfake.Config, pcfg Config) (*elevenlabsfake.Server, *TTS) {
	t.Helper()
	srv := elevenlabsfake.New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	pcfg.BaseURL = ts.URL
	return srv, NewTTS(pcfg)
}

func TestSpeakTwoSentences(t *testing.T) {
	const s1, s2 = "Sure, I can help.", "What is your account number?"
	for _, rate := range []int{8000, 24000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			srv, p := newFake(t, elevenlabsfake.Config{APIKey: "sk_test"}, Config{})
			s := providertest.OpenTTS(t, p, tts.Config{Voice: "v1", SampleRate: rate, APIKey: "sk_test"})
			providertest.SendAll(t, s, s1, s2)
			pcm, chunks, err := providertest.RecvAudio(t, s)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Recv ended with %v, want io.EOF", err)
			}
			want := append(elevenlabsfake.DefaultSynth(s1, rate), elevenlabsfake.DefaultSynth(s2, rate)...)
			if len(pcm) != len(want) {
				t.Fatalf("%d samples, want exactly %d", len(pcm), len(want))
			}
			if !slices.Equal(pcm, want) {
				t.Fatal("audio differs from the fake's synthesis, or is out of order")
			}
			if st := srv.Stats(); chunks != st.AudioMessages {
				t.Errorf("%d chunks for %d audio messages", chunks, st.AudioMessages)
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("Recv after the end = %v, want io.EOF again", err)
			}
			if got := srv.Texts(); len(got) != 1 || !slices.Equal(got[0], []string{s1, s2}) {
				t.Errorf("fake spoke %q, want each sentence on its own", got)
			}
			q := srv.Sessions()[0].Query
			if q.Get("output_format") != "pcm_"+strconv.Itoa(rate) || q.Get("model_id") != DefaultModel || q.Has("language_code") {
				t.Errorf("query = %v", q)
			}
			_ = s.Close()
			providertest.WaitFor(t, "fake sees the connection closed", func() bool { return srv.Stats().Active == 0 })
		})
	}
}

func TestOddByteSplit(t *testing.T) {
	ramp := func(text string, rate int) []int16 {
		out := make([]int16, 1000)
		for i := range out {
			out[i] = int16(i*61 - 30000) // both bytes vary, negative and positive
		}
		return out
	}
	srv, p := newFake(t, elevenlabsfake.Config{
		Synth:         ramp,
		ChunkDuration: 101 * 62500 * time.Nanosecond, // 101 bytes at 8 kHz
	}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
	providertest.SendAll(t, s, "Odd.", "Again.")
	pcm, _, err := providertest.RecvAudio(t, s)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Recv ended with %v", err)
	}
	want := append(ramp("", 0), ramp("", 0)...)
	if !slices.Equal(pcm, want) {
		t.Fatalf("reassembled %d samples, not the %d sent", len(pcm), len(want))
	}
	if got, want := srv.Stats().AudioMessages, 2*20; got != want { // ⌈2000/101⌉ per sentence
		t.Errorf("%d audio messages, want %d odd-sized ones", got, want)
	}
}

func TestBadKey(t *testing.T) {
	const key = "sk_wrong_5f1e2d3c4b5a69788796a5b4"
	srv, p := newFake(t, elevenlabsfake.Config{APIKey: "sk_right"}, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := p.Open(ctx, tts.Config{Voice: "v", SampleRate: 8000, APIKey: key})
	if err == nil {
		// The refusal may arrive after the init message went out.
		t.Log("refused after Open")
		defer func() { _ = s.Close() }()
		_ = s.Send("Hello.")
		_, _, err = providertest.RecvAudio(t, s)
	} else {
		t.Log("refused in Open")
	}
	var se *ServerError
	if !errors.As(err, &se) || se.CloseStatus != 1008 || se.Message != "Invalid API key" {
		t.Fatalf("error = %v, want a 1008 Invalid API key ServerError", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Errorf("error %q contains the key", err)
	}
	if !strings.Contains(err.Error(), "Invalid API key") {
		t.Errorf("error %q does not say why", err)
	}
	providertest.WaitFor(t, "connection closed", func() bool { return srv.Stats().Active == 0 })
}

func TestUpgradeRefused(t *testing.T) {
	const key = "sk_secret_0123456789abcdef"
	tests := []struct {
		name     string
		status   int
		body     string
		wantKind string
		wantMsg  string
	}{
		{"detail object", 401, `{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}`, "invalid_api_key", "Invalid API key"},
		{"detail string", 404, `{"detail":"voice not found"}`, "", "voice not found"},
		{"message", 429, `{"message":"Too many concurrent requests","error":"too_many_concurrent_requests"}`, "too_many_concurrent_requests", "Too many concurrent requests"},
		{"plain text echoing the key", 403, "forbidden: key " + key + " is disabled\n", "", "forbidden: key [redacted] is disabled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("xi-api-key") != key {
					t.Errorf("xi-api-key header = %q", r.Header.Get("xi-api-key"))
				}
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			defer ts.Close()
			p := NewTTS(Config{BaseURL: ts.URL})
			s, err := p.Open(context.Background(), tts.Config{Voice: "v", SampleRate: 8000, APIKey: key})
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			var se *ServerError
			if !errors.As(err, &se) || se.HTTPStatus != tt.status || se.Kind != tt.wantKind || se.Message != tt.wantMsg {
				t.Fatalf("error = %#v", err)
			}
			if msg := err.Error(); strings.Contains(msg, key) || !strings.Contains(msg, strconv.Itoa(tt.status)) || !strings.Contains(msg, tt.wantMsg) {
				t.Errorf("error text %q: want status and message, never the key", msg)
			}
		})
	}
}

func TestFailAfter(t *testing.T) {
	_, p := newFake(t, elevenlabsfake.Config{FailAfter: 3}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
	// The fault may strike before Flush, which then reports it.
	_ = providertest.SendUntilFault(s, "This sentence makes more than three chunks of audio.")
	_, chunks, err := providertest.RecvAudio(t, s)
	var se *ServerError
	if !errors.As(err, &se) || se.CloseStatus != 1011 || se.Message != "fake failure" {
		t.Fatalf("Recv ended with %v, want a 1011 ServerError", err)
	}
	if chunks != 3 {
		t.Errorf("%d chunks before the failure, want 3", chunks)
	}
	if err := s.Send("More."); err == nil {
		t.Error("Send after a failure succeeded")
	}
}

func TestCloseMidStream(t *testing.T) {
	srv, p := newFake(t, elevenlabsfake.Config{RealTime: true}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
	if err := s.Send("A long answer that takes several seconds to speak at real-time pace."); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := providertest.RecvAudio(t, s)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond) // let Recv block on the paced stream
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Recv = %v, want ErrClosed", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Recv still blocked 1s after Close")
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Close and Recv took %v", d)
	}
	providertest.WaitFor(t, "fake sees the connection closed", func() bool { return srv.Stats().Active == 0 })
	if err := s.Send("More."); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v, want ErrClosed", err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v, want ErrClosed", err)
	}
	if _, err := s.Recv(); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	srv, p := newFake(t, elevenlabsfake.Config{RealTime: true}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s, err := p.Open(ctx, tts.Config{Voice: "v", SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if err := s.Send("A long answer that takes several seconds to speak at real-time pace."); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := providertest.RecvAudio(t, s)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Recv = %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatal("Recv still blocked 1s after ctx was cancelled")
	}
	providertest.WaitFor(t, "fake sees the connection closed", func() bool { return srv.Stats().Active == 0 })
}

func TestUnsupportedSampleRate(t *testing.T) {
	srv, p := newFake(t, elevenlabsfake.Config{}, Config{})
	for _, rate := range []int{0, 11025, 32000, 96000} {
		s, err := p.Open(context.Background(), tts.Config{Voice: "v", SampleRate: rate})
		if err == nil {
			_ = s.Close()
			t.Errorf("Open at %d Hz succeeded", rate)
			continue
		}
		if !strings.Contains(err.Error(), strconv.Itoa(rate)) {
			t.Errorf("error %q does not name %d", err, rate)
		}
	}
	if n := srv.Stats().Connections; n != 0 {
		t.Errorf("%d connections made, want none", n)
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		base string
		cfg  tts.Config
		want string
	}{
		{"no voice", "", tts.Config{SampleRate: 8000}, "no voice"},
		{"bad option", "", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"stability": "high"}}, "stability"},
		{"bad scheme", "ftp://example.com", tts.Config{Voice: "v", SampleRate: 8000}, "scheme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := NewTTS(Config{BaseURL: tt.base})
			s, err := p.Open(context.Background(), tt.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestVoiceIDEscaped(t *testing.T) {
	srv, p := newFake(t, elevenlabsfake.Config{}, Config{})
	voices := []string{"team/voice one", "a b", "x?y#z", "100%"}
	for _, voice := range voices {
		s := providertest.OpenTTS(t, p, tts.Config{Voice: voice, SampleRate: 16000})
		providertest.SendAll(t, s, "Hi.")
		if _, _, err := providertest.RecvAudio(t, s); !errors.Is(err, io.EOF) {
			t.Fatalf("voice %q: Recv ended with %v", voice, err)
		}
		_ = s.Close()
	}
	sess := srv.Sessions()
	if len(sess) != len(voices) {
		t.Fatalf("%d sessions", len(sess))
	}
	for i, voice := range voices {
		if sess[i].VoiceID != voice {
			t.Errorf("fake saw voice %q, want %q", sess[i].VoiceID, voice)
		}
	}
}

func TestInitMessage(t *testing.T) {
	tests := []struct {
		name         string
		pcfg         Config
		cfg          tts.Config
		wantSettings map[string]any // nil: no voice_settings key
		wantSchedule []any
		wantQuery    map[string]string
	}{
		{
			name: "options and speed",
			cfg: tts.Config{Voice: "v", SampleRate: 8000, Speed: 1.1, Options: map[string]any{
				"stability": 0.3, "similarity_boost": 0.9, "style": 0.1, "use_speaker_boost": false,
				"speed": 0.8, "unrelated": "x",
			}},
			wantSettings: map[string]any{"stability": 0.3, "similarity_boost": 0.9, "style": 0.1, "use_speaker_boost": false, "speed": 1.1},
			wantSchedule: []any{120.0, 160.0, 250.0, 290.0},
			wantQuery:    map[string]string{"model_id": DefaultModel, "output_format": "pcm_8000"},
		},
		{
			name:         "only some keys",
			cfg:          tts.Config{Voice: "v", SampleRate: 16000, Options: map[string]any{"stability": 1, "style": nil}},
			wantSettings: map[string]any{"stability": 1.0},
			wantSchedule: []any{120.0, 160.0, 250.0, 290.0},
		},
		{
			name:         "none: the voice's stored settings",
			pcfg:         Config{ChunkSchedule: []int{50, 90}},
			cfg:          tts.Config{Voice: "v", SampleRate: 22050, Model: "eleven_turbo_v2_5", Language: "de"},
			wantSchedule: []any{50.0, 90.0},
			wantQuery:    map[string]string{"model_id": "eleven_turbo_v2_5", "output_format": "pcm_22050", "language_code": "de"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, p := newFake(t, elevenlabsfake.Config{}, tt.pcfg)
			s := providertest.OpenTTS(t, p, tt.cfg)
			providertest.SendAll(t, s, "Hi.")
			if _, _, err := providertest.RecvAudio(t, s); !errors.Is(err, io.EOF) {
				t.Fatalf("Recv ended with %v", err)
			}
			sess := srv.Sessions()[0]
			if sess.Init["text"] != " " {
				t.Errorf("init text = %q", sess.Init["text"])
			}
			got, has := sess.Init["voice_settings"]
			if tt.wantSettings == nil {
				if has {
					t.Errorf("voice_settings = %v, want none", got)
				}
			} else if m, _ := got.(map[string]any); !mapsEqual(m, tt.wantSettings) {
				t.Errorf("voice_settings = %v, want %v", got, tt.wantSettings)
			}
			gc, _ := sess.Init["generation_config"].(map[string]any)
			if sched, _ := gc["chunk_length_schedule"].([]any); !slices.Equal(sched, tt.wantSchedule) {
				t.Errorf("chunk_length_schedule = %v, want %v", gc["chunk_length_schedule"], tt.wantSchedule)
			}
			for k, v := range tt.wantQuery {
				if sess.Query.Get(k) != v {
					t.Errorf("query %s = %q, want %q", k, sess.Query.Get(k), v)
				}
			}
		})
	}
}

func mapsEqual(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestSendRules(t *testing.T) {
	srv, p := newFake(t, elevenlabsfake.Config{}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
	for _, text := range []string{"", "  ", "\n"} {
		if err := s.Send(text); err != nil {
			t.Errorf("Send(%q) = %v, want it ignored", text, err)
		}
	}
	providertest.SendAll(t, s, "Hello.")
	if err := s.Send("Too late."); err == nil {
		t.Error("Send after Flush succeeded")
	}
	if err := s.Flush(); err != nil {
		t.Errorf("second Flush = %v", err)
	}
	if _, _, err := providertest.RecvAudio(t, s); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv ended with %v", err)
	}
	if got := srv.Texts()[0]; !slices.Equal(got, []string{"Hello."}) {
		t.Errorf("fake spoke %q", got)
	}
	if st := srv.Stats(); st.Characters != len("Hello. ") {
		t.Errorf("fake received %d characters, want %d", st.Characters, len("Hello. "))
	}
}

// scripted serves one websocket with script, after reading the init message.
func scripted(t *testing.T, script func(ctx context.Context, c *websocket.Conn)) *TTS {
	t.Helper()
	done := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = c.CloseNow() }()
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if _, _, err := c.Read(ctx); err != nil {
			t.Errorf("reading init: %v", err)
			return
		}
		script(ctx, c)
	}))
	t.Cleanup(func() {
		<-done
		ts.Close()
	})
	return NewTTS(Config{BaseURL: ts.URL})
}

func writeText(ctx context.Context, c *websocket.Conn, msg string) {
	_ = c.Write(ctx, websocket.MessageText, []byte(msg))
}

func TestServerEnds(t *testing.T) {
	const audio = `{"audio":"AQACAA==","isFinal":null,"alignment":null}` // samples 1, 2
	tests := []struct {
		name   string
		flush  bool
		script func(ctx context.Context, c *websocket.Conn)
		check  func(t *testing.T, err error)
	}{
		{
			name:  "error message",
			flush: true,
			script: func(ctx context.Context, c *websocket.Conn) {
				_, _, _ = c.Read(ctx) // text
				_, _, _ = c.Read(ctx) // end of input
				writeText(ctx, c, audio)
				writeText(ctx, c, `{"message":"Quota exceeded","error":"quota_exceeded","code":1008}`)
				_ = c.Close(websocket.StatusPolicyViolation, "quota")
			},
			check: func(t *testing.T, err error) {
				var se *ServerError
				if !errors.As(err, &se) || se.Kind != "quota_exceeded" || se.Code != 1008 || se.Message != "Quota exceeded" {
					t.Errorf("err = %#v", err)
				}
				if !strings.Contains(err.Error(), "Quota exceeded") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:  "normal close after end of input, no isFinal",
			flush: true,
			script: func(ctx context.Context, c *websocket.Conn) {
				_, _, _ = c.Read(ctx) // text
				writeText(ctx, c, audio)
				_, _, _ = c.Read(ctx) // end of input
				_ = c.Close(websocket.StatusNormalClosure, "")
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, io.EOF) {
					t.Errorf("err = %v, want io.EOF", err)
				}
			},
		},
		{
			name: "normal close before end of input",
			script: func(ctx context.Context, c *websocket.Conn) {
				_, _, _ = c.Read(ctx)
				writeText(ctx, c, audio)
				_ = c.Close(websocket.StatusNormalClosure, "")
			},
			check: func(t *testing.T, err error) {
				if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "before the end of input") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name: "inactivity close",
			script: func(ctx context.Context, c *websocket.Conn) {
				_, _, _ = c.Read(ctx)
				writeText(ctx, c, audio)
				_ = c.Close(websocket.StatusPolicyViolation, "Have not received a new text input within the timeout of 20 seconds.")
			},
			check: func(t *testing.T, err error) {
				var se *ServerError
				if !errors.As(err, &se) || se.CloseStatus != 1008 || !strings.Contains(err.Error(), "timeout of 20 seconds") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:  "not JSON",
			flush: true,
			script: func(ctx context.Context, c *websocket.Conn) {
				_, _, _ = c.Read(ctx) // text
				_, _, _ = c.Read(ctx) // end of input
				writeText(ctx, c, audio)
				writeText(ctx, c, `<html>`)
				_, _, _ = c.Read(ctx) // until the client drops the connection
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "decoding server message") {
					t.Errorf("err = %v", err)
				}
			},
		},
		{
			name:  "bad base64",
			flush: true,
			script: func(ctx context.Context, c *websocket.Conn) {
				_, _, _ = c.Read(ctx) // text
				_, _, _ = c.Read(ctx) // end of input
				writeText(ctx, c, audio)
				writeText(ctx, c, `{"audio":"!!!"}`)
				_, _, _ = c.Read(ctx) // until the client drops the connection
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "decoding audio") {
					t.Errorf("err = %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := scripted(t, tt.script)
			s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
			if err := s.Send("Hello."); err != nil {
				t.Fatal(err)
			}
			if tt.flush {
				if err := s.Flush(); err != nil {
					t.Fatal(err)
				}
			}
			pcm, _, err := providertest.RecvAudio(t, s)
			if !slices.Equal(pcm, []int16{1, 2}) {
				t.Errorf("audio before the end = %v, want [1 2]", pcm)
			}
			tt.check(t, err)
			_ = s.Close()
		})
	}
}
