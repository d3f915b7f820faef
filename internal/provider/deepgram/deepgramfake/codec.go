package deepgramfake

import "encoding/binary"

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
	u = ^u
	exponent := (u >> 4) & 0x07
	mantissa := int(u & 0x0f)
	sample := ((mantissa << 3) + 0x84) << exponent
	sample -= 0x84
	if u&0x80 != 0 {
		return int16(-sample)
	}
	return int16(sample)
}

// alawToLinear decodes one G.711 A-law byte.
func alawToLinear(a byte) int16 {
	a ^= 0x55
	exponent := (a >> 4) & 0x07
	mantissa := int(a & 0x0f)
	var sample int
	if exponent == 0 {
		sample = mantissa<<4 + 8
	} else {
		sample = (mantissa<<4 + 0x108) << (exponent - 1)
	}
	if a&0x80 == 0 { // in A-law a set sign bit means positive
		return int16(-sample)
	}
	return int16(sample)
}
