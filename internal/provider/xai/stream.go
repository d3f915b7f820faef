package xai

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
	"unicode"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/tts"
)

const (
	// readLimit bounds one server message; audio deltas are a few tens of
	// kilobytes of base64.
	readLimit = 4 << 20
	// writeTimeout bounds one client message.
	writeTimeout = 10 * time.Second
	// closeTimeout bounds the close handshake after audio.done.
	closeTimeout = 2 * time.Second
	// failureGrace is how long a failed write waits for the reader to learn
	// why the service dropped the connection.
	failureGrace = time.Second
	// chunkBuffer is how many decoded chunks may wait for Recv.
	chunkBuffer = 32
)

// Client messages.
type textDelta struct {
	Type  string `json:"type"` // "text.delta"
	Delta string `json:"delta"`
}

type textDone struct {
	Type string `json:"type"` // "text.done"
}

// serverMessage is any message from the service.
type serverMessage struct {
	Type    string `json:"type"`
	Delta   string `json:"delta"`
	Message string `json:"message"`
}

// stream is one TTS websocket.
//
// Goroutines: readLoop, started by newStream, is the only one. It exits
// when the audio ends, the service fails or closes, ctx is cancelled or
// Close is called; Close waits for it.
type stream struct {
	conn   *websocket.Conn
	log    *slog.Logger
	key    string          // only to redact it from server-supplied text
	dec    *decoder        // used by readLoop only
	parent context.Context // Open's ctx, to report its cancellation
	ctx    context.Context // cancelled by Close and when readLoop ends
	cancel context.CancelFunc

	sendMu   sync.Mutex
	flushed  bool // guarded by sendMu
	lastRune rune // last rune sent, guarded by sendMu; 0 before any text

	doneSent atomic.Bool // text.done was (being) sent: audio.done ends the audio
	closed   atomic.Bool // Close was called

	// chunks carries decoded audio to Recv; readLoop closes it after
	// setting err.
	chunks chan tts.Chunk
	err    error // why the audio ended (io.EOF when it ended well)
	// done is closed when readLoop has returned and the connection is
	// closed.
	done      chan struct{}
	closeOnce sync.Once
}

func newStream(ctx context.Context, conn *websocket.Conn, log *slog.Logger, key string, dec *decoder) *stream {
	conn.SetReadLimit(readLimit)
	sctx, cancel := context.WithCancel(ctx)
	s := &stream{
		conn:   conn,
		log:    log,
		key:    key,
		dec:    dec,
		parent: ctx,
		ctx:    sctx,
		cancel: cancel,
		chunks: make(chan tts.Chunk, chunkBuffer),
		done:   make(chan struct{}),
	}
	go s.readLoop()
	return s
}

// Send queues text to speak as a text.delta. The service joins deltas
// verbatim, so a space is put between two pieces that would otherwise run
// together. Blank text is ignored; sending after Flush is an error.
func (s *stream) Send(text string) error {
	if isBlank(text) {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.sendable(); err != nil {
		return err
	}
	if s.flushed {
		return errors.New("xai: Send after Flush")
	}
	first, _ := utf8.DecodeRuneInString(text)
	if s.lastRune != 0 && !unicode.IsSpace(s.lastRune) && !unicode.IsSpace(first) {
		text = " " + text
	}
	if err := s.write(textDelta{Type: "text.delta", Delta: text}); err != nil {
		return s.writeError("sending text", err)
	}
	s.lastRune, _ = utf8.DecodeLastRuneInString(text)
	return nil
}

// Flush sends text.done: the service speaks what it holds, then sends
// audio.done, and Recv returns io.EOF. Flushing twice is a no-op.
func (s *stream) Flush() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.sendable(); err != nil {
		return err
	}
	if s.flushed {
		return nil
	}
	s.flushed = true
	// Set before writing: audio.done may be read as soon as it is written.
	s.doneSent.Store(true)
	if err := s.write(textDone{Type: "text.done"}); err != nil {
		return s.writeError("sending end of text", err)
	}
	return nil
}

// Recv returns the next chunk of audio, io.EOF after the last one, ErrClosed
// after Close, or what went wrong (an *APIError when the service said so).
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
		s.log.Debug("xai tts stream closed")
	})
	return nil
}

// readLoop delivers the service's audio to Recv until the stream ends, then
// closes the websocket: with a close handshake after audio.done (the
// service keeps the connection open otherwise), at once after a failure.
func (s *stream) readLoop() {
	defer close(s.done)
	err := s.read()
	s.err = err
	close(s.chunks)
	if errors.Is(err, io.EOF) {
		s.closeGracefully()
	} else if !errors.Is(err, ErrClosed) {
		s.log.Debug("xai tts stream failed", "err", err)
	}
	s.cancel()
	_ = s.conn.CloseNow()
}

// closeGracefully sends a normal close frame and waits, boundedly, for the
// service's answer.
func (s *stream) closeGracefully() {
	stop := context.AfterFunc(s.ctx, func() { _ = s.conn.CloseNow() })
	defer stop()
	t := time.AfterFunc(closeTimeout, func() { _ = s.conn.CloseNow() })
	defer t.Stop()
	_ = s.conn.Close(websocket.StatusNormalClosure, "")
}

// read reads messages until audio.done after text.done (io.EOF) or a
// failure.
func (s *stream) read() error {
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			return s.readError(err)
		}
		if typ != websocket.MessageText {
			continue
		}
		var m serverMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("xai: decoding server message: %w", err)
		}
		switch m.Type {
		case "audio.delta":
			if err := s.deliver(m.Delta); err != nil {
				return err
			}
		case "audio.done":
			if !s.doneSent.Load() {
				continue // the audio of the text so far; more text follows
			}
			if err := s.deliverTail(); err != nil {
				return err
			}
			return io.EOF
		case "error":
			return &APIError{Message: redact.Key(clip(m.Message), s.key)}
		default:
			s.log.Debug("xai tts: ignoring server message", "type", m.Type)
		}
	}
}

// deliver decodes one audio delta and hands its samples to Recv.
func (s *stream) deliver(delta string) error {
	if delta == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(delta)
	if err != nil {
		return fmt.Errorf("xai: decoding audio: %w", err)
	}
	return s.emit(s.dec.decode(raw))
}

// deliverTail hands Recv the resampler's last samples.
func (s *stream) deliverTail() error {
	if s.dec.pcm.Pending() {
		s.log.Warn("xai audio ended with half a sample; dropped it")
	}
	return s.emit(s.dec.flush())
}

func (s *stream) emit(pcm []int16) error {
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

// readError explains why reading failed.
func (s *stream) readError(err error) error {
	if s.ctx.Err() != nil {
		return s.ctxError()
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure {
			return errors.New("xai: the service closed the stream before the end of the audio")
		}
		return &APIError{CloseStatus: int(ce.Code), Message: redact.Key(clip(ce.Reason), s.key)}
	}
	return fmt.Errorf("xai: reading audio: %s", redact.Key(err.Error(), s.key))
}

// ctxError explains a cancelled stream context: Close or Open's ctx.
func (s *stream) ctxError() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.parent.Err(); err != nil {
		return fmt.Errorf("xai: stream abandoned: %w", err)
	}
	return ErrClosed
}

// sendable returns ErrClosed after Close, the reader's error when the
// stream has already failed or ended, else nil.
func (s *stream) sendable() error {
	if s.closed.Load() {
		return ErrClosed
	}
	select {
	case <-s.done:
		if errors.Is(s.err, io.EOF) {
			return errors.New("xai: the stream has ended")
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
// is gone; the reader normally learns why (an error message or a close
// frame) within moments, and that is the better error.
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
		return fmt.Errorf("xai: %s: %w", doing, s.parent.Err())
	}
	return fmt.Errorf("xai: %s: %s", doing, redact.Key(err.Error(), s.key))
}

// decoder turns the wire audio into PCM at the pipeline's rate. The
// service chops the stream at arbitrary byte boundaries, so an odd trailing
// byte of PCM is carried over to the next delta.
type decoder struct {
	codec     string
	resampler *audio.Resampler // nil when the wire rate is the pipeline's
	pcm       audio.PCM16Splitter
}

// decode returns the samples of raw (a new slice the caller owns).
func (d *decoder) decode(raw []byte) []int16 {
	var pcm []int16
	switch d.codec {
	case CodecMulaw:
		pcm = audio.DecodeUlaw(nil, raw)
	case CodecAlaw:
		pcm = audio.DecodeAlaw(nil, raw)
	default:
		pcm = d.pcm.Decode(raw)
	}
	if d.resampler != nil {
		pcm = d.resampler.Process(nil, pcm)
	}
	return pcm
}

// flush returns what the resampler still holds at the end of the audio.
func (d *decoder) flush() []int16 {
	if d.resampler == nil {
		return nil
	}
	return d.resampler.Flush(nil)
}

func isBlank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}
