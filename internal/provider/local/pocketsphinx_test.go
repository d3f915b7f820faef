package local

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/stt"
)

// writeFrames writes pcm to s in 20 ms frames at rate, as a call would.
func writeFrames(t *testing.T, s stt.Stream, pcm []int16, rate int) {
	t.Helper()
	n := audio.FrameSamples(rate)
	for i := 0; i < len(pcm); i += n {
		if err := s.Write(pcm[i:min(i+n, len(pcm))]); err != nil {
			t.Fatal(err)
		}
	}
}

// recvAll reads events until the stream ends and returns them and the error
// that ended it.
func recvAll(t *testing.T, s stt.Stream) ([]stt.Event, error) {
	t.Helper()
	var events []stt.Event
	for {
		e, err := s.Recv()
		if err != nil {
			return events, err
		}
		events = append(events, e)
	}
}

// audible returns the indexes of the first and last samples of pcm louder
// than 1 % of full scale.
func audible(pcm []int16) (first, last int) {
	const level = 328
	first, last = -1, -1
	for i, s := range pcm {
		if s > level || s < -level {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	return first, last
}

func silence(d time.Duration, rate int) []int16 {
	return make([]int16, int(d*time.Duration(rate)/time.Second))
}

// TestSTTKeyterms speaks two of three grammar phrases with the local TTS at
// 8 kHz, 0.5 s of silence around each, and expects exactly those two
// transcripts, in order.
func TestSTTKeyterms(t *testing.T) {
	requireSTT(t)
	const rate = 8000
	said := []string{"book an appointment for tomorrow morning", "transfer me to a human"}
	var pcm []int16
	var spoken [][2]time.Duration // where each phrase is
	for _, text := range said {
		pcm = append(pcm, silence(500*time.Millisecond, rate)...)
		speech := synthesize(t, text, rate)
		first, last := audible(speech) // espeak-ng pads its speech with silence
		at := len(pcm)
		spoken = append(spoken, [2]time.Duration{
			time.Duration(at+first) * time.Second / rate,
			time.Duration(at+last) * time.Second / rate,
		})
		pcm = append(pcm, speech...)
		pcm = append(pcm, silence(500*time.Millisecond, rate)...)
	}

	tmp := t.TempDir()
	s, err := NewSTT(STTConfig{TempDir: tmp}).Open(context.Background(), stt.Config{
		Language:   "en-US",
		SampleRate: rate,
		Keyterms:   append(slices.Clone(said), "what is the weather"),
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	writeFrames(t, s, pcm, rate)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("writing %v of audio took %v: Write must not wait for recognition", time.Duration(len(pcm))*time.Second/rate, d)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := recvAll(t, s)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v, want io.EOF", err)
	}

	var finals []stt.Event
	starts := 0
	for _, e := range events {
		switch e.Type {
		case stt.Final:
			finals = append(finals, e)
		case stt.SpeechStarted:
			starts++
		default:
			t.Errorf("unexpected event %v", e.Type)
		}
	}
	if starts != len(said) {
		t.Errorf("%d SpeechStarted events, want %d", starts, len(said))
	}
	if len(finals) != len(said) {
		t.Fatalf("finals %+v, want %q", finals, said)
	}
	for i, f := range finals {
		if f.Text != said[i] || !f.SpeechFinal {
			t.Errorf("final %d = %q (SpeechFinal %v), want %q", i, f.Text, f.SpeechFinal, said[i])
		}
		if (f.Start-spoken[i][0]).Abs() > 100*time.Millisecond || (f.End-spoken[i][1]).Abs() > 150*time.Millisecond {
			t.Errorf("final %d spans %v–%v, speech was at %v–%v", i, f.Start, f.End, spoken[i][0], spoken[i][1])
		}
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
		t.Errorf("temporary files left behind: %v", left)
	}
}

func TestSTTSilence(t *testing.T) {
	requireSTT(t)
	s, err := NewSTT(STTConfig{TempDir: t.TempDir()}).Open(context.Background(), stt.Config{SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, s, silence(3*time.Second, 8000), 8000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := recvAll(t, s)
	if len(events) > 0 || !errors.Is(err, io.EOF) {
		t.Errorf("silence gave %+v, %v; want no events and io.EOF", events, err)
	}
	if err := s.Write(silence(time.Second, 8000)); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: %v, want ErrClosed", err)
	}
}

// TestSTTCloseFlushes closes while the caller is still speaking: the
// utterance in progress is recognised.
func TestSTTCloseFlushes(t *testing.T) {
	requireSTT(t)
	speech := synthesize(t, "what is the weather", 16000)
	s, err := NewSTT(STTConfig{TempDir: t.TempDir()}).Open(context.Background(), stt.Config{
		SampleRate: 16000,
		Keyterms:   []string{"What is the weather?", "transfer me to a human"},
	})
	if err != nil {
		t.Fatal(err)
	}
	writeFrames(t, s, append(silence(300*time.Millisecond, 16000), speech...), 16000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := recvAll(t, s)
	if !errors.Is(err, io.EOF) {
		t.Fatalf("stream ended with %v", err)
	}
	if len(events) != 2 || events[0].Type != stt.SpeechStarted || events[1].Type != stt.Final || events[1].Text != "what is the weather" {
		t.Errorf("events %+v, want SpeechStarted and the final \"what is the weather\"", events)
	}
}

// TestSTTLanguageModel runs the general language model (no keyterms). Its
// transcript of synthetic speech is unreliable, so only the mechanics are
// checked: one utterance, at most one Final, a clean end.
func TestSTTLanguageModel(t *testing.T) {
	requireSTT(t)
	speech := synthesize(t, "hello world", 8000)
	s, err := NewSTT(STTConfig{TempDir: t.TempDir()}).Open(context.Background(), stt.Config{SampleRate: 8000, Endpointing: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	pcm := append(append(silence(500*time.Millisecond, 8000), speech...), silence(time.Second, 8000)...)
	writeFrames(t, s, pcm, 8000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	events, err := recvAll(t, s)
	if !errors.Is(err, io.EOF) || len(events) < 1 || len(events) > 2 || events[0].Type != stt.SpeechStarted {
		t.Errorf("events %+v, %v", events, err)
	}
	t.Logf("language model heard: %+v", events)
}

func TestSTTContextCancel(t *testing.T) {
	requireSTT(t)
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewSTT(STTConfig{TempDir: t.TempDir()}).Open(ctx, stt.Config{SampleRate: 8000})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	writeFrames(t, s, audio.Tone(300, 8000, 8000, 8000), 8000) // speech-like and never ending
	cancel()
	_, err = recvAll(t, s)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Recv after cancel: %v, want context.Canceled", err)
	}
	if err := s.Write(silence(time.Second, 8000)); err == nil {
		t.Error("Write after cancel succeeded")
	}
	if pids := children(t, "pocketsphinx_co"); len(pids) > 0 {
		t.Errorf("pocketsphinx still running after cancel: %v", pids)
	}
}

func TestSTTOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		pcfg STTConfig
		cfg  stt.Config
		want string
	}{
		{"german", STTConfig{}, stt.Config{Language: "de", SampleRate: 8000}, `language "de"`},
		{"british", STTConfig{}, stt.Config{Language: "en-GB", SampleRate: 8000}, `language "en-GB"`},
		{"no rate", STTConfig{}, stt.Config{SampleRate: 0}, "sample rate 0"},
		{"odd rate", STTConfig{}, stt.Config{SampleRate: 8001}, "sample rate 8001"},
		{"missing binary", STTConfig{Binary: "/nonexistent/pocketsphinx_continuous"}, stt.Config{SampleRate: 8000}, "pocketsphinx_continuous not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSTT(tt.pcfg).Open(context.Background(), tt.cfg)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}

	t.Run("missing model", func(t *testing.T) {
		requireBinary(t, "pocketsphinx_continuous")
		_, err := NewSTT(STTConfig{ModelDir: "/nonexistent/model"}).Open(context.Background(), stt.Config{SampleRate: 8000})
		if err == nil || !strings.Contains(err.Error(), "acoustic model") {
			t.Errorf("err = %v", err)
		}
	})
}

// TestSTTNoKnownKeyterm falls back to the language model when no keyterm has
// a dictionary word.
func TestSTTNoKnownKeyterm(t *testing.T) {
	requireSTT(t)
	tmp := t.TempDir()
	s, err := NewSTT(STTConfig{TempDir: tmp}).Open(context.Background(), stt.Config{SampleRate: 8000, Keyterms: []string{"xqzzy", "!!!"}})
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(tmp, "*")); len(left) > 0 {
		t.Errorf("grammar files written for no phrases: %v", left)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := recvAll(t, s); !errors.Is(err, io.EOF) {
		t.Errorf("stream ended with %v", err)
	}
}

func TestParseHypotheses(t *testing.T) {
	tests := []struct{ out, want string }{
		{"", ""},
		{"\n", ""},
		{"transfer me to a human\n", "transfer me to a human"},
		{"book an appointment\n\nfor tomorrow morning\n", "book an appointment for tomorrow morning"},
		{"  what  is the weather  ", "what is the weather"},
	}
	for _, tt := range tests {
		if got := parseHypotheses([]byte(tt.out)); got != tt.want {
			t.Errorf("parseHypotheses(%q) = %q, want %q", tt.out, got, tt.want)
		}
	}
}

func TestBuildGrammar(t *testing.T) {
	dict := filepath.Join(t.TempDir(), "test.dict")
	lines := []string{
		"'cause K AH Z",
		"a AH",
		"a(2) EY",
		"human HH Y UW M AH N",
		"me M IY",
		"morning M AO R N IH NG",
		"o'clock AH K L AA K",
		"to T UW",
		"to(2) T IH",
		"transfer T R AE N S F ER",
		"transfer(2) T R AE N S F ER R",
		"weather W EH DH ER",
	}
	if err := os.WriteFile(dict, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		keyterms []string
		phrases  []string
		dropped  []string
	}{
		{"plain", []string{"transfer me to a human"}, []string{"transfer me to a human"}, nil},
		{"case and punctuation", []string{"Transfer me, to a HUMAN!", "Morning."}, []string{"transfer me to a human", "morning"}, nil},
		{"apostrophes kept", []string{"'cause o'clock"}, []string{"'cause o'clock"}, nil},
		{"unknown words dropped", []string{"transfer me to Zorblax", "weather"}, []string{"transfer me to", "weather"}, []string{"zorblax"}},
		{"empty phrases dropped", []string{"qwxz", "  ", "weather"}, []string{"weather"}, []string{"qwxz"}},
		{"repeats dropped", []string{"weather", "Weather?"}, []string{"weather"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := buildGrammar(dict, tt.keyterms)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(g.phrases, tt.phrases) || !slices.Equal(g.dropped, tt.dropped) {
				t.Errorf("phrases %q dropped %q, want %q and %q", g.phrases, g.dropped, tt.phrases, tt.dropped)
			}
			for _, l := range g.dict {
				if !slices.Contains(lines, l) {
					t.Errorf("dictionary line %q is not from the dictionary", l)
				}
				if w := dictWord(l); !strings.Contains(" "+strings.Join(g.phrases, " ")+" ", " "+w+" ") {
					t.Errorf("dictionary line %q is for a word no phrase uses", l)
				}
			}
		})
	}

	g, err := buildGrammar(dict, []string{"transfer me to a human", "weather"})
	if err != nil {
		t.Fatal(err)
	}
	want := "#JSGF V1.0;\ngrammar parley;\npublic <utt> = ( transfer me to a human | weather );\n"
	if got := g.jsgf(); got != want {
		t.Errorf("jsgf:\n%s\nwant:\n%s", got, want)
	}
	if len(g.dict) != 9 { // a ×2, human, me, to ×2, transfer ×2, weather
		t.Errorf("dictionary %q, want the 9 lines of the words used", g.dict)
	}

	if _, err := buildGrammar(filepath.Join(t.TempDir(), "missing.dict"), []string{"x"}); err == nil {
		t.Error("a missing dictionary gave no error")
	}
}

// TestAddNoiseFloor checks that telephone audio converted to 16 kHz gets
// noise in its empty top band and almost none in its own band.
func TestAddNoiseFloor(t *testing.T) {
	tone, err := audio.Resample(audio.Tone(1000, 8000, 8000, 10000), 8000, modelRate)
	if err != nil {
		t.Fatal(err)
	}
	filled := slices.Clone(tone)
	addNoiseFloor(filled, 8000)
	top := audio.Goertzel(filled, modelRate, 6000)
	if audio.Goertzel(tone, modelRate, 6000) > 1e-3 || top < 1e-3 {
		t.Errorf("power at 6 kHz: %g before, %g after", audio.Goertzel(tone, modelRate, 6000), top)
	}
	diff := make([]int16, len(tone))
	for i := range tone {
		diff[i] = filled[i] - tone[i]
	}
	if rms := audio.RMS(diff); rms < 30 || rms > 100 {
		t.Errorf("noise RMS %.1f, want about %d", rms, bandFillRMS)
	}
	lowBand := audio.Goertzel(diff, modelRate, 1500) + audio.Goertzel(diff, modelRate, 3000)
	if lowBand > 5*top {
		t.Errorf("noise in the speech band (%g) is not much below the top band's (%g)", lowBand, top)
	}

	wide := make([]int16, modelRate)
	addNoiseFloor(wide, modelRate)
	if rms := audio.RMS(wide); rms < floorRMS/2 || rms > floorRMS*2 {
		t.Errorf("16 kHz audio: noise RMS %.1f, want about %d", rms, floorRMS)
	}
}
