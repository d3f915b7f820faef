package deepgramfake

import (
	"encoding/binary"

	"github.com/parley-voice/parley/internal/audio"
)

// bytesPerSample returns the size of one sample of encoding.
func bytesPerSample(encoding string) int {
	if encoding == "linear16" {
		return 2
	}
	return 1 // mulaw, alaw
}

// decodeChannel0 appends the first channel's samples of the whole frames
// in data (interleaved, channels per frame) to dst as 16-bit PCM.
func decodeChannel0(dst []int16, data []byte, encoding string, channels int) []int16 {
	size := bytesPerSample(encoding)
	frame := size * channels
	for i := 0; i+frame <= len(data); i += frame {
		switch encoding {
		case "linear16":
			dst = append(dst, int16(binary.LittleEndian.Uint16(data[i:])))
		case "mulaw":
			dst = append(dst, mulawToLinear(data[i]))
		case "alaw":
			dst = append(dst, alawToLinear(data[i]))
		}
	}
	return dst
}

// mulawToLinear decodes one G.711 μ-law byte.
func mulawToLinear(u byte) int16 {
	var out [1]int16
	return audio.DecodeUlaw(out[:0], []byte{u})[0]
}

// alawToLinear decodes one G.711 A-law byte.
func alawToLinear(a byte) int16 {
	var out [1]int16
	return audio.DecodeAlaw(out[:0], []byte{a})[0]
}
