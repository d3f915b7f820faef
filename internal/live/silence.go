package live

import (
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/silence"
)

// silenceWatch is the conversation's side of package silence, as in the
// pipeline. Run's goroutine only.
type silenceWatch struct {
	m *silence.Machine
	t *time.Timer
}

func newSilenceWatch(cfg *silence.Config) *silenceWatch {
	if cfg == nil {
		return nil
	}
	return &silenceWatch{m: silence.New(*cfg, time.Now()), t: stopped()}
}

func (c *Conversation) silenceC() <-chan time.Time {
	if c.sil == nil {
		return nil
	}
	return c.sil.t.C
}

func (c *Conversation) silenceStop() {
	if c.sil != nil {
		c.sil.t.Stop()
	}
}

// silenceHeard notes the caller's activity: speech, words, keys.
func (c *Conversation) silenceHeard() {
	if c.sil != nil {
		c.sil.m.Heard(time.Now())
	}
}

// silenceSync tells the machine whether the line is busy and re-arms the
// timer: busy while the assistant speaks or is asked to, while the caller
// speaks, while a keypad entry is open, or while the call closes.
func (c *Conversation) silenceSync() {
	if c.sil == nil {
		return
	}
	busy := c.cur != nil || c.cut != nil || c.speaking || c.closing || c.trigger || c.keys.Len() > 0
	now := time.Now()
	c.sil.m.Busy(now, busy)
	c.sil.t.Stop()
	if due, ok := c.sil.m.Due(); ok {
		c.sil.t.Reset(max(0, due.Sub(now)))
	}
}

// onSilence makes the attempt that fell due: a check, or the goodbye after
// which the call ends with silence_timed_out. Texts from speech_config are
// said word for word; otherwise the model words them.
func (c *Conversation) onSilence() {
	if c.sil == nil || c.cur != nil || c.closing {
		return
	}
	a, ok := c.sil.m.Tick(time.Now())
	if !ok {
		return
	}
	c.log.Info("caller silent", "attempt", a.Attempt, "kind", a.Kind.String(), "written_by_model", a.Text == "")
	switch {
	case a.Kind == silence.Check && a.Text != "":
		c.say(kindSay, a.Text)
	case a.Kind == silence.Check:
		c.respond(kindSay, pipeline.SilenceCheckPrompt)
	case a.Text != "":
		c.closeWith(a.Text, call.EndSilenceTimedOut)
	default:
		c.closing = true
		r := c.respond(kindClosing, pipeline.SilenceFinalPrompt)
		r.endAfter = call.EndSilenceTimedOut
		c.closeT.Reset(c.cfg.CloseWait)
	}
}
