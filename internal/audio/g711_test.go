package audio

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestG711KnownVectors(t *testing.T) {
	tests := []struct {
		pcm        int16
		ulaw, alaw byte
	}{
		{0, 0xFF, 0xD5},
		{-1, 0x7F, 0x55}, // ones' complement: -1 is "negative zero"
		{8, 0xFE, 0xD5},
		{16, 0xFD, 0xD4},
		{-16, 0x7D, 0x55}, // A-law: |-16| - 1 is still in the first step
		{120, 0xF0, 0xD2},
		{1000, 0xCE, 0xFA},
		{-1000, 0x4E, 0x7A},
		{32767, 0x80, 0xAA},
		{-32768, 0x00, 0x2A},
		{32124, 0x80, 0xAA},
	}
	for _, tt := range tests {
		if got := EncodeUlaw(nil, []int16{tt.pcm})[0]; got != tt.ulaw {
			t.Errorf("EncodeUlaw(%d) = %#02x, want %#02x", tt.pcm, got, tt.ulaw)
		}
		if got := EncodeAlaw(nil, []int16{tt.pcm})[0]; got != tt.alaw {
			t.Errorf("EncodeAlaw(%d) = %#02x, want %#02x", tt.pcm, got, tt.alaw)
		}
	}

	decodes := []struct {
		code       byte
		ulaw, alaw int16
	}{
		{0xFF, 0, 848},
		{0x7F, 0, -848},
		{0xD5, 716, 8},
		{0x55, -716, -8},
		{0xF0, 120, 688},
		{0xEF, 132, 1696},
		{0x80, 32124, 5504},
		{0x00, -32124, -5504},
		{0xAA, 5372, 32256},
		{0x2A, -5372, -32256},
	}
	for _, tt := range decodes {
		if got := DecodeUlaw(nil, []byte{tt.code})[0]; got != tt.ulaw {
			t.Errorf("DecodeUlaw(%#02x) = %d, want %d", tt.code, got, tt.ulaw)
		}
		if got := DecodeAlaw(nil, []byte{tt.code})[0]; got != tt.alaw {
			t.Errorf("DecodeAlaw(%#02x) = %d, want %d", tt.code, got, tt.alaw)
		}
	}
	if UlawSilence != EncodeUlaw(nil, []int16{0})[0] || AlawSilence != EncodeAlaw(nil, []int16{0})[0] {
		t.Error("silence constants do not encode 0")
	}
}

func TestG711RoundTrip(t *testing.T) {
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}
	tests := []struct {
		name   string
		decode func([]int16, []byte) []int16
		encode func([]byte, []int16) []byte
		want   func(c byte) byte
	}{
		{"ulaw", DecodeUlaw, EncodeUlaw, func(c byte) byte {
			if c == 0x7F { // negative zero decodes to 0, which encodes as 0xFF
				return 0xFF
			}
			return c
		}},
		{"alaw", DecodeAlaw, EncodeAlaw, func(c byte) byte { return c }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.encode(nil, tt.decode(nil, codes))
			for c := range codes {
				if want := tt.want(byte(c)); got[c] != want {
					t.Errorf("code %#02x → %d → %#02x, want %#02x", c, tt.decode(nil, []byte{byte(c)})[0], got[c], want)
				}
			}
		})
	}
}

// TestG711Quantisation checks every 16-bit input: decoding its code lands
// within the code's interval, and the decoded value never decreases as the
// input grows.
func TestG711Quantisation(t *testing.T) {
	all := make([]int16, 0, 1<<16)
	for v := -32768; v <= 32767; v++ {
		all = append(all, int16(v))
	}
	tests := []struct {
		name   string
		decode func([]int16, []byte) []int16
		encode func([]byte, []int16) []byte
		maxErr func(x int) int // half the largest step near x, plus truncation
	}{
		{"ulaw", DecodeUlaw, EncodeUlaw, func(x int) int { return max(8, abs(x)/16+8) }},
		{"alaw", DecodeAlaw, EncodeAlaw, func(x int) int { return max(16, abs(x)/16+16) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec := tt.decode(nil, tt.encode(nil, all))
			for i, x := range all {
				if i > 0 && dec[i] < dec[i-1] {
					t.Fatalf("not monotonic at %d: %d after %d", x, dec[i], dec[i-1])
				}
				if x > -32124 && x < 32124 { // outside, the top code clips
					if e := abs(int(dec[i]) - int(x)); e > tt.maxErr(int(x)) {
						t.Fatalf("%d decodes back as %d (error %d)", x, dec[i], e)
					}
				}
			}
		})
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// TestG711AgainstSox compares the codecs with sox's. sox first rounds 16-bit
// samples to the nearest 14-bit (μ-law) or 13-bit (A-law) value where G.711's
// reference coder truncates, so codes agree exactly for samples that are
// multiples of 8 and are at most one step apart for the others.
func TestG711AgainstSox(t *testing.T) {
	sox := requireTool(t, "sox")
	dir := t.TempDir()

	speech := readFixture(t, "hello.wav")
	aligned := make([]int16, len(speech))
	for i, s := range speech {
		aligned[i] = s &^ 7
	}
	ramp := make([]int16, 0, 1<<16)
	for v := -32768; v <= 32767; v++ {
		ramp = append(ramp, int16(v))
	}
	codes := make([]byte, 256)
	for i := range codes {
		codes[i] = byte(i)
	}

	tests := []struct {
		name     string
		encoding string
		encode   func([]byte, []int16) []byte
		decode   func([]int16, []byte) []int16
	}{
		{"ulaw", "u-law", EncodeUlaw, DecodeUlaw},
		{"alaw", "a-law", EncodeAlaw, DecodeAlaw},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			soxEncode := func(pcm []int16) []byte {
				in := filepath.Join(dir, tt.name+"-in.wav")
				out := filepath.Join(dir, tt.name+"-out.raw")
				writeWAVFile(t, in, pcm, 8000)
				// -D: no dither, which sox adds when it lowers precision.
				runTool(t, sox, "-D", in, "-e", tt.encoding, "-t", "raw", out)
				b, err := os.ReadFile(out)
				if err != nil {
					t.Fatal(err)
				}
				return b
			}

			want := soxEncode(aligned)
			if got := tt.encode(nil, aligned); string(got) != string(want) {
				t.Errorf("speech fixture: %d of %d codes differ from sox", countDiff(got, want), len(got))
			}

			// Rank the codes by the value they decode to: "one step apart"
			// means neighbouring ranks.
			rank := map[int16]int{}
			for _, v := range sortedValues(tt.decode(nil, codes)) {
				rank[v] = len(rank)
			}
			want = soxEncode(ramp)
			got := tt.encode(nil, ramp)
			dg, dw := tt.decode(nil, got), tt.decode(nil, want)
			exact, near := 0, 0
			for i, x := range ramp {
				switch {
				case got[i] == want[i] || dg[i] == dw[i]:
					exact++
				case x%8 == 0:
					t.Errorf("%d: code %#02x, sox %#02x", x, got[i], want[i])
				case abs(rank[dg[i]]-rank[dw[i]]) == 1:
					near++
				default:
					t.Errorf("%d: code %#02x, sox %#02x: more than one step apart", x, got[i], want[i])
				}
			}
			t.Logf("all 16-bit values: %d codes equal to sox's, %d one step apart (rounding vs truncation)", exact, near)

			raw := filepath.Join(dir, tt.name+"-codes.raw")
			if err := os.WriteFile(raw, codes, 0o600); err != nil {
				t.Fatal(err)
			}
			dec := filepath.Join(dir, tt.name+"-dec.wav")
			runTool(t, sox, "-D", "-t", "raw", "-r", "8000", "-e", tt.encoding, "-b", "8", "-c", "1", raw, "-e", "signed", "-b", "16", dec)
			soxPCM, _ := readWAVFile(t, dec)
			if got := tt.decode(nil, codes); !slices.Equal(got, soxPCM) {
				t.Errorf("decoding all codes differs from sox:\n got %v\nwant %v", got, soxPCM)
			}
		})
	}
}

// sortedValues returns the distinct values of pcm in increasing order.
func sortedValues(pcm []int16) []int16 {
	s := slices.Clone(pcm)
	slices.Sort(s)
	return slices.Compact(s)
}

func countDiff(a, b []byte) int {
	n := 0
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			n++
		}
	}
	return n + abs(len(a)-len(b))
}

func writeWAVFile(t *testing.T, path string, pcm []int16, rate int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteWAV(f, pcm, rate); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func readWAVFile(t *testing.T, path string) ([]int16, int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pcm, rate, err := ReadWAV(f)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return pcm, rate
}

func BenchmarkEncodeUlaw(b *testing.B) {
	pcm := Tone(1000, 8000, 160, 8000)
	dst := make([]byte, 0, 160)
	b.SetBytes(int64(len(pcm) * 2))
	for b.Loop() {
		dst = EncodeUlaw(dst[:0], pcm)
	}
}
