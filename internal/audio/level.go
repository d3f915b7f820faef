package audio

import "math"

// RMS returns the root mean square of pcm in sample units (0 for no samples).
func RMS(pcm []int16) float64 {
	if len(pcm) == 0 {
		return 0
	}
	var sum float64
	for _, s := range pcm {
		v := float64(s)
		sum += v * v
	}
	return math.Sqrt(sum / float64(len(pcm)))
}

// Goertzel returns the power of pcm at freq Hz, normalised to the mean square
// of the matching sine: a sine of amplitude A at freq gives about A²/2, the
// same as its RMS squared, and frequencies far from freq give about 0.
func Goertzel(pcm []int16, rate int, freq float64) float64 {
	n := len(pcm)
	if n == 0 || rate <= 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*freq/float64(rate))
	var s1, s2 float64
	for _, x := range pcm {
		s0 := float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * power / (float64(n) * float64(n))
}

// Tone returns n samples of a sine of freq Hz at rate with the given peak
// amplitude, starting at phase 0.
func Tone(freq float64, rate, n int, amplitude int16) []int16 {
	out := make([]int16, n)
	step := 2 * math.Pi * freq / float64(rate)
	for i := range out {
		out[i] = int16(math.Round(float64(amplitude) * math.Sin(step*float64(i))))
	}
	return out
}
