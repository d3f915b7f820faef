package voicemail

import (
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// Config tunes a Detector. Durations are counted in 20 ms frames of the
// answering side's audio.
type Config struct {
	// MaxDelay is how long the line may be heard without a decision before
	// a quiet line counts as a person (who waits for us to speak).
	MaxDelay time.Duration
	// LongGreeting is how long the first utterance may run, pauses under
	// UtterancePause included, before it counts as a machine's greeting.
	LongGreeting time.Duration
	// UtterancePause is the pause that ends an utterance: machines pause
	// between the sentences of a greeting, shorter than this.
	UtterancePause time.Duration
	// HumanQuiet is how long the line must be quiet after a transcript
	// without a voicemail phrase before it is taken for a person's answer.
	HumanQuiet time.Duration
	// EndOfGreeting is how long the line must be quiet after a machine's
	// greeting, without a beep, before the message is spoken.
	EndOfGreeting time.Duration
	// MaxWait is the longest wait for the beep or the end of the greeting
	// once a machine has been detected.
	MaxWait time.Duration
}

// DefaultConfig: a decision within 3 s on a quiet line and within 5 s at
// the latest (Bound); the message once the beep has ended, or 1.5 s after
// the greeting, and never later than 20 s after the decision.
func DefaultConfig() Config {
	return Config{
		MaxDelay:       3 * time.Second,
		LongGreeting:   4 * time.Second,
		UtterancePause: 700 * time.Millisecond,
		HumanQuiet:     500 * time.Millisecond,
		EndOfGreeting:  1500 * time.Millisecond,
		MaxWait:        20 * time.Second,
	}
}

// Bound is the latest a Detector decides: LongGreeting plus one second.
func (c Config) Bound() time.Duration { return max(c.MaxDelay, c.LongGreeting+time.Second) }

// Decision is who answered.
type Decision uint8

// Decisions.
const (
	Undecided Decision = iota
	HumanAnswered
	MachineAnswered
)

// String names the decision.
func (d Decision) String() string {
	switch d {
	case HumanAnswered:
		return "human"
	case MachineAnswered:
		return "machine"
	}
	return "undecided"
}

// Event is what a frame or transcript changed.
type Event uint8

// Events.
const (
	NoEvent Event = iota
	// Decided: Decision is now human or machine.
	Decided
	// Ready: a machine's greeting (and beep) is over; speak the message.
	Ready
)

// Cue names what decided, for logs and metrics.
type Cue string

// Cues.
const (
	CuePhrase       Cue = "phrase"        // a voicemail phrase in the transcript
	CueBeep         Cue = "beep"          // an answering-machine beep
	CueLongGreeting Cue = "long_greeting" // the first utterance ran on
	CueHumanAnswer  Cue = "human_answer"  // a short answer, then quiet
	CueTimeout      Cue = "timeout"       // no cue within MaxDelay (or Bound)
	CueBeepEnd      Cue = "beep_end"      // Ready: the beep ended
	CueGreetingEnd  Cue = "greeting_end"  // Ready: quiet after the greeting
	CueMaxWait      Cue = "max_wait"      // Ready: waited MaxWait
)

// Detector decides who answered an outbound call from its first utterance.
// Feed it every frame of the answering side (Frame) and every transcript
// event of the same audio (Transcript). It is not safe for concurrent use.
type Detector struct {
	cfg                                      Config
	maxDelay, long, pause, quiet, eog, maxWt int // in frames

	vad  *audio.VAD
	beep *BeepDetector

	n         int // frames heard
	uttStart  int // first frame of the current utterance (-1: none)
	lastVoice int // last speaking frame (-1: none)
	speaking  bool
	beeping   bool

	text      strings.Builder // finals of the first utterance
	finalSeen bool

	decision  Decision
	cue       Cue
	decidedAt int
	ready     bool
	readyCue  Cue
}

// New returns a detector for one call.
func New(cfg Config) *Detector {
	f := func(d time.Duration) int { return int(d / (20 * time.Millisecond)) }
	return &Detector{
		cfg: cfg, maxDelay: f(cfg.MaxDelay), long: f(cfg.LongGreeting), pause: f(cfg.UtterancePause),
		quiet: f(cfg.HumanQuiet), eog: f(cfg.EndOfGreeting), maxWt: f(cfg.MaxWait),
		vad: audio.NewVAD(audio.DefaultVADConfig()), beep: NewBeepDetector(),
		uttStart: -1, lastVoice: -1,
	}
}

// Decision is the decision so far.
func (d *Detector) Decision() Decision { return d.decision }

// Cue is what made the decision.
func (d *Detector) Cue() Cue { return d.cue }

// ReadyCue is what made the detector Ready.
func (d *Detector) ReadyCue() Cue { return d.readyCue }

// DecidedAfter is how much audio had been heard at the decision.
func (d *Detector) DecidedAfter() time.Duration { return frames(d.decidedAt) }

// Heard is how much audio has been fed.
func (d *Detector) Heard() time.Duration { return frames(d.n) }

// Done reports that the detector needs no more input: a person answered,
// or the machine's greeting is over.
func (d *Detector) Done() bool { return d.decision == HumanAnswered || d.ready }

func frames(n int) time.Duration { return time.Duration(n) * 20 * time.Millisecond }

// Frame feeds one 20 ms frame of the answering side.
func (d *Detector) Frame(frame []int16) Event {
	if d.Done() {
		return NoEvent
	}
	i := d.n
	d.n++
	r := d.vad.Process(frame)
	d.speaking = r.Speaking
	if r.Speaking {
		if d.uttStart < 0 || i-d.lastVoice > d.pause {
			d.uttStart = i
		}
		d.lastVoice = i
	}
	be := d.beep.Frame(frame)
	switch be {
	case BeepStart:
		d.beeping = true
	case BeepEnd:
		d.beeping = false
	}
	if d.decision == Undecided {
		inUtterance := d.lastVoice >= 0 && (d.speaking || i-d.lastVoice < d.pause)
		switch {
		case be == BeepStart:
			return d.decide(MachineAnswered, CueBeep)
		case d.speaking && d.uttStart >= 0 && i-d.uttStart >= d.long:
			return d.decide(MachineAnswered, CueLongGreeting)
		case d.finalSeen && !d.speaking && d.lastVoice >= 0 && i-d.lastVoice >= d.quiet:
			// A transcript without a voicemail phrase, then quiet: a
			// person waiting for an answer.
			return d.decide(HumanAnswered, CueHumanAnswer)
		case d.n >= d.maxDelay && !inUtterance:
			// Quiet for a pause's length at the deadline: a person
			// waiting for us (a machine's pause between sentences
			// is shorter).
			return d.decide(HumanAnswered, CueTimeout)
		case d.n >= d.long+50: // Bound, and still in an utterance
			return d.decide(MachineAnswered, CueTimeout)
		}
		return NoEvent
	}
	// A machine: wait for the beep to end, or quiet after the greeting.
	switch {
	case be == BeepEnd:
		return d.setReady(CueBeepEnd)
	case !d.speaking && !d.beeping && d.lastVoice >= 0 && i-d.lastVoice >= d.eog:
		return d.setReady(CueGreetingEnd)
	case d.n-d.decidedAt >= d.maxWt:
		return d.setReady(CueMaxWait)
	}
	return NoEvent
}

// Transcript feeds a transcript of the answering side: interim text
// (final false) or a settled segment (final true). Only the first
// utterance counts: once decided, transcripts are ignored.
func (d *Detector) Transcript(text string, final bool) Event {
	if d.decision != Undecided {
		return NoEvent
	}
	text = strings.TrimSpace(text)
	whole := strings.TrimSpace(d.text.String() + " " + text)
	if Classify(whole) == Machine {
		return d.decide(MachineAnswered, CuePhrase)
	}
	if final && text != "" {
		if d.text.Len() > 0 {
			d.text.WriteByte(' ')
		}
		d.text.WriteString(text)
		d.finalSeen = true
	}
	return NoEvent
}

// Text is the first utterance's transcript so far.
func (d *Detector) Text() string { return d.text.String() }

func (d *Detector) decide(dec Decision, cue Cue) Event {
	d.decision, d.cue, d.decidedAt = dec, cue, d.n
	return Decided
}

func (d *Detector) setReady(cue Cue) Event {
	d.ready, d.readyCue = true, cue
	return Ready
}
