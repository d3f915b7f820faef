package pipeline

import (
	"context"
	"time"

	"github.com/parley-voice/parley/internal/audio"
)

// Barge-in: what the caller's speech does to a reply being played
// (docs/turn-taking.md).

// voiceMeter counts the caller's voiced frames within one VAD speech
// segment, so that interruption_min_duration measures speech and not the
// short pauses inside it. Media receive goroutine only.
type voiceMeter struct {
	need   int // voiced frames that make interruption_min_duration
	voiced int // voiced frames of the current segment
}

func newVoiceMeter(minDur time.Duration) voiceMeter {
	return voiceMeter{need: max(1, int((minDur+frames(1)-1)/frames(1)))}
}

// frame folds in the VAD's verdict on one frame and reports whether the
// current speech segment has just reached interruption_min_duration.
// startFrames is the VAD's StartFrames: the voiced frames that started
// the segment count too.
func (m *voiceMeter) frame(r audio.VADResult, startFrames int) bool {
	before := m.voiced
	switch {
	case r.Event == audio.SpeechStart:
		before, m.voiced = 0, startFrames
	case r.Speaking && r.Voiced:
		m.voiced++
	}
	return before < m.need && m.voiced >= m.need
}

// bargeIn is what caller speech during a reply amounts to.
type bargeIn uint8

const (
	bargeNone bargeIn = iota // not (yet) an interruption
	bargeHold                // pause the reply: speech without words may be noise
	bargeCut                 // an interruption: stop the reply
)

// judgeBargeIn applies interruption_min_duration (enough: the speech has
// had that many voiced frames), interruption_min_words (words heard so
// far, interim or final) and false_interruption_timeout (with no words
// yet, hold the reply rather than drop it).
func judgeBargeIn(t TurnTaking, enough bool, words int) bargeIn {
	switch {
	case !enough:
		return bargeNone
	case t.InterruptionMinWords > 0 && words < t.InterruptionMinWords:
		return bargeNone
	case words == 0 && t.FalseInterruptTimeout > 0:
		return bargeHold
	}
	return bargeCut
}

// checkInterruption decides whether the caller's speech interrupts the reply.
func (c *Conversation) checkInterruption(_ context.Context) {
	r := c.cur
	if !c.interruptible() || c.speechAt.IsZero() {
		return
	}
	switch judgeBargeIn(c.cfg.Turn, c.voicedEnough, c.words) {
	case bargeHold:
		if !r.paused {
			// Maybe a cough: hold the audio until words confirm it.
			r.paused = true
			c.play.Pause(true)
			c.armFalseInterruption()
		}
	case bargeCut:
		c.interrupt()
	}
}

// armFalseInterruption (re)starts the false-interruption timer of a held
// reply: false_interruption_timeout from the caller's last voiced frame.
// While the caller's VAD reports speech the timer is off: words from a
// local STT come only after the caller stops, so speech still going on is
// no evidence of noise.
func (c *Conversation) armFalseInterruption() {
	c.falseT.Stop()
	if r := c.cur; r == nil || !r.paused || c.speaking {
		return
	}
	c.falseT.Reset(max(0, time.Until(c.lastVoice.Add(c.cfg.Turn.FalseInterruptTimeout))))
}

// resumeAfterFalseInterruption plays on a held reply when its timer ran
// out with no words and the caller silent: the speech was noise.
func (c *Conversation) resumeAfterFalseInterruption() {
	r := c.cur
	if r == nil || !r.paused || c.speaking || c.words > 0 {
		return
	}
	r.paused = false
	r.m.FalseInterruption = true
	c.play.Pause(false)
}
