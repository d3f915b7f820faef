package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/tts"
)

// stage names the provider a reply failed in.
type stage string

const (
	stageLLM stage = "llm"
	stageTTS stage = "tts"
)

// replyError is a provider failure inside a reply.
type replyError struct {
	stage stage
	err   error
}

func (e *replyError) Error() string { return fmt.Sprintf("%s: %v", e.stage, e.err) }
func (e *replyError) Unwrap() error { return e.err }

// maxToolRounds bounds model round trips within one reply.
const maxToolRounds = 3

// replyJob is what a reply worker needs, copied from the conversation.
type replyJob struct {
	id       int
	fixed    string        // speak this text; no model call
	messages []llm.Message // the model context when fixed is empty
}

// replyResult is reported when the model part of a reply is done.
type replyResult struct {
	text     string        // everything the reply says
	extra    []llm.Message // tool round trips to keep in the history
	endCall  bool
	transfer string // transfer_call's destination
}

// runReply produces one reply: model text (or fixed text) → sentences →
// TTS → playout. It reports progress as events and stops at once when ctx
// is cancelled (barge-in, hang-up).
func (c *Conversation) runReply(ctx context.Context, job replyJob) {
	ts, err := c.deps.Providers.TTS.Open(ctx, c.cfg.TTS)
	if err != nil {
		c.post(ctx, event{kind: evReplyFailed, reply: job.id, err: &replyError{stageTTS, err}})
		return
	}
	stopClose := context.AfterFunc(ctx, func() { ts.Close() })
	defer stopClose()
	defer ts.Close()
	audioDone := make(chan error, 1)
	go func() { audioDone <- c.receiveAudio(ctx, job.id, ts) }()

	var res replyResult
	if job.fixed != "" {
		res.text = job.fixed
		err = c.speak(ctx, job.id, ts, job.fixed)
	} else {
		res, err = c.generate(ctx, job, ts)
	}
	if err == nil {
		c.post(ctx, event{kind: evReplyText, reply: job.id, result: res})
		if err = ts.Flush(); err != nil {
			err = &replyError{stageTTS, err}
		}
	}
	if err == nil {
		err = <-audioDone
	}
	if err != nil && ctx.Err() == nil {
		c.post(ctx, event{kind: evReplyFailed, reply: job.id, err: err})
	}
}

// generate streams the model's reply into TTS, running tool round trips
// for calls other than end_call.
func (c *Conversation) generate(ctx context.Context, job replyJob, ts tts.Stream) (replyResult, error) {
	var res replyResult
	msgs := job.messages
	var sp splitter
	var all strings.Builder
	for round := 0; ; round++ {
		req := c.cfg.LLM
		req.Messages = msgs
		req.Tools = c.tools()
		started := time.Now()
		stream, err := c.deps.Providers.LLM.Stream(ctx, req)
		if err != nil {
			return res, &replyError{stageLLM, err}
		}
		var calls []llm.ToolCall
		var text strings.Builder
		// Text from an earlier round (or a tool message) and this round's
		// are separate sentences.
		sep := all.Len() > 0
		for {
			d, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				stream.Close()
				return res, &replyError{stageLLM, err}
			}
			if d.Text != "" {
				if all.Len() == 0 {
					c.post(ctx, event{kind: evFirstToken, reply: job.id, at: time.Now(), since: started})
				}
				text.WriteString(d.Text)
				if sep {
					all.WriteByte(' ')
					sep = false
				}
				all.WriteString(d.Text)
				for _, piece := range sp.push(d.Text) {
					if err := c.speak(ctx, job.id, ts, piece); err != nil {
						stream.Close()
						return res, err
					}
				}
			}
			calls = append(calls, d.ToolCalls...)
		}
		stream.Close()
		if rest := sp.flush(); rest != "" {
			if err := c.speak(ctx, job.id, ts, rest); err != nil {
				return res, err
			}
		}
		var other []llm.ToolCall
		for _, tc := range calls {
			switch {
			case tc.Name == ToolEndCall && c.cfg.EndCallTool:
				res.endCall = true
			case tc.Name == ToolTransfer && len(c.cfg.Transfers) > 0 && res.transfer == "":
				if d, ok := FindTransfer(c.cfg.Transfers, tc.Arguments); ok {
					res.transfer = d.Number
					if d.Message != "" {
						all.WriteString(" " + d.Message)
						if err := c.speak(ctx, job.id, ts, d.Message); err != nil {
							return res, err
						}
					}
					continue
				}
				other = append(other, tc)
			default:
				other = append(other, tc)
			}
		}
		res.text = strings.TrimSpace(all.String())
		if res.endCall || res.transfer != "" {
			// The call is ending, but tools called alongside the hang-up
			// or transfer still run for their effects (an SMS, a
			// booking): detached, their results unread.
			for _, tc := range other {
				if c.tool(tc.Name) != nil && c.deps.Tools != nil {
					c.runDetached(ctx, tc)
				}
			}
			return res, nil
		}
		if len(other) == 0 || round+1 >= maxToolRounds {
			return res, nil
		}
		call := llm.Message{Role: llm.Assistant, Content: text.String(), ToolCalls: other}
		msgs = append(msgs[:len(msgs):len(msgs)], call)
		res.extra = append(res.extra, call)
		results, waited, err := c.runTools(ctx, job.id, ts, other, &all)
		if err != nil {
			return res, err
		}
		msgs = append(msgs, results...)
		res.extra = append(res.extra, results...)
		res.text = strings.TrimSpace(all.String())
		if !waited {
			// Only asynchronous tools, whose messages were spoken: the
			// reply is complete without another model round.
			return res, nil
		}
	}
}

// runTools runs one round of tool calls: each tool's message is spoken
// first (no dead air), asynchronous tools are started and not waited for,
// synchronous ones run concurrently up to ToolTimeout. waited reports
// whether the model needs another round (a sync tool, or an async one with
// nothing spoken).
func (c *Conversation) runTools(ctx context.Context, reply int, ts tts.Stream, calls []llm.ToolCall, all *strings.Builder) ([]llm.Message, bool, error) {
	out := make([]llm.Message, len(calls))
	var wg sync.WaitGroup
	waited := false
	for i, tc := range calls {
		tool := c.tool(tc.Name)
		if tool != nil && tool.Message != "" {
			all.WriteString(" " + tool.Message)
			if err := c.speak(ctx, reply, ts, tool.Message); err != nil {
				return nil, false, err
			}
		}
		out[i] = llm.Message{Role: llm.Tool, ToolCallID: tc.ID}
		switch {
		case tc.Name == ToolDTMF && c.deps.Keypad != nil:
			waited = true
			out[i].Content = PressKeys(ctx, c.deps.Keypad, tc.Arguments)
		case tool == nil || c.deps.Tools == nil:
			waited = true
			out[i].Content = ToolError("tool " + tc.Name + " is not available")
		case tool.Async:
			c.runDetached(ctx, tc)
			out[i].Content = `{"status":"started","note":"the tool runs in the background; no result will follow"}`
			if tool.Message == "" {
				waited = true
			}
		default:
			waited = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				tctx, cancel := context.WithTimeout(ctx, ToolTimeout)
				defer cancel()
				out[i].Content = c.deps.Tools.Run(tctx, tc)
			}()
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, false, ctx.Err()
	}
	return out, waited, nil
}

// runDetached runs a tool call in the background: neither a barge-in nor
// the call's end cancels it or waits for it, the tool timeout bounds it,
// and Background waits for it.
func (c *Conversation) runDetached(ctx context.Context, tc llm.ToolCall) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ToolTimeout)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer cancel()
		c.deps.Tools.Run(actx, tc)
	}()
}

func (c *Conversation) tool(name string) *Tool { return FindTool(c.cfg.Tools, name) }

// speak sends one piece of text to TTS, after pronunciation rules.
func (c *Conversation) speak(ctx context.Context, reply int, ts tts.Stream, text string) error {
	text = strings.TrimSpace(pronounce(text, c.cfg.Pronunciation))
	if text == "" {
		return nil
	}
	c.post(ctx, event{kind: evTTSSent, reply: reply, at: time.Now()})
	if err := ts.Send(text); err != nil {
		return &replyError{stageTTS, err}
	}
	return nil
}

// receiveAudio moves TTS audio into the playout queue.
func (c *Conversation) receiveAudio(ctx context.Context, reply int, ts tts.Stream) error {
	first := true
	for {
		ch, err := ts.Recv()
		if errors.Is(err, io.EOF) {
			c.play.Finish(reply)
			c.post(ctx, event{kind: evAudioDone, reply: reply})
			return nil
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return &replyError{stageTTS, err}
		}
		if first && len(ch.PCM) > 0 {
			first = false
			c.post(ctx, event{kind: evFirstAudio, reply: reply, at: time.Now()})
		}
		c.play.Push(reply, ch.PCM)
	}
}

func (c *Conversation) tools() []llm.ToolSpec {
	return ToolSpecs(c.cfg.Tools, c.cfg.EndCallTool, c.cfg.Transfers, c.deps.Keypad != nil)
}
