package fakespeech

import "testing"

func TestTone(t *testing.T) {
	if got := Tone("hi", 0, 440); got != nil {
		t.Errorf("rate 0: %d samples, want nil", len(got))
	}
	// 2 characters are under the 200 ms floor; 10 are 600 ms.
	for _, tt := range []struct {
		text string
		want int
	}{{"hi", 1600}, {"0123456789", 4800}} {
		pcm := Tone(tt.text, 8000, 440)
		if len(pcm) != tt.want {
			t.Fatalf("Tone(%q): %d samples, want %d", tt.text, len(pcm), tt.want)
		}
		if pcm[0] != 0 || pcm[len(pcm)-1] != 0 {
			t.Errorf("Tone(%q) not faded: first %d, last %d", tt.text, pcm[0], pcm[len(pcm)-1])
		}
		var peak int16
		for _, v := range pcm {
			peak = max(peak, v)
		}
		if peak < 5900 || peak > 6000 {
			t.Errorf("Tone(%q): peak %d, want about 6000", tt.text, peak)
		}
	}
}
