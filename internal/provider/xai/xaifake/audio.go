package xaifake

import (
	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/fakespeech"
)

// DefaultSynth is the audio the fake speaks when Config.Synth is nil: a
// 440 Hz tone of amplitude 6000 lasting 60 ms per character of text (at
// least 200 ms), faded in and out over 20 ms, at rate samples per second.
func DefaultSynth(text string, rate int) []int16 { return fakespeech.Tone(text, rate, 440) }

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
