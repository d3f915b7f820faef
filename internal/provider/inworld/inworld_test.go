package inworld

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

	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/inworld/inworldfake"
	"github.com/parley-voice/parley/internal/provider/providertest"
	"github.com/parley-voice/parley/internal/tts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "aW53b3JsZDp0ZXN0LWtleQ=="

// newFake serves a fake Inworld on a test server (mounted on a mux at
// inworldfake.Path, as the lead will) and returns a provider pointed at it
// through an http:// base URL.
func newFake(t *testing.T, cfg inworldfake.Config, pcfg Config) (*inworldfake.Server, *TTS) {
	t.Helper()
	srv := inworldfake.New(cfg)
	mux := http.NewServeMux()
	mux.Handle(inworldfake.Path, srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	pcfg.BaseURL = ts.URL
	return srv, NewTTS(pcfg)
}

// onlyCreate returns the single create body of a session.
func onlyCreate(t *testing.T, sess inworldfake.Session) map[string]any {
	t.Helper()
	if len(sess.Creates) != 1 {
		t.Fatalf("%d contexts created, want 1", len(sess.Creates))
	}
	for _, c := range sess.Creates {
		return c
	}
	return nil
}

func TestSpeakTwoSentences(t *testing.T) {
	const s1, s2 = "Sure, I can help.", "What is your account number?"
	for _, rate := range []int{8000, 24000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			srv, p := newFake(t, inworldfake.Config{APIKey: testKey}, Config{})
			s := providertest.OpenTTS(t, p, tts.Config{Voice: "Ashley", SampleRate: rate, APIKey: testKey})
			providertest.SendAll(t, s, s1, s2)
			pcm, _, err := providertest.RecvAudio(t, s)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Recv ended with %v, want io.EOF", err)
			}
			want := append(inworldfake.DefaultSynth(s1, rate), inworldfake.DefaultSynth(s2, rate)...)
			if !slices.Equal(pcm, want) {
				t.Fatalf("got %d samples, want the fake's %d in order", len(pcm), len(want))
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Errorf("Recv after the end = %v, want io.EOF again", err)
			}
			sess := srv.Sessions()[0]
			if sess.Authorization != "Basic "+testKey || sess.RequestID == "" {
				t.Errorf("Authorization %q, X-Request-Id %q", sess.Authorization, sess.RequestID)
			}
			if !slices.Equal(sess.Texts, []string{s1, s2}) {
				t.Errorf("fake spoke %q, want each sentence as its own generation", sess.Texts)
			}
			wantMsgs := []string{"create", "send_text", "flush_context", "send_text", "flush_context", "close_context"}
			if !slices.Equal(sess.Messages, wantMsgs) {
				t.Errorf("messages %v, want %v", sess.Messages, wantMsgs)
			}
			c := onlyCreate(t, sess)
			ac, _ := c["audioConfig"].(map[string]any)
			if c["voiceId"] != "Ashley" || c["modelId"] != DefaultModel || ac["audioEncoding"] != "LINEAR16" ||
				ac["sampleRateHertz"] != float64(rate) || c["language"] != nil || ac["speakingRate"] != nil {
				t.Errorf("create = %v", c)
			}
			_ = s.Close()
			providertest.WaitFor(t, "fake sees the connection closed", func() bool { return srv.Stats().Active == 0 })
		})
	}
}

func TestCreateOptions(t *testing.T) {
	srv, p := newFake(t, inworldfake.Config{}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{
		Voice: "Dennis", Model: "inworld-tts-1.5-max", Language: "nl-NL", SampleRate: 16000, Speed: 1.25,
		Options: map[string]any{"temperature": 0.8, "delivery_mode": "creative", "apply_text_normalization": "on", "stability": 0.5},
	})
	providertest.SendAll(t, s, "Hallo.")
	if _, _, err := providertest.RecvAudio(t, s); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv ended with %v", err)
	}
	c := onlyCreate(t, srv.Sessions()[0])
	ac, _ := c["audioConfig"].(map[string]any)
	for k, want := range map[string]any{
		"voiceId": "Dennis", "modelId": "inworld-tts-1.5-max", "language": "nl-NL", "temperature": 0.8,
		"deliveryMode": "CREATIVE", "applyTextNormalization": "ON",
	} {
		if c[k] != want {
			t.Errorf("create.%s = %v, want %v", k, c[k], want)
		}
	}
	if ac["speakingRate"] != 1.25 || ac["sampleRateHertz"] != 16000.0 {
		t.Errorf("audioConfig = %v", ac)
	}
	if _, ok := c["stability"]; ok {
		t.Error("an option Inworld does not have was sent")
	}
}

func TestResampledRates(t *testing.T) {
	const text = "Resample me."
	tests := []struct {
		name         string
		pipeline     int
		forced       int
		wantService  int
		wantExactLen int // 0: compare with audio.Resample instead
	}{
		{"pipeline rate not offered", 11025, 0, 16000, 0},
		{"forced service rate", 8000, 24000, 24000, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, p := newFake(t, inworldfake.Config{}, Config{ServiceRate: tt.forced})
			s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: tt.pipeline})
			providertest.SendAll(t, s, text)
			pcm, _, err := providertest.RecvAudio(t, s)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Recv ended with %v", err)
			}
			ac, _ := onlyCreate(t, srv.Sessions()[0])["audioConfig"].(map[string]any)
			if ac["sampleRateHertz"] != float64(tt.wantService) {
				t.Fatalf("requested %v Hz, want %d", ac["sampleRateHertz"], tt.wantService)
			}
			want, err := audio.Resample(inworldfake.DefaultSynth(text, tt.wantService), tt.wantService, tt.pipeline)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pcm, want) {
				t.Fatalf("got %d samples, want the %d of resampling %d Hz to %d Hz", len(pcm), len(want), tt.wantService, tt.pipeline)
			}
			if g := audio.Goertzel(pcm, tt.pipeline, 440); g < 1000 {
				t.Errorf("440 Hz tone lost in resampling (Goertzel %.0f)", g)
			}
		})
	}
}

func TestWAVHeaderAndSplitSamples(t *testing.T) {
	ramp := func(text string, rate int) []int16 {
		out := make([]int16, 1000)
		for i := range out {
			out[i] = int16(i*61 - 30000) // both bytes vary, negative and positive
		}
		return out
	}
	for _, header := range []bool{false, true} {
		t.Run("header="+strconv.FormatBool(header), func(t *testing.T) {
			srv, p := newFake(t, inworldfake.Config{
				Synth:         ramp,
				WAVHeader:     header,
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
			if srv.Stats().AudioMessages < 2*19 {
				t.Errorf("only %d audio messages: samples were not split", srv.Stats().AudioMessages)
			}
		})
	}
}

func TestBadKey(t *testing.T) {
	const wrong = "d3Jvbmc6c2VjcmV0LXZhbHVlLTEyMzQ1Ng=="
	srv, p := newFake(t, inworldfake.Config{APIKey: testKey}, Config{})
	for _, key := range []string{wrong, ""} {
		s, err := p.Open(t.Context(), tts.Config{Voice: "v", SampleRate: 8000, APIKey: key})
		if err == nil {
			_ = s.Close()
			t.Fatalf("Open with key %q succeeded", key)
		}
		var se *ServerError
		if !errors.As(err, &se) || se.HTTPStatus != http.StatusUnauthorized || !se.Unauthenticated() || se.Temporary() {
			t.Fatalf("Open = %#v, want a 401 ServerError", err)
		}
		msg := err.Error()
		if !strings.Contains(msg, "inworld") || !strings.Contains(msg, "API key") || !strings.Contains(msg, "401") {
			t.Errorf("error %q does not name the provider, the status and the key", msg)
		}
		if key != "" && strings.Contains(msg, key) {
			t.Error("error contains the key")
		}
	}
	if st := srv.Stats(); st.Connections != 0 {
		t.Errorf("%d connections accepted with a bad key", st.Connections)
	}
}

func TestUpgradeRefused(t *testing.T) {
	tests := []struct {
		status          int
		code            int
		rateLimited     bool
		temporary       bool
		unauthenticated bool
	}{
		{http.StatusTooManyRequests, 8, true, true, false},
		{http.StatusInternalServerError, 13, false, true, false},
		{http.StatusForbidden, 7, false, false, false},
	}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.status), func(t *testing.T) {
			_, p := newFake(t, inworldfake.Config{RejectStatus: tt.status}, Config{})
			_, err := p.Open(t.Context(), tts.Config{Voice: "v", SampleRate: 8000})
			var se *ServerError
			if !errors.As(err, &se) || se.HTTPStatus != tt.status {
				t.Fatalf("Open = %v, want a ServerError with HTTP %d", err, tt.status)
			}
			if se.RateLimited() != tt.rateLimited || se.Temporary() != tt.temporary || se.Unauthenticated() != tt.unauthenticated {
				t.Errorf("classification of %v wrong", se)
			}
			if se.Code != tt.code || !strings.Contains(se.Message, "fake rejection") {
				t.Errorf("body not decoded: %#v", se)
			}
		})
	}
}

func TestFaultsMidStream(t *testing.T) {
	tests := []struct {
		name  string
		mode  inworldfake.FailMode
		check func(error) bool
	}{
		{"disconnect", inworldfake.FailDisconnect, func(err error) bool {
			return strings.HasPrefix(err.Error(), "inworld: ") && !errors.Is(err, ErrClosed)
		}},
		{"malformed", inworldfake.FailMalformed, func(err error) bool {
			return strings.Contains(err.Error(), "decoding server message")
		}},
		{"error message", inworldfake.FailError, func(err error) bool {
			var se *ServerError
			return errors.As(err, &se) && se.Code == 13 && se.Temporary()
		}},
		{"context status", inworldfake.FailStatus, func(err error) bool {
			var se *ServerError
			return errors.As(err, &se) && se.Code == 13 && strings.Contains(se.Message, "fake synthesis failure")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, p := newFake(t, inworldfake.Config{FailAfter: 2, FailMode: tt.mode}, Config{})
			s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
			// The fault may strike before Flush, which then reports it.
			_ = providertest.SendUntilFault(s, "A sentence long enough to need several audio messages.")
			pcm, _, err := providertest.RecvAudio(t, s)
			if err == nil || errors.Is(err, io.EOF) {
				t.Fatalf("Recv ended with %v, want an error", err)
			}
			if !tt.check(err) {
				t.Errorf("Recv error %q is not the expected kind", err)
			}
			if len(pcm) == 0 {
				t.Error("no audio before the fault")
			}
			if err2 := s.Send("More."); err2 == nil {
				t.Error("Send after a failure succeeded")
			}
			_ = s.Close()
			providertest.WaitFor(t, "fake sees the connection closed", func() bool { return srv.Stats().Active == 0 })
		})
	}
}

func TestRefusedCreate(t *testing.T) {
	_, p := newFake(t, inworldfake.Config{SampleRates: []int{16000, 24000}}, Config{})
	tests := []struct {
		name string
		cfg  tts.Config
		want string
	}{
		{"unknown model", tts.Config{Voice: "v", Model: "tts-9000", SampleRate: 16000}, `unknown modelId "tts-9000"`},
		{"rate refused", tts.Config{Voice: "v", SampleRate: 8000}, "sampleRateHertz 8000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := providertest.OpenTTS(t, p, tt.cfg)
			_ = s.Send("Hello.")
			_, _, err := providertest.RecvAudio(t, s)
			var se *ServerError
			if !errors.As(err, &se) || se.Code != 3 || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Recv = %v, want INVALID_ARGUMENT naming %s", err, tt.want)
			}
		})
	}
}

func TestCloseMidStream(t *testing.T) {
	srv, p := newFake(t, inworldfake.Config{RealTime: true}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
	if err := s.Send("A long answer that takes several seconds to speak at real-time pace."); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		for {
			if _, err := s.Recv(); err != nil {
				errc <- err
				return
			}
		}
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
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestContextCancel(t *testing.T) {
	srv, p := newFake(t, inworldfake.Config{RealTime: true}, Config{})
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
		for {
			if _, err := s.Recv(); err != nil {
				done <- err
				return
			}
		}
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

func TestOpenErrors(t *testing.T) {
	_, p := newFake(t, inworldfake.Config{}, Config{})
	tests := []struct {
		name string
		cfg  tts.Config
		want string
	}{
		{"no voice", tts.Config{SampleRate: 8000}, "no voice"},
		{"no rate", tts.Config{Voice: "v"}, "sample rate 0"},
		{"rate too high", tts.Config{Voice: "v", SampleRate: 96000}, "96000"},
		{"speed out of range", tts.Config{Voice: "v", SampleRate: 8000, Speed: 3}, "speed 3"},
		{"speed option type", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"speed": "fast"}}, "option speed"},
		{"delivery mode", tts.Config{Voice: "v", SampleRate: 8000, Options: map[string]any{"delivery_mode": "WILD"}}, "option delivery_mode"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := p.Open(t.Context(), tt.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "inworld: ") {
				t.Errorf("Open = %q, want it to name %q", err, tt.want)
			}
		})
	}
	bad := NewTTS(Config{BaseURL: "ftp://example.com"})
	if _, err := bad.Open(t.Context(), tts.Config{Voice: "v", SampleRate: 8000}); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Errorf("Open with an ftp base URL = %v", err)
	}
}

func TestSendRules(t *testing.T) {
	srv, p := newFake(t, inworldfake.Config{}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
	if err := s.Send("  \n"); err != nil {
		t.Errorf("blank Send = %v", err)
	}
	providertest.SendAll(t, s, "Only this.")
	if err := s.Flush(); err != nil {
		t.Errorf("second Flush = %v", err)
	}
	if err := s.Send("Too late."); err == nil || !strings.Contains(err.Error(), "after Flush") {
		t.Errorf("Send after Flush = %v", err)
	}
	if _, _, err := providertest.RecvAudio(t, s); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv ended with %v", err)
	}
	sess := srv.Sessions()[0]
	if !slices.Equal(sess.Texts, []string{"Only this."}) || slices.Contains(sess.Messages, "keepalive") {
		t.Errorf("session = %+v", sess)
	}
}

func TestFlushWithoutText(t *testing.T) {
	srv, p := newFake(t, inworldfake.Config{}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{Voice: "v", SampleRate: 8000})
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	pcm, _, err := providertest.RecvAudio(t, s)
	if !errors.Is(err, io.EOF) || len(pcm) != 0 {
		t.Fatalf("Recv = %d samples, %v; want io.EOF and no audio", len(pcm), err)
	}
	if got := srv.Sessions()[0].Messages; !slices.Equal(got, []string{"create", "close_context"}) {
		t.Errorf("messages %v", got)
	}
}
