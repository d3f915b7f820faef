package audio

import (
	"math"
	"testing"
)

func TestRMS(t *testing.T) {
	tests := []struct {
		name string
		pcm  []int16
		want float64
	}{
		{"empty", nil, 0},
		{"zeros", make([]int16, 160), 0},
		{"constant", []int16{-300, -300, -300}, 300},
		{"square", []int16{1000, -1000, 1000, -1000}, 1000},
		{"sine", Tone(1000, 8000, 8000, 10000), 10000 / math.Sqrt2},
	}
	for _, tt := range tests {
		if got := RMS(tt.pcm); math.Abs(got-tt.want) > 0.01*tt.want+1e-9 {
			t.Errorf("%s: RMS = %.2f, want %.2f", tt.name, got, tt.want)
		}
	}
}

func TestGoertzel(t *testing.T) {
	tone := Tone(1000, 8000, 8000, 10000)
	tests := []struct {
		freq     float64
		min, max float64
	}{
		{1000, 0.99 * 5e7, 1.01 * 5e7}, // A²/2
		{500, 0, 1},
		{1100, 0, 1},
		{3000, 0, 1},
	}
	for _, tt := range tests {
		if got := Goertzel(tone, 8000, tt.freq); got < tt.min || got > tt.max {
			t.Errorf("Goertzel(%g Hz) = %g, want %g..%g", tt.freq, got, tt.min, tt.max)
		}
	}
	if got := Goertzel(nil, 8000, 1000); got != 0 {
		t.Errorf("Goertzel(no samples) = %g", got)
	}
}

func TestTone(t *testing.T) {
	tone := Tone(500, 16000, 320, 12000)
	if len(tone) != 320 || tone[0] != 0 {
		t.Fatalf("len %d, first sample %d", len(tone), tone[0])
	}
	if tone[8] != 12000 || tone[24] != -12000 { // quarter and three-quarter periods
		t.Errorf("peaks %d and %d, want ±12000", tone[8], tone[24])
	}
}

func TestFrameSamples(t *testing.T) {
	for rate, want := range map[int]int{8000: 160, 16000: 320, 22050: 441, 48000: 960} {
		if got := FrameSamples(rate); got != want {
			t.Errorf("FrameSamples(%d) = %d, want %d", rate, got, want)
		}
	}
}
