package silero

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name    string
		in      Config
		wantErr string
		want    Config
	}{
		{"no library", Config{Model: "m"}, "library", Config{}},
		{"no model", Config{Library: "l"}, "model", Config{}},
		{"threshold too low", Config{Library: "l", Model: "m", Threshold: 0.1}, "threshold", Config{}},
		{"threshold too high", Config{Library: "l", Model: "m", Threshold: 0.99}, "threshold", Config{}},
		{"defaults", Config{Library: "l", Model: "m"}, "", Config{Library: "l", Model: "m", Threshold: 0.5, StartFrames: 5, EndFrames: 10}},
		{"kept", Config{Library: "l", Model: "m", Threshold: 0.7, StartFrames: 3, EndFrames: 20}, "", Config{Library: "l", Model: "m", Threshold: 0.7, StartFrames: 3, EndFrames: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.withDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestVerdict(t *testing.T) {
	tests := []struct {
		p        float32
		speaking bool
		want     bool
	}{
		{0.49, false, false},
		{0.5, false, true},
		{0.4, false, false},
		{0.4, true, true}, // hysteresis: speech goes on down to 0.35
		{0.35, true, true},
		{0.34, true, false},
		{0.9, true, true},
	}
	for _, tt := range tests {
		if got := verdict(tt.p, tt.speaking, 0.5); got != tt.want {
			t.Errorf("verdict(%v, speaking %v) = %v, want %v", tt.p, tt.speaking, got, tt.want)
		}
	}
}

func TestOpenMissingFiles(t *testing.T) {
	dir := t.TempDir()
	_, err := Open(Config{Library: filepath.Join(dir, "libonnxruntime.so.1"), Model: filepath.Join(dir, "silero_vad.onnx")})
	if err == nil || !strings.Contains(err.Error(), "silero-setup.sh") {
		t.Fatalf("Open with missing files: err = %v, want one pointing at scripts/silero-setup.sh", err)
	}
}

func TestOpenTwice(t *testing.T) {
	m := model(t)
	_, err := Open(m.cfg)
	if err == nil || !strings.Contains(err.Error(), "already initialized") {
		t.Fatalf("second Open: err = %v, want already initialized", err)
	}
}

func readFixture(t testing.TB, path string) []int16 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, rate, err := audio.ReadWAV(f)
	if err != nil {
		t.Fatal(err)
	}
	if rate != sampleRate {
		t.Fatalf("%s: %d Hz, want %d", path, rate, sampleRate)
	}
	return pcm
}

// span is a stretch of speech from the start of the audio.
type span struct{ start, end time.Duration }

const frameLen = sampleRate / 50 // 20 ms

func frameTime(i int) time.Duration { return time.Duration(i) * 20 * time.Millisecond }

// vad is what both detectors offer (pipeline.VAD).
type vad interface {
	Process(frame []int16) audio.VADResult
	Delays() (start, end int)
}

// spans runs v over pcm in 20 ms frames and returns the speech its events
// describe, dated back by its delays.
func spans(v vad, pcm []int16) []span {
	startLag, endLag := v.Delays()
	var out []span
	for i := 0; (i+1)*frameLen <= len(pcm); i++ {
		switch v.Process(pcm[i*frameLen : (i+1)*frameLen]).Event {
		case audio.SpeechStart:
			out = append(out, span{start: frameTime(i - startLag + 1), end: -1})
		case audio.SpeechEnd:
			out[len(out)-1].end = frameTime(i - endLag + 1)
		}
	}
	if len(out) > 0 && out[len(out)-1].end < 0 {
		out[len(out)-1].end = frameTime(len(pcm) / frameLen)
	}
	return out
}

func newDetector(t testing.TB) *Detector {
	t.Helper()
	d, err := model(t).NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("close detector: %v", err)
		}
	})
	return d
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// The fixtures of package audio, whose speech intervals its testdata README
// lists.
func TestFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []span
	}{
		{"hello.wav", []span{{ms(500), ms(2774)}}},
		{"two_utterances.wav", []span{{ms(500), ms(1142)}, {ms(2142), ms(3525)}}},
		{"silence.wav", nil},
	}
	// The model's 32 ms window and the end hysteresis add to the energy
	// VAD's 100 ms.
	const tolerance = 150 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := spans(newDetector(t), readFixture(t, filepath.Join("..", "audio", "testdata", tt.file)))
			if len(got) != len(tt.want) {
				t.Fatalf("spans = %v, want %v", got, tt.want)
			}
			for i, w := range tt.want {
				if d := got[i].start - w.start; d < -tolerance || d > tolerance {
					t.Errorf("span %d starts at %v, want %v ±%v", i, got[i].start, w.start, tolerance)
				}
				if d := got[i].end - w.end; d < -tolerance || d > tolerance {
					t.Errorf("span %d ends at %v, want %v ±%v", i, got[i].end, w.end, tolerance)
				}
			}
		})
	}
}

// Detectors share the session but not their state: several calls at once
// hear what each would alone.
func TestConcurrentDetectors(t *testing.T) {
	hello := readFixture(t, filepath.Join("..", "audio", "testdata", "hello.wav"))
	two := readFixture(t, filepath.Join("..", "audio", "testdata", "two_utterances.wav"))
	want := [][]span{spans(newDetector(t), hello), spans(newDetector(t), two)}
	var wg sync.WaitGroup
	got := make([][]span, 8)
	for i := range got {
		d := newDetector(t)
		pcm := hello
		if i%2 == 1 {
			pcm = two
		}
		wg.Go(func() { got[i] = spans(d, pcm) })
	}
	wg.Wait()
	for i, g := range got {
		if w := want[i%2]; !equalSpans(g, w) {
			t.Errorf("detector %d: spans %v, alone %v", i, g, w)
		}
	}
}

func equalSpans(a, b []span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A frame shorter than the window and frames of odd sizes add up: the
// verdict depends only on the samples, not on how they were cut.
func TestFrameSizes(t *testing.T) {
	pcm := readFixture(t, filepath.Join("..", "audio", "testdata", "hello.wav"))
	a, b := newDetector(t), newDetector(t)
	var pa, pb []float32
	for i := 0; (i+1)*frameLen <= len(pcm); i++ {
		a.Process(pcm[i*frameLen : (i+1)*frameLen])
		pa = append(pa, a.Probability())
	}
	// Same samples in 10 ms halves: b's probability after every second
	// half must match a's after the whole frame.
	for i := 0; (i+1)*frameLen <= len(pcm); i++ {
		b.Process(pcm[i*frameLen : i*frameLen+frameLen/2])
		b.Process(pcm[i*frameLen+frameLen/2 : (i+1)*frameLen])
		pb = append(pb, b.Probability())
	}
	for i := range pa {
		if pa[i] != pb[i] {
			t.Fatalf("frame %d: probability %v whole, %v in halves", i, pa[i], pb[i])
		}
	}
	var peak float32
	for _, p := range pa {
		peak = max(peak, p)
	}
	if peak < 0.9 {
		t.Fatalf("peak speech probability over hello.wav = %v, want ≥ 0.9", peak)
	}
}

// Close may come while a frame is being processed (the media session
// detaches the sink without waiting): it waits, and later frames are
// silence rather than a use of freed tensors.
func TestCloseDuringProcess(t *testing.T) {
	d, err := model(t).NewDetector()
	if err != nil {
		t.Fatal(err)
	}
	pcm := readFixture(t, filepath.Join("..", "audio", "testdata", "hello.wav"))
	var closed atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; !closed.Load(); i = (i + 1) % (len(pcm)/frameLen - 1) {
			d.Process(pcm[i*frameLen : (i+1)*frameLen])
		}
	}()
	time.Sleep(20 * time.Millisecond)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	closed.Store(true)
	<-done
	if r := d.Process(pcm[:frameLen]); r != (audio.VADResult{}) {
		t.Fatalf("Process after Close = %+v, want silence", r)
	}
}
