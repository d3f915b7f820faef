package elevenlabs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/tts"
)

// stream is one stream-input websocket.
//
// Send and Flush are called from one goroutine (the pipeline's text side)
// while Recv runs in another (its audio side); Close may be called from any
// goroutine, at any time, any number of times. Sends are serialised all the
// same, so concurrent Send calls are safe but their order is then undefined.
//
// Goroutines: readLoop, started by Open, is the only one. It exits when the
// audio ends, the service fails or closes, ctx is cancelled or Close is
// called; Close waits for it.
type stream struct {
	conn   *websocket.Conn
	log    *slog.Logger
	key    string          // only to redact it from server-supplied text
	parent context.Context // Open's ctx, to report its cancellation
	ctx    context.Context // cancelled by Close and when readLoop ends
	cancel context.CancelFunc

	sendMu  sync.Mutex
	flushed bool // guarded by sendMu

	endSent atomic.Bool // {"text":""} was (being) sent: a normal close means EOF
	closed  atomic.Bool // Close was called

	// chunks carries decoded audio to Recv; readLoop closes it after
	// setting err.
	chunks chan tts.Chunk
	err    error // why the audio ended (io.EOF when it ended well)
	// done is closed when readLoop has returned and the connection is
	// closed.
	done      chan struct{}
	closeOnce sync.Once
}

// serverMessage is any message from the service. Alignment data is not
// decoded: the pipeline does not use it.
type serverMessage struct {
	Audio   string          `json:"audio"`
	IsFinal *bool           `json:"isFinal"`
	Message string          `json:"message"`
	Error   json.RawMessage `json:"error"`
	Code    json.RawMessage `json:"code"`
}

// Send queues text to speak, normally a whole sentence, and asks the service
// to generate it at once: {"text": text+" ", "flush": true}. Empty or blank
// text is ignored. Sending after Flush is an error.
func (s *stream) Send(text string) error {
	if isBlank(text) {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.flushed {
		return errors.New("elevenlabs: Send after Flush")
	}
	if err := s.ended(); err != nil {
		return err
	}
	if err := s.write(textMessage{Text: text + " ", Flush: true}); err != nil {
		return s.writeError("sending text", err)
	}
	return nil
}

// Flush sends the end of input, {"text":""}: the service speaks what it
// still holds, sends {"isFinal":true} and closes, and Recv then returns
// io.EOF. Flushing twice is a no-op.
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
	if err := s.ended(); err != nil {
		return err
	}
	// Set before writing: the service may close as soon as it reads it.
	s.endSent.Store(true)
	if err := s.write(textMessage{Text: ""}); err != nil {
		return s.writeError("sending end of input", err)
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

// Close drops the websocket at once, without a close handshake (barge-in,
// hang-up), unblocks Recv and waits for the reader goroutine. Call it also
// after io.EOF to release the connection without waiting for the service's
// close frame.
func (s *stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		_ = s.conn.CloseNow()
		<-s.done
		s.log.Debug("elevenlabs stream closed")
	})
	return nil
}

// readLoop delivers the service's audio to Recv until the stream ends.
func (s *stream) readLoop() {
	defer close(s.done)
	final, err := s.read()
	s.err = err
	close(s.chunks)
	if !errors.Is(err, io.EOF) && !errors.Is(err, ErrClosed) {
		s.log.Debug("elevenlabs stream failed", "err", err)
	}
	if final {
		s.drain()
	}
	s.cancel()
	_ = s.conn.CloseNow()
}

// read reads messages until the end of the audio or a failure. final
// reports {"isFinal":true}, after which the service closes the websocket.
func (s *stream) read() (final bool, err error) {
	var dec pcmDecoder
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			return false, s.readError(err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var m serverMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return false, fmt.Errorf("elevenlabs: decoding server message: %w", err)
		}
		if m.isError() {
			return false, &ServerError{
				Kind:    redact.Key(rawText(m.Error), s.key),
				Code:    rawInt(m.Code),
				Message: redact.Key(m.Message, s.key),
			}
		}
		if m.Audio != "" {
			pcm, err := dec.decode(m.Audio)
			if err != nil {
				return false, fmt.Errorf("elevenlabs: decoding audio: %w", err)
			}
			if len(pcm) > 0 {
				select {
				case s.chunks <- tts.Chunk{PCM: pcm}:
				case <-s.ctx.Done():
					return false, s.ctxError()
				}
			}
		}
		if m.IsFinal != nil && *m.IsFinal {
			if dec.split.Pending() {
				s.log.Warn("elevenlabs audio ended with half a sample; dropped it")
			}
			return true, io.EOF
		}
	}
}

// isError reports an error message: an "error" field, or a "message" with
// no audio.
func (m *serverMessage) isError() bool {
	if len(m.Error) > 0 && string(m.Error) != "null" {
		return true
	}
	return m.Message != "" && m.Audio == ""
}

// readError explains why reading failed.
func (s *stream) readError(err error) error {
	if s.ctx.Err() != nil {
		return s.ctxError()
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure {
			if s.endSent.Load() {
				return io.EOF
			}
			return errors.New("elevenlabs: the service closed the stream before the end of input")
		}
		return &ServerError{CloseStatus: int(ce.Code), Message: redact.Key(ce.Reason, s.key)}
	}
	return fmt.Errorf("elevenlabs: reading audio: %s", redact.Key(err.Error(), s.key))
}

// ctxError explains a cancelled stream context: Close or Open's ctx.
func (s *stream) ctxError() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.parent.Err(); err != nil {
		return fmt.Errorf("elevenlabs: stream abandoned: %w", err)
	}
	return ErrClosed
}

// drain waits, boundedly, for the service's close frame after isFinal so
// the websocket closes cleanly.
func (s *stream) drain() {
	ctx, cancel := context.WithTimeout(s.ctx, drainTimeout)
	defer cancel()
	for {
		if _, _, err := s.conn.Read(ctx); err != nil {
			return
		}
	}
}

// ended returns the reader's error when the stream has already failed,
// ErrClosed when it was closed, else nil.
func (s *stream) ended() error {
	select {
	case <-s.done:
		if errors.Is(s.err, io.EOF) {
			return errors.New("elevenlabs: the stream has ended")
		}
		return s.err
	default:
		return nil
	}
}

// write sends one JSON message.
func (s *stream) write(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, b)
}

// writeError explains a failed write. A write fails because the connection
// is gone; the reader normally learns why (a close frame with a reason)
// within moments, and that reason is the better error.
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
		return fmt.Errorf("elevenlabs: %s: %w", doing, s.parent.Err())
	}
	return fmt.Errorf("elevenlabs: %s: %s", doing, redact.Key(err.Error(), s.key))
}

// pcmDecoder turns base64 PCM16 little-endian pieces into samples. The
// service may split a sample between two messages (audio.PCM16Splitter
// carries the odd byte over).
type pcmDecoder struct {
	buf   []byte
	split audio.PCM16Splitter
}

// decode returns the whole samples of piece plus a carried byte. The slice
// is new: the caller owns it.
func (d *pcmDecoder) decode(piece string) ([]int16, error) {
	need := base64.StdEncoding.DecodedLen(len(piece))
	if cap(d.buf) < need {
		d.buf = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(d.buf[:need], []byte(piece))
	if err != nil {
		return nil, err
	}
	return d.split.Decode(d.buf[:n]), nil
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
