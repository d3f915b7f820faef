package ambience

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/parley-voice/parley/internal/audio"
)

const frame = 160 // 20 ms

func db(x float64) float64 { return 20 * math.Log10(x) }

func decoded(t testing.TB, l *Library, name string) []int16 {
	t.Helper()
	c, err := l.Clip(name)
	if err != nil {
		t.Fatal(err)
	}
	return audio.DecodeUlaw(nil, c)
}

func TestClips(t *testing.T) {
	l := NewLibrary()
	for _, name := range Names() {
		x := decoded(t, l, name)
		if len(x) != ClipSeconds*Rate {
			t.Errorf("%s: %d samples, want %d", name, len(x), ClipSeconds*Rate)
		}
		level := db(audio.RMS(x) / RefRMS)
		peak := 0
		for _, v := range x {
			peak = max(peak, abs(int(v)))
		}
		t.Logf("%s: %.2f dB re RefRMS, peak %d (%.1f dBFS), %d bytes μ-law", name, level, peak, db(float64(peak)/32767), len(x))
		if math.Abs(level) > 0.5 {
			t.Errorf("%s: level %.2f dB from RefRMS", name, level)
		}
		if peak > PeakLimit+PeakLimit/16 { // μ-law step at that level
			t.Errorf("%s: peak %d above PeakLimit %d", name, peak, PeakLimit)
		}
	}
	if _, err := l.Clip("beach"); err == nil {
		t.Error("unknown clip accepted")
	}
	if _, err := l.Mixer(nil, "beach", 0.3); err == nil {
		t.Error("mixer with an unknown clip")
	}
}

func TestSynthesisIsDeterministic(t *testing.T) {
	for _, name := range Names() {
		if !slices.Equal(synthesize(name), synthesize(name)) {
			t.Errorf("%s differs between runs", name)
		}
	}
}

// seam reports what is wrong with the loop point of clip x (nil: nothing):
// the step from its last sample to its first against the clip's own steps
// (99.9th percentile); the high-frequency energy (second difference, 5 ms
// windows) across the seam against the clip's 99th percentile; and the jump
// in level (RMS of 10 ms either side) against the clip's 99.9th percentile
// of such jumps.
func seam(x []int16) []string {
	n := len(x)
	at := func(i int) float64 { return float64(x[(i%n+n)%n]) }
	var problems []string
	steps := make([]float64, 0, n)
	for i := 1; i < n; i++ {
		steps = append(steps, math.Abs(at(i)-at(i-1)))
	}
	if s, p := math.Abs(at(0)-at(n-1)), pct(steps, 99.9); s > p {
		problems = append(problems, fmt.Sprintf("step %.0f > p99.9 %.0f", s, p))
	}
	const w = 40
	energy := func(from int) float64 {
		var sum float64
		for i := from; i < from+w; i++ {
			d := at(i+1) - 2*at(i) + at(i-1)
			sum += d * d
		}
		return sum
	}
	var wins []float64
	for from := 0; from+w < n; from += w {
		wins = append(wins, energy(from))
	}
	if e, p := energy(n-w/2), pct(wins, 99); e > p {
		problems = append(problems, fmt.Sprintf("HF energy %.3g > p99 %.3g", e, p))
	}
	const lw = 80
	level := func(from int) float64 {
		var sum float64
		for i := from; i < from+lw; i++ {
			sum += at(i) * at(i)
		}
		return 10 * math.Log10(sum/lw+1)
	}
	var jumps []float64
	for from := lw; from+lw < n; from += lw / 2 {
		jumps = append(jumps, math.Abs(level(from)-level(from-lw)))
	}
	if j, p := math.Abs(level(n)-level(n-lw)), pct(jumps, 99.9); j > p+0.1 {
		problems = append(problems, fmt.Sprintf("level jump %.1f dB > p99.9 %.1f dB", j, p))
	}
	return problems
}

func pct(v []float64, p float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[int(float64(len(v)-1)*p/100)]
}

// TestLoopSeam: every clip loops without a click.
func TestLoopSeam(t *testing.T) {
	l := NewLibrary()
	for _, name := range Names() {
		if p := seam(decoded(t, l, name)); p != nil {
			t.Errorf("%s: seam: %v", name, p)
		}
	}
}

// TestSeamCheck: loops that click without the crossfade (a tone of 6009¾
// periods, noise that swells towards the end) are caught
// by seam, and pass once crossfaded by loopable. The clips themselves are
// noise-like enough that a raw cut hardly shows; these cases keep the check
// and the crossfade honest.
func TestSeamCheck(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	n := clipLen + fadeLen
	tone, swell := make([]float64, n), make([]float64, n)
	for i := range n {
		tone[i] = math.Sin(2 * math.Pi * 1001.3 * float64(i) / Rate)
		swell[i] = r.NormFloat64() * (1 + 3*float64(i)/float64(n))
	}
	for name, x := range map[string][]float64{"tone": tone, "swell": swell} {
		if p := seam(finish(slices.Clone(x[:clipLen]))); p == nil {
			t.Errorf("%s looped raw: no problem found", name)
		} else {
			t.Logf("%s looped raw: %v", name, p)
		}
		if p := seam(finish(loopable(slices.Clone(x), clipLen, fadeLen))); p != nil {
			t.Errorf("%s crossfaded: %v", name, p)
		}
	}
}

// TestWriteWAVs writes the clips for listening when AMBIENCE_WAV_DIR is set.
func TestWriteWAVs(t *testing.T) {
	dir := os.Getenv("AMBIENCE_WAV_DIR")
	if dir == "" {
		t.Skip("AMBIENCE_WAV_DIR not set")
	}
	l := NewLibrary()
	for _, name := range Names() {
		m, _ := l.Mixer(nil, name, 1)
		pcm := read(m, 3*ClipSeconds*50) // three loops
		f, err := os.Create(filepath.Join(dir, name+".wav"))
		if err != nil {
			t.Fatal(err)
		}
		if err := audio.WriteWAV(f, pcm, Rate); err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// read runs m for n frames and returns what it produced.
func read(m *Mixer, frames int) []int16 {
	out := make([]int16, 0, frames*frame)
	f := make([]int16, frame)
	for range frames {
		if !m.ReadFrame(f) {
			panic("mixer had no frame")
		}
		out = append(out, f...)
	}
	return out
}

func TestLevelAtVolume(t *testing.T) {
	l := NewLibrary()
	for _, name := range Names() {
		for _, v := range []float64{0.05, 0.3, 0.5, 1} {
			m, err := l.Mixer(nil, name, v)
			if err != nil {
				t.Fatal(err)
			}
			got := db(audio.RMS(read(m, ClipSeconds*50)) / (RefRMS * v))
			if math.Abs(got) > 1 {
				t.Errorf("%s at %.2f: %.2f dB from the configured level", name, v, got)
			}
		}
	}
}

// silentSource has nothing to send and leaves junk in the frame.
type silentSource struct{}

func (silentSource) ReadFrame(f []int16) bool {
	for i := range f {
		f[i] = 12345
	}
	return false
}

// voiceSource sends a constant frame.
type voiceSource struct{ v int16 }

func (s voiceSource) ReadFrame(f []int16) bool {
	for i := range f {
		f[i] = s.v
	}
	return true
}

func TestSilenceFramesCarryAmbience(t *testing.T) {
	l := NewLibrary()
	alone, _ := l.Mixer(nil, Office, 0.3)
	want := read(alone, 100)
	quiet, _ := l.Mixer(silentSource{}, Office, 0.3)
	if got := read(quiet, 100); !slices.Equal(got, want) {
		t.Error("a silent frame does not carry the ambience alone")
	}
	if !quiet.Filler() {
		t.Error("a frame of ambience alone is not reported as filler")
	}
	if audio.RMS(want) < RefRMS*0.3/2 {
		t.Errorf("ambience in silence at RMS %.0f", audio.RMS(want))
	}
	talk, _ := l.Mixer(voiceSource{1000}, Office, 0.3)
	got := read(talk, 100)
	if talk.Filler() {
		t.Error("a frame of speech reported as filler")
	}
	for i := range got {
		if got[i] != want[i]+1000 {
			t.Fatalf("sample %d: %d, want voice 1000 + ambience %d", i, got[i], want[i])
		}
	}
}

// TestLoops: the mixer's output repeats with the clip's period, frame after
// frame across the seam (6 s is 300 frames exactly; also a frame size that
// does not divide it).
func TestLoops(t *testing.T) {
	l := NewLibrary()
	clip := decoded(t, l, Forest)
	m, _ := l.Mixer(nil, Forest, 1)
	f := make([]int16, 70)
	for k := range 2*len(clip)/70 + 3 {
		m.ReadFrame(f)
		for i, v := range f {
			want := int16((int32(clip[(k*70+i)%len(clip)]) * 32768) >> 15)
			if v != want {
				t.Fatalf("frame %d sample %d: %d, want %d", k, i, v, want)
			}
		}
	}
}

func TestMixingDoesNotClip(t *testing.T) {
	l := NewLibrary()
	for _, name := range Names() {
		// A loud voice (peaks at full scale minus PeakLimit, about −1.6
		// dBFS... of the remaining range) plus ambience at full volume:
		// never reaches the rails.
		amp := int16(32767 - PeakLimit - PeakLimit/16)
		tone := audio.Tone(997, Rate, ClipSeconds*Rate, amp)
		m, _ := l.Mixer(&pcmSource{pcm: tone}, name, 1)
		for i, v := range read(m, ClipSeconds*50) {
			if v == math.MaxInt16 || v == math.MinInt16 {
				t.Fatalf("%s: sample %d clipped at %d", name, i, v)
			}
		}
		// A voice at the rails saturates; it never wraps round.
		for _, rail := range []int16{math.MaxInt16, math.MinInt16} {
			m, _ := l.Mixer(voiceSource{rail}, name, 1)
			for i, v := range read(m, ClipSeconds*50) {
				if (rail > 0) != (v > 0) || abs(int(v)) < 32767-PeakLimit-PeakLimit/16 {
					t.Fatalf("%s: voice %d gave %d at sample %d", name, rail, v, i)
				}
			}
		}
	}
}

type pcmSource struct {
	pcm []int16
	pos int
}

func (s *pcmSource) ReadFrame(f []int16) bool {
	n := copy(f, s.pcm[s.pos:])
	s.pos += n
	clear(f[n:])
	return n > 0
}

type wakingSource struct {
	silentSource
	ch chan struct{}
}

func (w wakingSource) Wake() <-chan struct{} { return w.ch }

func TestWake(t *testing.T) {
	l := NewLibrary()
	ch := make(chan struct{})
	m, _ := l.Mixer(wakingSource{ch: ch}, City, 0.3)
	if m.Wake() != ch {
		t.Error("Wake not delegated")
	}
	m, _ = l.Mixer(silentSource{}, City, 0.3)
	if m.Wake() != nil {
		t.Error("Wake of a source that is no waker")
	}
}

func TestVolumeClamped(t *testing.T) {
	l := NewLibrary()
	for _, v := range []float64{-1, math.NaN(), 2} {
		m, _ := l.Mixer(nil, City, v)
		if m.gain < 0 || m.gain > 32768 {
			t.Errorf("volume %v: gain %d", v, m.gain)
		}
	}
}

func TestMixerDoesNotAllocate(t *testing.T) {
	l := NewLibrary()
	m, _ := l.Mixer(voiceSource{100}, CrowdedRoom, 0.3)
	f := make([]int16, frame)
	if n := testing.AllocsPerRun(1000, func() { m.ReadFrame(f) }); n != 0 {
		t.Errorf("%v allocations per frame", n)
	}
}

// BenchmarkMixer is the per-call cost of background audio: one 20 ms frame
// mixed under a voice.
func BenchmarkMixer(b *testing.B) {
	l := NewLibrary()
	m, _ := l.Mixer(voiceSource{100}, Office, 0.3)
	f := make([]int16, frame)
	b.ReportAllocs()
	for b.Loop() {
		m.ReadFrame(f)
	}
}

// BenchmarkSynthesize is the one-off cost of generating a clip.
func BenchmarkSynthesize(b *testing.B) {
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				synthesize(name)
			}
		})
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
