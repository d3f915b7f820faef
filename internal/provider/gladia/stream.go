package gladia

import (
	"context"
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

// ErrClosed is returned by Write after Close.
var ErrClosed = errors.New("gladia: stream is closed")

// CloseError reports that Gladia ended a stream with a websocket close
// other than the normal closure that answers stop_recording.
type CloseError struct {
	Code   int    // websocket status, e.g. 1011
	Reason string // the close frame's reason
	// Detail is the text of an "error" message received before the close,
	// if any.
	Detail string
}

// Error describes the close status, reason and Gladia's error message.
func (e *CloseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gladia: server closed the stream: status %d (%s)", e.Code, websocket.StatusCode(e.Code))
	if e.Reason != "" {
		fmt.Fprintf(&b, ", reason %q", e.Reason)
	}
	if e.Detail != "" {
		fmt.Fprintf(&b, ": %s", e.Detail)
	}
	return b.String()
}

// Stream is one live Gladia session; Open returns it as an stt.Stream.
// Write, Recv and Close may be called from different goroutines.
//
// The stream owns two goroutines: a writer that sends the queued audio
// chunks (and stop_recording on Close), and a reader that turns server
// messages into events. Both exit when the server closes the socket, when
// Close finishes or when the Open context ends.
type Stream struct {
	conn         *websocket.Conn
	log          *slog.Logger
	closeTimeout time.Duration
	maxChunks    int

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
	enc         *encoder
	pending     []byte   // encoded audio not yet a whole chunk
	queue       [][]byte // chunks waiting for the writer
	dropped     int64    // chunks dropped because the queue was full
	closing     bool     // Close was called; the queue ends with stop_recording
	serverError string
	writeErr    error

	closeOnce sync.Once
	closeErr  error
}

var _ stt.Stream = (*Stream)(nil)

func newStream(ctx context.Context, conn *websocket.Conn, log *slog.Logger, enc *encoder, cfg Config) *Stream {
	sctx, cancel := context.WithCancel(ctx)
	s := &Stream{
		conn:         conn,
		log:          log,
		closeTimeout: cfg.CloseTimeout,
		maxChunks:    cfg.QueueChunks,
		parent:       ctx,
		ctx:          sctx,
		cancel:       cancel,
		wake:         make(chan struct{}, 1),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
		enc:          enc,
	}
	go s.readLoop()
	go s.writeLoop()
	return s
}

// Write encodes pcm (mono 16-bit at the configured sample rate) and queues
// it in ~100 ms chunks. It never blocks on the network: when the queue is
// full the oldest chunk is dropped and counted (see Dropped).
func (s *Stream) Write(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.pending = s.enc.encode(s.pending, pcm)
	queued := s.queueChunksLocked(s.enc.chunkBytes())
	dropped := s.dropped
	s.mu.Unlock()

	if queued {
		s.notifyWriter()
	}
	if dropped > 0 && queued && (dropped == 1 || dropped%50 == 0) {
		s.log.Warn("gladia: send queue full, dropping oldest audio", "dropped_chunks", dropped)
	}
	return nil
}

// queueChunksLocked moves whole chunks of at least size bytes from pending
// to the queue (everything when size is 0) and reports whether it queued.
func (s *Stream) queueChunksLocked(size int) bool {
	queued := false
	for len(s.pending) > 0 && len(s.pending) >= size {
		n := len(s.pending)
		if size > 0 {
			n = size
		}
		chunk := append([]byte(nil), s.pending[:n]...)
		s.pending = append(s.pending[:0], s.pending[n:]...)
		if len(s.queue) >= s.maxChunks {
			s.queue[0] = nil
			s.queue = s.queue[1:]
			s.dropped++
		}
		s.queue = append(s.queue, chunk)
		queued = true
	}
	return queued
}

// Dropped reports how many audio chunks were dropped because the send
// queue was full.
func (s *Stream) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Stream) writableLocked() error {
	if s.closing {
		return ErrClosed
	}
	if s.events.Finished() {
		return fmt.Errorf("gladia: stream has ended: %w", s.events.Err())
	}
	return nil
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

// Close sends the audio still buffered, then stop_recording, and waits (at
// most Config.CloseTimeout) for Gladia to send its last results and close
// the socket. Afterwards Recv returns the remaining events and io.EOF.
// Close is idempotent; it returns an error only when the server did not
// finish in time.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Stream) close() error {
	s.mu.Lock()
	if !s.closing && !s.events.Finished() {
		s.pending = s.enc.flush(s.pending)
		s.queueChunksLocked(0)
	}
	s.closing = true
	s.mu.Unlock()
	s.notifyWriter()

	var err error
	timer := time.NewTimer(s.closeTimeout)
	select {
	case <-s.readerDone:
	case <-timer.C:
		err = fmt.Errorf("gladia: closing stream: server did not finish within %s", s.closeTimeout)
	}
	timer.Stop()

	s.cancel()
	<-s.readerDone
	<-s.writerDone
	_ = s.conn.CloseNow() // usually already closed; releases it otherwise
	return err
}

// writeLoop is the only sender: queued audio chunks in order as binary
// frames, then stop_recording once Close has been called and the queue is
// drained.
func (s *Stream) writeLoop() {
	defer close(s.writerDone)
	for {
		chunk, ok, closing := s.nextChunk()
		switch {
		case ok:
			if err := s.conn.Write(s.ctx, websocket.MessageBinary, chunk); err != nil {
				s.writeFailed("sending audio", err)
				return
			}
			continue
		case closing:
			if err := s.conn.Write(s.ctx, websocket.MessageText, []byte(msgStopRecording)); err != nil {
				s.writeFailed("sending stop_recording", err)
			}
			return
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			return
		}
	}
}

// nextChunk pops the next queued chunk; closing reports that Close was
// called.
func (s *Stream) nextChunk() (chunk []byte, ok, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 {
		chunk = s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		return chunk, true, s.closing
	}
	return nil, false, s.closing
}

// writeFailed records a failed send. The reader normally sees the same
// broken connection and reports it; if it does not within a second the
// connection is cut so that Recv cannot hang on a half-dead socket.
func (s *Stream) writeFailed(what string, err error) {
	if s.ctx.Err() != nil {
		return
	}
	s.log.Debug("gladia: "+what+" failed", "err", err)
	s.mu.Lock()
	s.writeErr = fmt.Errorf("gladia: %s: %w", what, err)
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
// the socket closes or a message cannot be decoded, then records why for
// Recv.
func (s *Stream) readLoop() {
	var err error
	for err == nil {
		typ, data, rerr := s.conn.Read(s.ctx)
		if rerr != nil {
			err = s.readError(rerr)
			break
		}
		if typ == websocket.MessageText {
			err = s.handle(data)
		}
	}

	s.events.Finish(err)
	if err != io.EOF {
		s.log.Debug("gladia stream ended", "err", err)
	}
	s.cancel() // the writer has nothing left to do
	_ = s.conn.CloseNow()
	close(s.readerDone)
}

// handle processes one server message. A message that cannot be decoded
// ends the stream: the session's state can no longer be trusted.
func (s *Stream) handle(data []byte) error {
	m, err := parseMessage(data)
	if err != nil {
		return fmt.Errorf("gladia: malformed server message: %w", err)
	}
	if m.serverError != "" {
		s.log.Warn("gladia: server reported an error", "message_type", m.kind, "error", m.serverError)
		s.mu.Lock()
		s.serverError = m.serverError
		s.mu.Unlock()
	}
	if m.hasEvent {
		s.events.Push(m.event)
	}
	return nil
}

// readError decides what Recv reports once reading stopped.
func (s *Stream) readError(err error) error {
	s.mu.Lock()
	closing, detail, writeErr := s.closing, s.serverError, s.writeErr
	s.mu.Unlock()

	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure && closing {
			return io.EOF // errors reported on the way were logged
		}
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason, Detail: detail}
	}
	if closing {
		// Close cut the connection after its timeout; Close reports that.
		return io.EOF
	}
	if perr := s.parent.Err(); perr != nil {
		return fmt.Errorf("gladia: stream context ended: %w", perr)
	}
	if writeErr != nil {
		return writeErr
	}
	return fmt.Errorf("gladia: reading from stream: %w", err)
}
