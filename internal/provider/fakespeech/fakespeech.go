// Package fakespeech is the stand-in for speech that the text-to-speech
// fakes synthesise: a tone whose length follows the text, so tests can
// check what audio a text should give, sample for sample.
package fakespeech

import (
	"math"
	"time"
	"unicode/utf8"
)

// Tone returns a tone of hz hertz and amplitude 6000 lasting 60 ms per
// character of text (at least 200 ms), faded in and out over 20 ms, at rate
// samples per second; nil when rate is not positive.
func Tone(text string, rate int, hz float64) []int16 {
	if rate <= 0 {
		return nil
	}
	dur := max(time.Duration(utf8.RuneCountInString(text))*60*time.Millisecond, 200*time.Millisecond)
	n := int(int64(rate) * int64(dur) / int64(time.Second))
	fade := rate * 20 / 1000
	out := make([]int16, n)
	for i := range out {
		gain := 1.0
		if i < fade {
			gain = float64(i) / float64(fade)
		}
		if j := n - 1 - i; j < fade {
			gain = min(gain, float64(j)/float64(fade))
		}
		out[i] = int16(math.Round(6000 * gain * math.Sin(2*math.Pi*hz*float64(i)/float64(rate))))
	}
	return out
}
