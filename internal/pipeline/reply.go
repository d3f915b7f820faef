package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
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

// endCallTool is the built-in tool that lets the model hang up.
const endCallTool = "end_call"

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
	text    string        // everything the reply says
	extra   []llm.Message // tool round trips to keep in the history
	endCall bool
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
			if tc.Name == endCallTool && c.cfg.EndCallTool {
				res.endCall = true
			} else {
				other = append(other, tc)
			}
		}
		res.text = strings.TrimSpace(all.String())
		if len(other) == 0 || res.endCall || round+1 >= maxToolRounds {
			return res, nil
		}
		// Tools are wired in by the tool runner; until then the model
		// hears that the tool is not available and answers without it.
		call := llm.Message{Role: llm.Assistant, Content: text.String(), ToolCalls: other}
		msgs = append(msgs[:len(msgs):len(msgs)], call)
		res.extra = append(res.extra, call)
		for _, tc := range other {
			m := llm.Message{Role: llm.Tool, ToolCallID: tc.ID, Content: `{"error":"tool ` + tc.Name + ` is not available"}`}
			msgs = append(msgs, m)
			res.extra = append(res.extra, m)
		}
	}
}

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
			c.play.finish(reply)
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
		c.play.push(reply, ch.PCM)
	}
}

func (c *Conversation) tools() []llm.ToolSpec {
	tools := c.cfg.LLM.Tools
	if !c.cfg.EndCallTool {
		return tools
	}
	out := make([]llm.ToolSpec, 0, len(tools)+1)
	out = append(out, tools...)
	return append(out, llm.ToolSpec{
		Name:        endCallTool,
		Description: "End the phone call. Use it when the conversation is over or the caller asks to hang up; say goodbye first.",
		Parameters:  []byte(`{"type":"object","properties":{}}`),
	})
}
