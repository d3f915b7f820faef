package gladia

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
	"github.com/parley-voice/parley/internal/provider/gladia/gladiafake"
	"github.com/parley-voice/parley/internal/provider/providertest"
	"github.com/parley-voice/parley/internal/stt"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const testKey = "gl-test-key-0123456789"

// utterance is 0.8 s of tone followed by 0.6 s of silence.
func utterance(rate int) []int16 {
	return slices.Concat(providertest.Tone(rate, 800*time.Millisecond), providertest.Silence(rate, 600*time.Millisecond))
}

// writeUntilError writes 8 kHz pcm in 20 ms frames until Write fails, for
// streams the server is about to break.
func writeUntilError(s stt.Stream, pcm []int16) {
	for i := 0; i+160 <= len(pcm); i += 160 {
		if s.Write(pcm[i:i+160]) != nil {
			return
		}
	}
}

func startFake(t *testing.T, cfg gladiafake.Config) (*gladiafake.Server, *Client) {
	t.Helper()
	fake := gladiafake.New(cfg)
	mux := http.NewServeMux()
	mux.Handle(gladiafake.LivePath, fake)
	srv := providertest.Serve(t, mux)
	return fake, New(Config{BaseURL: srv.URL, HTTPClient: srv.Client(), CloseTimeout: 3 * time.Second})
}

func open(t *testing.T, ctx context.Context, c *Client, sc stt.Config) *Stream {
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

// kinds lists the events' types, with the text of transcripts.
func kinds(evs []stt.Event) []string {
	var out []string
	for _, ev := range evs {
		s := ev.Type.String()
		if ev.Type == stt.Final || ev.Type == stt.Interim {
			s += ":" + ev.Text
		}
		out = append(out, s)
	}
	return out
}

func onlySession(t *testing.T, fake *gladiafake.Server) gladiafake.Session {
	t.Helper()
	sessions := fake.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("fake saw %d sessions, want 1", len(sessions))
	}
	return sessions[0]
}

// TestTelephonyTwoUtterances: 8 kHz audio goes up as µ-law in 100 ms
// binary chunks; two utterances come back as SpeechStarted, Interims,
// a SpeechFinal Final and UtteranceEnd each; Close ends with io.EOF.
func TestTelephonyTwoUtterances(t *testing.T) {
	fake, c := startFake(t, gladiafake.Config{APIKey: testKey, Interim: true,
		Transcripts: []string{"hello there my friend", "second one"}})
	s := open(t, context.Background(), c, stt.Config{})

	pcm := slices.Concat(utterance(8000), utterance(8000))
	providertest.WriteFrames(t, s, 8000, pcm)
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	evs, err := providertest.RecvAll(t, s)
	if err != io.EOF {
		t.Fatalf("Recv ended with %v, want io.EOF (events %v)", err, kinds(evs))
	}
	want := []string{
		"speech_started", "interim:hello", "interim:hello there", "interim:hello there my", "final:hello there my friend", "utterance_end",
		"speech_started", "interim:second", "final:second one", "utterance_end",
	}
	if got := kinds(evs); !slices.Equal(got, want) {
		t.Fatalf("events\n got %q\nwant %q", got, want)
	}
	first := evs[4]
	if !first.SpeechFinal || first.Start != 0 || first.End != 800*time.Millisecond || first.Confidence != 0.95 {
		t.Errorf("first final = %+v, want SpeechFinal, 0–800ms, confidence 0.95", first)
	}
	if start := evs[6]; start.Start != 1400*time.Millisecond {
		t.Errorf("second speech_started at %v, want 1.4s", start.Start)
	}

	sess := onlySession(t, fake)
	r := sess.Request
	if r.Encoding != "wav/ulaw" || r.SampleRate != 8000 || r.BitDepth != 8 || r.Channels != 1 || r.Model != "solaria-1" {
		t.Errorf("request = %+v, want solaria-1 wav/ulaw 8000 Hz 8-bit mono", r)
	}
	if sess.Region != "eu-west" {
		t.Errorf("region %q, want eu-west", sess.Region)
	}
	if !r.MessagesConfig.ReceivePartialTranscripts || !r.MessagesConfig.ReceiveSpeechEvents {
		t.Errorf("messages_config %+v: partials and speech events not requested", r.MessagesConfig)
	}
	if !sess.Stopped {
		t.Error("stop_recording never reached the fake")
	}
	wantAudio := audio.DecodeUlaw(nil, audio.EncodeUlaw(nil, pcm))
	if !slices.Equal(sess.Samples, wantAudio) {
		t.Errorf("fake decoded %d samples differing from the µ-law of the %d written", len(sess.Samples), len(pcm))
	}
	if wantFrames := (len(pcm) + 799) / 800; sess.BinaryFrames != wantFrames || sess.JSONChunks != 0 {
		t.Errorf("audio sent in %d binary frames and %d JSON chunks, want %d 100 ms binary frames",
			sess.BinaryFrames, sess.JSONChunks, wantFrames)
	}
}

// TestCloseDeliversLastFinal: speech still going on at Close is finalised
// by stop_recording, and its Final arrives before io.EOF.
func TestCloseDeliversLastFinal(t *testing.T) {
	_, c := startFake(t, gladiafake.Config{APIKey: testKey, Transcripts: []string{"cut short"}})
	s := open(t, context.Background(), c, stt.Config{})
	providertest.WriteFrames(t, s, 8000, providertest.Tone(8000, 500*time.Millisecond))
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	evs, err := providertest.RecvAll(t, s)
	if err != io.EOF {
		t.Fatalf("Recv ended with %v, want io.EOF", err)
	}
	want := []string{"speech_started", "final:cut short", "utterance_end"}
	if got := kinds(evs); !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
}

// TestPCMRates: rates Gladia takes as PCM are sent as 16-bit PCM
// unchanged; others are resampled to 16 kHz.
func TestPCMRates(t *testing.T) {
	for _, tc := range []struct {
		rate, wireRate int
		exact          bool
	}{
		{16000, 16000, true},
		{48000, 48000, true},
		{24000, 16000, false},
	} {
		t.Run(strconv.Itoa(tc.rate), func(t *testing.T) {
			fake, c := startFake(t, gladiafake.Config{APIKey: testKey, Transcripts: []string{"pcm works"}})
			s := open(t, context.Background(), c, stt.Config{SampleRate: tc.rate})
			pcm := utterance(tc.rate)
			providertest.WriteFrames(t, s, tc.rate, pcm)
			if err := s.Close(); err != nil {
				t.Fatalf("close: %v", err)
			}
			evs, err := providertest.RecvAll(t, s)
			if err != io.EOF || !slices.Contains(kinds(evs), "final:pcm works") {
				t.Fatalf("events %q, end %v; want the final then io.EOF", kinds(evs), err)
			}
			sess := onlySession(t, fake)
			if r := sess.Request; r.Encoding != "wav/pcm" || r.BitDepth != 16 || r.SampleRate != tc.wireRate {
				t.Fatalf("request %s %d-bit %d Hz, want wav/pcm 16-bit %d Hz", r.Encoding, r.BitDepth, r.SampleRate, tc.wireRate)
			}
			if tc.exact && !slices.Equal(sess.Samples, pcm) {
				t.Fatalf("fake received %d samples that differ from the %d written", len(sess.Samples), len(pcm))
			}
			want := len(pcm) * tc.wireRate / tc.rate
			if got := len(sess.Samples); got < want-2 || got > want+2 {
				t.Fatalf("fake received %d samples, want about %d", got, want)
			}
		})
	}
}

// TestRequestOptions: language, endpointing, keyterms and the provider
// options reach the session request and its query.
func TestRequestOptions(t *testing.T) {
	fake, c := startFake(t, gladiafake.Config{APIKey: testKey})
	s := open(t, context.Background(), c, stt.Config{
		Language:    "fr-FR",
		Endpointing: 300 * time.Millisecond,
		Keyterms:    []string{"Parley", " Gladia ", "Parley"},
		Options:     map[string]any{"region": "us-west", "custom_vocabulary": []any{"solaria"}},
	})
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	sess := onlySession(t, fake)
	r := sess.Request
	if sess.Region != "us-west" {
		t.Errorf("region %q, want us-west", sess.Region)
	}
	if !slices.Equal(r.Languages(), []string{"fr"}) || r.LanguageConfig.CodeSwitching {
		t.Errorf("language_config %+v, want [fr] without code switching", r.LanguageConfig)
	}
	if r.Endpointing != 0.3 {
		t.Errorf("endpointing %v, want 0.3", r.Endpointing)
	}
	if got := r.Vocabulary(); !slices.Equal(got, []string{"Parley", "Gladia", "solaria"}) ||
		!r.RealtimeProcessing.CustomVocabulary {
		t.Errorf("custom vocabulary %q (enabled %v), want [Parley Gladia solaria]", got, r.RealtimeProcessing.CustomVocabulary)
	}
}

// TestBadKey: a refused key is a 401 HTTPError naming Gladia and the key,
// without the key itself.
func TestBadKey(t *testing.T) {
	_, c := startFake(t, gladiafake.Config{APIKey: testKey})
	_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: "wrong-key-xyz"})
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized {
		t.Fatalf("error %v, want an HTTPError with status 401", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "gladia") || !strings.Contains(msg, "API key") || strings.Contains(msg, "wrong-key-xyz") {
		t.Fatalf("error %q should name gladia and the API key, without the key", msg)
	}
}

// TestMissingKey: Gladia always needs a key; Open says so without a request.
func TestMissingKey(t *testing.T) {
	fake, c := startFake(t, gladiafake.Config{})
	_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000})
	if err == nil || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("error %v, want one about the missing API key", err)
	}
	if n := len(fake.Sessions()); n != 0 {
		t.Fatalf("%d sessions created without a key", n)
	}
}

// TestSessionRequestRefused maps the statuses Gladia answers to HTTPErrors
// with a hint.
func TestSessionRequestRefused(t *testing.T) {
	for _, tc := range []struct {
		status int
		hint   string
	}{
		{http.StatusTooManyRequests, "too many concurrent"},
		{http.StatusPaymentRequired, "may not use"},
		{http.StatusInternalServerError, "unavailable"},
		{http.StatusUnprocessableEntity, "configuration"},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			_, c := startFake(t, gladiafake.Config{APIKey: testKey, InitStatus: tc.status})
			_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: testKey})
			var he *HTTPError
			if !errors.As(err, &he) || he.StatusCode != tc.status || he.Message != "Injected failure." {
				t.Fatalf("error %#v, want HTTPError %d with the fake's message", err, tc.status)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Fatalf("error %q lacks hint %q", err, tc.hint)
			}
		})
	}
}

// TestMalformedMessage: an undecodable server message ends the stream
// with an error (no panic).
func TestMalformedMessage(t *testing.T) {
	_, c := startFake(t, gladiafake.Config{APIKey: testKey, Malformed: true})
	s := open(t, context.Background(), c, stt.Config{})
	writeUntilError(s, utterance(8000))
	evs, err := providertest.RecvAll(t, s)
	if err == nil || err == io.EOF || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("Recv ended with %v after %q, want a malformed-message error", err, kinds(evs))
	}
	if werr := s.Write(providertest.Tone(8000, 20*time.Millisecond)); werr == nil {
		t.Fatal("Write after the stream broke succeeded")
	}
}

// TestDisconnectMidStream: a connection dropped without a close frame is
// an error from Recv after the events already received.
func TestDisconnectMidStream(t *testing.T) {
	_, c := startFake(t, gladiafake.Config{APIKey: testKey, DisconnectAfter: 1, Transcripts: []string{"one", "two"}})
	s := open(t, context.Background(), c, stt.Config{})
	// The second utterance races the disconnect: Write may already fail.
	writeUntilError(s, slices.Concat(utterance(8000), utterance(8000)))
	evs, err := providertest.RecvAll(t, s)
	if err == nil || err == io.EOF {
		t.Fatalf("Recv ended with %v, want an error", err)
	}
	if !slices.Contains(kinds(evs), "final:one") || slices.Contains(kinds(evs), "final:two") {
		t.Fatalf("events %q, want the first final only", kinds(evs))
	}
	if !strings.HasPrefix(err.Error(), "gladia: ") {
		t.Fatalf("error %q does not name the provider", err)
	}
}

// TestServerFailure: an error message followed by an abnormal close is a
// CloseError carrying the close status and Gladia's message.
func TestServerFailure(t *testing.T) {
	_, c := startFake(t, gladiafake.Config{APIKey: testKey, FailAfter: 1})
	s := open(t, context.Background(), c, stt.Config{})
	writeUntilError(s, slices.Concat(utterance(8000), utterance(8000)))
	evs, err := providertest.RecvAll(t, s)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != int(websocket.StatusInternalError) || ce.Detail != gladiafake.FailMessage {
		t.Fatalf("Recv ended with %v after %q, want a 1011 CloseError with the fake's message", err, kinds(evs))
	}
	if !strings.Contains(err.Error(), "gladia") || !strings.Contains(err.Error(), gladiafake.FailMessage) {
		t.Fatalf("error %q should name gladia and the server's message", err)
	}
}

// TestContextCancel: ending Open's context ends the stream and both of its
// goroutines (goleak checks the latter).
func TestContextCancel(t *testing.T) {
	_, c := startFake(t, gladiafake.Config{APIKey: testKey})
	ctx, cancel := context.WithCancel(context.Background())
	s := open(t, ctx, c, stt.Config{})
	providertest.WriteFrames(t, s, 8000, providertest.Tone(8000, 200*time.Millisecond))
	cancel()
	_, err := providertest.RecvAll(t, s)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Recv ended with %v, want context.Canceled", err)
	}
	select {
	case <-s.writerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("writer still running after cancel")
	}
}

// TestWriteAfterClose: Write after Close is ErrClosed; Close is idempotent.
func TestWriteAfterClose(t *testing.T) {
	_, c := startFake(t, gladiafake.Config{APIKey: testKey})
	s := open(t, context.Background(), c, stt.Config{})
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if err := s.Write(providertest.Tone(8000, 20*time.Millisecond)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Write after Close = %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := providertest.Recv(t, s); err != io.EOF {
		t.Fatalf("Recv after Close = %v, want io.EOF", err)
	}
}

// TestCloseTimeout: a server that never answers stop_recording cannot hold
// Close past CloseTimeout.
func TestCloseTimeout(t *testing.T) {
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("POST /v2/live", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"s1","url":"`+strings.Replace(srv.URL, "http", "ws", 1)+`/ws?token=t"}`)
	})
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer conn.CloseNow()
		for {
			if _, _, err := conn.Read(r.Context()); err != nil {
				return
			}
		}
	})
	srv = providertest.Serve(t, mux)
	c := New(Config{BaseURL: srv.URL, HTTPClient: srv.Client(), CloseTimeout: 200 * time.Millisecond})
	s := open(t, context.Background(), c, stt.Config{})
	start := time.Now()
	err := s.Close()
	if err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("Close = %v, want a timeout error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	if _, err := providertest.Recv(t, s); err != io.EOF {
		t.Fatalf("Recv after Close = %v, want io.EOF", err)
	}
}

// TestBadWebsocketURL: a session response without a ws(s) URL is refused.
func TestBadWebsocketURL(t *testing.T) {
	srv := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"s1","url":"https://example.invalid/v2/live?token=secret"}`)
	}))
	c := New(Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: testKey})
	if err == nil || !strings.Contains(err.Error(), "scheme") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("error %v, want a scheme error that does not quote the token", err)
	}
}

// TestWebsocketRefused: a websocket handshake the fake refuses (unknown
// token) is an HTTPError for the websocket step that does not quote the
// token.
func TestWebsocketRefused(t *testing.T) {
	fake := gladiafake.New(gladiafake.Config{APIKey: testKey})
	mux := http.NewServeMux()
	var srv *httptest.Server
	mux.HandleFunc("POST /v2/live", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `{"id":"s1","url":"`+strings.Replace(srv.URL, "http", "ws", 1)+`/v2/live?token=bogus-token"}`)
	})
	mux.Handle("GET /v2/live", fake)
	srv = providertest.Serve(t, mux)
	c := New(Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: testKey})
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != http.StatusUnauthorized || he.Op != opDial {
		t.Fatalf("error %v, want a 401 HTTPError from the websocket step", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "token") || strings.Contains(msg, "bogus-token") {
		t.Fatalf("error %q should explain the token refusal without quoting it", msg)
	}
}

// TestDialFailureHidesToken: a websocket URL nobody answers gives an error
// that does not quote the session token.
func TestDialFailureHidesToken(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := strings.Replace(dead.URL, "http", "ws", 1)
	dead.Close()
	srv := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"id":"s1","url":"`+deadURL+`/v2/live?token=secret-token"}`)
	}))
	c := New(Config{BaseURL: srv.URL, HTTPClient: srv.Client()})
	_, err := c.Open(context.Background(), stt.Config{SampleRate: 8000, APIKey: testKey})
	if err == nil || strings.Contains(err.Error(), "secret-token") || !strings.Contains(err.Error(), "connecting") {
		t.Fatalf("error %v, want a connection error without the token", err)
	}
}
