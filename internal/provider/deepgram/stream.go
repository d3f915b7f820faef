package deepgram

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/stt"
)

// ErrClosed is returned by Write and Finalize after Close.
var ErrClosed = errors.New("deepgram: stream is closed")

// CloseError reports that Deepgram ended a stream with a websocket close
// frame other than the normal closure that answers CloseStream.
type CloseError struct {
	Code   int    // websocket status, e.g. 1008 or 1011
	Reason string // the close frame's reason, e.g. "NET-0001"
	// Detail is the text of an in-band Error message received before the
	// close, if any.
	Detail string
}

// Error describes the close status, reason and what it means.
func (e *CloseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deepgram: server closed the stream: status %d", e.Code)
	if name := closeCodeName(e.Code); name != "" {
		fmt.Fprintf(&b, " (%s)", name)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, ", reason %q", e.Reason)
	}
	if hint := closeReasonHint(e.Reason); hint != "" {
		fmt.Fprintf(&b, ": %s", hint)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

func closeCodeName(code int) string {
	switch websocket.StatusCode(code) {
	case websocket.StatusNormalClosure:
		return "normal closure"
	case websocket.StatusGoingAway:
		return "going away"
	case websocket.StatusProtocolError:
		return "protocol error"
	case websocket.StatusUnsupportedData:
		return "unsupported data"
	case websocket.StatusNoStatusRcvd:
		return "no status"
	case websocket.StatusInvalidFramePayloadData:
		return "invalid payload"
	case websocket.StatusPolicyViolation:
		return "policy violation"
	case websocket.StatusMessageTooBig:
		return "message too big"
	case websocket.StatusInternalError:
		return "internal error"
	case websocket.StatusServiceRestart:
		return "service restart"
	case websocket.StatusTryAgainLater:
		return "try again later"
	}
	return ""
}

// closeReasonHint explains Deepgram's documented close reasons.
func closeReasonHint(reason string) string {
	switch {
	case strings.Contains(reason, "NET-0001"):
		return "no audio or KeepAlive reached Deepgram in time"
	case strings.Contains(reason, "NET-0000"):
		return "Deepgram's service is unavailable"
	case strings.Contains(reason, "DATA-0000"):
		return "Deepgram could not decode the audio (check encoding and sample rate)"
	}
	return ""
}

// outMsg is one queued message for the writer goroutine.
type outMsg struct {
	data []byte
	text bool // a JSON control message rather than audio
}

// Stream is one live Deepgram recognition session; Open returns it as an
// stt.Stream. Write, Finalize, Recv and Close may be called from different
// goroutines.
//
// The stream owns two goroutines: a writer that drains the audio queue and
// sends KeepAlives, and a reader that turns server messages into events.
// Both exit when the server closes the socket, when Close finishes or when
// the Open context ends.
type Stream struct {
	conn         *websocket.Conn
	log          *slog.Logger
	keepAlive    time.Duration
	closeTimeout time.Duration
	maxFrames    int

	parent context.Context    // Open's context, to tell its end from ours
	ctx    context.Context    // ends both goroutines
	cancel context.CancelFunc // cancels ctx

	wake       chan struct{} // cap 1: the writer has work
	readerDone chan struct{} // closed when the reader has exited
	writerDone chan struct{} // closed when the writer has exited

	// events carries the reader's events to Recv; the reader finishes it
	// with what Recv returns once they are drained.
	events stt.Queue

	mu          sync.Mutex
	queue       []outMsg
	audioQueued int
	dropped     int64
	closing     bool // Close was called
	serverError string
	writeErr    error // why the writer stopped early, if it did

	closeOnce sync.Once
	closeErr  error
}

var _ stt.Stream = (*Stream)(nil)

func newStream(ctx context.Context, conn *websocket.Conn, log *slog.Logger, cfg Config) *Stream {
	sctx, cancel := context.WithCancel(ctx)
	s := &Stream{
		conn:         conn,
		log:          log,
		keepAlive:    cfg.KeepAlive,
		closeTimeout: cfg.CloseTimeout,
		maxFrames:    cfg.QueueFrames,
		parent:       ctx,
		ctx:          sctx,
		cancel:       cancel,
		wake:         make(chan struct{}, 1),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
	}
	go s.readLoop()
	go s.writeLoop()
	return s
}

// Write queues pcm (mono 16-bit at the configured sample rate) for sending.
// It copies pcm and never blocks on the network: when the queue is full the
// oldest queued frame is dropped and counted (see Dropped).
func (s *Stream) Write(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	buf := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		binary.LittleEndian.PutUint16(buf[2*i:], uint16(v))
	}

	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	var dropped int64
	if s.audioQueued >= s.maxFrames {
		s.dropOldestAudioLocked()
		dropped = s.dropped
	}
	s.queue = append(s.queue, outMsg{data: buf})
	s.audioQueued++
	s.mu.Unlock()

	s.notifyWriter()
	if dropped == 1 || (dropped > 0 && dropped%100 == 0) {
		s.log.Warn("deepgram: send queue full, dropping oldest audio", "dropped_frames", dropped)
	}
	return nil
}

// Finalize asks Deepgram to finish the speech in progress now, after the
// audio already written. Its results arrive through Recv.
func (s *Stream) Finalize() error {
	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.queue = append(s.queue, outMsg{data: []byte(msgFinalize), text: true})
	s.mu.Unlock()
	s.notifyWriter()
	return nil
}

// Dropped reports how many audio frames were dropped because the send
// queue was full.
func (s *Stream) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// writableLocked says whether audio may still be queued.
func (s *Stream) writableLocked() error {
	if s.closing {
		return ErrClosed
	}
	if s.events.Finished() {
		return fmt.Errorf("deepgram: stream has ended: %w", s.events.Err())
	}
	return nil
}

// dropOldestAudioLocked removes the oldest queued audio frame, keeping
// control messages in place.
func (s *Stream) dropOldestAudioLocked() {
	for i, m := range s.queue {
		if m.text {
			continue
		}
		if i == 0 {
			s.queue[0] = outMsg{}
			s.queue = s.queue[1:]
		} else {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
		}
		s.audioQueued--
		s.dropped++
		return
	}
}

func (s *Stream) notifyWriter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Recv blocks for the next event. After Close it returns the remaining
// events and then io.EOF; if the server or the network broke the stream it
// returns the remaining events and then that error.
func (s *Stream) Recv() (stt.Event, error) { return s.events.Recv() }

// Close flushes the queued audio, sends CloseStream and waits (at most
// Config.CloseTimeout) for Deepgram to send its last results and close the
// socket. Afterwards Recv returns the remaining events and io.EOF. Close is
// idempotent; it returns an error only when the server did not finish in
// time.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Stream) close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.notifyWriter()

	var err error
	timer := time.NewTimer(s.closeTimeout)
	select {
	case <-s.readerDone:
	case <-timer.C:
		err = fmt.Errorf("deepgram: closing stream: server did not finish within %s", s.closeTimeout)
	}
	timer.Stop()

	s.cancel()
	<-s.readerDone
	<-s.writerDone
	_ = s.conn.CloseNow() // usually already closed; releases it otherwise
	return err
}

// writeLoop is the only sender: queued audio and control messages in
// order, KeepAlive when no audio went out for the keep-alive interval, and
// CloseStream once Close has been called and the queue is drained.
func (s *Stream) writeLoop() {
	defer close(s.writerDone)
	timer := time.NewTimer(s.keepAlive)
	defer timer.Stop()
	lastSent := time.Now()

	for {
		msg, ok, closing := s.nextOut()
		switch {
		case ok:
			typ := websocket.MessageBinary
			if msg.text {
				typ = websocket.MessageText
			}
			if err := s.conn.Write(s.ctx, typ, msg.data); err != nil {
				s.writeFailed("sending audio", err)
				return
			}
			if !msg.text {
				lastSent = time.Now()
			}
			continue
		case closing:
			if err := s.conn.Write(s.ctx, websocket.MessageText, []byte(msgCloseStream)); err != nil {
				s.writeFailed("sending CloseStream", err)
			}
			return
		}

		wait := s.keepAlive - time.Since(lastSent)
		if wait <= 0 {
			if err := s.conn.Write(s.ctx, websocket.MessageText, []byte(msgKeepAlive)); err != nil {
				s.writeFailed("sending KeepAlive", err)
				return
			}
			lastSent = time.Now()
			continue
		}
		timer.Reset(wait)
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.ctx.Done():
			return
		}
	}
}

// nextOut pops the next queued message; closing reports that Close was
// called (and the queue is empty when ok is false).
func (s *Stream) nextOut() (msg outMsg, ok, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		msg = s.queue[0]
		s.queue[0] = outMsg{}
		s.queue = s.queue[1:]
		if !msg.text {
			s.audioQueued--
		}
		return msg, true, s.closing
	}
	return outMsg{}, false, s.closing
}

// writeFailed handles a failed send. Normally the reader sees the same
// broken connection (usually with the server's close frame, which explains
// more) and reports it through Recv; if it does not within a second, the
// connection is cut so that Recv cannot hang on a half-dead socket.
func (s *Stream) writeFailed(what string, err error) {
	if s.ctx.Err() != nil {
		return
	}
	s.log.Debug("deepgram: "+what+" failed", "err", err)
	s.mu.Lock()
	s.writeErr = fmt.Errorf("deepgram: %s: %w", what, err)
	s.mu.Unlock()
	grace := time.NewTimer(time.Second)
	defer grace.Stop()
	select {
	case <-s.readerDone:
	case <-s.ctx.Done():
	case <-grace.C:
		_ = s.conn.CloseNow()
	}
}

// readLoop is the only reader: it turns server messages into events until
// the socket closes, then records why for Recv.
func (s *Stream) readLoop() {
	var err error
	for {
		typ, data, rerr := s.conn.Read(s.ctx)
		if rerr != nil {
			err = s.readError(rerr)
			break
		}
		if typ != websocket.MessageText {
			continue
		}
		m, perr := parseMessage(data)
		if perr != nil {
			s.log.Warn("deepgram: ignoring malformed message", "err", perr)
			continue
		}
		switch {
		case m.hasEvent:
			s.events.Push(m.event)
		case m.kind == "Metadata":
			s.log.Debug("deepgram: stream metadata", "info", m.info)
		case m.kind == "Error":
			s.log.Warn("deepgram: server reported an error", "error", m.info)
			s.mu.Lock()
			s.serverError = m.info
			s.mu.Unlock()
		}
	}

	s.events.Finish(err)
	if err != io.EOF {
		s.log.Debug("deepgram stream ended", "err", err)
	}
	// The writer has nothing left to do on a dead socket.
	s.cancel()
	close(s.readerDone)
}

// readError decides what Recv reports once reading stopped.
func (s *Stream) readError(err error) error {
	s.mu.Lock()
	closing, detail, writeErr := s.closing, s.serverError, s.writeErr
	s.mu.Unlock()

	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure && closing {
			return io.EOF
		}
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason, Detail: detail}
	}
	if closing {
		// Close cut the connection after its timeout; Close reports that.
		return io.EOF
	}
	if perr := s.parent.Err(); perr != nil {
		return fmt.Errorf("deepgram: stream context ended: %w", perr)
	}
	if writeErr != nil {
		return writeErr
	}
	return fmt.Errorf("deepgram: reading from stream: %w", err)
}
