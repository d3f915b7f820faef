// Package audio holds the media building blocks of a call: G.711 codecs, a
// streaming sample-rate converter, an energy voice-activity detector, WAV
// files and signal levels.
//
// Audio is always mono 16-bit linear PCM ([]int16) together with its sample
// rate. Telephony frames are 20 ms long: 160 samples at 8 kHz. The package is
// pure Go and keeps no state outside the values it returns.
package audio

// FrameDuration is the length of one telephony frame in milliseconds.
const FrameDuration = 20

// FrameSamples returns the number of samples in one 20 ms frame at rate.
func FrameSamples(rate int) int { return rate * FrameDuration / 1000 }
