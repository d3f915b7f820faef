package local

import (
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// burst returns d of a loud 300 Hz tone at rate: voiced for the VAD.
func burst(d time.Duration, rate int) []int16 {
	return audio.Tone(300, rate, int(d*time.Duration(rate)/time.Second), 8000)
}

func concat(parts ...[]int16) []int16 {
	var out []int16
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

type segRecord struct {
	starts []time.Duration
	utts   []utterance
}

func runSegmenter(pcm []int16, rate int, endpointing time.Duration, chunk int, flush bool) segRecord {
	var r segRecord
	g := newSegmenter(rate, endpointing,
		func(start time.Duration) { r.starts = append(r.starts, start) },
		func(u utterance) { r.utts = append(r.utts, u) })
	for i := 0; i < len(pcm); i += chunk {
		g.write(pcm[i:min(i+chunk, len(pcm))])
	}
	if flush {
		g.flush()
	}
	return r
}

func TestSegmenter(t *testing.T) {
	const rate = 8000
	sil := func(ms int) []int16 { return make([]int16, ms*rate/1000) }
	loud := func(ms int) []int16 { return burst(time.Duration(ms)*time.Millisecond, rate) }
	msd := func(ms int) time.Duration { return time.Duration(ms) * time.Millisecond }

	tests := []struct {
		name        string
		pcm         []int16
		endpointing time.Duration
		flush       bool
		starts      int                // SpeechStarted calls
		want        [][2]time.Duration // speech spans
		samples     []int              // utterance lengths (pre-roll and tail included)
	}{
		{
			name:   "one utterance",
			pcm:    concat(sil(1000), loud(1000), sil(1000)),
			starts: 1,
			want:   [][2]time.Duration{{msd(1000), msd(2000)}},
			// 200 ms pre-roll + 1000 ms speech + 200 ms the VAD waits for.
			samples: []int{1400 * rate / 1000},
		},
		{
			name:        "endpointing adds silence",
			pcm:         concat(sil(1000), loud(1000), sil(1000)),
			endpointing: 300 * time.Millisecond,
			starts:      1,
			want:        [][2]time.Duration{{msd(1000), msd(2000)}},
			samples:     []int{1700 * rate / 1000},
		},
		{
			name:        "a pause shorter than the endpointing joins",
			pcm:         concat(sil(500), loud(500), sil(400), loud(500), sil(1500)),
			endpointing: 500 * time.Millisecond,
			starts:      1,
			want:        [][2]time.Duration{{msd(500), msd(1900)}},
		},
		{
			name:   "a pause longer than the VAD's splits",
			pcm:    concat(sil(500), loud(500), sil(400), loud(500), sil(1000)),
			starts: 2,
			want:   [][2]time.Duration{{msd(500), msd(1000)}, {msd(1400), msd(1900)}},
		},
		{
			name:   "flush ends speech in progress",
			pcm:    concat(sil(300), loud(700)),
			flush:  true,
			starts: 1,
			want:   [][2]time.Duration{{msd(300), msd(1000)}},
		},
		{
			name:   "no flush, no utterance",
			pcm:    concat(sil(300), loud(700)),
			starts: 1,
		},
		{
			name: "short click ignored",
			pcm:  concat(sil(500), loud(60), sil(1000)),
		},
		{
			// The first utterance holds maxUtterance of audio, here from 0
			// (all the pre-roll there is); the next follows the cut at once,
			// without a new start.
			name:    "too long is cut",
			pcm:     concat(sil(100), syllables(31*time.Second, rate), sil(500)),
			starts:  1,
			want:    [][2]time.Duration{{msd(100), maxUtterance}, {maxUtterance, msd(31100)}},
			samples: []int{int(maxUtterance) / int(time.Second) * rate},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{160, 100, 4000} {
				r := runSegmenter(tt.pcm, rate, tt.endpointing, chunk, tt.flush)
				if len(r.utts) != len(tt.want) {
					t.Fatalf("chunks of %d: %d utterances %v, want %v", chunk, len(r.utts), spans(r.utts), tt.want)
				}
				for i, w := range tt.want {
					u := r.utts[i]
					if (u.start-w[0]).Abs() > msd(40) || (u.end-w[1]).Abs() > msd(40) {
						t.Errorf("chunks of %d: utterance %d spans %v–%v, want %v–%v", chunk, i, u.start, u.end, w[0], w[1])
					}
					if i < len(tt.samples) && (len(u.pcm) < tt.samples[i]-320 || len(u.pcm) > tt.samples[i]+320) {
						t.Errorf("chunks of %d: utterance %d has %d samples, want about %d", chunk, i, len(u.pcm), tt.samples[i])
					}
				}
				if len(r.starts) != tt.starts {
					t.Errorf("chunks of %d: %d speech starts, want %d", chunk, len(r.starts), tt.starts)
				}
				for i := range min(len(r.starts), len(r.utts)) {
					if r.starts[i] != r.utts[i].start {
						t.Errorf("chunks of %d: start %d at %v, utterance at %v", chunk, i, r.starts[i], r.utts[i].start)
					}
				}
			}
		})
	}
}

// syllables returns d of speech-like audio at rate: 200 ms bursts with 60 ms
// gaps, so the VAD never takes it for steady noise.
func syllables(d time.Duration, rate int) []int16 {
	n := int(d * time.Duration(rate) / time.Second)
	out := make([]int16, 0, n)
	for len(out) < n {
		out = append(out, burst(200*time.Millisecond, rate)...)
		out = append(out, make([]int16, 60*rate/1000)...)
	}
	return out[:n]
}

func spans(us []utterance) [][2]time.Duration {
	var s [][2]time.Duration
	for _, u := range us {
		s = append(s, [2]time.Duration{u.start, u.end})
	}
	return s
}

// TestSegmenterPreroll checks that the audio before the detected start
// goes with the utterance.
func TestSegmenterPreroll(t *testing.T) {
	const rate = 16000
	pcm := concat(make([]int16, rate), burst(time.Second, rate), make([]int16, rate))
	pcm[rate-1] = 1234 // the last sample before the speech
	r := runSegmenter(pcm, rate, 0, 320, false)
	if len(r.utts) != 1 {
		t.Fatalf("%d utterances", len(r.utts))
	}
	pre := prerollFrames * audio.FrameSamples(rate)
	if got := r.utts[0].pcm[pre-1]; got != 1234 {
		t.Errorf("sample before the speech = %d, want it in the pre-roll", got)
	}
}
