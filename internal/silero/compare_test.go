package silero

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parley-voice/parley/internal/ambience"
	"github.com/parley-voice/parley/internal/audio"
)

// The comparison with the energy VAD: the same utterances (espeak-ng, from
// the testdata of packages audio and voicemail: English and Dutch, people
// and answering machines) laid over the same noises, with the utterances'
// true spans known from the clean signal.
//
// A missed start is an utterance during which the VAD never reported
// speech; a false start is a SpeechStart whose dated start lies outside
// every utterance (with 100 ms of slack before and 300 ms after).

// utterance is clean speech and its spans within it.
type utterance struct {
	name  string
	pcm   []int16
	spans []span
}

// track is one test signal: audio and the true speech spans in it.
type track struct {
	pcm   []int16
	truth []span
}

// condition is one row of the comparison.
type condition struct {
	name   string
	speech bool // utterances are laid over the noise
	// noise returns n samples of the noise bed, at its own level.
	noise func(n int) []float64
	// snr is the speech-to-noise ratio in dB (speech: the RMS of its voiced
	// frames); with no speech, the noise is set to the level speech has.
	snr float64
}

// speechRMS is the level utterances are normalized to (about −20 dBFS).
const speechRMS = 3000

func loadUtterances(t testing.TB) []utterance {
	t.Helper()
	var files []string
	for _, dir := range []string{filepath.Join("..", "audio", "testdata"), filepath.Join("..", "voicemail", "testdata")} {
		m, err := filepath.Glob(filepath.Join(dir, "*.wav"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	slices.Sort(files)
	var out []utterance
	for _, f := range files {
		if strings.HasSuffix(f, "silence.wav") {
			continue
		}
		pcm := readFixture(t, f)
		pcm = normalize(pcm)
		u := utterance{name: filepath.Base(f), pcm: pcm, spans: truth(pcm)}
		if strings.HasPrefix(u.name, "machine_") {
			// The greeting ends with a 400 ms sine beep
			// (scripts/voicemail-testdata.sh): not speech.
			last := u.spans[len(u.spans)-1]
			if d := last.end - last.start; d < 350*time.Millisecond || d > 500*time.Millisecond {
				t.Fatalf("%s: last span %v is not the beep", u.name, last)
			}
			u.spans = u.spans[:len(u.spans)-1]
		}
		out = append(out, u)
	}
	if len(out) < 10 {
		t.Fatalf("only %d utterance files found", len(out))
	}
	return out
}

// normalize scales speech so that its voiced frames have speechRMS.
func normalize(pcm []int16) []int16 {
	var sum float64
	var n int
	for i := 0; (i+1)*frameLen <= len(pcm); i++ {
		if r := audio.RMS(pcm[i*frameLen : (i+1)*frameLen]); r > 100 {
			sum += r * r
			n++
		}
	}
	g := speechRMS / math.Sqrt(sum/float64(max(n, 1)))
	out := make([]int16, len(pcm))
	for i, s := range pcm {
		out[i] = clip(float64(s) * g)
	}
	return out
}

// truth returns the speech in clean audio: frames above −50 dBFS, with
// pauses under 400 ms (between words and clauses) bridged.
func truth(pcm []int16) []span {
	var out []span
	const bridge = 400 * time.Millisecond
	for i := 0; (i+1)*frameLen <= len(pcm); i++ {
		if audio.RMS(pcm[i*frameLen:(i+1)*frameLen]) < 100 {
			continue
		}
		at := frameTime(i)
		if n := len(out); n > 0 && at-out[n-1].end <= bridge {
			out[n-1].end = at + 20*time.Millisecond
			continue
		}
		out = append(out, span{at, at + 20*time.Millisecond})
	}
	return out
}

func clip(x float64) int16 {
	return int16(max(-32768, min(32767, math.Round(x))))
}

// build lays the utterances, 1.5 s apart after 2 s of noise, over the
// condition's noise, or makes 60 s of noise alone.
func (c condition) build(utts []utterance) track {
	const rate = sampleRate
	var tr track
	var voice []float64
	if c.speech {
		voice = make([]float64, 2*rate)
		for _, u := range utts {
			off := time.Duration(len(voice)) * time.Second / rate
			for _, s := range u.spans {
				tr.truth = append(tr.truth, span{off + s.start, off + s.end})
			}
			for _, s := range u.pcm {
				voice = append(voice, float64(s))
			}
			voice = append(voice, make([]float64, 3*rate/2)...)
		}
	} else {
		voice = make([]float64, 60*rate)
	}
	noiseRMS := speechRMS / math.Pow(10, c.snr/20)
	var noise []float64
	if c.noise != nil {
		noise = c.noise(len(voice))
		g := noiseRMS / rmsOf(noise)
		for i := range noise {
			noise[i] *= g
		}
	}
	tr.pcm = make([]int16, len(voice))
	for i := range voice {
		x := voice[i]
		if noise != nil {
			x += noise[i]
		}
		tr.pcm[i] = clip(x)
	}
	return tr
}

func rmsOf(x []float64) float64 {
	var sum float64
	for _, v := range x {
		sum += v * v
	}
	return math.Sqrt(sum / float64(max(len(x), 1)))
}

// clipNoise loops an ambience clip to n samples.
func clipNoise(lib *ambience.Library, name string) func(n int) []float64 {
	return func(n int) []float64 {
		ulaw, err := lib.Clip(name)
		if err != nil {
			panic(err)
		}
		pcm := audio.DecodeUlaw(nil, ulaw)
		out := make([]float64, n)
		for i := range out {
			out[i] = float64(pcm[i%len(pcm)])
		}
		return out
	}
}

// whiteNoise is steady hiss.
func whiteNoise(n int) []float64 {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([]float64, n)
	for i := range out {
		out[i] = r.NormFloat64()
	}
	return out
}

// knocks are what an open line picks up between words: 150 ms bursts of
// filtered noise (a door, a cup, a rustle), at random 0.5–2 s intervals.
func knocks(n int) []float64 {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]float64, n)
	for t := sampleRate / 2; t < n; t += sampleRate/2 + r.IntN(3*sampleRate/2) {
		var lp float64
		for j := 0; j < 3*sampleRate/20 && t+j < n; j++ {
			decay := math.Exp(-float64(j) / (0.04 * sampleRate))
			lp += 0.3 * (r.NormFloat64() - lp)
			out[t+j] = lp * decay
		}
	}
	return out
}

func conditions() []condition {
	lib := ambience.NewLibrary()
	return []condition{
		{name: "speech, clean", speech: true, snr: 60, noise: whiteNoise},
		{name: "speech + office, 10 dB", speech: true, snr: 10, noise: clipNoise(lib, ambience.Office)},
		{name: "speech + city, 10 dB", speech: true, snr: 10, noise: clipNoise(lib, ambience.City)},
		{name: "speech + forest, 10 dB", speech: true, snr: 10, noise: clipNoise(lib, ambience.Forest)},
		{name: "speech + crowded_room, 10 dB", speech: true, snr: 10, noise: clipNoise(lib, ambience.CrowdedRoom)},
		{name: "speech + white noise, 5 dB", speech: true, snr: 5, noise: whiteNoise},
		{name: "speech + knocks, 0 dB", speech: true, snr: 0, noise: knocks},
		{name: "office alone, 60 s", snr: 0, noise: clipNoise(lib, ambience.Office)},
		{name: "city alone, 60 s", snr: 0, noise: clipNoise(lib, ambience.City)},
		{name: "forest alone, 60 s", snr: 0, noise: clipNoise(lib, ambience.Forest)},
		{name: "crowded_room alone, 60 s", snr: 0, noise: clipNoise(lib, ambience.CrowdedRoom)},
		{name: "white noise alone, 60 s", snr: 0, noise: whiteNoise},
		{name: "knocks alone, 60 s", snr: 0, noise: knocks},
	}
}

// score counts a VAD's missed and false starts on a track.
func score(got, truth []span) (missed, false_ int) {
	const before, after = 100 * time.Millisecond, 300 * time.Millisecond
	for _, g := range got {
		inside := false
		for _, s := range truth {
			if g.start >= s.start-before && g.start <= s.end+after {
				inside = true
				break
			}
		}
		if !inside {
			false_++
		}
	}
	for _, s := range truth {
		heard := false
		for _, g := range got {
			if g.start <= s.end && g.end >= s.start {
				heard = true
				break
			}
		}
		if !heard {
			missed++
		}
	}
	return missed, false_
}

type result struct {
	cond                      string
	utterances                int
	energyMissed, energyFalse int
	sileroMissed, sileroFalse int
	seconds                   float64
}

func compare(t *testing.T) []result {
	utts := loadUtterances(t)
	var out []result
	for _, c := range conditions() {
		tr := c.build(utts)
		r := result{cond: c.name, utterances: len(tr.truth), seconds: float64(len(tr.pcm)) / sampleRate}
		r.energyMissed, r.energyFalse = score(spans(audio.NewVAD(audio.DefaultVADConfig()), tr.pcm), tr.truth)
		r.sileroMissed, r.sileroFalse = score(spans(newDetector(t), tr.pcm), tr.truth)
		out = append(out, r)
	}
	return out
}

// TestCompareWithEnergyVAD prints the comparison table (go test -v) and
// holds Silero to what it is for: it misses at most 5 % of the utterances
// in any condition, never starts on noise alone, and over all conditions
// makes fewer errors than the energy VAD.
func TestCompareWithEnergyVAD(t *testing.T) {
	model(t)
	res := compare(t)
	var b strings.Builder
	fmt.Fprintf(&b, "| condition | audio | utterances | energy: missed / false starts | Silero: missed / false starts |\n|---|---|---|---|---|\n")
	var eTotal, sTotal int
	for _, r := range res {
		utt := "—"
		if r.utterances > 0 {
			utt = fmt.Sprint(r.utterances)
		}
		fmt.Fprintf(&b, "| %s | %.0f s | %s | %d / %d | %d / %d |\n", r.cond, r.seconds, utt, r.energyMissed, r.energyFalse, r.sileroMissed, r.sileroFalse)
		eTotal += r.energyMissed + r.energyFalse
		sTotal += r.sileroMissed + r.sileroFalse
	}
	fmt.Fprintf(&b, "| all | | | %d errors | %d errors |\n", eTotal, sTotal)
	t.Logf("\n%s", b.String())
	if os.Getenv("PARLEY_VAD_TABLE") != "" {
		if err := os.WriteFile(os.Getenv("PARLEY_VAD_TABLE"), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range res {
		if r.utterances > 0 && r.sileroMissed*20 > r.utterances {
			t.Errorf("%s: Silero missed %d of %d utterances, want at most 5 %%", r.cond, r.sileroMissed, r.utterances)
		}
		if r.utterances == 0 && r.sileroFalse > 0 {
			t.Errorf("%s: Silero started %d times on noise alone", r.cond, r.sileroFalse)
		}
	}
	if sTotal >= eTotal {
		t.Errorf("Silero made %d errors, the energy VAD %d: want fewer", sTotal, eTotal)
	}
}

// One op is one call-second: 50 frames of speech over office noise. ns/op
// is the time per call-second; cpu-ms/call-s is the process's CPU time
// (user + system, so any thread ONNX Runtime starts counts) per op.
func BenchmarkSilero(b *testing.B) {
	benchVAD(b, newDetector(b))
}

func BenchmarkEnergy(b *testing.B) {
	benchVAD(b, audio.NewVAD(audio.DefaultVADConfig()))
}

func benchVAD(b *testing.B, v vad) {
	tr := conditions()[1].build(loadUtterances(b))
	second := len(tr.pcm) / sampleRate
	b.ReportAllocs()
	i := 0
	cpu0 := cpuTime(b)
	for b.Loop() {
		s := (i % second) * sampleRate
		for f := 0; f < 50; f++ {
			v.Process(tr.pcm[s+f*frameLen : s+(f+1)*frameLen])
		}
		i++
	}
	b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/call-s")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
