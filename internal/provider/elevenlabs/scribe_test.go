package elevenlabs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/elevenlabs/elevenlabsfake"
	"github.com/parley-voice/parley/internal/provider/providertest"
	"github.com/parley-voice/parley/internal/stt"
)

const sttKey = "sk-scribe-test-key"

// newSTTFake serves a fake on a test server and returns a Scribe provider
// pointed at it.
func newSTTFake(t *testing.T, cfg elevenlabsfake.Config, pcfg Config) (*elevenlabsfake.Server, *STT) {
	t.Helper()
	srv := elevenlabsfake.New(cfg)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		_ = srv.Close()
		ts.Close()
	})
	pcfg.BaseURL = ts.URL
	return srv, NewSTT(pcfg)
}

func openSTT(t *testing.T, p *STT, cfg stt.Config) *STTStream {
	t.Helper()
	s, err := p.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s.(*STTStream)
}

// speech returns d of a loud tone then silence of the given length, at rate.
func speech(rate int, d, silence time.Duration) []int16 {
	n := int(d.Seconds() * float64(rate))
	pcm := audio.Tone(440, rate, n, 8000)
	return append(pcm, make([]int16, int(silence.Seconds()*float64(rate)))...)
}

// writeFrames writes pcm in 20 ms frames.
func writeFrames(t *testing.T, s stt.Stream, rate int, pcm []int16) {
	t.Helper()
	step := rate / 50
	for off := 0; off < len(pcm); off += step {
		if err := s.Write(pcm[off:min(off+step, len(pcm))]); err != nil {
			t.Fatalf("Write: %v", err)
		}
	}
}

// recvN receives n events, failing on an error or after Recv's deadline.
func recvN(t *testing.T, s stt.Stream, n int) []stt.Event {
	t.Helper()
	var out []stt.Event
	for len(out) < n {
		ev, err := providertest.Recv(t, s)
		if err != nil {
			t.Fatalf("Recv after %v: %v", out, err)
		}
		out = append(out, ev)
	}
	return out
}

// recvErr receives until an error and returns the events and the error.
// It takes no t: tests call it from goroutines of their own.
func recvErr(s stt.Stream) ([]stt.Event, error) {
	var evs []stt.Event
	for {
		ev, err := s.Recv()
		if err != nil {
			return evs, err
		}
		evs = append(evs, ev)
	}
}

// closedSession waits for the fake to finish the only STT connection and
// returns its record.
func closedSession(t *testing.T, srv *elevenlabsfake.Server) elevenlabsfake.STTSession {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		sess := srv.STTSessions()
		if len(sess) != 1 {
			t.Fatalf("%d STT sessions, want 1", len(sess))
		}
		if sess[0].Closed || time.Now().After(deadline) {
			return sess[0]
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func brief(evs []stt.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type.String() + ":" + ev.Text
		if ev.SpeechFinal {
			out[i] += "!"
		}
	}
	return out
}

func TestSTTURL(t *testing.T) {
	tests := []struct {
		name string
		base string
		cfg  stt.Config
		want map[string][]string // query values that must be present
		none []string            // query keys that must be absent
		path string
	}{
		{name: "phone call", base: "https://api.elevenlabs.io", cfg: stt.Config{SampleRate: 8000, Language: "nl"},
			want: map[string][]string{"model_id": {DefaultSTTModel}, "audio_format": {"ulaw_8000"}, "commit_strategy": {"vad"}, "language_code": {"nl"}},
			none: []string{"vad_silence_threshold_secs", "include_timestamps", "keyterms"}, path: "wss://api.elevenlabs.io/v1/speech-to-text/realtime"},
		{name: "wideband", base: "ws://h:1/proxy/", cfg: stt.Config{SampleRate: 16000, Endpointing: 500 * time.Millisecond, Model: "scribe_x"},
			want: map[string][]string{"model_id": {"scribe_x"}, "audio_format": {"pcm_16000"}, "vad_silence_threshold_secs": {"0.5"}},
			none: []string{"language_code"}, path: "ws://h:1/proxy/v1/speech-to-text/realtime"},
		{name: "odd rate is resampled", base: "http://h", cfg: stt.Config{SampleRate: 11025},
			want: map[string][]string{"audio_format": {"pcm_16000"}}},
		{name: "sample_rate option upsamples a call", base: "ws://h", cfg: stt.Config{SampleRate: 8000, Options: map[string]any{"sample_rate": 16000.0}},
			want: map[string][]string{"audio_format": {"pcm_16000"}}},
		{name: "sample_rate option 8000 on wideband", base: "ws://h", cfg: stt.Config{SampleRate: 24000, Options: map[string]any{"sample_rate": 8000}},
			want: map[string][]string{"audio_format": {"ulaw_8000"}}},
		{name: "endpointing clamped low", base: "ws://h", cfg: stt.Config{SampleRate: 8000, Endpointing: 10 * time.Millisecond},
			want: map[string][]string{"vad_silence_threshold_secs": {"0.3"}}},
		{name: "endpointing clamped high", base: "ws://h", cfg: stt.Config{SampleRate: 8000, Endpointing: 10 * time.Second},
			want: map[string][]string{"vad_silence_threshold_secs": {"3"}}},
		{name: "negative endpointing is manual", base: "ws://h", cfg: stt.Config{SampleRate: 8000, Endpointing: -1},
			want: map[string][]string{"commit_strategy": {"manual"}}, none: []string{"vad_silence_threshold_secs"}},
		{name: "language tag is cut to ISO 639", base: "ws://h", cfg: stt.Config{SampleRate: 8000, Language: "nl-NL"},
			want: map[string][]string{"language_code": {"nl"}}},
		{name: "multi language detects", base: "ws://h", cfg: stt.Config{SampleRate: 8000, Language: "multi"},
			none: []string{"language_code"}},
		{name: "keyterms and options", base: "ws://h", cfg: stt.Config{SampleRate: 8000, Keyterms: []string{"Parley", " ", "Hoog Minder"},
			Options: map[string]any{"include_timestamps": true, "vad_threshold": 0.5, "min_silence_duration_ms": 300.0, "min_speech_duration_ms": 5.0, "no_verbatim": "true"}},
			want: map[string][]string{"keyterms": {"Parley", "Hoog Minder"}, "include_timestamps": {"true"}, "vad_threshold": {"0.5"},
				"min_silence_duration_ms": {"300"}, "no_verbatim": {"true"}},
			none: []string{"min_speech_duration_ms"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := planSTT(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := sttURL(tt.base, tt.cfg, plan)
			if err != nil {
				t.Fatal(err)
			}
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			q := u.Query()
			for k, v := range tt.want {
				if !slices.Equal(q[k], v) {
					t.Errorf("%s = %q, want %q (%s)", k, q[k], v, raw)
				}
			}
			for _, k := range tt.none {
				if q.Has(k) {
					t.Errorf("%s present: %s", k, raw)
				}
			}
			if tt.path != "" && !strings.HasPrefix(raw, tt.path+"?") {
				t.Errorf("URL %s, want path %s", raw, tt.path)
			}
			if strings.Contains(raw, "+") {
				t.Errorf("spaces must be %%20: %s", raw)
			}
		})
	}
	if _, err := sttURL("ftp://h", stt.Config{}, sttPlan{}); err == nil {
		t.Error("ftp base URL accepted")
	}
	if _, err := planSTT(stt.Config{}); err == nil {
		t.Error("zero sample rate accepted")
	}
}

func TestSTTPhoneCall(t *testing.T) {
	srv, p := newSTTFake(t, elevenlabsfake.Config{APIKey: sttKey, STT: elevenlabsfake.STTConfig{
		Segments: []elevenlabsfake.STTSegment{{Partials: []string{"hel", "hello"}, Text: "hello world"}},
	}}, Config{})
	s := openSTT(t, p, stt.Config{SampleRate: 8000, APIKey: sttKey, Language: "nl", Endpointing: 500 * time.Millisecond,
		Keyterms: []string{"Parley"}})
	pcm := speech(8000, 300*time.Millisecond, 700*time.Millisecond)
	writeFrames(t, s, 8000, pcm)

	got := brief(recvN(t, s, 4))
	want := []string{"speech_started:", "interim:hel", "interim:hello", "final:hello world!"}
	if !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if evs, err := recvErr(s); !errors.Is(err, io.EOF) || len(evs) != 0 {
		t.Fatalf("after Close: %v, %v; want no events and io.EOF", brief(evs), err)
	}

	sess := []elevenlabsfake.STTSession{closedSession(t, srv)}
	q := sess[0].Query
	for k, v := range map[string]string{"model_id": "scribe_v2_realtime", "audio_format": "ulaw_8000", "language_code": "nl",
		"keyterms": "Parley", "vad_silence_threshold_secs": "0.5", "commit_strategy": "vad"} {
		if q.Get(k) != v {
			t.Errorf("query %s = %q, want %q", k, q.Get(k), v)
		}
	}
	if sess[0].SampleRate != 8000 {
		t.Errorf("chunk sample_rate %d", sess[0].SampleRate)
	}
	// µ-law on the wire: the fake decodes exactly the companded audio.
	if wantAudio := audio.DecodeUlaw(nil, audio.EncodeUlaw(nil, pcm)); !slices.Equal(sess[0].Audio, wantAudio) {
		t.Errorf("fake decoded %d samples, not the µ-law of the %d written", len(sess[0].Audio), len(pcm))
	}
	if sess[0].CloseStatus != 1000 {
		t.Errorf("client close status %d, want 1000", sess[0].CloseStatus)
	}
}

func TestSTTWidebandTimestamps(t *testing.T) {
	srv, p := newSTTFake(t, elevenlabsfake.Config{STT: elevenlabsfake.STTConfig{
		Segments: []elevenlabsfake.STTSegment{{Text: "good morning"}},
	}}, Config{})
	s := openSTT(t, p, stt.Config{SampleRate: 16000, Endpointing: 300 * time.Millisecond,
		Options: map[string]any{"include_timestamps": true}})
	lead := make([]int16, 3200) // 200 ms of silence first
	pcm := append(lead, speech(16000, 400*time.Millisecond, 500*time.Millisecond)...)
	writeFrames(t, s, 16000, pcm)

	evs := recvN(t, s, 1)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	rest, err := recvErr(s)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("after Close: %v", err)
	}
	evs = append(evs, rest...)
	if got := brief(evs); !slices.Equal(got, []string{"final:good morning!"}) {
		t.Fatalf("events %q: want one Final (the timestamped one of the pair)", got)
	}
	f := evs[0]
	if f.Start < 150*time.Millisecond || f.Start > 250*time.Millisecond || f.End < 550*time.Millisecond || f.End > 650*time.Millisecond {
		t.Errorf("span %v–%v, want about 200ms–600ms", f.Start, f.End)
	}
	if f.Confidence <= 0.8 || f.Confidence >= 1 {
		t.Errorf("confidence %v from logprob -0.1", f.Confidence)
	}
	sess := closedSession(t, srv)
	if sess.Query.Get("audio_format") != "pcm_16000" || sess.Query.Get("include_timestamps") != "true" {
		t.Errorf("query %v", sess.Query)
	}
	if !slices.Equal(sess.Audio, pcm) {
		t.Errorf("fake received %d samples, not the %d PCM samples written", len(sess.Audio), len(pcm))
	}
}

func TestSTTResamples(t *testing.T) {
	tests := []struct {
		name     string
		cfg      stt.Config
		format   string
		wireRate int
	}{
		{"odd rate to 16 kHz", stt.Config{SampleRate: 11025}, "pcm_16000", 16000},
		{"wideband to µ-law by option", stt.Config{SampleRate: 24000, Options: map[string]any{"sample_rate": 8000.0}}, "ulaw_8000", 8000},
		{"call upsampled by option", stt.Config{SampleRate: 8000, Options: map[string]any{"sample_rate": 16000.0}}, "pcm_16000", 16000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, p := newSTTFake(t, elevenlabsfake.Config{}, Config{})
			s := openSTT(t, p, tt.cfg)
			writeFrames(t, s, tt.cfg.SampleRate, speech(tt.cfg.SampleRate, 0, time.Second))
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			sess := closedSession(t, srv)
			if sess.Query.Get("audio_format") != tt.format || sess.SampleRate != tt.wireRate {
				t.Fatalf("format %q, chunk rate %d; want %s", sess.Query.Get("audio_format"), sess.SampleRate, tt.format)
			}
			// The resampler holds back half its filter until more input.
			if n := len(sess.Audio); n < tt.wireRate*97/100 || n > tt.wireRate {
				t.Errorf("fake received %d samples for 1 s, want about %d", n, tt.wireRate)
			}
		})
	}
}

func TestSTTManualCommit(t *testing.T) {
	srv, p := newSTTFake(t, elevenlabsfake.Config{STT: elevenlabsfake.STTConfig{
		Segments: []elevenlabsfake.STTSegment{{Text: "one"}, {Text: "two"}},
	}}, Config{})
	s := openSTT(t, p, stt.Config{SampleRate: 8000, Endpointing: -1})
	// Long silence after speech: in manual mode the fake's VAD must not commit.
	writeFrames(t, s, 8000, speech(8000, 200*time.Millisecond, 2*time.Second))
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	if got := brief(recvN(t, s, 1)); got[0] != "final:one!" {
		t.Fatalf("after Finalize: %q", got)
	}
	writeFrames(t, s, 8000, speech(8000, 200*time.Millisecond, 100*time.Millisecond))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	evs, err := recvErr(s)
	if !errors.Is(err, io.EOF) || !slices.Equal(brief(evs), []string{"final:two!"}) {
		t.Fatalf("after Close: %q, %v; want the closing commit's Final then io.EOF", brief(evs), err)
	}
	sess := closedSession(t, srv)
	if sess.Query.Get("commit_strategy") != "manual" || sess.Commits != 2 || sess.CloseStatus != 1000 {
		t.Errorf("strategy %q, commits %d, close %d", sess.Query.Get("commit_strategy"), sess.Commits, sess.CloseStatus)
	}
}

func TestSTTEmptyCommitAfterPartialsEndsUtterance(t *testing.T) {
	_, p := newSTTFake(t, elevenlabsfake.Config{STT: elevenlabsfake.STTConfig{
		Segments: []elevenlabsfake.STTSegment{{Partials: []string{"uh"}}},
	}}, Config{})
	s := openSTT(t, p, stt.Config{SampleRate: 8000, Endpointing: 300 * time.Millisecond})
	writeFrames(t, s, 8000, speech(8000, 150*time.Millisecond, 400*time.Millisecond))
	got := brief(recvN(t, s, 3))
	if want := []string{"speech_started:", "interim:uh", "utterance_end:"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

func TestSTTCloseWithoutAudio(t *testing.T) {
	srv, p := newSTTFake(t, elevenlabsfake.Config{}, Config{})
	s := openSTT(t, p, stt.Config{SampleRate: 8000})
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v with nothing to commit", d)
	}
	if _, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv after Close: %v", err)
	}
	if err := s.Write([]int16{1}); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v", err)
	}
	if sess := closedSession(t, srv); sess.Commits != 0 || sess.CloseStatus != 1000 {
		t.Errorf("commits %d, close %d; want 0 and 1000", sess.Commits, sess.CloseStatus)
	}
}

func TestSTTKeepAliveAndPreviousText(t *testing.T) {
	srv, p := newSTTFake(t, elevenlabsfake.Config{}, Config{STTKeepAlive: 20 * time.Millisecond})
	s := openSTT(t, p, stt.Config{SampleRate: 8000, Options: map[string]any{"previous_text": "Hello, how can I help?"}})
	deadline := time.Now().Add(5 * time.Second)
	for srv.STTSessions()[0].KeepAlives < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	// Audio after keep-alives: the fake refuses previous_text after the
	// first chunk, so this also proves it went only in the first.
	writeFrames(t, s, 8000, make([]int16, 800))
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	sess := closedSession(t, srv)
	if sess.KeepAlives < 3 || sess.PreviousText != "Hello, how can I help?" || sess.CloseStatus != 1000 {
		t.Errorf("keep-alives %d, previous_text %q, close %d", sess.KeepAlives, sess.PreviousText, sess.CloseStatus)
	}
}

func TestSTTRefusedUpgrade(t *testing.T) {
	tests := []struct {
		name   string
		fake   elevenlabsfake.Config
		cfg    stt.Config
		status int
		kind   string
		want   []string
	}{
		{name: "wrong key", fake: elevenlabsfake.Config{APIKey: "right"}, cfg: stt.Config{SampleRate: 8000, APIKey: sttKey},
			status: 401, want: []string{"elevenlabs", "401", "Invalid API key", "check the ElevenLabs API key"}},
		{name: "missing key", fake: elevenlabsfake.Config{APIKey: "right"}, cfg: stt.Config{SampleRate: 8000},
			status: 401, want: []string{"API key"}},
		{name: "wrong key in band", fake: elevenlabsfake.Config{APIKey: "right", STT: elevenlabsfake.STTConfig{AuthInBand: true}},
			cfg: stt.Config{SampleRate: 8000, APIKey: sttKey}, kind: "auth_error", want: []string{"auth_error", "check the ElevenLabs API key"}},
		{name: "rate limited", fake: elevenlabsfake.Config{STT: elevenlabsfake.STTConfig{RejectStatus: 429}},
			cfg: stt.Config{SampleRate: 8000, APIKey: sttKey}, status: 429, want: []string{"429", "fake_rejection"}},
		{name: "server error", fake: elevenlabsfake.Config{STT: elevenlabsfake.STTConfig{RejectStatus: 503}},
			cfg: stt.Config{SampleRate: 8000, APIKey: sttKey}, status: 503, want: []string{"503"}},
		{name: "unknown model", fake: elevenlabsfake.Config{}, cfg: stt.Config{SampleRate: 8000, Model: "nova-3", APIKey: sttKey},
			status: 400, want: []string{"400", "nova-3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p := newSTTFake(t, tt.fake, Config{})
			s, err := p.Open(t.Context(), tt.cfg)
			if err == nil {
				_ = s.Close()
				t.Fatal("Open succeeded")
			}
			var se *ServerError
			if !errors.As(err, &se) || se.HTTPStatus != tt.status || se.Kind != tt.kind && tt.kind != "" {
				t.Fatalf("error %T %v; want a *ServerError with HTTP %d kind %q", err, err, tt.status, tt.kind)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), sttKey) {
				t.Errorf("error leaks the key: %v", err)
			}
		})
	}
}

func TestSTTStreamFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault elevenlabsfake.STTFault
		check func(t *testing.T, err error)
	}{
		{name: "malformed message", fault: elevenlabsfake.STTFaultMalformed, check: func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "decoding scribe message") {
				t.Errorf("error %v", err)
			}
		}},
		{name: "disconnect", fault: elevenlabsfake.STTFaultDisconnect, check: func(t *testing.T, err error) {
			if !strings.Contains(err.Error(), "elevenlabs") {
				t.Errorf("error %v", err)
			}
		}},
		{name: "error message", fault: elevenlabsfake.STTFaultError, check: func(t *testing.T, err error) {
			var se *ServerError
			if !errors.As(err, &se) || se.Kind != "quota_exceeded_error" || !strings.Contains(err.Error(), "fake quota_exceeded_error") {
				t.Errorf("error %T %v", err, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, p := newSTTFake(t, elevenlabsfake.Config{STT: elevenlabsfake.STTConfig{
				Fault: tt.fault, FaultAfterChunks: 2, ErrorType: "quota_exceeded_error",
				Segments: []elevenlabsfake.STTSegment{{Partials: []string{"x"}, Text: "x"}},
			}}, Config{STTReconnects: -1})
			s := openSTT(t, p, stt.Config{SampleRate: 8000})
			for range 5 {
				_ = s.Write(make([]int16, 160))
				time.Sleep(5 * time.Millisecond)
			}
			done := make(chan error, 1)
			go func() {
				_, err := recvErr(s)
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || errors.Is(err, io.EOF) {
					t.Fatalf("Recv ended with %v, want an error", err)
				}
				tt.check(t, err)
			case <-time.After(5 * time.Second):
				t.Fatal("Recv did not fail")
			}
			if err := s.Write(make([]int16, 160)); err == nil {
				t.Error("Write after the failure succeeded")
			}
		})
	}
}

func TestSTTQueueDropsOldestAudio(t *testing.T) {
	// No goroutines: the queue is inspected as Write leaves it.
	s := &STTStream{maxFrames: 2, enc: &sttEncoder{}, wake: make(chan struct{}, 1), log: slog.New(slog.DiscardHandler)}
	for i := range 2 {
		if err := s.Write([]int16{int16(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	if err := s.Write([]int16{3}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range s.queue {
		if o.commit {
			got = append(got, "commit")
		} else {
			got = append(got, strconv.Itoa(int(o.audio[0])))
		}
	}
	if want := []string{"2", "commit", "3"}; !slices.Equal(got, want) || s.Dropped() != 1 {
		t.Fatalf("queue %v, dropped %d; want %v and 1", got, s.Dropped(), want)
	}
}

func TestSTTReconnects(t *testing.T) {
	for _, fault := range []elevenlabsfake.STTFault{elevenlabsfake.STTFaultClose, elevenlabsfake.STTFaultDisconnect} {
		t.Run(strconv.Itoa(int(fault)), func(t *testing.T) {
			srv, p := newSTTFake(t, elevenlabsfake.Config{APIKey: sttKey, STT: elevenlabsfake.STTConfig{
				Fault: fault, FaultAfterChunks: 1, FaultConnections: 1,
				Segments: []elevenlabsfake.STTSegment{{Partials: []string{"again"}, Text: "hello again"}},
			}}, Config{STTReconnectBackoff: 10 * time.Millisecond})
			s := openSTT(t, p, stt.Config{SampleRate: 8000, APIKey: sttKey, Endpointing: 300 * time.Millisecond})
			_ = s.Write(make([]int16, 160))
			deadline := time.Now().Add(5 * time.Second)
			for len(srv.STTSessions()) < 2 && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			writeFrames(t, s, 8000, speech(8000, 200*time.Millisecond, 400*time.Millisecond))
			got := brief(recvN(t, s, 3))
			if want := []string{"speech_started:", "interim:again", "final:hello again!"}; !slices.Equal(got, want) {
				t.Fatalf("events %q, want %q", got, want)
			}
			sess := srv.STTSessions()
			if len(sess) != 2 || sess[1].Query.Get("audio_format") != "ulaw_8000" {
				t.Fatalf("%d sessions, want the second with the same query", len(sess))
			}
		})
	}
}

func TestSTTReconnectGivesUp(t *testing.T) {
	srv, p := newSTTFake(t, elevenlabsfake.Config{STT: elevenlabsfake.STTConfig{Fault: elevenlabsfake.STTFaultDisconnect, FaultAfterChunks: 1}},
		Config{STTReconnects: 2, STTReconnectBackoff: 5 * time.Millisecond, STTKeepAlive: 10 * time.Millisecond})
	s := openSTT(t, p, stt.Config{SampleRate: 8000})
	_ = s.Write(make([]int16, 160))
	done := make(chan error, 1)
	go func() {
		_, err := recvErr(s)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "elevenlabs") {
			t.Fatalf("Recv ended with %v, want the connection error", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not fail")
	}
	if n := len(srv.STTSessions()); n != 3 {
		t.Errorf("%d connections, want 1 + 2 reconnections", n)
	}
}

func TestSTTContextCancel(t *testing.T) {
	_, p := newSTTFake(t, elevenlabsfake.Config{}, Config{})
	ctx, cancel := context.WithCancel(t.Context())
	s, err := p.Open(ctx, stt.Config{SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeFrames(t, s, 8000, speech(8000, 100*time.Millisecond, 0))
	cancel()
	done := make(chan error, 1)
	go func() {
		_, err := recvErr(s)
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Recv: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recv did not end after cancel")
	}
	start := time.Now()
	_ = s.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close after cancel took %v", d)
	}
}

func TestSTTOpenHonoursDialContext(t *testing.T) {
	// A server that accepts the upgrade but never says session_started.
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	})
	ts := httptest.NewServer(hang)
	defer ts.Close()
	p := NewSTT(Config{BaseURL: ts.URL})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.Open(ctx, stt.Config{SampleRate: 8000}); err == nil {
		t.Fatal("Open succeeded")
	}
}

func TestSTTMessageMapping(t *testing.T) {
	tests := []struct {
		name       string
		timestamps bool
		msgs       []string
		want       []string
		wantErr    string // the Kind of the *ServerError the last message gives
	}{
		{name: "utterance", msgs: []string{
			`{"message_type":"partial_transcript","text":""}`,
			`{"message_type":"partial_transcript","text":"hi"}`,
			`{"message_type":"partial_transcript","text":"hi there"}`,
			`{"message_type":"committed_transcript","text":"Hi there.","language_code":"en"}`,
		}, want: []string{"speech_started:", "interim:hi", "interim:hi there", "final:Hi there.!"}},
		{name: "empty commit ends an utterance only after partials", msgs: []string{
			`{"message_type":"committed_transcript","text":""}`,
			`{"message_type":"partial_transcript","text":"um"}`,
			`{"message_type":"committed_transcript","text":""}`,
			`{"message_type":"committed_transcript","text":""}`,
		}, want: []string{"speech_started:", "interim:um", "utterance_end:"}},
		{name: "plain commit of the pair ignored with timestamps", timestamps: true, msgs: []string{
			`{"message_type":"committed_transcript","text":"a b"}`,
			`{"message_type":"committed_transcript_with_timestamps","text":"a b","words":[{"text":"a","start":0.5,"end":0.7,"type":"word"},{"text":" ","start":0.7,"end":0.8,"type":"spacing"},{"text":"b","start":0.8,"end":1.0,"type":"word"}]}`,
		}, want: []string{"final:a b!"}},
		{name: "timestamped commit ignored without timestamps", msgs: []string{
			`{"message_type":"committed_transcript_with_timestamps","text":"a"}`,
			`{"message_type":"committed_transcript","text":"a"}`,
		}, want: []string{"final:a!"}},
		{name: "unknown types and throttling are not fatal", msgs: []string{
			`{"message_type":"something_new"}`,
			`{"message_type":"commit_throttled","error":"slow down"}`,
			`{"message_type":"partial_transcript","text":"x"}`,
		}, want: []string{"speech_started:", "interim:x"}},
		{name: "error message", msgs: []string{`{"message_type":"auth_error","error":"bad key sk-scribe-test-key"}`}, wantErr: "auth_error"},
		{name: "error text in message", msgs: []string{`{"message_type":"rate_limited","message":"too many"}`}, wantErr: "rate_limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &STTStream{key: sttKey, plan: sttPlan{timestamps: tt.timestamps}, log: slog.New(slog.DiscardHandler)}
			c := &sttConn{finalIn: make(chan struct{})}
			var err error
			for _, raw := range tt.msgs {
				m, perr := parseSTTMessage([]byte(raw))
				if perr != nil {
					t.Fatal(perr)
				}
				if err = s.handle(c, m); err != nil {
					break
				}
			}
			if tt.wantErr != "" {
				var se *ServerError
				if !errors.As(err, &se) || se.Kind != tt.wantErr || se.Message == "" || strings.Contains(err.Error(), sttKey) {
					t.Fatalf("error %v, want a redacted *ServerError of kind %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s.events.Finish(io.EOF)
			var events []stt.Event
			for {
				ev, err := s.events.Recv()
				if err != nil {
					break
				}
				events = append(events, ev)
			}
			if got := brief(events); !slices.Equal(got, tt.want) {
				t.Fatalf("events %q, want %q", got, tt.want)
			}
			if tt.timestamps {
				if ev := events[0]; ev.Start != 500*time.Millisecond || ev.End != time.Second {
					t.Errorf("span %v–%v, want the words' 0.5 s–1 s (spacing skipped)", ev.Start, ev.End)
				}
			}
		})
	}
	for _, raw := range []string{`{"message_type":`, `{"text":"no type"}`, `[1]`} {
		if _, err := parseSTTMessage([]byte(raw)); err == nil {
			t.Errorf("parseSTTMessage(%s) succeeded", raw)
		}
	}
}
