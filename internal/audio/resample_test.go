package audio

import (
	"fmt"
	"math"
	"testing"
)

// ratePairs are the conversions telephony and TTS need.
var ratePairs = []struct{ from, to int }{
	{8000, 16000},
	{16000, 8000},
	{22050, 8000},
	{22050, 16000},
	{24000, 8000},
	{44100, 8000},
	{48000, 8000},
	{8000, 24000},
	{8000, 8000},
	{16000, 16000},
}

func TestResampleLength(t *testing.T) {
	for _, p := range ratePairs {
		for _, n := range []int{0, 1, 159, 160, 22050, 22051} {
			t.Run(fmt.Sprintf("%d-%d/%d", p.from, p.to, n), func(t *testing.T) {
				out, err := Resample(make([]int16, n), p.from, p.to)
				if err != nil {
					t.Fatal(err)
				}
				want := (int64(n)*int64(p.to) + int64(p.from) - 1) / int64(p.from) // ceil
				if int64(len(out)) != want {
					t.Errorf("%d samples → %d, want %d", n, len(out), want)
				}
			})
		}
	}
}

// TestResampleKeepsTone resamples a 1 kHz tone: the output still has its
// power at 1 kHz, none elsewhere, and its amplitude is kept.
func TestResampleKeepsTone(t *testing.T) {
	for _, p := range ratePairs {
		t.Run(fmt.Sprintf("%d-%d", p.from, p.to), func(t *testing.T) {
			in := Tone(1000, p.from, p.from/2, 10000) // 0.5 s
			out, err := Resample(in, p.from, p.to)
			if err != nil {
				t.Fatal(err)
			}
			// Skip the edges, where the filter sees the tone switch on and off.
			mid := out[len(out)/10 : len(out)*9/10]
			at := Goertzel(mid, p.to, 1000)
			if gain := 10 * math.Log10(at/(10000*10000/2.0)); math.Abs(gain) > 0.5 {
				t.Errorf("1 kHz gain %.2f dB, want about 0", gain)
			}
			others := []float64{300, 700, 1300, 2000, 3000}
			if p.from < p.to { // the image an upsampler must remove
				others = append(others, float64(p.from-1000))
			}
			for _, f := range others {
				if f >= float64(p.to)/2 {
					continue
				}
				if ratio := 10 * math.Log10(at/Goertzel(mid, p.to, f)); ratio < 40 {
					t.Errorf("power at 1 kHz only %.1f dB above %g Hz", ratio, f)
				}
			}
		})
	}
}

// TestResampleRejectsAlias feeds a tone above the output's Nyquist frequency:
// it must be filtered out, not folded back into the band.
func TestResampleRejectsAlias(t *testing.T) {
	tests := []struct {
		from, to int
		freq     float64
	}{
		{16000, 8000, 5000},
		{22050, 8000, 6000},
		{22050, 8000, 4700},
		{22050, 16000, 9000},
		{24000, 8000, 5000},
		{44100, 8000, 6000},
		{48000, 8000, 6000},
		{48000, 8000, 7000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d-%d/%gHz", tt.from, tt.to, tt.freq), func(t *testing.T) {
			in := Tone(tt.freq, tt.from, tt.from/2, 10000)
			out, err := Resample(in, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			mid := out[len(out)/10 : len(out)*9/10]
			att := 20 * math.Log10(RMS(mid)/RMS(in))
			if att > -30 {
				t.Errorf("%g Hz tone attenuated by only %.1f dB", tt.freq, -att)
			}
			t.Logf("attenuation %.1f dB", -att)
		})
	}
}

// TestResampleChunked feeds 20 ms chunks and compares with one call.
func TestResampleChunked(t *testing.T) {
	speech := readFixture(t, "hello.wav")
	for _, p := range ratePairs {
		t.Run(fmt.Sprintf("%d-%d", p.from, p.to), func(t *testing.T) {
			// Any signal will do at the input rate; the fixture is speech.
			in := speech
			whole, err := Resample(in, p.from, p.to)
			if err != nil {
				t.Fatal(err)
			}
			for _, chunk := range []int{FrameSamples(p.from), 1, 1000} {
				r, err := NewResampler(p.from, p.to)
				if err != nil {
					t.Fatal(err)
				}
				var out []int16
				for i := 0; i < len(in); i += chunk {
					out = r.Process(out, in[i:min(i+chunk, len(in))])
				}
				out = r.Flush(out)
				if len(out) != len(whole) {
					t.Fatalf("chunks of %d: %d samples, one call: %d", chunk, len(out), len(whole))
				}
				for i := range out {
					if d := int(out[i]) - int(whole[i]); d > 1 || d < -1 {
						t.Fatalf("chunks of %d: sample %d = %d, one call: %d", chunk, i, out[i], whole[i])
					}
				}
			}
		})
	}
}

// TestResamplerReuse checks that Flush leaves the resampler as new.
func TestResamplerReuse(t *testing.T) {
	r, err := NewResampler(22050, 8000)
	if err != nil {
		t.Fatal(err)
	}
	in := Tone(440, 22050, 4410, 8000)
	first := r.Flush(r.Process(nil, in))
	second := r.Flush(r.Process(nil, in))
	if len(first) != len(second) {
		t.Fatalf("lengths %d and %d", len(first), len(second))
	}
	for i := range first {
		if first[i] != second[i] {
			t.Fatalf("sample %d: %d then %d", i, first[i], second[i])
		}
	}
}

func TestResampleIdentity(t *testing.T) {
	in := Tone(1000, 8000, 800, 5000)
	out, err := Resample(in, 8000, 8000)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if out[i] != in[i] {
			t.Fatalf("sample %d changed: %d → %d", i, in[i], out[i])
		}
	}
}

func TestResampleDCAndClipping(t *testing.T) {
	for _, p := range ratePairs {
		in := make([]int16, p.from/10)
		for i := range in {
			in[i] = math.MaxInt16
		}
		out, err := Resample(in, p.from, p.to)
		if err != nil {
			t.Fatal(err)
		}
		// Away from the ends a full-scale constant stays full scale (a
		// filter's overshoot clips instead of wrapping around).
		for i := len(out) / 4; i < len(out)*3/4; i++ {
			if out[i] < math.MaxInt16-1 {
				t.Fatalf("%d→%d: sample %d = %d", p.from, p.to, i, out[i])
			}
		}
	}
}

func TestNewResamplerErrors(t *testing.T) {
	tests := []struct{ from, to int }{
		{0, 8000},
		{8000, -1},
		{8000, 1_000_000},
		{8000, 8001}, // 8001 phases
	}
	for _, tt := range tests {
		if _, err := NewResampler(tt.from, tt.to); err == nil {
			t.Errorf("NewResampler(%d, %d) succeeded", tt.from, tt.to)
		}
	}
}

func BenchmarkResample22050to8000(b *testing.B) {
	in := Tone(440, 22050, 22050, 8000) // one second
	r, err := NewResampler(22050, 8000)
	if err != nil {
		b.Fatal(err)
	}
	out := make([]int16, 0, 8100)
	b.SetBytes(int64(len(in) * 2))
	b.ReportAllocs()
	for b.Loop() {
		for i := 0; i < len(in); i += 441 { // 20 ms chunks
			out = r.Process(out[:0], in[i:min(i+441, len(in))])
		}
	}
}
