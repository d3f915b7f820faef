package audio

import (
	"math/bits"
	"slices"
)

// G.711 (ITU-T, 11/88) companding, bit-exact with the reference coder of
// ITU-T G.191 (STL g711.c). Encoders treat 16-bit input as left-justified
// 14-bit (μ-law) or 13-bit (A-law) samples, truncating the extra low bits;
// a negative sample's magnitude is taken as its ones' complement, so -1 is
// "negative zero". Decoders return the middle of each quantisation interval
// on the 16-bit scale.

// UlawSilence is the μ-law code of a zero sample.
const UlawSilence byte = 0xFF

// AlawSilence is the A-law code of a zero sample (the smallest positive step).
const AlawSilence byte = 0xD5

// ulawBias is the offset added to a μ-law magnitude (on the 14-bit scale, 33)
// so that the segments start at powers of two.
const ulawBias = 33

// ulawClip is the largest biased μ-law magnitude on the 14-bit scale.
const ulawClip = 0x1FFF

// ulawTable and alawTable map each code to its decoded 16-bit sample. They are
// filled once and only read afterwards.
var (
	ulawTable = buildUlawTable()
	alawTable = buildAlawTable()
)

func buildUlawTable() [256]int16 {
	var t [256]int16
	for c := range 256 {
		u := ^byte(c)
		exp := int(u>>4) & 7
		mant := int(u) & 0x0F
		// The interval's middle, biased, then the bias (132 on the 16-bit
		// scale) removed.
		mag := ((mant<<3)+4*ulawBias)<<exp - 4*ulawBias
		if u&0x80 != 0 {
			mag = -mag
		}
		t[c] = int16(mag)
	}
	return t
}

func buildAlawTable() [256]int16 {
	var t [256]int16
	for c := range 256 {
		a := byte(c) ^ 0x55
		exp := int(a>>4) & 7
		mant := int(a) & 0x0F
		var mag int
		if exp == 0 {
			mag = mant<<4 + 8
		} else {
			mag = (mant<<4 + 0x108) << (exp - 1)
		}
		if a&0x80 == 0 {
			mag = -mag
		}
		t[c] = int16(mag)
	}
	return t
}

// EncodeUlaw appends the μ-law codes of pcm to dst and returns it.
func EncodeUlaw(dst []byte, pcm []int16) []byte {
	dst = slices.Grow(dst, len(pcm))
	for _, s := range pcm {
		dst = append(dst, ulawByte(s))
	}
	return dst
}

// DecodeUlaw appends the samples of the μ-law codes b to dst and returns it.
func DecodeUlaw(dst []int16, b []byte) []int16 {
	dst = slices.Grow(dst, len(b))
	for _, c := range b {
		dst = append(dst, ulawTable[c])
	}
	return dst
}

// EncodeAlaw appends the A-law codes of pcm to dst and returns it.
func EncodeAlaw(dst []byte, pcm []int16) []byte {
	dst = slices.Grow(dst, len(pcm))
	for _, s := range pcm {
		dst = append(dst, alawByte(s))
	}
	return dst
}

// DecodeAlaw appends the samples of the A-law codes b to dst and returns it.
func DecodeAlaw(dst []int16, b []byte) []int16 {
	dst = slices.Grow(dst, len(b))
	for _, c := range b {
		dst = append(dst, alawTable[c])
	}
	return dst
}

// ulawByte encodes one sample. The code is the inverted sign, segment and
// four mantissa bits of the biased magnitude.
func ulawByte(s int16) byte {
	var mag int32
	var sign byte
	if s < 0 {
		mag = int32(^s) >> 2
	} else {
		mag = int32(s) >> 2
		sign = 0x80
	}
	mag += ulawBias
	if mag > ulawClip {
		mag = ulawClip
	}
	seg := bits.Len32(uint32(mag) >> 6) // 0..7, as mag ≤ 0x1FFF
	mant := byte(mag>>(seg+1)) & 0x0F
	return ^(byte(seg)<<4|mant)&0x7F | sign
}

// alawByte encodes one sample. The code is the sign, segment and four
// mantissa bits of the magnitude, with the even bits inverted.
func alawByte(s int16) byte {
	var mag int32
	var sign byte
	if s < 0 {
		mag = int32(^s) >> 4
	} else {
		mag = int32(s) >> 4
		sign = 0x80
	}
	// mag ≤ 2047 (12 bits). Segment 0 holds 0..15 in steps of 1, segment
	// n ≥ 1 holds 16<<(n-1)..(32<<(n-1))-1 in steps of 1<<(n-1).
	code := byte(mag)
	if mag >= 16 {
		seg := bits.Len32(uint32(mag)) - 4 // 1..7
		code = byte(seg)<<4 | byte(mag>>(seg-1))&0x0F
	}
	return (code | sign) ^ 0x55
}
