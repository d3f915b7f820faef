package google

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/realtime"
)

const (
	// liveBatch is the caller's audio per realtimeInput message: 40 ms at
	// 16 kHz; up to liveMaxBatches of them go in one message when the
	// network fell behind.
	liveBatch      = liveInRate / 25
	liveMaxBatches = 8
	// liveWriteTimeout bounds one client message.
	liveWriteTimeout = 10 * time.Second
	// liveCloseTimeout bounds the close handshake of Close.
	liveCloseTimeout = time.Second
	// liveFailureGrace is how long a failed write waits for the reader to
	// learn why the service dropped the connection.
	liveFailureGrace = time.Second
	// liveEvents is how many events may wait for Recv.
	liveEvents = 256
	// systemPrefix marks system text added mid-call: Gemini Live takes
	// client content only in user turns.
	systemPrefix = "[Context for the assistant; the caller did not say this] "
	// respondPrompt asks for a response when Respond has no instructions.
	respondPrompt = "[The caller is waiting; continue the conversation.]"
)

// ErrLiveClosed is returned by a session's methods after Close.
var ErrLiveClosed = errors.New("google: Gemini Live session closed")

// liveSession is one BidiGenerateContent websocket.
//
// Goroutines: read (the service's messages to events) and write (the
// caller's audio to realtimeInput messages), both started by
// newLiveSession. They exit when Close is called, ctx ends, or the
// connection fails; Close waits for both.
//
// After a goAway, read moves the session to a new connection with the
// last resumption handle, at the first moment the model is not answering
// (resuming mid-generation loses it); writers take the connection current
// when they write.
type liveSession struct {
	connMu sync.RWMutex
	conn   *websocket.Conn
	secret string // the key or access token, only to redact it

	// reopen dials a new connection resuming the session with handle.
	reopen func(ctx context.Context, handle string) (*websocket.Conn, string, error)

	log    *slog.Logger
	parent context.Context // Connect's ctx, to report its end
	ctx    context.Context // cancelled by Close and when read ends
	cancel context.CancelFunc

	// The caller's audio, resampled to 16 kHz, waiting for write.
	audioMu   sync.Mutex
	up        *audio.Resampler
	queued    []int16
	maxQueued int
	dropped   int64 // samples dropped, guarded by audioMu
	wake      chan struct{}

	// events carries events to Recv; read closes it after setting err.
	events chan realtime.Event
	err    error
	done   chan struct{} // read has returned
	wrote  chan struct{} // write has returned

	closed    atomic.Bool
	closeOnce sync.Once
	// expecting is set by Respond and ToolResults: a turnComplete ends a
	// response even when the model said nothing.
	expecting atomic.Bool
	// ownContent is when clientContent was last sent (unix ns): the
	// interruption it causes in a turn being generated is ours, not the
	// caller's.
	ownContent atomic.Int64
	// awaitingTools: the model called tools and waits for their results;
	// the session does not move to a new connection meanwhile.
	awaitingTools atomic.Bool

	callMu  sync.Mutex
	noID    map[string]bool // call IDs made up for calls the service sent without one
	callSeq int

	// read's own state.
	down         *audio.Resampler
	pcm          audio.PCM16Splitter
	turn         int
	inTurn       bool
	itemID       string
	said         strings.Builder // outputTranscription of the turn
	heard        strings.Builder // inputTranscription not yet reported
	resumeHandle string          // the latest resumption handle
	moving       bool            // a goAway came: move at the next quiet moment
	// stale is set when a turn ended after the latest handle: a resumption
	// from it would replay the turn.
	stale bool
}

func newLiveSession(ctx context.Context, conn *websocket.Conn, log *slog.Logger, secret string, up, down *audio.Resampler, maxQueued int,
	reopen func(context.Context, string) (*websocket.Conn, string, error)) *liveSession {
	sctx, cancel := context.WithCancel(ctx)
	s := &liveSession{
		conn: conn, log: log, secret: secret, reopen: reopen, parent: ctx, ctx: sctx, cancel: cancel,
		up: up, maxQueued: max(maxQueued, liveBatch), wake: make(chan struct{}, 1),
		events: make(chan realtime.Event, liveEvents), done: make(chan struct{}), wrote: make(chan struct{}),
		noID: map[string]bool{}, down: down,
	}
	go s.read()
	go s.write()
	return s
}

// SendAudio resamples pcm to 16 kHz and queues it; the oldest audio goes
// when more than RealtimeConfig.AudioQueue waits. It never blocks on the
// network.
func (s *liveSession) SendAudio(pcm []int16) error {
	if err := s.sendable(); err != nil {
		return err
	}
	if len(pcm) == 0 {
		return nil
	}
	s.audioMu.Lock()
	s.queued = s.up.Process(s.queued, pcm)
	if over := len(s.queued) - s.maxQueued; over > 0 {
		if s.dropped == 0 {
			s.log.Warn("gemini live: the network is behind; dropping the oldest caller audio")
		}
		s.dropped += int64(over)
		s.queued = append(s.queued[:0], s.queued[over:]...)
	}
	s.audioMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	return nil
}

// write sends the queued audio in 40 ms batches.
func (s *liveSession) write() {
	defer close(s.wrote)
	buf := make([]byte, 0, 2*liveBatch*liveMaxBatches)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.wake:
		}
		for {
			s.audioMu.Lock()
			n := min(len(s.queued)/liveBatch, liveMaxBatches) * liveBatch
			buf = buf[:0]
			for _, v := range s.queued[:n] {
				buf = append(buf, byte(v), byte(uint16(v)>>8))
			}
			s.queued = append(s.queued[:0], s.queued[n:]...)
			s.audioMu.Unlock()
			if n == 0 {
				break
			}
			msg := liveClientMessage{RealtimeInput: &liveRealtimeInput{Audio: &liveBlob{
				MimeType: "audio/pcm;rate=16000", Data: base64.StdEncoding.EncodeToString(buf)}}}
			if conn, err := s.sendOn(msg); err != nil {
				if s.ctx.Err() != nil {
					return
				}
				_, secret := s.current()
				s.log.Debug("gemini live: sending audio failed; dropped a batch", "err", redactText(err.Error(), secret))
				s.failWrite(conn)
				break
			}
		}
	}
}

// failWrite waits for the reader to learn why conn broke: the session
// ends, or moves to a new connection. When neither happens in time, it
// drops conn, which makes the reader fail (or move).
func (s *liveSession) failWrite(conn *websocket.Conn) {
	deadline := time.NewTimer(liveFailureGrace)
	defer deadline.Stop()
	poll := time.NewTicker(20 * time.Millisecond)
	defer poll.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-deadline.C:
			_ = conn.CloseNow()
			return
		case <-poll.C:
			if cur, _ := s.current(); cur != conn {
				return
			}
		}
	}
}

// current is the connection in use and its secret.
func (s *liveSession) current() (*websocket.Conn, string) {
	s.connMu.RLock()
	defer s.connMu.RUnlock()
	return s.conn, s.secret
}

// send writes one message, bounded by liveWriteTimeout and the session.
func (s *liveSession) send(msg liveClientMessage) error {
	_, err := s.sendOn(msg)
	return err
}

// sendOn is send, returning the connection written to.
func (s *liveSession) sendOn(msg liveClientMessage) (*websocket.Conn, error) {
	b, err := marshal(msg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(s.ctx, liveWriteTimeout)
	defer cancel()
	// The read lock keeps a move from closing the connection mid-write.
	s.connMu.RLock()
	defer s.connMu.RUnlock()
	return s.conn, s.conn.Write(ctx, websocket.MessageText, b)
}

// control sends a message on behalf of a caller of the Session.
func (s *liveSession) control(ctx context.Context, doing string, msg liveClientMessage) error {
	if err := s.sendable(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("google: Gemini Live %s: %w", doing, err)
	}
	if err := s.send(msg); err != nil {
		return s.writeError(doing, err)
	}
	return nil
}

// writeError prefers the reader's explanation of a failed write.
func (s *liveSession) writeError(doing string, err error) error {
	if s.closed.Load() {
		return ErrLiveClosed
	}
	t := time.NewTimer(liveFailureGrace)
	defer t.Stop()
	select {
	case <-s.done:
		return s.err
	case <-t.C:
	}
	_, secret := s.current()
	return fmt.Errorf("google: Gemini Live %s: %s", doing, redactText(err.Error(), secret))
}

// sendable is ErrLiveClosed after Close, the reader's error once the
// session ended, else nil.
func (s *liveSession) sendable() error {
	if s.closed.Load() {
		return ErrLiveClosed
	}
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// AddMessage adds text to the conversation as a user turn without asking
// for a response. Gemini Live takes no system turns mid-call, so system
// text goes in a user turn marked as context.
func (s *liveSession) AddMessage(ctx context.Context, role llm.Role, text string) error {
	switch role {
	case llm.User:
	case llm.System:
		text = systemPrefix + text
	default:
		return fmt.Errorf("google: Gemini Live takes user or system messages, not %q", role)
	}
	s.ownContent.Store(time.Now().UnixNano())
	return s.control(ctx, "adding a message", liveClientMessage{ClientContent: &liveClientContent{
		Turns: []liveContent{{Role: "user", Parts: []livePart{{Text: text}}}}}})
}

// Respond asks for a response now: a user turn carrying the instructions
// (or a neutral prompt), with turnComplete.
func (s *liveSession) Respond(ctx context.Context, instructions string) error {
	if strings.TrimSpace(instructions) == "" {
		instructions = respondPrompt
	}
	s.expecting.Store(true)
	s.ownContent.Store(time.Now().UnixNano())
	return s.control(ctx, "asking for a response", liveClientMessage{ClientContent: &liveClientContent{
		Turns: []liveContent{{Role: "user", Parts: []livePart{{Text: instructions}}}}, TurnComplete: true}})
}

// ToolResults answers the calls in one toolResponse; the model goes on by
// itself. JSON output is passed as JSON, other text as a string, under
// response.output.
func (s *liveSession) ToolResults(ctx context.Context, results []realtime.ToolResult) error {
	if len(results) == 0 {
		return nil
	}
	resp := &liveToolResponse{FunctionResponses: make([]liveFunctionResponse, 0, len(results))}
	s.callMu.Lock()
	for _, r := range results {
		id := r.CallID
		if s.noID[id] {
			delete(s.noID, id)
			id = ""
		}
		var out any = r.Output
		if trimmed := strings.TrimSpace(r.Output); trimmed != "" && json.Valid([]byte(trimmed)) {
			out = json.RawMessage(trimmed)
		}
		resp.FunctionResponses = append(resp.FunctionResponses, liveFunctionResponse{ID: id, Name: r.Name, Response: map[string]any{"output": out}})
	}
	s.callMu.Unlock()
	s.expecting.Store(true)
	s.awaitingTools.Store(false)
	return s.control(ctx, "sending tool results", liveClientMessage{ToolResponse: resp})
}

// Truncate is nil: Gemini Live cuts its context itself when the caller
// interrupts.
func (s *liveSession) Truncate(context.Context, string, time.Duration) error { return s.sendable() }

// Cancel is nil: Gemini Live has no client message that stops a response;
// it stops by itself when it hears the caller (interrupted).
func (s *liveSession) Cancel(context.Context) error { return s.sendable() }

// Recv returns the next event; io.EOF after Close.
func (s *liveSession) Recv() (realtime.Event, error) {
	if s.closed.Load() {
		return realtime.Event{}, io.EOF
	}
	ev, ok := <-s.events
	if !ok {
		if s.closed.Load() {
			return realtime.Event{}, io.EOF
		}
		return realtime.Event{}, s.err
	}
	return ev, nil
}

// Close ends the session with a normal close frame (bounded) and waits for
// both goroutines. It is idempotent.
func (s *liveSession) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		conn, _ := s.current() // a move after this point is dropped
		t := time.AfterFunc(liveCloseTimeout, func() { _ = conn.CloseNow() })
		_ = conn.Close(websocket.StatusNormalClosure, "")
		t.Stop()
		s.cancel()
		_ = conn.CloseNow()
		<-s.done
		<-s.wrote
		s.audioMu.Lock()
		dropped := s.dropped
		s.audioMu.Unlock()
		s.log.Debug("gemini live session closed", "dropped_ms", dropped*1000/liveInRate)
	})
	return nil
}

// read turns the service's messages into events until the session ends.
// done is closed before events, so a caller who saw Recv fail finds the
// session ended everywhere.
func (s *liveSession) read() {
	err := s.readLoop()
	if s.closed.Load() {
		err = io.EOF
	} else if s.ctx.Err() != nil && s.parent.Err() != nil {
		err = fmt.Errorf("google: Gemini Live session ended: %w", s.parent.Err())
	}
	s.err = err
	s.cancel()
	conn, _ := s.current()
	_ = conn.CloseNow()
	if !errors.Is(err, io.EOF) {
		s.log.Debug("gemini live session failed", "err", err)
	}
	close(s.done)
	close(s.events)
}

func (s *liveSession) readLoop() error {
	for {
		conn, secret := s.current()
		_, data, err := conn.Read(s.ctx)
		if err != nil {
			if s.closed.Load() {
				return io.EOF
			}
			if s.moving && s.ctx.Err() == nil {
				// The old connection ended before a quiet moment: the
				// answer in progress is lost.
				if s.inTurn {
					s.down.Reset()
					s.pcm.Reset()
					if err := s.endTurn(true); err != nil {
						return err
					}
				}
				if merr := s.move(); merr == nil {
					if err := s.emit(realtime.Event{Type: realtime.Warning, Text: resumedWarning + " (the connection ended first; an answer in progress was lost)"}); err != nil {
						return err
					}
					continue
				}
			}
			return liveReadError(s.ctx, err, secret, false, "reading")
		}
		m, err := decodeServerMessage(data)
		if err != nil {
			return err
		}
		if err := s.handle(m); err != nil {
			return err
		}
	}
}

// emit passes an event to Recv.
func (s *liveSession) emit(ev realtime.Event) error {
	select {
	case s.events <- ev:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// handle maps one server message onto events.
func (s *liveSession) handle(m *liveServerMessage) error {
	switch {
	case m.ServerContent != nil:
		return s.content(m.ServerContent)
	case m.ToolCall != nil:
		return s.toolCall(m.ToolCall)
	case m.ToolCallCancellation != nil:
		return s.emit(realtime.Event{Type: realtime.Warning,
			Text: "google: Gemini Live cancelled tool calls " + strings.Join(m.ToolCallCancellation.IDs, ", ") + " (the caller interrupted); their results are no longer wanted"})
	case m.GoAway != nil:
		left := parseTimeLeft(m.GoAway.TimeLeft)
		if s.resumeHandle == "" {
			return s.emit(realtime.Event{Type: realtime.Warning,
				Text: fmt.Sprintf("google: Gemini Live will end this connection in %v (goAway) and gave no resumption handle; the session ends then", left)})
		}
		s.log.Debug("gemini live: goAway; the session moves to a new connection", "time_left", left)
		s.moving = true
		return s.moveWhenQuiet()
	case m.SessionResumptionUpdate != nil:
		if u := m.SessionResumptionUpdate; u.Resumable && u.NewHandle != "" {
			s.resumeHandle, s.stale = u.NewHandle, false
			return s.moveWhenQuiet()
		}
		return nil
	case m.Error != nil:
		_, secret := s.current()
		return fmt.Errorf("google: Gemini Live error %d %s: %s", m.Error.Code, m.Error.Status, redactText(clipText(m.Error.Message), secret))
	case m.SetupComplete != nil, m.UsageMetadata != nil:
		return nil
	}
	s.log.Debug("gemini live: ignoring an unknown message")
	return nil
}

// moveWhenQuiet moves the session after a goAway once the model is not
// answering (nor waiting for tool results) and the latest handle covers
// every turn: at once when the goAway finds it so, else at the handle the
// service sends after the turn (or, when none comes, when the old
// connection ends). A failed move is a warning and the old connection
// serves until it ends.
func (s *liveSession) moveWhenQuiet() error {
	// Not while an answer is due: asked for and not begun, or after tool
	// results still to come.
	if !s.moving || s.inTurn || s.stale || s.expecting.Load() || s.awaitingTools.Load() {
		return nil
	}
	if err := s.move(); err != nil {
		return s.emit(realtime.Event{Type: realtime.Warning,
			Text: "google: Gemini Live asked to reconnect (goAway) and resuming the session failed: " + err.Error() + "; the session ends with this connection"})
	}
	return s.emit(realtime.Event{Type: realtime.Warning, Text: resumedWarning})
}

const resumedWarning = "google: Gemini Live asked to reconnect (goAway); the session resumed on a new connection"

// move resumes the session on a new connection and drops the old one.
func (s *liveSession) move() error {
	s.moving = false
	conn, secret, err := s.reopen(s.ctx, s.resumeHandle)
	if err != nil {
		return err
	}
	s.connMu.Lock()
	if s.closed.Load() {
		s.connMu.Unlock()
		_ = conn.CloseNow()
		return ErrLiveClosed
	}
	old := s.conn
	s.conn, s.secret = conn, secret
	s.connMu.Unlock()
	_ = old.CloseNow()
	s.log.Debug("gemini live session resumed on a new connection")
	return nil
}

// content handles one serverContent: transcriptions, an interruption, the
// model's audio and the end of its turn, in that order.
func (s *liveSession) content(c *liveServerContent) error {
	if c.InputTranscription != nil {
		s.heard.WriteString(c.InputTranscription.Text)
	}
	if c.Interrupted {
		// Our own clientContent (a say, a context note) interrupts a turn
		// being generated too; only the caller's speech is a barge-in.
		own := time.Since(time.Unix(0, s.ownContent.Load())) < ownInterruptWindow
		if !own {
			if err := s.emit(realtime.Event{Type: realtime.SpeechStarted}); err != nil {
				return err
			}
		}
		switch {
		case s.inTurn:
			s.down.Reset()
			s.pcm.Reset()
			if err := s.endTurn(true); err != nil {
				return err
			}
		case !own && s.expecting.Swap(false):
			// An answer asked for and cut off before its first word.
			s.turn++
			if err := s.emit(realtime.Event{Type: realtime.ResponseDone, ItemID: fmt.Sprintf("turn-%d", s.turn), Cancelled: true}); err != nil {
				return err
			}
		}
	}
	if c.ModelTurn != nil {
		for _, p := range c.ModelTurn.Parts {
			if p.InlineData == nil || p.InlineData.Data == "" {
				continue // thoughts and text: the transcription is what was said
			}
			if err := s.audio(p.InlineData); err != nil {
				return err
			}
		}
	}
	if c.OutputTranscription != nil && c.OutputTranscription.Text != "" {
		switch {
		case s.inTurn || s.expecting.Load():
			if err := s.startTurn(); err != nil {
				return err
			}
			s.said.WriteString(c.OutputTranscription.Text)
		default:
			// Transcription of a turn already ended (it lags the audio).
			s.log.Debug("gemini live: output transcription after its turn; dropped", "text_len", len(c.OutputTranscription.Text))
		}
	}
	if c.TurnComplete {
		switch {
		case s.inTurn:
			if tail := s.down.Flush(nil); len(tail) > 0 {
				if err := s.emit(realtime.Event{Type: realtime.Audio, ItemID: s.itemID, Audio: tail}); err != nil {
					return err
				}
			}
			if s.pcm.Pending() {
				s.log.Debug("gemini live: the turn's audio ended with half a sample; dropped it")
				s.pcm.Reset()
			}
			if err := s.flushHeard(); err != nil {
				return err
			}
			return s.endTurn(false)
		case s.expecting.Swap(false):
			// A response that said nothing.
			if err := s.flushHeard(); err != nil {
				return err
			}
			s.turn++
			s.stale = s.resumeHandle != ""
			return s.emit(realtime.Event{Type: realtime.ResponseDone, ItemID: fmt.Sprintf("turn-%d", s.turn)})
		default:
			return s.flushHeard()
		}
	}
	return nil
}

// audio decodes a piece of the model's 24 kHz PCM and passes it on at 8 kHz.
func (s *liveSession) audio(b *liveBlob) error {
	if b.MimeType != "" && !strings.HasPrefix(b.MimeType, "audio/pcm") {
		return fmt.Errorf("google: Gemini Live sent %q audio, want audio/pcm", b.MimeType)
	}
	if rate := mimeRate(b.MimeType); rate != 0 && rate != liveOutRate {
		return fmt.Errorf("google: Gemini Live sent audio at %d Hz, want %d", rate, liveOutRate)
	}
	raw, err := base64.StdEncoding.DecodeString(b.Data)
	if err != nil {
		return fmt.Errorf("google: Gemini Live audio is not base64: %w", err)
	}
	if err := s.startTurn(); err != nil {
		return err
	}
	out := s.down.Process(nil, s.pcm.Decode(raw))
	if len(out) == 0 {
		return nil
	}
	return s.emit(realtime.Event{Type: realtime.Audio, ItemID: s.itemID, Audio: out})
}

// mimeRate reads rate=N from "audio/pcm;rate=24000"; 0 when absent.
func mimeRate(mime string) int {
	for _, p := range strings.Split(mime, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(p), "rate="); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

// startTurn begins the model's turn "turn-N" at its first audio, text or
// tool call, reporting first what the caller said before it.
func (s *liveSession) startTurn() error {
	if s.inTurn {
		return nil
	}
	s.turn++
	s.inTurn, s.itemID = true, fmt.Sprintf("turn-%d", s.turn)
	s.said.Reset()
	s.expecting.Store(false)
	return s.flushHeard()
}

// endTurn reports the end of the model's turn.
func (s *liveSession) endTurn(cancelled bool) error {
	ev := realtime.Event{Type: realtime.ResponseDone, ItemID: s.itemID, Text: strings.TrimSpace(s.said.String()), Cancelled: cancelled}
	s.inTurn, s.stale = false, s.resumeHandle != ""
	s.said.Reset()
	return s.emit(ev)
}

// flushHeard reports the caller's transcript gathered so far.
func (s *liveSession) flushHeard() error {
	text := strings.TrimSpace(s.heard.String())
	s.heard.Reset()
	if text == "" {
		return nil
	}
	return s.emit(realtime.Event{Type: realtime.UserTranscript, Text: text})
}

// toolCall reports the model's function calls as one event.
func (s *liveSession) toolCall(tc *liveToolCall) error {
	if len(tc.FunctionCalls) == 0 {
		return nil
	}
	if err := s.startTurn(); err != nil {
		return err
	}
	calls := make([]llm.ToolCall, 0, len(tc.FunctionCalls))
	s.callMu.Lock()
	for _, fc := range tc.FunctionCalls {
		id := fc.ID
		if id == "" {
			s.callSeq++
			id = fmt.Sprintf("call-%d", s.callSeq)
			s.noID[id] = true
		}
		args := strings.TrimSpace(string(fc.Args))
		if args == "" || args == "null" {
			args = "{}"
		}
		calls = append(calls, llm.ToolCall{ID: id, Name: fc.Name, Arguments: args})
	}
	s.callMu.Unlock()
	// The calls end this response (realtime.ToolCalls): what the model
	// said before them goes with them, and it goes on in a new turn after
	// the results.
	if tail := s.down.Flush(nil); len(tail) > 0 {
		if err := s.emit(realtime.Event{Type: realtime.Audio, ItemID: s.itemID, Audio: tail}); err != nil {
			return err
		}
	}
	s.pcm.Reset()
	ev := realtime.Event{Type: realtime.ToolCalls, ItemID: s.itemID, Calls: calls, Text: strings.TrimSpace(s.said.String())}
	s.inTurn, s.stale = false, s.resumeHandle != ""
	s.said.Reset()
	s.awaitingTools.Store(true)
	return s.emit(ev)
}

// ownInterruptWindow is how long after our own clientContent an
// interruption is taken for its effect rather than the caller's speech.
const ownInterruptWindow = time.Second
