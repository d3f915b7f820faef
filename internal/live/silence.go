package live

import (
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/silence"
)

// silenceSync tells the machine whether the line is busy and re-arms the
// timer: busy while the assistant speaks or is asked to, while the caller
// speaks, while a keypad entry is open, or while the call closes.
func (c *Conversation) silenceSync() {
	c.sil.Sync(c.cur != nil || c.cut != nil || c.speaking || c.closing || c.trigger || c.keys.Len() > 0)
}

// onSilence makes the attempt that fell due: a check, or the goodbye after
// which the call ends with silence_timed_out. Texts from speech_config are
// said word for word; otherwise the model words them.
func (c *Conversation) onSilence() {
	if c.cur != nil || c.closing {
		return
	}
	a, ok := c.sil.Tick()
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
