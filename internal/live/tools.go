package live

import (
	"context"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/realtime"
)

// asyncStarted answers an asynchronous tool call at once.
const asyncStarted = `{"status":"started","note":"the tool runs in the background; no result will follow"}`

// onToolCalls handles the model's tool calls, which end its response:
// end_call and transfer_call end the call after the reply; other calls run
// (synchronous ones concurrently, up to pipeline.ToolTimeout) and their
// results let the model go on with the same reply.
func (c *Conversation) onToolCalls(ctx context.Context, ev realtime.Event) {
	if c.cut != nil {
		// The response the caller interrupted ended in tool calls: the
		// caller has moved on, so the calls are not run.
		c.log.Info("tool calls of an interrupted response not run", "calls", len(ev.Calls))
		c.endCut(ev.Text)
		return
	}
	r := c.cur
	if r == nil {
		r = c.start(kindAnswer)
		r.t0, c.turnEnd = c.turnEnd, time.Time{} // a turn is answered once
	}
	addText(&r.text, ev.Text)
	r.open = false
	var other []llm.ToolCall
	var goodbye string
	for _, tc := range ev.Calls {
		switch {
		case tc.Name == pipeline.ToolEndCall && c.cfg.EndCallTool && r.endAfter == "":
			r.endAfter = call.EndAssistantHangup
		case tc.Name == pipeline.ToolTransfer && r.endAfter == "":
			if d, ok := pipeline.FindTransfer(c.cfg.Transfers, tc.Arguments); ok {
				r.endAfter, c.transferTo, goodbye = call.EndTransferred, d.Number, d.Message
				continue
			}
			other = append(other, tc)
		default:
			other = append(other, tc)
		}
	}
	if r.endAfter != "" {
		// The model hung up or handed the caller on: tools called
		// alongside still run for their effects, their results unread.
		c.closing = true
		for _, tc := range other {
			if pipeline.FindTool(c.cfg.Tools, tc.Name) != nil && c.deps.Tools != nil {
				c.runDetached(ctx, tc)
			}
		}
		if goodbye != "" {
			c.ask(r, realtime.Verbatim(goodbye))
			c.closeT.Reset(c.cfg.CloseWait)
			return
		}
		r.finished = true
		c.play.Finish(r.id)
		return
	}
	if len(other) == 0 {
		r.finished = true
		c.play.Finish(r.id)
		return
	}
	r.tools = true
	id := r.id
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		results := c.runTools(ctx, other)
		c.post(ctx, event{kind: evToolsDone, reply: id, results: results})
	}()
}

// onToolsDone sends a tool round's results, and the model goes on. When
// the caller interrupted meanwhile, the results are dropped: the model has
// moved on to what the caller said.
func (c *Conversation) onToolsDone(ev event) (call.EndReason, bool) {
	r := c.cur
	if r == nil || r.id != ev.reply || c.failErr != nil {
		c.log.Info("tool results dropped: the caller spoke meanwhile", "reply", ev.reply)
		return "", false
	}
	r.tools, r.open = false, true
	results := ev.results
	c.out.do("tool results", func(ctx context.Context, s realtime.Session) error {
		return s.ToolResults(ctx, results)
	})
	return "", false
}

// runTools runs one round of tool calls.
func (c *Conversation) runTools(ctx context.Context, calls []llm.ToolCall) []realtime.ToolResult {
	out := make([]realtime.ToolResult, len(calls))
	var wg sync.WaitGroup
	for i, tc := range calls {
		out[i] = realtime.ToolResult{CallID: tc.ID, Name: tc.Name}
		tool := pipeline.FindTool(c.cfg.Tools, tc.Name)
		switch {
		case tc.Name == pipeline.ToolDTMF && c.deps.Keypad != nil:
			out[i].Output = pipeline.PressKeys(ctx, c.deps.Keypad, tc.Arguments)
		case tool == nil || c.deps.Tools == nil:
			out[i].Output = pipeline.ToolError("tool " + tc.Name + " is not available")
		case tool.Async:
			c.runDetached(ctx, tc)
			out[i].Output = asyncStarted
		default:
			wg.Add(1)
			go func() {
				defer wg.Done()
				tctx, cancel := context.WithTimeout(ctx, pipeline.ToolTimeout)
				defer cancel()
				out[i].Output = c.deps.Tools.Run(tctx, tc)
			}()
		}
	}
	wg.Wait()
	return out
}

// runDetached runs a tool call in the background: neither a barge-in nor
// the call's end cancels it, the tool timeout bounds it, and Background
// waits for it.
func (c *Conversation) runDetached(ctx context.Context, tc llm.ToolCall) {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pipeline.ToolTimeout)
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		defer cancel()
		c.deps.Tools.Run(actx, tc)
	}()
}
