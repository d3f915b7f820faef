// Package media carries a call's audio over RTP: SDP offer/answer, one UDP
// socket pair per call from a configured port range, G.711 in both directions,
// a reorder (jitter) buffer on receive, steady 20 ms paced sending, RTCP
// sender reports and a media timeout. Audio crosses the package boundary as
// 20 ms frames of mono 16-bit PCM at 8 kHz.
package media

import (
	"fmt"

	"github.com/parley-voice/parley/internal/audio"
)

// FrameSamples is the number of samples in one 20 ms frame at 8 kHz.
const FrameSamples = 160

// SampleRate is the rate of the PCM the package exchanges.
const SampleRate = 8000

// Codec is an audio payload format both sides agreed on.
type Codec struct {
	Name        string // as in SDP rtpmap: PCMU, PCMA
	PayloadType uint8
	ClockRate   int
}

// The codecs Parley speaks, in order of preference.
var (
	PCMU = Codec{Name: "PCMU", PayloadType: 0, ClockRate: 8000}
	PCMA = Codec{Name: "PCMA", PayloadType: 8, ClockRate: 8000}
)

// supported lists the codecs in preference order. It is read-only.
var supported = [...]Codec{PCMU, PCMA}

func (c Codec) String() string {
	return fmt.Sprintf("%s/%d (pt %d)", c.Name, c.ClockRate, c.PayloadType)
}

// encode appends the encoded frame to dst.
func (c Codec) encode(dst []byte, pcm []int16) []byte {
	if c.Name == PCMA.Name {
		return audio.EncodeAlaw(dst, pcm)
	}
	return audio.EncodeUlaw(dst, pcm)
}

// decode appends the decoded payload to dst.
func (c Codec) decode(dst []int16, payload []byte) []int16 {
	if c.Name == PCMA.Name {
		return audio.DecodeAlaw(dst, payload)
	}
	return audio.DecodeUlaw(dst, payload)
}

// silence is the encoded value of a zero sample.
func (c Codec) silence() byte {
	if c.Name == PCMA.Name {
		return audio.AlawSilence
	}
	return audio.UlawSilence
}
