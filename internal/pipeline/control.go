package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
)

// ErrEnding refuses commands while the call is already ending.
var ErrEnding = errors.New("the call is ending")

// controlWait bounds how long Control waits for the conversation to take a command.
const controlWait = time.Second

// Control applies a live call-control command (spec §7.6). It returns once
// the conversation has taken the command (say and end-call start speaking
// at once), or with an error saying why it cannot apply.
func (c *Conversation) Control(ctx context.Context, cmd call.Command) error {
	ack := make(chan error, 1)
	select {
	case c.events <- event{kind: evCommand, cmd: cmd, ack: ack, at: time.Now()}:
	default:
		return errors.New("the call is busy; try again")
	}
	t := time.NewTimer(controlWait)
	defer t.Stop()
	select {
	case err := <-ack:
		return err
	case <-t.C:
		return errors.New("the call did not take the command in time")
	case <-ctx.Done():
		return ctx.Err()
	}
}

// DTMF implements the media DTMF sink: a key the caller pressed.
func (c *Conversation) DTMF(digit rune) {
	c.postNow(event{kind: evDTMF, digit: digit, at: time.Now()})
}

// command runs on Run's goroutine; a non-empty reason ends the call now.
func (c *Conversation) command(ctx context.Context, cmd call.Command) (call.EndReason, error) {
	if c.closing {
		return "", ErrEnding
	}
	switch cmd.Type {
	case call.CmdInjectContext:
		c.history = append(c.history, llm.Message{Role: llm.System, Content: cmd.Content})
		c.deps.Recorder.Message(Message{Role: llm.System, Content: cmd.Content, At: time.Now()})
		if cmd.TriggerResponse {
			if c.cur == nil && !c.speaking {
				c.startReply(ctx, kindAnswer, "", time.Now())
			} else {
				c.trigger = true
			}
		}
	case call.CmdSay:
		c.preempt()
		if cmd.EndAfter {
			c.closeWith(ctx, cmd.Content, call.EndAPIRequest)
		} else {
			c.startReply(ctx, kindSay, cmd.Content, time.Time{})
		}
	case call.CmdEndCall:
		c.preempt()
		if cmd.Message == "" {
			return call.EndAPIRequest, nil
		}
		c.closeWith(ctx, cmd.Message, call.EndAPIRequest)
	case call.CmdTransfer:
		c.preempt()
		c.transferTo = cmd.Destination
		if cmd.Message == "" {
			return call.EndTransferred, nil
		}
		c.closeWith(ctx, cmd.Message, call.EndTransferred)
	default:
		return "", fmt.Errorf("unknown command %q", cmd.Type)
	}
	return "", nil
}

// preempt stops the current reply so a command's speech starts at once;
// what the caller heard of it is kept, as after a barge-in.
func (c *Conversation) preempt() {
	c.endpoint.Stop()
	if c.cur != nil {
		c.interrupt()
	}
}

// closeWith speaks text, uninterruptible, and then ends the call.
func (c *Conversation) closeWith(ctx context.Context, text string, reason call.EndReason) {
	c.closing = true
	c.startReply(ctx, kindClosing, text, time.Time{})
	c.cur.endAfter = reason
}

// onKey collects keypad digits; # or a pause ends the entry.
func (c *Conversation) onKey(ctx context.Context, d rune) {
	if c.closing {
		return
	}
	if c.interruptible() {
		c.interrupt() // a key press is a barge-in
	}
	c.keys.WriteRune(d)
	if d == '#' {
		c.keysT.Stop()
		c.commitKeys(ctx)
		return
	}
	wait := c.cfg.DTMFDigitTimeout
	if wait <= 0 {
		wait = 2 * time.Second
	}
	c.keysT.Reset(wait)
}

// commitKeys turns the digits entered into the caller's turn.
func (c *Conversation) commitKeys(ctx context.Context) {
	keys := c.keys.String()
	if keys == "" || c.closing {
		return
	}
	c.keys.Reset()
	if c.interruptible() {
		c.interrupt()
	} else if c.cur != nil {
		return
	}
	text := "[keypad] " + keys
	if spoken := strings.TrimSpace(c.turn.String()); spoken != "" {
		text = spoken + " " + text
		c.turn.Reset()
		c.uttDone = false
	}
	c.endpoint.Stop()
	now := time.Now()
	c.deps.Recorder.Message(Message{Role: llm.User, Content: text, At: now})
	c.history = append(c.history, llm.Message{Role: llm.User, Content: text})
	c.startReply(ctx, kindAnswer, "", now)
}
