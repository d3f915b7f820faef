package audio

import (
	"math"
	"testing"
	"time"
)

// span is a stretch of speech, in time from the start of the audio.
type span struct{ start, end time.Duration }

// detect runs a VAD over pcm in 20 ms frames and returns the speech spans
// its events describe, and whether any frame was voiced. Speech that is
// still going at the end closes there.
func detect(t *testing.T, cfg VADConfig, pcm []int16, rate int) ([]span, bool) {
	t.Helper()
	v := NewVAD(cfg)
	cfg = v.Config()
	n := FrameSamples(rate)
	frame := func(i int) time.Duration { return time.Duration(i) * FrameDuration * time.Millisecond }
	var spans []span
	anyVoiced := false
	for i := 0; (i+1)*n <= len(pcm); i++ {
		res := v.Process(pcm[i*n : (i+1)*n])
		anyVoiced = anyVoiced || res.Voiced
		switch res.Event {
		case SpeechStart:
			spans = append(spans, span{start: frame(i - cfg.StartFrames + 1), end: -1})
		case SpeechEnd:
			if len(spans) == 0 || spans[len(spans)-1].end >= 0 {
				t.Fatalf("frame %d: SpeechEnd without SpeechStart", i)
			}
			spans[len(spans)-1].end = frame(i - cfg.EndFrames + 1)
		}
		if res.Speaking != (len(spans) > 0 && spans[len(spans)-1].end < 0) {
			t.Fatalf("frame %d: Speaking = %v disagrees with the events", i, res.Speaking)
		}
	}
	if len(spans) > 0 && spans[len(spans)-1].end < 0 {
		spans[len(spans)-1].end = frame(len(pcm) / n)
	}
	return spans, anyVoiced
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

// The spans below come from testdata/README.md: speech sample ranges of the
// fixtures at 8 kHz.
func TestVADFixtures(t *testing.T) {
	tests := []struct {
		file string
		want []span
	}{
		{"hello.wav", []span{{ms(500), ms(2774)}}},
		{"two_utterances.wav", []span{{ms(500), ms(1142)}, {ms(2142), ms(3525)}}},
		{"silence.wav", nil},
	}
	const tolerance = 100 * time.Millisecond
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, _ := detect(t, DefaultVADConfig(), readFixture(t, tt.file), 8000)
			if len(got) != len(tt.want) {
				t.Fatalf("speech spans %v, want %v", got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if (g.start-w.start).Abs() > tolerance || (g.end-w.end).Abs() > tolerance {
					t.Errorf("span %d = %v–%v, want %v–%v (±%v)", i, g.start, g.end, w.start, w.end, tolerance)
				}
			}
			t.Logf("spans %v", got)
		})
	}
}

// TestVADQuiet feeds signals that are not speech: none may start speech.
func TestVADQuiet(t *testing.T) {
	click := make([]int16, 8000)
	copy(click[4000:], whiteNoise(480, 8000, 2)) // 60 ms burst
	tone := make([]int16, 8000)
	copy(tone[2000:], Tone(1000, 8000, 480, 20000))
	tests := []struct {
		name      string
		pcm       []int16
		rate      int
		maxVoiced bool // whether voiced frames are allowed at all
	}{
		{"digital silence", make([]int16, 16000), 8000, false},
		{"white noise rms 100", whiteNoise(16000, 100, 1), 8000, false},
		{"white noise rms 100 at 16 kHz", whiteNoise(32000, 100, 3), 16000, false},
		{"60 ms click", click, 8000, true},
		{"60 ms loud tone", tone, 8000, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spans, voiced := detect(t, DefaultVADConfig(), tt.pcm, tt.rate)
			if len(spans) > 0 {
				t.Errorf("speech spans %v, want none", spans)
			}
			if voiced && !tt.maxVoiced {
				t.Error("a frame was voiced")
			}
		})
	}
}

// mix adds b to a from sample offset on, saturating.
func mix(a, b []int16, offset int) []int16 {
	out := append([]int16(nil), a...)
	for i, s := range b {
		if j := i + offset; j < len(out) {
			out[j] = int16(max(math.MinInt16, min(math.MaxInt16, int(out[j])+int(s))))
		}
	}
	return out
}

// TestVADNoiseFloor puts speech on top of steady noise: the floor learns the
// noise first, then the speech still stands out.
func TestVADNoiseFloor(t *testing.T) {
	speech := readFixture(t, "hello.wav") // speech 0.5–2.774 s
	noise := whiteNoise(8000+len(speech), 250, 4)
	pcm := mix(noise, speech, 8000)

	v := NewVAD(DefaultVADConfig())
	for i := 0; i+160 <= 8000; i += 160 {
		v.Process(pcm[i : i+160])
	}
	if f := v.NoiseFloor(); f < 200 || f > 300 {
		t.Errorf("noise floor %.0f after 1 s of noise with RMS 250", f)
	}
	spans, _ := detect(t, DefaultVADConfig(), pcm, 8000)
	if len(spans) != 1 || (spans[0].start-ms(1500)).Abs() > 100*time.Millisecond || (spans[0].end-ms(3774)).Abs() > 150*time.Millisecond {
		t.Errorf("speech over noise: spans %v, want one near 1.5–3.774 s", spans)
	}
}

// TestVADLoudNoise starts with steady noise above MinRMS, which looks like
// speech until the detector gives up on it after 5 s; speech after that is
// found again.
func TestVADLoudNoise(t *testing.T) {
	speech := readFixture(t, "hello.wav")
	pcm := mix(whiteNoise(8*8000+len(speech), 500, 5), speech, 8*8000)
	spans, _ := detect(t, DefaultVADConfig(), pcm, 8000)
	if len(spans) != 2 {
		t.Fatalf("spans %v, want the noise's first 5 s and the speech", spans)
	}
	if spans[0].start != 0 || spans[0].end > ms(5100) {
		t.Errorf("noise taken for speech during %v–%v, want at most the first 5 s", spans[0].start, spans[0].end)
	}
	// The soft "h" of "hello" drowns in this much noise: allow 200 ms.
	if (spans[1].start - ms(8500)).Abs() > 200*time.Millisecond {
		t.Errorf("speech found at %v, want about 8.5 s", spans[1].start)
	}
}

func TestVADReset(t *testing.T) {
	v := NewVAD(DefaultVADConfig())
	loud := Tone(300, 8000, 160, 10000)
	for range 6 {
		v.Process(loud)
	}
	if !v.Process(loud).Speaking {
		t.Fatal("not speaking after 7 loud frames")
	}
	v.Reset()
	if res := v.Process(make([]int16, 160)); res.Speaking || res.Event != NoEvent {
		t.Errorf("after Reset: %+v", res)
	}
	if v.Config() != DefaultVADConfig() {
		t.Errorf("Reset changed the config: %+v", v.Config())
	}
}

func TestNewVADDefaults(t *testing.T) {
	if got := NewVAD(VADConfig{}).Config(); got != DefaultVADConfig() {
		t.Errorf("zero config became %+v, want the defaults", got)
	}
	custom := VADConfig{StartFrames: 3, EndFrames: 20, MinRMS: 500, Ratio: 4}
	if got := NewVAD(custom).Config(); got != custom {
		t.Errorf("config %+v became %+v", custom, got)
	}
}
