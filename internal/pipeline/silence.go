package pipeline

import (
	"context"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/silence"
	"github.com/parley-voice/parley/internal/stt"
)

// Instructions for the model when speech_config.silence names no text: the
// prompt is written in the conversation's context (its language, its tone)
// and is not kept in the history afterwards.
const (
	SilenceCheckPrompt = "The caller has been silent for a while. Say one short sentence, in the language of the conversation, " +
		"to check whether they are still on the line. Do not call any tool."
	SilenceFinalPrompt = "The caller has still said nothing. Say one short, polite goodbye sentence, in the language of the " +
		"conversation; the call ends after it. Do not call any tool."
)

// silenceObserve notes caller activity in an event before it is handled:
// speech (the detector's start, or words from STT) and keys reset the count.
func (c *Conversation) silenceObserve(ev event) {
	switch ev.kind {
	case evSpeechStart, evDTMF:
		c.sil.Heard()
	case evSTT:
		if (ev.stt.Type == stt.Interim || ev.stt.Type == stt.Final) && ev.stt.Text != "" {
			c.sil.Heard()
		}
	}
}

// silenceSync tells the machine whether the line is busy and re-arms the
// timer for its next attempt. Busy: a reply playing or being written (its
// tool calls included), the caller speaking or a turn or keypad entry not
// yet answered, or the call closing.
func (c *Conversation) silenceSync() {
	c.sil.Sync(c.cur != nil || c.speaking || c.closing || c.trigger || c.turn.Len() > 0 || c.keys.Len() > 0 || c.voicemailHolds())
}

// onSilence makes the attempt that fell due: a check (interruptible, like
// any reply) or the final goodbye, after which the call ends with
// silence_timed_out.
func (c *Conversation) onSilence(ctx context.Context) {
	if c.cur != nil || c.closing {
		return
	}
	a, ok := c.sil.Tick()
	if !ok {
		return
	}
	c.log.Info("caller silent", "attempt", a.Attempt, "kind", a.Kind.String(), "written_by_model", a.Text == "")
	switch a.Kind {
	case silence.Check:
		if a.Text != "" {
			c.startReply(ctx, kindSay, a.Text, time.Time{})
		} else {
			c.startPrompted(ctx, kindSay, SilenceCheckPrompt)
		}
	case silence.Final:
		if a.Text != "" {
			c.closeWith(ctx, a.Text, call.EndSilenceTimedOut)
			return
		}
		c.closing = true
		c.startPrompted(ctx, kindClosing, SilenceFinalPrompt)
		c.cur.endAfter = call.EndSilenceTimedOut
	}
}

// startPrompted starts a model reply with an instruction appended to the
// context for this reply only.
func (c *Conversation) startPrompted(ctx context.Context, kind replyKind, instruction string) {
	n := len(c.history)
	c.history = append(c.history, llm.Message{Role: llm.System, Content: instruction})
	c.startReply(ctx, kind, "", time.Time{}) // copies the history
	c.history = c.history[:n]
}
