package elevenlabsfake

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/fakespeech"
)

// DefaultSynth is the audio the fake speaks when Config.Synth is nil: a
// 440 Hz tone of amplitude 6000 lasting 60 ms per character of text (at
// least 200 ms), faded in and out over 20 ms, at rate samples per second.
func DefaultSynth(text string, rate int) []int16 { return fakespeech.Tone(text, rate, 440) }

// audioFormat is a supported output_format.
type audioFormat struct {
	name string
	rate int
	ulaw bool // G.711 μ-law, one byte per sample; else PCM16 LE
}

func (f audioFormat) bytesPerSample() int {
	if f.ulaw {
		return 1
	}
	return 2
}

// parseOutputFormat accepts the PCM formats and ulaw_8000.
func parseOutputFormat(s string) (audioFormat, error) {
	if s == "ulaw_8000" {
		return audioFormat{name: s, rate: 8000, ulaw: true}, nil
	}
	if rest, ok := strings.CutPrefix(s, "pcm_"); ok {
		rate, err := strconv.Atoi(rest)
		if err == nil {
			switch rate {
			case 8000, 16000, 22050, 24000, 44100, 48000:
				return audioFormat{name: s, rate: rate}, nil
			}
		}
	}
	if s == "" {
		s = "mp3_44100_128 (the default)"
	}
	return audioFormat{}, fmt.Errorf("unsupported output_format %s: the fake speaks pcm_8000, pcm_16000, pcm_22050, pcm_24000, pcm_44100, pcm_48000 and ulaw_8000", s)
}

// encode turns samples into the format's bytes.
func (f audioFormat) encode(pcm []int16) []byte {
	if f.ulaw {
		out := make([]byte, len(pcm))
		for i, v := range pcm {
			out[i] = ulawEncode(v)
		}
		return out
	}
	out := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		out[2*i] = byte(uint16(v))
		out[2*i+1] = byte(uint16(v) >> 8)
	}
	return out
}

// ulawEncode is G.711 μ-law compression of one sample.
func ulawEncode(s int16) byte {
	var out [1]byte
	return audio.EncodeUlaw(out[:0], []int16{s})[0]
}

// chunkBytes is how many bytes of audio one message carries: d of audio,
// not rounded to whole samples, so a duration that is not a whole number of
// samples splits samples across messages, as the real service may.
func (f audioFormat) chunkBytes(d time.Duration) int {
	n := int(int64(d) * int64(f.rate) * int64(f.bytesPerSample()) / int64(time.Second))
	return max(n, 1)
}

// alignment is the character timing sent with audio.
type alignment struct {
	Chars            []string `json:"chars"`
	CharStartTimesMs []int    `json:"charStartTimesMs"`
	CharDurationsMs  []int    `json:"charDurationsMs"`
}

// spreadAlignment spreads text's characters evenly over the audio and
// assigns each to the message whose time window holds its start. bounds are
// the messages' window edges in ms (len = messages+1, from 0 to the audio's
// length); times in each alignment are relative to its message's start.
// A message without characters gets nil.
func spreadAlignment(text string, bounds []int) []*alignment {
	out := make([]*alignment, max(len(bounds)-1, 0))
	if len(out) == 0 {
		return out
	}
	chars := []rune(text)
	total := bounds[len(bounds)-1]
	k := 0
	for i, r := range chars {
		start := i * total / len(chars)
		end := (i + 1) * total / len(chars)
		for k < len(out)-1 && start >= bounds[k+1] {
			k++
		}
		a := out[k]
		if a == nil {
			a = &alignment{}
			out[k] = a
		}
		a.Chars = append(a.Chars, string(r))
		a.CharStartTimesMs = append(a.CharStartTimesMs, start-bounds[k])
		a.CharDurationsMs = append(a.CharDurationsMs, end-start)
	}
	return out
}
