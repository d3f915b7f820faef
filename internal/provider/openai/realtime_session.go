package openai

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/realtime"
)

const (
	// rtReadLimit bounds one server event (audio deltas are base64).
	rtReadLimit = 8 << 20
	// rtWriteTimeout bounds one client event.
	rtWriteTimeout = 10 * time.Second
	// rtEventBuffer is how many events may wait for Recv.
	rtEventBuffer = 64
	// rtQueueSamples bounds the caller's audio waiting to be sent (4 s);
	// beyond it the oldest is dropped.
	rtQueueSamples = 4 * realtime.SampleRate
	// rtBatchSamples is the audio one append normally carries (40 ms);
	// the writer waits up to rtBatchWait for that much.
	rtBatchSamples = realtime.SampleRate / 25
	rtBatchWait    = 20 * time.Millisecond
	// rtMaxAppend is the most audio one append carries (1 s).
	rtMaxAppend = realtime.SampleRate
)

// rtSession is one realtime websocket.
//
// Goroutines: readLoop turns server events into Events for Recv;
// writeLoop sends the queued audio. Both end when the connection ends,
// Close is called or Connect's ctx is cancelled; Close waits for both.
type rtSession struct {
	d      *RealtimeDialect
	conn   *websocket.Conn
	log    *slog.Logger
	key    string          // only to redact it
	parent context.Context // Connect's ctx
	ctx    context.Context // cancelled by Close and when readLoop ends
	cancel context.CancelFunc

	events     chan realtime.Event // closed by readLoop after setting err
	err        error
	over       chan struct{} // closed once err is set
	done       chan struct{} // readLoop has returned
	writerDone chan struct{}
	closed     atomic.Bool
	closeOnce  sync.Once
	responding atomic.Bool // a response is in flight

	qmu     sync.Mutex
	queue   []int16 // guarded by qmu
	dropped int64   // samples dropped, guarded by qmu
	wake    chan struct{}

	// readLoop's state.
	items []*rtItemText // the current response's message items, in order
	calls []llm.ToolCall
	names map[string]string // item id → function name
}

// rtItemText is the transcript of one output item.
type rtItemText struct {
	id          string
	audio, text strings.Builder
	final       *string // from a transcript done event
}

func newRTSession(ctx context.Context, conn *websocket.Conn, d *RealtimeDialect, log *slog.Logger, key string) *rtSession {
	sctx, cancel := context.WithCancel(ctx)
	s := &rtSession{
		d: d, conn: conn, log: log, key: key, parent: ctx, ctx: sctx, cancel: cancel,
		events:     make(chan realtime.Event, rtEventBuffer),
		over:       make(chan struct{}),
		done:       make(chan struct{}),
		writerDone: make(chan struct{}),
		wake:       make(chan struct{}, 1),
		names:      map[string]string{},
	}
	go s.readLoop()
	go s.writeLoop()
	return s
}

// SendAudio queues pcm (8 kHz) for the writer; when more than
// rtQueueSamples wait, the oldest are dropped.
func (s *rtSession) SendAudio(pcm []int16) error {
	if err := s.ended(); err != nil {
		return err
	}
	if len(pcm) == 0 {
		return nil
	}
	s.qmu.Lock()
	s.queue = append(s.queue, pcm...)
	if over := len(s.queue) - rtQueueSamples; over > 0 {
		s.queue = append(s.queue[:0], s.queue[over:]...)
		if s.dropped == 0 {
			s.log.Warn("realtime audio queue full; dropping the oldest audio")
		}
		s.dropped += int64(over)
	}
	s.qmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// writeLoop sends queued audio in batches of about rtBatchSamples.
func (s *rtSession) writeLoop() {
	defer close(s.writerDone)
	var buf []byte
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		if s.queued() < rtBatchSamples {
			t := time.NewTimer(rtBatchWait)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		for {
			pcm := s.take(rtMaxAppend)
			if len(pcm) == 0 {
				break
			}
			buf = audio.EncodeUlaw(buf[:0], pcm)
			err := s.write(s.ctx, rtAppend{Type: "input_audio_buffer.append", Audio: base64.StdEncoding.EncodeToString(buf)})
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Debug("realtime: sending audio failed", "err", redact.Key(err.Error(), s.key))
				}
				return // the reader learns why the connection ended
			}
		}
	}
}

func (s *rtSession) queued() int {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return len(s.queue)
}

// take removes up to n samples from the queue.
func (s *rtSession) take(n int) []int16 {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	n = min(n, len(s.queue))
	if n == 0 {
		return nil
	}
	out := make([]int16, n)
	copy(out, s.queue)
	s.queue = append(s.queue[:0], s.queue[n:]...)
	return out
}

// Recv returns the next event, io.EOF after Close, or why the session
// ended.
func (s *rtSession) Recv() (realtime.Event, error) {
	if s.closed.Load() {
		return realtime.Event{}, io.EOF
	}
	ev, ok := <-s.events
	if !ok {
		return realtime.Event{}, s.err
	}
	return ev, nil
}

// AddMessage adds a user or system message without asking for a response.
func (s *rtSession) AddMessage(ctx context.Context, role llm.Role, text string) error {
	switch role {
	case llm.User, llm.System:
	default:
		return fmt.Errorf("%s realtime: AddMessage: role %q (want user or system)", s.d.Name, role)
	}
	item := rtItem{Type: "message", Role: string(role), Content: []rtItemContent{{Type: "input_text", Text: text}}}
	return s.send(ctx, "adding a message", rtItemCreate{Type: "conversation.item.create", Item: item})
}

// Respond asks for a response, steered by instructions when not empty.
func (s *rtSession) Respond(ctx context.Context, instructions string) error {
	ev := rtResponseCreate{Type: "response.create"}
	if instructions != "" {
		ev.Response = &rtResponse{Instructions: instructions}
	}
	// Set first: the response may be done before send returns.
	s.responding.Store(true)
	if err := s.send(ctx, "asking for a response", ev); err != nil {
		s.responding.Store(false)
		return err
	}
	return nil
}

// ToolResults sends one function_call_output per result, then one
// response.create.
func (s *rtSession) ToolResults(ctx context.Context, results []realtime.ToolResult) error {
	if len(results) == 0 {
		return fmt.Errorf("%s realtime: ToolResults: no results", s.d.Name)
	}
	for _, r := range results {
		out := r.Output
		item := rtItem{Type: "function_call_output", CallID: r.CallID, Output: &out}
		if err := s.send(ctx, "sending a tool result", rtItemCreate{Type: "conversation.item.create", Item: item}); err != nil {
			return err
		}
	}
	return s.Respond(ctx, "")
}

// Truncate cuts the item's audio at heard (conversation.item.truncate).
func (s *rtSession) Truncate(ctx context.Context, itemID string, heard time.Duration) error {
	if s.d.NoTruncate {
		return s.ended()
	}
	if itemID == "" {
		return fmt.Errorf("%s realtime: Truncate: no item id", s.d.Name)
	}
	return s.send(ctx, "truncating an item", rtTruncate{Type: "conversation.item.truncate", ItemID: itemID, AudioEndMs: max(heard.Milliseconds(), 0)})
}

// Cancel sends response.cancel when a response is in flight.
func (s *rtSession) Cancel(ctx context.Context) error {
	if !s.responding.Load() {
		return s.ended()
	}
	return s.send(ctx, "cancelling the response", rtCancel{Type: "response.cancel"})
}

// Close ends the session and waits for its goroutines.
func (s *rtSession) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		_ = s.conn.CloseNow()
		<-s.done
		<-s.writerDone
		s.log.Debug("realtime session closed")
	})
	return nil
}

// ended returns nil while the session lives, else why it ended.
func (s *rtSession) ended() error {
	if s.closed.Load() {
		return fmt.Errorf("%s realtime: session closed", s.d.Name)
	}
	select {
	case <-s.over:
		return s.err
	default:
		return nil
	}
}

// send writes one client event on behalf of a caller.
func (s *rtSession) send(ctx context.Context, doing string, v any) error {
	if err := s.ended(); err != nil {
		return err
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	if err := s.write(wctx, v); err != nil {
		if err := s.ended(); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s realtime: %s: %w", s.d.Name, doing, ctx.Err())
		}
		return fmt.Errorf("%s realtime: %s: %s", s.d.Name, doing, redact.Key(err.Error(), s.key))
	}
	return nil
}

// write sends one JSON message.
func (s *rtSession) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, rtWriteTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, b)
}

// readLoop turns server events into Events until the session ends.
func (s *rtSession) readLoop() {
	defer close(s.done)
	err := s.read()
	if s.closed.Load() {
		err = io.EOF
	} else {
		s.log.Debug("realtime session ended", "err", err)
	}
	s.err = err
	close(s.over)
	close(s.events)
	s.cancel()
	_ = s.conn.CloseNow()
}

func (s *rtSession) read() error {
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			return s.readError(err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var ev rtServerEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("%s realtime: malformed server event: %s", s.d.Name, clip(redact.Key(err.Error(), s.key)))
		}
		if err := s.handle(&ev); err != nil {
			return err
		}
	}
}

// readError explains why reading failed.
func (s *rtSession) readError(err error) error {
	if s.closed.Load() {
		return io.EOF
	}
	if s.ctx.Err() != nil {
		if perr := s.parent.Err(); perr != nil {
			return fmt.Errorf("%s realtime: session abandoned: %w", s.d.Name, perr)
		}
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &RealtimeError{Provider: s.d.Name, Service: s.d.Service, CloseCode: int(ce.Code), Message: clip(redact.Key(ce.Reason, s.key))}
	}
	return fmt.Errorf("%s realtime: connection lost: %s", s.d.Name, redact.Key(err.Error(), s.key))
}

// handle maps one server event.
func (s *rtSession) handle(ev *rtServerEvent) error {
	switch ev.Type {
	case "input_audio_buffer.speech_started":
		return s.emit(realtime.Event{Type: realtime.SpeechStarted, ItemID: ev.ItemID})
	case "input_audio_buffer.speech_stopped":
		return s.emit(realtime.Event{Type: realtime.SpeechStopped, ItemID: ev.ItemID})
	case "conversation.item.input_audio_transcription.completed":
		return s.emit(realtime.Event{Type: realtime.UserTranscript, ItemID: ev.ItemID, Text: ev.Transcript})
	case "response.created":
		s.responding.Store(true)
		s.items, s.calls = nil, nil
	case "response.output_audio.delta", "response.audio.delta":
		return s.audio(ev)
	case "response.output_audio_transcript.delta", "response.audio_transcript.delta":
		s.item(ev.ItemID).audio.WriteString(ev.Delta)
	case "response.output_text.delta", "response.text.delta":
		s.item(ev.ItemID).text.WriteString(ev.Delta)
	case "response.output_audio_transcript.done", "response.audio_transcript.done":
		t := ev.Transcript
		s.item(ev.ItemID).final = &t
	case "response.output_item.added", "response.output_item.done":
		if it := ev.Item; it != nil && it.Type == "function_call" {
			if it.Name != "" {
				s.names[it.ID] = it.Name
			}
			if ev.Type == "response.output_item.done" && it.CallID != "" {
				s.addCall(it.CallID, it.Name, it.Arguments)
			}
		}
	case "response.function_call_arguments.done":
		name := ev.Name
		if name == "" {
			name = s.names[ev.ItemID]
		}
		s.addCall(ev.CallID, name, ev.Arguments)
	case "response.done":
		return s.responseDone(ev)
	case "error":
		e := eventError(s.d, ev, s.key)
		s.log.Warn("realtime service error", "err", e.Error())
		return s.emit(realtime.Event{Type: realtime.Warning, Text: e.Error()})
	}
	return nil
}

func (s *rtSession) audio(ev *rtServerEvent) error {
	if ev.Delta == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(ev.Delta)
	if err != nil {
		return fmt.Errorf("%s realtime: decoding audio: %w", s.d.Name, err)
	}
	return s.emit(realtime.Event{Type: realtime.Audio, ItemID: ev.ItemID, Audio: audio.DecodeUlaw(nil, raw)})
}

// item returns the transcript of output item id, adding it.
func (s *rtSession) item(id string) *rtItemText {
	for _, it := range s.items {
		if it.id == id {
			return it
		}
	}
	it := &rtItemText{id: id}
	s.items = append(s.items, it)
	return it
}

// addCall records a function call once.
func (s *rtSession) addCall(callID, name, args string) {
	for i := range s.calls {
		if s.calls[i].ID == callID {
			if s.calls[i].Name == "" {
				s.calls[i].Name = name
			}
			return
		}
	}
	if args == "" {
		args = "{}"
	}
	s.calls = append(s.calls, llm.ToolCall{ID: callID, Name: name, Arguments: args})
}

// responseDone emits the response's tool calls, if any, then ResponseDone
// with its transcript.
func (s *rtSession) responseDone(ev *rtServerEvent) error {
	s.responding.Store(false)
	var status, details string
	if ev.Response != nil {
		status = ev.Response.Status
		if len(ev.Response.StatusDetails) > 0 && string(ev.Response.StatusDetails) != "null" {
			details = string(ev.Response.StatusDetails)
		}
	}
	var parts []string
	for _, it := range s.items {
		t := it.audio.String()
		switch {
		case it.final != nil:
			t = *it.final
		case t == "":
			t = it.text.String()
		}
		if t = strings.TrimSpace(t); t != "" {
			parts = append(parts, t)
		}
	}
	calls := s.calls
	s.items, s.calls = nil, nil
	s.names = map[string]string{}
	if status == "failed" {
		msg := fmt.Sprintf("%s realtime: response failed", s.d.Name)
		if details != "" {
			msg += ": " + clip(redact.Key(details, s.key))
		}
		if err := s.emit(realtime.Event{Type: realtime.Warning, Text: msg}); err != nil {
			return err
		}
	}
	cancelled := status == "cancelled"
	if len(calls) > 0 && !cancelled && status != "failed" {
		// The calls end the response (realtime.ToolCalls): the model goes
		// on in the response that ToolResults asks for.
		return s.emit(realtime.Event{Type: realtime.ToolCalls, Calls: calls, Text: strings.Join(parts, " ")})
	}
	return s.emit(realtime.Event{Type: realtime.ResponseDone, Text: strings.Join(parts, " "), Cancelled: cancelled})
}

func (s *rtSession) emit(ev realtime.Event) error {
	select {
	case s.events <- ev:
		return nil
	case <-s.ctx.Done():
		return s.readError(s.ctx.Err())
	}
}
