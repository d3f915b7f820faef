package inworldfake

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/fakespeech"
)

// DefaultSynth is the audio the fake speaks when Config.Synth is nil: a
// 440 Hz tone of amplitude 6000 lasting 60 ms per character of text (at
// least 200 ms), faded in and out over 20 ms, at rate samples per second.
func DefaultSynth(text string, rate int) []int16 { return fakespeech.Tone(text, rate, 440) }

// pcmBytes encodes samples as 16-bit little-endian PCM.
func pcmBytes(pcm []int16) []byte {
	b := make([]byte, 0, 2*len(pcm))
	for _, s := range pcm {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

// wavHeader returns the 44-byte header of a mono 16-bit WAV at rate with an
// unknown (streaming) data size.
func wavHeader(rate int) []byte {
	var buf bytes.Buffer
	_ = audio.WriteWAV(&buf, nil, rate)
	return buf.Bytes()
}

// chunkBytes is how many bytes of PCM16 at rate last d, not rounded to
// whole samples; at least 1.
func chunkBytes(rate int, d time.Duration) int {
	return max(1, int(int64(2*rate)*int64(d)/int64(time.Second)))
}

// split cuts b into pieces of n bytes (the last may be shorter).
func split(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > n {
		out = append(out, b[:n])
		b = b[n:]
	}
	if len(b) > 0 {
		out = append(out, b)
	}
	return out
}
