package voicemail

import "math"

// Beep detection: an answering machine's beep is one steady sine between
// 400 and 2000 Hz, commonly 1 kHz, lasting a few hundred milliseconds. Each
// 20 ms frame is scanned with the Goertzel algorithm on a 25 Hz grid; the
// frame is tonal when one frequency holds most of its energy and the frame
// is well above the noise floor. Speech, even a monotone synthetic voice,
// spreads its energy over many harmonics and glides in pitch, so it does
// not hold one bin for long.
const (
	beepMinHz   = 400
	beepMaxHz   = 2000
	beepStepHz  = 25
	sampleRate  = 8000
	frameLen    = 160 // 20 ms at 8 kHz
	beepMinRMS  = 300 // about -40 dBFS: a beep is loud
	beepFloorX  = 4   // times the noise floor
	beepPurity  = 0.6 // share of the frame's energy in the best bin
	beepDriftHz = 50  // a steady tone stays within this of where it started
)

// initialFloor is the noise floor assumed before the line has been heard.
const initialFloor = 50

// BeepFrames is how many tonal frames in a row make a beep (160 ms ≥ the
// 150 ms a beep lasts at the least).
const BeepFrames = 8

// BeepDetector finds a steady tone in 20 ms frames of 8 kHz PCM. It is not
// safe for concurrent use.
type BeepDetector struct {
	coeff [(beepMaxHz-beepMinHz)/beepStepHz + 1]float64
	floor float64 // noise floor: a slow average of the quieter frames' RMS
	run   int     // tonal frames in a row
	hz    float64 // the run's frequency
	beep  bool    // the current run is a beep
}

// NewBeepDetector returns a detector.
func NewBeepDetector() *BeepDetector {
	d := &BeepDetector{floor: initialFloor}
	for i := range d.coeff {
		f := float64(beepMinHz + i*beepStepHz)
		d.coeff[i] = 2 * math.Cos(2*math.Pi*f/sampleRate)
	}
	return d
}

// BeepEvent is what a frame changed.
type BeepEvent uint8

// Beep events.
const (
	NoBeep    BeepEvent = iota
	BeepStart           // the tone has lasted BeepFrames frames
	BeepEnd             // a beep's tone stopped
)

// Frame analyses one 20 ms frame (160 samples; other lengths work too).
func (d *BeepDetector) Frame(frame []int16) BeepEvent {
	hz, tonal := d.tone(frame)
	if tonal && d.run > 0 && math.Abs(hz-d.hz) > beepDriftHz {
		d.run = 0 // another tone: start counting again
	}
	if !tonal {
		d.run = 0
		if d.beep {
			d.beep = false
			return BeepEnd
		}
		return NoBeep
	}
	if d.run == 0 {
		d.hz = hz
	}
	d.run++
	if d.run == BeepFrames && !d.beep {
		d.beep = true
		return BeepStart
	}
	return NoBeep
}

// Hz is the frequency of the last beep found.
func (d *BeepDetector) Hz() float64 { return d.hz }

// tone reports the frame's strongest frequency in the beep band and
// whether the frame is a clean, loud tone there.
func (d *BeepDetector) tone(frame []int16) (float64, bool) {
	n := len(frame)
	if n == 0 {
		return 0, false
	}
	var energy float64
	for _, s := range frame {
		x := float64(s)
		energy += x * x
	}
	rms := math.Sqrt(energy / float64(n))
	loud := rms >= beepMinRMS && rms >= beepFloorX*d.floor
	d.track(rms)
	if !loud {
		return 0, false
	}
	best, bestI := 0.0, 0
	for i, c := range d.coeff {
		var s1, s2 float64
		for _, v := range frame {
			s0 := float64(v) + c*s1 - s2
			s2, s1 = s1, s0
		}
		p := s1*s1 + s2*s2 - c*s1*s2
		if p > best {
			best, bestI = p, i
		}
	}
	// A sine of amplitude A on a bin gives power (A·n/2)² and energy
	// A²·n/2: their ratio, over n/2, is 1 for a pure tone.
	purity := best / (energy * float64(n) / 2)
	return float64(beepMinHz + bestI*beepStepHz), purity >= beepPurity
}

// track follows the noise floor as a running minimum that creeps up 1 %
// a frame (doubling in 1.4 s), so the pauses between words keep it low
// while steady noise lifts it within seconds.
func (d *BeepDetector) track(rms float64) {
	d.floor = max(min(d.floor*1.01, rms), 1)
}
