package audio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// WAV format tags understood by ReadWAV.
const (
	WAVFormatPCM        = 1
	WAVFormatAlaw       = 6
	WAVFormatUlaw       = 7
	WAVFormatExtensible = 0xFFFE
)

// WAVHeader describes the sample data of a WAV stream.
type WAVHeader struct {
	Format        uint16 // WAVFormatPCM, WAVFormatAlaw or WAVFormatUlaw
	Channels      int    // 1 or 2
	Rate          int    // samples per second
	BitsPerSample int    // 16 for PCM, 8 for A-law and μ-law
	// DataSize is the length of the data chunk in bytes, or -1 when the
	// header does not say (a streaming writer left it 0, 0xFFFFFFFF or
	// near 2 GiB): then the data runs to the end of the stream.
	DataSize int64
}

// FrameBytes returns the size of one sample frame (all channels).
func (h WAVHeader) FrameBytes() int { return h.Channels * h.BitsPerSample / 8 }

// Decode appends to dst the mono samples held in the whole frames of data
// (stereo is averaged) and returns dst and the number of bytes used. A
// partial frame at the end of data is left for the next call.
func (h WAVHeader) Decode(dst []int16, data []byte) ([]int16, int) {
	fb := h.FrameBytes()
	if fb <= 0 {
		return dst, 0
	}
	frames := len(data) / fb
	for i := range frames {
		f := data[i*fb : (i+1)*fb]
		var sum int32
		for c := range h.Channels {
			sum += int32(h.sample(f[c*h.BitsPerSample/8:]))
		}
		dst = append(dst, int16(sum/int32(h.Channels)))
	}
	return dst, frames * fb
}

func (h WAVHeader) sample(b []byte) int16 {
	switch h.Format {
	case WAVFormatUlaw:
		return ulawTable[b[0]]
	case WAVFormatAlaw:
		return alawTable[b[0]]
	}
	return int16(binary.LittleEndian.Uint16(b))
}

// Data sizes that streaming writers put in a header they cannot go back to:
// 0, all ones, and espeak-ng's 0x7FFFF000 (and anything else this large).
const streamingDataSize = 0x7FFF0000

// ReadWAVHeader reads a RIFF/WAVE header from r up to the start of the
// sample data, skipping chunks other than "fmt " and "data". The header must
// describe mono or stereo 16-bit PCM, or 8-bit A-law or μ-law.
func ReadWAVHeader(r io.Reader) (WAVHeader, error) {
	var riff [12]byte
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return WAVHeader{}, fmt.Errorf("audio: reading WAV header: %w", err)
	}
	if string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE" {
		return WAVHeader{}, errors.New("audio: reading WAV header: not a RIFF/WAVE stream")
	}
	var h WAVHeader
	haveFmt := false
	for {
		var ch [8]byte
		if _, err := io.ReadFull(r, ch[:]); err != nil {
			return WAVHeader{}, fmt.Errorf("audio: reading WAV chunk header: %w", err)
		}
		id, size := string(ch[0:4]), binary.LittleEndian.Uint32(ch[4:8])
		switch id {
		case "fmt ":
			if size < 16 || size > 1024 {
				return WAVHeader{}, fmt.Errorf("audio: reading WAV fmt chunk: size %d", size)
			}
			b := make([]byte, size+size&1)
			if _, err := io.ReadFull(r, b); err != nil {
				return WAVHeader{}, fmt.Errorf("audio: reading WAV fmt chunk: %w", err)
			}
			var err error
			if h, err = parseFmt(b[:size]); err != nil {
				return WAVHeader{}, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return WAVHeader{}, errors.New("audio: reading WAV header: data chunk before fmt chunk")
			}
			h.DataSize = int64(size)
			if size == 0 || size >= streamingDataSize {
				h.DataSize = -1
			}
			return h, nil
		default:
			if _, err := io.CopyN(io.Discard, r, int64(size)+int64(size&1)); err != nil {
				return WAVHeader{}, fmt.Errorf("audio: skipping WAV %q chunk: %w", id, err)
			}
		}
	}
}

// parseFmt decodes a fmt chunk body.
func parseFmt(b []byte) (WAVHeader, error) {
	h := WAVHeader{
		Format:        binary.LittleEndian.Uint16(b[0:2]),
		Channels:      int(binary.LittleEndian.Uint16(b[2:4])),
		Rate:          int(binary.LittleEndian.Uint32(b[4:8])),
		BitsPerSample: int(binary.LittleEndian.Uint16(b[14:16])),
	}
	if h.Format == WAVFormatExtensible && len(b) >= 26 {
		// WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID.
		h.Format = binary.LittleEndian.Uint16(b[24:26])
	}
	if h.Channels != 1 && h.Channels != 2 {
		return WAVHeader{}, fmt.Errorf("audio: reading WAV fmt chunk: %d channels (want 1 or 2)", h.Channels)
	}
	if h.Rate <= 0 || h.Rate > maxRate {
		return WAVHeader{}, fmt.Errorf("audio: reading WAV fmt chunk: sample rate %d", h.Rate)
	}
	switch {
	case h.Format == WAVFormatPCM && h.BitsPerSample == 16:
	case (h.Format == WAVFormatUlaw || h.Format == WAVFormatAlaw) && h.BitsPerSample == 8:
	default:
		return WAVHeader{}, fmt.Errorf("audio: reading WAV fmt chunk: format %d with %d bits per sample (want 16-bit PCM, 8-bit A-law or μ-law)", h.Format, h.BitsPerSample)
	}
	return h, nil
}

// ReadWAV reads a whole WAV stream and returns its samples, downmixed to
// mono, and its sample rate. When the header gives no data size the data
// runs to the end of r.
func ReadWAV(r io.Reader) (pcm []int16, rate int, err error) {
	h, err := ReadWAVHeader(r)
	if err != nil {
		return nil, 0, err
	}
	var data []byte
	if h.DataSize < 0 {
		data, err = io.ReadAll(r)
	} else {
		data = make([]byte, h.DataSize)
		_, err = io.ReadFull(r, data)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("audio: reading WAV data: %w", err)
	}
	pcm, _ = h.Decode(make([]int16, 0, len(data)/h.FrameBytes()), data)
	return pcm, h.Rate, nil
}

// WriteWAV writes pcm as a mono 16-bit PCM WAV file with the canonical
// 44-byte header.
func WriteWAV(w io.Writer, pcm []int16, rate int) error {
	if rate <= 0 || rate > maxRate {
		return fmt.Errorf("audio: writing WAV: sample rate %d", rate)
	}
	dataSize := 2 * len(pcm)
	if dataSize > math.MaxUint32-36 {
		return fmt.Errorf("audio: writing WAV: %d samples do not fit", len(pcm))
	}
	b := make([]byte, 44, 44+dataSize)
	copy(b[0:4], "RIFF")
	binary.LittleEndian.PutUint32(b[4:8], uint32(36+dataSize))
	copy(b[8:16], "WAVEfmt ")
	binary.LittleEndian.PutUint32(b[16:20], 16)
	binary.LittleEndian.PutUint16(b[20:22], WAVFormatPCM)
	binary.LittleEndian.PutUint16(b[22:24], 1)
	binary.LittleEndian.PutUint32(b[24:28], uint32(rate))
	binary.LittleEndian.PutUint32(b[28:32], uint32(2*rate))
	binary.LittleEndian.PutUint16(b[32:34], 2)
	binary.LittleEndian.PutUint16(b[34:36], 16)
	copy(b[36:40], "data")
	binary.LittleEndian.PutUint32(b[40:44], uint32(dataSize))
	for _, s := range pcm {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("audio: writing WAV: %w", err)
	}
	return nil
}
