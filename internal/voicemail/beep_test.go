package voicemail

import (
	"math"
	"math/rand/v2"
	"testing"
)

// sine is n samples of a tone at amplitude a.
func sine(hz float64, a float64, n int, phase *float64) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(a * math.Sin(*phase))
		*phase += 2 * math.Pi * hz / sampleRate
	}
	return out
}

// noise is white noise of roughly RMS a.
func noise(r *rand.Rand, a float64, n int) []int16 {
	out := make([]int16, n)
	for i := range out {
		out[i] = int16(r.NormFloat64() * a)
	}
	return out
}

// vowel is a speech-like buzz: harmonics of a gliding pitch, 20 ms.
func vowel(f0 float64, a float64, phase *float64) []int16 {
	out := make([]int16, frameLen)
	for i := range out {
		var s float64
		for h := 1; h <= 12; h++ {
			s += math.Sin(float64(h)**phase) / float64(h)
		}
		out[i] = int16(a * s / 2)
		*phase += 2 * math.Pi * f0 / sampleRate
	}
	return out
}

func add(a, b []int16) []int16 {
	out := make([]int16, len(a))
	for i := range a {
		out[i] = max(-32768, min(32767, a[i]+b[i]))
	}
	return out
}

func TestBeepDetector(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tests := []struct {
		name     string
		hz       float64
		amp      float64
		frames   int
		noiseRMS float64
		want     bool
	}{
		{"1 kHz beep 300 ms", 1000, 8000, 15, 30, true},
		{"440 Hz beep 200 ms", 440, 6000, 10, 30, true},
		{"1900 Hz beep in noise", 1900, 6000, 12, 300, true},
		{"off-grid 1012 Hz", 1012, 6000, 10, 30, true},
		{"too short: 100 ms", 1000, 8000, 5, 30, false},
		{"too quiet", 1000, 200, 20, 10, false},
		{"out of band: 3 kHz", 3000, 8000, 20, 30, false},
		{"out of band: 200 Hz", 200, 8000, 20, 30, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := NewBeepDetector()
			var ph float64
			for range 25 { // the line before
				d.Frame(noise(r, tt.noiseRMS, frameLen))
			}
			started, ended := false, false
			for range tt.frames {
				if d.Frame(add(sine(tt.hz, tt.amp, frameLen, &ph), noise(r, tt.noiseRMS, frameLen))) == BeepStart {
					started = true
				}
			}
			for range 5 {
				if d.Frame(noise(r, tt.noiseRMS, frameLen)) == BeepEnd {
					ended = true
				}
			}
			if started != tt.want || ended != tt.want {
				t.Errorf("started %v ended %v, want %v", started, ended, tt.want)
			}
			if tt.want && math.Abs(d.Hz()-tt.hz) > 25 {
				t.Errorf("Hz = %v, want ≈ %v", d.Hz(), tt.hz)
			}
		})
	}
}

func TestBeepDetectorIgnoresSpeechLikeBuzz(t *testing.T) {
	d := NewBeepDetector()
	var ph float64
	for i := range 200 { // 4 s of a voice gliding between 100 and 180 Hz
		f0 := 140 + 40*math.Sin(float64(i)/15)
		if d.Frame(vowel(f0, 6000, &ph)) != NoBeep {
			t.Fatalf("frame %d: beep event in a speech-like buzz", i)
		}
	}
}

func TestBeepDetectorTwoTonesInARow(t *testing.T) {
	// 100 ms of 800 Hz then 100 ms of 1200 Hz: neither lasts 150 ms.
	d := NewBeepDetector()
	var ph float64
	for i := range 10 {
		hz := 800.0
		if i >= 5 {
			hz = 1200
		}
		if d.Frame(sine(hz, 8000, frameLen, &ph)) == BeepStart {
			t.Fatal("two short tones made a beep")
		}
	}
}
