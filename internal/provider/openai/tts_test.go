package openai

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
	"github.com/parley-voice/parley/internal/tts"
)

// ttsFor is a TTS talking to srv.
func ttsFor(srv *httptest.Server) *TTS {
	return NewTTS(Config{BaseURL: srv.URL + "/v1", HTTPClient: srv.Client()})
}

// speakCfg is a phone-call configuration.
func speakCfg(key string) tts.Config {
	return tts.Config{Voice: "coral", Model: "gpt-4o-mini-tts", SampleRate: 8000, APIKey: key}
}

// recvAllAudio reads st until it fails or ends.
func recvAllAudio(st tts.Stream) ([]int16, int, error) {
	var pcm []int16
	chunks := 0
	for {
		c, err := st.Recv()
		if err != nil {
			return pcm, chunks, err
		}
		pcm = append(pcm, c.PCM...)
		chunks++
	}
}

// speak opens a stream, sends texts, flushes and reads all the audio.
func speak(t *testing.T, p *TTS, cfg tts.Config, texts ...string) ([]int16, int, error) {
	t.Helper()
	st, err := p.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer st.Close()
	// A failing request may fail before Send or Flush returns: they then
	// report it, as Recv would.
	for _, text := range texts {
		if err := st.Send(text); err != nil {
			return nil, 0, err
		}
	}
	if err := st.Flush(); err != nil {
		return nil, 0, err
	}
	return recvAllAudio(st)
}

// expectedAudio is what the client must return for the requests the fake
// answered: their tone, in order, resampled as one stream.
func expectedAudio(t *testing.T, reqs []openaifake.SpeechRequest, rate int) []int16 {
	t.Helper()
	var src []int16
	for _, r := range reqs {
		src = append(src, openaifake.DefaultSynth(r.Input, openaifake.SpeechRate)...)
	}
	out, err := audio.Resample(src, openaifake.SpeechRate, rate)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func inputs(reqs []openaifake.SpeechRequest) []string {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		out[i] = r.Input
	}
	return out
}

func TestTTSFromFake(t *testing.T) {
	tests := []struct {
		name   string
		rate   int
		speech openaifake.Speech
	}{
		{name: "8 kHz raw", rate: 8000},
		{name: "16 kHz raw, samples split between writes", rate: 16000, speech: openaifake.Speech{ChunkBytes: 4801}},
		{name: "24 kHz raw, no resampling", rate: 24000, speech: openaifake.Speech{ChunkBytes: 999}},
		{name: "8 kHz as server-sent events", rate: 8000, speech: openaifake.Speech{SSE: true, ChunkBytes: 3001}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, srv := fakeServer(t, openaifake.Config{APIKey: "sk-right", Speeches: []openaifake.Speech{tc.speech}})
			cfg := speakCfg("sk-right")
			cfg.SampleRate = tc.rate
			got, chunks, err := speak(t, ttsFor(srv), cfg, "Hello there.", "  ", "How can I help you today?")
			if err != io.EOF {
				t.Fatalf("Recv: %v, want io.EOF", err)
			}
			reqs := fake.SpeechRequests()
			if joined := strings.Join(inputs(reqs), " "); joined != "Hello there. How can I help you today?" {
				t.Errorf("inputs %q", inputs(reqs))
			}
			want := expectedAudio(t, reqs, tc.rate)
			if !slices.Equal(got, want) {
				t.Errorf("got %d samples, want %d (the fake's audio resampled to %d Hz)", len(got), len(want), tc.rate)
			}
			if chunks < 2 {
				t.Errorf("audio came in %d chunk(s): not streamed", chunks)
			}
		})
	}
}

func TestTTSRequestShape(t *testing.T) {
	speed := 1.25
	tests := []struct {
		name string
		cfg  tts.Config
		want openaifake.SpeechRequest
	}{
		{name: "defaults", cfg: tts.Config{SampleRate: 8000},
			want: openaifake.SpeechRequest{Model: "gpt-4o-mini-tts", Voice: "alloy", ResponseFormat: "pcm"}},
		{name: "instructions and speed", cfg: tts.Config{SampleRate: 8000, Model: "gpt-4o-mini-tts", Voice: "marin", Language: "nl", Speed: speed,
			Options: map[string]any{"instructions": "Speak warmly.", "speed": 3.0}},
			want: openaifake.SpeechRequest{Model: "gpt-4o-mini-tts", Voice: "marin", ResponseFormat: "pcm", Instructions: "Speak warmly.", Speed: &speed}},
		{name: "speed option", cfg: tts.Config{SampleRate: 8000, Voice: "ash", Options: map[string]any{"speed": 1.25}},
			want: openaifake.SpeechRequest{Model: "gpt-4o-mini-tts", Voice: "ash", ResponseFormat: "pcm", Speed: &speed}},
		{name: "tts-1 gets no instructions", cfg: tts.Config{SampleRate: 8000, Model: "tts-1", Voice: "onyx", Options: map[string]any{"instructions": "Whisper."}},
			want: openaifake.SpeechRequest{Model: "tts-1", Voice: "onyx", ResponseFormat: "pcm"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake, srv := fakeServer(t, openaifake.Config{APIKey: "sk-right"})
			tc.cfg.APIKey = "sk-right"
			if _, _, err := speak(t, ttsFor(srv), tc.cfg, "Good morning."); err != io.EOF {
				t.Fatalf("Recv: %v", err)
			}
			reqs := fake.SpeechRequests()
			tc.want.Input = "Good morning."
			if len(reqs) != 1 || !reflect.DeepEqual(reqs[0], tc.want) {
				t.Errorf("requests %+v\nwant [%+v]", reqs, tc.want)
			}
		})
	}
}

func TestTTSOpenRejects(t *testing.T) {
	p := NewTTS(Config{})
	tests := []struct {
		name string
		cfg  tts.Config
		want string
	}{
		{"no sample rate", tts.Config{}, "sample rate 0"},
		{"speed too high", tts.Config{SampleRate: 8000, Speed: 5}, "speed 5: must be from 0.25 to 4"},
		{"speed option not a number", tts.Config{SampleRate: 8000, Options: map[string]any{"speed": "fast"}}, "option speed"},
		{"instructions not text", tts.Config{SampleRate: 8000, Options: map[string]any{"instructions": 3}}, "option instructions"},
		{"rate the resampler refuses", tts.Config{SampleRate: 1_000_000}, "resampling"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := p.Open(context.Background(), tc.cfg)
			if err == nil {
				st.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "openai: ") {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestTTSBatchesTextQueuedDuringARequest(t *testing.T) {
	started := make(chan struct{}, 4)
	release := make(chan struct{})
	fake, srv := fakeServer(t, openaifake.Config{Speak: func(openaifake.SpeechRequest) openaifake.Speech {
		started <- struct{}{}
		<-release
		return openaifake.Speech{}
	}})
	st, err := ttsFor(srv).Open(context.Background(), speakCfg(""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.Send("One.")
	<-started // the first request is in flight
	_ = st.Send("Two,")
	_ = st.Send("three.")
	_ = st.Flush()
	close(release)
	if _, _, err := recvAllAudio(st); err != io.EOF {
		t.Fatalf("Recv: %v", err)
	}
	if got, want := inputs(fake.SpeechRequests()), []string{"One.", "Two, three."}; !slices.Equal(got, want) {
		t.Errorf("inputs %q, want %q", got, want)
	}
}

func TestTTSSplitsLongInput(t *testing.T) {
	fake, srv := fakeServer(t, openaifake.Config{Synth: func(string, int) []int16 { return make([]int16, 240) }})
	long := strings.Repeat("word ", 1000) // 5000 characters
	if _, _, err := speak(t, ttsFor(srv), speakCfg(""), long, "Done."); err != io.EOF {
		t.Fatalf("Recv: %v", err)
	}
	reqs := fake.SpeechRequests()
	total := 0
	for _, r := range reqs {
		if n := len([]rune(r.Input)); n > MaxSpeechInput {
			t.Errorf("input of %d characters", n)
		}
		total += len(strings.Fields(r.Input))
	}
	if len(reqs) != 2 || total != 1001 {
		t.Errorf("%d requests carrying %d words, want 2 carrying 1001", len(reqs), total)
	}
}

func TestTTSErrors(t *testing.T) {
	const key = "sk-proj-TOPSECRET"
	tests := []struct {
		name      string
		cfg       openaifake.Config
		key       string
		status    int
		retryable bool
		want      string
	}{
		{name: "wrong key", cfg: openaifake.Config{APIKey: "sk-right"}, key: key, status: 401,
			want: "openai: text-to-speech refused (check the OpenAI API key): openai: 401 Unauthorized: Incorrect API key provided."},
		{name: "no key", cfg: openaifake.Config{APIKey: "sk-right"}, status: 401, want: "check the OpenAI API key"},
		{name: "rate limited", cfg: openaifake.Config{Speeches: []openaifake.Speech{{Status: 429, RetryAfter: time.Second}}},
			status: 429, retryable: true, want: "retry after 1s"},
		{name: "server error", cfg: openaifake.Config{Speeches: []openaifake.Speech{{Status: 503}}}, status: 503, retryable: true,
			want: "503 Service Unavailable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, srv := fakeServer(t, tc.cfg)
			st, err := ttsFor(srv).Open(context.Background(), speakCfg(tc.key))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			_ = st.Send("Hello.")
			_, _, err = recvAllAudio(st)
			var ae *APIError
			if !errors.As(err, &ae) || ae.StatusCode != tc.status || ae.Retryable() != tc.retryable {
				t.Fatalf("err = %v, want an *APIError with status %d, retryable %v", err, tc.status, tc.retryable)
			}
			if msg := err.Error(); !strings.Contains(msg, tc.want) || strings.Contains(msg, key) {
				t.Errorf("err = %q, want it to contain %q and not the key", msg, tc.want)
			}
			if err := st.Send("More."); err == nil || !errors.As(err, &ae) {
				t.Errorf("Send after the failure = %v, want the failure", err)
			}
		})
	}
}

func TestTTSUnreadableAnswers(t *testing.T) {
	mp3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		w.Header().Set("Content-Type", "audio/mpeg")
		_, _ = w.Write([]byte("ID3\x04"))
	}))
	defer mp3.Close()
	errorEvent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"type\":\"error\",\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}\n\n")
	}))
	defer errorEvent.Close()
	_, malformedJSON := fakeServer(t, openaifake.Config{Speeches: []openaifake.Speech{{Malformed: true}}})
	_, malformedEvent := fakeServer(t, openaifake.Config{Speeches: []openaifake.Speech{{Malformed: true, SSE: true}}})
	tests := []struct {
		name string
		srv  *httptest.Server
		want string
	}{
		{"JSON that is not an error", malformedJSON, "application/json instead of audio"},
		{"event that is not JSON", malformedEvent, "openai: decode speech event:"},
		{"mp3 instead of pcm", mp3, "the speech response is audio/mpeg, not raw PCM"},
		{"error event", errorEvent, "openai: text-to-speech failed: openai: error event in stream: overloaded"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := speak(t, ttsFor(tc.srv), speakCfg(""), "Hello.")
			if err == nil || err == io.EOF || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTTSDisconnectMidStream(t *testing.T) {
	for _, sse := range []bool{false, true} {
		name := map[bool]string{false: "raw", true: "events"}[sse]
		t.Run(name, func(t *testing.T) {
			_, srv := fakeServer(t, openaifake.Config{Speeches: []openaifake.Speech{{CutAfter: 2, SSE: sse}}})
			got, chunks, err := speak(t, ttsFor(srv), speakCfg(""), "This sentence is long enough for several chunks of audio.")
			if !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
			}
			if chunks == 0 || len(got) == 0 {
				t.Error("no audio before the cut")
			}
		})
	}
}

// slowSpeech sends its first 100 ms of audio, then waits a long time
// before each further piece.
func slowSpeech() openaifake.Speech { return openaifake.Speech{ChunkDelay: time.Minute} }

func TestTTSStreamsBeforeTheBodyEnds(t *testing.T) {
	_, srv := fakeServer(t, openaifake.Config{Speeches: []openaifake.Speech{slowSpeech()}})
	st, err := ttsFor(srv).Open(context.Background(), speakCfg(""))
	if err != nil {
		t.Fatal(err)
	}
	_ = st.Send("A sentence that takes a while to say.")
	c, err := st.Recv()
	if err != nil || len(c.PCM) < 700 {
		t.Fatalf("first chunk: %d samples, %v; want about 100 ms at 8 kHz", len(c.PCM), err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := st.Recv()
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Recv block
	start := time.Now()
	st.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Errorf("blocked Recv after Close = %v, want ErrClosed", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if _, err := st.Recv(); !errors.Is(err, ErrClosed) {
		t.Errorf("Recv after Close = %v", err)
	}
	if err := st.Send("More."); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close = %v", err)
	}
}

func TestTTSContextCancel(t *testing.T) {
	_, srv := fakeServer(t, openaifake.Config{Speeches: []openaifake.Speech{slowSpeech()}})
	ctx, cancel := context.WithCancel(context.Background())
	st, err := ttsFor(srv).Open(ctx, speakCfg(""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.Send("Hello there.")
	if _, err := st.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	_, _, err = recvAllAudio(st)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after cancel = %v, want context.Canceled", err)
	}
}

func TestTTSCloseBeforeText(t *testing.T) {
	st, err := NewTTS(Config{BaseURL: "http://127.0.0.1:1"}).Open(context.Background(), speakCfg(""))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st.Close()
	if err := st.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close = %v", err)
	}
}

func TestTTSFlushWithoutText(t *testing.T) {
	fake, srv := fakeServer(t, openaifake.Config{})
	got, _, err := speak(t, ttsFor(srv), speakCfg(""))
	if err != io.EOF || len(got) != 0 || len(fake.SpeechRequests()) != 0 {
		t.Errorf("got %d samples, %v, %d requests; want nothing and io.EOF", len(got), err, len(fake.SpeechRequests()))
	}
}

func TestTTSSendAfterFlush(t *testing.T) {
	_, srv := fakeServer(t, openaifake.Config{})
	st, err := ttsFor(srv).Open(context.Background(), speakCfg(""))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_ = st.Flush()
	if err := st.Send("Late."); err == nil {
		t.Error("Send after Flush succeeded")
	}
	if err := st.Flush(); err != nil {
		t.Errorf("second Flush = %v", err)
	}
}

func TestTTSConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	p := ttsFor(srv)
	srv.Close()
	_, _, err := speak(t, p, speakCfg("sk-secret"), "Hello.")
	if err == nil || !strings.HasPrefix(err.Error(), "openai: send speech request:") || strings.Contains(err.Error(), "sk-secret") {
		t.Errorf("err = %v", err)
	}
}

func TestSplitInput(t *testing.T) {
	tests := []struct {
		text  string
		limit int
		want  []string
	}{
		{"short", 10, []string{"short"}},
		{"one two three four", 9, []string{"one two", "three", "four"}},
		{"abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"héé héé", 4, []string{"héé", "héé"}},
	}
	for _, tc := range tests {
		if got := splitInput(tc.text, tc.limit); !slices.Equal(got, tc.want) {
			t.Errorf("splitInput(%q, %d) = %q, want %q", tc.text, tc.limit, got, tc.want)
		}
	}
}

func TestJoinBatch(t *testing.T) {
	tests := []struct {
		queue []string
		limit int
		want  string
		n     int
	}{
		{[]string{"a"}, 5, "a", 1},
		{[]string{"ab", "cd", "ef"}, 5, "ab cd", 2},
		{[]string{"abcde", "f"}, 5, "abcde", 1},
		{[]string{"é", "é", "é"}, 5, "é é é", 3},
	}
	for _, tc := range tests {
		if got, n := joinBatch(tc.queue, tc.limit); got != tc.want || n != tc.n {
			t.Errorf("joinBatch(%q, %d) = %q, %d; want %q, %d", tc.queue, tc.limit, got, n, tc.want, tc.n)
		}
	}
}

func TestPCMReader(t *testing.T) {
	var r audio.PCM16Splitter
	var got []int16
	for _, piece := range [][]byte{{0x01}, {0x02, 0xff}, {}, {0xff}, {0x00, 0x80, 0x34}} {
		got = append(got, r.Decode(piece)...)
	}
	if want := []int16{0x0201, -1, -32768}; !slices.Equal(got, want) || !r.Pending() {
		t.Errorf("decoded %v (pending %v), want %v with a byte pending", got, r.Pending(), want)
	}
}

func TestTTSHTTPRequest(t *testing.T) {
	type seen struct {
		method, path string
		header       http.Header
	}
	got := make(chan seen, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r)
		got <- seen{r.Method, r.URL.Path, r.Header.Clone()}
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write([]byte{1, 0, 2, 0, 3, 0})
	}))
	defer srv.Close()
	p := NewTTS(Config{BaseURL: srv.URL + "/v1/", HTTPClient: srv.Client(), Headers: map[string]string{"X-Gateway": "eu", "Authorization": "Bearer nope"}})
	cfg := speakCfg("sk-byok")
	cfg.SampleRate = PCMRate
	pcm, _, err := speak(t, p, cfg, "Hi.")
	if err != io.EOF || !slices.Equal(pcm, []int16{1, 2, 3}) {
		t.Fatalf("audio %v, %v; want [1 2 3] and io.EOF", pcm, err)
	}
	s := <-got
	if s.method != http.MethodPost || s.path != "/v1/audio/speech" || s.header.Get("Authorization") != "Bearer sk-byok" ||
		s.header.Get("Content-Type") != "application/json" || s.header.Get("X-Gateway") != "eu" {
		t.Errorf("%s %s %v", s.method, s.path, s.header)
	}
}
