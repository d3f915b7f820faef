// Package providertest holds what the provider adapters' tests share: a
// test server that waits for its handlers, audio for and writing to stt
// streams, receiving from them with a deadline, and sending to and
// receiving from tts streams.
package providertest

import (
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/tts"
)

// recvTimeout bounds one stt Recv, so that a bug fails a test instead of
// hanging it.
const recvTimeout = 10 * time.Second

// Serve runs h on a test server and, at cleanup, closes the server and
// waits for its handlers (websocket sessions included) to return.
func Serve(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return srv
}

// Tone is d of a 300 Hz sine of amplitude 8000 at rate: speech to the
// fakes' detectors and to a VAD.
func Tone(rate int, d time.Duration) []int16 {
	out := make([]int16, int(int64(d)*int64(rate)/int64(time.Second)))
	for i := range out {
		out[i] = int16(8000 * math.Sin(2*math.Pi*300*float64(i)/float64(rate)))
	}
	return out
}

// Silence is d of silence at rate.
func Silence(rate int, d time.Duration) []int16 {
	return make([]int16, int(int64(d)*int64(rate)/int64(time.Second)))
}

// WriteFrames writes pcm at rate to s in 20 ms frames, faster than real
// time; an error fails the test.
func WriteFrames(t testing.TB, s stt.Stream, rate int, pcm []int16) {
	t.Helper()
	frame := rate / 50
	for len(pcm) > 0 {
		n := min(frame, len(pcm))
		if err := s.Write(pcm[:n]); err != nil {
			t.Fatalf("write: %v", err)
		}
		pcm = pcm[n:]
	}
}

// Recv is s.Recv with a deadline of 10 s: past it the test fails.
func Recv(t testing.TB, s stt.Stream) (stt.Event, error) {
	t.Helper()
	type result struct {
		ev  stt.Event
		err error
	}
	ch := make(chan result, 1)
	go func() {
		ev, err := s.Recv()
		ch <- result{ev, err}
	}()
	select {
	case r := <-ch:
		return r.ev, r.err
	case <-time.After(recvTimeout):
		t.Fatalf("Recv did not return within %s", recvTimeout)
		return stt.Event{}, nil
	}
}

// RecvAll receives events, each with Recv's deadline, until an error and
// returns them and the error.
func RecvAll(t testing.TB, s stt.Stream) ([]stt.Event, error) {
	t.Helper()
	var out []stt.Event
	for {
		ev, err := Recv(t, s)
		if err != nil {
			return out, err
		}
		out = append(out, ev)
	}
}

// OpenTTS opens a stream with the test's context, which bounds the
// stream's life and not only the dial; the test's cleanup closes it.
func OpenTTS(t testing.TB, p tts.Provider, cfg tts.Config) tts.Stream {
	t.Helper()
	s, err := p.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// SendAll sends each text and then flushes; an error fails the test.
func SendAll(t testing.TB, s tts.Stream, texts ...string) {
	t.Helper()
	for _, text := range texts {
		if err := s.Send(text); err != nil {
			t.Fatalf("Send(%q): %v", text, err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatalf("Flush: %v", err)
	}
}

// SendUntilFault sends texts and flushes on a stream that a fault breaks:
// the fault may strike before Send or Flush, which then report it. It
// returns the first such error; the test judges the fault by Recv's.
func SendUntilFault(s tts.Stream, texts ...string) error {
	for _, text := range texts {
		if err := s.Send(text); err != nil {
			return err
		}
	}
	return s.Flush()
}

// RecvAudio receives until an error and returns the audio, how many chunks
// carried it and the error. An empty chunk is reported as a test error.
func RecvAudio(t testing.TB, s tts.Stream) (pcm []int16, chunks int, err error) {
	t.Helper()
	for {
		c, err := s.Recv()
		if err != nil {
			return pcm, chunks, err
		}
		if len(c.PCM) == 0 {
			t.Error("Recv returned an empty chunk")
		}
		chunks++
		pcm = append(pcm, c.PCM...)
	}
}

// WaitFor polls cond every 5 ms for up to 5 s, then fails the test with
// what.
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
