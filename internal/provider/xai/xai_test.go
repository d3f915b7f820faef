package xai

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

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/providertest"
	"github.com/parley-voice/parley/internal/provider/xai/xaifake"
	"github.com/parley-voice/parley/internal/tts"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "xai-test-key-123"

// newFake serves a fake xAI on a test server and returns a provider pointed
// at it (through an http:// base URL, mapped to ws://).
func newFake(t *testing.T, cfg xaifake.Config, pcfg Config) (*xaifake.Server, *TTS) {
	t.Helper()
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	srv := xaifake.New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	pcfg.BaseURL = ts.URL
	return srv, NewTTS(pcfg)
}

// TestSpeak speaks two sentences at each kind of rate and codec and checks
// the audio sample for sample (or, when resampled, its length and level)
// and the request the fake received.
func TestSpeak(t *testing.T) {
	const s1, s2 = "Hello there.", "How are you?"
	g711 := func(enc func([]byte, []int16) []byte, dec func([]int16, []byte) []int16) func([]int16) []int16 {
		return func(pcm []int16) []int16 { return dec(nil, enc(nil, pcm)) }
	}
	tests := []struct {
		name      string
		codec     string
		rate      int
		wireCodec string
		wireRate  int
		wire      func([]int16) []int16 // what the wire codec does to the audio; nil: exact
	}{
		{"pcm 8k", "", 8000, "pcm", 8000, nil},
		{"mulaw 8k", CodecMulaw, 8000, "mulaw", 8000, g711(audio.EncodeUlaw, audio.DecodeUlaw)},
		{"alaw 8k", CodecAlaw, 8000, "alaw", 8000, g711(audio.EncodeAlaw, audio.DecodeAlaw)},
		{"pcm 16k", "", 16000, "pcm", 16000, nil},
		{"mulaw asked at 24k gives pcm", CodecMulaw, 24000, "pcm", 24000, nil},
		{"11025 resampled from 16k", "", 11025, "pcm", 16000, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, p := newFake(t, xaifake.Config{}, Config{Codec: tc.codec})
			s := providertest.OpenTTS(t, p, tts.Config{Voice: "Ara", Language: "en", SampleRate: tc.rate, APIKey: testKey, Speed: 1.2})
			providertest.SendAll(t, s, s1, s2)
			got, _, err := providertest.RecvAudio(t, s)
			if !errors.Is(err, io.EOF) {
				t.Fatalf("Recv: %v, want io.EOF", err)
			}
			wireAudio := append(xaifake.DefaultSynth(s1, tc.wireRate), xaifake.DefaultSynth(s2, tc.wireRate)...)
			switch {
			case tc.wireRate != tc.rate:
				want := (len(wireAudio)*tc.rate + tc.wireRate - 1) / tc.wireRate
				if len(got) != want {
					t.Errorf("got %d samples at %d Hz, want %d", len(got), tc.rate, want)
				}
				if lvl := audio.RMS(got); lvl < 3000 {
					t.Errorf("resampled tone RMS %v, want about 4200", lvl)
				}
			case tc.wire != nil:
				if want := tc.wire(wireAudio); !slices.Equal(got, want) {
					t.Errorf("audio differs from the G.711 round trip of the tone (%d vs %d samples)", len(got), len(want))
				}
			default:
				if !slices.Equal(got, wireAudio) {
					t.Errorf("audio differs from the tone (%d vs %d samples)", len(got), len(wireAudio))
				}
			}
			sess := srv.Sessions()
			if len(sess) != 1 {
				t.Fatalf("%d sessions, want 1", len(sess))
			}
			q := sess[0].Query
			for k, want := range map[string]string{"voice": "ara", "language": "en", "codec": tc.wireCodec,
				"sample_rate": strconv.Itoa(tc.wireRate), "speed": "1.2"} {
				if q.Get(k) != want {
					t.Errorf("query %s = %q, want %q", k, q.Get(k), want)
				}
			}
			if want := []string{s1, " " + s2}; !slices.Equal(sess[0].Deltas, want) {
				t.Errorf("deltas %q, want %q", sess[0].Deltas, want)
			}
			if sess[0].Done != 1 {
				t.Errorf("text.done received %d times, want 1", sess[0].Done)
			}
			// The service keeps the socket open after audio.done: the client
			// must close it by itself.
			providertest.WaitFor(t, "client closes the websocket after audio.done", func() bool { return srv.Sessions()[0].Closed })
		})
	}
}

// TestOddByteSplit: audio deltas of an odd byte count split samples; the
// samples must come out whole and exact.
func TestOddByteSplit(t *testing.T) {
	_, p := newFake(t, xaifake.Config{ChunkBytes: 101}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{SampleRate: 8000, APIKey: testKey})
	providertest.SendAll(t, s, "Split samples.")
	got, _, err := providertest.RecvAudio(t, s)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Recv: %v", err)
	}
	if want := xaifake.DefaultSynth("Split samples.", 8000); !slices.Equal(got, want) {
		t.Fatalf("audio differs (%d vs %d samples)", len(got), len(want))
	}
}

// TestDefaults: no voice and no language give ara and auto.
func TestDefaults(t *testing.T) {
	srv, p := newFake(t, xaifake.Config{}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{SampleRate: 8000, APIKey: testKey})
	providertest.SendAll(t, s, "Hi.")
	if _, _, err := providertest.RecvAudio(t, s); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv: %v", err)
	}
	q := srv.Sessions()[0].Query
	if q.Get("voice") != DefaultVoice || q.Get("language") != DefaultLanguage || q.Has("speed") {
		t.Fatalf("query %v, want voice=ara language=auto and no speed", q)
	}
}

// TestBadKey: the fake refuses a wrong key with 401; the error names xAI
// and the key, says it is an auth failure and does not contain the key.
func TestBadKey(t *testing.T) {
	_, p := newFake(t, xaifake.Config{APIKey: "the-right-key"}, Config{})
	const wrong = "xai-wrong-key-456"
	_, err := p.Open(t.Context(), tts.Config{SampleRate: 8000, APIKey: wrong})
	var ae *APIError
	if !errors.As(err, &ae) || ae.StatusCode != http.StatusUnauthorized || !ae.Unauthorized() || ae.Retryable() {
		t.Fatalf("Open with a wrong key: %v, want a 401 *APIError", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "xai") || !strings.Contains(msg, "API key") || strings.Contains(msg, wrong) {
		t.Fatalf("error %q should name xai and the API key, without the key", msg)
	}
	if _, err := p.Open(t.Context(), tts.Config{SampleRate: 8000}); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("Open without a key: %v, want an error naming the key", err)
	}
}

// TestRefused: other refused upgrades keep their status and the service's
// explanation; 429 and 5xx are retryable, 400 is not.
func TestRefused(t *testing.T) {
	tests := []struct {
		name      string
		fake      xaifake.Config
		voice     string
		status    int
		retryable bool
		wantMsg   string
	}{
		{"rate limited", xaifake.Config{RefuseStatus: 429}, "", 429, true, "fake refusal"},
		{"unavailable", xaifake.Config{RefuseStatus: 503}, "", 503, true, "fake refusal"},
		{"unknown voice", xaifake.Config{}, "nobody", 400, false, `unknown voice "nobody"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, p := newFake(t, tc.fake, Config{})
			_, err := p.Open(t.Context(), tts.Config{Voice: tc.voice, SampleRate: 8000, APIKey: testKey})
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Retryable() != tc.retryable {
				t.Fatalf("Open: %v, want an *APIError with status %d", err, tc.status)
			}
			if !strings.Contains(ae.Message, tc.wantMsg) {
				t.Fatalf("message %q, want it to contain %q", ae.Message, tc.wantMsg)
			}
		})
	}
}

// TestFaults: a disconnect, a malformed message or an error event in the
// middle of the audio ends Recv with an error, not io.EOF or a panic.
func TestFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault xaifake.Fault
		check func(error) bool
	}{
		{"disconnect", xaifake.Disconnect, func(err error) bool { return strings.Contains(err.Error(), "xai: reading audio") }},
		{"malformed", xaifake.Malformed, func(err error) bool { return strings.Contains(err.Error(), "decoding server message") }},
		{"error event", xaifake.ErrorEvent, func(err error) bool {
			var ae *APIError
			return errors.As(err, &ae) && ae.Message == "fake failure"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, p := newFake(t, xaifake.Config{Fault: tc.fault, FaultAfter: 2}, Config{})
			s := providertest.OpenTTS(t, p, tts.Config{SampleRate: 8000, APIKey: testKey})
			if err := s.Send("A sentence long enough for several audio messages."); err != nil {
				t.Fatal(err)
			}
			// The fault may strike before Flush; Flush then reports it.
			flushErr := s.Flush()
			got, _, err := providertest.RecvAudio(t, s)
			if flushErr != nil && flushErr.Error() != err.Error() {
				t.Errorf("Flush: %v, want nil or Recv's error %v", flushErr, err)
			}
			if err == nil || errors.Is(err, io.EOF) || !tc.check(err) {
				t.Fatalf("Recv: %v", err)
			}
			// A dropped connection may lose what was in flight; the other
			// faults come after exactly 2 messages of 100 ms.
			if len(got) > 2*800 || (tc.fault != xaifake.Disconnect && len(got) != 2*800) {
				t.Errorf("got %d samples before the fault, want the 2 messages of 100 ms", len(got))
			}
			if err := s.Send("more"); err == nil {
				t.Error("Send after the stream failed succeeded")
			}
		})
	}
}

// TestCloseMidStream: Close during the audio unblocks Recv with ErrClosed,
// makes Send fail and ends the connection on the fake's side.
func TestCloseMidStream(t *testing.T) {
	srv, p := newFake(t, xaifake.Config{ChunkBytes: 160}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{SampleRate: 8000, APIKey: testKey})
	if err := s.Send(strings.Repeat("A long reply. ", 40)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatalf("first Recv: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := providertest.RecvAudio(t, s)
		errc <- err
	}()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrClosed) {
		t.Fatalf("Recv after Close: %v, want ErrClosed", err)
	}
	if err := s.Send("x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	providertest.WaitFor(t, "fake sees the connection end", func() bool { return srv.Sessions()[0].Closed })
}

// TestContextCancel: cancelling Open's context ends the stream with an
// error wrapping context.Canceled.
func TestContextCancel(t *testing.T) {
	_, p := newFake(t, xaifake.Config{FirstAudioDelay: time.Minute}, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	s, err := p.Open(ctx, tts.Config{SampleRate: 8000, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	providertest.SendAll(t, s, "Never spoken.")
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := s.Recv(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv after cancel: %v, want context.Canceled", err)
	}
}

// TestSendRules: blank text is not sent, Send after Flush fails, Flush
// twice is harmless.
func TestSendRules(t *testing.T) {
	srv, p := newFake(t, xaifake.Config{}, Config{})
	s := providertest.OpenTTS(t, p, tts.Config{SampleRate: 8000, APIKey: testKey})
	for _, text := range []string{"", "  \n", "One. "} {
		if err := s.Send(text); err != nil {
			t.Fatalf("Send(%q): %v", text, err)
		}
	}
	if err := s.Send("Two."); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("second Flush: %v", err)
	}
	if err := s.Send("Three."); err == nil {
		t.Fatal("Send after Flush succeeded")
	}
	if _, _, err := providertest.RecvAudio(t, s); !errors.Is(err, io.EOF) {
		t.Fatalf("Recv: %v", err)
	}
	// "One. " ends with a space, so no space is added before "Two.".
	if got, want := srv.Sessions()[0].Deltas, []string{"One. ", "Two."}; !slices.Equal(got, want) {
		t.Fatalf("deltas %q, want %q", got, want)
	}
}

// TestEarlyNormalClose: a service that closes normally before audio.done
// has cut the reply short; Recv must say so rather than return io.EOF.
func TestEarlyNormalClose(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		_, _, _ = c.Read(r.Context()) // text.delta
		_, _, _ = c.Read(r.Context()) // text.done
		_ = c.Close(websocket.StatusNormalClosure, "")
	}))
	defer ts.Close()
	p := NewTTS(Config{BaseURL: ts.URL})
	s := providertest.OpenTTS(t, p, tts.Config{SampleRate: 8000, APIKey: testKey})
	providertest.SendAll(t, s, "Hello.")
	if _, _, err := providertest.RecvAudio(t, s); err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "before the end") {
		t.Fatalf("Recv: %v", err)
	}
}
