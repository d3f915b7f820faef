package ambience

import (
	"hash/fnv"
	"math"
	"math/rand/v2"
)

const (
	clipLen = ClipSeconds * Rate
	// fadeLen is the crossfade from a clip's end into its beginning.
	fadeLen = Rate / 4
)

// synthesize generates the named clip: clipLen samples that loop without a
// seam, at RefRMS with peaks below PeakLimit. The same name always gives
// the same samples on a given platform.
func synthesize(name string) []int16 {
	return finish(loopable(raw(name), clipLen, fadeLen))
}

// raw generates clipLen+fadeLen samples of the named clip, unscaled.
func raw(name string) []float64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	r := rand.New(rand.NewPCG(h.Sum64(), 0x5eed))
	n := clipLen + fadeLen
	var x []float64
	switch name {
	case Office:
		x = office(r, n)
	case City:
		x = city(r, n)
	case Forest:
		x = forest(r, n)
	default:
		x = crowd(r, n)
	}
	return x
}

// loopable crossfades the fade samples after length into the first fade
// samples, with equal-power weights (the two stretches are uncorrelated
// noise), and returns the first length samples. The last sample is followed
// in x by x[length], which is what sample 0 nearly is: the loop is as
// continuous as the signal itself.
func loopable(x []float64, length, fade int) []float64 {
	out := x[:length:length]
	for i := range fade {
		t := (float64(i) + 0.5) / float64(fade) * math.Pi / 2
		out[i] = x[i]*math.Sin(t) + x[length+i]*math.Cos(t)
	}
	return out
}

// finish scales x to RefRMS after a soft limiter at PeakLimit and rounds it.
func finish(x []float64) []int16 {
	limit := func(v, g float64) float64 { return PeakLimit * math.Tanh(v*g/PeakLimit) }
	g := RefRMS / rms(x)
	for range 8 { // the limiter lowers the level a little: converge on RefRMS
		var sum float64
		for _, v := range x {
			y := limit(v, g)
			sum += y * y
		}
		g *= RefRMS / math.Sqrt(sum/float64(len(x)))
	}
	out := make([]int16, len(x))
	for i, v := range x {
		out[i] = int16(math.Round(limit(v, g)))
	}
	return out
}

func rms(x []float64) float64 {
	var sum float64
	for _, v := range x {
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(x)))
}

// normalize scales x to an RMS of level and returns it.
func normalize(x []float64, level float64) []float64 {
	g := level / rms(x)
	for i := range x {
		x[i] *= g
	}
	return x
}

// filtered returns n samples of white noise through the filters, in order.
func filtered(r *rand.Rand, n int, fs ...*biquad) []float64 {
	out := make([]float64, n)
	for i := range out {
		v := r.NormFloat64()
		for _, f := range fs {
			v = f.step(v)
		}
		out[i] = v
	}
	return out
}

// drift returns n samples of a slow random contour between 0 and 1 (noise
// through a very low low-pass, stretched to the range).
func drift(r *rand.Rand, n int, hz float64) []float64 {
	x := filtered(r, n, lowpass(hz, 0.7), lowpass(hz, 0.7))
	lo, hi := x[0], x[0]
	for _, v := range x {
		lo, hi = min(lo, v), max(hi, v)
	}
	for i := range x {
		x[i] = (x[i] - lo) / (hi - lo)
	}
	return x
}

// office: room tone (air handling: low-passed noise with a little hiss)
// and bursts of distant typing.
func office(r *rand.Rand, n int) []float64 {
	x := normalize(filtered(r, n, lowpass(350, 0.7)), 1)
	hiss := normalize(filtered(r, n, bandpass(1500, 0.6)), 0.2)
	for i := range x {
		x[i] += hiss[i]
	}
	thock, click := bandpass(900, 1.5), highpass(2200, 0.7)
	for t := Rate / 3; t < n; {
		keys := 6 + r.IntN(18)
		for k := 0; k < keys && t < n; k++ {
			a := 1.2 + 1.3*r.Float64()
			for j := 0; j < 160 && t+j < n; j++ { // 20 ms
				e := math.Exp(-float64(j) / 12)
				w := r.NormFloat64()
				x[t+j] += a * e * (thock.step(w) + 0.6*click.step(w))
			}
			t += 700 + r.IntN(1300) // 90–250 ms between keys
		}
		t += Rate + r.IntN(3*Rate) // 1–4 s pause
	}
	return x
}

// city: traffic rumble, cars passing, and broadband street hiss.
func city(r *rand.Rand, n int) []float64 {
	var brown float64
	x := make([]float64, n)
	lp := lowpass(220, 0.7)
	for i := range x {
		brown = 0.995*brown + 0.1*r.NormFloat64()
		x[i] = lp.step(brown)
	}
	normalize(x, 1)
	cars := normalize(filtered(r, n, bandpass(320, 0.8)), 1)
	env := make([]float64, n)
	for c := 0; c < 5; c++ {
		mid := r.Float64() * float64(n)
		width := (0.6 + 1.2*r.Float64()) * Rate
		a := 1 + 1.5*r.Float64()
		for i := range env {
			d := (float64(i) - mid) / width
			env[i] += a * math.Exp(-d*d)
		}
	}
	hiss := normalize(filtered(r, n, bandpass(1200, 0.5)), 0.3)
	for i := range x {
		x[i] += env[i]*cars[i] + hiss[i]
	}
	return x
}

// forest: wind in gusts, leaves rustling with it, and birds.
func forest(r *rand.Rand, n int) []float64 {
	gust := drift(r, n, 0.4)
	wind := normalize(filtered(r, n, bandpass(350, 0.6)), 1)
	leaves := normalize(filtered(r, n, highpass(2500, 0.7)), 0.5)
	x := make([]float64, n)
	for i := range x {
		g := 0.3 + 0.7*gust[i]
		x[i] = g*wind[i] + g*g*leaves[i]
	}
	for b := 0; b < 7; b++ {
		t := int(r.Float64() * float64(n-Rate))
		f0 := 2200 + 900*r.Float64()
		sweep := 300 + 500*r.Float64() // Hz over one chirp
		a := 1.5 + 2*r.Float64()
		chirps := 2 + r.IntN(3)
		for c := 0; c < chirps; c++ {
			m := int((0.05 + 0.06*r.Float64()) * Rate)
			var ph float64
			for j := 0; j < m && t+j < n; j++ {
				u := float64(j) / float64(m)
				ph += 2 * math.Pi * (f0 + sweep*u) / Rate
				x[t+j] += a * math.Sin(ph) * math.Pow(math.Sin(math.Pi*u), 2)
			}
			t += m + int((0.05+0.1*r.Float64())*Rate)
		}
	}
	return x
}

// crowd: a murmur of talkers, none intelligible: each a glottal buzz with
// breath noise through two formant filters that move every syllable, gated
// at syllable rate (3–7 Hz) with pauses between phrases.
func crowd(r *rand.Rand, n int) []float64 {
	x := make([]float64, n)
	for range 8 {
		talker(r, x, 0.4+0.6*r.Float64())
	}
	lp, hp := lowpass(3200, 0.7), highpass(150, 0.7)
	for i := range x {
		x[i] = lp.step(hp.step(x[i]))
	}
	return x
}

// talker adds one synthetic talker at loudness a to x.
func talker(r *rand.Rand, x []float64, a float64) {
	f0 := 90 + 140*r.Float64()
	f1, f2 := bandpass(500, 5), bandpass(1500, 8)
	var phase float64
	t := r.IntN(Rate) // starts mid-phrase or after a pause
	for t < len(x) {
		for s := 6 + r.IntN(10); s > 0 && t < len(x); s-- {
			f1.tune(300+550*r.Float64(), 5)
			f2.tune(850+1550*r.Float64(), 8)
			pitch := f0 * (0.85 + 0.3*r.Float64())
			m := int((0.12 + 0.16*r.Float64()) * Rate)
			for j := 0; j < m && t+j < len(x); j++ {
				u := float64(j) / float64(m)
				phase += pitch / Rate
				phase -= math.Floor(phase)
				ex := 0.7*(1-2*phase) + 0.3*r.NormFloat64()
				env := math.Sin(math.Pi * u)
				x[t+j] += a * env * (f1.step(ex) + 0.6*f2.step(ex))
			}
			t += m + int((0.02+0.06*r.Float64())*Rate)
		}
		t += int((0.3 + 0.9*r.Float64()) * Rate)
	}
}

// biquad is a second-order IIR filter (RBJ audio EQ cookbook), transposed
// direct form II.
type biquad struct {
	b0, b1, b2, a1, a2 float64
	z1, z2             float64
}

func (f *biquad) step(x float64) float64 {
	y := f.b0*x + f.z1
	f.z1 = f.b1*x - f.a1*y + f.z2
	f.z2 = f.b2*x - f.a2*y
	return y
}

func design(kind byte, hz, q float64) (b0, b1, b2, a1, a2 float64) {
	w := 2 * math.Pi * hz / Rate
	cw, alpha := math.Cos(w), math.Sin(w)/(2*q)
	a0 := 1 + alpha
	switch kind {
	case 'l':
		b0, b1, b2 = (1-cw)/2, 1-cw, (1-cw)/2
	case 'h':
		b0, b1, b2 = (1+cw)/2, -(1 + cw), (1+cw)/2
	default: // band-pass, 0 dB peak
		b0, b1, b2 = alpha, 0, -alpha
	}
	return b0 / a0, b1 / a0, b2 / a0, -2 * cw / a0, (1 - alpha) / a0
}

func lowpass(hz, q float64) *biquad  { return newBiquad('l', hz, q) }
func highpass(hz, q float64) *biquad { return newBiquad('h', hz, q) }
func bandpass(hz, q float64) *biquad { return newBiquad('b', hz, q) }

func newBiquad(kind byte, hz, q float64) *biquad {
	f := &biquad{}
	f.b0, f.b1, f.b2, f.a1, f.a2 = design(kind, hz, q)
	return f
}

// tune moves a band-pass filter, keeping its state.
func (f *biquad) tune(hz, q float64) {
	f.b0, f.b1, f.b2, f.a1, f.a2 = design('b', hz, q)
}
