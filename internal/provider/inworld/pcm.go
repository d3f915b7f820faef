package inworld

import (
	"bytes"
	"encoding/base64"
	"fmt"

	"github.com/parley-voice/parley/internal/audio"
)

// converter turns the service's base64 LINEAR16 chunks into mono PCM at the
// pipeline's rate.
//
// A chunk is raw 16-bit little-endian PCM at the requested rate, or (as the
// HTTP API does and Pipecat guards against on the websocket) a WAV file
// whose header says the format; the header is honoured and stripped. A
// sample split between two chunks is carried over. When the audio's rate is
// not the pipeline's, a streaming resampler converts it.
type converter struct {
	format  audio.WAVHeader // the format of the raw bytes that follow
	target  int             // the pipeline's rate
	rs      *audio.Resampler
	pending []byte // the start of a sample frame split between chunks
	buf     []byte
}

// newConverter expects raw PCM at serviceRate and produces pipelineRate.
func newConverter(serviceRate, pipelineRate int) (*converter, error) {
	c := &converter{target: pipelineRate}
	if err := c.setFormat(audio.WAVHeader{Format: audio.WAVFormatPCM, Channels: 1, Rate: serviceRate, BitsPerSample: 16}); err != nil {
		return nil, err
	}
	return c, nil
}

// setFormat switches to a new source format, keeping the resampler when
// the rate is unchanged.
func (c *converter) setFormat(h audio.WAVHeader) error {
	if c.rs == nil || c.format.Rate != h.Rate {
		rs, err := audio.NewResampler(h.Rate, c.target)
		if err != nil {
			return err
		}
		if c.rs != nil {
			c.rs.Flush(nil) // drop the tail of audio in the old format
		}
		c.rs = rs
	}
	c.format = h
	return nil
}

// decode returns the samples of one base64 chunk at the pipeline's rate,
// in a new slice the caller owns (possibly empty while the resampler
// fills).
func (c *converter) decode(b64 string) ([]int16, error) {
	n := base64.StdEncoding.DecodedLen(len(b64))
	if cap(c.buf) < n {
		c.buf = make([]byte, n)
	}
	n, err := base64.StdEncoding.Decode(c.buf[:n], []byte(b64))
	if err != nil {
		return nil, fmt.Errorf("decoding base64 audio: %w", err)
	}
	data, err := c.stripHeader(c.buf[:n])
	if err != nil {
		return nil, err
	}
	if len(c.pending) > 0 {
		data = append(c.pending, data...)
	}
	pcm, used := c.format.Decode(nil, data)
	c.pending = append(c.pending[:0:0], data[used:]...)
	return c.rs.Process(nil, pcm), nil
}

// stripHeader returns data without a leading WAV header, adopting the
// header's format. A partial sample left from before a header is dropped.
func (c *converter) stripHeader(data []byte) ([]byte, error) {
	if len(data) < 12 || string(data[0:4]) != "RIFF" || string(data[8:12]) != "WAVE" {
		return data, nil
	}
	r := bytes.NewReader(data)
	h, err := audio.ReadWAVHeader(r)
	if err != nil {
		return nil, fmt.Errorf("decoding audio chunk: %w", err)
	}
	c.pending = nil
	if err := c.setFormat(h); err != nil {
		return nil, fmt.Errorf("decoding audio chunk: %w", err)
	}
	return data[len(data)-r.Len():], nil
}

// finish returns the audio the resampler still holds; it reports whether a
// partial sample was left over (and dropped).
func (c *converter) finish() (tail []int16, partial bool) {
	partial = len(c.pending) > 0
	c.pending = nil
	return c.rs.Flush(nil), partial
}
