package local

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/tts"
)

// longText takes espeak-ng about a minute of audio to speak.
var longText = strings.Repeat("This sentence is long enough that espeak-ng needs a moment to speak all of it, and it keeps going. ", 12)

func openTTS(t *testing.T, ctx context.Context, cfg tts.Config) tts.Stream {
	t.Helper()
	requireBinary(t, "espeak-ng")
	s, err := NewTTS(TTSConfig{}).Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestTTSHelloWorld(t *testing.T) {
	for _, rate := range []int{8000, 16000, 24000} {
		s := openTTS(t, context.Background(), tts.Config{Voice: "en-us", SampleRate: rate})
		if err := s.Send("hello world"); err != nil {
			t.Fatal(err)
		}
		if err := s.Flush(); err != nil {
			t.Fatal(err)
		}
		var pcm []int16
		chunks := 0
		for {
			c, err := s.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.PCM) == 0 || len(c.PCM) > rate/10 {
				t.Errorf("chunk of %d samples, want 1..%d (100 ms)", len(c.PCM), rate/10)
			}
			chunks++
			pcm = append(pcm, c.PCM...)
		}
		if _, err := s.Recv(); !errors.Is(err, io.EOF) {
			t.Errorf("Recv after the end: %v, want io.EOF", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		dur := time.Duration(len(pcm)) * time.Second / time.Duration(rate)
		if dur < 500*time.Millisecond || dur > 3*time.Second {
			t.Errorf("%d Hz: %v of audio, want 0.5–3 s", rate, dur)
		}
		if rms := audio.RMS(pcm); rms < 500 {
			t.Errorf("%d Hz: RMS %.0f: nearly silent", rate, rms)
		}
		t.Logf("%d Hz: %v of audio in %d chunks, RMS %.0f", rate, dur, chunks, audio.RMS(pcm))
	}
}

// TestTTSStreams checks that audio arrives while espeak-ng is still running.
func TestTTSStreams(t *testing.T) {
	s := openTTS(t, context.Background(), tts.Config{SampleRate: 8000})
	defer s.Close()
	start := time.Now()
	if err := s.Send(longText); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	first := time.Since(start)
	if n := len(children(t, "espeak-ng")); n != 1 {
		t.Fatalf("%d espeak-ng processes running at the first chunk, want 1 still speaking", n)
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var total int
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		total += len(c.PCM)
	}
	t.Logf("first chunk after %v; %v of audio in %v", first, time.Duration(total)*time.Second/8000, time.Since(start))
	if total < 30*8000 {
		t.Errorf("only %d samples for the long text", total)
	}
}

func TestTTSCloseMidSentence(t *testing.T) {
	s := openTTS(t, context.Background(), tts.Config{SampleRate: 8000})
	if err := s.Send(longText); err != nil {
		t.Fatal(err)
	}
	if err := s.Send("and more"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	recvErr := make(chan error, 1)
	go func() {
		// Drain until the stream ends: Close must unblock this.
		for {
			if _, err := s.Recv(); err != nil {
				recvErr <- err
				return
			}
		}
	}()
	start := time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Close took %v", d)
	}
	select {
	case err := <-recvErr:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Recv after Close: %v, want ErrClosed", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Recv still blocked after Close")
	}
	if pids := children(t, "espeak-ng"); len(pids) > 0 {
		t.Errorf("espeak-ng still running after Close: %v", pids)
	}
	if err := s.Send("again"); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := s.Flush(); !errors.Is(err, ErrClosed) {
		t.Errorf("Flush after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestTTSContextCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s := openTTS(t, ctx, tts.Config{SampleRate: 8000})
	defer s.Close()
	if err := s.Send(longText); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	var err error
	for err == nil {
		_, err = s.Recv()
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after cancel: %v, want context.Canceled", err)
	}
	if pids := children(t, "espeak-ng"); len(pids) > 0 {
		t.Errorf("espeak-ng still running after cancel: %v", pids)
	}
}

func TestTTSSkipsBlankText(t *testing.T) {
	s := openTTS(t, context.Background(), tts.Config{SampleRate: 8000})
	defer s.Close()
	for _, text := range []string{"", "   ", "\n\t"} {
		if err := s.Send(text); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Recv(); !errors.Is(err, io.EOF) {
		t.Errorf("Recv = %d samples, %v; want io.EOF at once", len(c.PCM), err)
	}
	if err := s.Send("late"); err == nil {
		t.Error("Send after Flush succeeded")
	}
}

// TestTTSInOrder speaks two texts and checks that the audio is the two
// texts' audio, one after the other.
func TestTTSInOrder(t *testing.T) {
	one := synthesize(t, "one", 8000)
	two := synthesize(t, "two three four five six", 8000)
	both := synthesizeAll(t, []string{"one", "two three four five six"})
	if len(both) != len(one)+len(two) {
		t.Fatalf("%d samples, want %d + %d", len(both), len(one), len(two))
	}
	for i := range one {
		if both[i] != one[i] {
			t.Fatalf("sample %d differs from the first text's", i)
		}
	}
}

func synthesizeAll(t *testing.T, texts []string) []int16 {
	t.Helper()
	s := openTTS(t, context.Background(), tts.Config{SampleRate: 8000})
	defer s.Close()
	for _, text := range texts {
		if err := s.Send(text); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	var pcm []int16
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return pcm
		}
		if err != nil {
			t.Fatal(err)
		}
		pcm = append(pcm, c.PCM...)
	}
}

func TestTTSUnknownVoice(t *testing.T) {
	s := openTTS(t, context.Background(), tts.Config{Voice: "xx-nope", SampleRate: 8000})
	defer s.Close()
	if err := s.Send("hello"); err != nil {
		t.Fatal(err)
	}
	_, err := s.Recv()
	if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "xx-nope") {
		t.Errorf("Recv with an unknown voice: %v", err)
	}
	t.Log(err)
}

func TestTTSOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		tcfg TTSConfig
		cfg  tts.Config
		want string
	}{
		{"space in voice", TTSConfig{}, tts.Config{Voice: "en us", SampleRate: 8000}, "invalid espeak-ng voice"},
		{"option as voice", TTSConfig{}, tts.Config{Voice: "en;rm -rf", SampleRate: 8000}, "invalid espeak-ng voice"},
		{"dots", TTSConfig{}, tts.Config{Voice: "../../x", SampleRate: 8000}, "invalid espeak-ng voice"},
		{"long voice", TTSConfig{}, tts.Config{Voice: strings.Repeat("a", 65), SampleRate: 8000}, "invalid espeak-ng voice"},
		{"bad language", TTSConfig{}, tts.Config{Language: "en US", SampleRate: 8000}, "invalid espeak-ng voice"},
		{"no rate", TTSConfig{}, tts.Config{Voice: "en-us"}, "sample rate 0"},
		{"missing binary", TTSConfig{Binary: "/nonexistent/espeak-ng"}, tts.Config{SampleRate: 8000}, "espeak-ng not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewTTS(tt.tcfg).Open(context.Background(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

func TestWordsPerMinute(t *testing.T) {
	tests := []struct {
		speed float64
		want  int
	}{
		{0, 175},
		{-1, 175},
		{1, 175},
		{1.2, 210},
		{0.5, 88},
		{0.1, 80},
		{2, 350},
		{5, 450},
	}
	for _, tt := range tests {
		if got := wordsPerMinute(tt.speed); got != tt.want {
			t.Errorf("wordsPerMinute(%g) = %d, want %d", tt.speed, got, tt.want)
		}
	}
}
