package gladia

import (
	"encoding/binary"
	"fmt"

	"github.com/parley-voice/parley/internal/audio"
)

// Wire encodings (the session request's "encoding").
const (
	encodingPCM  = "wav/pcm"
	encodingUlaw = "wav/ulaw"
)

// pcmRates are the sample rates Gladia takes 16-bit PCM at; other rates
// are resampled to fallbackRate.
var pcmRates = [...]int{16000, 32000, 44100, 48000}

const (
	telephonyRate = 8000
	fallbackRate  = 16000
	chunkDuration = 100 // milliseconds of audio per websocket frame
)

// encoder turns the pipeline's PCM into the bytes the session expects:
// G.711 µ-law at 8 kHz (sent as is, as phone audio arrives), 16-bit
// little-endian PCM at the supported rates, or PCM resampled to 16 kHz.
type encoder struct {
	wireEncoding string
	wireRate     int
	bitDepth     int
	resampler    *audio.Resampler // nil when the rate is sent as is
	scratch      []int16
}

func newEncoder(sampleRate int) (*encoder, error) {
	if sampleRate <= 0 {
		return nil, fmt.Errorf("sample rate %d is not positive", sampleRate)
	}
	if sampleRate == telephonyRate {
		return &encoder{wireEncoding: encodingUlaw, wireRate: telephonyRate, bitDepth: 8}, nil
	}
	e := &encoder{wireEncoding: encodingPCM, wireRate: sampleRate, bitDepth: 16}
	for _, r := range pcmRates {
		if r == sampleRate {
			return e, nil
		}
	}
	rs, err := audio.NewResampler(sampleRate, fallbackRate)
	if err != nil {
		return nil, fmt.Errorf("resampling %d Hz to %d Hz: %w", sampleRate, fallbackRate, err)
	}
	e.wireRate, e.resampler = fallbackRate, rs
	return e, nil
}

// chunkBytes is the size of one ~100 ms websocket frame.
func (e *encoder) chunkBytes() int {
	return e.wireRate * chunkDuration / 1000 * e.bitDepth / 8
}

// encode appends the wire bytes of pcm to dst.
func (e *encoder) encode(dst []byte, pcm []int16) []byte {
	if e.resampler != nil {
		e.scratch = e.resampler.Process(e.scratch[:0], pcm)
		pcm = e.scratch
	}
	return e.appendWire(dst, pcm)
}

// flush appends what the resampler still holds.
func (e *encoder) flush(dst []byte) []byte {
	if e.resampler == nil {
		return dst
	}
	e.scratch = e.resampler.Flush(e.scratch[:0])
	return e.appendWire(dst, e.scratch)
}

func (e *encoder) appendWire(dst []byte, pcm []int16) []byte {
	if e.wireEncoding == encodingUlaw {
		return audio.EncodeUlaw(dst, pcm)
	}
	for _, v := range pcm {
		dst = binary.LittleEndian.AppendUint16(dst, uint16(v))
	}
	return dst
}
