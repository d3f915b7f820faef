package audio

import (
	"fmt"
	"math"
)

// Resampler design. For rates from and to with g = gcd(from, to), output
// sample n sits at input time n·down/up, where up = to/g and down = from/g:
// an integer input index base plus a fraction phase/up. Each of the up
// phases has its own row of taps of one windowed-sinc low-pass filter (a
// polyphase filter), so an output sample costs taps multiplications however
// far apart the rates are.
const (
	// cutoffRatio places the low-pass edge at this fraction of the lower rate.
	cutoffRatio = 0.45
	// halfZeros is how many zero crossings of the sinc, at the lower rate,
	// the filter spans on each side. More gives a sharper edge.
	halfZeros = 12
	// maxTaps bounds the taps per output sample (the cost of big ratios such
	// as 48000 → 8000, whose edge is then a little softer).
	maxTaps = 64
	// kaiserBeta shapes the window: about 70 dB of stop-band attenuation.
	kaiserBeta = 7.0
	// maxPhases bounds the phase table: rate pairs with a finer ratio than
	// this are refused.
	maxPhases = 4096
	// maxRate is the highest sample rate accepted.
	maxRate = 384000
)

// Resampler converts a stream of mono 16-bit PCM from one sample rate to
// another with a windowed-sinc low-pass filter at 0.45 × the lower rate.
// It keeps its filter state between calls, so feeding audio in chunks gives
// the same samples as feeding it at once. The output is aligned with the
// input (no delay): after Flush, n input samples have produced
// ceil(n × to / from) output samples. A Resampler is not safe for concurrent
// use.
type Resampler struct {
	from, to int
	up, down int
	taps     int
	coef     []float64 // up rows of taps coefficients

	hist      []float64 // input samples, hist[0] being input index histStart
	histStart int64
	received  int64 // input samples received
	base      int64 // input index at or before the next output's time
	phase     int   // the next output's time is base + phase/up
}

// NewResampler returns a resampler from rate from to rate to (both in Hz).
func NewResampler(from, to int) (*Resampler, error) {
	if from <= 0 || to <= 0 || from > maxRate || to > maxRate {
		return nil, fmt.Errorf("audio: resampling %d Hz to %d Hz: rates must be 1..%d", from, to, maxRate)
	}
	g := gcd(from, to)
	r := &Resampler{from: from, to: to, up: to / g, down: from / g}
	if r.up > maxPhases {
		return nil, fmt.Errorf("audio: resampling %d Hz to %d Hz: ratio %d/%d needs more than %d filter phases", from, to, r.up, r.down, maxPhases)
	}
	if from != to {
		ratio := max(1, float64(from)/float64(to))
		r.taps = min(maxTaps, 2*int(math.Ceil(halfZeros*ratio)))
		r.coef = designPhases(r.up, r.taps, cutoffRatio*float64(min(from, to))/float64(from))
	}
	r.Reset()
	return r, nil
}

// Rates returns the input and output sample rates.
func (r *Resampler) Rates() (from, to int) { return r.from, r.to }

// Taps returns the filter taps computed per output sample (0 for identity).
func (r *Resampler) Taps() int { return r.taps }

// Reset forgets all input, as if the resampler were new.
func (r *Resampler) Reset() {
	pad := max(0, r.taps/2-1)
	r.hist = append(r.hist[:0], make([]float64, pad)...)
	r.histStart = -int64(pad)
	r.received = 0
	r.base = 0
	r.phase = 0
}

// Process appends to dst the output that src makes available and returns it.
// Some output waits for later input (half the filter length); Flush emits it.
func (r *Resampler) Process(dst, src []int16) []int16 {
	if r.taps == 0 {
		return append(dst, src...)
	}
	for _, s := range src {
		r.hist = append(r.hist, float64(s))
	}
	r.received += int64(len(src))
	dst = r.emit(dst, r.received-int64(r.taps/2), math.MaxInt64)
	r.trim()
	return dst
}

// Flush appends the output still held back, as if the input were followed by
// silence, and resets the resampler for a new stream.
func (r *Resampler) Flush(dst []int16) []int16 {
	if r.taps == 0 {
		return dst
	}
	r.hist = append(r.hist, make([]float64, r.taps/2)...)
	// Outputs whose time lies before the end of the input: base·up + phase <
	// received·up.
	dst = r.emit(dst, r.received, r.received*int64(r.up))
	r.Reset()
	return dst
}

// emit computes outputs while their base is below baseLimit and their time
// (base·up + phase) is below timeLimit.
func (r *Resampler) emit(dst []int16, baseLimit, timeLimit int64) []int16 {
	half := int64(r.taps / 2)
	up := int64(r.up)
	for r.base < baseLimit && r.base*up+int64(r.phase) < timeLimit {
		start := int(r.base - half + 1 - r.histStart)
		row := r.coef[r.phase*r.taps : (r.phase+1)*r.taps]
		window := r.hist[start : start+len(row)]
		var acc float64
		for k, c := range row {
			acc += c * window[k]
		}
		dst = append(dst, clamp16(acc))

		r.phase += r.down
		r.base += int64(r.phase / r.up)
		r.phase %= r.up
	}
	return dst
}

// trim drops the input no future output needs.
func (r *Resampler) trim() {
	keepFrom := r.base - int64(r.taps/2) + 1
	drop := int(keepFrom - r.histStart)
	if drop <= 0 {
		return
	}
	if drop > len(r.hist) {
		drop = len(r.hist)
	}
	n := copy(r.hist, r.hist[drop:])
	r.hist = r.hist[:n]
	r.histStart += int64(drop)
}

// Resample converts pcm from rate from to rate to in one call.
func Resample(pcm []int16, from, to int) ([]int16, error) {
	r, err := NewResampler(from, to)
	if err != nil {
		return nil, err
	}
	out := make([]int16, 0, int(int64(len(pcm))*int64(to)/int64(from))+1)
	out = r.Process(out, pcm)
	return r.Flush(out), nil
}

// designPhases returns up rows of taps coefficients of a Kaiser-windowed
// sinc low-pass with cutoff fc (cycles per input sample). Row p holds the
// taps for an output at fraction p/up past input sample base; its coefficient
// k multiplies input base - taps/2 + 1 + k. Each row sums to 1, so DC passes
// unchanged at every phase.
func designPhases(up, taps int, fc float64) []float64 {
	coef := make([]float64, up*taps)
	half := float64(taps / 2)
	norm := besselI0(kaiserBeta)
	for p := range up {
		row := coef[p*taps : (p+1)*taps]
		var sum float64
		for k := range row {
			// Distance in input samples from the tap to the output's time.
			tau := float64(p)/float64(up) + half - 1 - float64(k)
			x := tau / half
			w := 0.0
			if x > -1 && x < 1 {
				w = besselI0(kaiserBeta*math.Sqrt(1-x*x)) / norm
			}
			row[k] = 2 * fc * sinc(2*fc*tau) * w
			sum += row[k]
		}
		for k := range row {
			row[k] /= sum
		}
	}
	return coef
}

func sinc(x float64) float64 {
	if x == 0 {
		return 1
	}
	return math.Sin(math.Pi*x) / (math.Pi * x)
}

// besselI0 is the modified Bessel function of the first kind, order 0, by
// its power series (ample for the window's arguments, at most kaiserBeta).
func besselI0(x float64) float64 {
	sum, term := 1.0, 1.0
	q := x * x / 4
	for k := 1; k < 50; k++ {
		term *= q / float64(k*k)
		sum += term
		if term < sum*1e-17 {
			break
		}
	}
	return sum
}

func clamp16(v float64) int16 {
	v = math.Round(v)
	switch {
	case v > math.MaxInt16:
		return math.MaxInt16
	case v < math.MinInt16:
		return math.MinInt16
	}
	return int16(v)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
