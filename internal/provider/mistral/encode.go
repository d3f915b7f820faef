package mistral

import (
	"encoding/binary"
	"fmt"

	"github.com/parley-voice/parley/internal/audio"
)

// pcmRate is the rate linear PCM is sent at when the input is not 8 kHz
// telephony audio (which goes as G.711 µ-law unchanged).
const pcmRate = 16000

// encoder turns the pipeline's PCM into the bytes of one append.
type encoder struct {
	encoding string
	rate     int
	rs       *audio.Resampler // nil when no resampling is needed
	buf      []int16
}

// newEncoder chooses pcm_mulaw for 8 kHz input and pcm_s16le at 16 kHz
// otherwise. It is pure so the choice can be table-tested.
func newEncoder(inRate int) (*encoder, error) {
	if inRate == 8000 {
		return &encoder{encoding: "pcm_mulaw", rate: 8000}, nil
	}
	e := &encoder{encoding: "pcm_s16le", rate: pcmRate}
	if inRate != pcmRate {
		rs, err := audio.NewResampler(inRate, pcmRate)
		if err != nil {
			return nil, fmt.Errorf("resampling %d Hz to %d Hz: %w", inRate, pcmRate, err)
		}
		e.rs = rs
	}
	return e, nil
}

func (e *encoder) format() audioFormat {
	return audioFormat{Encoding: e.encoding, SampleRate: e.rate}
}

// encode returns pcm in the wire encoding. It is not safe for concurrent
// use (Stream.Write serialises calls).
func (e *encoder) encode(pcm []int16) []byte {
	if e.encoding == "pcm_mulaw" {
		return audio.EncodeUlaw(nil, pcm)
	}
	if e.rs != nil {
		e.buf = e.rs.Process(e.buf[:0], pcm)
		pcm = e.buf
	}
	out := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(v))
	}
	return out
}

// flush encodes the last samples of the stream, pcm (possibly empty)
// followed by what the resampler still holds back.
func (e *encoder) flush(pcm []int16) []byte {
	if e.rs == nil {
		if len(pcm) == 0 {
			return nil
		}
		return e.encode(pcm)
	}
	out := e.rs.Process(nil, pcm)
	out = e.rs.Flush(out)
	b := make([]byte, 2*len(out))
	for i, v := range out {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}
