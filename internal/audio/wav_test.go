package audio

import (
	"bytes"
	"encoding/binary"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

func TestWAVRoundTrip(t *testing.T) {
	for _, rate := range []int{8000, 16000, 22050} {
		pcm := []int16{0, 1, -1, 32767, -32768, 1234, -4321}
		var buf bytes.Buffer
		if err := WriteWAV(&buf, pcm, rate); err != nil {
			t.Fatal(err)
		}
		if buf.Len() != 44+2*len(pcm) {
			t.Errorf("file of %d bytes, want a 44-byte header and the data", buf.Len())
		}
		got, gotRate, err := ReadWAV(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if gotRate != rate || !slices.Equal(got, pcm) {
			t.Errorf("read back %v at %d Hz, want %v at %d Hz", got, gotRate, pcm, rate)
		}
	}
}

// wavFile builds a WAV stream by hand: a fmt chunk, optional extra chunks,
// then a data chunk declaring dataSize bytes followed by data.
func wavFile(format, channels, rate, bits int, dataSize uint32, data []byte, extra ...string) []byte {
	var b []byte
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, 0xFFFFFFFF)
	b = append(b, "WAVEfmt "...)
	b = binary.LittleEndian.AppendUint32(b, 16)
	b = binary.LittleEndian.AppendUint16(b, uint16(format))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate))
	b = binary.LittleEndian.AppendUint32(b, uint32(rate*channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(channels*bits/8))
	b = binary.LittleEndian.AppendUint16(b, uint16(bits))
	for _, e := range extra {
		b = append(b, "LIST"...)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(e)))
		b = append(b, e...)
		if len(e)%2 == 1 {
			b = append(b, 0)
		}
	}
	b = append(b, "data"...)
	b = binary.LittleEndian.AppendUint32(b, dataSize)
	return append(b, data...)
}

func le16(v ...int16) []byte {
	var b []byte
	for _, s := range v {
		b = binary.LittleEndian.AppendUint16(b, uint16(s))
	}
	return b
}

func TestReadWAV(t *testing.T) {
	samples := le16(100, -200, 300, -400)
	tests := []struct {
		name string
		file []byte
		want []int16
		rate int
	}{
		{"exact size", wavFile(1, 1, 8000, 16, 8, samples), []int16{100, -200, 300, -400}, 8000},
		{"size smaller than the stream", wavFile(1, 1, 8000, 16, 4, samples), []int16{100, -200}, 8000},
		{"size 0 (streaming)", wavFile(1, 1, 22050, 16, 0, samples), []int16{100, -200, 300, -400}, 22050},
		{"size 0xFFFFFFFF (streaming)", wavFile(1, 1, 22050, 16, 0xFFFFFFFF, samples), []int16{100, -200, 300, -400}, 22050},
		{"espeak-ng's 0x7FFFF000", wavFile(1, 1, 22050, 16, 0x7FFFF000, samples), []int16{100, -200, 300, -400}, 22050},
		{"stereo downmix", wavFile(1, 2, 16000, 16, 8, samples), []int16{-50, -50}, 16000},
		{"mu-law", wavFile(7, 1, 8000, 8, 3, []byte{0xFF, 0x80, 0x00}), []int16{0, 32124, -32124}, 8000},
		{"A-law", wavFile(6, 1, 8000, 8, 2, []byte{0xD5, 0x55}), []int16{8, -8}, 8000},
		{"LIST chunk skipped", wavFile(1, 1, 8000, 16, 8, samples, "INFOodd"), []int16{100, -200, 300, -400}, 8000},
		{"odd trailing byte ignored", wavFile(1, 1, 8000, 16, 0, append(le16(7), 1)), []int16{7}, 8000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pcm, rate, err := ReadWAV(bytes.NewReader(tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if rate != tt.rate || !slices.Equal(pcm, tt.want) {
				t.Errorf("got %v at %d Hz, want %v at %d Hz", pcm, rate, tt.want, tt.rate)
			}
		})
	}
}

func TestReadWAVErrors(t *testing.T) {
	tests := []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "EOF"},
		{"not RIFF", []byte("RIFX\x00\x00\x00\x00WAVEfmt "), "not a RIFF/WAVE"},
		{"24-bit", wavFile(1, 1, 8000, 24, 0, nil), "24 bits"},
		{"float", wavFile(3, 1, 8000, 32, 0, nil), "format 3"},
		{"3 channels", wavFile(1, 3, 8000, 16, 0, nil), "3 channels"},
		{"truncated data", wavFile(1, 1, 8000, 16, 100, le16(1, 2)), "unexpected EOF"},
		{"no data chunk", wavFile(1, 1, 8000, 16, 0, nil)[:36], "chunk header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := ReadWAV(bytes.NewReader(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}

// TestWAVHeaderDecodeChunks decodes data arriving in pieces that split
// samples, as a pipe delivers it.
func TestWAVHeaderDecodeChunks(t *testing.T) {
	h := WAVHeader{Format: WAVFormatPCM, Channels: 1, Rate: 8000, BitsPerSample: 16}
	data := le16(1, 2, 3, 4, 5)
	var pcm []int16
	var pending []byte
	for _, piece := range [][]byte{data[:3], data[3:4], data[4:9], data[9:]} {
		pending = append(pending, piece...)
		var n int
		pcm, n = h.Decode(pcm, pending)
		pending = pending[n:]
	}
	if !slices.Equal(pcm, []int16{1, 2, 3, 4, 5}) || len(pending) != 0 {
		t.Errorf("decoded %v with %d bytes left", pcm, len(pending))
	}
}

// TestReadWAVEspeak reads what espeak-ng writes to a pipe: a header whose
// sizes were never filled in.
func TestReadWAVEspeak(t *testing.T) {
	bin := requireTool(t, "espeak-ng")
	cmd := exec.Command(bin, "-v", "en-us", "--stdout")
	cmd.Stdin = strings.NewReader("testing one two three")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pcm, rate, err := ReadWAV(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if rate != 22050 || len(pcm) < rate/2 || RMS(pcm) < 300 {
		t.Errorf("espeak-ng: %d samples at %d Hz, RMS %.0f", len(pcm), rate, RMS(pcm))
	}
}
