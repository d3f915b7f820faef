package audio

// VADConfig tunes a VAD. Frames are 20 ms long at any sample rate.
type VADConfig struct {
	// StartFrames is how many voiced frames in a row start speech.
	StartFrames int
	// EndFrames is how many unvoiced frames in a row end speech.
	EndFrames int
	// MinRMS is the lowest frame RMS (in 16-bit sample units) that can count
	// as voiced, however quiet the line.
	MinRMS float64
	// Ratio is how many times louder than the noise floor a voiced frame is.
	Ratio float64
}

// DefaultVADConfig returns settings for telephone speech: speech starts after
// 100 ms of voiced frames and ends after 200 ms of unvoiced ones; a voiced
// frame has an RMS of at least 300 and three times the noise floor.
func DefaultVADConfig() VADConfig {
	return VADConfig{StartFrames: 5, EndFrames: 10, MinRMS: 300, Ratio: 3}
}

// VADEvent is a change of the speaking state.
type VADEvent uint8

// VAD events.
const (
	// NoEvent means the speaking state did not change.
	NoEvent VADEvent = iota
	// SpeechStart means speech began: the frame completed StartFrames voiced
	// frames, so speech began StartFrames-1 frames before it.
	SpeechStart
	// SpeechEnd means speech ended: the frame completed EndFrames unvoiced
	// frames, so speech ended EndFrames frames before its end.
	SpeechEnd
)

// String returns the event's name, for logs and test failures.
func (e VADEvent) String() string {
	switch e {
	case NoEvent:
		return "none"
	case SpeechStart:
		return "speech_start"
	case SpeechEnd:
		return "speech_end"
	}
	return "unknown"
}

// VADResult is what a VAD made of one frame.
type VADResult struct {
	Voiced   bool     // this frame is loud enough to be speech
	Speaking bool     // the state after this frame
	Event    VADEvent // NoEvent, SpeechStart or SpeechEnd
}

// Noise floor tracking: an exponential average of unvoiced frames' RMS that
// falls faster than it rises, so a short loud noise lifts it little.
const (
	floorRise = 0.05
	floorFall = 0.2
	// stuckFrames voiced frames in a row (5 s) without a single quieter one
	// are taken for noise that rose above the threshold, not for speech.
	stuckFrames = 250
)

// SpeechTracker turns per-frame voiced verdicts into a speaking state:
// StartFrames voiced frames in a row start speech, EndFrames unvoiced frames
// in a row end it. Every VAD shares it, so their events mean the same.
type SpeechTracker struct {
	StartFrames, EndFrames int
	speaking               bool
	run                    int // consecutive frames disagreeing with the state
}

// Speaking reports the state after the last frame.
func (s *SpeechTracker) Speaking() bool { return s.speaking }

// Step folds in one frame's verdict.
func (s *SpeechTracker) Step(voiced bool) VADResult {
	res := VADResult{Voiced: voiced}
	if voiced != s.speaking {
		s.run++
	} else {
		s.run = 0
	}
	switch {
	case !s.speaking && s.run >= s.StartFrames:
		s.speaking, s.run = true, 0
		res.Event = SpeechStart
	case s.speaking && s.run >= s.EndFrames:
		s.speaking, s.run = false, 0
		res.Event = SpeechEnd
	}
	res.Speaking = s.speaking
	return res
}

// VAD is an energy voice-activity detector with an adaptive noise floor. A
// frame is voiced when its RMS reaches both MinRMS and Ratio × the noise
// floor; the floor follows the unvoiced frames only. One exception keeps
// steady loud noise from holding speech forever: after 5 s of voiced frames
// in a row the floor jumps to the quietest of them. A VAD is not safe for
// concurrent use.
type VAD struct {
	cfg    VADConfig
	floor  float64
	seeded bool // floor holds a measurement
	state  SpeechTracker

	voicedRun int     // consecutive voiced frames
	runMin    float64 // the quietest of them
}

// NewVAD returns a detector; fields of cfg that are zero or negative take
// their DefaultVADConfig values.
func NewVAD(cfg VADConfig) *VAD {
	def := DefaultVADConfig()
	if cfg.StartFrames <= 0 {
		cfg.StartFrames = def.StartFrames
	}
	if cfg.EndFrames <= 0 {
		cfg.EndFrames = def.EndFrames
	}
	if cfg.MinRMS <= 0 {
		cfg.MinRMS = def.MinRMS
	}
	if cfg.Ratio <= 0 {
		cfg.Ratio = def.Ratio
	}
	return &VAD{cfg: cfg, state: SpeechTracker{StartFrames: cfg.StartFrames, EndFrames: cfg.EndFrames}}
}

// Config returns the settings in use.
func (v *VAD) Config() VADConfig { return v.cfg }

// NoiseFloor returns the current noise floor estimate (RMS).
func (v *VAD) NoiseFloor() float64 { return v.floor }

// Delays returns how many frames late the events come: SpeechStart arrives
// with the StartFrames-th voiced frame, SpeechEnd with the EndFrames-th
// unvoiced one.
func (v *VAD) Delays() (start, end int) { return v.cfg.StartFrames, v.cfg.EndFrames }

// Reset returns the detector to silence and forgets the noise floor.
func (v *VAD) Reset() { *v = *NewVAD(v.cfg) }

// Process classifies one 20 ms frame and updates the speaking state.
func (v *VAD) Process(frame []int16) VADResult {
	rms := RMS(frame)
	voiced := rms >= v.cfg.MinRMS && rms >= v.cfg.Ratio*v.floor
	if voiced {
		v.checkStuck(rms)
	} else {
		v.voicedRun = 0
		v.track(rms)
	}

	return v.state.Step(voiced)
}

// checkStuck counts voiced frames and, after stuckFrames of them, raises the
// floor to the quietest, so that the next frames of a steady noise are
// unvoiced.
func (v *VAD) checkStuck(rms float64) {
	if v.voicedRun == 0 || rms < v.runMin {
		v.runMin = rms
	}
	v.voicedRun++
	if v.voicedRun >= stuckFrames {
		v.floor, v.seeded = v.runMin, true
		v.voicedRun = 0
	}
}

func (v *VAD) track(rms float64) {
	switch {
	case !v.seeded:
		v.floor, v.seeded = rms, true
	case rms > v.floor:
		v.floor += floorRise * (rms - v.floor)
	default:
		v.floor += floorFall * (rms - v.floor)
	}
}
