package mistral

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/provider/mistral/mistralfake"
	"github.com/parley-voice/parley/internal/provider/providertest"
	"github.com/parley-voice/parley/internal/stt"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "mi-test-key-0123456789"

// utterance is 1 s of tone followed by 600 ms of silence (more than the
// 400 ms default endpointing).
func utterance(rate int) []int16 {
	return slices.Concat(providertest.Silence(rate, 200*time.Millisecond), providertest.Tone(rate, time.Second), providertest.Silence(rate, 600*time.Millisecond))
}

// writeUntilError writes pcm in 20 ms frames until Write fails.
func writeUntilError(s stt.Stream, rate int, pcm []int16) {
	frame := rate / 50
	for i := 0; i+frame <= len(pcm); i += frame {
		if s.Write(pcm[i:i+frame]) != nil {
			return
		}
	}
}

func startFake(t *testing.T, fcfg mistralfake.Config, cfg Config) (*mistralfake.Server, *STT) {
	t.Helper()
	if fcfg.APIKey == "" {
		fcfg.APIKey = testKey
	}
	fake := mistralfake.New(fcfg)
	mux := http.NewServeMux()
	mux.Handle(mistralfake.RealtimePath, fake)
	srv := providertest.Serve(t, mux)
	cfg.BaseURL = srv.URL + "/v1"
	cfg.HTTPClient = srv.Client()
	return fake, NewSTT(cfg)
}

func open(t *testing.T, ctx context.Context, c *STT, sc stt.Config) *Stream {
	t.Helper()
	if sc.SampleRate == 0 {
		sc.SampleRate = 8000
	}
	if sc.APIKey == "" {
		sc.APIKey = testKey
	}
	s, err := c.Open(ctx, sc)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*Stream)
}

// recvUntil receives events until one of type typ, returning all of them.
func recvUntil(t *testing.T, s stt.Stream, typ stt.EventType) []stt.Event {
	t.Helper()
	var out []stt.Event
	for {
		ev, err := providertest.Recv(t, s)
		if err != nil {
			t.Fatalf("recv: %v (after %v)", err, out)
		}
		out = append(out, ev)
		if ev.Type == typ {
			return out
		}
	}
}

func ofType(evs []stt.Event, typ stt.EventType) []stt.Event {
	var out []stt.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// TestTelephonyTwoUtterances: 8 kHz audio goes as µ-law at 8 kHz; each
// utterance gives SpeechStarted, cumulative Interims and a SpeechFinal
// Final after the client-side VAD flushes; Close ends with io.EOF.
func TestTelephonyTwoUtterances(t *testing.T) {
	fake, c := startFake(t, mistralfake.Config{Transcripts: []string{"hello there", "how are you today"}}, Config{})
	s := open(t, context.Background(), c, stt.Config{Language: "de"})

	pcm := slices.Concat(utterance(8000), utterance(8000))
	providertest.WriteFrames(t, s, 8000, pcm[:len(pcm)/2])
	first := recvUntil(t, s, stt.Final)
	providertest.WriteFrames(t, s, 8000, pcm[len(pcm)/2:])
	second := recvUntil(t, s, stt.Final)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	rest, err := providertest.RecvAll(t, s)
	if err != io.EOF || len(rest) != 0 {
		t.Fatalf("after close: events %v, err %v; want none and io.EOF", rest, err)
	}

	for i, tc := range []struct {
		evs  []stt.Event
		want string
	}{{first, "hello there"}, {second, "how are you today"}} {
		if tc.evs[0].Type != stt.SpeechStarted {
			t.Errorf("utterance %d: first event %v, want speech_started", i, tc.evs[0].Type)
		}
		final := tc.evs[len(tc.evs)-1]
		if final.Text != tc.want || !final.SpeechFinal {
			t.Errorf("utterance %d: final %+v, want %q with SpeechFinal", i, final, tc.want)
		}
		interims := ofType(tc.evs, stt.Interim)
		if len(interims) < 2 {
			t.Fatalf("utterance %d: %d interims, want the words revealed one by one", i, len(interims))
		}
		for j := 1; j < len(interims); j++ {
			if !strings.HasPrefix(interims[j].Text, interims[j-1].Text) {
				t.Errorf("utterance %d: interim %q does not extend %q", i, interims[j].Text, interims[j-1].Text)
			}
		}
		if last := interims[len(interims)-1].Text; last != tc.want {
			t.Errorf("utterance %d: last interim %q, want %q", i, last, tc.want)
		}
	}

	got := fake.Sessions()[0]
	if got.Encoding != "pcm_mulaw" || got.SampleRate != 8000 || got.Samples != len(pcm) {
		t.Errorf("fake got %s at %d Hz, %d samples; want pcm_mulaw at 8000 Hz, %d samples", got.Encoding, got.SampleRate, got.Samples, len(pcm))
	}
	if got.Flushes != 2 || !got.Ended || len(got.Errors) != 0 {
		t.Errorf("fake saw %d flushes, ended %v, errors %v; want 2 flushes, end, no errors", got.Flushes, got.Ended, got.Errors)
	}
	if got.Model != DefaultModel || got.Language != "de" {
		t.Errorf("model %q language %q, want %q and de", got.Model, got.Language, DefaultModel)
	}
}

// TestEndpointingDecidesFlush: a pause shorter than Endpointing does not
// end the utterance (TestTelephonyTwoUtterances shows a longer one does);
// Close sends the partial last frame before input_audio.end.
func TestEndpointingDecidesFlush(t *testing.T) {
	fake, c := startFake(t, mistralfake.Config{Transcripts: []string{"one two three"}}, Config{})
	s := open(t, context.Background(), c, stt.Config{Endpointing: 800 * time.Millisecond})
	pcm := slices.Concat(providertest.Tone(8000, 500*time.Millisecond), providertest.Silence(8000, 600*time.Millisecond), providertest.Tone(8000, 500*time.Millisecond), providertest.Silence(8000, 5*time.Millisecond))
	providertest.WriteFrames(t, s, 8000, pcm)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	evs, err := providertest.RecvAll(t, s)
	if err != io.EOF {
		t.Fatalf("recv: %v", err)
	}
	if got := fake.Sessions()[0]; got.Flushes != 0 || got.Samples != len(pcm) {
		t.Errorf("%d flushes, %d samples for a 600 ms pause with 800 ms endpointing; want 0 flushes and all %d samples (the partial last frame too)", got.Flushes, got.Samples, len(pcm))
	}
	finals := ofType(evs, stt.Final)
	if len(finals) != 1 || finals[0].Text != "one two three" || len(ofType(evs, stt.SpeechStarted)) != 1 {
		t.Errorf("events %v, want one speech start and the final from input_audio.end", evs)
	}
}

// TestLinearPCMRates: other rates go as pcm_s16le at 16 kHz, resampled
// when needed.
func TestLinearPCMRates(t *testing.T) {
	for _, rate := range []int{16000, 24000, 48000} {
		t.Run(strconv.Itoa(rate), func(t *testing.T) {
			fake, c := startFake(t, mistralfake.Config{Transcripts: []string{"wideband"}}, Config{})
			s := open(t, context.Background(), c, stt.Config{SampleRate: rate})
			pcm := utterance(rate)
			providertest.WriteFrames(t, s, rate, pcm)
			final := recvUntil(t, s, stt.Final)
			if got := final[len(final)-1].Text; got != "wideband" {
				t.Errorf("final %q, want wideband", got)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			got := fake.Sessions()[0]
			want := len(pcm) * 16000 / rate
			if got.Encoding != "pcm_s16le" || got.SampleRate != 16000 || got.Samples < want-2 || got.Samples > want+2 {
				t.Errorf("fake got %s at %d Hz, %d samples; want pcm_s16le at 16000 Hz, about %d", got.Encoding, got.SampleRate, got.Samples, want)
			}
		})
	}
}

// TestRequestShape: model, language and streaming delay reach the server.
func TestRequestShape(t *testing.T) {
	fake, c := startFake(t, mistralfake.Config{}, Config{StreamingDelay: 960 * time.Millisecond})
	for _, sc := range []stt.Config{
		{Model: "voxtral-mini-transcribe-realtime-3", Language: "fr", Options: map[string]any{"target_streaming_delay_ms": float64(240)}},
		{Model: "voxtral-mini-latest"},
	} {
		s := open(t, context.Background(), c, sc)
		if err := s.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
	}
	got := fake.Sessions()
	if got[0].Model != "voxtral-mini-transcribe-realtime-3" || got[0].Language != "fr" || got[0].TargetDelayMs != 240 || got[0].Updates != 1 {
		t.Errorf("session 1 %+v, want the realtime-3 model, fr, 240 ms", got[0])
	}
	if got[1].Model != DefaultModel || got[1].Query.Has("language") || got[1].TargetDelayMs != 960 {
		t.Errorf("session 2 %+v, want the default model, no language, 960 ms", got[1])
	}
}

// TestBadKey: a refused key is a 401 HTTPError naming Mistral and the
// key, without the key itself.
func TestBadKey(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{}, Config{})
	for _, key := range []string{"wrong-key-secret", ""} {
		_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: key})
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
			t.Fatalf("key %q: error %v, want a 401 HTTPError", key, err)
		}
		if !strings.Contains(err.Error(), "Mistral API key") || (key != "" && strings.Contains(err.Error(), key)) {
			t.Errorf("error %q should name the Mistral API key and not contain it", err)
		}
	}
}

// TestRefusedHandshake: other statuses keep their code and explanation.
func TestRefusedHandshake(t *testing.T) {
	for _, tc := range []struct {
		status int
		hint   string
	}{{http.StatusTooManyRequests, "rate limit"}, {http.StatusServiceUnavailable, "unavailable"}, {http.StatusForbidden, "may not use"}} {
		_, c := startFake(t, mistralfake.Config{Status: tc.status}, Config{})
		_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: testKey})
		var he *HTTPError
		if !errors.As(err, &he) || he.StatusCode != tc.status || he.Message != "injected failure" || !strings.Contains(err.Error(), tc.hint) {
			t.Errorf("status %d: error %v, want an HTTPError with the status, body message and %q", tc.status, err, tc.hint)
		}
	}
}

// TestMalformedMessage: a message that is not JSON breaks the stream with
// an error, not a panic.
func TestMalformedMessage(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{MalformedAfter: 3}, Config{})
	s := open(t, context.Background(), c, stt.Config{})
	writeUntilError(s, 8000, utterance(8000))
	_, err := providertest.RecvAll(t, s)
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("recv error %v, want a malformed-message error", err)
	}
}

// TestErrorEvent: an error event ends the stream with its message.
func TestErrorEvent(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{ErrorAfter: 3}, Config{})
	s := open(t, context.Background(), c, stt.Config{})
	writeUntilError(s, 8000, utterance(8000))
	_, err := providertest.RecvAll(t, s)
	var ce *CloseError
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "injected error") {
		t.Fatalf("recv error %v, want a CloseError with the server's message", err)
	}
	if s.Write(providertest.Tone(8000, 20*time.Millisecond)) == nil {
		t.Error("Write after the stream broke succeeded")
	}
}

// TestDisconnectMidStream: a dropped connection is an error from Recv.
func TestDisconnectMidStream(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{DisconnectAfter: 5}, Config{})
	s := open(t, context.Background(), c, stt.Config{})
	writeUntilError(s, 8000, utterance(8000))
	_, err := providertest.RecvAll(t, s)
	if err == nil || err == io.EOF {
		t.Fatalf("recv error %v, want a broken-stream error", err)
	}
}

// TestFinalWithoutDone: when the server answers a flush with deltas only,
// the deltas become the Final after FinalTimeout.
func TestFinalWithoutDone(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{Transcripts: []string{"no done here"}, NoDoneOnFlush: true}, Config{FinalTimeout: 200 * time.Millisecond})
	s := open(t, context.Background(), c, stt.Config{})
	providertest.WriteFrames(t, s, 8000, utterance(8000))
	evs := recvUntil(t, s, stt.Final)
	if final := evs[len(evs)-1]; final.Text != "no done here" || !final.SpeechFinal {
		t.Fatalf("final %+v, want the deltas with SpeechFinal", final)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if rest, err := providertest.RecvAll(t, s); err != io.EOF || len(ofType(rest, stt.Final)) != 0 {
		t.Fatalf("after close: %v, %v; want no second Final and io.EOF", rest, err)
	}
}

// TestCumulativeDone: a done carrying the whole session's text still
// yields each utterance's own Final.
func TestCumulativeDone(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{Transcripts: []string{"first part", "second part"}, CumulativeDone: true}, Config{})
	s := open(t, context.Background(), c, stt.Config{})
	providertest.WriteFrames(t, s, 8000, slices.Concat(utterance(8000), utterance(8000)))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	evs, err := providertest.RecvAll(t, s)
	finals := ofType(evs, stt.Final)
	if err != io.EOF || len(finals) != 2 || finals[0].Text != "first part" || finals[1].Text != "second part" {
		t.Fatalf("finals %v, err %v; want first part, second part, io.EOF", finals, err)
	}
}

// TestContextCancel: cancelling Open's context ends the stream and its
// goroutines (goleak checks the latter).
func TestContextCancel(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{}, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	s := open(t, ctx, c, stt.Config{})
	providertest.WriteFrames(t, s, 8000, providertest.Tone(8000, 200*time.Millisecond))
	cancel()
	_, err := providertest.RecvAll(t, s)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("recv error %v, want context.Canceled", err)
	}
}

// TestWriteAfterClose: Write fails once Close was called.
func TestWriteAfterClose(t *testing.T) {
	_, c := startFake(t, mistralfake.Config{}, Config{})
	s := open(t, context.Background(), c, stt.Config{})
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Write(providertest.Tone(8000, 20*time.Millisecond)); !errors.Is(err, errClosed) {
		t.Fatalf("write after close: %v, want errClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
}

// TestCloseTimeout: a server that never answers input_audio.end cannot
// hold Close beyond CloseTimeout.
func TestCloseTimeout(t *testing.T) {
	srv := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		_ = conn.Write(r.Context(), websocket.MessageText, []byte(`{"type":"session.created","session":{"target_streaming_delay_ms":480}}`))
		for {
			if _, _, err := conn.Read(r.Context()); err != nil {
				return
			}
		}
	}))
	c := NewSTT(Config{BaseURL: srv.URL, HTTPClient: srv.Client(), CloseTimeout: 200 * time.Millisecond})
	s := open(t, context.Background(), c, stt.Config{})
	start := time.Now()
	err := s.Close()
	if err == nil || time.Since(start) > 2*time.Second {
		t.Fatalf("close: %v after %s, want a timeout error after about 200 ms", err, time.Since(start))
	}
	if _, err := providertest.RecvAll(t, s); err != io.EOF {
		t.Fatalf("recv after close: %v, want io.EOF", err)
	}
}

// TestSessionRefusedInBand: an error event instead of session.created
// fails Open.
func TestSessionRefusedInBand(t *testing.T) {
	srv := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		_ = conn.Write(r.Context(), websocket.MessageText, []byte(`{"type":"error","error":{"message":"model not found","code":1}}`))
		_, _, _ = conn.Read(r.Context())
	}))
	c := NewSTT(Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: testKey})
	if err == nil || !strings.Contains(err.Error(), "model not found") {
		t.Fatalf("open: %v, want the server's refusal", err)
	}
}
