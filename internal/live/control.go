package live

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/realtime"
)

// controlWait bounds how long Control waits for the conversation to take a
// command.
const controlWait = time.Second

// Control applies a live call-control command (spec §7.6). It returns once
// the conversation has taken the command: say and the goodbyes of end-call
// and transfer have been asked of the model, which speaks them in its own
// voice (how faithfully is the model's affair: spec §7.6 lists the caveats).
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

// command runs on Run's goroutine; a non-empty reason ends the call now.
func (c *Conversation) command(cmd call.Command) (call.EndReason, error) {
	if c.closing {
		return "", pipeline.ErrEnding
	}
	switch cmd.Type {
	case call.CmdInjectContext:
		content := cmd.Content
		c.out.do("add message", func(ctx context.Context, s realtime.Session) error {
			return s.AddMessage(ctx, llm.System, content)
		})
		c.deps.Recorder.Message(pipeline.Message{Role: llm.System, Content: content, At: time.Now()})
		if cmd.TriggerResponse {
			if c.cur == nil && c.cut == nil && !c.speaking {
				c.respond(kindAnswer, "")
			} else {
				c.trigger = true
			}
		}
	case call.CmdSay:
		c.preempt()
		if cmd.EndAfter {
			c.closeWith(cmd.Content, call.EndAPIRequest)
		} else {
			c.say(kindSay, cmd.Content)
		}
	case call.CmdEndCall:
		c.preempt()
		if cmd.Message == "" {
			return call.EndAPIRequest, nil
		}
		c.closeWith(cmd.Message, call.EndAPIRequest)
	case call.CmdTransfer:
		c.preempt()
		c.transferTo = cmd.Destination
		if cmd.Message == "" {
			return call.EndTransferred, nil
		}
		c.closeWith(cmd.Message, call.EndTransferred)
	default:
		return "", fmt.Errorf("unknown command %q", cmd.Type)
	}
	return "", nil
}

// preempt stops the current reply so a command's speech starts at once;
// what the caller heard of it is kept, as after a barge-in.
func (c *Conversation) preempt() {
	if c.cur != nil {
		c.interrupt()
	}
}

// onKey collects keypad digits; # or a pause ends the entry. A key press
// interrupts the assistant like speech does.
func (c *Conversation) onKey(d rune) {
	if c.closing {
		return
	}
	c.sil.Heard()
	if c.interruptible() {
		c.interrupt()
	}
	c.keys.WriteRune(d)
	if d == '#' {
		c.keysT.Stop()
		c.commitKeys()
		return
	}
	c.keysT.Reset(c.cfg.DTMFDigitTimeout)
}

// commitKeys gives the digits entered to the model as the caller's turn.
func (c *Conversation) commitKeys() {
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
	c.deps.Recorder.Message(pipeline.Message{Role: llm.User, Content: text, At: time.Now()})
	c.out.do("add message", func(ctx context.Context, s realtime.Session) error {
		return s.AddMessage(ctx, llm.User, text)
	})
	c.turnEnd = time.Now()
	r := c.respond(kindAnswer, "")
	r.t0 = c.turnEnd
}
