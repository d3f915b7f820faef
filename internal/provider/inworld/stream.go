package inworld

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/tts"
)

// stream is one websocket carrying one synthesis context.
//
// Send and Flush are called from one goroutine (the pipeline's text side)
// while Recv runs in another (its audio side); Close may be called from any
// goroutine, at any time, any number of times. Writes are serialised.
//
// Goroutines: readLoop, started by newStream, is the only one. It exits
// when the context closes, the service fails or disconnects, ctx is
// cancelled or Close is called; Close waits for it.
type stream struct {
	conn      *websocket.Conn
	log       *slog.Logger
	key       string // only to redact it from server-supplied text
	contextID string
	conv      *converter      // used by readLoop only
	parent    context.Context // Open's ctx, to report its cancellation
	ctx       context.Context // cancelled by Close and when readLoop ends
	cancel    context.CancelFunc

	sendMu  sync.Mutex
	flushed bool // guarded by sendMu

	closed atomic.Bool // Close was called

	// chunks carries decoded audio to Recv; readLoop closes it after
	// setting err.
	chunks chan tts.Chunk
	err    error // why the audio ended (io.EOF when it ended well)
	// done is closed when readLoop has returned and the connection is
	// closed.
	done      chan struct{}
	closeOnce sync.Once
}

// streamParams are what newStream needs besides the connection.
type streamParams struct {
	log       *slog.Logger
	key       string
	contextID string
	conv      *converter
}

// newStream wraps an open connection and starts its reader.
func newStream(ctx context.Context, conn *websocket.Conn, p streamParams) *stream {
	sctx, cancel := context.WithCancel(ctx)
	s := &stream{
		conn:      conn,
		log:       p.log,
		key:       p.key,
		contextID: p.contextID,
		conv:      p.conv,
		parent:    ctx,
		ctx:       sctx,
		cancel:    cancel,
		chunks:    make(chan tts.Chunk, chunkBuffer),
		done:      make(chan struct{}),
	}
	go s.readLoop()
	return s
}

// Send queues text to speak, normally a whole sentence, and asks the
// service to synthesise it at once: send_text then flush_context. Blank
// text is ignored. Sending after Flush is an error.
func (s *stream) Send(text string) error {
	if isBlank(text) {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	if s.flushed {
		return errors.New("inworld: Send after Flush")
	}
	if err := s.write(clientMessage{ContextID: s.contextID, SendText: &sendText{Text: text + " "}}); err != nil {
		return s.writeError("sending text", err)
	}
	if err := s.write(clientMessage{ContextID: s.contextID, FlushContext: &struct{}{}}); err != nil {
		return s.writeError("flushing text", err)
	}
	return nil
}

// Flush closes the context: the service speaks what it still holds, sends
// contextClosed, and Recv then returns io.EOF. Flushing twice is a no-op.
func (s *stream) Flush() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.flushed {
		return nil
	}
	s.flushed = true
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.write(clientMessage{ContextID: s.contextID, CloseContext: &struct{}{}}); err != nil {
		return s.writeError("closing the synthesis context", err)
	}
	return nil
}

// Recv returns the next chunk of audio, io.EOF after the last one, ErrClosed
// after Close, or what went wrong (a *ServerError when the service said so).
func (s *stream) Recv() (tts.Chunk, error) {
	if s.closed.Load() {
		return tts.Chunk{}, ErrClosed
	}
	c, ok := <-s.chunks
	if !ok {
		return tts.Chunk{}, s.err
	}
	return c, nil
}

// Close drops the websocket at once (barge-in, hang-up), unblocks Recv and
// waits for the reader goroutine. Call it also after io.EOF.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		_ = s.conn.CloseNow()
		<-s.done
		s.log.Debug("inworld stream closed")
	})
	return nil
}

// readLoop delivers the service's audio to Recv until the stream ends.
func (s *stream) readLoop() {
	defer close(s.done)
	err := s.read()
	s.err = err
	close(s.chunks)
	if errors.Is(err, io.EOF) {
		// The context is closed; end the connection politely.
		_ = s.conn.Close(websocket.StatusNormalClosure, "")
	} else if !errors.Is(err, ErrClosed) {
		s.log.Debug("inworld stream failed", "err", err)
	}
	s.cancel()
	_ = s.conn.CloseNow()
}

// read reads messages until contextClosed or a failure.
func (s *stream) read() error {
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			return s.readError(err)
		}
		if typ != websocket.MessageText {
			continue
		}
		end, err := s.handle(data)
		if err != nil || end {
			return err
		}
	}
}

// handle processes one server message; end reports contextClosed, after
// which it returns io.EOF.
func (s *stream) handle(data []byte) (end bool, err error) {
	var m serverMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return false, fmt.Errorf("inworld: decoding server message: %w", err)
	}
	if m.Error != nil && (m.Error.Code != 0 || m.Error.Message != "") {
		return false, s.statusError(m.Error)
	}
	r := m.Result
	if r == nil {
		return false, errors.New("inworld: decoding server message: neither result nor error")
	}
	if r.ContextID != "" && r.ContextID != s.contextID {
		s.log.Debug("inworld message for another context ignored", "other", r.ContextID)
		return false, nil
	}
	if r.Status != nil && r.Status.Code != 0 {
		return false, s.statusError(r.Status)
	}
	if r.AudioChunk != nil && r.AudioChunk.AudioContent != "" {
		pcm, err := s.conv.decode(r.AudioChunk.AudioContent)
		if err != nil {
			return false, fmt.Errorf("inworld: %w", err)
		}
		if err := s.deliver(pcm); err != nil {
			return false, err
		}
	}
	if r.ContextClosed != nil {
		return true, s.finish()
	}
	return false, nil
}

// finish delivers the resampler's tail and returns io.EOF.
func (s *stream) finish() error {
	tail, partial := s.conv.finish()
	if partial {
		s.log.Warn("inworld audio ended with part of a sample; dropped it")
	}
	if err := s.deliver(tail); err != nil {
		return err
	}
	return io.EOF
}

// deliver hands non-empty audio to Recv.
func (s *stream) deliver(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	select {
	case s.chunks <- tts.Chunk{PCM: pcm}:
		return nil
	case <-s.ctx.Done():
		return s.ctxError()
	}
}

func (s *stream) statusError(st *rpcStatus) error {
	return &ServerError{Code: st.Code, Message: redact.Key(st.Message, s.key)}
}

// readError explains why reading failed.
func (s *stream) readError(err error) error {
	if s.ctx.Err() != nil {
		return s.ctxError()
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure {
			return errors.New("inworld: the service closed the connection before the context was closed")
		}
		return &ServerError{CloseStatus: int(ce.Code), Message: redact.Key(ce.Reason, s.key)}
	}
	return fmt.Errorf("inworld: reading audio: %s", redact.Key(err.Error(), s.key))
}

// ctxError explains a cancelled stream context: Close or Open's ctx.
func (s *stream) ctxError() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.parent.Err(); err != nil {
		return fmt.Errorf("inworld: stream abandoned: %w", err)
	}
	return ErrClosed
}

// usable returns ErrClosed after Close, the reader's error when the stream
// has already ended, else nil.
func (s *stream) usable() error {
	if s.closed.Load() {
		return ErrClosed
	}
	select {
	case <-s.done:
		if errors.Is(s.err, io.EOF) {
			return errors.New("inworld: the stream has ended")
		}
		return s.err
	default:
		return nil
	}
}

// write sends one JSON message.
func (s *stream) write(m clientMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, b)
}

// writeError explains a failed write. A write fails because the connection
// is gone; the reader normally learns why within moments, and that reason
// is the better error.
func (s *stream) writeError(doing string, err error) error {
	if s.closed.Load() {
		return ErrClosed
	}
	t := time.NewTimer(failureGrace)
	defer t.Stop()
	select {
	case <-s.done:
		if !errors.Is(s.err, io.EOF) {
			return s.err
		}
	case <-t.C:
	}
	if s.parent.Err() != nil {
		return fmt.Errorf("inworld: %s: %w", doing, s.parent.Err())
	}
	return fmt.Errorf("inworld: %s: %s", doing, redact.Key(err.Error(), s.key))
}

func isBlank(s string) bool {
	for _, r := range s {
		switch r {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}
