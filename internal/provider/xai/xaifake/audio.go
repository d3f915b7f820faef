package xaifake

import (
	"math"
	"time"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/audio"
)

// DefaultSynth is the audio the fake speaks when Config.Synth is nil: a
// 440 Hz tone of amplitude 6000 lasting 60 ms per character of text (at
// least 200 ms), faded in and out over 20 ms, at rate samples per second.
func DefaultSynth(text string, rate int) []int16 {
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
		out[i] = int16(math.Round(6000 * gain * math.Sin(2*math.Pi*440*float64(i)/float64(rate))))
	}
	return out
}

// encode turns samples into the codec's bytes: 16-bit little-endian PCM,
// or one G.711 byte per sample.
func encode(codec string, pcm []int16) []byte {
	switch codec {
	case "mulaw":
		return audio.EncodeUlaw(nil, pcm)
	case "alaw":
		return audio.EncodeAlaw(nil, pcm)
	}
	out := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		out[2*i] = byte(uint16(v))
		out[2*i+1] = byte(uint16(v) >> 8)
	}
	return out
}
