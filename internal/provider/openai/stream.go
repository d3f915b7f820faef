package openai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/redact"
)

// maxLine is the longest SSE line accepted (a whole tool call can arrive in
// one event).
const maxLine = 1 << 20

// stream is one reply being read from a server-sent event body. Recv is
// called from one goroutine; Close may be called from any.
type stream struct {
	ctx    context.Context    // the caller's: tells cancellation from a broken connection
	cancel context.CancelFunc // aborts the HTTP request
	body   io.ReadCloser
	sc     *bufio.Scanner
	key    string // only to redact it from error messages
	log    *slog.Logger
	model  string
	start  time.Time

	closed  atomic.Bool
	release sync.Once
	err     error // sticky: io.EOF or the error that ended the stream

	buf      []byte // data of the event being read
	carry    []byte // a data line that starts the next event
	hasCarry bool

	chunk  wireChunk // decoded event, reused
	calls  []callAcc // tool calls being assembled
	finish string    // the first finish reason seen
	usage  *llm.Usage
}

// callAcc is a tool call being assembled from fragments.
type callAcc struct {
	index    int // the order of delivery
	wire     int // the index the server used for it; -1 when it sent none
	id, name string
	args     []byte
}

// newStream reads the reply in body. cancel aborts the request that body
// belongs to; ctx is the context the caller passed to Stream.
func newStream(ctx context.Context, cancel context.CancelFunc, body io.ReadCloser, key string) *stream {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 0, 4096), maxLine+2) // room for the line ending
	return &stream{ctx: ctx, cancel: cancel, body: body, sc: sc, key: key, log: slog.New(slog.DiscardHandler)}
}

// Recv returns the next piece of the reply: text as it arrives; the finish
// reason together with the complete tool calls; usage when the server sends
// it (possibly in a Delta of its own after the finish reason). After the
// last piece it returns io.EOF. A stream that breaks before [DONE] and before
// a finish reason returns an error wrapping io.ErrUnexpectedEOF; an error
// event returns an *APIError; after Close, ErrClosed.
func (s *stream) Recv() (llm.Delta, error) {
	if s.err != nil {
		return llm.Delta{}, s.err
	}
	if s.closed.Load() {
		return s.fail(ErrClosed)
	}
	for {
		data, err := s.next()
		switch {
		case err == io.EOF:
			if s.finish == "" {
				return s.fail(fmt.Errorf("openai: stream ended before [DONE]: %w", io.ErrUnexpectedEOF))
			}
			return s.end() // lenient: the finish reason came, only [DONE] is missing
		case err != nil:
			return s.fail(s.readError(err))
		case string(data) == "[DONE]":
			return s.end()
		}
		d, ok, err := s.decode(data)
		if err != nil {
			return s.fail(err)
		}
		if ok {
			return d, nil
		}
	}
}

// Close abandons the reply at once; a Recv blocked in another goroutine
// returns ErrClosed. It is safe to call more than once and always returns nil.
func (s *stream) Close() error {
	if !s.closed.Swap(true) && s.shutdown() {
		// Only fields that Recv does not write may be read here.
		s.log.LogAttrs(s.ctx, slog.LevelDebug, "openai: stream closed",
			slog.String("model", s.model), slog.Duration("elapsed", time.Since(s.start)))
	}
	return nil
}

// end finishes a stream that ended normally: tool calls still held are
// delivered, then io.EOF.
func (s *stream) end() (llm.Delta, error) {
	calls := s.takeCalls()
	s.err = io.EOF
	s.finished()
	if len(calls) > 0 {
		return llm.Delta{ToolCalls: calls}, nil
	}
	return llm.Delta{}, io.EOF
}

// fail ends the stream with err.
func (s *stream) fail(err error) (llm.Delta, error) {
	s.err = err
	s.finished()
	return llm.Delta{}, err
}

// finished releases the request of a stream whose end Recv saw, and logs
// how it went. Only Recv calls it.
func (s *stream) finished() {
	if !s.shutdown() || !s.log.Enabled(s.ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("model", s.model), slog.Duration("elapsed", time.Since(s.start)),
		slog.String("finish_reason", s.finish)}
	if s.usage != nil {
		attrs = append(attrs, slog.Int("prompt_tokens", s.usage.PromptTokens), slog.Int("completion_tokens", s.usage.CompletionTokens))
	}
	if s.err != io.EOF {
		attrs = append(attrs, slog.Bool("failed", true)) // the error text may quote the server: not logged
	}
	s.log.LogAttrs(s.ctx, slog.LevelDebug, "openai: stream ended", attrs...)
}

// shutdown aborts the request and releases the body. It reports whether
// this call did it (the first one).
func (s *stream) shutdown() bool {
	first := false
	s.release.Do(func() {
		first = true
		s.cancel()
		_ = s.body.Close() // the request is cancelled: nothing to report
	})
	return first
}

// readError explains why reading the body failed.
func (s *stream) readError(err error) error {
	switch {
	case s.closed.Load():
		return ErrClosed
	case s.ctx.Err() != nil:
		return fmt.Errorf("openai: read stream: %w", context.Cause(s.ctx))
	case errors.Is(err, bufio.ErrTooLong):
		return fmt.Errorf("openai: read stream: a line is longer than %d bytes: %w", maxLine, err)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("openai: read stream: %w", err)
	}
	// A reset connection or stream is a stream that ended early, whatever
	// the transport calls it.
	return fmt.Errorf("openai: read stream: %w: %w", err, io.ErrUnexpectedEOF)
}

// next returns the data of the next server-sent event, valid until the next
// call, or io.EOF at the end of the body. Comments and fields other than
// data are skipped. Besides the blank line that ends an event, a data line
// that follows complete JSON (or [DONE]) also starts a new event, for
// servers that forget the blank lines.
func (s *stream) next() ([]byte, error) {
	has := false
	if s.hasCarry {
		s.buf, s.carry = s.carry, s.buf[:0]
		s.hasCarry, has = false, true
	} else {
		s.buf = s.buf[:0]
	}
	for s.sc.Scan() {
		line := s.sc.Bytes()
		if len(line) == 0 {
			if has {
				return s.buf, nil
			}
			continue
		}
		if line[0] == ':' { // comment, e.g. ": keep-alive"
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		if string(field) != "data" {
			continue // event:, id:, retry:
		}
		if has {
			if string(s.buf) == "[DONE]" || json.Valid(s.buf) {
				s.carry = append(s.carry[:0], value...)
				s.hasCarry = true
				return s.buf, nil
			}
			s.buf = append(s.buf, '\n')
		}
		s.buf = append(s.buf, value...)
		has = true
	}
	if err := s.sc.Err(); err != nil {
		return nil, err
	}
	if has { // the body ended without the blank line
		return s.buf, nil
	}
	return nil, io.EOF
}

// Wire shapes of a stream chunk: only the fields that are used.
type (
	wireChunk struct {
		Choices []wireChoice    `json:"choices"`
		Usage   *wireUsage      `json:"usage"`
		Error   json.RawMessage `json:"error"`
	}
	wireChoice struct {
		Index        int       `json:"index"`
		Delta        wireDelta `json:"delta"`
		FinishReason string    `json:"finish_reason"`
	}
	wireDelta struct {
		Content   string              `json:"content"`
		ToolCalls []wireToolCallDelta `json:"tool_calls"`
	}
	wireToolCallDelta struct {
		Index    optIndex     `json:"index"`
		ID       string       `json:"id"`
		Function wireFunction `json:"function"`
	}
	wireUsage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	}
)

// optIndex is a tool call's index, which some servers leave out.
type optIndex struct {
	n   int
	set bool
}

// UnmarshalJSON reads a small non-negative integer or null.
func (o *optIndex) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	if len(b) == 0 || len(b) > 6 {
		return fmt.Errorf("tool call index %.20q is not a small non-negative integer", b)
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return fmt.Errorf("tool call index %.20q is not a small non-negative integer", b)
		}
		n = n*10 + int(c-'0')
	}
	o.n, o.set = n, true
	return nil
}

// decode handles one event's data and returns the Delta it makes, if any.
func (s *stream) decode(data []byte) (llm.Delta, bool, error) {
	if len(data) == 0 {
		return llm.Delta{}, false, nil
	}
	// Reuse the chunk's memory, zeroed: Unmarshal leaves absent fields and
	// reused slice elements as they were.
	c := &s.chunk
	choices := c.Choices[:cap(c.Choices)]
	clear(choices)
	*c = wireChunk{Choices: choices[:0], Error: c.Error[:0]}
	if err := json.Unmarshal(data, c); err != nil {
		return llm.Delta{}, false, fmt.Errorf("openai: decode stream event: %w", err)
	}
	if len(c.Error) > 0 && string(c.Error) != "null" {
		e := &APIError{fromJSON: true}
		if !fillErrorValue(e, c.Error) {
			e.Message = "unreadable error event"
		}
		e.Message = redact.Key(e.Message, s.key)
		return llm.Delta{}, false, e
	}
	var d llm.Delta
	for i := range c.Choices {
		ch := &c.Choices[i]
		if ch.Index != 0 { // only one choice is asked for
			continue
		}
		if d.Text == "" {
			d.Text = ch.Delta.Content
		} else {
			d.Text += ch.Delta.Content
		}
		for j := range ch.Delta.ToolCalls {
			s.addFragment(&ch.Delta.ToolCalls[j])
		}
		if ch.FinishReason != "" && s.finish == "" {
			s.finish = ch.FinishReason
			d.FinishReason = ch.FinishReason
			d.ToolCalls = s.takeCalls()
		}
	}
	if c.Usage != nil {
		d.Usage = &llm.Usage{PromptTokens: c.Usage.PromptTokens, CompletionTokens: c.Usage.CompletionTokens}
		s.usage = d.Usage
	}
	ok := d.Text != "" || d.FinishReason != "" || d.Usage != nil || len(d.ToolCalls) > 0
	return d, ok, nil
}

// addFragment adds a tool call fragment to the call it belongs to.
func (s *stream) addFragment(f *wireToolCallDelta) {
	c := s.callFor(f)
	if c.id == "" {
		c.id = f.ID
	}
	if c.name == "" {
		c.name = f.Function.Name
	}
	c.args = append(c.args, f.Function.Arguments...)
}

// callFor finds or starts the call a fragment belongs to. With an index, it
// is the latest call the server gave that index, unless the fragment brings
// a different id (servers that number every call 0). Without an index
// (Google), a fragment with an unknown id starts the next call and one
// without an id continues the last call.
func (s *stream) callFor(f *wireToolCallDelta) *callAcc {
	if f.Index.set {
		for i := len(s.calls) - 1; i >= 0; i-- {
			c := &s.calls[i]
			if c.wire != f.Index.n {
				continue
			}
			if f.ID != "" && c.id != "" && f.ID != c.id {
				return s.newCall(s.nextIndex(), f.Index.n)
			}
			return c
		}
		return s.newCall(f.Index.n, f.Index.n)
	}
	if f.ID != "" {
		for i := range s.calls {
			if s.calls[i].id == f.ID {
				return &s.calls[i]
			}
		}
		return s.newCall(s.nextIndex(), -1)
	}
	if len(s.calls) == 0 {
		return s.newCall(0, -1)
	}
	return &s.calls[len(s.calls)-1]
}

// newCall starts a call delivered in the place index; wire is the index
// the server gave it.
func (s *stream) newCall(index, wire int) *callAcc {
	s.calls = append(s.calls, callAcc{index: index, wire: wire})
	return &s.calls[len(s.calls)-1]
}

// nextIndex is one more than the largest index in use.
func (s *stream) nextIndex() int {
	n := 0
	for i := range s.calls {
		n = max(n, s.calls[i].index+1)
	}
	return n
}

// takeCalls returns the assembled calls in index order and forgets them. A
// call without an id gets "call_<index>"; one without arguments gets "{}".
func (s *stream) takeCalls() []llm.ToolCall {
	if len(s.calls) == 0 {
		return nil
	}
	slices.SortStableFunc(s.calls, func(a, b callAcc) int { return a.index - b.index })
	out := make([]llm.ToolCall, len(s.calls))
	for i := range s.calls {
		c := &s.calls[i]
		out[i] = llm.ToolCall{ID: c.id, Name: c.name, Arguments: string(c.args)}
		if out[i].ID == "" {
			out[i].ID = "call_" + strconv.Itoa(c.index)
		}
		if len(bytes.TrimSpace(c.args)) == 0 {
			out[i].Arguments = "{}"
		}
	}
	s.calls = s.calls[:0]
	return out
}
