package deepgram

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/parley-voice/parley/internal/provider/deepgram/deepgramfake"
	"github.com/parley-voice/parley/internal/provider/providertest"
	"github.com/parley-voice/parley/internal/stt"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	rate    = 8000
	frame   = rate / 50 // 20 ms
	testKey = "test-key-0123456789"
)

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// utterance is 0.8 s of tone followed by 0.6 s of silence.
func utterance() []int16 {
	return concat(providertest.Tone(rate, 800*time.Millisecond), providertest.Silence(rate, 600*time.Millisecond))
}

// startFake serves a fake Deepgram and, at cleanup, waits for its handlers
// (websocket sessions included) to return.
func startFake(t *testing.T, cfg deepgramfake.Config) (*deepgramfake.Server, *httptest.Server) {
	t.Helper()
	fake := deepgramfake.New(cfg)
	return fake, providertest.Serve(t, fake)
}

func newClient(srv *httptest.Server, cfg Config) *Client {
	cfg.BaseURL = srv.URL // http:// is mapped to ws://
	cfg.HTTPClient = srv.Client()
	return New(cfg)
}

func open(t *testing.T, c *Client, ctx context.Context, sc stt.Config) *Stream {
	t.Helper()
	if sc.SampleRate == 0 {
		sc.SampleRate = rate
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

// recvUntil receives events until one of type typ (included).
func recvUntil(t *testing.T, s stt.Stream, typ stt.EventType) []stt.Event {
	t.Helper()
	var out []stt.Event
	for {
		ev, err := providertest.Recv(t, s)
		if err != nil {
			t.Fatalf("recv after %+v: %v", out, err)
		}
		out = append(out, ev)
		if ev.Type == typ {
			return out
		}
	}
}

func TestTwoUtterances(t *testing.T) {
	fake, srv := startFake(t, deepgramfake.Config{APIKey: testKey, Transcripts: []string{"hello there", "second one"}})
	s := open(t, newClient(srv, Config{}), context.Background(), stt.Config{})

	providertest.WriteFrames(t, s, rate, utterance())
	first := recvUntil(t, s, stt.Final) // delivered live, before Close
	providertest.WriteFrames(t, s, rate, utterance())
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	rest, err := providertest.RecvAll(t, s)
	if err != io.EOF {
		t.Fatalf("recv error = %v, want io.EOF", err)
	}
	if _, err := s.Recv(); err != io.EOF {
		t.Fatalf("second recv after EOF = %v", err)
	}

	ms := time.Millisecond
	want := []stt.Event{
		{Type: stt.SpeechStarted},
		{Type: stt.Final, Text: "hello there", SpeechFinal: true, Start: 0, End: 800 * ms, Confidence: 0.98},
		{Type: stt.SpeechStarted, Start: 1400 * ms, End: 1400 * ms},
		{Type: stt.Final, Text: "second one", SpeechFinal: true, Start: 1400 * ms, End: 2200 * ms, Confidence: 0.98},
	}
	if got := append(first, rest...); !slices.Equal(got, want) {
		t.Fatalf("events\n got %+v\nwant %+v", got, want)
	}
	st := fake.Stats()
	if st.Connections != 1 || st.Finals != 2 || st.AudioBytes != int64(2*2*len(utterance())) {
		t.Fatalf("fake stats = %+v", st)
	}
	if s.Dropped() != 0 {
		t.Fatalf("dropped %d frames", s.Dropped())
	}
}

func TestInterimBeforeFinal(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{Interim: true, Transcripts: []string{"one two three"}})
	s := open(t, newClient(srv, Config{}), context.Background(), stt.Config{})
	providertest.WriteFrames(t, s, rate, utterance())
	got := recvUntil(t, s, stt.Final)

	var interims []string
	for _, ev := range got[:len(got)-1] {
		if ev.Type == stt.Interim {
			interims = append(interims, ev.Text)
		}
	}
	if want := []string{"one", "one two", "one two three"}; !slices.Equal(interims, want) {
		t.Fatalf("interims = %q, want %q (events %+v)", interims, want, got)
	}
	if final := got[len(got)-1]; final.Text != "one two three" || !final.SpeechFinal {
		t.Fatalf("final = %+v", final)
	}
}

func TestUtteranceEndEvent(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{Transcripts: []string{"bye"}})
	s := open(t, newClient(srv, Config{}), context.Background(), stt.Config{UtteranceEnd: time.Second})
	providertest.WriteFrames(t, s, rate, concat(providertest.Tone(rate, 500*time.Millisecond), providertest.Silence(rate, 1200*time.Millisecond)))
	got := recvUntil(t, s, stt.UtteranceEnd)
	types := make([]stt.EventType, len(got))
	for i, ev := range got {
		types[i] = ev.Type
	}
	if want := []stt.EventType{stt.SpeechStarted, stt.Final, stt.UtteranceEnd}; !slices.Equal(types, want) {
		t.Fatalf("events = %v, want %v", types, want)
	}
	if ue := got[2]; ue.End != 500*time.Millisecond {
		t.Fatalf("utterance end = %+v", ue)
	}
}

func TestFinalize(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{Transcripts: []string{"cut short"}})
	s := open(t, newClient(srv, Config{}), context.Background(), stt.Config{})
	providertest.WriteFrames(t, s, rate, providertest.Tone(rate, 400*time.Millisecond)) // no trailing silence
	if err := s.Finalize(); err != nil {
		t.Fatal(err)
	}
	got := recvUntil(t, s, stt.Final)
	final := got[len(got)-1]
	if final.Text != "cut short" || !final.SpeechFinal || final.End != 400*time.Millisecond {
		t.Fatalf("final = %+v", final)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if rest, err := providertest.RecvAll(t, s); err != io.EOF || len(rest) != 0 {
		t.Fatalf("after close: %+v, %v", rest, err)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent logging.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestBadKey(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{APIKey: "the-right-key"})
	var logs syncBuffer
	c := newClient(srv, Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	const wrong = "wrong-key-7f3a9c"
	s, err := c.Open(context.Background(), stt.Config{SampleRate: rate, APIKey: wrong})
	if err == nil {
		_ = s.Close()
		t.Fatal("open succeeded with a wrong key")
	}
	msg := err.Error()
	if !strings.Contains(msg, "401") || !strings.Contains(msg, "Invalid credentials") {
		t.Fatalf("error %q should mention 401 and Deepgram's message", msg)
	}
	if strings.Contains(msg, wrong) || strings.Contains(logs.String(), wrong) {
		t.Fatalf("key leaked: error %q, logs %q", msg, logs.String())
	}
	var ue *UpgradeError
	if !errors.As(err, &ue) || ue.StatusCode != http.StatusUnauthorized || ue.Code != "INVALID_AUTH" || ue.RequestID == "" {
		t.Fatalf("error = %#v", err)
	}
}

func TestUpgradeErrorRedactsEchoedKey(t *testing.T) {
	const key = "echoed-key-55aa"
	srv := providertest.Serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusPaymentRequired)
		_, _ = io.WriteString(w, `{"err_code":"ASR_PAYMENT_REQUIRED","err_msg":"Project for `+r.Header.Get("Authorization")+` has no credit.","request_id":"r1"}`)
	}))
	_, err := newClient(srv, Config{}).Open(context.Background(), stt.Config{SampleRate: rate, APIKey: key})
	if err == nil {
		t.Fatal("open succeeded")
	}
	if msg := err.Error(); strings.Contains(msg, key) || !strings.Contains(msg, "402") || !strings.Contains(msg, "no credit") {
		t.Fatalf("error = %q", msg)
	}
}

func TestOpenRequiresSampleRate(t *testing.T) {
	_, err := New(Config{BaseURL: "ws://127.0.0.1:1"}).Open(context.Background(), stt.Config{})
	if err == nil || !strings.Contains(err.Error(), "sample rate") {
		t.Fatalf("err = %v", err)
	}
}

func TestServerFailure(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{FailAfter: 1, Transcripts: []string{"only one"}})
	s := open(t, newClient(srv, Config{}), context.Background(), stt.Config{})
	// The server fails after the first final, possibly while audio is still
	// being written: a Write error then is expected.
	audio := concat(utterance(), utterance())
	for len(audio) > 0 && s.Write(audio[:frame]) == nil {
		audio = audio[frame:]
	}
	got, err := providertest.RecvAll(t, s)
	if len(got) != 2 || got[1].Type != stt.Final || got[1].Text != "only one" {
		t.Fatalf("events before failure = %+v", got)
	}
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1011 || ce.Reason != deepgramfake.FailReason {
		t.Fatalf("recv error = %v", err)
	}
	if !strings.Contains(err.Error(), "fake failure") {
		t.Fatalf("error %q does not say why", err)
	}
	if err := s.Write(providertest.Tone(rate, 20*time.Millisecond)); err == nil {
		t.Fatal("write on a failed stream succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close after failure: %v", err)
	}
}

func TestIdleTimeout(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{IdleTimeout: 200 * time.Millisecond})
	// A keep-alive interval longer than the server's patience.
	s := open(t, newClient(srv, Config{KeepAlive: time.Hour}), context.Background(), stt.Config{})
	_, err := providertest.RecvAll(t, s)
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 1011 || ce.Reason != "NET-0001" {
		t.Fatalf("recv error = %v, want NET-0001 close", err)
	}
	if !strings.Contains(err.Error(), "NET-0001") {
		t.Fatalf("error %q", err)
	}
}

func TestKeepAliveKeepsStreamOpen(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{IdleTimeout: 300 * time.Millisecond})
	s := open(t, newClient(srv, Config{KeepAlive: 50 * time.Millisecond}), context.Background(), stt.Config{})
	time.Sleep(time.Second) // well past the idle timeout
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got, err := providertest.RecvAll(t, s); err != io.EOF || len(got) != 0 {
		t.Fatalf("got %+v, %v; want no events and io.EOF", got, err)
	}
}

// smallBufListener shrinks the receive buffer of accepted connections so
// that a server that stops reading pushes back after little data.
type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	return c, err
}

func TestWriteNeverBlocks(t *testing.T) {
	// A server that accepts the stream and then never reads from it.
	release := make(chan struct{})
	var wg sync.WaitGroup
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		conn, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		<-release
		_ = conn.CloseNow()
	}))
	srv.Listener = smallBufListener{srv.Listener}
	srv.Start()
	transport := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetWriteBuffer(4096)
		}
		return c, err
	}}
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() {
		unblock()
		srv.Close()
		transport.CloseIdleConnections()
		wg.Wait()
	})

	c := New(Config{
		BaseURL:      srv.URL,
		HTTPClient:   &http.Client{Transport: transport},
		QueueFrames:  8,
		CloseTimeout: 200 * time.Millisecond,
		KeepAlive:    time.Hour,
	})
	s := open(t, c, context.Background(), stt.Config{})

	// 8 MB: far more than the shrunken socket buffers hold. If Write
	// waited for the network it would never return, as nothing reads.
	chunk := providertest.Tone(rate, 2*time.Second) // 32 KB per write
	const writes = 256
	done := make(chan error, 1)
	go func() {
		for range writes {
			if err := s.Write(chunk); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("write: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Write blocked on a server that does not read")
	}
	if s.Dropped() == 0 {
		t.Fatal("no frames dropped although the server never reads")
	}

	t0 := time.Now()
	if err := s.Close(); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Fatalf("close = %v, want a timeout error", err)
	}
	if el := time.Since(t0); el > 5*time.Second {
		t.Fatalf("close took %v", el)
	}
	if _, err := providertest.RecvAll(t, s); err != io.EOF {
		t.Fatalf("recv after close = %v, want io.EOF", err)
	}
}

func TestContextCancel(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	s := open(t, newClient(srv, Config{}), ctx, stt.Config{})
	providertest.WriteFrames(t, s, rate, providertest.Tone(rate, 100*time.Millisecond))
	cancel()
	_, err := providertest.RecvAll(t, s)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("recv error = %v, want context.Canceled", err)
	}
	if err := s.Write(providertest.Tone(rate, 20*time.Millisecond)); err == nil {
		t.Fatal("write after cancel succeeded")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close after cancel: %v", err)
	}
}

func TestWriteAfterClose(t *testing.T) {
	_, srv := startFake(t, deepgramfake.Config{})
	s := open(t, newClient(srv, Config{}), context.Background(), stt.Config{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if err := s.Write(providertest.Tone(rate, 20*time.Millisecond)); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close = %v", err)
	}
	if err := s.Finalize(); !errors.Is(err, ErrClosed) {
		t.Fatalf("finalize after close = %v", err)
	}
	if err := s.Write(nil); err != nil {
		t.Fatalf("empty write = %v", err)
	}
}

func TestQueueDropsOldestAudioKeepsControl(t *testing.T) {
	s := &Stream{maxFrames: 2, log: slog.New(slog.DiscardHandler), wake: make(chan struct{}, 1)}
	for i := range 3 {
		if err := s.Write([]int16{int16(i)}); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if err := s.Finalize(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Queue was [a0 F a1], then a2 pushed out a0.
	var got []string
	for _, m := range s.queue {
		if m.text {
			got = append(got, string(m.data))
		} else {
			got = append(got, string(rune('0'+m.data[0])))
		}
	}
	if want := []string{msgFinalize, "1", "2"}; !slices.Equal(got, want) {
		t.Fatalf("queue = %q, want %q", got, want)
	}
	if s.Dropped() != 1 || s.audioQueued != 2 {
		t.Fatalf("dropped %d, queued %d", s.Dropped(), s.audioQueued)
	}
}
