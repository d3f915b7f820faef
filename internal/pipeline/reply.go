package pipeline

import (
	"context"
	"encoding/json"
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

// The built-in tools.
const (
	endCallTool  = "end_call"      // hang up
	transferTool = "transfer_call" // hand the caller to Config.Transfers
	dtmfTool     = "send_dtmf"     // press keys (IVR navigation)
)

// toolTimeout bounds a synchronous tool call (spec §9.5: 10 s).
const toolTimeout = 10 * time.Second

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
			case tc.Name == endCallTool && c.cfg.EndCallTool:
				res.endCall = true
			case tc.Name == transferTool && len(c.cfg.Transfers) > 0 && res.transfer == "":
				if d, ok := c.transferDestination(tc.Arguments); ok {
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
// synchronous ones run concurrently up to toolTimeout. waited reports
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
		case tc.Name == dtmfTool && c.deps.Keypad != nil:
			waited = true
			out[i].Content = c.pressKeys(ctx, tc.Arguments)
		case tool == nil || c.deps.Tools == nil:
			waited = true
			out[i].Content = jsonError("tool " + tc.Name + " is not available")
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
				tctx, cancel := context.WithTimeout(ctx, toolTimeout)
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
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), toolTimeout)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer cancel()
		c.deps.Tools.Run(actx, tc)
	}()
}

func (c *Conversation) tool(name string) *Tool {
	for i := range c.cfg.Tools {
		if c.cfg.Tools[i].Spec.Name == name {
			return &c.cfg.Tools[i]
		}
	}
	return nil
}

// transferDestination reads transfer_call's {"destination": …} argument.
func (c *Conversation) transferDestination(args string) (TransferDestination, bool) {
	var a struct {
		Destination string `json:"destination"`
	}
	if json.Unmarshal([]byte(args), &a) != nil {
		return TransferDestination{}, false
	}
	for _, d := range c.cfg.Transfers {
		if d.Number == a.Destination {
			return d, true
		}
	}
	return TransferDestination{}, false
}

// jsonError is a tool result reporting a failure to the model.
func jsonError(msg string) string {
	b, _ := json.Marshal(map[string]string{"error": msg})
	return string(b)
}

// pressKeys runs send_dtmf.
func (c *Conversation) pressKeys(ctx context.Context, args string) string {
	var a struct {
		Digits string `json:"digits"`
	}
	if json.Unmarshal([]byte(args), &a) != nil || a.Digits == "" {
		return `{"error":"send_dtmf needs {\"digits\": \"123#\"}"}`
	}
	kctx, cancel := context.WithTimeout(ctx, toolTimeout)
	defer cancel()
	if err := c.deps.Keypad.SendDTMF(kctx, a.Digits); err != nil {
		return jsonError(err.Error())
	}
	b, _ := json.Marshal(map[string]string{"sent": a.Digits})
	return string(b)
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
	out := make([]llm.ToolSpec, 0, len(c.cfg.Tools)+3)
	for _, t := range c.cfg.Tools {
		out = append(out, t.Spec)
	}
	if c.cfg.EndCallTool {
		out = append(out, llm.ToolSpec{
			Name:        endCallTool,
			Description: "End the phone call. Use it when the conversation is over or the caller asks to hang up; say goodbye first.",
			Parameters:  []byte(`{"type":"object","properties":{}}`),
		})
	}
	if len(c.cfg.Transfers) > 0 {
		var desc strings.Builder
		desc.WriteString("Transfer the caller to a person or team. Destinations:")
		numbers := make([]string, len(c.cfg.Transfers))
		for i, d := range c.cfg.Transfers {
			numbers[i] = d.Number
			fmt.Fprintf(&desc, " %s: %s.", d.Number, d.Description)
		}
		params, _ := json.Marshal(map[string]any{
			"type":       "object",
			"properties": map[string]any{"destination": map[string]any{"type": "string", "enum": numbers}},
			"required":   []string{"destination"},
		})
		out = append(out, llm.ToolSpec{Name: transferTool, Description: desc.String(), Parameters: params})
	}
	if c.deps.Keypad != nil {
		out = append(out, llm.ToolSpec{
			Name:        dtmfTool,
			Description: "Press keys on the phone keypad, e.g. to navigate an automated menu (IVR).",
			Parameters:  []byte(`{"type":"object","properties":{"digits":{"type":"string","description":"keys to press: 0-9, * and #"}},"required":["digits"]}`),
		})
	}
	return out
}
